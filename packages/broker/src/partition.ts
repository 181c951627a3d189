import type { PartitionLog } from '@runnel/storage';
import { assert, InvariantViolation } from './invariant.js';

/** No leader: the partition is offline (or this broker has not learned the leader yet). */
export const NO_LEADER = -1;

/** What the committed metadata says about one partition this broker holds a replica of. */
export interface PartitionRole {
  readonly leader: number;
  readonly leaderEpoch: number;
  readonly partitionEpoch: number;
  readonly replicas: readonly number[];
  readonly isr: readonly number[];
  /** Replicas a reassignment is adding (not yet in the ISR, their copy is throttled); empty when none. */
  readonly addingReplicas?: readonly number[];
}

/**
 * A replica a reassignment is adding and that is not in the ISR yet: its copy counts against the
 * replication throttle, on the leader and on itself. Once in the ISR it is a full member, never held back.
 */
export function isThrottledReplica(role: PartitionRole, replicaId: number): boolean {
  return (role.addingReplicas ?? []).includes(replicaId) && !role.isr.includes(replicaId);
}

/**
 * Fewer in-sync replicas than the partition should have. While a move adds replicas, the count to
 * reach is the replicas it had (replicas − adding), as Kafka's OngoingReassignmentState has it: a
 * move in progress is not an under-replicated partition.
 */
