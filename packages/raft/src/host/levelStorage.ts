// The durable Raft log on LevelDB (classic-level): hard state, entries and the newest snapshot.
// The core reads through an in-memory mirror (MemoryStorage) that holds exactly what is on disk;
// `persist` writes one atomic, fsynced LevelDB batch and only then updates the mirror, so the
// core never sees an entry that a crash could take away. Anything inconsistent at open is an
// error naming the directory: silently starting empty would let a node vote twice in a term.
import { existsSync } from 'node:fs';
import { ClassicLevel } from 'classic-level';
import { MemoryStorage, type Storage } from '../storage.js';
import type { ConfState, Entry, EntryType, HardState, Snapshot } from '../types.js';

const FORMAT_VERSION = 1;
const KEY_META = Buffer.from('m');
const KEY_HARD_STATE = Buffer.from('h');
const KEY_SNAPSHOT_META = Buffer.from('s');
const KEY_SNAPSHOT_DATA = Buffer.from('d');
const ENTRY_PREFIX = 0x65; // 'e'
const ENTRY_TYPES: readonly EntryType[] = ['normal', 'config', 'empty'];

export class RaftStorageError extends Error {
  constructor(dir: string, detail: string) {
    super(`raft storage ${dir}: ${detail}`);
    this.name = 'RaftStorageError';
  }
}

/**
 * The directory holds no Raft log, and the caller did not allow a new one: it knows this member
 * had a log (a member that starts over with none could vote twice in a term it voted in).
 */
export class RaftLogMissingError extends RaftStorageError {
  constructor(dir: string) {
    super(dir, 'holds no Raft log, and this member may not start a new one');
    this.name = 'RaftLogMissingError';
  }
}

function entryKey(index: number): Buffer {
  const key = Buffer.allocUnsafe(9);
  key[0] = ENTRY_PREFIX;
  key.writeBigUInt64BE(BigInt(index), 1);
  return key;
}

function encodeEntry(entry: Entry): Buffer {
  const value = Buffer.allocUnsafe(9 + entry.data.length);
  value.writeBigUInt64BE(BigInt(entry.term), 0);
  value[8] = ENTRY_TYPES.indexOf(entry.type);
  value.set(entry.data, 9);
  return value;
}

function decodeEntry(index: number, value: Uint8Array, dir: string): Entry {
  const buffer = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (buffer.length < 9 || buffer[8]! >= ENTRY_TYPES.length) throw new RaftStorageError(dir, `entry ${index} is truncated or has an unknown type`);
  return { index, term: Number(buffer.readBigUInt64BE(0)), type: ENTRY_TYPES[buffer[8]!]!, data: new Uint8Array(buffer.subarray(9)) };
}

type Operation = { type: 'put'; key: Buffer; value: Uint8Array } | { type: 'del'; key: Buffer };

export interface LevelRaftStorageOptions {
  nodeId: number;
  /** The configuration of a brand-new group; ignored once the directory holds state. */
  bootstrap: ConfState;
  /** fsync every write (default). Off only for benchmarks that measure what fsync costs. */
  sync?: boolean;
  /**
   * Start a new log (with `bootstrap`) when the directory holds none (default true). False when
   * the caller knows this member had a log: `open` then fails with RaftLogMissingError and
   * creates nothing.
   */
  createIfEmpty?: boolean;
}

export class LevelRaftStorage implements Storage {
  private constructor(
    readonly dir: string,
    private readonly db: ClassicLevel<Buffer, Uint8Array>,
    private readonly mirror: MemoryStorage,
    private readonly sync: boolean,
    /** Whether `open` started this log (the directory held none). */
    readonly created: boolean,
  ) {}

  static async open(dir: string, options: LevelRaftStorageOptions): Promise<LevelRaftStorage> {
    // Opening creates the directory: refuse a missing one first, so a refusal leaves no trace.
    if (options.createIfEmpty === false && !existsSync(dir)) throw new RaftLogMissingError(dir);
    const db = new ClassicLevel<Buffer, Uint8Array>(dir, { keyEncoding: 'buffer', valueEncoding: 'view' });
    try {
      await db.open();
    } catch (error) {
      const cause = (error as { cause?: Error }).cause?.message ?? (error as Error).message;
      throw new RaftStorageError(dir, `cannot open (${cause}); refusing to start with a damaged Raft log`);
    }
    try {
      const { mirror, created } = await LevelRaftStorage.load(dir, db, options);
      return new LevelRaftStorage(dir, db, mirror, options.sync ?? true, created);
    } catch (error) {
      await db.close();
      throw error;
    }
  }

