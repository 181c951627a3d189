// The sparse offset index and the time index of one segment. Entries live in memory (typed arrays,
// binary search) and are appended to their files as they accumulate; Node has no mmap, so the
// file is only the durable copy that the next open loads instead of scanning the .log.
//
//   .index      entry = relative offset i32 BE | position i32 BE            (8 bytes)
//   .timeindex  entry = timestamp i64 BE       | relative offset i32 BE     (12 bytes)
//
// As in Kafka, an offset index entry names the LAST offset of the batch at that position, and a
// time index entry (t, o) says: the largest timestamp in the batches up to offset o is t.
import fs from 'node:fs';
import { assert, readSafeInt64, writevFully } from './files.js';

export const OFFSET_INDEX_ENTRY_BYTES = 8;
export const TIME_INDEX_ENTRY_BYTES = 12;
const INITIAL_CAPACITY_ENTRIES = 64;
/** Pending entries are written to the file once they reach this many bytes (or on flush, roll, close). */
const PENDING_WRITE_BYTES = 4096;
const INT32_MAX = 0x7fff_ffff;

function grow<T extends Int32Array | Float64Array>(array: T, needed: number): T {
  if (needed <= array.length) return array;
  let capacity = array.length;
  while (capacity < needed) capacity *= 2;
  const grown = new (array.constructor as new (length: number) => T)(capacity);
  grown.set(array);
  return grown;
}

/** What both index files share: an fd, how many entries the file holds, pending writes. */
abstract class IndexFile {
  protected fd: number | null = null;
  /** Entries [0, persistedCount) are in the file. */
  protected persistedCount = 0;
  count = 0;

  constructor(
    readonly path: string,
    readonly baseOffset: number,
    private readonly entryBytes: number,
  ) {}

