// The gRPC door into the broker (proto/runnel/v1/client.proto). It translates messages to the
// ReplicaManager and LogManager calls and back; it holds no state of its own besides the
// requests in flight on each stream.
import type * as grpc from '@grpc/grpc-js';
import { RunnelError, errorCode, type ClientApi, type Logger } from '@runnel/common';
import { errorResult } from './errorResult.js';
import type { LogManager } from './logManager.js';
import type { BrokerMetrics } from './metrics.js';
import type { ReplicaManager } from './replicaManager.js';

/** Requests a single stream may have in flight before the broker stops reading from it. */
export const STREAM_REQUESTS_IN_FLIGHT_MAX = 64;

export interface ClusterView {
  clusterId: string;
  nodeId: number;
  host: string;
  port: number;
  rack: string | null;
  liveBrokers(): number;
  defaultPartitions: number;
  defaultReplicationFactor: number;
  autoCreateTopics: boolean;
  deleteTopicEnable: boolean;
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
  ) {}

  handlers(): ClientApi.ClientApiHandlers {
    return {
      CreateTopics: (call, callback) => this.unary('createTopics', call, callback, (request) => this.createTopics(request)),
      DeleteTopics: (call, callback) => this.unary('deleteTopics', call, callback, (request) => this.deleteTopics(request)),
      Metadata: (call, callback) => this.unary('metadata', call, callback, (request) => this.metadata(request)),
      ListOffsets: (call, callback) =>
        this.unary('listOffsets', call, callback, async (request) => ({ partitions: this.replicas.listOffsets(request.partitions) })),
      Produce: (call) => this.stream('produce', call, (request) => this.produce(request)),
      Fetch: (call) => this.stream('fetch', call, (request, signal) => this.fetch(request, signal)),
    };
  }

  private unary<Request, Response>(
    api: string,
    call: grpc.ServerUnaryCall<Request, Response>,
    callback: grpc.sendUnaryData<Response>,
    handle: (request: Request) => Promise<Response>,
  ): void {
    const stopTimer = this.metrics.requestSeconds.startTimer({ api });
    this.metrics.requests.inc({ api });
    handle(call.request).then(
      (response) => {
        stopTimer();
        callback(null, response);
      },
      (error: unknown) => {
        stopTimer();
        this.logger.error({ err: error, api }, 'request failed');
        callback({ code: 13 /* INTERNAL */, details: `${api} failed: ${(error as Error)?.message ?? String(error)}` } as grpc.ServiceError, null);
      },
    );
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
  ): void {
    const closed = new AbortController();
    let inFlight = 0;
    let ended = false;
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
    call.on('data', (request: Request) => {
      this.metrics.requests.inc({ api });
      const stopTimer = this.metrics.requestSeconds.startTimer({ api });
      inFlight++;
      if (inFlight >= STREAM_REQUESTS_IN_FLIGHT_MAX) call.pause();
      handle(request, closed.signal)
        .then(
          (response) => {
            stopTimer();
            if (response !== null && !closed.signal.aborted) call.write(response);
          },
          (error: unknown) => this.logger.error({ err: error, api }, 'stream request failed'),
        )
        .finally(() => {
          inFlight--;
          if (inFlight === STREAM_REQUESTS_IN_FLIGHT_MAX - 1) call.resume();
          endIfDone();
        });
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

  /** Stops every stream: requests in flight are answered, then the stream ends. */
  drainStreams(): void {
    for (const drain of [...this.openStreams]) drain();
  }

  private async produce(request: ClientApi.ProduceRequest__Output): Promise<ClientApi.ProduceResponse | null> {
    const inputs = request.partitions.map((entry) => ({ topic: entry.topic, partition: entry.partition, records: entry.records }));
    const results = await this.replicas.produce(request.acks, inputs);
    if (request.acks === 0) return null;
    return { requestId: request.requestId, partitions: results };
  }

  private async fetch(request: ClientApi.FetchRequest__Output, signal: AbortSignal): Promise<ClientApi.FetchResponse> {
    const partitions = await this.replicas.fetch(request, signal);
    return { requestId: request.requestId, partitions };
  }

  private async createTopics(request: ClientApi.CreateTopicsRequest__Output): Promise<ClientApi.CreateTopicsResponse> {
    const topics: ClientApi.TopicResult[] = [];
    for (const topic of request.topics) {
      try {
        const partitions = topic.numPartitions === -1 ? this.cluster.defaultPartitions : topic.numPartitions;
        const replicationFactor = topic.replicationFactor === -1 ? this.cluster.defaultReplicationFactor : topic.replicationFactor;
        const configs: Record<string, string> = {};
        for (const entry of topic.configs) {
          if (Object.hasOwn(configs, entry.name)) throw new RunnelError('INVALID_CONFIG', `config '${entry.name}' is given twice`);
          configs[entry.name] = entry.value;
        }
        if (topics.some((done) => done.name === topic.name && done.errorCode === 0)) {
          throw new RunnelError('INVALID_REQUEST', `topic '${topic.name}' appears twice in the request`);
        }
        this.logs.validateNewTopic(topic.name, partitions, replicationFactor, configs, this.cluster.liveBrokers());
        if (!request.validateOnly) await this.logs.createTopic(topic.name, partitions, replicationFactor, configs);
        topics.push({ name: topic.name, errorCode: 0, errorMessage: '' });
      } catch (error) {
        topics.push({ name: topic.name, ...errorResult(error, this.logger) });
      }
    }
    this.metrics.partitions.set(this.logs.allPartitions().length);
    return { topics };
  }

  private async deleteTopics(request: ClientApi.DeleteTopicsRequest__Output): Promise<ClientApi.DeleteTopicsResponse> {
    const topics: ClientApi.TopicResult[] = [];
    for (const name of request.names) {
      try {
        if (!this.cluster.deleteTopicEnable) throw new RunnelError('TOPIC_DELETION_DISABLED', 'delete.topic.enable is false on this broker');
        await this.logs.deleteTopic(name);
        topics.push({ name, errorCode: 0, errorMessage: '' });
      } catch (error) {
        topics.push({ name, ...errorResult(error, this.logger) });
      }
    }
    this.metrics.partitions.set(this.logs.allPartitions().length);
    return { topics };
  }

  private async metadata(request: ClientApi.MetadataRequest__Output): Promise<ClientApi.MetadataResponse> {
    const wanted = request.topics.length === 0 ? this.logs.topicNames() : [...new Set(request.topics)];
    const topics: ClientApi.TopicInfo[] = [];
    for (const name of wanted) {
      let topic = this.logs.topic(name);
      if (topic === undefined && request.allowAutoTopicCreation && this.cluster.autoCreateTopics) {
        try {
          this.logs.validateNewTopic(name, this.cluster.defaultPartitions, this.cluster.defaultReplicationFactor, {}, this.cluster.liveBrokers());
          topic = await this.logs.createTopic(name, this.cluster.defaultPartitions, this.cluster.defaultReplicationFactor, {});
          this.metrics.partitions.set(this.logs.allPartitions().length);
        } catch (error) {
          topics.push({ name, ...errorResult(error, this.logger), partitions: [], configs: [] });
          continue;
        }
      }
      if (topic === undefined) {
        topics.push({ name, errorCode: errorCode('UNKNOWN_TOPIC_OR_PARTITION'), errorMessage: `topic '${name}' does not exist`, partitions: [], configs: [] });
        continue;
      }
      const partitions: ClientApi.PartitionInfo[] = [];
      for (let index = 0; index < topic.partitions; index++) {
        const partition = this.logs.partition(topic.name, index);
        partitions.push({
          partition: index,
          errorCode: 0,
          leader: this.cluster.nodeId,
          leaderEpoch: topic.leaderEpoch,
          replicas: [this.cluster.nodeId],
          isr: [this.cluster.nodeId],
          logStartOffset: partition?.log.logStartOffset ?? 0,
          highWatermark: partition?.highWatermark ?? 0,
        });
      }
      const configs = request.includeConfigs ? Object.entries(topic.configs).map(([configName, value]) => ({ name: configName, value })) : [];
      topics.push({ name: topic.name, errorCode: 0, errorMessage: '', partitions, configs });
    }
    return {
      clusterId: this.cluster.clusterId,
      controllerId: this.cluster.nodeId,
      brokers: [{ nodeId: this.cluster.nodeId, host: this.cluster.host, port: this.cluster.port, rack: this.cluster.rack ?? '' }],
      topics,
    };
  }
}
