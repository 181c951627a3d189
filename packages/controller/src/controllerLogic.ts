// The decisions of the active controller (KRaft's QuorumController, ReplicationControlManager and
// ClusterControlManager), as pure functions: each takes the current image, a request and the time,
// and returns the records to append plus the response. Nothing here mutates an image, writes a log
// or reads a clock. The one piece of state is BrokerSessions (heartbeats, controlled shutdown),
// which KRaft also keeps out of the log.
//
// Contract with the caller (the QuorumController shell): append the returned records to the
// metadata log as one batch, and apply them to the image passed to the next call (the controller's
// latest, possibly uncommitted, image — as KRaft does), so every decision sees the previous ones.
// Before they are returned, the records have been applied to a scratch copy of the image: a record
// that breaks an invariant fails here, in the controller, not on every broker.

import {
  DEFAULT_LEADER_IMBALANCE_PER_BROKER_PERCENTAGE,
  electPreferredLeaders,
  planReassignment,
  type PreferredElectionResult,
  type ReassignmentPlan,
  type ReplicaMovePlan,
} from './balancer.js';
import { alterDynamicConfigs, type IncrementalAlterConfigsRequest, type IncrementalAlterConfigsResponse } from './dynamicConfig.js';
import { buildPartitionChange, reassignmentTo, revertedAssignment, type Election } from './election.js';
import { CONTROLLER_ERRORS, NO_ERROR, apiError, type ApiError } from './errors.js';
import { MetadataImage, NO_LEADER, isMoving, originalReplicas, targetReplicas, type PartitionRef, type PartitionState } from './image.js';
import { PlacementError, placeTopic, type PlacementBroker } from './placement.js';
import type { Random } from './random.js';
import type { Listener, LogDirState, MetadataRecord, PartitionRecord } from './records.js';
import { BrokerSessions } from './sessions.js';
import { UNCLEAN_LEADER_ELECTION_ENABLE, collisionKey, validateTopicConfigs, validateTopicName } from './topicConfig.js';

export interface ControllerConfig {
  /** num.partitions: partitions of a topic created with numPartitions -1. */
  readonly defaultNumPartitions: number;
  /** default.replication.factor: replication factor of a topic created with -1. */
  readonly defaultReplicationFactor: number;
  /** delete.topic.enable */
  readonly deleteTopicEnable: boolean;
  /** unclean.leader.election.enable, the default for topics that do not set it. */
  readonly uncleanLeaderElectionEnable: boolean;
  /** leader.imbalance.per.broker.percentage */
  readonly leaderImbalancePerBrokerPercentage: number;
  /** A limit on partitions per topic, and on partitions added by one CreateTopics or CreatePartitions request. */
  readonly partitionsPerRequestMax: number;
  /** auto.replica.rebalance.enable: a broker that joins gets its share of replicas (rebalanceReplicas) by itself. */
  readonly autoReplicaRebalanceEnable: boolean;
}

export const DEFAULT_CONTROLLER_CONFIG: ControllerConfig = Object.freeze({
  defaultNumPartitions: 1,
  defaultReplicationFactor: 1,
  deleteTopicEnable: true,
  uncleanLeaderElectionEnable: false,
  leaderImbalancePerBrokerPercentage: DEFAULT_LEADER_IMBALANCE_PER_BROKER_PERCENTAGE,
  partitionsPerRequestMax: 100_000,
  autoReplicaRebalanceEnable: false,
});

export interface ControllerResult<T> {
  readonly records: readonly MetadataRecord[];
  readonly response: T;
}

// --- requests and responses -------------------------------------------------------------------

export interface RegisterBrokerRequest {
  readonly brokerId: number;
  /** A new random id per process start. */
  readonly incarnationId: string;
  readonly listeners: readonly Listener[];
  readonly rack?: string | null;
}

/**
 * The broker epoch is the offset the RegisterBroker record lands at: the shell answers the broker
 * once the record is committed, with `image.broker(brokerId).epoch`. A retry from the same
 * incarnation produces no record; the epoch is the existing one.
 */
export type RegisterBrokerResponse = ApiError;

export interface BrokerHeartbeatRequest {
  readonly brokerId: number;
  readonly brokerEpoch: number;
  /** The highest metadata offset the broker has applied. */
  readonly currentMetadataOffset: number;
  /** The broker asks to stay fenced (it is still recovering its logs). */
  readonly wantFence?: boolean;
  /** The broker asks for a controlled shutdown. */
  readonly wantShutDown?: boolean;
  /**
   * Every replica the broker cannot serve (its log failed, or it could not take its role), each
   * heartbeat the whole set (KIP-858's offline log directories, per replica).
   */
  readonly offlineReplicas?: readonly OfflineReplicaReport[];
  /** The broker's log directory now (absent: not reported, the recorded state stands). */
  readonly logDir?: LogDirState;
}

/** One replica a broker reports offline. */
export interface OfflineReplicaReport {
  readonly topicId: string;
  readonly partition: number;
}

export interface BrokerHeartbeatResponse extends ApiError {
  readonly isCaughtUp: boolean;
  readonly isFenced: boolean;
  readonly inControlledShutdown: boolean;
  readonly shouldShutDown: boolean;
}

export interface CreatableTopic {
  readonly name: string;
  /** -1 (the default) for num.partitions */
  readonly numPartitions?: number;
  /** -1 (the default) for default.replication.factor */
  readonly replicationFactor?: number;
  readonly configs?: Readonly<Record<string, string>>;
}

export interface CreateTopicsRequest {
  readonly topics: readonly CreatableTopic[];
  readonly validateOnly?: boolean;
}

export interface CreateTopicResult extends ApiError {
  readonly name: string;
  readonly topicId: string | null;
  readonly numPartitions: number;
  readonly replicationFactor: number;
}

/** Grow a topic to `count` partitions (Kafka's CreatePartitionsTopic). */
export interface PartitionsToCreate {
  readonly name: string;
  /** The new total number of partitions, more than the topic has. */
  readonly count: number;
  /**
   * The replicas of each new partition in order, preferred leader first (count - current lists);
   * absent or null: the controller places them as it places a new topic's.
   */
  readonly assignments?: readonly (readonly number[])[] | null;
}

export interface CreatePartitionsRequest {
  readonly topics: readonly PartitionsToCreate[];
  readonly validateOnly?: boolean;
}

export interface CreatePartitionsResult extends ApiError {
  readonly name: string;
}

export interface DeleteTopicsRequest {
  readonly topics: readonly string[];
}

export interface DeleteTopicResult extends ApiError {
  readonly name: string;
  readonly topicId: string | null;
}

export interface IsrMember {
  readonly brokerId: number;
  /** -1 skips the broker epoch check. */
  readonly brokerEpoch: number;
}

export interface AlterPartitionItem {
  readonly topic: string;
  /** When given, a topic of that name with another id is UNKNOWN_TOPIC_ID (a deleted and re-created topic). */
  readonly topicId?: string;
  readonly partition: number;
  readonly leaderEpoch: number;
  readonly partitionEpoch: number;
  readonly newIsr: readonly (number | IsrMember)[];
}

export interface AlterPartitionRequest {
  readonly brokerId: number;
  readonly brokerEpoch: number;
  readonly partitions: readonly AlterPartitionItem[];
}

export interface AlterPartitionResult extends ApiError {
  readonly topic: string;
  readonly partition: number;
  /** The partition state after the change (on success). */
  readonly leader?: number;
  readonly isr?: readonly number[];
  readonly leaderEpoch?: number;
  readonly partitionEpoch?: number;
}

export interface AlterPartitionResponse extends ApiError {
  readonly partitions: readonly AlterPartitionResult[];
}

/** Kafka's ElectionType: 0 preferred (replicas[0]), 1 unclean (any live replica, for a partition without a leader). */
export type ElectionType = 'preferred' | 'unclean';

