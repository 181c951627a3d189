// The durable half of the log, as the core sees it. The host owns writes (it persists what Ready
// hands out); the core only reads. MemoryStorage is the reference implementation used by tests and
// the simulator, where it stands for "what survived on disk".
import { assert, type ConfState, type Entry, type HardState, type Snapshot } from './types.js';

export interface Storage {
  /** The hard state and configuration to start from (after a restart, the persisted ones). */
  initialState(): { hardState: HardState; confState: ConfState };
  /**
   * Entries with index in [lo, hi), at most `countMax` of them (at least one if any).
   * Precondition: firstIndex() <= lo <= hi <= lastIndex() + 1. The array is the caller's.
   */
  entries(lo: number, hi: number, countMax: number): Entry[];
  /** Term of entry `index` for index in [firstIndex() - 1, lastIndex()]; undefined outside. */
  term(index: number): number | undefined;
  /** Index of the first entry still held (entries below it were compacted into the snapshot). */
  firstIndex(): number;
  lastIndex(): number;
  /** The newest snapshot; its index is >= firstIndex() - 1. */
  snapshot(): Snapshot;
}

export function emptySnapshot(confState: ConfState): Snapshot {
  return { metadata: { index: 0, term: 0, confState }, data: new Uint8Array(0) };
}

export class MemoryStorage implements Storage {
  private hardState: HardState = { term: 0, vote: 0, commit: 0 };
  private currentSnapshot: Snapshot;
  /** Index and term of the entry just below the first held entry. */
  private baseIndex = 0;
  private baseTerm = 0;
  /** held[k] has index baseIndex + 1 + k. */
  private held: Entry[] = [];

  /** A fresh node: empty log, the bootstrap configuration. */
  constructor(confState: ConfState) {
    this.currentSnapshot = emptySnapshot(confState);
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hardState, confState: this.currentSnapshot.metadata.confState };
  }

  entries(lo: number, hi: number, countMax: number): Entry[] {
    assert(lo >= this.firstIndex() && hi <= this.lastIndex() + 1 && lo <= hi, 'storage entries range', () =>
      `[${lo}, ${hi}) outside [${this.firstIndex()}, ${this.lastIndex() + 1})`);
    const start = lo - this.baseIndex - 1;
    const end = Math.min(hi - this.baseIndex - 1, start + Math.max(1, countMax));
    return this.held.slice(start, end);
  }

  term(index: number): number | undefined {
    if (index === this.baseIndex) return this.baseTerm;
    if (index < this.baseIndex || index > this.lastIndex()) return undefined;
    return this.held[index - this.baseIndex - 1]!.term;
  }

  firstIndex(): number {
    return this.baseIndex + 1;
  }

  lastIndex(): number {
    return this.baseIndex + this.held.length;
  }

  snapshot(): Snapshot {
    return this.currentSnapshot;
  }

  hardStateNow(): HardState {
    return this.hardState;
  }

  setHardState(hardState: HardState): void {
    this.hardState = hardState;
  }

  /** Persist entries from a Ready: a conflicting tail is replaced. Entries below firstIndex are skipped. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    assert(first <= this.lastIndex() + 1, 'storage append is contiguous', () =>
      `first ${first} leaves a gap after ${this.lastIndex()}`);
    for (let k = 1; k < entries.length; k++) {
      assert(entries[k]!.index === first + k, 'storage append is contiguous', () => `entry ${k} of batch at ${first}`);
    }
    const skip = Math.max(0, this.firstIndex() - first);
    if (skip >= entries.length) return;
    const keep = first + skip - this.baseIndex - 1;
    this.held.length = keep;
    for (let k = skip; k < entries.length; k++) this.held.push(entries[k]!);
  }

  /** Replace the whole log by a snapshot (a follower catching up). Older snapshots are ignored. */
  applySnapshot(snapshot: Snapshot): void {
    const { index, term } = snapshot.metadata;
    if (index <= this.currentSnapshot.metadata.index) return;
    this.currentSnapshot = snapshot;
    this.baseIndex = index;
    this.baseTerm = term;
    this.held = [];
  }

  /** Record a snapshot of the state machine at `index` (an applied index). Does not compact. */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    assert(index <= this.lastIndex(), 'snapshot covers held entries', () => `${index} > last ${this.lastIndex()}`);
    if (index <= this.currentSnapshot.metadata.index) return this.currentSnapshot;
    // A member that joined with no configuration may apply entries before it learns one; a
    // snapshot there would hand followers a group with no voter. The host waits (snapshotConfState).
    assert(confState.voters.length > 0, 'a snapshot carries a configuration with a voter', () => `snapshot at ${index}`);
    const term = this.term(index);
    assert(term !== undefined, 'snapshot covers held entries', () => `term of ${index} unknown`);
    this.currentSnapshot = { metadata: { index, term, confState }, data };
    return this.currentSnapshot;
  }

  /** Drop entries up to and including `index`; it must not pass the snapshot. */
  compact(index: number): void {
    if (index <= this.baseIndex) return;
    assert(index <= this.currentSnapshot.metadata.index, 'compaction stays below the snapshot', () =>
      `compact ${index} > snapshot ${this.currentSnapshot.metadata.index}`);
    const term = this.term(index)!;
    this.held = this.held.slice(index - this.baseIndex);
    this.baseIndex = index;
    this.baseTerm = term;
  }
}
