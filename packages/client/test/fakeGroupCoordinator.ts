// A scriptable GroupApi on the fake brokers' gRPC servers, for the consumer's group tests. Left
// alone it is a minimal coordinator (node `coordinatorNodeId`) for a group of one member; a test
// replaces answers one call at a time (answerNext) or for every call (handle), and reads every
// request the fake received (calls, nextCall).
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { errorCode, loadGroupProto, type GroupApi } from '@runnel/common';
import type { FakeCluster } from './fakeBroker.js';

type Handlers = GroupApi.GroupApiHandlers;
export type GroupMethod = keyof Handlers & string;
export type GroupRequest<M extends GroupMethod> = Handlers[M] extends grpc.handleUnaryCall<infer Request, infer _Response> ? Request : never;
export type GroupResponse<M extends GroupMethod> = Handlers[M] extends grpc.handleUnaryCall<infer _Request, infer Response> ? Response : never;

export interface GroupCall<M extends GroupMethod = GroupMethod> {
  readonly method: M;
  readonly nodeId: number;
  readonly request: GroupRequest<M>;
}

/** What a scripted answer gets besides the request: the node asked, and the default coordinator's answer. */
export interface CallContext<M extends GroupMethod> {
  readonly nodeId: number;
  byDefault(): GroupResponse<M>;
}

export type Answer<M extends GroupMethod> = GroupResponse<M> | ((request: GroupRequest<M>, context: CallContext<M>) => GroupResponse<M> | Promise<GroupResponse<M>>);

/** The default coordinator's answer, for a place in an answerNext() queue. */
export function byDefault<M extends GroupMethod>(_request: GroupRequest<M>, context: CallContext<M>): GroupResponse<M> {
  return context.byDefault();
}

const NEXT_CALL_TIMEOUT_MS = 5000;

export class FakeGroupCoordinator {
  /** Every request received, in order of arrival. */
  readonly calls: GroupCall[] = [];
  /** The node that answers as coordinator; the others answer NOT_COORDINATOR. */
  coordinatorNodeId = 1;
  /** Committed offsets by `topic:partition`. */
  readonly offsets = new Map<string, number>();
  private readonly queued = new Map<GroupMethod, Array<Answer<GroupMethod>>>();
  private readonly handlers = new Map<GroupMethod, Answer<GroupMethod>>();
  private readonly received = new EventEmitter();
  // The one member the default coordinator knows.
  private memberId = '';
  private generationId = 0;
  private memberIdNext = 1;
  private readonly assignments = new Map<string, Buffer>();

  private constructor(private readonly cluster: FakeCluster) {}

  /** Adds the GroupApi to every broker of `cluster` (grpc-js looks services up per call, so a bound server takes it). */
  static attach(cluster: FakeCluster): FakeGroupCoordinator {
    const coordinator = new FakeGroupCoordinator(cluster);
    const service = loadGroupProto().runnel.v1.GroupApi.service;
    for (const broker of cluster.brokers) {
      const handlers = Object.fromEntries(
        Object.keys(service).map((method) => [
          method,
          (call: grpc.ServerUnaryCall<object, object>, callback: grpc.sendUnaryData<object>) => {
            coordinator.answer(method as GroupMethod, broker.nodeId, call.request).then((response) => callback(null, response), (error: Error) => callback(error));
          },
        ]),
      );
      broker.server.addService(service, handlers);
    }
    return coordinator;
  }

  /** The next calls of `method` get these answers, in order; later ones the handler's or the default. */
  answerNext<M extends GroupMethod>(method: M, ...answers: Array<Answer<M>>): void {
    this.queued.set(method, [...(this.queued.get(method) ?? []), ...(answers as Array<Answer<GroupMethod>>)]);
  }

  /** Every later call of `method` (not taken by answerNext) gets `answer`. */
  handle<M extends GroupMethod>(method: M, answer: Answer<M>): void {
    this.handlers.set(method, answer as Answer<GroupMethod>);
  }

  requests<M extends GroupMethod>(method: M): Array<GroupRequest<M>> {
    return this.calls.filter((call): call is GroupCall<M> => call.method === method).map((call) => call.request);
  }

  /** The node each call of `method` went to, in order. */
  nodesAsked(method: GroupMethod): number[] {
    return this.calls.filter((call) => call.method === method).map((call) => call.nodeId);
  }

  /** `observer` sees every later call as it arrives (to interleave calls with listener events). */
  onCall(observer: (call: GroupCall) => void): void {
    this.received.on('call', observer);
  }