export interface ElectLeadersRequest {
  readonly electionType: ElectionType;
  /** The partitions to elect, by topic; null for every partition (results then leave out ELECTION_NOT_NEEDED, as Kafka does). */
  readonly topics: ReadonlyArray<{ readonly topic: string; readonly partitions: readonly number[] }> | null;
}

export interface PartitionElectionResult extends ApiError {
  readonly partition: number;
}

export interface ElectLeadersResponse {
  readonly topics: ReadonlyArray<{ readonly topic: string; readonly partitions: readonly PartitionElectionResult[] }>;
}

/** One partition of an AlterPartitionReassignments request: a new target, or null to cancel its move. */
export interface ReassignablePartition {
  readonly topic: string;
  readonly partition: number;
  readonly replicas: readonly number[] | null;
}

export interface AlterPartitionReassignmentsRequest {
  readonly partitions: readonly ReassignablePartition[];
}

export interface ReassignmentResult extends ApiError {
  readonly topic: string;
  readonly partition: number;
}

export interface AlterPartitionReassignmentsResponse {
  readonly partitions: readonly ReassignmentResult[];
}

/** A partition that is moving, as ListPartitionReassignments answers it. */
export interface OngoingReassignment {
  readonly topic: string;
  readonly partition: number;
  /** target followed by the replicas being removed */
  readonly replicas: readonly number[];
  readonly addingReplicas: readonly number[];
  readonly removingReplicas: readonly number[];
  /** Context for progress: where the move stands now. */
  readonly targetReplicas: readonly number[];
  readonly originalReplicas: readonly number[];
  readonly isr: readonly number[];
  readonly leader: number;
}

export interface ListPartitionReassignmentsResponse extends ApiError {
  readonly reassignments: readonly OngoingReassignment[];
}

export interface FenceExpiredResponse {
  readonly fenced: readonly number[];
}

// --- replica balance and broker decommission ----------------------------------------------------

export interface RebalanceReplicasRequest {
  /** Plan only: nothing is written. */
  readonly dryRun?: boolean;
}

/** One broker's replica and preferred-leader counts before and after a plan. */
export interface BrokerBalance {
  readonly brokerId: number;
  readonly replicasBefore: number;
  readonly replicasAfter: number;
  readonly preferredBefore: number;
  readonly preferredAfter: number;
}

export interface RebalanceReplicasResponse extends ApiError {
  /** The planned moves (from → to replica lists); empty when the replicas are already balanced. */
  readonly moves: readonly ReplicaMovePlan[];
  readonly brokers: readonly BrokerBalance[];
  /** Partitions with a replica on a decommissioned broker that no usable broker can take. */
  readonly unplaceable: readonly PartitionRef[];
  /** Per move, whether its reassignment started (empty on a dry run or an error). */
  readonly started: readonly ReassignmentResult[];
}

export interface BrokerDecommissionResponse extends ApiError {
  /** Partitions with a replica on the broker (including ones already moving off it). */
  readonly replicasLeft: number;
  /** Decommission: the moves started or replaced now. Recommission: the moves cancelled. */
  readonly moves: readonly ReassignmentResult[];
  /** Decommission: partitions that no usable broker can take now (retried by the controller). */
  readonly unplaceable: readonly PartitionRef[];
}

/** What `autoRebalanceReplicas` did for the brokers that joined. */
export interface AutoRebalanceDecision {
  /** 'started' a rebalance; 'balanced' (nothing to move); 'waiting' (retry later); 'disabled'. */
  readonly outcome: 'started' | 'balanced' | 'waiting' | 'disabled';
  readonly reason: string;
  readonly rebalance: RebalanceReplicasResponse | null;
}

// --- the logic ----------------------------------------------------------------------------------

/** Records accumulated by one decision, applied as they go to a scratch image. */
class Work {
  readonly records: MetadataRecord[] = [];

  constructor(public image: MetadataImage) {}

  add(records: readonly MetadataRecord[]): void {
    if (records.length === 0) return;
    this.image = this.image.applyAll(records, this.image.highestOffset + 1);
    this.records.push(...records);
  }

  result<T>(response: T): ControllerResult<T> {
    return { records: this.records, response };
  }
}

export interface ControllerLogicOptions {
  readonly sessions: BrokerSessions;
  readonly random: Random;
  readonly config?: Partial<ControllerConfig>;
}

const MAX_INT32 = 2 ** 31 - 1;

export class ControllerLogic {
  readonly sessions: BrokerSessions;
  readonly config: ControllerConfig;
  private readonly random: Random;

  constructor(options: ControllerLogicOptions) {
    this.sessions = options.sessions;
    this.random = options.random;
    this.config = { ...DEFAULT_CONTROLLER_CONFIG, ...options.config };
  }

  /** Registered, unfenced and not in controlled shutdown: may lead, join an ISR, get new replicas. */
  isActive(image: MetadataImage, brokerId: number): boolean {
    const broker = image.broker(brokerId);
    return broker !== undefined && !broker.fenced && !this.sessions.inControlledShutdown(brokerId);
  }

  /** Active, and its replica of the partition is not offline: may lead the partition or be in its ISR. */
  canServe(image: MetadataImage, brokerId: number, state: PartitionState): boolean {
    return this.isActive(image, brokerId) && !image.isReplicaOffline(brokerId, state.topicId, state.partition);
  }

  /**
   * The brokers new replicas may go to: active, with an online log directory. A replica placed on a
   * full or failed directory would go offline at its first write (or never open).
   */
  usableBrokers(image: MetadataImage): PlacementBroker[] {
    return image
      .brokers()
      .filter((broker) => this.isActive(image, broker.id) && broker.logDir === 'online' && !broker.decommissioned)
      .map((broker) => ({ id: broker.id, rack: broker.rack }));
  }

  /** Active brokers that get no new replicas because of their log directory, e.g. "1 (log directory full)". */
  private brokersWithLogDirTrouble(image: MetadataImage): string[] {
    return image
      .brokers()
      .filter((broker) => this.isActive(image, broker.id) && broker.logDir !== 'online' && !broker.decommissioned)
      .map((broker) => `${broker.id} (log directory ${broker.logDir})`);
  }

  uncleanElectionAllowed(image: MetadataImage, topicName: string): boolean {
    const value = image.topicConfigs(topicName).get(UNCLEAN_LEADER_ELECTION_ENABLE) ?? image.config('cluster', '').get(UNCLEAN_LEADER_ELECTION_ENABLE);
    return value === undefined ? this.config.uncleanLeaderElectionEnable : value === 'true';
  }

  private electionFor(image: MetadataImage, topicName: string): Election {
    return this.uncleanElectionAllowed(image, topicName) ? 'unclean' : 'online';
  }

  /**
   * Takes `brokerId` out of every ISR it is in (kept when it is the last member) and moves its
   * leadership to another acceptable ISR member (or none). `excluded` brokers may not lead either.
   */
  private leaveIsrs(image: MetadataImage, brokerId: number, excluded: ReadonlySet<number> = new Set()): MetadataRecord[] {
    const records: MetadataRecord[] = [];
    for (const { topic, state } of image.allPartitions()) {
      if (!state.isr.includes(brokerId)) continue;
      const record = buildPartitionChange(state, {
        targetIsr: state.isr.filter((id) => id !== brokerId),
        election: this.electionFor(image, topic.name),
        isAcceptableLeader: (id) => id !== brokerId && !excluded.has(id) && this.canServe(image, id, state),
      });
      if (record !== null) records.push(record);
    }
    return records;
  }

  private fence(work: Work, brokerId: number, excluded?: ReadonlySet<number>): void {
    work.add(this.leaveIsrs(work.image, brokerId, excluded));
    const broker = work.image.broker(brokerId)!;
    if (!broker.fenced) work.add([{ type: 'FenceBroker', brokerId, brokerEpoch: broker.epoch }]);
    this.sessions.onFenced(brokerId);
  }

