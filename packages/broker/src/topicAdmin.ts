// Topics as both doors (gRPC and the Kafka wire protocol) create, delete and describe them: admin
// requests are forwarded to the active controller and answered once this broker has applied the
// result; descriptions come from this broker's metadata image (plus, for partitions it leads, its
// own log bounds). The doors only translate these results into their own messages.
import { errorCode, type ListenerName, type Logger } from '@runnel/common';
import type { MetadataImage } from '@runnel/controller';
import type { ControllerClient } from '@runnel/controller/quorum';
import { errorResult } from './errorResult.js';
import { OFFSETS_TOPIC } from './group/groupCoordinator.js';
import type { LogManager } from './logManager.js';

/** How long an admin request waits for this broker to apply the metadata change it made. */
export const METADATA_PROPAGATION_TIMEOUT_MS = 5_000;

/** What the doors need of the cluster: the metadata this broker has applied, and the controller. */
export interface ClusterView {
  clusterId: string;
  nodeId: number;
  autoCreateTopics: boolean;
  image(): MetadataImage;
  controller: ControllerClient;
  /** Resolves true once this broker has applied metadata offset `offset`, false after `timeoutMs`. */
  waitForMetadata(offset: number, timeoutMs: number): Promise<boolean>;
}

export interface TopicToCreate {
  readonly name: string;
  /** -1: num.partitions. */
  readonly numPartitions: number;
  /** -1: default.replication.factor. */
  readonly replicationFactor: number;
  readonly configs: ReadonlyArray<{ readonly name: string; readonly value: string }>;
}

/** A topic to grow to `count` partitions; `assignments` (one replica list per new partition) or null to let the controller place them. */
export interface PartitionsToCreate {
  readonly name: string;
  readonly count: number;
  readonly assignments: ReadonlyArray<readonly number[]> | null;
}

export interface TopicResult {
  readonly name: string;
  readonly errorCode: number;
  readonly errorMessage: string;
}

export interface CreatedTopic extends TopicResult {
  /** The controller's topic id (22 characters of base64url); '' on an error or a validate-only request. */
  readonly topicId: string;
  /** What the topic was (or would be) created with, defaults applied; -1 on an error. */
  readonly numPartitions: number;
  readonly replicationFactor: number;
}

/** ElectLeaders' answer: per topic and partition, an error code (0: elected). */
export interface LeaderElectionResults {
  readonly error: { readonly errorCode: number; readonly errorMessage: string };
  readonly topics: ReadonlyArray<{ readonly topic: string; readonly partitions: ReadonlyArray<{ readonly partition: number; readonly errorCode: number; readonly errorMessage: string }> }>;
}

/** One partition as a client sees it in metadata. */
export interface PartitionDescription {
  readonly partition: number;
  readonly errorCode: number;
  readonly leader: number;
  readonly leaderEpoch: number;
  readonly partitionEpoch: number;
  readonly replicas: number[];
  readonly isr: number[];
  /** While a move runs: the replicas it adds and removes (empty otherwise). */
  readonly addingReplicas: number[];
  readonly removingReplicas: number[];
  readonly offlineReplicas: number[];
  /** The topic's min.insync.replicas (its override, else this broker's default). */
  readonly minInsyncReplicas: number;
  /** This broker's log bounds when it leads the partition; -1 otherwise. */
  readonly logStartOffset: number;
  readonly highWatermark: number;
}

export interface TopicDescription extends TopicResult {
  /** '' when the topic does not exist. */
  readonly topicId: string;
  readonly partitions: PartitionDescription[];
}

/** One partition of a reassignment request: a target, or null to cancel its move. */
export interface PartitionReassignment {
  readonly topic: string;
  readonly partition: number;
  readonly replicas: readonly number[] | null;
}

export interface PartitionResult {
  readonly topic: string;
  readonly partition: number;
  readonly errorCode: number;
  readonly errorMessage: string;
}

export interface MovingPartition {
  readonly topic: string;
  readonly partition: number;
  readonly replicas: number[];
  readonly addingReplicas: number[];
  readonly removingReplicas: number[];
  readonly isr: number[];
  readonly leader: number;
}

