// The gRPC door into the broker (proto/runnel/v1/client.proto). It translates messages to the
// ReplicaManager and LogManager calls and back; it holds no state of its own besides the
// requests in flight on each stream.
import type * as grpc from '@grpc/grpc-js';
import { errorCode, type ClientApi, type Logger, type ReplicationApi } from '@runnel/common';
import { errorResult } from './errorResult.js';
import { serveUnary } from './unaryCall.js';
import type { MetadataImage } from '@runnel/controller';
import type { ControllerClient } from '@runnel/controller/quorum';
import type { LogManager } from './logManager.js';
import type { BrokerMetrics } from './metrics.js';
import type { ReplicaManager } from './replicaManager.js';
import { RequestMemoryPool } from './requestMemoryPool.js';

/** The bytes a produce request holds while in flight: its record batches. */
function produceRequestBytes(request: ClientApi.ProduceRequest__Output): number {
  let bytes = 0;
  for (const entry of request.partitions) bytes += entry.records.length;
  return bytes;
}

/** Requests a single stream may have in flight before the broker stops reading from it. */
export const STREAM_REQUESTS_IN_FLIGHT_MAX = 64;

/** How long an admin request waits for this broker to apply the metadata change it made. */
export const METADATA_PROPAGATION_TIMEOUT_MS = 5_000;

/** What the client API needs of the cluster: the metadata this broker has applied, and the controller. */
export interface ClusterView {
  clusterId: string;
  nodeId: number;
  autoCreateTopics: boolean;
  image(): MetadataImage;
  controller: ControllerClient;
  /** Resolves true once this broker has applied metadata offset `offset`, false after `timeoutMs`. */
  waitForMetadata(offset: number, timeoutMs: number): Promise<boolean>;
}

export class ClientApiService {
  /** Ends each open stream once its in-flight requests are answered; used on shutdown. */
  private readonly openStreams = new Set<() => void>();

  constructor(
    private readonly cluster: ClusterView,
    private readonly logs: LogManager,
    private readonly replicas: ReplicaManager,
    private readonly metrics: BrokerMetrics,
    private readonly logger: Logger,
    /** queued.max.request.bytes, shared by every stream of this broker. */
    private readonly memory: RequestMemoryPool = new RequestMemoryPool(-1),
  ) {}