  private unfence(work: Work, brokerId: number): void {
    work.add([{ type: 'UnfenceBroker', brokerId, brokerEpoch: work.image.broker(brokerId)!.epoch }]);
    // Partitions without a leader may now have one (KRaft's handleBrokerUnfenced).
    const records: MetadataRecord[] = [];
    const image = work.image;
    for (const { topic, state } of image.allPartitions()) {
      if (state.leader !== NO_LEADER) continue;
      const record = buildPartitionChange(state, {
        election: this.electionFor(image, topic.name),
        isAcceptableLeader: (id) => this.canServe(image, id, state),
      });
      if (record !== null) records.push(record);
    }
    work.add(records);
  }

  /**
   * Records each replica a broker reports offline that is not recorded yet (KIP-858): first its
   * leadership moves to another ISR member that can serve (or none) and it leaves the ISR (unless it
   * is the last member), then ReplicaOffline. Replicas of unknown topics or partitions, or of
   * partitions the broker does not host (a deleted topic, a stale report), are ignored: the broker
   * learns from the metadata that it no longer has them.
   */
  private recordOfflineReplicas(work: Work, brokerId: number, reports: readonly OfflineReplicaReport[]): void {
    for (const report of reports) {
      const topic = work.image.topicById(report.topicId);
      const state = topic?.partition(report.partition);
      if (topic === undefined || state === undefined || !state.replicas.includes(brokerId)) continue;
      if (work.image.isReplicaOffline(brokerId, report.topicId, report.partition)) continue;
      const image = work.image;
      const change = buildPartitionChange(state, {
        targetIsr: state.isr.filter((id) => id !== brokerId),
        election: this.electionFor(image, topic.name),
        isAcceptableLeader: (id) => id !== brokerId && this.canServe(image, id, state),
      });
      if (change !== null) work.add([change]);
      // The change may have completed a move that removed this replica: the broker deletes it, so
      // there is nothing offline to record.
      if (!work.image.topicById(report.topicId)!.partition(report.partition)!.replicas.includes(brokerId)) continue;
      work.add([{ type: 'ReplicaOffline', brokerId, brokerEpoch: image.broker(brokerId)!.epoch, topicId: report.topicId, partition: report.partition }]);
    }
  }

  registerBroker(image: MetadataImage, request: RegisterBrokerRequest, nowMs: number): ControllerResult<RegisterBrokerResponse> {
    const work = new Work(image);
    const problem = invalidRegistration(request);
    if (problem !== null) return work.result(apiError('INVALID_REQUEST', problem));
    const existing = image.broker(request.brokerId);
    if (existing !== undefined && existing.incarnationId === request.incarnationId) {
      this.sessions.touch(request.brokerId, nowMs);
      return work.result(NO_ERROR);
    }
    if (existing !== undefined && !existing.fenced && !this.sessions.sessionExpired(request.brokerId, nowMs)) {
      return work.result(
        apiError('DUPLICATE_BROKER_REGISTRATION', `broker ${request.brokerId} is registered by incarnation ${existing.incarnationId}, whose session is still live`),
      );
    }
    // A new incarnation may have lost what it had not flushed: it leaves every ISR it can leave and
    // gives up leadership before its new registration (which fences it) is written.
    if (existing !== undefined) work.add(this.leaveIsrs(image, request.brokerId));
    work.add([
      {
        type: 'RegisterBroker',
        brokerId: request.brokerId,
        incarnationId: request.incarnationId,
        listeners: request.listeners.map((listener) => ({ name: listener.name, host: listener.host, port: listener.port })),
        rack: request.rack ?? null,
      },
    ]);
    this.sessions.register(request.brokerId, nowMs);
    return work.result(NO_ERROR);
  }

  /**
   * A heartbeat: keeps the session alive; unfences a fenced broker once it has applied the metadata
   * log up to its own registration; drives controlled shutdown (KRaft's BrokerHeartbeatManager).
   */
  brokerHeartbeat(image: MetadataImage, request: BrokerHeartbeatRequest, nowMs: number): ControllerResult<BrokerHeartbeatResponse> {
    const work = new Work(image);
    const broker = image.broker(request.brokerId);
    if (broker === undefined || broker.epoch !== request.brokerEpoch) {
      const detail = broker === undefined ? `no registration for broker ${request.brokerId}` : `expected broker epoch ${broker.epoch}, got ${request.brokerEpoch}`;
      return work.result({ ...apiError('STALE_BROKER_EPOCH', detail), isCaughtUp: false, isFenced: true, inControlledShutdown: false, shouldShutDown: false });
    }
    const id = request.brokerId;
    this.sessions.touch(id, nowMs, request.currentMetadataOffset);
    // First, so that whatever this heartbeat elects (unfencing) already avoids the offline replicas.
    if (request.offlineReplicas !== undefined) this.recordOfflineReplicas(work, id, request.offlineReplicas);
    // Recorded on change only: the state is in every heartbeat, the metadata log holds its transitions.
    if (request.logDir !== undefined && request.logDir !== broker.logDir) work.add([{ type: 'BrokerLogDir', brokerId: id, brokerEpoch: broker.epoch, state: request.logDir }]);
    const isCaughtUp = request.currentMetadataOffset >= broker.epoch;
    let shouldShutDown = false;
    if (broker.fenced) {
      if (request.wantShutDown === true) shouldShutDown = true;
      else if (request.wantFence !== true && isCaughtUp) this.unfence(work, id);
    } else if (this.sessions.inControlledShutdown(id)) {
      shouldShutDown = this.maybeFinishControlledShutdown(work, id);
    } else if (request.wantFence === true) {
      this.fence(work, id);
      shouldShutDown = request.wantShutDown === true;
    } else if (request.wantShutDown === true) {
      this.sessions.beginControlledShutdown(id, nowMs);
      work.add(this.leaveIsrs(work.image, id));
    }
    return work.result({
      ...NO_ERROR,
      isCaughtUp,
      isFenced: work.image.broker(id)!.fenced,
      inControlledShutdown: this.sessions.inControlledShutdown(id),
      shouldShutDown,
    });
  }

  /** A heartbeat asking for a controlled shutdown: the first one moves leadership off the broker. */
  controlledShutdown(
    image: MetadataImage,
    request: Omit<BrokerHeartbeatRequest, 'wantShutDown' | 'wantFence'>,
    nowMs: number,
  ): ControllerResult<BrokerHeartbeatResponse> {
    return this.brokerHeartbeat(image, { ...request, wantShutDown: true }, nowMs);
  }

  /**
   * A broker in controlled shutdown may stop once it leads nothing and every active broker has
   * applied the metadata up to the point where it led nothing (so the new leaders have taken over).
   */
  private maybeFinishControlledShutdown(work: Work, brokerId: number): boolean {
    if (work.image.leaderCount(brokerId) > 0) work.add(this.leaveIsrs(work.image, brokerId));
    if (work.image.leaderCount(brokerId) > 0) return false;
    let target = this.sessions.controlledShutdownOffset(brokerId);
    if (target === null) {
      target = work.image.highestOffset;
      this.sessions.setControlledShutdownOffset(brokerId, target);
    }
    let lowest = Number.POSITIVE_INFINITY;
    for (const broker of work.image.brokers()) {
      if (broker.id !== brokerId && this.isActive(work.image, broker.id)) lowest = Math.min(lowest, this.sessions.metadataOffset(broker.id));
    }
    if (lowest < target) return false;
    this.fence(work, brokerId);
    return true;
  }

  /** Fences every unfenced broker whose session expired; their partitions get new leaders. */
  fenceExpiredBrokers(image: MetadataImage, nowMs: number): ControllerResult<FenceExpiredResponse> {
    const work = new Work(image);
    const expired = this.sessions.expiredBrokers(image, nowMs);
    const excluded = new Set(expired);
    for (const brokerId of expired) this.fence(work, brokerId, excluded);
    return work.result({ fenced: expired });
  }

