// The client's view of the cluster: a connection per broker address, and a metadata cache that
// says which broker leads each partition. The cache refreshes when it is older than
// metadataMaxAgeMs, or when a request failed in a way that suggests leaders moved.
import { RunnelError, type ClientApi } from '@runnel/common';
import { BrokerConnection } from './connection.js';
import { brokerAddress, type ResolvedClientOptions } from './options.js';

export interface TopicMetadata {
  name: string;
  errorCode: number;
  errorMessage: string;
  /** Indexed by partition id. */
  partitions: ClientApi.PartitionInfo__Output[];
}

export interface ClusterOptions extends ResolvedClientOptions {
  allowAutoTopicCreation: boolean;
  produceWindowMax: number;
}

/** Brokers a client keeps connections to; a cluster larger than this is a misconfiguration. */
const CONNECTIONS_MAX = 1024;
/** Topics whose metadata a client tracks. */
const TOPICS_TRACKED_MAX = 100_000;

export class Cluster {
  private readonly connections = new Map<string, BrokerConnection>();
  private brokers = new Map<number, ClientApi.BrokerInfo__Output>();
  private readonly topics = new Map<string, TopicMetadata>();
  /** Topics this client uses: each refresh asks for all of them. */
  private readonly tracked = new Set<string>();
  private fetchedAtMs = 0;
  private refreshing: Promise<void> | null = null;
  private refreshWanted = false;
  private closed = false;

  constructor(readonly options: ClusterOptions) {}

  /** Cached metadata for `topic`, or undefined when unknown or older than metadataMaxAgeMs. */
  cachedTopic(topic: string): TopicMetadata | undefined {
    if (Date.now() - this.fetchedAtMs > this.options.metadataMaxAgeMs) return undefined;
    return this.topics.get(topic);
  }

  /** Cached metadata for `topic` whatever its age (the hot path; the sender refreshes old metadata). */
  knownTopic(topic: string): TopicMetadata | undefined {
    return this.topics.get(topic);
  }

  /** Metadata for `topic`, refreshed first if missing or stale. */
  async topic(topic: string): Promise<TopicMetadata> {
    this.track(topic);
    const cached = this.cachedTopic(topic);
    if (cached !== undefined && cached.errorCode === 0 && !this.refreshWanted) return cached;
    await this.refresh();
    // A refresh already under way when `topic` was first tracked did not ask for it (and
    // track() left refreshWanted set): the next one does.
    if (!this.topics.has(topic) && this.refreshWanted) await this.refresh();
    const fresh = this.topics.get(topic);
    if (fresh === undefined) throw new RunnelError('UNKNOWN_TOPIC_OR_PARTITION', `topic '${topic}' is not in the metadata`);
    return fresh;
  }

  /** Marks the cache as suspect: the next `topic()` or `refreshIfWanted()` fetches metadata again. */
  requestRefresh(): void {
    this.refreshWanted = true;
  }

  /** Runs a refresh if one was asked for or the cache is stale; errors are left to the next use. */
  refreshIfWanted(): void {
    if (!this.refreshWanted && Date.now() - this.fetchedAtMs <= this.options.metadataMaxAgeMs) return;
    this.refresh().catch((error: unknown) => this.options.logger?.debug({ err: (error as Error).message }, 'metadata refresh failed'));
  }

  track(topic: string): void {
    if (this.tracked.has(topic)) return;
    if (this.tracked.size >= TOPICS_TRACKED_MAX) throw new RangeError(`a client tracks at most ${TOPICS_TRACKED_MAX} topics`);
    this.tracked.add(topic);
    this.refreshWanted = true;
  }

  /** Fetches metadata for the tracked topics; concurrent callers share one request. */
  refresh(): Promise<void> {
    if (this.refreshing !== null) return this.refreshing;
    this.refreshWanted = false;
    const topics = [...this.tracked];
    this.refreshing = this.metadata({ topics, allowAutoTopicCreation: this.options.allowAutoTopicCreation })
      .then((response) => this.apply(response, topics))
      .catch((error: unknown) => {
        this.refreshWanted = true;
        throw error;
      })
      .finally(() => {
        this.refreshing = null;
      });
    return this.refreshing;
  }