  /** The next call of `method` (arriving after this is called) that `matches`. */
  nextCall<M extends GroupMethod>(method: M, matches: (call: GroupCall<M>) => boolean = () => true): Promise<GroupCall<M>> {
    return new Promise((resolve, reject) => {
      const onCall = (call: GroupCall): void => {
        if (call.method !== method || !matches(call as GroupCall<M>)) return;
        clearTimeout(timer);
        this.received.off('call', onCall);
        resolve(call as GroupCall<M>);
      };
      const timer = setTimeout(() => {
        this.received.off('call', onCall);
        reject(new Error(`no ${method} call within ${NEXT_CALL_TIMEOUT_MS} ms`));
      }, NEXT_CALL_TIMEOUT_MS);
      this.received.on('call', onCall);
    });
  }

  committedOffset(topic: string, partition: number): number | undefined {
    return this.offsets.get(`${topic}:${partition}`);
  }

  private async answer(method: GroupMethod, nodeId: number, request: object): Promise<object> {
    const call = { method, nodeId, request } as GroupCall;
    this.calls.push(call);
    this.received.emit('call', call);
    const answer = this.queued.get(method)?.shift() ?? this.handlers.get(method);
    const defaultAnswer = (): never => this.defaultAnswer(method, nodeId, request) as never;
    if (answer === undefined) return defaultAnswer();
    if (typeof answer !== 'function') return answer;
    return answer(request as never, { nodeId, byDefault: defaultAnswer });
  }

  /** The minimal coordinator's answer: one member, which leads; NOT_COORDINATOR from other nodes. */
  private defaultAnswer(method: GroupMethod, nodeId: number, request: object): object {
    const notCoordinator = { errorCode: errorCode('NOT_COORDINATOR'), errorMessage: `node ${nodeId} is not the coordinator` };
    if (method === 'FindCoordinator') {
      const broker = this.cluster.brokers.find((candidate) => candidate.nodeId === this.coordinatorNodeId)!;
      return { errorCode: 0, nodeId: broker.nodeId, host: '127.0.0.1', port: broker.port };
    }
    const coordinator = nodeId === this.coordinatorNodeId;
    switch (method) {
      case 'JoinGroup': {
        if (!coordinator) return notCoordinator;
        const join = request as GroupRequest<'JoinGroup'>;
        if (join.memberId === '' && join.requireKnownMemberId) return { errorCode: errorCode('MEMBER_ID_REQUIRED'), memberId: `member-${this.memberIdNext++}` };
        this.memberId = join.memberId || `member-${this.memberIdNext++}`;
        this.generationId++;
        const protocol = join.protocols[0]!;
        const members = [{ memberId: this.memberId, groupInstanceId: join.groupInstanceId, metadata: protocol.metadata }];
        return { errorCode: 0, generationId: this.generationId, protocolType: join.protocolType, protocolName: protocol.name, leader: this.memberId, memberId: this.memberId, members };
      }
      case 'SyncGroup': {
        if (!coordinator) return notCoordinator;
        const sync = request as GroupRequest<'SyncGroup'>;
        if (sync.generationId !== this.generationId) return { errorCode: errorCode('ILLEGAL_GENERATION') };
        for (const { memberId, assignment } of sync.assignments) this.assignments.set(memberId, assignment);
        return { errorCode: 0, protocolType: sync.protocolType, protocolName: sync.protocolName, assignment: this.assignments.get(sync.memberId) ?? Buffer.alloc(0) };
      }
      case 'Heartbeat': {
        if (!coordinator) return notCoordinator;
        const beat = request as GroupRequest<'Heartbeat'>;
        if (beat.memberId !== this.memberId) return { errorCode: errorCode('UNKNOWN_MEMBER_ID') };
        return { errorCode: beat.generationId === this.generationId ? 0 : errorCode('ILLEGAL_GENERATION') };
      }
      case 'LeaveGroup': {
        if (!coordinator) return notCoordinator;
        const leave = request as GroupRequest<'LeaveGroup'>;
        if (leave.members.some((member) => member.memberId === this.memberId)) this.memberId = '';
        return { errorCode: 0, members: leave.members.map((member) => ({ memberId: member.memberId, errorCode: 0 })) };
      }
      case 'OffsetCommit': {
        const commit = request as GroupRequest<'OffsetCommit'>;
        if (!coordinator) return { partitions: commit.partitions.map(({ topic, partition }) => ({ topic, partition, errorCode: notCoordinator.errorCode })) };
        for (const { topic, partition, offset } of commit.partitions) this.offsets.set(`${topic}:${partition}`, offset);
        return { partitions: commit.partitions.map(({ topic, partition }) => ({ topic, partition, errorCode: 0 })) };
      }
      case 'OffsetFetch': {
        if (!coordinator) return notCoordinator;
        const fetch = request as GroupRequest<'OffsetFetch'>;
        return { errorCode: 0, partitions: fetch.partitions.map(({ topic, partition }) => ({ topic, partition, offset: this.committedOffset(topic, partition) ?? -1, leaderEpoch: -1, metadata: '', errorCode: 0 })) };
      }
      default:
        return {};
    }
  }
}
