// The gRPC door into the broker (proto/runnel/v1/client.proto). It translates messages to the
// ReplicaManager and LogManager calls and back; it holds no state of its own besides the
// requests in flight on each stream.
import type * as grpc from '@grpc/grpc-js';
import { errorCode, type ClientApi, type Logger, type ReplicationApi } from '@runnel/common';
import { errorResult } from './errorResult.js';
import { serveUnary } from './unaryCall.js';
import type { LogManager } from './logManager.js';
import type { BrokerMetrics } from './metrics.js';
import type { ReplicaManager } from './replicaManager.js';
import { RequestMemoryPool } from './requestMemoryPool.js';
import { alterDynamicConfigs, describeDynamicConfigs, type ConfigResourceType, type DynamicConfigChange } from './configAdmin.js';
import { describePartitions, liveBrokerEndpoints, type ClusterView, type TopicAdmin, type TopicDescription } from './topicAdmin.js';

/** The bytes a produce request holds while in flight: its record batches. */
function produceRequestBytes(request: ClientApi.ProduceRequest__Output): number {
  let bytes = 0;
  for (const entry of request.partitions) bytes += entry.records.length;
  return bytes;
}

/** Requests a single stream may have in flight before the broker stops reading from it. */
export const STREAM_REQUESTS_IN_FLIGHT_MAX = 64;

export class ClientApiService {
  /** Ends each open stream once its in-flight requests are answered; used on shutdown. */
  private readonly openStreams = new Set<() => void>();

  private readonly cluster: ClusterView;

  constructor(
    private readonly topics: TopicAdmin,
    private readonly logs: LogManager,
    private readonly replicas: ReplicaManager,
    private readonly metrics: BrokerMetrics,
    private readonly logger: Logger,
    /** queued.max.request.bytes, shared by every stream of this broker. */
    private readonly memory: RequestMemoryPool = new RequestMemoryPool(-1),
  ) {
    this.cluster = topics.cluster;
  }

  handlers(): ClientApi.ClientApiHandlers {
    return {
      CreateTopics: (call, callback) => this.serve('createTopics', call, callback, (request) => this.createTopics(request)),
      CreatePartitions: (call, callback) => this.serve('createPartitions', call, callback, (request) => this.createPartitions(request)),
      DeleteTopics: (call, callback) => this.serve('deleteTopics', call, callback, (request) => this.deleteTopics(request)),
      Metadata: (call, callback) => this.serve('metadata', call, callback, (request) => this.metadata(request)),
      ListOffsets: (call, callback) =>
        this.serve('listOffsets', call, callback, async (request) => ({ partitions: this.replicas.listOffsets(request.partitions) })),
      DescribeCluster: (call, callback) => this.serve('describeCluster', call, callback, () => this.describeCluster()),
      ElectPreferredLeaders: (call, callback) => this.serve('electPreferredLeaders', call, callback, () => this.electPreferredLeaders()),
      ElectLeaders: (call, callback) =>
        this.serve('electLeaders', call, callback, async (request) => {
          if (request.electionType !== 0 && request.electionType !== 1) {
            return { errorCode: errorCode('INVALID_REQUEST'), errorMessage: `unknown election type ${request.electionType} (0 preferred, 1 unclean)`, topics: [] };
          }
          const topics = request.allPartitions ? null : request.topics.map((entry) => ({ topic: entry.topic, partitions: entry.partitions }));
          const results = await this.topics.electLeaders(request.electionType === 1 ? 'unclean' : 'preferred', topics);
          return { ...results.error, topics: results.topics.map((topic) => ({ topic: topic.topic, partitions: [...topic.partitions] })) };
        }),
      AlterPartitionReassignments: (call, callback) =>
        this.serve('alterPartitionReassignments', call, callback, async (request) => ({
          errorCode: 0,
          errorMessage: '',
          partitions: await this.topics.alterPartitionReassignments(
            request.partitions.map((item) => ({ topic: item.topic, partition: item.partition, replicas: item.cancel ? null : item.replicas })),
          ),
        })),
      ListPartitionReassignments: (call, callback) =>
        this.serve('listPartitionReassignments', call, callback, (request) => this.topics.listPartitionReassignments(request.partitions)),
      RebalanceReplicas: (call, callback) => this.serve('rebalanceReplicas', call, callback, (request) => this.rebalanceReplicas(request)),
      DecommissionBroker: (call, callback) => this.serve('decommissionBroker', call, callback, (request) => this.decommissionBroker(request)),
      DescribeReplicaProgress: (call, callback) =>
        this.serve('describeReplicaProgress', call, callback, async (request) => ({ partitions: this.topics.describeReplicaProgress(request.partitions) })),
      IncrementalAlterConfigs: (call, callback) => this.serve('incrementalAlterConfigs', call, callback, (request) => this.incrementalAlterConfigs(request)),
      DescribeDynamicConfigs: (call, callback) =>
        this.serve('describeDynamicConfigs', call, callback, async (request) => ({
          resources: describeDynamicConfigs(
            this.cluster.image(),
            request.resources.map((resource) => ({ type: resource.type as ConfigResourceType, name: resource.name })),
          ).map(({ type, name, ...rest }) => ({ resource: { type, name }, ...rest })),
        })),
      Produce: (call) => this.stream('produce', call, (request) => this.produce(request), produceRequestBytes),
      Fetch: (call) => this.stream('fetch', call, (request, signal) => this.fetch(request, signal)),
    };
  }