/** A leader's view of its replicas' log ends (for the progress of a move). */
export interface ReplicaProgress extends PartitionResult {
  readonly leader: number;
  readonly logStartOffset: number;
  readonly logEndOffset: number;
  readonly sizeBytes: number;
  /** Every replica but the leader, with the fetch offset of its latest fetch here (-1 before one). */
  readonly replicas: Array<{ brokerId: number; logEndOffset: number }>;
}

export interface BrokerEndpoint {
  readonly nodeId: number;
  readonly host: string;
  readonly port: number;
  readonly rack: string | null;
}

/**
 * The brokers clients may talk to through listener `name`: registered, unfenced, and with such a
 * listener (every broker registers the advertised address of each listener it has), by id.
 */
export function liveBrokerEndpoints(image: MetadataImage, name: ListenerName): BrokerEndpoint[] {
  const brokers: BrokerEndpoint[] = [];
  for (const broker of image.brokers()) {
    const listener = broker.listeners.find((candidate) => candidate.name === name);
    if (broker.fenced || listener === undefined) continue;
    brokers.push({ nodeId: broker.id, host: listener.host, port: listener.port, rack: broker.rack });
  }
  return brokers.sort((a, b) => a.nodeId - b.nodeId);
}

/** Every partition of `topic` as the image has it, with this broker's log bounds where it leads. */
export function describePartitions(image: MetadataImage, logs: LogManager, topic: string): PartitionDescription[] {
  const partitions: PartitionDescription[] = [];
  const minInsyncReplicas = logs.settingsFor(Object.fromEntries(image.topicConfigs(topic))).minInsyncReplicas;
  for (const state of image.topic(topic)?.partitions() ?? []) {
    const local = logs.partition(topic, state.partition);
    partitions.push({
      minInsyncReplicas,
      partition: state.partition,
      errorCode: state.leader === -1 ? errorCode('LEADER_NOT_AVAILABLE') : 0,
      leader: state.leader,
      leaderEpoch: state.leaderEpoch,
      partitionEpoch: state.partitionEpoch,
      replicas: [...state.replicas],
      isr: [...state.isr],
      addingReplicas: [...state.addingReplicas],
      removingReplicas: [...state.removingReplicas],
      offlineReplicas: image.offlineBrokersOf(state.topicId, state.partition),
      logStartOffset: local?.isLeader === true ? local.log.logStartOffset : -1,
      // A new leader's watermark may still be below what the previous leader answered (KIP-207).
      highWatermark: local?.isLeader === true && local.highWatermarkReachedEpochStart ? local.highWatermark : -1,
    });
  }
  return partitions;
}

export class TopicAdmin {
  constructor(
    readonly cluster: ClusterView,
    private readonly logs: LogManager,
    private readonly logger: Logger,
  ) {}

  /** Waits (bounded) until this broker has applied a change the controller committed at `offset`. */
  async waitUntilApplied(offset: number): Promise<void> {
    if (offset < 0) return;
    const reached = await this.cluster.waitForMetadata(offset, METADATA_PROPAGATION_TIMEOUT_MS);
    if (!reached) this.logger.warn({ offset }, 'the controller committed a change this broker has not applied yet; answering anyway');
  }

  /** Forwarded to the active controller, wherever it is; answered once this broker has the result. */
  async createTopics(topics: readonly TopicToCreate[], validateOnly: boolean): Promise<CreatedTopic[]> {
    const failed = (fields: { errorCode: number; errorMessage: string }) => topics.map((topic) => ({ name: topic.name, ...fields, topicId: '', numPartitions: -1, replicationFactor: -1 }));
    try {
      const response = await this.cluster.controller.createTopics({
        topics: topics.map((topic) => ({ name: topic.name, numPartitions: topic.numPartitions, replicationFactor: topic.replicationFactor, configs: [...topic.configs] })),
        validateOnly,
      });
      if (response.errorCode !== 0) return failed({ errorCode: response.errorCode, errorMessage: response.errorMessage });
      await this.waitUntilApplied(Number(response.metadataOffset));
      return response.topics.map((topic) => ({
        name: topic.name,
        errorCode: topic.errorCode,
        errorMessage: topic.errorMessage,
        topicId: topic.errorCode === 0 ? topic.topicId : '',
        numPartitions: topic.errorCode === 0 ? topic.numPartitions : -1,
        replicationFactor: topic.errorCode === 0 ? topic.replicationFactor : -1,
      }));
    } catch (error) {
      return failed(errorResult(error, this.logger));
    }
  }

