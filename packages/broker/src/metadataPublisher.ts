// Turns each committed metadata change into what this broker's replicas do (KRaft's
// BrokerMetadataPublisher): open a replica and lead it, open a replica and follow, or stop a
// replica and delete its data. Each partition's change is applied on its own: one that fails (its
// log went offline after EIO, ENOSPC writing a checkpoint, EMFILE opening a segment) takes that
// replica offline here — it stops serving and the controller is told — and every other partition
// of the update still takes its new role, so none is left leading at an old epoch.
import { brokerAddress, type Logger } from '@runnel/common';
import { diffImages, type MetadataImage, type PartitionRef } from '@runnel/controller';
import type { ReplicaFetcherManager } from './followerFetcher.js';
import { failStop, InvariantViolation } from './invariant.js';
import type { LogManager } from './logManager.js';
import type { BrokerMetrics } from './metrics.js';
import type { RecoveryProgress } from './nodeHealth.js';
import { isUnderReplicated, type Partition } from './partition.js';

function topicConfigs(image: MetadataImage, topic: string): Record<string, string> {
  return Object.fromEntries(image.topicConfigs(topic));
}

export class BrokerMetadataPublisher {
  /**
   * The broker's logs are recovered once the first publish (the first snapshot of the metadata)
   * has opened every replica it assigns here: opening a log is what recovers it.
   */
  private recovered = false;
  private recoveryOpened = 0;
  private recoveryTotal: number | null = null;

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

  get recovery(): RecoveryProgress {
    return { done: this.recovered, opened: this.recoveryOpened, total: this.recoveryTotal };
  }

  /** The replicas the image assigns to this broker, as `<topic>-<partition>` names. */
  assignedReplicas(image: MetadataImage): Set<string> {
    const names = new Set<string>();
    for (const topic of image.topics()) {
      for (const state of topic.partitions()) if (state.replicas.includes(this.brokerId)) names.add(`${topic.name}-${state.partition}`);
    }
    return names;
  }

  /**
   * Applies the change from `before` to `after` to this broker's replicas. A partition whose change
   * fails is taken offline (LogManager.takeOffline) and the others go on; what still throws is a
   * bug outside any one partition, and the caller must not treat `after` as applied.
   */
  async publish(before: MetadataImage, after: MetadataImage, snapshot: boolean): Promise<void> {
    const delta = diffImages(before, after, this.brokerId);
    if (!this.recovered) {
      this.recoveryOpened = 0;
      this.recoveryTotal = delta.lead.length + delta.follow.length;
    }
    for (const removal of delta.stopAndDelete) {
      await this.removeReplica(removal, removal.reason);
    }
    if (snapshot) {
      // A snapshot replaces the image: replicas it no longer assigns here go (their removal may
      // have been in the records the snapshot stands for).
      const assigned = this.assignedReplicas(after);
      for (const partition of this.logs.allPartitions()) {
        const topic = after.topic(partition.topic);
        if (!assigned.has(partition.name) || topic?.id !== partition.topicId) {
          await this.removeReplica({ topic: partition.topic, topicId: partition.topicId, partition: partition.index }, 'not in the metadata snapshot');
        }
      }
      for (const offline of this.logs.offlineReplicas()) {
        if (after.topic(offline.topic)?.id !== offline.topicId || !assigned.has(`${offline.topic}-${offline.partition}`)) {
          await this.removeReplica(offline, 'not in the metadata snapshot');
        }
      }
    }
    const now = Date.now();
    for (const lead of delta.lead) {
      await this.changeRole(lead, async () => {
        const partition = await this.logs.openPartition(lead.topic, lead.topicId, lead.partition, topicConfigs(after, lead.topic), this.brokerId);
        const wasLeader = partition.isLeader && partition.leaderEpoch === lead.leaderEpoch;
        this.fetchers.stopFollowing(partition);
        const addingReplicas = after.partition(lead.topic, lead.partition)?.addingReplicas ?? [];
        partition.applyRole({ leader: this.brokerId, leaderEpoch: lead.leaderEpoch, partitionEpoch: lead.partitionEpoch, replicas: lead.replicas, isr: lead.isr, addingReplicas }, now);
        if (!wasLeader) this.logger.info({ partition: partition.name, leaderEpoch: lead.leaderEpoch, isr: lead.isr }, 'became leader');
      });
    }
    for (const follow of delta.follow) {
      await this.changeRole(follow, async () => {
        const partition = await this.logs.openPartition(follow.topic, follow.topicId, follow.partition, topicConfigs(after, follow.topic), this.brokerId);
        const state = after.partition(follow.topic, follow.partition)!;
        const wasLeader = partition.isLeader;
        partition.applyRole({ leader: follow.leader, leaderEpoch: follow.leaderEpoch, partitionEpoch: follow.partitionEpoch, replicas: state.replicas, isr: state.isr, addingReplicas: state.addingReplicas }, now);
        if (wasLeader) this.logger.info({ partition: partition.name, leader: follow.leader, leaderEpoch: follow.leaderEpoch }, 'stopped leading');
        // Followers fetch from the leader's REPLICATION listener when it has one (inter-broker traffic
        // apart from clients'), else from its GRPC listener, which serves both.
        const leaderListeners = follow.leader === -1 ? [] : (after.broker(follow.leader)?.listeners ?? []);
        const listener = leaderListeners.find((candidate) => candidate.name === 'REPLICATION') ?? leaderListeners.find((candidate) => candidate.name === 'GRPC');
        if (listener === undefined) this.fetchers.stopFollowing(partition);
        else this.fetchers.follow(partition, follow.leader, brokerAddress(listener.host, listener.port));
      });
    }
    let underReplicated = 0;
    for (const partition of this.logs.allPartitions()) if (partition.isLeader && isUnderReplicated(partition.role)) underReplicated++;
    this.metrics.underReplicatedPartitions.set(underReplicated);
    this.metrics.partitions.set(this.logs.allPartitions().length);
    this.metrics.offlineReplicas.set(this.logs.offlineReplicas().length);
    this.recovered = true;
  }

  /**
   * Gives one replica its new role, or takes it offline when that fails. An offline replica takes
   * no role until the broker restarts (it keeps being reported; the controller moves leadership
   * and the ISR off it).
   */
  private async changeRole(ref: PartitionRef, apply: () => Promise<void>): Promise<void> {
    if (this.logs.offlineReplica(ref.topic, ref.partition)?.topicId === ref.topicId) return;
    try {
      await apply();
      if (!this.recovered) this.recoveryOpened++;
    } catch (error) {
      // A bug (a role that breaks an invariant) ends the process; an operating error ends this replica.
      if (error instanceof InvariantViolation) failStop(error, this.logger);
      const partition = this.logs.partition(ref.topic, ref.partition);
      if (partition !== undefined) this.fetchers.stopFollowing(partition);
      this.logs.takeOffline(ref.topic, ref.topicId, ref.partition, error);
    }
  }

  /**
   * Stops and deletes one replica. The replica is out of service even when deleting its files
   * fails (it was unregistered first); the directory is then left to be set aside at the next start.
   */
  private async removeReplica(ref: PartitionRef, reason: string): Promise<void> {
    try {
      const removed = await this.remove(ref.topic, ref.partition);
      if (removed !== undefined) this.logger.info({ partition: removed.name, reason }, 'replica stopped and deleted');
    } catch (error) {
      this.logger.error({ partition: `${ref.topic}-${ref.partition}`, reason, err: error }, 'replica stopped; deleting its data failed');
    }
  }
}
