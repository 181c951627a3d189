// One BrokerConnection per broker address: a grpc-js client for unary calls, plus the two
// long-lived bidi streams of the hot paths (Produce, Fetch). A message on an open stream costs a
// fifth of a unary call, so produce and fetch requests share one stream each, carry a request id,
// and are matched to their answers through a pending map (answers may come out of order).
import * as grpc from '@grpc/grpc-js';
import { loadClientProto, loadGroupProto, RunnelError, type ClientApi, type GroupApi, type Logger } from '@runnel/common';
import { fromGrpcError, streamLostError } from './errors.js';

type ApiClient = ClientApi.ClientApiClient;
type GroupClient = GroupApi.GroupApiClient;

/** The GroupApi calls, each with its request and answer types. */
export interface GroupCalls {
  FindCoordinator: [GroupApi.FindCoordinatorRequest, GroupApi.FindCoordinatorResponse__Output];
  JoinGroup: [GroupApi.JoinGroupRequest, GroupApi.JoinGroupResponse__Output];
  SyncGroup: [GroupApi.SyncGroupRequest, GroupApi.SyncGroupResponse__Output];
  Heartbeat: [GroupApi.HeartbeatRequest, GroupApi.HeartbeatResponse__Output];
  LeaveGroup: [GroupApi.LeaveGroupRequest, GroupApi.LeaveGroupResponse__Output];
  OffsetCommit: [GroupApi.OffsetCommitRequest, GroupApi.OffsetCommitResponse__Output];
  OffsetFetch: [GroupApi.OffsetFetchRequest, GroupApi.OffsetFetchResponse__Output];
  ListGroups: [GroupApi.ListGroupsRequest, GroupApi.ListGroupsResponse__Output];
  DescribeGroups: [GroupApi.DescribeGroupsRequest, GroupApi.DescribeGroupsResponse__Output];
  DeleteGroups: [GroupApi.DeleteGroupsRequest, GroupApi.DeleteGroupsResponse__Output];
}

type UnaryCallback = (error: grpc.ServiceError | null, response?: unknown) => void;
type UnaryFunction = (request: object, metadata: grpc.Metadata, options: grpc.CallOptions, callback: UnaryCallback) => void;

const MESSAGE_BYTES_MAX = 128 * 1024 * 1024;
/** Requests that may wait for a window slot on one stream; more is a caller bug, not load. */
const WINDOW_WAITERS_MAX = 10_000;
/** How long close() waits for a half-closed stream to finish. */
const CLOSE_GRACE_MS_MAX = 5000;

export const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_send_message_length': MESSAGE_BYTES_MAX,
  'grpc.max_receive_message_length': MESSAGE_BYTES_MAX,
  // Pings only while calls are open (our streams are); a dead peer is noticed within ~40 s.
  'grpc.keepalive_time_ms': 30_000,
  'grpc-node.flow_control_window': 16 * 1024 * 1024,
  'grpc.keepalive_timeout_ms': 10_000,
  'grpc.keepalive_permit_without_calls': 0,
  // Kafka's reconnect.backoff.ms / reconnect.backoff.max.ms (50 ms / 1 s): a restarted broker is
  // used again within a second, not after grpc-js's default backoff (which grows to minutes).
  'grpc.initial_reconnect_backoff_ms': 50,
  'grpc.max_reconnect_backoff_ms': 1_000,
};

interface Pending<Res> {
  resolve: (response: Res) => void;
  reject: (error: RunnelError) => void;
  timer: NodeJS.Timeout;
}

interface StreamOptions {
  name: string;
  windowMax: number;
  logger: Logger | undefined;
}

/**
 * A bidi stream opened on first use. Every request gets an id and a slot in a window of at most
 * `windowMax` unanswered requests. When the stream errors or ends, every pending request fails
 * with a retriable NETWORK_EXCEPTION and the next request opens a new stream.
 */
export class StreamChannel<Req extends { requestId?: unknown }, Res extends { requestId: number }> {
  private stream: grpc.ClientDuplexStream<Req, Res> | null = null;
  private readonly pending = new Map<number, Pending<Res>>();
  private readonly windowWaiters: Array<() => void> = [];
  private requestIdNext = 1;
  private closed = false;

  constructor(
    private readonly open: () => grpc.ClientDuplexStream<Req, Res>,
    private readonly options: StreamOptions,
  ) {}

  get inFlight(): number {
    return this.pending.size;
  }

  hasWindowSlot(): boolean {
    return this.pending.size < this.options.windowMax;
  }

  /** Sends `request` and resolves with the answer carrying its id, or rejects after `timeoutMs`. */
  async request(request: Req, timeoutMs: number): Promise<Res> {
    while (!this.hasWindowSlot()) await this.waitForSlot();
    return this.send(request, timeoutMs);
  }

  /** Writes a request that gets no answer (acks=0); resolves once grpc-js has taken the message. */
  async writeOnly(request: Req): Promise<void> {
    while (!this.hasWindowSlot()) await this.waitForSlot();
    const stream = this.ensureStream();
    request.requestId = this.requestIdNext++;
    await new Promise<void>((resolve, reject) => {
      stream.write(request, (error?: Error | null) => {
        if (error) reject(streamLostError(error, this.options.name, 0));
        else resolve();
      });
    });
  }

