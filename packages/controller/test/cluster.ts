// A test harness: ControllerLogic plus an image that every returned batch is applied to, at
// consecutive offsets, as the QuorumController shell will do.
import {
  BrokerSessions,
  ControllerLogic,
  MetadataImage,
  SeededRandom,
  type ControllerConfig,
  type ControllerResult,
  type CreateTopicResult,
  type MetadataRecord,
  type PartitionState,
} from '../src/index.js';

export class Cluster {
  image = MetadataImage.empty();
  readonly sessions: BrokerSessions;
  readonly logic: ControllerLogic;
  nowMs = 0;
  /** Every committed record, in log order (to replay the log as a new controller would). */
  readonly log: MetadataRecord[] = [];
  private incarnations = 0;

  constructor(seed = 1, config: Partial<ControllerConfig> = {}, sessionTimeoutMs = 9000) {
    this.sessions = new BrokerSessions(sessionTimeoutMs);
    this.logic = new ControllerLogic({ sessions: this.sessions, random: new SeededRandom(seed), config });
  }

  commit<T>(result: ControllerResult<T>): T {
    this.image = this.image.applyAll(result.records, this.image.highestOffset + 1);
    this.log.push(...result.records);
    return result.response;
  }

  /** Registers a broker with a fresh incarnation; returns its epoch (the registration offset). */
  register(brokerId: number, rack: string | null = null): number {
    const response = this.commit(
      this.logic.registerBroker(
        this.image,
        { brokerId, incarnationId: `incarnation-${++this.incarnations}`, listeners: [{ name: 'PLAINTEXT', host: 'localhost', port: 9091 + brokerId }], rack },
        this.nowMs,
      ),
    );
    if (response.errorCode !== 0) throw new Error(`register ${brokerId}: ${response.errorMessage}`);
    return this.image.broker(brokerId)!.epoch;
  }

  /** A heartbeat; by default the broker reports that it has applied everything. */
  heartbeat(brokerId: number, options: { offset?: number; wantShutDown?: boolean; wantFence?: boolean } = {}) {
    const broker = this.image.broker(brokerId)!;
    return this.commit(
      this.logic.brokerHeartbeat(
        this.image,
        {
          brokerId,
          brokerEpoch: broker.epoch,
          currentMetadataOffset: options.offset ?? this.image.highestOffset,
          ...(options.wantShutDown === undefined ? {} : { wantShutDown: options.wantShutDown }),
          ...(options.wantFence === undefined ? {} : { wantFence: options.wantFence }),
        },
        this.nowMs,
      ),
    );
  }

  /** Registers and unfences brokers `ids` (racks by index when given). */
  start(ids: readonly number[], racks?: readonly string[]): void {
    ids.forEach((id, index) => this.register(id, racks?.[index] ?? null));
    for (const id of ids) this.heartbeat(id);
  }

  advance(ms: number): void {
    this.nowMs += ms;
  }

  /** Heartbeats from every unfenced broker except `silent`. */
  heartbeatAll(silent: readonly number[] = []): void {
    for (const broker of this.image.brokers()) {
      if (!silent.includes(broker.id)) this.heartbeat(broker.id);
    }
  }

  createTopic(name: string, numPartitions: number, replicationFactor: number, configs?: Record<string, string>): CreateTopicResult {
    const response = this.commit(
      this.logic.createTopics(this.image, { topics: [{ name, numPartitions, replicationFactor, ...(configs === undefined ? {} : { configs }) }] }),
    );
    return response.topics[0]!;
  }

  partitions(topic: string): PartitionState[] {
    return [...this.image.topic(topic)!.partitions()];
  }

  leaderCounts(): Map<number, number> {
    const counts = new Map<number, number>();
    for (const broker of this.image.brokers()) counts.set(broker.id, this.image.leaderCount(broker.id));
    return counts;
  }

  /**
   * Each moving partition's leader adds every live replica to its ISR (they caught up), which
   * completes the move; a leader moved off answers NEW_LEADER_ELECTED (108), as it should.
   */
  completeMoves(): void {
    for (const moving of this.logic.listPartitionReassignments(this.image).reassignments) {
      const state = this.image.partition(moving.topic, moving.partition)!;
      const leader = this.image.broker(state.leader)!;
      const newIsr = state.replicas.filter((id) => state.isr.includes(id) || this.logic.isActive(this.image, id));
      const response = this.commit(
        this.logic.alterPartition(this.image, {
          brokerId: leader.id,
          brokerEpoch: leader.epoch,
          partitions: [{ topic: moving.topic, partition: moving.partition, leaderEpoch: state.leaderEpoch, partitionEpoch: state.partitionEpoch, newIsr }],
        }),
      );
      const errorCode = response.partitions[0]!.errorCode;
      if (errorCode !== 0 && errorCode !== 108) throw new Error(`completeMoves: ${response.partitions[0]!.errorMessage}`);
    }
    const left = this.logic.listPartitionReassignments(this.image).reassignments;
    if (left.length > 0) throw new Error(`completeMoves: ${left.length} partition(s) still moving`);
  }

  /** Each partition's leader adds every unfenced replica back to its ISR (followers caught up). */
  expandIsrs(): void {
    for (const { topic, state } of [...this.image.allPartitions()]) {
      if (state.leader < 0) continue;
      const wanted = state.replicas.filter((id) => state.isr.includes(id) || this.logic.isActive(this.image, id));
      if (wanted.length === state.isr.length) continue;
      const leader = this.image.broker(state.leader)!;
      const response = this.commit(
        this.logic.alterPartition(this.image, {
          brokerId: leader.id,
          brokerEpoch: leader.epoch,
          partitions: [{ topic: topic.name, partition: state.partition, leaderEpoch: state.leaderEpoch, partitionEpoch: state.partitionEpoch, newIsr: wanted }],
        }),
      );
      if (response.partitions[0]!.errorCode !== 0) throw new Error(`expandIsrs: ${response.partitions[0]!.errorMessage}`);
    }
  }
}
