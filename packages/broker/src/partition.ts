import type { PartitionLog } from '@runnel/storage';

/** No leader: the partition is offline (or this broker has not learned the leader yet). */
export const NO_LEADER = -1;

/** What the committed metadata says about one partition this broker holds a replica of. */
export interface PartitionRole {
  readonly leader: number;
  readonly leaderEpoch: number;
  readonly partitionEpoch: number;
  readonly replicas: readonly number[];
  readonly isr: readonly number[];
}

/**
 * One replica hosted by this broker: its log and the role the committed metadata gives it. The
 * role changes only through `applyRole`, when the broker applies a metadata delta; a replica that
 * is not the leader refuses produce and consumer fetch.
 *
 * Until replication exists (followers pulling from leaders), the leader's high watermark is the
 * log end offset of the appends that have completed, as on a single node.
 */
export class Partition {
  private highWatermarkOffset: number;
  private readonly dataListeners = new Set<() => void>();
  private current: PartitionRole;

  constructor(
    readonly topic: string,
    readonly topicId: string,
    readonly index: number,
    readonly log: PartitionLog,
    private readonly brokerId: number,
  ) {
    this.highWatermarkOffset = log.logEndOffset;
    this.current = { leader: NO_LEADER, leaderEpoch: -1, partitionEpoch: -1, replicas: [], isr: [] };
  }

  get name(): string {
    return `${this.topic}-${this.index}`;
  }

  get role(): PartitionRole {
    return this.current;
  }

  get isLeader(): boolean {
    return this.current.leader === this.brokerId;
  }

  get leaderEpoch(): number {
    return this.current.leaderEpoch;
  }

  /**
   * Takes the role the metadata gives this replica. A change of leader epoch wakes waiting fetches
   * so that they answer (with NOT_LEADER_OR_FOLLOWER if leadership moved away).
   */
  applyRole(role: PartitionRole): void {
    if (role.leaderEpoch < this.current.leaderEpoch) {
      throw new Error(`invariant: leader epoch of ${this.name} would go back from ${this.current.leaderEpoch} to ${role.leaderEpoch}`);
    }
    const changed = role.leaderEpoch !== this.current.leaderEpoch || role.leader !== this.current.leader;
    this.current = role;
    if (changed) {
      if (this.isLeader) this.highWatermarkOffset = Math.max(this.highWatermarkOffset, this.log.logEndOffset);
      this.notify();
    }
  }

  get highWatermark(): number {
    return this.highWatermarkOffset;
  }

  /** Moves the high watermark forward (never back) and wakes fetches waiting for data. */
  advanceHighWatermark(offset: number): void {
    if (offset <= this.highWatermarkOffset) return;
    if (offset > this.log.logEndOffset) {
      throw new Error(`invariant: high watermark ${offset} above log end offset ${this.log.logEndOffset} in ${this.name}`);
    }
    this.highWatermarkOffset = offset;
    this.notify();
  }

  /** After truncation or retention the log may start above the old watermark. */
  resetHighWatermarkToLogEnd(): void {
    this.highWatermarkOffset = this.log.logEndOffset;
    this.notify();
  }

  onData(listener: () => void): () => void {
    this.dataListeners.add(listener);
    return () => this.dataListeners.delete(listener);
  }

  private notify(): void {
    for (const listener of [...this.dataListeners]) listener();
  }
}