  /**
   * A Metadata call to any broker: known brokers first, then the bootstrap list, moving on after
   * a network error. Nothing is cached; `refresh` does that.
   */
  async metadata(request: ClientApi.MetadataRequest): Promise<ClientApi.MetadataResponse__Output> {
    return this.anyBroker((connection) => connection.unary('Metadata', request));
  }

  /** Runs `call` on one broker after another until one answers without a network error. */
  async anyBroker<T>(call: (connection: BrokerConnection) => Promise<T>): Promise<T> {
    let lastError: unknown = new RunnelError('NETWORK_EXCEPTION', 'no broker address to try');
    for (const address of this.candidateAddresses()) {
      try {
        return await call(this.connection(address));
      } catch (error) {
        if (!(error instanceof RunnelError) || error.errorName !== 'NETWORK_EXCEPTION') throw error;
        lastError = error;
      }
    }
    throw lastError;
  }

  /** The connection to the leader of a partition, or a retriable error saying why there is none. */
  leaderConnection(topic: string, partition: number): BrokerConnection {
    const info = this.topics.get(topic)?.partitions[partition];
    if (info === undefined) throw new RunnelError('UNKNOWN_TOPIC_OR_PARTITION', `${topic}-${partition} is not in the metadata`);
    if (info.leader < 0) throw new RunnelError('LEADER_NOT_AVAILABLE', `${topic}-${partition} has no leader`);
    return this.connectionToNode(info.leader, `${topic}-${partition}`);
  }

  leaderId(topic: string, partition: number): number {
    return this.topics.get(topic)?.partitions[partition]?.leader ?? -1;
  }

  connectionToNode(nodeId: number, what: string): BrokerConnection {
    const broker = this.brokers.get(nodeId);
    if (broker === undefined) throw new RunnelError('LEADER_NOT_AVAILABLE', `leader ${nodeId} of ${what} is not among the known brokers`);
    return this.connection(brokerAddress(broker.host, broker.port));
  }

  connection(address: string): BrokerConnection {
    if (this.closed) throw new RunnelError('NETWORK_EXCEPTION', 'client is closed');
    let connection = this.connections.get(address);
    if (connection === undefined) {
      if (this.connections.size >= CONNECTIONS_MAX) throw new RangeError(`more than ${CONNECTIONS_MAX} broker connections`);
      connection = new BrokerConnection(address, {
        requestTimeoutMs: this.options.requestTimeoutMs,
        clientId: this.options.clientId,
        produceWindowMax: this.options.produceWindowMax,
        fetchWindowMax: 1,
        logger: this.options.logger,
      });
      this.connections.set(address, connection);
    }
    return connection;
  }

  async close(): Promise<void> {
    this.closed = true;
    const connections = [...this.connections.values()];
    this.connections.clear();
    await Promise.all(connections.map((connection) => connection.close()));
  }

  private candidateAddresses(): string[] {
    const known = [...this.brokers.values()].map((broker) => brokerAddress(broker.host, broker.port));
    return [...new Set([...known, ...this.options.bootstrapAddresses])];
  }

  private apply(response: ClientApi.MetadataResponse__Output, requested: string[]): void {
    this.brokers = new Map(response.brokers.map((broker) => [broker.nodeId, broker]));
    for (const info of response.topics) {
      const partitions: ClientApi.PartitionInfo__Output[] = [];
      for (const partition of info.partitions) partitions[partition.partition] = partition;
      this.topics.set(info.name, { name: info.name, errorCode: info.errorCode, errorMessage: info.errorMessage, partitions });
    }
    const answered = new Set(response.topics.map((info) => info.name));
    for (const name of requested) if (!answered.has(name)) this.topics.delete(name);
    this.fetchedAtMs = Date.now();
  }
}