  private static async load(dir: string, db: ClassicLevel<Buffer, Uint8Array>, options: LevelRaftStorageOptions): Promise<{ mirror: MemoryStorage; created: boolean }> {
    const metaValue = await db.get(KEY_META);
    if (metaValue === undefined) {
      for await (const _key of db.keys({ limit: 1 })) throw new RaftStorageError(dir, 'holds data but no format record: it is not a Runnel Raft log, or it is damaged');
      if (options.createIfEmpty === false) throw new RaftLogMissingError(dir);
      const snapshot: Snapshot = { metadata: { index: 0, term: 0, confState: options.bootstrap }, data: new Uint8Array(0) };
      await db.batch(
        [
          { type: 'put', key: KEY_META, value: Buffer.from(JSON.stringify({ version: FORMAT_VERSION, nodeId: options.nodeId })) },
          { type: 'put', key: KEY_HARD_STATE, value: Buffer.from(JSON.stringify({ term: 0, vote: 0, commit: 0 })) },
          { type: 'put', key: KEY_SNAPSHOT_META, value: Buffer.from(JSON.stringify(snapshot.metadata)) },
          { type: 'put', key: KEY_SNAPSHOT_DATA, value: snapshot.data },
        ],
        { sync: true },
      );
      return { mirror: new MemoryStorage(options.bootstrap), created: true };
    }
    const meta = parseJson<{ version: number; nodeId: number }>(dir, 'format record', metaValue);
    if (meta.version !== FORMAT_VERSION) throw new RaftStorageError(dir, `format version ${meta.version} is not ${FORMAT_VERSION}`);
    if (meta.nodeId !== options.nodeId) throw new RaftStorageError(dir, `belongs to node ${meta.nodeId}, not node ${options.nodeId}`);
    const hardState = parseJson<HardState>(dir, 'hard state', await required(db, dir, KEY_HARD_STATE, 'hard state'));
    const snapshotMeta = parseJson<Snapshot['metadata']>(dir, 'snapshot metadata', await required(db, dir, KEY_SNAPSHOT_META, 'snapshot metadata'));
    const snapshotData = await required(db, dir, KEY_SNAPSHOT_DATA, 'snapshot data');

    const mirror = new MemoryStorage(snapshotMeta.confState);
    if (snapshotMeta.index > 0) mirror.applySnapshot({ metadata: snapshotMeta, data: new Uint8Array(snapshotData) });
    // Compaction may keep entries at or below the snapshot's index for followers of a running
    // leader; after a restart the snapshot covers them, so they are dropped here. Above it the
    // log must start at snapshot.index + 1 and be contiguous.
    const entries: Entry[] = [];
    const covered: Operation[] = [];
    let expected = snapshotMeta.index + 1;
    let previousTerm = snapshotMeta.term;
    for await (const [key, value] of db.iterator({ gte: entryKey(0), lte: entryKey(Number.MAX_SAFE_INTEGER) })) {
      const index = Number(key.readBigUInt64BE(1));
      if (index <= snapshotMeta.index) {
        covered.push({ type: 'del', key });
        continue;
      }
      if (index !== expected) throw new RaftStorageError(dir, `entry ${index} found where ${expected} was expected: the log has a gap`);
      const entry = decodeEntry(index, value, dir);
      if (entry.term < previousTerm) throw new RaftStorageError(dir, `entry ${index} has term ${entry.term} below the term ${previousTerm} before it`);
      entries.push(entry);
      previousTerm = entry.term;
      expected = index + 1;
    }
    if (covered.length > 0) await db.batch(covered, { sync: true });
    const lastIndex = expected - 1;
    if (hardState.commit > lastIndex) throw new RaftStorageError(dir, `hard state commit ${hardState.commit} is beyond the last entry ${lastIndex}: entries were lost`);
    if (hardState.term < previousTerm) throw new RaftStorageError(dir, `hard state term ${hardState.term} is below the last entry's term ${previousTerm}`);
    mirror.append(entries);
    mirror.setHardState(hardState);
    return { mirror, created: false };
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return this.mirror.initialState();
  }