  /** ReplicationApi (replication.proto): followers' fetches, on the same listener and streams as clients'. */
  replicationHandlers(): ReplicationApi.ReplicationApiHandlers {
    return {
      ReplicaFetch: (call) => this.stream('replicaFetch', call, (request, signal) => this.replicaFetch(request, signal)),
    };
  }

  private async replicaFetch(request: ReplicationApi.ReplicaFetchRequest__Output, signal: AbortSignal): Promise<ReplicationApi.ReplicaFetchResponse> {
    const partitions = await this.replicas.replicaFetch(
      {
        replicaId: request.replicaId,
        brokerEpoch: Number(request.brokerEpoch),
        maxWaitMs: request.maxWaitMs,
        minBytes: request.minBytes,
        maxBytes: request.maxBytes,
        partitions: request.partitions.map((entry) => ({
          topic: entry.topic,
          partition: entry.partition,
          currentLeaderEpoch: entry.currentLeaderEpoch,
          fetchOffset: Number(entry.fetchOffset),
          lastFetchedEpoch: entry.lastFetchedEpoch,
          partitionMaxBytes: entry.partitionMaxBytes,
        })),
      },
      signal,
    );
    return { requestId: request.requestId, partitions };
  }

  /**
   * A long-lived bidirectional stream: each request is answered by a response with the same
   * request_id, possibly out of order. Reading pauses while too many requests are in flight.
   * `handle` returning null means "no response" (acks=0).
   */
  private stream<Request extends { requestId: number }, Response>(
    api: string,
    call: grpc.ServerDuplexStream<Request, Response>,
    handle: (request: Request, signal: AbortSignal) => Promise<Response | null>,
    bytesOf: (request: Request) => number = () => 0,
  ): void {
    const closed = new AbortController();
    let inFlight = 0;
    let ended = false;
    // Requests received but waiting for room in the broker's request memory (in order).
    let waitingForMemory = 0;
    const reading = () => inFlight < STREAM_REQUESTS_IN_FLIGHT_MAX && waitingForMemory === 0;
    const endIfDone = () => {
      if (ended && inFlight === 0 && !closed.signal.aborted) {
        this.openStreams.delete(drain);
        call.end();
      }
    };
    const drain = () => {
      ended = true;
      endIfDone();
    };
    this.openStreams.add(drain);
    const run = (request: Request, bytes: number) => {
      const stopTimer = this.metrics.requestSeconds.startTimer({ api, listener: 'GRPC' });
      handle(request, closed.signal)
        .then(
          (response) => {
            stopTimer();
            if (response !== null && !closed.signal.aborted) call.write(response);
          },
          (error: unknown) => this.logger.error({ err: error, api }, 'stream request failed'),
        )
        .finally(() => {
          if (bytes > 0) this.memory.release(bytes);
          inFlight--;
          if (reading()) call.resume();
          endIfDone();
        });
    };
    call.on('data', (request: Request) => {
      this.metrics.requests.inc({ api, listener: 'GRPC' });
      inFlight++;
      const bytes = bytesOf(request);
      if (bytes === 0 || this.memory.acquire(bytes, () => {
        waitingForMemory--;
        run(request, bytes);
        if (reading()) call.resume();
      })) {
        run(request, bytes);
      } else {
        waitingForMemory++;
        this.metrics.requestsWaitingForMemory.inc();
      }
      if (!reading()) call.pause();
    });
    call.on('end', () => {
      ended = true;
      endIfDone();
    });
    const abort = () => {
      this.openStreams.delete(drain);
      closed.abort();
    };
    call.on('cancelled', abort);
    call.on('error', abort);
    call.on('close', abort);
  }