  /**
   * Forwarded to the active controller; answered once this broker's metadata has the new
   * partitions, so a client's next metadata request here sees them.
   */
  async createPartitions(topics: readonly PartitionsToCreate[], validateOnly: boolean): Promise<TopicResult[]> {
    return this.forEachTopic(
      topics.map((topic) => topic.name),
      () =>
        this.cluster.controller.createPartitions({
          topics: topics.map((topic) => ({ name: topic.name, count: topic.count, assignments: (topic.assignments ?? []).map((replicas) => ({ brokerIds: [...replicas] })) })),
          validateOnly,
        }),
    );
  }

  async deleteTopics(names: readonly string[]): Promise<TopicResult[]> {
    return this.forEachTopic(names, () => this.cluster.controller.deleteTopics({ names: [...names] }));
  }

  /** A controller call answering per topic: its results once applied here, or its error for every topic. */
  private async forEachTopic(
    names: readonly string[],
    call: () => Promise<{ errorCode: number; errorMessage: string; metadataOffset: number; topics: TopicResult[] }>,
  ): Promise<TopicResult[]> {
    try {
      const response = await call();
      if (response.errorCode !== 0) return names.map((name) => ({ name, errorCode: response.errorCode, errorMessage: response.errorMessage }));
      await this.waitUntilApplied(Number(response.metadataOffset));
      return response.topics.map((topic) => ({ name: topic.name, errorCode: topic.errorCode, errorMessage: topic.errorMessage }));
    } catch (error) {
      const fields = errorResult(error, this.logger);
      return names.map((name) => ({ name, ...fields }));
    }
  }

  /**
   * Kafka's ElectLeaders, forwarded to the active controller: per partition NONE, ELECTION_NOT_NEEDED,
   * PREFERRED_LEADER_NOT_AVAILABLE, ELIGIBLE_LEADERS_NOT_AVAILABLE or UNKNOWN_TOPIC_OR_PARTITION.
   * A failure of the request as a whole is `error` (and every named partition carries it).
   */
  async electLeaders(electionType: 'preferred' | 'unclean', topics: ReadonlyArray<{ topic: string; partitions: readonly number[] }> | null): Promise<LeaderElectionResults> {
    const failedAll = (fields: { errorCode: number; errorMessage: string }): LeaderElectionResults => ({
      error: fields,
      topics: (topics ?? []).map(({ topic, partitions }) => ({ topic, partitions: partitions.map((partition) => ({ partition, ...fields })) })),
    });
    try {
      const response = await this.cluster.controller.electPartitionLeaders({
        electionType: electionType === 'preferred' ? 0 : 1,
        allPartitions: topics === null,
        topics: (topics ?? []).map(({ topic, partitions }) => ({ topic, partitions: [...partitions] })),
      });
      if (response.errorCode !== 0) return failedAll({ errorCode: response.errorCode, errorMessage: response.errorMessage });
      await this.waitUntilApplied(Number(response.metadataOffset));
      return {
        error: { errorCode: 0, errorMessage: '' },
        topics: response.topics.map((topic) => ({ topic: topic.topic, partitions: topic.partitions.map((result) => ({ partition: result.partition, errorCode: result.errorCode, errorMessage: result.errorMessage })) })),
      };
    } catch (error) {
      return failedAll(errorResult(error, this.logger));
    }
  }