  openForWrite(): void {
    if (this.fd !== null) return;
    this.fd = fs.openSync(this.path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
  }

  get hasPending(): boolean {
    return this.count > this.persistedCount;
  }

  get isOpen(): boolean {
    return this.fd !== null;
  }

  protected abstract encode(from: number, to: number): Buffer;

  /** Appends the entries not yet in the file; if `force` is false, only once enough accumulated. */
  writePending(force: boolean): void {
    const pending = this.count - this.persistedCount;
    if (pending === 0) return;
    if (!force && pending * this.entryBytes < PENDING_WRITE_BYTES) return;
    assert(this.fd !== null, () => `${this.path}: writing entries to a closed index`);
    writevFully(this.fd, [this.encode(this.persistedCount, this.count)], this.persistedCount * this.entryBytes);
    this.persistedCount = this.count;
  }

  /** Makes the file hold exactly the in-memory entries (after a rebuild or a truncation). */
  rewrite(): void {
    assert(this.fd !== null, () => `${this.path}: rewriting a closed index`);
    fs.ftruncateSync(this.fd, 0);
    this.persistedCount = 0;
    this.writePending(true);
    fs.ftruncateSync(this.fd, this.count * this.entryBytes);
  }

  /** Drops in-memory entries from `index` on, and cuts the file to match. */
  protected truncateEntries(index: number): void {
    if (index >= this.count) return;
    this.count = index;
    if (this.persistedCount > index) {
      this.persistedCount = index;
      if (this.fd !== null) fs.ftruncateSync(this.fd, index * this.entryBytes);
    }
  }

  sync(): void {
    if (this.fd !== null) fs.fdatasyncSync(this.fd);
  }

  /** Writes pending entries, trims the file to its exact size, closes it. */
  close(writePending: boolean): void {
    if (this.fd === null) return;
    if (writePending) {
      this.writePending(true);
      fs.ftruncateSync(this.fd, this.persistedCount * this.entryBytes);
    }
    fs.closeSync(this.fd);
    this.fd = null;
  }

  /** The file's bytes, or null if it does not exist. */
  static readFile(path: string): Buffer | null {
    try {
      return fs.readFileSync(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }
}

export interface OffsetIndexEntry {
  offset: number;
  position: number;
}

export class OffsetIndex extends IndexFile {
  private relativeOffsets = new Int32Array(INITIAL_CAPACITY_ENTRIES);
  private positions = new Int32Array(INITIAL_CAPACITY_ENTRIES);

  constructor(path: string, baseOffset: number) {
    super(path, baseOffset, OFFSET_INDEX_ENTRY_BYTES);
  }

  append(offset: number, position: number): void {
    const relative = offset - this.baseOffset;
    assert(relative >= 0 && relative <= INT32_MAX, () => `offset index: offset ${offset} does not fit segment ${this.baseOffset}`);
    assert(position >= 0 && position <= INT32_MAX, () => `offset index: position ${position} out of range`);
    if (this.count > 0) {
      assert(relative > this.relativeOffsets[this.count - 1]!, () => `offset index: offset ${offset} is not above the last entry`);
      assert(position > this.positions[this.count - 1]!, () => `offset index: position ${position} is not above the last entry`);
    }
    this.relativeOffsets = grow(this.relativeOffsets, this.count + 1);
    this.positions = grow(this.positions, this.count + 1);
    this.relativeOffsets[this.count] = relative;
    this.positions[this.count] = position;
    this.count++;
  }

  entry(index: number): OffsetIndexEntry {
    assert(index >= 0 && index < this.count, 'offset index: entry out of range');
    return { offset: this.baseOffset + this.relativeOffsets[index]!, position: this.positions[index]! };
  }

  last(): OffsetIndexEntry | null {
    return this.count === 0 ? null : this.entry(this.count - 1);
  }

  /** The entry with the largest offset <= `offset`, or null if every entry is above it. */
  lookup(offset: number): OffsetIndexEntry | null {
    const index = this.floorIndex(offset - this.baseOffset);
    return index < 0 ? null : this.entry(index);
  }

  /** Removes the entries whose offset is >= `offset`. */
  truncateToOffset(offset: number): void {
    this.truncateEntries(this.floorIndex(offset - this.baseOffset - 1) + 1);
  }

  clear(): void {
    this.truncateEntries(0);
  }

  private floorIndex(relative: number): number {
    let low = 0;
    let high = this.count - 1;
    let found = -1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      if (this.relativeOffsets[middle]! <= relative) {
        found = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return found;
  }

  protected encode(from: number, to: number): Buffer {
    const buffer = Buffer.allocUnsafe((to - from) * OFFSET_INDEX_ENTRY_BYTES);
    for (let i = from; i < to; i++) {
      const at = (i - from) * OFFSET_INDEX_ENTRY_BYTES;
      buffer.writeInt32BE(this.relativeOffsets[i]!, at);
      buffer.writeInt32BE(this.positions[i]!, at + 4);
    }
    return buffer;
  }

  /**
   * Loads the file and checks it: whole entries, offsets and positions strictly increasing and
   * inside the segment. Returns a reason if the file must be rebuilt, null when loaded.
   */
  load(logSizeBytes: number): string | null {
    const bytes = IndexFile.readFile(this.path);
    if (bytes === null) return 'missing';
    if (bytes.length % OFFSET_INDEX_ENTRY_BYTES !== 0) return `size ${bytes.length} is not a multiple of ${OFFSET_INDEX_ENTRY_BYTES}`;
    this.count = 0;
    for (let at = 0; at < bytes.length; at += OFFSET_INDEX_ENTRY_BYTES) {
      const relative = bytes.readInt32BE(at);
      const position = bytes.readInt32BE(at + 4);
      if (relative < 0 || position < 0 || position >= logSizeBytes) return `entry ${at / OFFSET_INDEX_ENTRY_BYTES} (${relative}, ${position}) is outside the segment`;
      if (this.count > 0 && (relative <= this.relativeOffsets[this.count - 1]! || position <= this.positions[this.count - 1]!)) {
        return `entry ${at / OFFSET_INDEX_ENTRY_BYTES} does not increase`;
      }
      this.append(this.baseOffset + relative, position);
    }
    this.persistedCount = this.count;
    return null;
  }
}

export interface TimeIndexEntry {
  timestamp: number;
  offset: number;
}

export class TimeIndex extends IndexFile {
  private timestamps = new Float64Array(INITIAL_CAPACITY_ENTRIES);
  private relativeOffsets = new Int32Array(INITIAL_CAPACITY_ENTRIES);

  constructor(path: string, baseOffset: number) {
    super(path, baseOffset, TIME_INDEX_ENTRY_BYTES);
  }

  /** Adds (timestamp, offset) if the timestamp is above the last entry's (or >= 0 when empty). */
  maybeAppend(timestamp: number, offset: number): void {
    const lastTimestamp = this.count === 0 ? -1 : this.timestamps[this.count - 1]!;
    if (timestamp <= lastTimestamp) return;
    const relative = offset - this.baseOffset;
    assert(relative >= 0 && relative <= INT32_MAX, () => `time index: offset ${offset} does not fit segment ${this.baseOffset}`);
    assert(Number.isSafeInteger(timestamp), () => `time index: timestamp ${timestamp} is not a safe integer`);
    if (this.count > 0) assert(relative >= this.relativeOffsets[this.count - 1]!, () => `time index: offset ${offset} goes backwards`);
    this.timestamps = grow(this.timestamps, this.count + 1);
    this.relativeOffsets = grow(this.relativeOffsets, this.count + 1);
    this.timestamps[this.count] = timestamp;
    this.relativeOffsets[this.count] = relative;
    this.count++;
  }

  entry(index: number): TimeIndexEntry {
    assert(index >= 0 && index < this.count, 'time index: entry out of range');
    return { timestamp: this.timestamps[index]!, offset: this.baseOffset + this.relativeOffsets[index]! };
  }

  last(): TimeIndexEntry | null {
    return this.count === 0 ? null : this.entry(this.count - 1);
  }

  /** The entry with the largest timestamp strictly below `timestamp`, or null. */
  lookupBelow(timestamp: number): TimeIndexEntry | null {
    let low = 0;
    let high = this.count - 1;
    let found = -1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      if (this.timestamps[middle]! < timestamp) {
        found = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return found < 0 ? null : this.entry(found);
  }

  /** Removes the entries whose offset is >= `offset`. */
  truncateToOffset(offset: number): void {
    let keep = this.count;
    while (keep > 0 && this.baseOffset + this.relativeOffsets[keep - 1]! >= offset) keep--;
    this.truncateEntries(keep);
  }

  clear(): void {
    this.truncateEntries(0);
  }

  protected encode(from: number, to: number): Buffer {
    const buffer = Buffer.allocUnsafe((to - from) * TIME_INDEX_ENTRY_BYTES);
    for (let i = from; i < to; i++) {
      const at = (i - from) * TIME_INDEX_ENTRY_BYTES;
      buffer.writeBigInt64BE(BigInt(this.timestamps[i]!), at);
      buffer.writeInt32BE(this.relativeOffsets[i]!, at + 8);
    }
    return buffer;
  }

  /**
   * Loads and checks the file: whole entries, timestamps strictly increasing, offsets not
   * decreasing and below `nextOffsetLimit` (the caller checks the last entry again once the
   * segment's end is known). Returns a reason to rebuild, or null when loaded.
   */
  load(nextOffsetLimit: number): string | null {
    const bytes = IndexFile.readFile(this.path);
    if (bytes === null) return 'missing';
    if (bytes.length % TIME_INDEX_ENTRY_BYTES !== 0) return `size ${bytes.length} is not a multiple of ${TIME_INDEX_ENTRY_BYTES}`;
    this.count = 0;
    for (let at = 0; at < bytes.length; at += TIME_INDEX_ENTRY_BYTES) {
      const timestamp = readSafeInt64(bytes, at);
      const relative = bytes.readInt32BE(at + 8);
      const entry = at / TIME_INDEX_ENTRY_BYTES;
      if (Number.isNaN(timestamp) || timestamp < 0) return `entry ${entry} has an invalid timestamp`;
      if (relative < 0 || this.baseOffset + relative >= nextOffsetLimit) return `entry ${entry} offset ${this.baseOffset + relative} is outside the segment`;
      if (this.count > 0 && (timestamp <= this.timestamps[this.count - 1]! || relative < this.relativeOffsets[this.count - 1]!)) {
        return `entry ${entry} does not increase`;
      }
      this.maybeAppend(timestamp, this.baseOffset + relative);
    }
    this.persistedCount = this.count;
    return null;
  }
}
