// RaftLog: the durable entries (Storage) plus an in-memory unstable tail that the host has not
// persisted yet, and the commit/applied cursors.
import type { Storage } from './storage.js';
import { assert, type Entry, type Snapshot } from './types.js';

export class RaftLog {
  readonly storage: Storage;
  /** A snapshot received from the leader, not yet persisted by the host. */
  unstableSnapshot: Snapshot | undefined = undefined;
  /** Index of unstableEntries[0]; everything below it is in storage. */
  unstableOffset: number;
  unstableEntries: Entry[] = [];
  committed: number;
  /** Highest index handed to the host for applying and acknowledged by advance(). */
  applied: number;
  /**
   * Told of every append after it passed the log's checks and before it happens (entries at and
   * after entries[0].index are replaced). It must check before it changes anything too.
   */
  onAppend: ((entries: readonly Entry[]) => void) | undefined = undefined;

  constructor(storage: Storage, committed: number, applied: number) {
    this.storage = storage;
    this.unstableOffset = storage.lastIndex() + 1;
    this.committed = committed;
    this.applied = applied;
    assert(applied <= committed && committed <= storage.lastIndex(), 'applied <= committed <= last index', () =>
      `applied ${applied}, committed ${committed}, last ${storage.lastIndex()}`);
  }

  firstIndex(): number {
    return this.unstableSnapshot ? this.unstableSnapshot.metadata.index + 1 : this.storage.firstIndex();
  }

  lastIndex(): number {
    if (this.unstableEntries.length > 0) return this.unstableOffset + this.unstableEntries.length - 1;
    if (this.unstableSnapshot) return this.unstableSnapshot.metadata.index;
    return this.storage.lastIndex();
  }

  /** The last index known to be durable (persisted through an earlier Ready and advance()). */
  persistedLastIndex(): number {
    return this.unstableSnapshot ? 0 : this.unstableOffset - 1;
  }