  /**
   * `names` (null: every topic, by name) as this broker's metadata has them. With
   * `allowAutoCreate` and auto.create.topics.enable, topics that do not exist are created first
   * with the broker defaults (Kafka's auto-creation on Metadata); one that cannot be created
   * carries the controller's error.
   */
  async describeTopics(names: readonly string[] | null, allowAutoCreate: boolean): Promise<{ image: MetadataImage; topics: TopicDescription[] }> {
    let image = this.cluster.image();
    const wanted = names === null ? image.topics().map((topic) => topic.name).sort() : [...new Set(names)];
    const autoCreateErrors = new Map<string, { errorCode: number; errorMessage: string }>();
    // __consumer_offsets is created by FindCoordinator, with its own settings, never with the defaults.
    const missing = wanted.filter((name) => image.topic(name) === undefined && name !== OFFSETS_TOPIC);
    if (missing.length > 0 && allowAutoCreate && this.cluster.autoCreateTopics) {
      const created = await this.createTopics(
        missing.map((name) => ({ name, numPartitions: -1, replicationFactor: -1, configs: [] })),
        false,
      );
      for (const result of created) {
        if (result.errorCode !== 0 && result.errorCode !== errorCode('TOPIC_ALREADY_EXISTS')) autoCreateErrors.set(result.name, { errorCode: result.errorCode, errorMessage: result.errorMessage });
      }
      image = this.cluster.image();
    }
    const topics = wanted.map((name): TopicDescription => {
      const failed = autoCreateErrors.get(name);
      if (failed !== undefined) return { name, topicId: '', ...failed, partitions: [] };
      const topic = image.topic(name);
      if (topic === undefined) return { name, topicId: '', errorCode: errorCode('UNKNOWN_TOPIC_OR_PARTITION'), errorMessage: `topic '${name}' does not exist`, partitions: [] };
      return { name, topicId: topic.id, errorCode: 0, errorMessage: '', partitions: describePartitions(image, this.logs, name) };
    });
    return { image, topics };
  }

  /**
   * Starts, replaces or cancels partition moves (KIP-455) on the active controller; answered once
   * this broker's metadata shows the accepted ones. Door-neutral: the gRPC API and the Kafka
   * door's AlterPartitionReassignments both come here.
   */
  async alterPartitionReassignments(partitions: readonly PartitionReassignment[]): Promise<PartitionResult[]> {
    const failed = (fields: { errorCode: number; errorMessage: string }) => partitions.map((item) => ({ topic: item.topic, partition: item.partition, ...fields }));
    try {
      const response = await this.cluster.controller.alterPartitionReassignments({
        partitions: partitions.map((item) => ({ topic: item.topic, partition: item.partition, replicas: [...(item.replicas ?? [])], cancel: item.replicas === null })),
      });
      if (response.errorCode !== 0) return failed(response);
      await this.waitUntilApplied(Number(response.metadataOffset));
      return response.partitions.map((result) => ({ topic: result.topic, partition: result.partition, errorCode: result.errorCode, errorMessage: result.errorMessage }));
    } catch (error) {
      return failed(errorResult(error, this.logger));
    }
  }

  /** The moving partitions (all, or those of `refs` that move), from the active controller. */
  async listPartitionReassignments(refs: ReadonlyArray<{ topic: string; partition: number }>): Promise<{ errorCode: number; errorMessage: string; reassignments: MovingPartition[] }> {
    try {
      const response = await this.cluster.controller.listPartitionReassignments({ partitions: refs.map((ref) => ({ topic: ref.topic, partition: ref.partition })) });
      return { errorCode: response.errorCode, errorMessage: response.errorMessage, reassignments: response.reassignments };
    } catch (error) {
      return { ...errorResult(error, this.logger), reassignments: [] };
    }
  }

  /** For partitions this broker leads: its log bounds and each follower's log end as of its latest fetch. */
  describeReplicaProgress(refs: ReadonlyArray<{ topic: string; partition: number }>): ReplicaProgress[] {
    return refs.map((ref) => {
      const local = this.logs.partition(ref.topic, ref.partition);
      const base = { topic: ref.topic, partition: ref.partition, leader: -1, logStartOffset: -1, logEndOffset: -1, sizeBytes: -1, replicas: [] };
      if (local === undefined || !local.isLeader) {
        return { ...base, errorCode: errorCode('NOT_LEADER_OR_FOLLOWER'), errorMessage: `broker ${this.cluster.nodeId} does not lead ${ref.topic}-${ref.partition}` };
      }
      return {
        ...base,
        errorCode: 0,
        errorMessage: '',
        leader: this.cluster.nodeId,
        logStartOffset: local.log.logStartOffset,
        logEndOffset: local.log.logEndOffset,
        sizeBytes: local.log.sizeInBytes,
        replicas: local.role.replicas.filter((id) => id !== this.cluster.nodeId).map((id) => ({ brokerId: id, logEndOffset: local.followers.get(id)?.logEndOffset ?? -1 })),
      };
    });
  }
}
