// The simulated disk under one node: what survives a crash, the write whose fsync is pending, and
// a checksum per stored entry.
//
// The fault model, and why each fault is one Raft must tolerate (or one the host must refuse):
// - The host writes each Ready as one ordered write (snapshot, then the entries in index order, then
//   the hard state) and sends the Ready's messages only once its fsync completed. While the fsync is
//   pending the node runs on: it steps messages, ticks and takes proposals, whose output goes into
//   the next Ready — as RaftHost does while `await storage.persist(...)` is pending.
// - Lost fsync: the node loses power while a write's fsync is pending (or the fsync fails, and the
//   host stops, as it must: retrying a failed fsync may report success for lost pages). What was
//   written since the last completed fsync is lost, or torn: a prefix of its records reached the
//   platter and the record cut in the middle is dropped at open by its checksum, as a write-ahead
//   log's reader drops a torn tail. The cut may fall anywhere — after the snapshot, between two
//   entries, between the entries and the hard state. Raft tolerates this because nothing in the
//   write was promised yet: its messages (granted votes, acknowledgements) are still unsent, and a
//   leader counts its own entries only after advance(). A core or host that did rely on un-synced
//   data is caught by the checker, not excused by the model: every granted vote and acknowledged
//   append is checked against this disk's durable state when it is sent, and every index a leader
//   commits must be durable on a quorum of its voters.
//   Not modelled: a disk that loses data after a *successful* fsync. Raft cannot tolerate a node
//   forgetting a vote or an acknowledged entry, so such a fault would only produce false alarms.
// - Corrupt entry: while the node is down, the bytes of one stored, committed entry change. Every
//   entry is stored with a checksum taken when it was written; opening the disk verifies them all,
//   and a node whose log is damaged refuses to start (as LevelRaftStorage refuses a damaged
//   database at open). It stays down: a Raft node cannot repair its own log without forgetting what
//   it acknowledged, so an operator has to replace it. The simulator damages at most one node per
//   run, with a fixed membership, so the others still form a quorum and must converge.
import { MemoryStorage } from '../storage.js';
import type { ConfState, Entry, HardState, Snapshot } from '../types.js';

/** One record of a Ready's write, in the order the host writes them. */
export type DiskRecord =
  | { readonly kind: 'snapshot'; readonly snapshot: Snapshot }
  | { readonly kind: 'entry'; readonly entry: Entry }
  | { readonly kind: 'hardState'; readonly hardState: HardState };

/** What a crash of the node would leave: the checker compares promises on the wire against it. */
export interface DurableView {
  readonly hardState: HardState;
  readonly snapshotIndex: number;
  readonly lastIndex: number;
  /** Term of the durable entry at `index`; undefined if not held (compacted or beyond the end). */
  termAt(index: number): number | undefined;
}

/** FNV-1a over an entry's term, type and data: what a storage format's record checksum covers. */
export function entryChecksum(entry: Entry): number {
  let hash = 0x811c9dc5;
  const mix = (byte: number): void => {
    hash = Math.imul(hash ^ byte, 0x01000193);
  };
  for (let term = entry.term; term > 0; term = Math.floor(term / 256)) mix(term & 0xff);
  mix(entry.type.charCodeAt(0));
  for (const byte of entry.data) mix(byte);
  return hash >>> 0;
}

export class SimDisk implements DurableView {
  /** The durable state, which is also what the core reads (the host's mirror of its disk). */
  storage: MemoryStorage;
  /** index → checksum written with the entry. */
  private readonly checksums = new Map<number, number>();

  constructor(storage: MemoryStorage) {
    this.storage = storage;
  }

  get hardState(): HardState {
    return this.storage.hardStateNow();
  }

  get snapshotIndex(): number {
    return this.storage.snapshot().metadata.index;
  }

  get firstIndex(): number {
    return this.storage.firstIndex();
  }

  get lastIndex(): number {
    return this.storage.lastIndex();
  }