  createTopics(image: MetadataImage, request: CreateTopicsRequest): ControllerResult<{ readonly topics: readonly CreateTopicResult[] }> {
    const work = new Work(image);
    const results: CreateTopicResult[] = [];
    const counts = new Map<string, number>();
    for (const topic of request.topics) counts.set(topic.name, (counts.get(topic.name) ?? 0) + 1);
    let partitionsBudget = this.config.partitionsPerRequestMax;
    for (const topic of request.topics) {
      const numPartitions = topic.numPartitions === undefined || topic.numPartitions === -1 ? this.config.defaultNumPartitions : topic.numPartitions;
      const replicationFactor =
        topic.replicationFactor === undefined || topic.replicationFactor === -1 ? this.config.defaultReplicationFactor : topic.replicationFactor;
      const failed = (error: ApiError): void => {
        results.push({ ...error, name: topic.name, topicId: null, numPartitions, replicationFactor });
      };
      if (counts.get(topic.name)! > 1) {
        failed(apiError('INVALID_REQUEST', `topic '${topic.name}' appears more than once in the request`));
        continue;
      }
      const created = this.createTopic(work.image, topic.name, numPartitions, replicationFactor, topic.configs ?? {}, partitionsBudget);
      if ('errorCode' in created) {
        failed(created);
        continue;
      }
      partitionsBudget -= numPartitions;
      if (request.validateOnly !== true) work.add(created.records);
      results.push({ ...NO_ERROR, name: topic.name, topicId: request.validateOnly === true ? null : created.topicId, numPartitions, replicationFactor });
    }
    return work.result({ topics: results });
  }

  private createTopic(
    image: MetadataImage,
    name: string,
    numPartitions: number,
    replicationFactor: number,
    configs: Readonly<Record<string, string>>,
    partitionsBudget: number,
  ): ApiError | { readonly topicId: string; readonly records: readonly MetadataRecord[] } {
    const nameProblem = validateTopicName(name);
    if (nameProblem !== null) return apiError('INVALID_TOPIC_EXCEPTION', nameProblem);
    if (image.topic(name) !== undefined) return apiError('TOPIC_ALREADY_EXISTS', `topic '${name}' already exists`);
    if (!Number.isSafeInteger(numPartitions) || numPartitions < 1) {
      return apiError('INVALID_PARTITIONS', `number of partitions must be at least 1 (or -1 for the default), got ${numPartitions}`);
    }
    if (numPartitions > partitionsBudget) {
      return apiError('INVALID_PARTITIONS', `${numPartitions} partitions is over the limit of ${partitionsBudget} left in this request`);
    }
    if (!Number.isSafeInteger(replicationFactor) || replicationFactor < 1) {
      return apiError('INVALID_REPLICATION_FACTOR', `replication factor must be at least 1 (or -1 for the default), got ${replicationFactor}`);
    }
    const configProblem = validateTopicConfigs(configs);
    if (configProblem !== null) return apiError('INVALID_CONFIG', configProblem);
    const collision = image.topics().find((existing) => collisionKey(existing.name) === collisionKey(name));
    if (collision !== undefined) {
      return apiError('INVALID_TOPIC_EXCEPTION', `topic '${name}' collides with existing topic '${collision.name}' ('.' and '_' are the same in metric names)`);
    }
    const placement = this.place(image, numPartitions, replicationFactor, 0);
    if (!Array.isArray(placement)) return placement;
    const topicId = this.newTopicId(image);
    const records: MetadataRecord[] = [{ type: 'Topic', name, topicId }];
    for (const key of Object.keys(configs).sort()) {
      records.push({ type: 'Config', resourceType: 'topic', resourceName: name, name: key, value: configs[key]! });
    }
    placement.forEach((replicas, partition) => records.push(newPartitionRecord(topicId, partition, replicas, replicas)));
    return { topicId, records };
  }

  /**
   * Replica lists for `count` new partitions numbered from `startPartition`, placed rack-aware over
   * the usable brokers (placement.ts); an error naming why when there are too few of them.
   */
  private place(image: MetadataImage, count: number, replicationFactor: number, startPartition: number): number[][] | ApiError {
    try {
      return placeTopic(this.usableBrokers(image), count, replicationFactor, this.random, { startPartition });
    } catch (error) {
      if (!(error instanceof PlacementError)) throw error;
      const trouble = this.brokersWithLogDirTrouble(image);
      const excluded = trouble.length === 0 ? '' : `; broker(s) ${trouble.join(', ')} get no new replicas until their log directory is online again`;
      const decommissioned = [...this.decommissionedBrokers(image)];
      const left = decommissioned.length === 0 ? '' : `; broker(s) ${decommissioned.join(', ')} are decommissioned`;
      return apiError(error.errorName, `unable to replicate the partition ${replicationFactor} time(s): ${error.message}${excluded}${left}`);
    }
  }

  /**
   * Grows topics (KRaft's ReplicationControlManager.createPartitions, with ControllerApis' duplicate
   * check): each topic independently gets Partition records for indexes current..count-1, placed by
   * the controller with the topic's replication factor (that of its partition 0), or as the request
   * assigns them. A topic never shrinks: partition indexes are how keys map to partitions, and the
   * records of removed ones would be lost.
   */
  createPartitions(image: MetadataImage, request: CreatePartitionsRequest): ControllerResult<{ readonly topics: readonly CreatePartitionsResult[] }> {
    const work = new Work(image);
    const counts = new Map<string, number>();
    for (const topic of request.topics) counts.set(topic.name, (counts.get(topic.name) ?? 0) + 1);
    let partitionsBudget = this.config.partitionsPerRequestMax;
    const results = request.topics.map((topic): CreatePartitionsResult => {
      if (counts.get(topic.name)! > 1) return { ...apiError('INVALID_REQUEST', `topic '${topic.name}' appears more than once in the request`), name: topic.name };
      const added = this.partitionsToAdd(work.image, topic, partitionsBudget);
      if (!Array.isArray(added)) return { ...added, name: topic.name };
      partitionsBudget -= added.length;
      if (request.validateOnly !== true) work.add(added);
      return { ...NO_ERROR, name: topic.name };
    });
    return work.result({ topics: results });
  }

  private partitionsToAdd(image: MetadataImage, request: PartitionsToCreate, partitionsBudget: number): PartitionRecord[] | ApiError {
    const topic = image.topic(request.name);
    if (topic === undefined) return apiError('UNKNOWN_TOPIC_OR_PARTITION', `no topic named '${request.name}'`);
    const current = topic.partitionCount;
    if (!Number.isSafeInteger(request.count) || request.count > MAX_INT32) return apiError('INVALID_PARTITIONS', `invalid partition count ${request.count}`);
    if (request.count === current) return apiError('INVALID_PARTITIONS', `the topic already has ${current} partition(s)`);
    if (request.count < current) {
      return apiError('INVALID_PARTITIONS', `the topic currently has ${current} partition(s); ${request.count} would not be an increase (partitions cannot be removed)`);
    }
    if (request.count > this.config.partitionsPerRequestMax) {
      return apiError('INVALID_PARTITIONS', `${request.count} partitions is over the limit of ${this.config.partitionsPerRequestMax} per topic`);
    }
    const additional = request.count - current;
    if (additional > partitionsBudget) return apiError('INVALID_PARTITIONS', `${additional} new partitions is over the limit of ${partitionsBudget} left in this request`);
    const first = topic.partition(0);
    if (first === undefined) throw new Error(`createPartitions: topic '${request.name}' has no partition 0`);
    const replicationFactor = first.replicas.length;
    if (request.assignments === undefined || request.assignments === null) {
      const placement = this.place(image, additional, replicationFactor, current);
      if (!Array.isArray(placement)) return placement;
      return placement.map((replicas, k) => newPartitionRecord(topic.id, current + k, replicas, replicas));
    }
    if (request.assignments.length !== additional) {
      return apiError('INVALID_REPLICA_ASSIGNMENT', `attempted to add ${additional} partition(s), but ${request.assignments.length} assignment(s) were given`);
    }
    const records: PartitionRecord[] = [];
    for (const [k, replicas] of request.assignments.entries()) {
      const partition = current + k;
      const problem = this.invalidManualAssignment(image, replicas, replicationFactor);
      if (problem !== null) return apiError('INVALID_REPLICA_ASSIGNMENT', `partition ${partition}: ${problem}`);
      // As KRaft: the ISR is the replicas that are active now; the first of them leads.
      const isr = replicas.filter((id) => this.isActive(image, id));
      if (isr.length === 0) return apiError('INVALID_REPLICA_ASSIGNMENT', `partition ${partition}: every broker of [${replicas.join(',')}] is fenced or in controlled shutdown`);
      records.push(newPartitionRecord(topic.id, partition, [...replicas], isr));
    }
    return records;
  }