  private serve<Request, Response>(api: string, call: grpc.ServerUnaryCall<Request, Response>, callback: grpc.sendUnaryData<Response>, handle: (request: Request) => Promise<Response>): void {
    serveUnary(api, call, callback, handle, this.metrics, this.logger);
  }

  /** Stops every stream: requests in flight are answered, then the stream ends. */
  drainStreams(): void {
    for (const drain of [...this.openStreams]) drain();
  }

  private async produce(request: ClientApi.ProduceRequest__Output): Promise<ClientApi.ProduceResponse | null> {
    const inputs = request.partitions.map((entry) => ({ topic: entry.topic, partition: entry.partition, records: entry.records }));
    const results = await this.replicas.produce(request.acks, inputs, request.timeoutMs > 0 ? request.timeoutMs : 30_000);
    if (request.acks === 0) return null;
    return { requestId: request.requestId, partitions: results };
  }

  private async fetch(request: ClientApi.FetchRequest__Output, signal: AbortSignal): Promise<ClientApi.FetchResponse> {
    const partitions = await this.replicas.fetch(request, signal);
    return { requestId: request.requestId, partitions };
  }

  private async createTopics(request: ClientApi.CreateTopicsRequest__Output): Promise<ClientApi.CreateTopicsResponse> {
    const results = await this.topics.createTopics(request.topics, request.validateOnly);
    return { topics: results.map((topic) => ({ name: topic.name, errorCode: topic.errorCode, errorMessage: topic.errorMessage })) };
  }

  private async createPartitions(request: ClientApi.CreatePartitionsRequest__Output): Promise<ClientApi.CreatePartitionsResponse> {
    const topics = request.topics.map((topic) => ({
      name: topic.name,
      count: topic.count,
      assignments: topic.assignments.length === 0 ? null : topic.assignments.map((assignment) => assignment.brokerIds),
    }));
    return { topics: await this.topics.createPartitions(topics, request.validateOnly) };
  }

  private async incrementalAlterConfigs(request: ClientApi.IncrementalAlterConfigsRequest__Output): Promise<ClientApi.IncrementalAlterConfigsResponse> {
    const changes: DynamicConfigChange[] = [];
    for (const [k, change] of request.resources.entries()) {
      const type = change.resource?.type;
      const bad = change.ops.find((operation) => operation.op !== 0 && operation.op !== 1);
      const problem =
        type !== 'broker' && type !== 'cluster' ? `resources[${k}].type must be "broker" or "cluster", got ${JSON.stringify(type ?? '')}` : bad === undefined ? null : `op ${bad.op} for '${bad.key}' is not 0 (set) or 1 (delete)`;
      if (problem !== null) {
        const refused = { errorCode: errorCode('INVALID_REQUEST'), errorMessage: problem };
        return { resources: request.resources.map((resource) => ({ resource: { type: resource.resource?.type ?? '', name: resource.resource?.name ?? '' }, ...refused })) };
      }
      changes.push({
        type: type as ConfigResourceType,
        name: change.resource!.name,
        ops: change.ops.map((operation) => ({ key: operation.key, op: operation.op === 0 ? 'set' : 'delete', value: operation.op === 0 ? operation.value : null })),
      });
    }
    const results = await alterDynamicConfigs(this.topics, this.logger, changes, request.validateOnly);
    return { resources: results.map(({ type, name, ...rest }) => ({ resource: { type, name }, ...rest })) };
  }

  private async deleteTopics(request: ClientApi.DeleteTopicsRequest__Output): Promise<ClientApi.DeleteTopicsResponse> {
    return { topics: await this.topics.deleteTopics(request.names) };
  }

  private async electPreferredLeaders(): Promise<ClientApi.ElectPreferredLeadersResponse> {
    try {
      const response = await this.cluster.controller.electLeaders();
      if (response.errorCode === 0) await this.topics.waitUntilApplied(Number(response.metadataOffset));
      return { errorCode: response.errorCode, errorMessage: response.errorMessage, moved: response.moved, notMoved: response.notMoved };
    } catch (error) {
      return { ...errorResult(error, this.logger), moved: [], notMoved: [] };
    }
  }