  handlers(): ClientApi.ClientApiHandlers {
    return {
      CreateTopics: (call, callback) => this.serve('createTopics', call, callback, (request) => this.createTopics(request)),
      DeleteTopics: (call, callback) => this.serve('deleteTopics', call, callback, (request) => this.deleteTopics(request)),
      Metadata: (call, callback) => this.serve('metadata', call, callback, (request) => this.metadata(request)),
      ListOffsets: (call, callback) =>
        this.serve('listOffsets', call, callback, async (request) => ({ partitions: this.replicas.listOffsets(request.partitions) })),
      DescribeCluster: (call, callback) => this.serve('describeCluster', call, callback, () => this.describeCluster()),
      ElectPreferredLeaders: (call, callback) => this.serve('electPreferredLeaders', call, callback, () => this.electPreferredLeaders()),
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
      const stopTimer = this.metrics.requestSeconds.startTimer({ api });
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
      this.metrics.requests.inc({ api });
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

  /** Waits (bounded) until this broker has applied a change the controller committed at `offset`. */
  private async propagated(offset: number): Promise<void> {
    if (offset < 0) return;
    const reached = await this.cluster.waitForMetadata(offset, METADATA_PROPAGATION_TIMEOUT_MS);
    if (!reached) this.logger.warn({ offset }, 'the controller committed a change this broker has not applied yet; answering anyway');
  }

  /** Forwarded to the active controller, wherever it is; answered once this broker has the result. */
  private async createTopics(request: ClientApi.CreateTopicsRequest__Output): Promise<ClientApi.CreateTopicsResponse> {
    try {
      const response = await this.cluster.controller.createTopics({
        topics: request.topics.map((topic) => ({ name: topic.name, numPartitions: topic.numPartitions, replicationFactor: topic.replicationFactor, configs: topic.configs })),
        validateOnly: request.validateOnly,
      });
      if (response.errorCode !== 0) return { topics: request.topics.map((topic) => ({ name: topic.name, errorCode: response.errorCode, errorMessage: response.errorMessage })) };
      await this.propagated(Number(response.metadataOffset));
      return { topics: response.topics.map((topic) => ({ name: topic.name, errorCode: topic.errorCode, errorMessage: topic.errorMessage })) };
    } catch (error) {
      const fields = errorResult(error, this.logger);
      return { topics: request.topics.map((topic) => ({ name: topic.name, ...fields })) };
    }
  }

  private async deleteTopics(request: ClientApi.DeleteTopicsRequest__Output): Promise<ClientApi.DeleteTopicsResponse> {
    try {
      const response = await this.cluster.controller.deleteTopics({ names: request.names });
      if (response.errorCode !== 0) return { topics: request.names.map((name) => ({ name, errorCode: response.errorCode, errorMessage: response.errorMessage })) };
      await this.propagated(Number(response.metadataOffset));
      return { topics: response.topics.map((topic) => ({ name: topic.name, errorCode: topic.errorCode, errorMessage: topic.errorMessage })) };
    } catch (error) {
      const fields = errorResult(error, this.logger);
      return { topics: request.names.map((name) => ({ name, ...fields })) };
    }
  }

  private async electPreferredLeaders(): Promise<ClientApi.ElectPreferredLeadersResponse> {
    try {
      const response = await this.cluster.controller.electLeaders();
      if (response.errorCode === 0) await this.propagated(Number(response.metadataOffset));
      return { errorCode: response.errorCode, errorMessage: response.errorMessage, moved: response.moved, notMoved: response.notMoved };
    } catch (error) {
      return { ...errorResult(error, this.logger), moved: [], notMoved: [] };
    }
  }

  /** The brokers clients may talk to: registered, unfenced, with a GRPC listener. */
  private liveBrokers(image: MetadataImage): ClientApi.BrokerInfo[] {
    const brokers: ClientApi.BrokerInfo[] = [];
    for (const broker of image.brokers()) {
      const listener = broker.listeners.find((candidate) => candidate.name === 'GRPC');
      if (broker.fenced || listener === undefined) continue;
      brokers.push({ nodeId: broker.id, host: listener.host, port: listener.port, rack: broker.rack ?? '' });
    }
    return brokers.sort((a, b) => a.nodeId! - b.nodeId!);
  }

  private partitionInfos(image: MetadataImage, topic: string): ClientApi.PartitionInfo[] {
    const partitions: ClientApi.PartitionInfo[] = [];
    for (const state of image.topic(topic)?.partitions() ?? []) {
      const local = this.logs.partition(topic, state.partition);
      partitions.push({
        partition: state.partition,
        errorCode: state.leader === -1 ? errorCode('LEADER_NOT_AVAILABLE') : 0,
        leader: state.leader,
        leaderEpoch: state.leaderEpoch,
        partitionEpoch: state.partitionEpoch,
        replicas: [...state.replicas],
        isr: [...state.isr],
        offlineReplicas: image.offlineBrokersOf(state.topicId, state.partition),
        logStartOffset: local?.isLeader === true ? local.log.logStartOffset : -1,
        // A new leader's watermark may still be below what the previous leader answered (KIP-207).
        highWatermark: local?.isLeader === true && local.highWatermarkReachedEpochStart ? local.highWatermark : -1,
      });
    }
    return partitions;
  }

  private async metadata(request: ClientApi.MetadataRequest__Output): Promise<ClientApi.MetadataResponse> {
    let image = this.cluster.image();
    const wanted = request.topics.length === 0 ? image.topics().map((topic) => topic.name).sort() : [...new Set(request.topics)];
    const autoCreateErrors = new Map<string, { errorCode: number; errorMessage: string }>();
    const missing = wanted.filter((name) => image.topic(name) === undefined);
    if (missing.length > 0 && request.allowAutoTopicCreation && this.cluster.autoCreateTopics) {
      // Like Kafka's auto.create.topics.enable: the controller creates them with the defaults.
      const created = await this.createTopics({ topics: missing.map((name) => ({ name, numPartitions: -1, replicationFactor: -1, configs: [] })), validateOnly: false });
      for (const result of created.topics ?? []) {
        if (result.errorCode !== 0 && result.errorCode !== errorCode('TOPIC_ALREADY_EXISTS')) autoCreateErrors.set(result.name!, { errorCode: result.errorCode!, errorMessage: result.errorMessage! });
      }
      image = this.cluster.image();
    }
    const topics: ClientApi.TopicInfo[] = [];
    for (const name of wanted) {
      const failed = autoCreateErrors.get(name);
      if (failed !== undefined) {
        topics.push({ name, ...failed, partitions: [], configs: [] });
        continue;
      }
      if (image.topic(name) === undefined) {
        topics.push({ name, errorCode: errorCode('UNKNOWN_TOPIC_OR_PARTITION'), errorMessage: `topic '${name}' does not exist`, partitions: [], configs: [] });
        continue;
      }
      const configs = request.includeConfigs ? [...image.topicConfigs(name)].map(([configName, value]) => ({ name: configName, value })) : [];
      topics.push({ name, errorCode: 0, errorMessage: '', partitions: this.partitionInfos(image, name), configs });
    }
    return { clusterId: this.cluster.clusterId, controllerId: this.cluster.controller.controllerId, brokers: this.liveBrokers(image), topics };
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
        };
      })
      .sort((a, b) => a.nodeId - b.nodeId);
    const topics = image
      .topics()
      .map((topic) => ({ name: topic.name, errorCode: 0, errorMessage: '', partitions: this.partitionInfos(image, topic.name), configs: [] }))
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