  /** Why a manually given replica list cannot be used (KRaft's validateManualPartitionAssignment), or null. */
  private invalidManualAssignment(image: MetadataImage, replicas: readonly number[], replicationFactor: number): string | null {
    if (replicas.length === 0) return 'the replica list is empty';
    const unknown = replicas.find((id) => image.broker(id) === undefined);
    if (unknown !== undefined) return `the assignment includes broker ${unknown}, but no such broker is registered`;
    const decommissioned = replicas.find((id) => image.broker(id)!.decommissioned);
    if (decommissioned !== undefined) return `the assignment includes broker ${decommissioned}, which is decommissioned`;
    const repeated = replicas.find((id, index) => replicas.indexOf(id) !== index);
    if (repeated !== undefined) return `the assignment includes broker ${repeated} more than once`;
    if (replicas.length !== replicationFactor) {
      return `the assignment has ${replicas.length} replica(s), but the topic's partitions have ${replicationFactor} (its replication factor)`;
    }
    return null;
  }

  /**
   * A topic id: 16 bytes in URL-safe base64 (22 characters), like Kafka's. The first 6 bytes are
   * the offset after the image's highest (every later topic is created from an image that holds
   * this one's record, so ids never repeat over the log's life, even for a deleted and re-created
   * topic and a new controller whose random source repeats an old one); the other 10 are random.
   */
  private newTopicId(image: MetadataImage): string {
    const position = image.highestOffset + 1;
    for (let attempt = 0; attempt < 100; attempt++) {
      const bytes = new Uint8Array(16);
      let high = Math.floor(position / 2 ** 24);
      let low = position % 2 ** 24;
      for (let index = 5; index >= 3; index--, low = Math.floor(low / 256)) bytes[index] = low % 256;
      for (let index = 2; index >= 0; index--, high = Math.floor(high / 256)) bytes[index] = high % 256;
      for (let index = 6; index < bytes.length; index++) bytes[index] = this.random.nextInt(256);
      if (bytes.every((byte) => byte === 0)) continue;
      const id = Buffer.from(bytes).toString('base64url');
      if (image.topicById(id) === undefined) return id;
    }
    throw new Error('newTopicId: the random source keeps repeating itself');
  }

  deleteTopics(image: MetadataImage, request: DeleteTopicsRequest): ControllerResult<{ readonly topics: readonly DeleteTopicResult[] }> {
    const work = new Work(image);
    const counts = new Map<string, number>();
    for (const name of request.topics) counts.set(name, (counts.get(name) ?? 0) + 1);
    const results: DeleteTopicResult[] = request.topics.map((name) => {
      if (!this.config.deleteTopicEnable) return { ...apiError('TOPIC_DELETION_DISABLED'), name, topicId: null };
      if (counts.get(name)! > 1) return { ...apiError('INVALID_REQUEST', `topic '${name}' appears more than once in the request`), name, topicId: null };
      const topic = work.image.topic(name);
      if (topic === undefined) return { ...apiError('UNKNOWN_TOPIC_OR_PARTITION', `no topic named '${name}'`), name, topicId: null };
      work.add([{ type: 'RemoveTopic', topicId: topic.id }]);
      return { ...NO_ERROR, name, topicId: topic.id };
    });
    return work.result({ topics: results });
  }

  /**
   * An ISR change from a partition leader, validated as KRaft's validateAlterPartitionData does:
   * epochs newer than ours (NOT_CONTROLLER), an older leader epoch (FENCED_LEADER_EPOCH), a sender
   * that is not the leader (INVALID_REQUEST), an older partition epoch (INVALID_UPDATE_VERSION), an
   * ISR that is not a set of replicas including the leader (INVALID_REQUEST), a member that is
   * unknown, fenced, shutting down or of another incarnation (INELIGIBLE_REPLICA).
   */
  alterPartition(image: MetadataImage, request: AlterPartitionRequest): ControllerResult<AlterPartitionResponse> {
    const work = new Work(image);
    const sender = image.broker(request.brokerId);
    if (sender === undefined || sender.epoch !== request.brokerEpoch) {
      return work.result({ ...apiError('STALE_BROKER_EPOCH', `broker ${request.brokerId} at epoch ${request.brokerEpoch} is not registered at that epoch`), partitions: [] });
    }
    const results = request.partitions.map((item): AlterPartitionResult => {
      const at = { topic: item.topic, partition: item.partition };
      const topic = work.image.topic(item.topic);
      const state = topic?.partition(item.partition);
      if (topic !== undefined && item.topicId !== undefined && topic.id !== item.topicId) {
        return { ...at, ...apiError('UNKNOWN_TOPIC_ID', `topic '${item.topic}' has id ${topic.id}, not ${item.topicId}`) };
      }
      if (topic === undefined || state === undefined) return { ...at, ...apiError('UNKNOWN_TOPIC_OR_PARTITION') };
      const error = this.validateAlterPartition(work.image, request.brokerId, state, item);
      if (error !== null) return { ...at, ...error };
      const newIsr = item.newIsr.map((member) => (typeof member === 'number' ? member : member.brokerId));
      const image = work.image;
      const record = buildPartitionChange(state, {
        targetIsr: newIsr,
        election: this.electionFor(image, item.topic),
        isAcceptableLeader: (id) => this.canServe(image, id, state),
      });
      if (record !== null) work.add([record]);
      const next = work.image.topic(item.topic)!.partition(item.partition)!;
      if (next.leader !== request.brokerId) return { ...at, ...apiError('NEW_LEADER_ELECTED', `the leader is now ${next.leader}`) };
      return { ...at, ...NO_ERROR, leader: next.leader, isr: next.isr, leaderEpoch: next.leaderEpoch, partitionEpoch: next.partitionEpoch };
    });
    return work.result({ ...NO_ERROR, partitions: results });
  }