  termAt(index: number): number | undefined {
    return this.storage.term(index);
  }

  /** The records of one Ready's write, in write order. */
  static records(write: { snapshot?: Snapshot; entries: readonly Entry[]; hardState?: HardState }): DiskRecord[] {
    const records: DiskRecord[] = [];
    if (write.snapshot !== undefined) records.push({ kind: 'snapshot', snapshot: write.snapshot });
    for (const entry of write.entries) records.push({ kind: 'entry', entry });
    if (write.hardState !== undefined) records.push({ kind: 'hardState', hardState: write.hardState });
    return records;
  }

  /** A snapshot replaces the whole log; one no newer than the stored snapshot is ignored (as MemoryStorage does). */
  writeSnapshot(snapshot: Snapshot): void {
    if (snapshot.metadata.index <= this.snapshotIndex) return;
    this.storage.applySnapshot(snapshot);
    this.checksums.clear();
  }

  /** Contiguous entries; they replace any stored entry at the same index and after. */
  writeEntries(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    for (let index = first; this.checksums.has(index); index++) this.checksums.delete(index);
    for (const entry of entries) this.checksums.set(entry.index, entryChecksum(entry));
    this.storage.append(entries);
  }

  writeHardState(hardState: HardState): void {
    this.storage.setHardState(hardState);
  }

  /** Record a snapshot of the state machine at an applied `index` and drop the entries up to `compactTo` (one atomic write). */
  compact(index: number, confState: ConfState, data: Uint8Array, compactTo: number): void {
    const firstBefore = this.storage.firstIndex();
    this.storage.createSnapshot(index, confState, data);
    this.storage.compact(compactTo);
    for (let entry = firstBefore; entry <= compactTo; entry++) this.checksums.delete(entry);
  }

  /**
   * While the node is down, the data of one stored entry at or below `committedMax` changes (its
   * checksum does not). Returns the damaged index, or undefined when no entry qualifies.
   */
  damageOneEntry(pick: (count: number) => number, committedMax: number): number | undefined {
    const first = Math.max(this.storage.firstIndex(), this.snapshotIndex + 1);
    const last = Math.min(this.storage.lastIndex(), committedMax);
    const candidates: Entry[] = [];
    if (first <= last) {
      for (const entry of this.storage.entries(first, last + 1, Number.MAX_SAFE_INTEGER)) {
        if (entry.type === 'normal' && entry.data.length > 0) candidates.push(entry);
      }
    }
    if (candidates.length === 0) return undefined;
    const victim = candidates[pick(candidates.length)]!;
    const data = victim.data.slice();
    const at = pick(data.length);
    data[at] = data[at]! ^ (1 << pick(8));
    // MemoryStorage has no in-place edit: rebuild it as an open would read it (log from the snapshot on).
    const snapshot = this.storage.snapshot();
    const rebuilt = new MemoryStorage(snapshot.metadata.confState);
    if (snapshot.metadata.index > 0) rebuilt.applySnapshot(snapshot);
    const held = this.storage.entries(first, this.storage.lastIndex() + 1, Number.MAX_SAFE_INTEGER);
    rebuilt.append(held.map((entry) => (entry.index === victim.index ? { ...entry, data } : entry)));
    rebuilt.setHardState(this.storage.hardStateNow());
    this.storage = rebuilt;
    return victim.index;
  }

  /** Verify every held entry against its checksum, as the host does at open: the first bad index, or undefined. */
  findDamage(): number | undefined {
    const first = Math.max(this.storage.firstIndex(), this.snapshotIndex + 1);
    const last = this.storage.lastIndex();
    if (first > last) return undefined;
    for (const entry of this.storage.entries(first, last + 1, Number.MAX_SAFE_INTEGER)) {
      if (this.checksums.get(entry.index) !== entryChecksum(entry)) return entry.index;
    }
    return undefined;
  }
}
