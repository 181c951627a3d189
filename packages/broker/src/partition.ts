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

/** What a leader knows of one follower (Kafka's ReplicaState). */
export interface FollowerState {
  /** The follower's log end offset: the fetch offset of its latest fetch (-1 before one). */
  logEndOffset: number;
  /** The last time the follower was caught up with this leader's log end offset. */
  lastCaughtUpMs: number;
  /** When the previous fetch came, and the leader's log end offset then. */
  lastFetchMs: number;
  lastFetchLeaderLogEndOffset: number;
  /** The follower's broker epoch on its latest fetch (-1 unknown). */
  brokerEpoch: number;
}

/**
 * One replica hosted by this broker: its log, the role the committed metadata gives it, and — while
 * it leads — the state of its followers and the high watermark. The role changes only through
 * `applyRole`, when the broker applies a metadata delta. The leader computes the high watermark
 * from the committed ISR only: the smallest log end offset in it, never moving back, and not at all
 * while the ISR is smaller than min.insync.replicas (KIP-966's strict rule).
 */
export class Partition {
  private highWatermarkOffset: number;
  private readonly dataListeners = new Set<() => void>();
  private current: PartitionRole;
  readonly followers = new Map<number, FollowerState>();
  /** An ISR change sent to the controller and not yet answered (at most one at a time). */
  pendingIsrChange: readonly number[] | null = null;
  /** Why this replica was taken offline on this broker (see takeOffline); null while it serves. */
  offlineReason: string | null = null;

  constructor(
    readonly topic: string,
    readonly topicId: string,
    readonly index: number,
    readonly log: PartitionLog,
    private readonly brokerId: number,
    /** min.insync.replicas of the topic. */
    public minInsyncReplicas: number,
    /** The checkpointed high watermark, if any: a replica never starts above its log end. */
    checkpointedHighWatermark: number,
  ) {
    this.highWatermarkOffset = Math.min(Math.max(checkpointedHighWatermark, log.logStartOffset), log.logEndOffset);
    this.current = { leader: NO_LEADER, leaderEpoch: -1, partitionEpoch: -1, replicas: [], isr: [] };
  }

  get name(): string {
    return `${this.topic}-${this.index}`;
  }

  get role(): PartitionRole {
    return this.current;
  }

  /** Leads now: the metadata says so and the replica is not offline here. */
  get isLeader(): boolean {
    return this.current.leader === this.brokerId && this.offlineReason === null;
  }

  get leaderEpoch(): number {
    return this.current.leaderEpoch;
  }

  /**
   * Takes the role the metadata gives this replica. Becoming leader (a new leader epoch) records
   * where the epoch starts in the log and starts tracking the followers afresh. Any change wakes
   * waiting fetches and produces so that they re-check (and answer NOT_LEADER_OR_FOLLOWER if
   * leadership moved away).
   */
  applyRole(role: PartitionRole, nowMs: number): void {
    if (this.offlineReason !== null) throw new Error(`invariant: ${this.name} is offline on this broker and takes no role (${this.offlineReason})`);
    if (role.leaderEpoch < this.current.leaderEpoch) {
      throw new Error(`invariant: leader epoch of ${this.name} would go back from ${this.current.leaderEpoch} to ${role.leaderEpoch}`);
    }
    const previous = this.current;
    const newLeadership = role.leader === this.brokerId && (role.leaderEpoch !== previous.leaderEpoch || previous.leader !== this.brokerId);
    this.current = role;
    if (role.partitionEpoch !== previous.partitionEpoch || newLeadership) this.pendingIsrChange = null;
    if (role.leader === this.brokerId) {
      if (newLeadership) {
        this.log.assignEpochStartOffset(role.leaderEpoch, this.log.logEndOffset);
        this.followers.clear();
      }
      for (const id of role.replicas) {
        if (id === this.brokerId || this.followers.has(id)) continue;
        // Kafka's rule: an ISR member counts as caught up when leadership starts, so that it is
        // not dropped before it has had a chance to fetch.
        this.followers.set(id, { logEndOffset: -1, lastCaughtUpMs: role.isr.includes(id) ? nowMs : 0, lastFetchMs: 0, lastFetchLeaderLogEndOffset: -1, brokerEpoch: -1 });
      }
      for (const id of [...this.followers.keys()]) if (!role.replicas.includes(id)) this.followers.delete(id);
      this.maybeAdvanceHighWatermark();
    } else {
      this.followers.clear();
    }
    this.notify();
  }

  /**
   * Stops this replica for good on this broker (its log failed, or it could not take its role):
   * it no longer leads (produces waiting for replication and long-polling fetches wake up and see
   * it) and takes no further role. Only a new Partition — a restart — serves it again.
   */
  takeOffline(reason: string): void {
    this.offlineReason ??= reason;
    this.followers.clear();
    this.pendingIsrChange = null;
    this.notify();
  }

  get highWatermark(): number {
    return this.highWatermarkOffset;
  }

  /** The smallest log end offset in the committed ISR, if the ISR is large enough; moves the watermark up to it. */
  maybeAdvanceHighWatermark(): boolean {
    if (!this.isLeader) return false;
    const isr = this.current.isr;
    if (isr.length < this.minInsyncReplicas) return false;
    let candidate = this.log.logEndOffset;
    for (const id of isr) {
      if (id === this.brokerId) continue;
      candidate = Math.min(candidate, this.followers.get(id)?.logEndOffset ?? -1);
    }
    if (candidate <= this.highWatermarkOffset) return false;
    this.highWatermarkOffset = candidate;
    this.notify();
    return true;
  }

  /** A follower's high watermark: the leader's, bounded by what the follower has. Never moves back. */
  updateFollowerHighWatermark(leaderHighWatermark: number): void {
    const next = Math.min(leaderHighWatermark, this.log.logEndOffset);
    if (next > this.highWatermarkOffset) this.highWatermarkOffset = next;
  }

  /** After truncation (a follower's divergent tail) the watermark may not exceed the log end. */
  clampHighWatermarkToLogEnd(): void {
    if (this.highWatermarkOffset > this.log.logEndOffset) this.highWatermarkOffset = this.log.logEndOffset;
  }

  /** After truncation or retention the log may start above the old watermark. */
  resetHighWatermarkToLogEnd(): void {
    this.highWatermarkOffset = this.log.logEndOffset;
    this.notify();
  }

  /** Listeners run whenever data, the high watermark or the role change. */
  onData(listener: () => void): () => void {
    this.dataListeners.add(listener);
    return () => this.dataListeners.delete(listener);
  }

  /** New data was appended (followers long-polling for it wake up). */
  appended(): void {
    this.notify();
  }

  private notify(): void {
    for (const listener of [...this.dataListeners]) listener();
  }
}