export function isUnderReplicated(role: PartitionRole): boolean {
  return role.isr.length < role.replicas.length - (role.addingReplicas ?? []).length;
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
 * An ISR change sent to the controller whose outcome the leader has not seen in the metadata yet.
 * `partitionEpoch` is the epoch it was based on: once the metadata shows a newer one, the
 * controller has decided (applied it or refused it) and the change is no longer pending.
 */
export interface PendingIsrChange {
  readonly isr: readonly number[];
  readonly partitionEpoch: number;
  readonly kind: 'expand' | 'shrink';
}

/**
 * One replica hosted by this broker: its log, the role the committed metadata gives it, and — while
 * it leads — the state of its followers and the high watermark. The role changes only through
 * `applyRole`, when the broker applies a metadata delta.
 *
 * The leader computes the high watermark over the *maximal* ISR (KIP-497): the committed ISR plus
 * any member whose addition is in flight. A member being added may be committed by the controller
 * at any moment, and from then on it may be elected leader; were the watermark to pass its log end
 * before that, an acknowledged record would be missing on an ISR member. While a shrink is in flight
 * the maximal ISR is the committed one (the larger set). The watermark is the smallest log end
 * offset in the maximal ISR, never moves back, and does not move at all while the committed ISR is
 * smaller than min.insync.replicas (KIP-966's strict rule).
 */
export class Partition {
  private highWatermarkOffset: number;
  private readonly dataListeners = new Set<() => void>();
  private current: PartitionRole;
  readonly followers = new Map<number, FollowerState>();
  /**
   * An ISR change sent to the controller whose outcome the metadata does not show yet (at most one
   * at a time). It stays pending when the controller's answer is lost or says nothing about the
   * outcome: only the metadata (a new partition epoch, or a new leadership) settles it.
   */
  private pendingIsr: PendingIsrChange | null = null;
  private removed = false;
  /** Where this broker's current leadership started in the log (-1 when it does not lead). */
  private leaderEpochStart = -1;
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

  /**
   * Leads now: the metadata says so, the replica is still hosted here (not removed) and not
   * offline here.
   */
  get isLeader(): boolean {
    return this.current.leader === this.brokerId && !this.removed && this.offlineReason === null;
  }

  get isRemoved(): boolean {
    return this.removed;
  }

  /**
   * This broker no longer hosts the replica. Waiting produces and long polls are woken so that they
   * answer at once (the partition is gone, or led elsewhere) instead of at their timeout.
   */
  markRemoved(): void {
    this.removed = true;
    this.followers.clear();
    this.pendingIsr = null;
    this.notify();
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
    assert(this.offlineReason === null, `${this.name} is offline on this broker and takes no role (${this.offlineReason})`);
    if (role.leaderEpoch < this.current.leaderEpoch) {
      throw new InvariantViolation(`leader epoch of ${this.name} would go back from ${this.current.leaderEpoch} to ${role.leaderEpoch}`);
    }
    const previous = this.current;
    const newLeadership = role.leader === this.brokerId && (role.leaderEpoch !== previous.leaderEpoch || previous.leader !== this.brokerId);
    this.current = role;
    if (role.partitionEpoch !== previous.partitionEpoch || newLeadership) this.pendingIsr = null;
    if (role.leader === this.brokerId) {
      if (newLeadership) {
        this.leaderEpochStart = this.log.logEndOffset;
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
      this.leaderEpochStart = -1;
    }
    this.notify();
  }

  /**
   * Whether this leader's high watermark has reached the start of its leadership. A new leader
   * starts from its follower high watermark (or a checkpoint), which may be below what the previous
   * leader answered; until it reaches the epoch start, offsets answered from it could go backwards
   * (KIP-207: ListOffsets answers OFFSET_NOT_AVAILABLE meanwhile).
   */
  get highWatermarkReachedEpochStart(): boolean {
    return this.highWatermarkOffset >= this.leaderEpochStart;
  }

  /**
   * Stops this replica for good on this broker (its log failed, or it could not take its role):
   * it no longer leads (produces waiting for replication and long-polling fetches wake up and see
   * it) and takes no further role. Only a new Partition — a restart — serves it again.
   */
  takeOffline(reason: string): void {
    this.offlineReason ??= reason;
    this.followers.clear();
    this.pendingIsr = null;
    this.notify();
  }

  get highWatermark(): number {
    return this.highWatermarkOffset;
  }

  get pendingIsrChange(): PendingIsrChange | null {
    return this.pendingIsr;
  }

  /** Records an ISR change sent to the controller; the maximal ISR counts its additions from now on. */
  beginIsrChange(isr: readonly number[], kind: 'expand' | 'shrink'): PendingIsrChange {
    assert(this.isLeader, `${this.name}: only the leader changes the ISR`);
    assert(this.pendingIsr === null, `${this.name}: an ISR change is already pending (${this.pendingIsr?.isr.join(',')})`);
    assert(isr.includes(this.brokerId), `${this.name}: the leader ${this.brokerId} must stay in the ISR [${isr.join(',')}]`);
    this.pendingIsr = { isr: [...isr], partitionEpoch: this.current.partitionEpoch, kind };
    return this.pendingIsr;
  }

  /**
   * The controller refused `change` without applying it (the refusal names the reason, e.g. an
   * ineligible replica): the committed ISR stands. A change that is no longer the pending one has
   * already been settled by the metadata.
   */
  abandonIsrChange(change: PendingIsrChange): void {
    if (this.pendingIsr === change) this.pendingIsr = null;
  }

  /** KIP-497's maximal ISR: the committed ISR plus the members a pending change adds. */
  get maximalIsr(): readonly number[] {
    const committed = this.current.isr;
    const pending = this.pendingIsr;
    if (pending === null) return committed;
    const added = pending.isr.filter((id) => !committed.includes(id));
    return added.length === 0 ? committed : [...committed, ...added];
  }

  /**
   * The smallest log end offset in the maximal ISR, if the committed ISR is large enough; moves the
   * watermark up to it.
   */
  maybeAdvanceHighWatermark(): boolean {
    if (!this.isLeader) return false;
    if (this.current.isr.length < this.minInsyncReplicas) return false;
    const maximalIsr = this.maximalIsr;
    let candidate = this.log.logEndOffset;
    for (const id of maximalIsr) {
      if (id === this.brokerId) continue;
      candidate = Math.min(candidate, this.followers.get(id)?.logEndOffset ?? -1);
    }
    if (candidate <= this.highWatermarkOffset) return false;
    this.checkHighWatermarkAdvance(candidate, maximalIsr);
    this.highWatermarkOffset = candidate;
    this.notify();
    return true;
  }

  /** The leader's invariants for a new high watermark; a violation is a bug, and fails loudly. */
  private checkHighWatermarkAdvance(next: number, maximalIsr: readonly number[]): void {
    assert(next > this.highWatermarkOffset, `${this.name}: the high watermark would move back from ${this.highWatermarkOffset} to ${next}`);
    assert(next <= this.log.logEndOffset, `${this.name}: the high watermark ${next} would pass the leader's log end ${this.log.logEndOffset}`);
    for (const id of maximalIsr) {
      if (id === this.brokerId) continue;
      const end = this.followers.get(id)?.logEndOffset ?? -1;
      assert(next <= end, `${this.name}: the high watermark ${next} would pass the log end ${end} of ${id}, a member of the maximal ISR [${maximalIsr.join(',')}]`);
    }
  }

  /** A follower's high watermark: the leader's, bounded by what the follower has. Never moves back. */
  updateFollowerHighWatermark(leaderHighWatermark: number): void {
    assert(!this.isLeader, `${this.name}: a leader's high watermark comes from its ISR, not from another leader`);
    const next = Math.min(leaderHighWatermark, this.log.logEndOffset);
    if (next > this.highWatermarkOffset) this.highWatermarkOffset = next;
  }

  /** After truncation (a follower's divergent tail) the watermark may not exceed the log end. */
  clampHighWatermarkToLogEnd(): void {
    assert(!this.isLeader, `${this.name}: a leader's high watermark never moves back`);
    if (this.highWatermarkOffset > this.log.logEndOffset) this.highWatermarkOffset = this.log.logEndOffset;
  }

  /** A follower that starts over at the leader's log start has a log that begins above its old watermark. */
  resetHighWatermarkToLogEnd(): void {
    assert(!this.isLeader, `${this.name}: a leader's high watermark never moves back`);
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