  private validateAlterPartition(image: MetadataImage, brokerId: number, state: PartitionState, item: AlterPartitionItem): ApiError | null {
    if (item.leaderEpoch > state.leaderEpoch || item.partitionEpoch > state.partitionEpoch) {
      return apiError('NOT_CONTROLLER', `epochs (${item.leaderEpoch}, ${item.partitionEpoch}) are newer than ours (${state.leaderEpoch}, ${state.partitionEpoch})`);
    }
    if (item.leaderEpoch < state.leaderEpoch) return apiError('FENCED_LEADER_EPOCH', `leader epoch ${item.leaderEpoch}, current ${state.leaderEpoch}`);
    if (brokerId !== state.leader) return apiError('INVALID_REQUEST', `broker ${brokerId} is not the leader (${state.leader})`);
    if (item.partitionEpoch < state.partitionEpoch) {
      return apiError('INVALID_UPDATE_VERSION', `partition epoch ${item.partitionEpoch}, current ${state.partitionEpoch}`);
    }
    const ids = item.newIsr.map((member) => (typeof member === 'number' ? member : member.brokerId));
    if (ids.length === 0 || new Set(ids).size !== ids.length || ids.some((id) => !state.replicas.includes(id))) {
      return apiError('INVALID_REQUEST', `ISR [${ids.join(',')}] is not a set of replicas of [${state.replicas.join(',')}]`);
    }
    if (!ids.includes(state.leader)) return apiError('INVALID_REQUEST', `ISR [${ids.join(',')}] does not include the leader ${state.leader}`);
    for (const member of item.newIsr) {
      const id = typeof member === 'number' ? member : member.brokerId;
      const broker = image.broker(id);
      const reason =
        broker === undefined
          ? 'not registered'
          : broker.fenced
            ? 'fenced'
            : this.sessions.inControlledShutdown(id)
              ? 'shutting down'
              : image.isReplicaOffline(id, state.topicId, state.partition)
                ? 'offline on that broker (its log failed there)'
                : typeof member !== 'number' && member.brokerEpoch !== -1 && member.brokerEpoch !== broker.epoch
                ? `broker epoch ${member.brokerEpoch}, registered at ${broker.epoch}`
                : null;
      if (reason !== null) return apiError('INELIGIBLE_REPLICA', `replica ${id} is ${reason}`);
    }
    return null;
  }

  /**
   * Preferred-leader election for brokers over the imbalance threshold (default
   * leader.imbalance.per.broker.percentage); `imbalancePercentage: 0` elects every partition that
   * can go back to its preferred replica (`runnel cluster rebalance`).
   */
  preferredLeaderElection(image: MetadataImage, options: { readonly imbalancePercentage?: number } = {}): ControllerResult<PreferredElectionResult> {
    const result = electPreferredLeaders(
      image,
      (id, state) => this.canServe(image, id, state),
      options.imbalancePercentage ?? this.config.leaderImbalancePerBrokerPercentage,
    );
    const work = new Work(image);
    work.add(result.records);
    return work.result(result);
  }

  /**
   * Kafka's ElectLeaders (KRaft's ReplicationControlManager.electLeaders), per partition: a preferred
   * election moves leadership to replicas[0] when it can serve and is in the ISR; an unclean one
   * gives a partition without a leader the first live replica, in the ISR if any is live, else
   * outside it (the ISR shrinks to it: records may be lost, which is why an operator asks for it).
   */
  electLeaders(image: MetadataImage, request: ElectLeadersRequest): ControllerResult<ElectLeadersResponse> {
    const work = new Work(image);
    const electOne = (topicName: string, partition: number): ApiError => {
      const state = work.image.topic(topicName)?.partition(partition);
      if (state === undefined) return apiError('UNKNOWN_TOPIC_OR_PARTITION', `no partition ${topicName}-${partition}`);
      const canLead = (id: number): boolean => this.canServe(work.image, id, state);
      if (request.electionType === 'preferred') {
        const preferred = state.replicas[0]!;
        if (state.leader === preferred) return apiError('ELECTION_NOT_NEEDED', `${topicName}-${partition} is led by its preferred replica ${preferred}`);
        const record = buildPartitionChange(state, { election: 'preferred', isAcceptableLeader: canLead });
        if (record === null || record.leader !== preferred) {
          const why = !canLead(preferred) ? 'is not alive or cannot serve it' : 'is not in the ISR';
          return apiError('PREFERRED_LEADER_NOT_AVAILABLE', `the preferred replica ${preferred} of ${topicName}-${partition} ${why} (ISR [${state.isr.join(',')}])`);
        }
        work.add([record]);
        return NO_ERROR;
      }
      if (state.leader !== NO_LEADER) return apiError('ELECTION_NOT_NEEDED', `${topicName}-${partition} has a leader (${state.leader})`);
      const record = buildPartitionChange(state, { election: 'unclean', isAcceptableLeader: canLead });
      if (record === null || record.leader === NO_LEADER) {
        return apiError('ELIGIBLE_LEADERS_NOT_AVAILABLE', `no replica of ${topicName}-${partition} ([${state.replicas.join(',')}]) is alive`);
      }
      work.add([record]);
      return NO_ERROR;
    };
    const topics =
      request.topics === null
        ? image.topics().map((topic) => ({
            topic: topic.name,
            partitions: [...topic.partitions()]
              .map((state) => ({ partition: state.partition, ...electOne(topic.name, state.partition) }))
              .filter((result) => result.errorCode !== CONTROLLER_ERRORS.ELECTION_NOT_NEEDED.code),
          }))
        : request.topics.map(({ topic, partitions }) => ({ topic, partitions: partitions.map((partition) => ({ partition, ...electOne(topic, partition) })) }));
    return work.result({ topics });
  }

  /**
   * Starts, replaces or cancels partition moves (KIP-455; KRaft's alterPartitionReassignments).
   * A target starts a move from the partition's original replicas (for a partition already moving,
   * replicas − adding): replicas become the target followed by the removed originals, and the move
   * completes — in this batch or in a later change — once every target replica is in the ISR. A
   * null target cancels: the replicas go back to the original set and the ISR loses the added
   * replicas. Per-partition errors; the successful ones are applied together.
   */
  alterPartitionReassignments(image: MetadataImage, request: AlterPartitionReassignmentsRequest): ControllerResult<AlterPartitionReassignmentsResponse> {
    const work = new Work(image);
    const counts = new Map<string, number>();
    const key = (item: ReassignablePartition): string => `${item.partition}:${item.topic}`;
    for (const item of request.partitions) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
    const results = request.partitions.map((item): ReassignmentResult => {
      const at = { topic: item.topic, partition: item.partition };
      if (counts.get(key(item))! > 1) return { ...at, ...apiError('INVALID_REQUEST', `partition ${item.topic}-${item.partition} appears more than once in the request`) };
      const state = work.image.partition(item.topic, item.partition);
      if (state === undefined) {
        const detail = work.image.topic(item.topic) === undefined ? `no topic named '${item.topic}'` : `topic '${item.topic}' has no partition ${item.partition}`;
        return { ...at, ...apiError('UNKNOWN_TOPIC_OR_PARTITION', detail) };
      }
      const outcome = item.replicas === null ? this.cancelReassignment(work.image, item.topic, state) : this.changeReassignment(work.image, item.topic, state, item.replicas);
      if ('errorCode' in outcome) return { ...at, ...outcome };
      if (outcome.record !== null) work.add([outcome.record]);
      // A target already in sync (a shrink, a reorder of in-sync replicas) completes at once, in
      // a second record: the log shows the start and the completion.
      const started = work.image.partition(item.topic, item.partition)!;
      const image = work.image;
      const completion = buildPartitionChange(started, {
        election: this.electionFor(image, item.topic),
        isAcceptableLeader: (id) => this.canServe(image, id, started),
      });
      if (completion !== null) work.add([completion]);
      return { ...at, ...NO_ERROR };
    });
    return work.result({ partitions: results });
  }

  private changeReassignment(image: MetadataImage, topic: string, state: PartitionState, target: readonly number[]): ApiError | { readonly record: MetadataRecord | null } {
    if (target.length === 0) return apiError('INVALID_REPLICA_ASSIGNMENT', 'the target replica list is empty');
    const seen = new Set<number>();
    for (const id of target) {
      if (!Number.isSafeInteger(id) || id < 0 || id > MAX_INT32) return apiError('INVALID_REPLICA_ASSIGNMENT', `invalid broker id ${id}`);
      if (seen.has(id)) return apiError('INVALID_REPLICA_ASSIGNMENT', `the target includes broker ${id} more than once`);
      if (image.broker(id) === undefined) return apiError('INVALID_REPLICA_ASSIGNMENT', `the target includes broker ${id}, but no such broker is registered`);
      if (image.broker(id)!.decommissioned && !originalReplicas(state).includes(id)) {
        return apiError('INVALID_REPLICA_ASSIGNMENT', `the target adds broker ${id}, which is decommissioned (runnel broker recommission ${id} first)`);
      }
      seen.add(id);
    }
    const assignment = reassignmentTo(state, target);
    // Replacing a move may drop added replicas that were the only in-sync ones.
    if (!state.isr.some((id) => assignment.replicas.includes(id)) && !this.uncleanElectionAllowed(image, topic)) {
      return apiError('INVALID_REPLICA_ASSIGNMENT', `unable to reassign ${topic}-${state.partition} to [${target.join(',')}]: it keeps no member of the ISR [${state.isr.join(',')}], which would need an unclean leader election`);
    }
    return { record: this.reassignmentChange(image, topic, state, assignment) };
  }