  /**
   * Half-closes the stream and waits (up to `graceMs`) for the server to finish it, so that
   * requests already written (acks=0 ones too) still reach the server. Requests still waiting
   * for an answer fail, and their call is cancelled at once.
   */
  async close(graceMs: number): Promise<void> {
    this.closed = true;
    const stream = this.stream;
    this.stream = null;
    const unanswered = this.pending.size;
    this.failAll(new RunnelError('NETWORK_EXCEPTION', `${this.options.name}: connection closed by the client`));
    for (const wake of this.windowWaiters.splice(0)) wake();
    if (stream === null) return;
    if (unanswered > 0) {
      stream.cancel();
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        stream.cancel();
        resolve();
      }, graceMs);
      stream.once('status', () => {
        clearTimeout(timer);
        resolve();
      });
      stream.end();
    });
  }

  private send(request: Req, timeoutMs: number): Promise<Res> {
    const stream = this.ensureStream();
    const requestId = this.requestIdNext++;
    request.requestId = requestId;
    return new Promise<Res>((resolve, reject) => {
      const timer = setTimeout(() => this.expire(requestId, timeoutMs), timeoutMs);
      this.pending.set(requestId, { resolve, reject, timer });
      stream.write(request);
    });
  }

  private waitForSlot(): Promise<void> {
    if (this.closed) return Promise.reject(new RunnelError('NETWORK_EXCEPTION', `${this.options.name}: connection closed by the client`));
    if (this.windowWaiters.length >= WINDOW_WAITERS_MAX) {
      return Promise.reject(new Error(`${this.options.name}: more than ${WINDOW_WAITERS_MAX} requests waiting for the window`));
    }
    return new Promise((resolve) => this.windowWaiters.push(resolve));
  }

  private ensureStream(): grpc.ClientDuplexStream<Req, Res> {
    if (this.closed) throw new RunnelError('NETWORK_EXCEPTION', `${this.options.name}: connection closed by the client`);
    if (this.stream !== null) return this.stream;
    const stream = this.open();
    this.stream = stream;
    stream.on('data', (response: Res) => this.onResponse(response));
    stream.on('error', (error: Error) => this.onLost(stream, error));
    stream.on('end', () => this.onLost(stream, undefined));
    return stream;
  }

  private onResponse(response: Res): void {
    const pending = this.pending.get(response.requestId);
    // Unknown ids are answers to requests that already timed out, or to acks=0 writes.
    if (pending === undefined) return;
    this.settle(response.requestId, pending);
    pending.resolve(response);
  }

  private onLost(stream: grpc.ClientDuplexStream<Req, Res>, error: Error | undefined): void {
    if (this.stream !== stream) return; // an old stream reporting late
    this.stream = null;
    if (this.pending.size > 0) this.options.logger?.warn({ stream: this.options.name, err: error?.message, pending: this.pending.size }, 'stream lost');
    this.failAll(streamLostError(error, this.options.name, this.pending.size));
    stream.cancel();
  }

  private expire(requestId: number, timeoutMs: number): void {
    const pending = this.pending.get(requestId);
    if (pending === undefined) return;
    this.settle(requestId, pending);
    pending.reject(new RunnelError('REQUEST_TIMED_OUT', `${this.options.name}: no answer to request ${requestId} within ${timeoutMs} ms`));
  }

  private settle(requestId: number, pending: Pending<Res>): void {
    clearTimeout(pending.timer);
    this.pending.delete(requestId);
    const wake = this.windowWaiters.shift();
    if (wake !== undefined) wake();
  }

  private failAll(error: RunnelError): void {
    const all = [...this.pending.entries()];
    for (const [requestId, pending] of all) {
      this.settle(requestId, pending);
      pending.reject(error);
    }
  }
}

export interface ConnectionOptions {
  requestTimeoutMs: number;
  clientId: string;
  /** Produce requests in flight on this connection (Kafka's max.in.flight.requests.per.connection). */
  produceWindowMax: number;
  /** Fetch requests in flight on this connection. */
  fetchWindowMax: number;
  logger: Logger | undefined;
}

type UnaryMethod =
  | 'CreateTopics'
  | 'CreatePartitions'
  | 'DeleteTopics'
  | 'Metadata'
  | 'ListOffsets'
  | 'DescribeCluster'
  | 'ElectPreferredLeaders'
  | 'ElectLeaders'
  | 'AlterPartitionReassignments'
  | 'ListPartitionReassignments'
  | 'DescribeReplicaProgress'
  | 'RebalanceReplicas'
  | 'DecommissionBroker'
  | 'IncrementalAlterConfigs'
  | 'DescribeDynamicConfigs';

/** The gRPC client of one broker address. */
export class BrokerConnection {
  private client: ApiClient | null = null;
  private groupClient: GroupClient | null = null;
  readonly produce: StreamChannel<ClientApi.ProduceRequest, ClientApi.ProduceResponse__Output>;
  readonly fetch: StreamChannel<ClientApi.FetchRequest, ClientApi.FetchResponse__Output>;