  entries(lo: number, hi: number, countMax: number): Entry[] {
    return this.mirror.entries(lo, hi, countMax);
  }

  term(index: number): number | undefined {
    return this.mirror.term(index);
  }

  firstIndex(): number {
    return this.mirror.firstIndex();
  }

  lastIndex(): number {
    return this.mirror.lastIndex();
  }

  snapshot(): Snapshot {
    return this.mirror.snapshot();
  }

  /**
   * Makes a Ready's snapshot, entries and hard state durable in one atomic batch (fsynced unless
   * `sync` is off), then shows them to the core. Entries replace any stored entry at the same
   * index and after; a snapshot replaces the whole log.
   */
  async persist(state: { snapshot?: Snapshot; entries: readonly Entry[]; hardState?: HardState }): Promise<void> {
    const operations: Operation[] = [];
    let last = this.mirror.lastIndex();
    if (state.snapshot !== undefined && state.snapshot.metadata.index > this.mirror.snapshot().metadata.index) {
      operations.push(...this.snapshotOperations(state.snapshot));
      for (let index = this.mirror.firstIndex(); index <= last; index++) operations.push({ type: 'del', key: entryKey(index) });
      last = state.snapshot.metadata.index;
    }
    if (state.entries.length > 0) {
      const first = state.entries[0]!.index;
      for (let index = first; index <= last; index++) operations.push({ type: 'del', key: entryKey(index) });
      for (const entry of state.entries) operations.push({ type: 'put', key: entryKey(entry.index), value: encodeEntry(entry) });
    }
    if (state.hardState !== undefined) operations.push({ type: 'put', key: KEY_HARD_STATE, value: Buffer.from(JSON.stringify(state.hardState)) });
    if (operations.length === 0) return;
    await this.db.batch(operations, { sync: this.sync });
    if (state.snapshot !== undefined) this.mirror.applySnapshot(state.snapshot);
    this.mirror.append(state.entries);
    if (state.hardState !== undefined) this.mirror.setHardState(state.hardState);
  }

  /**
   * Records the state machine's snapshot at an applied `index` and drops the entries it covers,
   * keeping `retainEntries` behind it so that slightly slow followers still catch up from the log.
   */
  async compact(index: number, confState: ConfState, data: Uint8Array, retainEntries = 0): Promise<void> {
    if (index <= this.mirror.snapshot().metadata.index) return;
    if (confState.voters.length === 0) throw new Error(`cannot snapshot at ${index}: no configuration is known there (a joining member)`);
    const term = this.mirror.term(index);
    if (term === undefined) throw new Error(`cannot snapshot at ${index}: not in the log (${this.mirror.firstIndex()}..${this.mirror.lastIndex()})`);
    const snapshot: Snapshot = { metadata: { index, term, confState }, data };
    const compactTo = Math.max(this.mirror.firstIndex() - 1, index - retainEntries);
    const operations: Operation[] = this.snapshotOperations(snapshot);
    for (let entry = this.mirror.firstIndex(); entry <= compactTo; entry++) operations.push({ type: 'del', key: entryKey(entry) });
    await this.db.batch(operations, { sync: this.sync });
    this.mirror.createSnapshot(index, confState, data);
    this.mirror.compact(compactTo);
  }

  async close(): Promise<void> {
    await this.db.close();
  }

  private snapshotOperations(snapshot: Snapshot): Operation[] {
    return [
      { type: 'put', key: KEY_SNAPSHOT_META, value: Buffer.from(JSON.stringify(snapshot.metadata)) },
      { type: 'put', key: KEY_SNAPSHOT_DATA, value: snapshot.data },
    ];
  }
}

async function required(db: ClassicLevel<Buffer, Uint8Array>, dir: string, key: Buffer, what: string): Promise<Uint8Array> {
  const value = await db.get(key);
  if (value === undefined) throw new RaftStorageError(dir, `the ${what} record is missing`);
  return value;
}

function parseJson<T>(dir: string, what: string, value: Uint8Array): T {
  try {
    return JSON.parse(Buffer.from(value).toString('utf8')) as T;
  } catch {
    throw new RaftStorageError(dir, `the ${what} record does not parse`);
  }
}