  private cancelReassignment(image: MetadataImage, topic: string, state: PartitionState): ApiError | { readonly record: MetadataRecord | null } {
    if (!isMoving(state)) return apiError('NO_REASSIGNMENT_IN_PROGRESS', `partition ${topic}-${state.partition} is not being reassigned`);
    const assignment = revertedAssignment(state);
    if (!state.isr.some((id) => assignment.replicas.includes(id)) && !this.uncleanElectionAllowed(image, topic)) {
      return apiError(
        'INVALID_REPLICA_ASSIGNMENT',
        `unable to revert the reassignment of ${topic}-${state.partition} because it would require an unclean leader election (the ISR [${state.isr.join(',')}] holds only replicas being added)`,
      );
    }
    return { record: this.reassignmentChange(image, topic, state, assignment) };
  }

  private reassignmentChange(image: MetadataImage, topic: string, state: PartitionState, assignment: ReturnType<typeof revertedAssignment>): MetadataRecord | null {
    return buildPartitionChange(state, {
      targetAssignment: assignment,
      completeReassignment: false,
      election: this.electionFor(image, topic),
      isAcceptableLeader: (id) => this.canServe(image, id, state),
    });
  }

  /** The partitions that are moving (all of them, or those asked for that are), in topic and partition order. */
  listPartitionReassignments(
    image: MetadataImage,
    partitions?: readonly { readonly topic: string; readonly partition: number }[],
  ): ListPartitionReassignmentsResponse {
    const describe = (topic: string, state: PartitionState): OngoingReassignment => ({
      topic,
      partition: state.partition,
      replicas: state.replicas,
      addingReplicas: state.addingReplicas,
      removingReplicas: state.removingReplicas,
      targetReplicas: targetReplicas(state),
      originalReplicas: originalReplicas(state),
      isr: state.isr,
      leader: state.leader,
    });
    const reassignments: OngoingReassignment[] = [];
    if (partitions === undefined) {
      for (const { topic, state } of image.allPartitions()) if (isMoving(state)) reassignments.push(describe(topic.name, state));
    } else {
      for (const { topic, partition } of partitions) {
        const state = image.partition(topic, partition);
        if (state !== undefined && isMoving(state)) reassignments.push(describe(topic, state));
      }
    }
    return { ...NO_ERROR, reassignments };
  }

  /** A plan spreading replicas over the active brokers (for a broker that joined). Plan only. */
  planReassignment(image: MetadataImage): ReassignmentPlan {
    return planReassignment(image, this.usableBrokers(image));
  }

  // --- replica balance and broker decommission (Redpanda's partition balancer and decommission) ---

  /**
   * `runnel cluster rebalance --replicas`: plans (planReassignment over the usable brokers, moving
   * replicas off decommissioned ones) and starts the moves as reassignments, in one batch, so the
   * plan is computed on exactly the image it changes. Refused while a partition is moving
   * (REASSIGNMENT_IN_PROGRESS: one rebalance at a time, and a plan from targets that may still be
   * cancelled would be stale) and while a broker that is not decommissioned cannot take replicas
   * (BROKER_NOT_AVAILABLE: the plan would move everything off a broker that is only restarting).
   */
  rebalanceReplicas(image: MetadataImage, request: RebalanceReplicasRequest = {}): ControllerResult<RebalanceReplicasResponse> {
    const refused = (error: ApiError): ControllerResult<RebalanceReplicasResponse> => ({ records: [], response: { ...error, moves: [], brokers: [], unplaceable: [], started: [] } });
    const moving = this.listPartitionReassignments(image).reassignments;
    if (moving.length > 0) {
      const names = moving.slice(0, 3).map((entry) => `${entry.topic}-${entry.partition}`).join(', ');
      return refused(apiError('REASSIGNMENT_IN_PROGRESS', `${moving.length} partition(s) are being reassigned (${names}${moving.length > 3 ? ', ...' : ''}); wait for them to finish (runnel partitions reassign --list) or cancel them first`));
    }
    const unavailable = this.unavailableBrokers(image);
    if (unavailable.length > 0) {
      return refused(apiError('BROKER_NOT_AVAILABLE', `broker(s) ${unavailable.join(', ')} cannot take replicas now; bring them back, or decommission the ones that are gone (runnel broker decommission <id>), before rebalancing`));
    }
    const brokers = this.usableBrokers(image);
    if (brokers.length === 0) return refused(apiError('BROKER_NOT_AVAILABLE', 'no broker can take replicas'));
    const plan = planReassignment(image, brokers, { vacate: this.decommissionedBrokers(image) });
    const balance = brokers.map((broker) => ({
      brokerId: broker.id,
      replicasBefore: plan.replicasBefore.get(broker.id) ?? 0,
      replicasAfter: plan.replicasAfter.get(broker.id) ?? 0,
      preferredBefore: plan.preferredBefore.get(broker.id) ?? 0,
      preferredAfter: plan.preferredAfter.get(broker.id) ?? 0,
    }));
    const response = { ...NO_ERROR, moves: plan.moves, brokers: balance, unplaceable: plan.unplaceable };
    if (request.dryRun === true || plan.moves.length === 0) return { records: [], response: { ...response, started: [] } };
    const started = this.alterPartitionReassignments(image, { partitions: plan.moves.map((move) => ({ topic: move.topic, partition: move.partition, replicas: move.to })) });
    return { records: started.records, response: { ...response, started: started.response.partitions } };
  }

  /** Registered brokers that are not decommissioned but cannot take replicas now (fenced, shutting down, log directory not online). */
  private unavailableBrokers(image: MetadataImage): string[] {
    return image
      .brokers()
      .filter((broker) => !broker.decommissioned && (!this.isActive(image, broker.id) || broker.logDir !== 'online'))
      .map((broker) => `${broker.id} (${broker.fenced ? 'fenced' : this.sessions.inControlledShutdown(broker.id) ? 'shutting down' : `log directory ${broker.logDir}`})`);
  }

  private decommissionedBrokers(image: MetadataImage): Set<number> {
    return new Set(image.brokers().filter((broker) => broker.decommissioned).map((broker) => broker.id));
  }