  constructor(
    readonly address: string,
    private readonly options: ConnectionOptions,
  ) {
    this.produce = new StreamChannel(() => this.api().Produce(this.metadata()), {
      name: `Produce to ${address}`,
      windowMax: options.produceWindowMax,
      logger: options.logger,
    });
    this.fetch = new StreamChannel(() => this.api().Fetch(this.metadata()), {
      name: `Fetch from ${address}`,
      windowMax: options.fetchWindowMax,
      logger: options.logger,
    });
  }

  unary(method: 'CreateTopics', request: ClientApi.CreateTopicsRequest): Promise<ClientApi.CreateTopicsResponse__Output>;
  unary(method: 'CreatePartitions', request: ClientApi.CreatePartitionsRequest): Promise<ClientApi.CreatePartitionsResponse__Output>;
  unary(method: 'DeleteTopics', request: ClientApi.DeleteTopicsRequest): Promise<ClientApi.DeleteTopicsResponse__Output>;
  unary(method: 'Metadata', request: ClientApi.MetadataRequest): Promise<ClientApi.MetadataResponse__Output>;
  unary(method: 'ListOffsets', request: ClientApi.ListOffsetsRequest): Promise<ClientApi.ListOffsetsResponse__Output>;
  unary(method: 'DescribeCluster', request: ClientApi.DescribeClusterRequest): Promise<ClientApi.DescribeClusterResponse__Output>;
  unary(method: 'ElectPreferredLeaders', request: ClientApi.ElectPreferredLeadersRequest): Promise<ClientApi.ElectPreferredLeadersResponse__Output>;
  unary(method: 'ElectLeaders', request: ClientApi.LeaderElectionRequest): Promise<ClientApi.LeaderElectionResponse__Output>;
  unary(method: 'AlterPartitionReassignments', request: ClientApi.AlterPartitionReassignmentsRequest): Promise<ClientApi.AlterPartitionReassignmentsResponse__Output>;
  unary(method: 'ListPartitionReassignments', request: ClientApi.ListPartitionReassignmentsRequest): Promise<ClientApi.ListPartitionReassignmentsResponse__Output>;
  unary(method: 'DescribeReplicaProgress', request: ClientApi.DescribeReplicaProgressRequest): Promise<ClientApi.DescribeReplicaProgressResponse__Output>;
  unary(method: 'RebalanceReplicas', request: ClientApi.RebalanceReplicasRequest): Promise<ClientApi.RebalanceReplicasResponse__Output>;
  unary(method: 'DecommissionBroker', request: ClientApi.DecommissionBrokerRequest): Promise<ClientApi.DecommissionBrokerResponse__Output>;
  unary(method: 'IncrementalAlterConfigs', request: ClientApi.IncrementalAlterConfigsRequest): Promise<ClientApi.IncrementalAlterConfigsResponse__Output>;
  unary(method: 'DescribeDynamicConfigs', request: ClientApi.DescribeDynamicConfigsRequest): Promise<ClientApi.DescribeDynamicConfigsResponse__Output>;
  unary(method: UnaryMethod, request: object): Promise<unknown> {
    return this.call(this.api(), method, request, this.options.requestTimeoutMs);
  }

  /**
   * A GroupApi call. JoinGroup and SyncGroup are answered only when the rebalance gets that far,
   * so their callers pass a deadline past the rebalance timeout.
   */
  group<M extends keyof GroupCalls>(method: M, request: GroupCalls[M][0], timeoutMs = this.options.requestTimeoutMs): Promise<GroupCalls[M][1]> {
    if (this.groupClient === null) {
      const GroupApiConstructor = loadGroupProto().runnel.v1.GroupApi;
      this.groupClient = new GroupApiConstructor(this.address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
    }
    return this.call(this.groupClient, method, request, timeoutMs) as Promise<GroupCalls[M][1]>;
  }

  private call(client: grpc.Client, method: string, request: object, timeoutMs: number): Promise<unknown> {
    const deadline = Date.now() + timeoutMs;
    return new Promise((resolve, reject) => {
      const call = (client as unknown as Record<string, UnaryFunction>)[method]!;
      call.call(client, request, this.metadata(), { deadline }, (error, response) => {
        if (error) reject(fromGrpcError(error, `${method} to ${this.address}`));
        else resolve(response);
      });
    });
  }

  /** Closes both streams (see StreamChannel.close), then the channel. */
  async close(): Promise<void> {
    const graceMs = Math.min(this.options.requestTimeoutMs, CLOSE_GRACE_MS_MAX);
    await Promise.all([this.produce.close(graceMs), this.fetch.close(graceMs)]);
    this.client?.close();
    this.client = null;
    this.groupClient?.close();
    this.groupClient = null;
  }

  private api(): ApiClient {
    if (this.client === null) {
      const ClientApiConstructor = loadClientProto().runnel.v1.ClientApi;
      this.client = new ClientApiConstructor(this.address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
    }
    return this.client;
  }

  private metadata(): grpc.Metadata {
    const metadata = new grpc.Metadata();
    metadata.set('client-id', this.options.clientId);
    return metadata;
  }
}
