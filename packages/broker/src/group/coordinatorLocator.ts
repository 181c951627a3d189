// FindCoordinator for both doors: the coordinator of a group is the leader of the group's
// __consumer_offsets partition, named by the address of the listener the client came in through.
// The topic is created on first use, as Kafka does.
import { errorCode, type ListenerName, type Logger } from '@runnel/common';
import type { MetadataImage } from '@runnel/controller';
import type { ControllerClient } from '@runnel/controller/quorum';
import { errorResult } from '../errorResult.js';
import { OFFSETS_TOPIC, type GroupCoordinator } from './groupCoordinator.js';

/** How long FindCoordinator waits for this broker to apply the creation of __consumer_offsets. */
const OFFSETS_TOPIC_PROPAGATION_TIMEOUT_MS = 5_000;

export interface GroupClusterView {
  image(): MetadataImage;
  readonly controller: ControllerClient;
  waitForMetadata(offset: number, timeoutMs: number): Promise<boolean>;
  /** offsets.topic.num.partitions, offsets.topic.replication.factor and offsets.topic.segment.bytes. */
  readonly offsetsTopicPartitions: number;
  readonly offsetsTopicReplicationFactor: number;
  readonly offsetsTopicSegmentBytes: number;
}

export interface CoordinatorAddress {
  readonly errorCode: number;
  readonly errorMessage: string;
  /** -1, '' and 0 on an error. */
  readonly nodeId: number;
  readonly host: string;
  readonly port: number;
}

export class GroupCoordinatorLocator {
  private creatingOffsetsTopic: Promise<void> | null = null;

  constructor(
    private readonly cluster: GroupClusterView,
    private readonly coordinator: GroupCoordinator,
    private readonly logger: Logger,
  ) {}

  /**
   * The broker leading the group's __consumer_offsets partition, at its `listener` address. The
   * topic is created on first use with offsets.topic.replication.factor or, on a smaller cluster,
   * every live broker (and a warning).
   */
  async find(groupId: string, listener: ListenerName): Promise<CoordinatorAddress> {
    const none = { nodeId: -1, host: '', port: 0 };
    if (groupId.length === 0) return { ...none, errorCode: errorCode('INVALID_GROUP_ID'), errorMessage: 'the group id is empty' };
    if (this.cluster.image().topic(OFFSETS_TOPIC) === undefined) {
      try {
        await this.createOffsetsTopic();
      } catch (error) {
        const fields = errorResult(error, this.logger);
        return { ...none, errorCode: errorCode('COORDINATOR_NOT_AVAILABLE'), errorMessage: `cannot create ${OFFSETS_TOPIC}: ${fields.errorMessage}` };
      }
    }
    const image = this.cluster.image();
    const partition = this.coordinator.partitionFor(groupId);
    const state = image.partition(OFFSETS_TOPIC, partition);
    const broker = state === undefined || state.leader < 0 ? undefined : image.broker(state.leader);
    const address = broker?.listeners.find((candidate) => candidate.name === listener);
    if (broker === undefined || broker.fenced) {
      return { ...none, errorCode: errorCode('COORDINATOR_NOT_AVAILABLE'), errorMessage: `${OFFSETS_TOPIC}-${partition} has no leader now` };
    }
    if (address === undefined) {
      return { ...none, errorCode: errorCode('COORDINATOR_NOT_AVAILABLE'), errorMessage: `the coordinator, broker ${broker.id}, has no ${listener} listener` };
    }
    return { errorCode: 0, errorMessage: '', nodeId: broker.id, host: address.host, port: address.port };
  }

  private createOffsetsTopic(): Promise<void> {
    this.creatingOffsetsTopic ??= (async () => {
      const live = this.cluster.image().brokers().filter((broker) => !broker.fenced).length;
      const replicationFactor = Math.max(1, Math.min(this.cluster.offsetsTopicReplicationFactor, live));
      if (replicationFactor < this.cluster.offsetsTopicReplicationFactor) {
        this.logger.warn({ topic: OFFSETS_TOPIC, replicationFactor, configured: this.cluster.offsetsTopicReplicationFactor, liveBrokers: live }, 'creating the offsets topic with fewer replicas than offsets.topic.replication.factor: the cluster has fewer live brokers');
      }
      const response = await this.cluster.controller.createTopics({
        topics: [
          {
            name: OFFSETS_TOPIC,
            numPartitions: this.cluster.offsetsTopicPartitions,
            replicationFactor,
            // Compacted, as Kafka's: the latest record per group and per committed partition stays
            // (nothing goes by time or size); small segments (offsets.topic.segment.bytes, 100 MiB
            // by default) so that rolled segments reach the cleaner.
            configs: [
              { name: 'cleanup.policy', value: 'compact' },
              { name: 'segment.bytes', value: String(this.cluster.offsetsTopicSegmentBytes) },
            ],
          },
        ],
        validateOnly: false,
      });
      const code = response.errorCode !== 0 ? response.errorCode : (response.topics[0]?.errorCode ?? 0);
      if (code !== 0 && code !== errorCode('TOPIC_ALREADY_EXISTS')) throw Object.assign(new Error(response.errorMessage || response.topics[0]?.errorMessage || `error ${code}`), { errorCode: code });
      if (code === 0) await this.cluster.waitForMetadata(Number(response.metadataOffset), OFFSETS_TOPIC_PROPAGATION_TIMEOUT_MS);
    })().finally(() => {
      this.creatingOffsetsTopic = null;
    });
    return this.creatingOffsetsTopic;
  }
}