  /**
   * `runnel broker decommission N` (Redpanda's): marks the broker decommissioned (BrokerDecommission,
   * in the log and snapshots: it survives failover and the broker's restarts; placement,
   * CreatePartitions, reassignments and rebalances give it nothing new) and starts moving every
   * replica off it, each to the least loaded usable broker not in the partition (another rack
   * first). Refused (INVALID_REPLICATION_FACTOR) when the brokers that would remain cannot hold some
   * partition's replicas. A partition moving to a target that includes the broker gets a new
   * target; one moving off it is left alone. Again on a decommissioned broker: starts whatever has
   * not started (as `continueDecommissions`).
   */
  decommissionBroker(image: MetadataImage, brokerId: number): ControllerResult<BrokerDecommissionResponse> {
    const refused = (error: ApiError): ControllerResult<BrokerDecommissionResponse> => ({ records: [], response: { ...error, replicasLeft: 0, moves: [], unplaceable: [] } });
    const broker = image.broker(brokerId);
    if (broker === undefined) return refused(apiError('BROKER_ID_NOT_REGISTERED', `no broker ${brokerId} is registered`));
    const remaining = this.usableBrokers(image).filter((candidate) => candidate.id !== brokerId);
    for (const { topic, state } of image.allPartitions()) {
      const target = targetReplicas(state);
      if (!target.includes(brokerId)) continue;
      const leaving = target.filter((id) => id === brokerId || image.broker(id)!.decommissioned).length;
      const takers = remaining.filter((candidate) => !target.includes(candidate.id)).length;
      if (takers < leaving) {
        return refused(
          apiError(
            'INVALID_REPLICATION_FACTOR',
            `cannot decommission broker ${brokerId}: partition ${topic.name}-${state.partition} has ${target.length} replicas [${target.join(',')}] and the usable brokers that would remain ([${remaining.map((candidate) => candidate.id).join(',')}]) cannot hold them; add a broker (or bring one back) first`,
          ),
        );
      }
    }
    const work = new Work(image);
    if (!broker.decommissioned) work.add([{ type: 'BrokerDecommission', brokerId, decommissioned: true }]);
    const continued = this.continueDecommissions(work.image);
    work.add(continued.records);
    return work.result({ ...NO_ERROR, replicasLeft: this.replicasOn(work.image, brokerId), moves: continued.response.moves, unplaceable: continued.response.unplaceable });
  }

  /**
   * Starts a move for every partition whose target still has a replica on a decommissioned broker
   * (a decommission just asked for, an operator's cancel, a partition that could not move before).
   * The active controller also runs this periodically. Partitions no usable broker can take now
   * are reported and left until one can.
   */
  continueDecommissions(image: MetadataImage): ControllerResult<{ readonly moves: readonly ReassignmentResult[]; readonly unplaceable: readonly PartitionRef[] }> {
    const decommissioned = this.decommissionedBrokers(image);
    const brokers = this.usableBrokers(image);
    if (decommissioned.size === 0 || brokers.length === 0) return { records: [], response: { moves: [], unplaceable: [] } };
    const plan = planReassignment(image, brokers, { vacate: decommissioned, evenOut: false });
    if (plan.moves.length === 0) return { records: [], response: { moves: [], unplaceable: plan.unplaceable } };
    const started = this.alterPartitionReassignments(image, { partitions: plan.moves.map((move) => ({ topic: move.topic, partition: move.partition, replicas: move.to })) });
    return { records: started.records, response: { moves: started.response.partitions, unplaceable: plan.unplaceable } };
  }

  /**
   * `runnel broker recommission N`: clears the mark and cancels every move still taking a replica
   * off the broker (those whose removing replicas include it); a cancel that would need an
   * unclean election is reported and the move left to finish.
   */
  recommissionBroker(image: MetadataImage, brokerId: number): ControllerResult<BrokerDecommissionResponse> {
    const refused = (error: ApiError): ControllerResult<BrokerDecommissionResponse> => ({ records: [], response: { ...error, replicasLeft: 0, moves: [], unplaceable: [] } });
    const broker = image.broker(brokerId);
    if (broker === undefined) return refused(apiError('BROKER_ID_NOT_REGISTERED', `no broker ${brokerId} is registered`));
    if (!broker.decommissioned) return refused(apiError('INVALID_REQUEST', `broker ${brokerId} is not decommissioned`));
    const work = new Work(image);
    work.add([{ type: 'BrokerDecommission', brokerId, decommissioned: false }]);
    const cancels = this.listPartitionReassignments(work.image)
      .reassignments.filter((moving) => moving.removingReplicas.includes(brokerId))
      .map((moving) => ({ topic: moving.topic, partition: moving.partition, replicas: null }));
    const cancelled = this.alterPartitionReassignments(work.image, { partitions: cancels });
    work.add(cancelled.records);
    return work.result({ ...NO_ERROR, replicasLeft: this.replicasOn(work.image, brokerId), moves: cancelled.response.partitions, unplaceable: [] });
  }

  /** Partitions with a replica on the broker (moving off it or not). */
  replicasOn(image: MetadataImage, brokerId: number): number {
    let count = 0;
    for (const { state } of image.allPartitions()) if (state.replicas.includes(brokerId)) count++;
    return count;
  }

  /**
   * auto.replica.rebalance.enable (Redpanda's partition_autobalancing_mode=node_add): brokers that
   * `joined` (registered for the first time) get their share of replicas by a rebalanceReplicas,
   * once each of them is usable, no partition is moving and every broker that is not decommissioned
   * can take replicas — one rebalance at a time; until then 'waiting'. The shell forgets the joined
   * brokers on 'started' or 'balanced'.
   */
  autoRebalanceReplicas(image: MetadataImage, joined: ReadonlySet<number>): ControllerResult<AutoRebalanceDecision> {
    const decision = (outcome: AutoRebalanceDecision['outcome'], reason: string, rebalance: RebalanceReplicasResponse | null = null, records: readonly MetadataRecord[] = []) => ({
      records,
      response: { outcome, reason, rebalance },
    });
    if (!this.config.autoReplicaRebalanceEnable) return decision('disabled', 'auto.replica.rebalance.enable is false');
    const usable = new Set(this.usableBrokers(image).map((broker) => broker.id));
    const notReady = [...joined].filter((id) => image.broker(id)?.decommissioned !== true && !usable.has(id));
    if (notReady.length > 0) return decision('waiting', `broker(s) ${notReady.join(', ')} cannot take replicas yet`);
    if (![...joined].some((id) => usable.has(id))) return decision('balanced', 'no joined broker can take replicas (decommissioned)');
    const rebalance = this.rebalanceReplicas(image);
    if (rebalance.response.errorCode !== 0) return decision('waiting', rebalance.response.errorMessage, rebalance.response);
    if (rebalance.response.moves.length === 0) return decision('balanced', 'the replicas are already balanced', rebalance.response);
    return decision('started', `moving ${rebalance.response.moves.length} partition(s) for broker(s) ${[...joined].join(', ')}`, rebalance.response, rebalance.records);
  }

  /**
   * Sets or deletes dynamic broker configs, per broker or as the cluster default (Kafka's
   * IncrementalAlterConfigs on BROKER resources): see dynamicConfig.ts for the rules.
   */
  incrementalAlterConfigs(image: MetadataImage, request: IncrementalAlterConfigsRequest): ControllerResult<IncrementalAlterConfigsResponse> {
    const work = new Work(image);
    const { records, response } = alterDynamicConfigs(image, request);
    work.add(records);
    return work.result(response);
  }
}

/** A new partition's first record: epochs 0, the first ISR member leads. */
function newPartitionRecord(topicId: string, partition: number, replicas: number[], isr: readonly number[]): PartitionRecord {
  return { type: 'Partition', topicId, partition, replicas, isr: [...isr], leader: isr[0]!, leaderEpoch: 0, partitionEpoch: 0 };
}

function invalidRegistration(request: RegisterBrokerRequest): string | null {
  if (!Number.isSafeInteger(request.brokerId) || request.brokerId < 0 || request.brokerId > MAX_INT32) return `invalid broker id ${request.brokerId}`;
  if (typeof request.incarnationId !== 'string' || request.incarnationId.length === 0 || request.incarnationId.length > 256) {
    return 'incarnationId must be a non-empty string of at most 256 characters';
  }
  if (request.listeners.length > 64) return 'at most 64 listeners';
  for (const listener of request.listeners) {
    if (listener.name.length === 0 || listener.host.length === 0 || !Number.isInteger(listener.port) || listener.port < 0 || listener.port > 65535) {
      return `invalid listener ${JSON.stringify(listener)}`;
    }
  }
  if (request.rack !== undefined && request.rack !== null && (request.rack.length === 0 || request.rack.length > 256)) return 'rack must be null or 1..256 characters';
  return null;
}
