// The controller's gRPC API (proto/runnel/v1/controller.proto, service ControllerApi) on a
// QuorumController, and ControllerClient, which finds the active controller among the voters.
//
// Unary requests go to QuorumController; a member that is not the active controller answers
// NOT_CONTROLLER (41) with controller_id (the Raft leader it knows, -1 none). A request that cannot
// be turned into a controller request is INVALID_REQUEST (42) with a message; a handler never throws.
//
// FetchMetadata is served by any member from its applied image: a snapshot (the image's canonical
// records) when from_offset is 0 or not replayable from the bounded buffer of recent records, then
// each newly applied batch in order. A stream with too many unsent updates is ended with
// RESOURCE_EXHAUSTED rather than buffered without limit; the broker reconnects from its offset.

import * as grpc from '@grpc/grpc-js';
import { loadControllerProto, type ClientApi as Pb } from '@runnel/common';
import { RaftError } from '@runnel/raft';
import { CONTROLLER_ERRORS } from '../errors.js';
import { MetadataInvariantError, MetadataImage } from '../image.js';
import { LOG_DIR_STATES, decodeRecord, encodeRecord, MetadataRecordError, type LogDirState, type MetadataRecord } from '../records.js';
import type { IsrMember } from '../controllerLogic.js';
import { NotControllerError, type QuorumController, type QuorumMemberDescription } from './quorumController.js';
import { imageToSnapshotRecords } from './stateMachine.js';

const INVALID_REQUEST = CONTROLLER_ERRORS.INVALID_REQUEST.code;
const NOT_CONTROLLER = CONTROLLER_ERRORS.NOT_CONTROLLER.code;
const UNKNOWN_SERVER_ERROR = -1;
const INT32_MAX = 2 ** 31 - 1;
const INT32_MIN = -(2 ** 31);
/** A limit on one heartbeat's offline replicas (a broker hosting more than this would need to say so in parts). */
export const OFFLINE_REPLICAS_PER_HEARTBEAT_MAX = 100_000;

/** A request that cannot be turned into a controller request: INVALID_REQUEST (42). */
export class InvalidRequestError extends Error {
  readonly errorCode = INVALID_REQUEST;
  constructor(readonly detail: string) {
    super(`INVALID_REQUEST: ${detail}`);
    this.name = 'InvalidRequestError';
  }
}

/** The error fields every ControllerApi response carries. */
export interface ControllerErrorFields {
  readonly errorCode: number;
  readonly errorMessage: string;
  readonly controllerId: number;
}

/**
 * An error as response fields: NotControllerError → 41 with its leader; anything carrying a Kafka
 * code (`errorCode`, or RunnelError's numeric `code`) → that code; malformed records or values → 42;
 * Raft dropping a proposal → 41 (retry, maybe elsewhere); anything else UNKNOWN_SERVER_ERROR (-1).
 */
export function errorToFields(error: unknown, leaderId: number): ControllerErrorFields {
  // The detail alone: the code is its own field (a RunnelError's message starts with its name).
  const detail = (error as { detail?: unknown } | null)?.detail;
  const message = typeof detail === 'string' ? detail : error instanceof Error ? error.message : String(error);
  if (error instanceof NotControllerError) return { errorCode: NOT_CONTROLLER, errorMessage: message, controllerId: error.leaderId };
  if (error instanceof RaftError) return { errorCode: NOT_CONTROLLER, errorMessage: message, controllerId: leaderId };
  if (error instanceof MetadataRecordError || error instanceof RangeError) {
    return { errorCode: INVALID_REQUEST, errorMessage: message, controllerId: leaderId };
  }
  if (typeof error === 'object' && error !== null && !(error instanceof MetadataInvariantError)) {
    const { errorCode, code } = error as { errorCode?: unknown; code?: unknown };
    if (typeof errorCode === 'number' && Number.isInteger(errorCode)) return { errorCode, errorMessage: message, controllerId: leaderId };
    if (typeof code === 'number' && Number.isInteger(code) && typeof (error as { errorName?: unknown }).errorName === 'string') {
      return { errorCode: code, errorMessage: message, controllerId: leaderId };
    }
  }
  return { errorCode: UNKNOWN_SERVER_ERROR, errorMessage: message, controllerId: leaderId };
}

// --- request validation (proto3 fills absent fields with defaults; values still need checking) ---

