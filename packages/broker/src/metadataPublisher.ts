// Turns each committed metadata change into what this broker's replicas do (KRaft's
// BrokerMetadataPublisher): open a replica and lead it, open a replica and follow, or stop a
// replica and delete its data.
import { brokerAddress, type Logger } from '@runnel/common';
import { diffImages, type MetadataImage } from '@runnel/controller';
import type { ReplicaFetcherManager } from './followerFetcher.js';
import type { LogManager } from './logManager.js';
import type { BrokerMetrics } from './metrics.js';
import type { Partition } from './partition.js';

function topicConfigs(image: MetadataImage, topic: string): Record<string, string> {
  return Object.fromEntries(image.topicConfigs(topic));
}

export class BrokerMetadataPublisher {
  constructor(
    private readonly brokerId: number,
    private readonly logs: LogManager,
    private readonly fetchers: ReplicaFetcherManager,
    private readonly metrics: BrokerMetrics,
    private readonly logger: Logger,
  ) {}

  private async remove(topic: string, index: number): Promise<Partition | undefined> {
    const partition = this.logs.partition(topic, index);
    if (partition !== undefined) this.fetchers.stopFollowing(partition);
    return this.logs.removePartition(topic, index);
  }

  /** The replicas the image assigns to this broker, as `<topic>-<partition>` names. */
  assignedReplicas(image: MetadataImage): Set<string> {
    const names = new Set<string>();
    for (const topic of image.topics()) {
      for (const state of topic.partitions()) if (state.replicas.includes(this.brokerId)) names.add(`${topic.name}-${state.partition}`);
    }
    return names;
  }

  async publish(before: MetadataImage, after: MetadataImage, snapshot: boolean): Promise<void> {
    const delta = diffImages(before, after, this.brokerId);
    for (const removal of delta.stopAndDelete) {
      const removed = await this.remove(removal.topic, removal.partition);
      if (removed !== undefined) this.logger.info({ partition: removed.name, reason: removal.reason }, 'replica stopped and deleted');
    }
    if (snapshot) {
      // A snapshot replaces the image: replicas it no longer assigns here go (their removal may
      // have been in the records the snapshot stands for).
      const assigned = this.assignedReplicas(after);
      for (const partition of this.logs.allPartitions()) {
        const topic = after.topic(partition.topic);
        if (!assigned.has(partition.name) || topic?.id !== partition.topicId) {
          await this.remove(partition.topic, partition.index);
          this.logger.info({ partition: partition.name }, 'replica stopped and deleted (not in the metadata snapshot)');
        }
      }
    }
    const now = Date.now();
    for (const lead of delta.lead) {
      const partition = await this.logs.openPartition(lead.topic, lead.topicId, lead.partition, topicConfigs(after, lead.topic), this.brokerId);
      const wasLeader = partition.isLeader && partition.leaderEpoch === lead.leaderEpoch;
      this.fetchers.stopFollowing(partition);
      partition.applyRole({ leader: this.brokerId, leaderEpoch: lead.leaderEpoch, partitionEpoch: lead.partitionEpoch, replicas: lead.replicas, isr: lead.isr }, now);
      if (!wasLeader) this.logger.info({ partition: partition.name, leaderEpoch: lead.leaderEpoch, isr: lead.isr }, 'became leader');
    }
    for (const follow of delta.follow) {
      const partition = await this.logs.openPartition(follow.topic, follow.topicId, follow.partition, topicConfigs(after, follow.topic), this.brokerId);
      const state = after.partition(follow.topic, follow.partition)!;
      const wasLeader = partition.isLeader;
      partition.applyRole({ leader: follow.leader, leaderEpoch: follow.leaderEpoch, partitionEpoch: follow.partitionEpoch, replicas: state.replicas, isr: state.isr }, now);
      if (wasLeader) this.logger.info({ partition: partition.name, leader: follow.leader, leaderEpoch: follow.leaderEpoch }, 'stopped leading');
      // Followers fetch from the leader's REPLICATION listener when it has one (inter-broker traffic
      // apart from clients'), else from its GRPC listener, which serves both.
      const leaderListeners = follow.leader === -1 ? [] : (after.broker(follow.leader)?.listeners ?? []);
      const listener = leaderListeners.find((candidate) => candidate.name === 'REPLICATION') ?? leaderListeners.find((candidate) => candidate.name === 'GRPC');
      if (listener === undefined) this.fetchers.stopFollowing(partition);
      else this.fetchers.follow(partition, follow.leader, brokerAddress(listener.host, listener.port));
    }
    let underReplicated = 0;
    for (const partition of this.logs.allPartitions()) if (partition.isLeader && partition.role.isr.length < partition.role.replicas.length) underReplicated++;
    this.metrics.underReplicatedPartitions.set(underReplicated);
    this.metrics.partitions.set(this.logs.allPartitions().length);
  }
}