  term(index: number): number | undefined {
    if (this.unstableSnapshot) {
      const snapshotIndex = this.unstableSnapshot.metadata.index;
      if (index === snapshotIndex) return this.unstableSnapshot.metadata.term;
      if (index < snapshotIndex) return undefined;
    }
    if (index >= this.unstableOffset) return this.unstableEntries[index - this.unstableOffset]?.term;
    return this.storage.term(index);
  }

  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Raft §5.4.1: a candidate's log is at least as up to date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourLastTerm = this.lastTerm();
    return lastTerm > ourLastTerm || (lastTerm === ourLastTerm && lastIndex >= this.lastIndex());
  }

  /** Entries in [lo, hi), at most countMax; undefined if lo was compacted away. */
  entries(lo: number, hi: number, countMax: number): Entry[] | undefined {
    if (lo < this.firstIndex()) return undefined;
    const end = Math.min(hi, this.lastIndex() + 1, lo + Math.max(1, countMax));
    if (lo >= end) return [];
    const result: Entry[] = [];
    if (lo < this.unstableOffset) {
      result.push(...this.storage.entries(lo, Math.min(end, this.unstableOffset), end - lo));
    }
    if (end > this.unstableOffset) {
      const from = Math.max(lo, this.unstableOffset) - this.unstableOffset;
      result.push(...this.unstableEntries.slice(from, end - this.unstableOffset));
    }
    assert(result.length === end - lo, 'log entries are contiguous', () => `[${lo}, ${end}) gave ${result.length}`);
    return result;
  }

  /** The newest snapshot: the unstable one, else the storage's. */
  snapshot(): Snapshot {
    return this.unstableSnapshot ?? this.storage.snapshot();
  }

  /** Index of the first entry that conflicts with the log (or is new), 0 if all are present. */
  findConflict(entries: readonly Entry[]): number {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /**
   * The largest index <= `index` whose term is <= `term` (or the first unknown one). Used for the
   * conflict hint so a leader skips a whole term per round trip.
   */
  findConflictByTerm(index: number, term: number): number {
    let candidate = Math.min(index, this.lastIndex());
    for (;;) {
      const ourTerm = this.term(candidate);
      if (ourTerm === undefined || ourTerm <= term) return candidate;
      candidate--;
    }
  }

  /** Follower side of AppendEntries. Returns the index of the last new entry, or undefined on mismatch. */
  maybeAppend(prevIndex: number, prevTerm: number, commit: number, entries: readonly Entry[]): number | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    // The conflict search and the slice below count on it; checked before anything changes.
    for (let k = 0; k < entries.length; k++) {
      const index = entries[k]!.index;
      assert(index === prevIndex + 1 + k, 'appended entries are contiguous', () => `entry ${k} has index ${index} after prevIndex ${prevIndex}`);
    }
    const lastNewIndex = prevIndex + entries.length;
    const conflictIndex = this.findConflict(entries);
    if (conflictIndex !== 0) this.append(entries.slice(conflictIndex - prevIndex - 1));
    this.commitTo(Math.min(commit, lastNewIndex));
    return lastNewIndex;
  }

  /**
   * Append (possibly replacing a conflicting unstable or durable tail). Committed entries never
   * change. Every check runs before anything changes, `onAppend` included: a broken invariant
   * stops the node, and what it leaves behind must be the log (and configuration) it had.
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    assert(first > this.committed, 'committed entries are never overwritten', () =>
      `append at ${first} with commit ${this.committed}`);
    assert(first <= this.lastIndex() + 1, 'log append is contiguous', () => `append at ${first} after ${this.lastIndex()}`);
    let previousTerm = this.term(first - 1) ?? 0;
    for (let k = 0; k < entries.length; k++) {
      const entry = entries[k]!;
      assert(entry.index === first + k, 'appended entries are contiguous', () => `entry ${k} has index ${entry.index}, expected ${first + k}`);
      assert(entry.term >= previousTerm, 'log terms never go backwards', () => `entry ${entry.index} has term ${entry.term} after term ${previousTerm}`);
      previousTerm = entry.term;
    }
    this.onAppend?.(entries);
    if (first === this.unstableOffset + this.unstableEntries.length) {
      this.unstableEntries.push(...entries);
    } else if (first <= this.unstableOffset) {
      // Replaces entries the host already persisted: the host truncates them when persisting.
      this.unstableOffset = first;
      this.unstableEntries = [...entries];
    } else {
      this.unstableEntries = this.unstableEntries.slice(0, first - this.unstableOffset);
      this.unstableEntries.push(...entries);
    }
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    assert(index <= this.lastIndex(), 'commit index within the log', () =>
      `commit ${index} beyond last index ${this.lastIndex()}`);
    this.committed = index;
  }

  /** The host persisted entries up to (index, term): they leave the unstable tail. */
  stableTo(index: number, term: number): void {
    if (index < this.unstableOffset) return;
    if (this.term(index) !== term) return; // replaced since the Ready; the new tail stays unstable
    this.unstableEntries = this.unstableEntries.slice(index + 1 - this.unstableOffset);
    this.unstableOffset = index + 1;
  }

  stableSnapshotTo(index: number): void {
    if (this.unstableSnapshot && this.unstableSnapshot.metadata.index === index) this.unstableSnapshot = undefined;
  }

  /** Replace the whole log by a snapshot from the leader. */
  restore(snapshot: Snapshot): void {
    const index = snapshot.metadata.index;
    assert(index > this.committed, 'snapshot restore moves commit forward', () => `${index} <= commit ${this.committed}`);
    this.committed = index;
    this.unstableSnapshot = snapshot;
    this.unstableOffset = index + 1;
    this.unstableEntries = [];
  }

  /** The highest index the host may apply now: committed and durable here (etcd#14370). */
  appliableIndex(): number {
    if (this.unstableSnapshot) return this.applied;
    return Math.min(this.committed, this.unstableOffset - 1);
  }

  hasNextCommittedEntries(): boolean {
    return this.appliableIndex() > this.applied;
  }

  nextCommittedEntries(countMax: number): Entry[] {
    const hi = this.appliableIndex() + 1;
    if (hi <= this.applied + 1) return [];
    const entries = this.entries(this.applied + 1, hi, countMax);
    assert(entries !== undefined, 'unapplied entries are not compacted', () =>
      `applied ${this.applied}, first index ${this.firstIndex()}`);
    return entries;
  }

  appliedTo(index: number): void {
    if (index <= this.applied) return;
    assert(index <= this.committed, 'applied <= committed', () => `apply ${index} with commit ${this.committed}`);
    this.applied = index;
  }
}