function int(value: unknown, what: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new InvalidRequestError(`${what} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}

function text(value: unknown, what: string, options: { readonly nonEmpty?: boolean } = {}): string {
  if (typeof value !== 'string') throw new InvalidRequestError(`${what} must be a string`);
  if (options.nonEmpty === true && value.length === 0) throw new InvalidRequestError(`${what} must not be empty`);
  return value;
}

function list<T>(value: T[] | undefined | null, what: string): T[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new InvalidRequestError(`${what} must be a list`);
  return value;
}

function object<T extends object>(value: T | null | undefined, what: string): T {
  if (typeof value !== 'object' || value === null) throw new InvalidRequestError(`${what} is missing`);
  return value;
}

function configResourceType(value: unknown, what: string): 'broker' | 'cluster' {
  if (value !== 'broker' && value !== 'cluster') throw new InvalidRequestError(`${what} must be "broker" or "cluster", got ${JSON.stringify(value)}`);
  return value;
}

/** Kafka's OpType numbers: 0 set, 1 delete; 2 append and 3 subtract apply to list configs, and no dynamic key is a list. */
function configOperation(value: unknown, what: string): 'set' | 'delete' {
  if (value === 0) return 'set';
  if (value === 1) return 'delete';
  if (value === 2 || value === 3) throw new InvalidRequestError(`${what}: ${value === 2 ? 'append' : 'subtract'} applies to list configs, and no dynamic broker config is a list`);
  throw new InvalidRequestError(`${what} must be 0 (set) or 1 (delete), got ${String(value)}`);
}

export interface ControllerServiceOptions {
  /** How many recent records a FetchMetadata can be resumed from without a snapshot (default 10000). */
  readonly replayRecords?: number;
  /** Updates written but not yet sent on one stream before it is ended (default 256). */
  readonly maxPendingUpdates?: number;
  /** Records per update when replaying (default 1000). */
  readonly recordsPerUpdate?: number;
}

interface BufferedRecord {
  readonly offset: number;
  readonly bytes: Uint8Array;
}

interface Follower {
  readonly call: grpc.ServerWritableStream<Pb.FetchMetadataRequest__Output, Pb.MetadataUpdate>;
  /** The next offset this follower needs. */
  next: number;
  done: boolean;
}

/** ControllerApi's handlers for one QuorumController. `close()` ends the metadata streams. */
export class ControllerService {
  private readonly replayRecords: number;
  private readonly maxPendingUpdates: number;
  private readonly recordsPerUpdate: number;
  /** Recent records, contiguous offsets from `bufferStart`. */
  private buffer: BufferedRecord[] = [];
  private bufferStart: number;
  private readonly followers = new Set<Follower>();
  private readonly unsubscribe: () => void;
  private closed = false;

  constructor(
    readonly controller: QuorumController,
    options: ControllerServiceOptions = {},
  ) {
    this.replayRecords = options.replayRecords ?? 10_000;
    this.maxPendingUpdates = options.maxPendingUpdates ?? 256;
    this.recordsPerUpdate = options.recordsPerUpdate ?? 1000;
    this.bufferStart = controller.image.highestOffset + 1;
    this.unsubscribe = controller.stateMachine.onImage((image, previous, _index, records) => this.onImage(image, previous, records));
  }

  /** The number of open FetchMetadata streams. */
  get streams(): number {
    return this.followers.size;
  }

  /** Adds ControllerApi to `server`. */
  addTo(server: grpc.Server): void {
    server.addService(loadControllerProto().runnel.v1.ControllerApi.service, this.handlers());
  }

  handlers(): Pb.ControllerApiHandlers {
    return {
      RegisterBroker: (call, callback) => {
        this.unary(callback, async () => {
          const request = object(call.request, 'request');
          const listeners = list(request.listeners, 'listeners').map((listener, k) => ({
            name: text(listener.name, `listeners[${k}].name`, { nonEmpty: true }),
            host: text(listener.host, `listeners[${k}].host`, { nonEmpty: true }),
            port: int(listener.port, `listeners[${k}].port`, 1, 65_535),
          }));
          const rack = text(request.rack, 'rack');
          const result = await this.controller.registerBroker({
            brokerId: int(request.brokerId, 'broker_id', 0, INT32_MAX),
            incarnationId: text(request.incarnationId, 'incarnation_id', { nonEmpty: true }),
            listeners,
            rack: rack === '' ? null : rack,
          });
          return { ...this.ok(result), brokerEpoch: result.brokerEpoch };
        });
      },
      BrokerHeartbeat: (call, callback) => {
        this.unary(callback, async () => {
          const request = object(call.request, 'request');
          const offlineReplicas = list(request.offlineReplicas, 'offline_replicas');
          if (offlineReplicas.length > OFFLINE_REPLICAS_PER_HEARTBEAT_MAX) {
            throw new InvalidRequestError(`offline_replicas has ${offlineReplicas.length} entries, at most ${OFFLINE_REPLICAS_PER_HEARTBEAT_MAX}`);
          }
          const fields = {
            brokerId: int(request.brokerId, 'broker_id', 0, INT32_MAX),
            brokerEpoch: int(request.brokerEpoch, 'broker_epoch', -1),
            currentMetadataOffset: int(request.currentMetadataOffset, 'current_metadata_offset', -1),
            offlineReplicas: offlineReplicas.map((replica, k) => ({
              topicId: text(replica.topicId, `offline_replicas[${k}].topic_id`, { nonEmpty: true }),
              partition: int(replica.partition, `offline_replicas[${k}].partition`, 0, INT32_MAX),
            })),
            ...logDirStateOf(request.logDirState),
          };
          const response =
            request.wantShutDown === true
              ? await this.controller.controlledShutdown(fields)
              : await this.controller.brokerHeartbeat({ ...fields, wantFence: request.wantFence === true });
          return {
            ...this.ok(response),
            isCaughtUp: response.isCaughtUp,
            isFenced: response.isFenced,
            inControlledShutdown: response.inControlledShutdown,
            shouldShutDown: response.shouldShutDown,
            metadataOffset: response.metadataOffset,
          };
        });
      },
      AlterPartition: (call, callback) => {
        this.unary(callback, async () => {
          const request = object(call.request, 'request');
          const partitions = list(request.partitions, 'partitions').map((item, k) => {
            const topicId = text(item.topicId, `partitions[${k}].topic_id`);
            return {
              topic: text(item.topic, `partitions[${k}].topic`, { nonEmpty: true }),
              ...(topicId === '' ? {} : { topicId }),
              partition: int(item.partition, `partitions[${k}].partition`, 0, INT32_MAX),
              leaderEpoch: int(item.leaderEpoch, `partitions[${k}].leader_epoch`, 0, INT32_MAX),
              partitionEpoch: int(item.partitionEpoch, `partitions[${k}].partition_epoch`, 0, INT32_MAX),
              newIsr: list(item.newIsr, `partitions[${k}].new_isr`).map((member, j): number | IsrMember => {
                const brokerId = int(member.brokerId, `partitions[${k}].new_isr[${j}].broker_id`, 0, INT32_MAX);
                const brokerEpoch = int(member.brokerEpoch, `partitions[${k}].new_isr[${j}].broker_epoch`, -1);
                return brokerEpoch === -1 ? brokerId : { brokerId, brokerEpoch };
              }),
            };
          });
          const response = await this.controller.alterPartition({
            brokerId: int(request.brokerId, 'broker_id', 0, INT32_MAX),
            brokerEpoch: int(request.brokerEpoch, 'broker_epoch', -1),
            partitions,
          });
          return {
            ...this.ok(response),
            metadataOffset: response.metadataOffset,
            partitions: response.partitions.map((result) => ({
              topic: result.topic,
              partition: result.partition,
              errorCode: result.errorCode,
              errorMessage: result.errorMessage,
              leader: result.leader ?? -1,
              isr: [...(result.isr ?? [])],
              leaderEpoch: result.leaderEpoch ?? -1,
              partitionEpoch: result.partitionEpoch ?? -1,
            })),
          };
        });
      },
      CreateTopics: (call, callback) => {
        this.unary(callback, async () => {
          const request = object(call.request, 'request');
          const topics = list(request.topics, 'topics').map((topic, k) => {
            const numPartitions = int(topic.numPartitions, `topics[${k}].num_partitions`, -1, INT32_MAX);
            const replicationFactor = int(topic.replicationFactor, `topics[${k}].replication_factor`, -1, INT32_MAX);
            const configs: Record<string, string> = {};
            for (const [j, entry] of list(topic.configs, `topics[${k}].configs`).entries()) {
              const name = text(entry.name, `topics[${k}].configs[${j}].name`, { nonEmpty: true });
              if (Object.hasOwn(configs, name)) throw new InvalidRequestError(`topics[${k}].configs: '${name}' given twice`);
              configs[name] = text(entry.value, `topics[${k}].configs[${j}].value`);
            }
            return {
              name: text(topic.name, `topics[${k}].name`),
              ...(numPartitions === -1 ? {} : { numPartitions }),
              ...(replicationFactor === -1 ? {} : { replicationFactor }),
              configs,
            };
          });
          const response = await this.controller.createTopics({ topics, validateOnly: request.validateOnly === true });
          return {
            ...this.ok(),
            metadataOffset: response.metadataOffset,
            topics: response.topics.map((result) => ({
              name: result.name,
              errorCode: result.errorCode,
              errorMessage: result.errorMessage,
              topicId: result.topicId ?? '',
              numPartitions: result.numPartitions,
              replicationFactor: result.replicationFactor,
            })),
          };
        });
      },
      CreatePartitions: (call, callback) => {
        this.unary(callback, async () => {
          const request = object(call.request, 'request');
          const topics = list(request.topics, 'topics').map((topic, k) => {
            const assignments = list(topic.assignments, `topics[${k}].assignments`).map((assignment, j) =>
              list(assignment.brokerIds, `topics[${k}].assignments[${j}].broker_ids`).map((id, i) => int(id, `topics[${k}].assignments[${j}].broker_ids[${i}]`, INT32_MIN, INT32_MAX)),
            );
            return {
              name: text(topic.name, `topics[${k}].name`),
              // Any int32: a count that is not an increase is the controller's INVALID_PARTITIONS.
              count: int(topic.count, `topics[${k}].count`, INT32_MIN, INT32_MAX),
              assignments: assignments.length === 0 ? null : assignments,
            };
          });
          const response = await this.controller.createPartitions({ topics, validateOnly: request.validateOnly === true });
          return {
            ...this.ok(),
            metadataOffset: response.metadataOffset,
            topics: response.topics.map((result) => ({ name: result.name, errorCode: result.errorCode, errorMessage: result.errorMessage })),
          };
        });
      },
      DeleteTopics: (call, callback) => {
        this.unary(callback, async () => {
          const request = object(call.request, 'request');
          const topics = list(request.names, 'names').map((name, k) => text(name, `names[${k}]`));
          const response = await this.controller.deleteTopics({ topics });
          return {
            ...this.ok(),
            metadataOffset: response.metadataOffset,
            topics: response.topics.map((result) => ({
              name: result.name,
              errorCode: result.errorCode,
              errorMessage: result.errorMessage,
              topicId: result.topicId ?? '',
            })),
          };
        });
      },
      ElectLeaders: (_call, callback) => {
        this.unary(callback, async () => {
          const result = await this.controller.preferredLeaderElection();
          return {
            ...this.ok(),
            metadataOffset: result.metadataOffset,
            moved: result.moved.map((move) => ({ topic: move.topic, partition: move.partition, from: move.from, to: move.to, leaderEpoch: move.leaderEpoch })),
            notMoved: result.notMoved.map((left) => ({
              topic: left.topic,
              partition: left.partition,
              preferred: left.preferred,
              leader: left.leader,
              reason: left.reason,
            })),
          };
        });
      },
      ElectPartitionLeaders: (call, callback) => {
        this.unary(callback, async () => {
          const request = object(call.request, 'request');
          const electionType = int(request.electionType, 'election_type', 0, 1) === 0 ? 'preferred' : 'unclean';
          const topics =
            request.allPartitions === true
              ? null
              : list(request.topics, 'topics').map((entry, k) => ({
                  topic: text(entry.topic, `topics[${k}].topic`, { nonEmpty: true }),
                  partitions: list(entry.partitions, `topics[${k}].partitions`).map((partition, j) => int(partition, `topics[${k}].partitions[${j}]`, 0, INT32_MAX)),
                }));
          const response = await this.controller.electLeaders({ electionType, topics });
          return { ...this.ok(), metadataOffset: response.metadataOffset, topics: response.topics.map((topic) => ({ topic: topic.topic, partitions: [...topic.partitions] })) };
        });
      },
      AlterPartitionReassignments: (call, callback) => {
        this.unary(callback, async () => {
          const request = object(call.request, 'request');
          const partitions = list(request.partitions, 'partitions').map((item, k) => {
            const replicas = list(item.replicas, `partitions[${k}].replicas`).map((id, j) => int(id, `partitions[${k}].replicas[${j}]`, 0, INT32_MAX));
            if (item.cancel === true && replicas.length > 0) throw new InvalidRequestError(`partitions[${k}]: cancel comes with no replicas`);
            return {
              topic: text(item.topic, `partitions[${k}].topic`, { nonEmpty: true }),
              partition: int(item.partition, `partitions[${k}].partition`, 0, INT32_MAX),
              replicas: item.cancel === true ? null : replicas,
            };
          });
          const response = await this.controller.alterPartitionReassignments({ partitions });
          return { ...this.ok(), metadataOffset: response.metadataOffset, partitions: response.partitions.map((result) => ({ ...result })) };
        });
      },
      ListPartitionReassignments: (call, callback) => {
        this.unary(callback, async () => {
          const request = object(call.request, 'request');
          const refs = list(request.partitions, 'partitions').map((ref, k) => ({
            topic: text(ref.topic, `partitions[${k}].topic`, { nonEmpty: true }),
            partition: int(ref.partition, `partitions[${k}].partition`, 0, INT32_MAX),
          }));
          const response = await this.controller.listPartitionReassignments(refs.length === 0 ? undefined : refs);
          return {
            ...this.ok(),
            metadataOffset: response.metadataOffset,
            reassignments: response.reassignments.map((moving) => ({
              topic: moving.topic,
              partition: moving.partition,
              replicas: [...moving.replicas],
              addingReplicas: [...moving.addingReplicas],
              removingReplicas: [...moving.removingReplicas],
              isr: [...moving.isr],
              leader: moving.leader,
            })),
          };
        });
      },
      RebalanceReplicas: (call, callback) => {
        this.unary(callback, async () => {
          const request = object(call.request, 'request');
          const response = await this.controller.rebalanceReplicas({ dryRun: request.dryRun === true });
          return {
            ...this.ok(response),
            metadataOffset: response.metadataOffset,
            moves: response.moves.map((move) => ({ topic: move.topic, partition: move.partition, from: [...move.from], to: [...move.to] })),
            brokers: response.brokers.map((broker) => ({ ...broker })),
            unplaceable: response.unplaceable.map((ref) => ({ topic: ref.topic, partition: ref.partition })),
            started: response.started.map((result) => ({ ...result })),
          };
        });
      },
      DecommissionBroker: (call, callback) => {
        this.unary(callback, async () => {
          const request = object(call.request, 'request');
          const brokerId = int(request.brokerId, 'broker_id', 0, INT32_MAX);
          const response = await this.controller.decommissionBroker(brokerId, request.decommission === true);
          return {
            ...this.ok(response),
            metadataOffset: response.metadataOffset,
            replicasLeft: response.replicasLeft,
            moves: response.moves.map((result) => ({ ...result })),
            unplaceable: response.unplaceable.map((ref) => ({ topic: ref.topic, partition: ref.partition })),
          };
        });
      },
      IncrementalAlterConfigs: (call, callback) => {
        this.unary(callback, async () => {
          const request = object(call.request, 'request');
          const resources = list(request.resources, 'resources').map((resource, k) => ({
            type: configResourceType(resource.type, `resources[${k}].type`),
            name: text(resource.name, `resources[${k}].name`),
            ops: list(resource.ops, `resources[${k}].ops`).map((operation, j) => ({
              key: text(operation.key, `resources[${k}].ops[${j}].key`, { nonEmpty: true }),
              op: configOperation(operation.op, `resources[${k}].ops[${j}].op`),
              value: text(operation.value, `resources[${k}].ops[${j}].value`),
            })),
          }));
          const response = await this.controller.incrementalAlterConfigs({ resources, validateOnly: request.validateOnly === true });
          return { ...this.ok(), metadataOffset: response.metadataOffset, resources: response.resources.map((result) => ({ ...result })) };
        });
      },
      FetchMetadata: (call) => this.fetchMetadata(call),
      DescribeQuorum: (_call, callback) => {
        this.withLeaderAddress(callback, async () => {
          const quorum = this.controller.describeQuorum();
          const member = (described: QuorumMemberDescription) => ({
            nodeId: described.id, address: described.address, matchIndex: described.matchIndex, lag: described.lag, lastContactMs: described.lastContactMs,
          });
          return { ...this.ok(), term: quorum.term, commitIndex: quorum.commitIndex, voters: quorum.voters.map(member), learners: quorum.learners.map(member) };
        });
      },
      AddRaftVoter: (call, callback) => {
        this.withLeaderAddress(callback, async () => {
          const { nodeId, address, catchUpTimeoutMs } = call.request;
          if (!(nodeId >= 0)) throw new RangeError(`node id ${nodeId} is not a node id`);
          const progress: string[] = [];
          await this.membershipChange(() =>
            this.controller.addVoter(nodeId, address, { ...(catchUpTimeoutMs > 0 ? { catchUpTimeoutMs } : {}), onProgress: (line) => progress.push(line) }),
          );
          return { ...this.ok(), progress, controllerAddress: '' };
        });
      },
      RemoveRaftVoter: (call, callback) => {
        this.withLeaderAddress(callback, async () => {
          await this.membershipChange(() => this.controller.removeVoter(call.request.nodeId));
          return { ...this.ok(), progress: [`node ${call.request.nodeId} removed`], controllerAddress: '' };
        });
      },
    };
  }

  /** Ends every metadata stream and stops following the state machine. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    for (const follower of [...this.followers]) this.finish(follower, null);
  }

  // --- unary ----------------------------------------------------------------------------------

  private ok(error: { readonly errorCode: number; readonly errorMessage: string } = { errorCode: 0, errorMessage: '' }): ControllerErrorFields {
    return { errorCode: error.errorCode, errorMessage: error.errorMessage, controllerId: this.controller.id };
  }

  /** A refused membership change is the caller's error (42, with the reason), not "ask another controller". */
  private async membershipChange(change: () => Promise<void>): Promise<void> {
    try {
      await change();
    } catch (error) {
      if (error instanceof RaftError && error.code === 'ConfChangeRejected') throw new RangeError(error.message.replace(/^ConfChangeRejected: /, ''));
      throw error;
    }
  }

  /** As unary, and a NOT_CONTROLLER answer carries the leader's address: a member added later is in no caller's config. */
  private withLeaderAddress<T extends { errorCode: number; controllerAddress?: string }>(callback: grpc.sendUnaryData<T>, handle: () => Promise<T>): void {
    this.unary<T>((error, response) => {
      if (response !== undefined && response !== null && response.errorCode === NOT_CONTROLLER) response.controllerAddress = this.controller.leaderAddress;
      callback(error, response);
    }, handle);
  }

  private unary<T extends object>(callback: grpc.sendUnaryData<T>, handle: () => Promise<T>): void {
    let answer: Promise<T>;
    try {
      answer = handle();
    } catch (error) {
      answer = Promise.reject(error as Error);
    }
    answer.then(
      (response) => callback(null, response),
      (error: unknown) => callback(null, errorToFields(error, this.controller.leaderId) as T),
    );
  }

  // --- FetchMetadata --------------------------------------------------------------------------

  private fetchMetadata(call: grpc.ServerWritableStream<Pb.FetchMetadataRequest__Output, Pb.MetadataUpdate>): void {
    const fromOffset = call.request?.fromOffset;
    if (typeof fromOffset !== 'number' || !Number.isSafeInteger(fromOffset) || fromOffset < 0) {
      call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: `INVALID_REQUEST: from_offset must be >= 0, got ${String(fromOffset)}` });
      return;
    }
    if (this.closed) {
      call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'the controller service is stopping' });
      return;
    }
    const follower: Follower = { call, next: fromOffset, done: false };
    this.followers.add(follower);
    const drop = (): void => {
      follower.done = true;
      this.followers.delete(follower);
    };
    call.on('cancelled', drop);
    call.on('close', drop);
    call.on('error', drop);
    const image = this.controller.image;
    const bufferEnd = this.bufferStart + this.buffer.length; // = image.highestOffset + 1
    if (fromOffset > 0 && fromOffset >= this.bufferStart && fromOffset <= bufferEnd) {
      // Replay what the follower is missing from the buffer.
      for (let k = fromOffset - this.bufferStart; k < this.buffer.length && !follower.done; k += this.recordsPerUpdate) {
        this.send(follower, this.update(false, this.buffer.slice(k, k + this.recordsPerUpdate)));
      }
    } else if (fromOffset <= bufferEnd) {
      this.sendSnapshot(follower, image);
    }
    // else: the follower is ahead of this member; it gets the records from its offset once applied here.
  }

  private onImage(image: MetadataImage, previous: MetadataImage, records: readonly MetadataRecord[] | null): void {
    if (records === null || previous.highestOffset + 1 !== this.bufferStart + this.buffer.length) {
      // A snapshot restore (or a gap): replaying across it is impossible; everyone gets the new image.
      this.buffer = [];
      this.bufferStart = image.highestOffset + 1;
      for (const follower of [...this.followers]) if (image.highestOffset >= follower.next - 1) this.sendSnapshot(follower, image);
      return;
    }
    const batch = records.map((record, k) => ({ offset: previous.highestOffset + 1 + k, bytes: encodeRecord(record) }));
    this.buffer.push(...batch);
    if (this.buffer.length > this.replayRecords) {
      const drop = this.buffer.length - this.replayRecords;
      this.buffer = this.buffer.slice(drop);
      this.bufferStart += drop;
    }
    for (const follower of [...this.followers]) {
      const missing = batch.filter((entry) => entry.offset >= follower.next);
      if (missing.length > 0) this.send(follower, this.update(false, missing));
    }
  }

  private sendSnapshot(follower: Follower, image: MetadataImage): void {
    const records = imageToSnapshotRecords(image).map((entry) => ({ offset: entry.offset, bytes: encodeRecord(entry.record) }));
    this.send(follower, { snapshot: true, offset: image.highestOffset, records: records.map(toProto), servedBy: this.controller.id });
  }

  private update(snapshot: boolean, records: readonly BufferedRecord[]): Pb.MetadataUpdate {
    return { snapshot, offset: records[records.length - 1]!.offset, records: records.map(toProto), servedBy: this.controller.id };
  }

  private send(follower: Follower, update: Pb.MetadataUpdate): void {
    if (follower.done) return;
    if (follower.call.writableLength >= this.maxPendingUpdates) {
      this.finish(follower, { code: grpc.status.RESOURCE_EXHAUSTED, details: `metadata stream fell ${follower.call.writableLength} updates behind; reconnect from offset ${follower.next}` });
      return;
    }
    follower.call.write(update);
    follower.next = Number(update.offset) + 1;
  }

  private finish(follower: Follower, error: { code: grpc.status; details: string } | null): void {
    if (follower.done) return;
    follower.done = true;
    this.followers.delete(follower);
    if (error === null) follower.call.end();
    else follower.call.emit('error', error);
  }
}

function toProto(entry: BufferedRecord): Pb.MetadataLogRecord {
  return { offset: entry.offset, record: entry.bytes };
}

/** A ControllerService on its own gRPC server; `port` is the bound one (0 picks a free port). */
export async function serveController(
  controller: QuorumController,
  address: { readonly host: string; readonly port: number },
  options: ControllerServiceOptions = {},
): Promise<{ readonly service: ControllerService; readonly server: grpc.Server; readonly port: number; stop(): Promise<void> }> {
  const server = new grpc.Server();
  const service = new ControllerService(controller, options);
  service.addTo(server);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${address.host}:${address.port}`, grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound)));
  });
  return {
    service,
    server,
    port,
    async stop() {
      service.close();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 1000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}

// --- the client --------------------------------------------------------------------------------

export interface ControllerClientOptions {
  /** Every controller's ControllerApi address by node id (the ids controller_id names). */
  readonly controllers: ReadonlyMap<number, string>;
  /** The member to try first (default the lowest id). */
  readonly initialControllerId?: number;
  /** Each RPC's deadline (default 2000 ms). */
  readonly rpcTimeoutMs?: number;
  /** The whole call's time budget, retries included (default 10000 ms). */
  readonly callTimeoutMs?: number;
  /** At most this many attempts per call (default 100). */
  readonly maxAttempts?: number;
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

/** No active controller answered within a call's budget. */
export class ControllerUnavailableError extends Error {
  readonly errorCode = NOT_CONTROLLER;
  readonly detail: string;
  constructor(detail: string) {
    super(`NOT_CONTROLLER: no active controller answered: ${detail}`);
    this.detail = `no active controller answered: ${detail}`;
    this.name = 'ControllerUnavailableError';
  }
}

type Unary<Req, Res> = (request: Req, options: grpc.CallOptions, callback: grpc.requestCallback<Res>) => grpc.ClientUnaryCall;

/**
 * Calls the active controller: follows controller_id on NOT_CONTROLLER, moves on to the next member
 * when one is unreachable or knows no leader, with exponential backoff, bounded by attempts and time.
 * Any other answer (success or another error code) is returned as is. A request whose answer was lost
 * may have been applied, so a retried CreateTopics can answer TOPIC_ALREADY_EXISTS.
 */
export class ControllerClient {
  private readonly ids: number[];
  private readonly clients = new Map<number, Pb.ControllerApiClient>();
  /** The configured controllers, plus members learned from redirects (a voter added since the config was written). */
  private readonly addresses: Map<number, string>;
  /** The member believed to be the active controller. */
  controllerId: number;

  constructor(private readonly options: ControllerClientOptions) {
    this.addresses = new Map(options.controllers);
    this.ids = [...options.controllers.keys()].sort((a, b) => a - b);
    if (this.ids.length === 0) throw new Error('ControllerClient: no controllers');
    this.controllerId = options.initialControllerId ?? this.ids[0]!;
    if (!options.controllers.has(this.controllerId)) throw new Error(`ControllerClient: unknown controller ${this.controllerId}`);
  }

  registerBroker(request: Pb.RegisterBrokerRequest): Promise<Pb.RegisterBrokerResponse__Output> {
    return this.call((client) => client.registerBroker.bind(client) as Unary<Pb.RegisterBrokerRequest, Pb.RegisterBrokerResponse__Output>, request);
  }

  brokerHeartbeat(request: Pb.BrokerHeartbeatRequest): Promise<Pb.BrokerHeartbeatResponse__Output> {
    return this.call((client) => client.brokerHeartbeat.bind(client) as Unary<Pb.BrokerHeartbeatRequest, Pb.BrokerHeartbeatResponse__Output>, request);
  }

  alterPartition(request: Pb.AlterPartitionRequest): Promise<Pb.AlterPartitionResponse__Output> {
    return this.call((client) => client.alterPartition.bind(client) as Unary<Pb.AlterPartitionRequest, Pb.AlterPartitionResponse__Output>, request);
  }

  createTopics(request: Pb.ControllerCreateTopicsRequest): Promise<Pb.ControllerCreateTopicsResponse__Output> {
    return this.call(
      (client) => client.createTopics.bind(client) as Unary<Pb.ControllerCreateTopicsRequest, Pb.ControllerCreateTopicsResponse__Output>,
      request,
    );
  }

  createPartitions(request: Pb.ControllerCreatePartitionsRequest): Promise<Pb.ControllerCreatePartitionsResponse__Output> {
    return this.call(
      (client) => client.createPartitions.bind(client) as Unary<Pb.ControllerCreatePartitionsRequest, Pb.ControllerCreatePartitionsResponse__Output>,
      request,
    );
  }

  deleteTopics(request: Pb.ControllerDeleteTopicsRequest): Promise<Pb.ControllerDeleteTopicsResponse__Output> {
    return this.call(
      (client) => client.deleteTopics.bind(client) as Unary<Pb.ControllerDeleteTopicsRequest, Pb.ControllerDeleteTopicsResponse__Output>,
      request,
    );
  }

  describeQuorum(): Promise<Pb.DescribeQuorumResponse__Output> {
    return this.call((client) => client.describeQuorum.bind(client) as Unary<Pb.DescribeQuorumRequest, Pb.DescribeQuorumResponse__Output>, {});
  }

  addRaftVoter(request: Pb.AddRaftVoterRequest): Promise<Pb.RaftVoterChangeResponse__Output> {
    return this.call((client) => client.addRaftVoter.bind(client) as Unary<Pb.AddRaftVoterRequest, Pb.RaftVoterChangeResponse__Output>, request);
  }

  removeRaftVoter(request: Pb.RemoveRaftVoterRequest): Promise<Pb.RaftVoterChangeResponse__Output> {
    return this.call((client) => client.removeRaftVoter.bind(client) as Unary<Pb.RemoveRaftVoterRequest, Pb.RaftVoterChangeResponse__Output>, request);
  }

  electLeaders(): Promise<Pb.ElectLeadersResponse__Output> {
    return this.call((client) => client.electLeaders.bind(client) as Unary<Pb.ElectLeadersRequest, Pb.ElectLeadersResponse__Output>, {});
  }

  electPartitionLeaders(request: Pb.ElectPartitionLeadersRequest): Promise<Pb.ElectPartitionLeadersResponse__Output> {
    return this.call(
      (client) => client.electPartitionLeaders.bind(client) as Unary<Pb.ElectPartitionLeadersRequest, Pb.ElectPartitionLeadersResponse__Output>,
      request,
    );
  }

  alterPartitionReassignments(request: Pb.ControllerAlterReassignmentsRequest): Promise<Pb.ControllerAlterReassignmentsResponse__Output> {
    return this.call(
      (client) => client.alterPartitionReassignments.bind(client) as Unary<Pb.ControllerAlterReassignmentsRequest, Pb.ControllerAlterReassignmentsResponse__Output>,
      request,
    );
  }

  rebalanceReplicas(request: Pb.ControllerRebalanceReplicasRequest): Promise<Pb.ControllerRebalanceReplicasResponse__Output> {
    return this.call((client) => client.rebalanceReplicas.bind(client) as Unary<Pb.ControllerRebalanceReplicasRequest, Pb.ControllerRebalanceReplicasResponse__Output>, request);
  }

  decommissionBroker(request: Pb.ControllerDecommissionBrokerRequest): Promise<Pb.ControllerDecommissionBrokerResponse__Output> {
    return this.call((client) => client.decommissionBroker.bind(client) as Unary<Pb.ControllerDecommissionBrokerRequest, Pb.ControllerDecommissionBrokerResponse__Output>, request);
  }

  listPartitionReassignments(request: Pb.ControllerListReassignmentsRequest): Promise<Pb.ControllerListReassignmentsResponse__Output> {
    return this.call(
      (client) => client.listPartitionReassignments.bind(client) as Unary<Pb.ControllerListReassignmentsRequest, Pb.ControllerListReassignmentsResponse__Output>,
      request,
    );
  }

  incrementalAlterConfigs(request: Pb.ControllerIncrementalAlterConfigsRequest): Promise<Pb.ControllerIncrementalAlterConfigsResponse__Output> {
    return this.call(
      (client) => client.incrementalAlterConfigs.bind(client) as Unary<Pb.ControllerIncrementalAlterConfigsRequest, Pb.ControllerIncrementalAlterConfigsResponse__Output>,
      request,
    );
  }

  /** Follows the metadata log from one member (any member serves it; default the current guess). */
  fetchMetadata(fromOffset: number, nodeId: number = this.controllerId): grpc.ClientReadableStream<Pb.MetadataUpdate__Output> {
    return this.client(nodeId).fetchMetadata({ fromOffset });
  }

  /** The raw gRPC client of one member (no redirection). */
  client(nodeId: number): Pb.ControllerApiClient {
    let client = this.clients.get(nodeId);
    if (client === undefined) {
      const address = this.addresses.get(nodeId);
      if (address === undefined) throw new Error(`ControllerClient: unknown controller ${nodeId}`);
      const Constructor = loadControllerProto().runnel.v1.ControllerApi;
      // A restarted controller is reachable again within a second, not after grpc-js's default
      // reconnect backoff (which grows to minutes).
      client = new Constructor(address, grpc.credentials.createInsecure(), {
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 1_000,
      });
      this.clients.set(nodeId, client);
    }
    return client;
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  private async call<Req, Res extends { errorCode: number; errorMessage: string; controllerId: number }>(
    method: (client: Pb.ControllerApiClient) => Unary<Req, Res>,
    request: Req,
  ): Promise<Res> {
    const rpcTimeoutMs = this.options.rpcTimeoutMs ?? 2000;
    const deadline = Date.now() + (this.options.callTimeoutMs ?? 10_000);
    const maxAttempts = this.options.maxAttempts ?? 100;
    let backoff = this.options.initialBackoffMs ?? 20;
    const maxBackoff = this.options.maxBackoffMs ?? 500;
    let last = 'no attempt';
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      const target = this.controllerId;
      let wait = true;
      try {
        const response = await new Promise<Res>((resolve, reject) => {
          method(this.client(target))(request, { deadline: Math.min(deadline, Date.now() + rpcTimeoutMs) }, (error, value) =>
            error || value === undefined ? reject(error ?? new Error('no response')) : resolve(value),
          );
        });
        if (response.errorCode !== NOT_CONTROLLER) return response;
        last = `${target}: ${response.errorMessage}`;
        if (response.controllerId >= 0 && response.controllerId !== target && !this.addresses.has(response.controllerId)) {
          await this.learnAddress(target, response.controllerId, (response as { controllerAddress?: string }).controllerAddress);
        }
        if (response.controllerId !== target && this.addresses.has(response.controllerId)) {
          // Redirected to a member it names: go there now, unless we keep bouncing.
          this.controllerId = response.controllerId;
          wait = attempt > 1;
        } else if (response.controllerId !== target) {
          this.controllerId = this.nextId(target);
        }
        // Else it calls itself the leader but is not active yet: wait, then ask it again.
      } catch (error) {
        last = `${target}: ${(error as Error).message}`;
        this.controllerId = this.nextId(target);
      }
      if (Date.now() >= deadline) break;
      if (wait) {
        await new Promise((resolve) => setTimeout(resolve, Math.min(backoff, Math.max(0, deadline - Date.now()))));
        backoff = Math.min(maxBackoff, backoff * 2);
      }
    }
    throw new ControllerUnavailableError(last);
  }

  /**
   * Learns where controller `leaderId` listens: from the redirecting answer, or by asking member
   * `from` (DescribeQuorum answers NOT_CONTROLLER with the leader's address). A voter added to the
   * quorum after this node's config was written is known only that way.
   */
  private async learnAddress(from: number, leaderId: number, address: string | undefined): Promise<void> {
    let learned = address ?? '';
    if (learned === '') {
      learned = await new Promise<string>((resolve) => {
        this.client(from).describeQuorum({}, { deadline: Date.now() + (this.options.rpcTimeoutMs ?? 2000) }, (error, value) =>
          resolve(error || value === undefined || value.controllerId !== leaderId ? '' : value.controllerAddress),
        );
      });
    }
    if (learned !== '') this.addresses.set(leaderId, learned);
  }

  private nextId(id: number): number {
    const k = this.ids.indexOf(id);
    return this.ids[(k + 1) % this.ids.length]!;
  }
}

/** Applies one MetadataUpdate to a follower's image (a snapshot replaces it). */
export function applyMetadataUpdate(image: MetadataImage, update: Pb.MetadataUpdate__Output): MetadataImage {
  const entries = update.records.map((entry) => ({ offset: Number(entry.offset), record: decodeRecord(entry.record) }));
  if (update.snapshot) return MetadataImage.fromSnapshotRecords(entries, Number(update.offset));
  if (entries.length === 0) return image;
  return image.applyAll(
    entries.map((entry) => entry.record),
    entries[0]!.offset,
  );
}

/** The heartbeat's log_dir_state: empty (an older broker) leaves the recorded state as it is. */
function logDirStateOf(value: unknown): { logDir?: LogDirState } {
  if (value === undefined || value === null || value === '') return {};
  if (!LOG_DIR_STATES.includes(value as LogDirState)) throw new InvalidRequestError(`log_dir_state must be one of ${LOG_DIR_STATES.join(', ')}, got ${JSON.stringify(value)}`);
  return { logDir: value as LogDirState };
}