  /** `cluster rebalance --replicas`, on the active controller; answered once this broker has applied the moves it started. */
  private async rebalanceReplicas(request: ClientApi.RebalanceReplicasRequest__Output): Promise<ClientApi.RebalanceReplicasResponse> {
    try {
      const response = await this.cluster.controller.rebalanceReplicas({ dryRun: request.dryRun });
      if (response.errorCode === 0) await this.topics.waitUntilApplied(Number(response.metadataOffset));
      const { controllerId: _controllerId, metadataOffset: _metadataOffset, ...answer } = response;
      return answer;
    } catch (error) {
      return { ...errorResult(error, this.logger), moves: [], brokers: [], unplaceable: [], started: [] };
    }
  }

  /** `broker decommission N` / `broker recommission N`, on the active controller. */
  private async decommissionBroker(request: ClientApi.DecommissionBrokerRequest__Output): Promise<ClientApi.DecommissionBrokerResponse> {
    try {
      const response = await this.cluster.controller.decommissionBroker({ brokerId: request.brokerId, decommission: request.decommission });
      if (response.errorCode === 0) await this.topics.waitUntilApplied(Number(response.metadataOffset));
      const { controllerId: _controllerId, metadataOffset: _metadataOffset, ...answer } = response;
      return answer;
    } catch (error) {
      return { ...errorResult(error, this.logger), replicasLeft: 0, moves: [], unplaceable: [] };
    }
  }

  private async metadata(request: ClientApi.MetadataRequest__Output): Promise<ClientApi.MetadataResponse> {
    const { image, topics } = await this.topics.describeTopics(request.topics.length === 0 ? null : request.topics, request.allowAutoTopicCreation);
    return {
      clusterId: this.cluster.clusterId,
      controllerId: this.cluster.controller.controllerId,
      brokers: liveBrokerEndpoints(image, 'GRPC').map((broker) => ({ ...broker, rack: broker.rack ?? '' })),
      topics: topics.map((topic) => ({
        ...topicInfo(topic),
        configs: request.includeConfigs && topic.errorCode === 0 ? [...image.topicConfigs(topic.name)].map(([name, value]) => ({ name, value })) : [],
      })),
    };
  }

  private async describeCluster(): Promise<ClientApi.DescribeClusterResponse> {
    const image = this.cluster.image();
    let quorum = { errorCode: 0, errorMessage: '', controllerId: -1, term: -1, voters: [] as ClientApi.QuorumVoter[] };
    try {
      const response = await this.cluster.controller.describeQuorum();
      quorum =
        response.errorCode === 0
          ? { errorCode: 0, errorMessage: '', controllerId: response.controllerId, term: Number(response.term), voters: response.voters.map((voter) => ({ nodeId: voter.nodeId, address: voter.address, logEndOffset: Number(voter.matchIndex) })) }
          : { ...quorum, errorCode: response.errorCode, errorMessage: response.errorMessage };
    } catch (error) {
      quorum = { ...quorum, ...errorResult(error, this.logger) };
    }
    const nodes: ClientApi.ClusterNode[] = image
      .brokers()
      .map((broker) => {
        const listener = broker.listeners.find((candidate) => candidate.name === 'GRPC');
        return {
          nodeId: broker.id,
          host: listener?.host ?? '',
          port: listener?.port ?? 0,
          rack: broker.rack ?? '',
          fenced: broker.fenced,
          incarnationId: broker.incarnationId,
          brokerEpoch: broker.epoch,
          inControlledShutdown: false,
          offlineReplicas: image.offlineReplicas(broker.id).map((replica) => ({ topic: replica.topic, partition: replica.partition })),
          logDirState: broker.logDir,
          decommissioned: broker.decommissioned,
        };
      })
      .sort((a, b) => a.nodeId - b.nodeId);
    const topics = image
      .topics()
      .map((topic) => ({ name: topic.name, errorCode: 0, errorMessage: '', partitions: describePartitions(image, this.logs, topic.name), configs: [] }))
      .sort((a, b) => a.name.localeCompare(b.name));
    return {
      // A cluster with no reachable controller still describes what this broker knows: controller -1
      // and the reason in error_message.
      errorCode: 0,
      errorMessage: quorum.errorCode === 0 ? '' : `no active controller answered: ${quorum.errorMessage}`,
      clusterId: this.cluster.clusterId,
      controllerId: quorum.controllerId,
      controllerTerm: quorum.term,
      voters: quorum.voters,
      servedBy: this.cluster.nodeId,
      metadataOffset: image.highestOffset,
      nodes,
      topics,
    };
  }
}

/** A topic description as client.proto carries it (configs are added by the caller). */
function topicInfo(topic: TopicDescription): ClientApi.TopicInfo {
  return { name: topic.name, errorCode: topic.errorCode, errorMessage: topic.errorMessage, partitions: topic.partitions, configs: [] };
}
