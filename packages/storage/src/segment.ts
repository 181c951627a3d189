// One segment: a .log file of whole record batches v2 starting at `baseOffset`, plus its sparse
// offset index and time index. A Segment does no policy (when to roll, what to delete): the
// PartitionLog decides; the Segment keeps its files and in-memory state consistent.
import fs from 'node:fs';
import {
  BATCH_HEADER_BYTES,
  CorruptBatchError,
  LOG_OVERHEAD,
  batchSize,
  lastOffsetOf,
  readBatchHeader,
  validateBatch,
  type BatchHeader,
} from '@runnel/common';
import {
  DELETED_SUFFIX,
  LOG_SUFFIX,
  OFFSET_INDEX_SUFFIX,
  TIME_INDEX_SUFFIX,
  assert,
  assertOffset,
  readFully,
  readSafeInt64,
  segmentPath,
  unlinkIfExists,
  writevFully,
} from './files.js';
import { OffsetIndex, TimeIndex } from './indexes.js';

export const INT32_MAX = 0x7fff_ffff;
/** Smallest batchLength a v2 batch can have: the header after the batchLength field. */
const BATCH_LENGTH_MIN = BATCH_HEADER_BYTES - LOG_OVERHEAD;
/** Header-only scans read this much at a time and parse every header that falls inside. */
const HEADER_SCAN_CHUNK_BYTES = 16 * 1024;
/** A validating recovery scan reads this much at a time (more for a larger batch). */
const RECOVERY_CHUNK_BYTES = 1024 * 1024;

export type RollReason = 'size' | 'time' | 'offset';

export interface RecoveryResult {
  /** Byte position where the log was cut, or null if every byte was a valid batch. */
  truncatedAtBytes: number | null;
  reason: string | null;
  bytesRemoved: number;
}

export interface SegmentRead {
  /** Whole batches; may be a view into a larger buffer. */
  records: Buffer;
  /** Last offset of the last batch returned; -1 if none. */
  lastOffset: number;
  /** True when the read stopped at the end of the segment rather than at a limit. */
  reachedEnd: boolean;
}

/** Base offset, size and last offset of the batch at `at`, read without allocating BigInts. */
function peekBatch(buffer: Buffer, at: number): { baseOffset: number; size: number; lastOffset: number } {
  const baseOffset = readSafeInt64(buffer, at);
  const batchLength = buffer.readInt32BE(at + 8);
  const lastOffsetDelta = buffer.readInt32BE(at + 23);
  return { baseOffset, size: batchLength + LOG_OVERHEAD, lastOffset: baseOffset + lastOffsetDelta };
}

export class Segment {
  readonly offsetIndex: OffsetIndex;
  readonly timeIndex: TimeIndex;
  readonly logPath: string;
  private logFd: number | null;
  /** Logical size: written bytes plus bytes queued by appendBatch and not yet written. */
  sizeBytes: number;
  private writtenBytes: number;
  private pendingWrites: Buffer[] = [];
  /** The run of contiguous input bytes being coalesced into one iovec. */
  private runSource: Buffer | null = null;
  private runStart = 0;
  private runEnd = 0;
  /** The offset after the last batch; baseOffset when empty. */
  nextOffset: number;
  /** Largest batch maxTimestamp in the segment; -1 when none. */
  maxTimestamp = -1;
  private offsetOfMaxTimestamp: number;
  /** maxTimestamp of the first batch: the clock that time-based rolling follows (Kafka's rollingBasedTimestamp). */
  private firstBatchMaxTimestamp: number | null = null;
  private createdMs: number;
  lastModifiedMs: number;
  private bytesSinceIndexEntry = 0;
  /** In-flight fdatasync calls on logFd: close waits for them so the fd is never reused under them. */
  private fsyncPins = 0;
  private closeRequested = false;

  private constructor(
    readonly dir: string,
    readonly baseOffset: number,
    logFd: number,
    sizeBytes: number,
    nowMs: number,
    lastModifiedMs: number,
  ) {
    assertOffset(baseOffset, 'segment base offset');
    this.logPath = segmentPath(dir, baseOffset, LOG_SUFFIX);
    this.offsetIndex = new OffsetIndex(segmentPath(dir, baseOffset, OFFSET_INDEX_SUFFIX), baseOffset);
    this.timeIndex = new TimeIndex(segmentPath(dir, baseOffset, TIME_INDEX_SUFFIX), baseOffset);
    this.logFd = logFd;
    this.sizeBytes = sizeBytes;
    this.writtenBytes = sizeBytes;
    this.nextOffset = baseOffset;
    this.offsetOfMaxTimestamp = baseOffset;
    this.createdMs = nowMs;
    this.lastModifiedMs = lastModifiedMs;
  }

  /** A new, empty segment; its index files are open for appends. */
  static create(dir: string, baseOffset: number, nowMs: number): Segment {
    const fd = fs.openSync(segmentPath(dir, baseOffset, LOG_SUFFIX), fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o644);
    const segment = new Segment(dir, baseOffset, fd, 0, nowMs, nowMs);
    segment.openIndexesForWrite();
    segment.offsetIndex.rewrite();
    segment.timeIndex.rewrite();
    return segment;
  }

  /** An existing segment; call loadFromIndexes or recoverByScan before using it. */
  static openExisting(dir: string, baseOffset: number, nowMs: number): Segment {
    const fd = fs.openSync(segmentPath(dir, baseOffset, LOG_SUFFIX), fs.constants.O_RDWR);
    const stat = fs.fstatSync(fd);
    assert(stat.size <= INT32_MAX, () => `segment ${baseOffset} is ${stat.size} bytes: positions must fit an i32`);
    return new Segment(dir, baseOffset, fd, stat.size, nowMs, stat.mtimeMs);
  }

  get isEmpty(): boolean {
    return this.sizeBytes === 0;
  }

  get lastOffset(): number {
    return this.nextOffset - 1;
  }

  private get fd(): number {
    assert(this.logFd !== null && !this.closeRequested, () => `segment ${this.baseOffset} is closed`);
    return this.logFd;
  }

  openIndexesForWrite(): void {
    this.offsetIndex.openForWrite();
    this.timeIndex.openForWrite();
  }

  // ---- the write path -------------------------------------------------------------------------

  /** Why this segment must roll before a batch of `size` bytes ending at `lastOffset` is added; null if it need not. */
  shouldRoll(size: number, lastOffset: number, batchMaxTimestamp: number, segmentBytes: number, segmentMs: number, nowMs: number): RollReason | null {
    if (this.sizeBytes + size > segmentBytes) return 'size';
    if (this.sizeBytes > 0 && this.timeWaitedForRollMs(nowMs, batchMaxTimestamp) > segmentMs) return 'time';
    if (lastOffset - this.baseOffset > INT32_MAX) return 'offset';
    return null;
  }

  /** Kafka's LogSegment.timeWaitedForRoll: record time when the segment has it, else wall clock since creation. */
  private timeWaitedForRollMs(nowMs: number, batchMaxTimestamp: number): number {
    if (this.firstBatchMaxTimestamp !== null && this.firstBatchMaxTimestamp >= 0) return batchMaxTimestamp - this.firstBatchMaxTimestamp;
    return nowMs - this.createdMs;
  }

  /**
   * Queues the batch `source[start, start+size)` (offsets already assigned) and updates the
   * in-memory state and indexes. Contiguous batches of one source become one iovec; call
   * writePending() before anything reads or syncs this segment.
   */
  appendBatch(source: Buffer, start: number, header: BatchHeader, indexIntervalBytes: number, nowMs: number): void {
    const size = batchSize(header);
    assert(header.baseOffset === this.nextOffset, () => `segment ${this.baseOffset}: batch at ${header.baseOffset} does not follow ${this.lastOffset}`);
    assert(this.sizeBytes + size <= INT32_MAX, () => `segment ${this.baseOffset} would exceed 2 GiB`);
    this.observeBatch(this.sizeBytes, size, header, indexIntervalBytes, false);
    if (this.runSource === source && this.runEnd === start) {
      this.runEnd = start + size;
    } else {
      this.closeRun();
      this.runSource = source;
      this.runStart = start;
      this.runEnd = start + size;
    }
    this.sizeBytes += size;
    this.lastModifiedMs = nowMs;
  }

  private closeRun(): void {
    if (this.runSource === null) return;
    this.pendingWrites.push(this.runSource.subarray(this.runStart, this.runEnd));
    this.runSource = null;
  }

  /** Writes the queued batches with one writev (per IOV_MAX buffers), then due index entries. */
  writePending(): void {
    this.closeRun();
    if (this.pendingWrites.length > 0) {
      const expected = this.sizeBytes - this.writtenBytes;
      const written = writevFully(this.fd, this.pendingWrites, this.writtenBytes);
      this.pendingWrites = [];
      assert(written === expected, () => `segment ${this.baseOffset}: wrote ${written} of ${expected} bytes`);
      this.writtenBytes += written;
    }
    assert(this.writtenBytes === this.sizeBytes, 'segment: bytes queued but not written');
    if (this.offsetIndex.isOpen) this.offsetIndex.writePending(false);
    if (this.timeIndex.isOpen) this.timeIndex.writePending(false);
  }

  /**
   * Updates state for a batch at `position`, as an append does, in the same order as Kafka's
   * LogSegment.append: the max timestamp includes this batch, then an index entry is added if
   * at least indexIntervalBytes were appended since the last one. `alreadyIndexed`: the batch
   * that the last loaded index entry points at.
   */
  private observeBatch(position: number, size: number, header: BatchHeader, indexIntervalBytes: number, alreadyIndexed: boolean): void {
    const lastOffset = lastOffsetOf(header);
    if (position === 0) this.firstBatchMaxTimestamp = header.maxTimestamp;
    if (header.maxTimestamp > this.maxTimestamp) {
      this.maxTimestamp = header.maxTimestamp;
      this.offsetOfMaxTimestamp = lastOffset;
    }
    if (alreadyIndexed) {
      this.bytesSinceIndexEntry = 0;
    } else if (this.bytesSinceIndexEntry >= indexIntervalBytes) {
      this.offsetIndex.append(lastOffset, position);
      this.timeIndex.maybeAppend(this.maxTimestamp, this.offsetOfMaxTimestamp);
      this.bytesSinceIndexEntry = 0;
    }
    this.bytesSinceIndexEntry += size;
    this.nextOffset = lastOffset + 1;
  }

  // ---- durability and lifecycle ---------------------------------------------------------------

  /**
   * Makes the segment read-only: writes pending data and a final time index entry, and closes
   * the index files. It does not sync: the owner fdatasyncs the log in the background (a
   * synchronous sync of a freshly rolled segment stalled the event loop for ~150 ms per 256 MiB),
   * and recovery rebuilds any index a crash damaged.
   */
  seal(): void {
    this.writePending();
    this.timeIndex.maybeAppend(this.maxTimestamp, this.offsetOfMaxTimestamp);
    for (const index of [this.offsetIndex, this.timeIndex]) {
      if (!index.isOpen) continue;
      index.writePending(true);
      index.close(true);
    }
  }

  syncSync(): void {
    this.writePending();
    fs.fdatasyncSync(this.fd);
  }

  /** Pins the fd for an async fdatasync; unpin when it settles. */
  pinForFsync(): number {
    this.fsyncPins++;
    return this.fd;
  }

  unpinFsync(): void {
    assert(this.fsyncPins > 0, 'segment: unpin without pin');
    this.fsyncPins--;
    if (this.fsyncPins === 0 && this.closeRequested) this.closeLogFd();
  }

  /** True once close or delete was requested: an fsync error on a retired segment is not a log failure. */
  get isRetired(): boolean {
    return this.closeRequested;
  }

  /** Closes every fd (the log fd after in-flight fsyncs). `clean`: write pending index entries first. */
  close(clean: boolean): void {
    if (this.closeRequested) return;
    if (clean) {
      this.writePending();
      this.timeIndex.maybeAppend(this.maxTimestamp, this.offsetOfMaxTimestamp);
      // The clean-shutdown marker will vouch for these files: make them durable first.
      for (const index of [this.offsetIndex, this.timeIndex]) {
        if (!index.isOpen) continue;
        index.writePending(true);
        index.sync();
      }
    }
    this.offsetIndex.close(clean);
    this.timeIndex.close(clean);
    this.closeRequested = true;
    if (this.fsyncPins === 0) this.closeLogFd();
  }

  private closeLogFd(): void {
    if (this.logFd === null) return;
    fs.closeSync(this.logFd);
    this.logFd = null;
  }

  /** Closes the files and renames them to *.deleted; returns the new paths for deleteRenamed. */
  closeAndRename(): string[] {
    this.close(false);
    const renamed: string[] = [];
    for (const path of [this.logPath, this.offsetIndex.path, this.timeIndex.path]) {
      try {
        fs.renameSync(path, path + DELETED_SUFFIX);
        renamed.push(path + DELETED_SUFFIX);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
    return renamed;
  }

  /** Closes and deletes the segment's files, the .log first (an orphaned index is cleaned up on open). */
  deleteFiles(): void {
    this.close(false);
    unlinkIfExists(this.logPath);
    unlinkIfExists(this.offsetIndex.path);
    unlinkIfExists(this.timeIndex.path);
  }

  // ---- the read path --------------------------------------------------------------------------

  /**
   * Visits the headers of the batches from `position` to the end, reading 16 KiB at a time and
   * skipping bodies. Stops when `visit` returns false. Throws CorruptBatchError on a header that
   * cannot be right (bad length, runs past the end).
   */
  private scanHeaders(position: number, visit: (position: number, header: BatchHeader) => boolean): void {
    const buffer = Buffer.allocUnsafe(HEADER_SCAN_CHUNK_BYTES);
    let chunkStart = 0;
    let chunkLength = 0;
    const end = this.writtenBytes;
    for (let visited = 0; position < end; visited++) {
      assert(visited <= end / BATCH_HEADER_BYTES, 'scanHeaders: more batches than bytes allow');
      if (end - position < BATCH_HEADER_BYTES) throw new CorruptBatchError(`torn batch header at byte ${position} (${end - position} bytes left)`);
      if (position < chunkStart || position + BATCH_HEADER_BYTES > chunkStart + chunkLength) {
        chunkStart = position;
        chunkLength = readFully(this.fd, buffer, Math.min(HEADER_SCAN_CHUNK_BYTES, end - position), position);
        if (chunkLength < BATCH_HEADER_BYTES) throw new CorruptBatchError(`short read at byte ${position}`);
      }
      const header = readBatchHeader(buffer, position - chunkStart);
      if (header.batchLength < BATCH_LENGTH_MIN || position + batchSize(header) > end) {
        throw new CorruptBatchError(`batch at byte ${position} has a bad length ${header.batchLength} (segment is ${end} bytes)`);
      }
      if (!visit(position, header)) return;
      position += batchSize(header);
    }
  }

  /** Position of the first batch whose last offset is >= `offset`, using the offset index; sizeBytes if none. */
  findBatchPosition(offset: number): number {
    const entry = this.offsetIndex.lookup(offset);
    let found = this.writtenBytes;
    this.scanHeaders(entry?.position ?? 0, (position, header) => {
      if (lastOffsetOf(header) < offset) return true;
      found = position;
      return false;
    });
    return found;
  }

  /**
   * Whole batches from `position`, at most `maxBytes` of them unless `atLeastOne` (KIP-74: the
   * first batch is returned whole even if larger), and only batches whose last offset is below
   * `maxOffset`. One readSync in the common case, two when the first batch exceeds maxBytes.
   */
  readBatches(position: number, maxBytes: number, maxOffset: number, atLeastOne: boolean): SegmentRead {
    const available = this.writtenBytes - position;
    assert(available >= 0, () => `segment ${this.baseOffset}: read at ${position} past the end ${this.writtenBytes}`);
    if (available === 0) return { records: Buffer.alloc(0), lastOffset: -1, reachedEnd: true };
    const length = Math.min(available, Math.max(maxBytes, BATCH_HEADER_BYTES));
    let buffer = Buffer.allocUnsafe(length);
    if (readFully(this.fd, buffer, length, position) !== length) throw new CorruptBatchError(`segment ${this.baseOffset}: short read at byte ${position}`);
    const first = this.checkedPeek(buffer, 0, position);
    if (first.lastOffset >= maxOffset) return { records: Buffer.alloc(0), lastOffset: -1, reachedEnd: false };
    if (first.size > length || first.size > maxBytes) {
      if (!atLeastOne) return { records: Buffer.alloc(0), lastOffset: -1, reachedEnd: false };
      if (first.size > length) {
        const whole = Buffer.allocUnsafe(first.size);
        buffer.copy(whole, 0, 0, length);
        const rest = readFully(this.fd, whole.subarray(length), first.size - length, position + length);
        if (rest !== first.size - length) throw new CorruptBatchError(`segment ${this.baseOffset}: short read at byte ${position + length}`);
        buffer = whole;
      }
      return { records: buffer.subarray(0, first.size), lastOffset: first.lastOffset, reachedEnd: first.size === available };
    }
    let end = first.size;
    let lastOffset = first.lastOffset;
    let stoppedByLimit = false;
    while (end < length) {
      if (end + BATCH_HEADER_BYTES > length) {
        stoppedByLimit = true;
        break;
      }
      const next = this.checkedPeek(buffer, end, position + end);
      if (end + next.size > length || next.lastOffset >= maxOffset) {
        stoppedByLimit = true;
        break;
      }
      end += next.size;
      lastOffset = next.lastOffset;
    }
    return { records: buffer.subarray(0, end), lastOffset, reachedEnd: !stoppedByLimit && end === available };
  }

  private checkedPeek(buffer: Buffer, at: number, filePosition: number): { baseOffset: number; size: number; lastOffset: number } {
    const batch = peekBatch(buffer, at);
    if (Number.isNaN(batch.baseOffset) || batch.size < BATCH_HEADER_BYTES || filePosition + batch.size > this.writtenBytes || batch.baseOffset < this.baseOffset) {
      throw new CorruptBatchError(`segment ${this.baseOffset}: bad batch header at byte ${filePosition}`);
    }
    return batch;
  }

  /** Reads the whole batch at `position` (whose header is `header`). */
  readBatchAt(position: number, header: BatchHeader): Buffer {
    const size = batchSize(header);
    const buffer = Buffer.allocUnsafe(size);
    if (readFully(this.fd, buffer, size, position) !== size) throw new CorruptBatchError(`segment ${this.baseOffset}: short read at byte ${position}`);
    return buffer;
  }

  /**
   * The first batch (from the position the indexes allow) whose maxTimestamp is >= `timestamp`:
   * every batch before a time index entry (t, o) with t < timestamp holds only older records.
   */
  findBatchByTimestamp(timestamp: number, fromPosition = 0): { position: number; header: BatchHeader } | null {
    const below = this.timeIndex.lookupBelow(timestamp);
    const startOffset = below === null ? this.baseOffset : below.offset + 1;
    const entry = this.offsetIndex.lookup(startOffset);
    let found: { position: number; header: BatchHeader } | null = null;
    this.scanHeaders(Math.max(entry?.position ?? 0, fromPosition), (position, header) => {
      if (header.maxTimestamp < timestamp) return true;
      found = { position, header };
      return false;
    });
    return found;
  }

  // ---- truncation and recovery ----------------------------------------------------------------

  /** Removes every batch whose last offset is >= `offset`. Returns the bytes removed. */
  truncateTo(offset: number, indexIntervalBytes: number, nowMs: number): number {
    this.writePending();
    // The truncated segment becomes the active one: its index files must be open to be cut.
    this.openIndexesForWrite();
    const position = this.findBatchPosition(offset);
    const removed = this.writtenBytes - position;
    if (removed === 0) return 0;
    fs.ftruncateSync(this.fd, position);
    this.sizeBytes = position;
    this.writtenBytes = position;
    this.offsetIndex.truncateToOffset(offset);
    this.timeIndex.truncateToOffset(offset);
    const reason = this.rescanTail(indexIntervalBytes);
    assert(reason === null, () => `segment ${this.baseOffset}: inconsistent after truncation: ${reason}`);
    if (this.isEmpty) this.createdMs = nowMs;
    return removed;
  }

  /**
   * Loads the index files and checks them against the .log: the last offset index entry must
   * point at a batch with that last offset, the last time index entry at a batch with that max
   * timestamp, and the batches after the last entry must chain. Returns a reason to rebuild
   * (recoverByScan), or null when the segment is ready. `sealed`: entries the tail scan adds
   * (and the final time index entry) are written to the files, which stay closed.
   */
  loadFromIndexes(indexIntervalBytes: number, sealed: boolean): string | null {
    const offsetReason = this.offsetIndex.load(this.writtenBytes);
    if (offsetReason !== null) return `offset index: ${offsetReason}`;
    const timeReason = this.timeIndex.load(Number.MAX_SAFE_INTEGER);
    if (timeReason !== null) return `time index: ${timeReason}`;
    // The first offset index entry comes with a time index entry unless no record has a timestamp.
    if (this.offsetIndex.count > 0 && this.timeIndex.count === 0) return 'time index is empty but the offset index is not';
    const tailReason = this.rescanTail(indexIntervalBytes);
    if (tailReason !== null) return tailReason;
    const timeEntryReason = this.checkLastTimeEntry();
    if (timeEntryReason !== null) return timeEntryReason;
    if (sealed) this.persistSealedIndexes();
    return null;
  }

  /** The last time index entry (t, o) must name a batch ending at o whose max timestamp is t. */
  private checkLastTimeEntry(): string | null {
    const last = this.timeIndex.last();
    if (last === null) return null;
    if (last.offset >= this.nextOffset) return `time index entry at offset ${last.offset} is past the end ${this.nextOffset}`;
    let matches = false;
    try {
      this.scanHeaders(this.offsetIndex.lookup(last.offset)?.position ?? 0, (_position, header) => {
        if (lastOffsetOf(header) < last.offset) return true;
        matches = lastOffsetOf(header) === last.offset && header.maxTimestamp === last.timestamp;
        return false;
      });
    } catch (error) {
      if (error instanceof CorruptBatchError) return error.message;
      throw error;
    }
    return matches ? null : `time index entry (${last.timestamp}, ${last.offset}) does not match the batch at that offset`;
  }

  /** Writes index entries a tail scan added to a sealed segment, plus its final time index entry. */
  private persistSealedIndexes(): void {
    this.timeIndex.maybeAppend(this.maxTimestamp, this.offsetOfMaxTimestamp);
    for (const index of [this.offsetIndex, this.timeIndex]) {
      if (!index.hasPending) continue;
      index.openForWrite();
      index.writePending(true);
      index.sync();
      index.close(true);
    }
  }

  /**
   * Rebuilds the state after the last offset index entry by scanning headers from it to the end
   * (bounded by the index interval): next offset, max timestamp, first batch timestamp.
   */
  private rescanTail(indexIntervalBytes: number): string | null {
    const lastEntry = this.offsetIndex.last();
    const lastTime = this.timeIndex.last();
    this.maxTimestamp = lastTime?.timestamp ?? -1;
    this.offsetOfMaxTimestamp = lastTime?.offset ?? this.baseOffset;
    this.nextOffset = this.baseOffset;
    this.bytesSinceIndexEntry = 0;
    this.firstBatchMaxTimestamp = null;
    let expectedBase = this.baseOffset;
    try {
      if (this.writtenBytes > 0) this.firstBatchMaxTimestamp = readBatchHeaderAt(this.fd, 0).maxTimestamp;
      this.scanHeaders(lastEntry?.position ?? 0, (position, header) => {
        const indexed = lastEntry !== null && position === lastEntry.position;
        if (indexed && lastOffsetOf(header) !== lastEntry.offset) throw new CorruptBatchError(`index entry says offset ${lastEntry.offset} at byte ${position}, the batch ends at ${lastOffsetOf(header)}`);
        if (!indexed && header.baseOffset !== expectedBase) throw new CorruptBatchError(`batch at byte ${position} starts at offset ${header.baseOffset}, expected ${expectedBase}`);
        if (lastOffsetOf(header) - this.baseOffset > INT32_MAX) throw new CorruptBatchError(`batch at byte ${position} does not fit the segment's relative offsets`);
        this.observeBatch(position, batchSize(header), header, indexIntervalBytes, indexed);
        expectedBase = lastOffsetOf(header) + 1;
        return true;
      });
    } catch (error) {
      if (error instanceof CorruptBatchError) return error.message;
      throw error;
    }
    return null;
  }

  /**
   * Validates every batch from byte 0 (length, magic, CRC-32C, offsets following each other)
   * and cuts the file at the first one that fails. Rebuilds both indexes from what remains.
   */
  recoverByScan(indexIntervalBytes: number, sealed: boolean): RecoveryResult {
    this.writePending();
    this.offsetIndex.clear();
    this.timeIndex.clear();
    this.maxTimestamp = -1;
    this.offsetOfMaxTimestamp = this.baseOffset;
    this.nextOffset = this.baseOffset;
    this.bytesSinceIndexEntry = 0;
    this.firstBatchMaxTimestamp = null;
    const { validBytes, reason } = this.validatePrefix(indexIntervalBytes);
    const bytesRemoved = this.writtenBytes - validBytes;
    if (bytesRemoved > 0) {
      fs.ftruncateSync(this.fd, validBytes);
      fs.fdatasyncSync(this.fd);
      this.writtenBytes = validBytes;
      this.sizeBytes = validBytes;
    }
    // A sealed segment gets the final time index entry that seal() would have written.
    if (sealed) this.timeIndex.maybeAppend(this.maxTimestamp, this.offsetOfMaxTimestamp);
    const wasOpen = this.offsetIndex.isOpen;
    this.openIndexesForWrite();
    this.offsetIndex.rewrite();
    this.timeIndex.rewrite();
    if (!wasOpen) {
      this.offsetIndex.close(true);
      this.timeIndex.close(true);
    }
    return { truncatedAtBytes: bytesRemoved > 0 ? validBytes : null, reason: bytesRemoved > 0 ? reason : null, bytesRemoved };
  }

  private validatePrefix(indexIntervalBytes: number): { validBytes: number; reason: string | null } {
    const end = this.writtenBytes;
    let buffer = Buffer.allocUnsafe(Math.min(RECOVERY_CHUNK_BYTES, Math.max(end, BATCH_HEADER_BYTES)));
    let chunkStart = 0;
    let chunkLength = 0;
    let position = 0;
    let expectedBase = this.baseOffset;
    for (let visited = 0; position < end; visited++) {
      assert(visited <= end / BATCH_HEADER_BYTES, 'validatePrefix: more batches than bytes allow');
      if (end - position < BATCH_HEADER_BYTES) return { validBytes: position, reason: `torn batch header (${end - position} bytes)` };
      if (position + BATCH_HEADER_BYTES > chunkStart + chunkLength) {
        chunkStart = position;
        chunkLength = readFully(this.fd, buffer, Math.min(buffer.length, end - position), position);
      }
      let header: BatchHeader;
      try {
        header = readBatchHeader(buffer, position - chunkStart);
      } catch (error) {
        if (error instanceof CorruptBatchError) return { validBytes: position, reason: error.message };
        throw error;
      }
      const size = batchSize(header);
      if (header.batchLength < BATCH_LENGTH_MIN) return { validBytes: position, reason: `bad batch length ${header.batchLength}` };
      if (position + size > end) return { validBytes: position, reason: `torn batch: length says ${size} bytes, ${end - position} remain` };
      if (position + size > chunkStart + chunkLength) {
        if (size > buffer.length) buffer = Buffer.allocUnsafe(size);
        chunkStart = position;
        chunkLength = readFully(this.fd, buffer, Math.min(buffer.length, end - position), position);
      }
      try {
        validateBatch(buffer.subarray(0, chunkLength), position - chunkStart, { allowOffsetGaps: true });
      } catch (error) {
        if (error instanceof CorruptBatchError) return { validBytes: position, reason: error.message };
        throw error;
      }
      if (header.baseOffset !== expectedBase) return { validBytes: position, reason: `batch starts at offset ${header.baseOffset}, expected ${expectedBase}` };
      if (lastOffsetOf(header) - this.baseOffset > INT32_MAX) return { validBytes: position, reason: `offset ${lastOffsetOf(header)} does not fit the segment` };
      this.observeBatch(position, size, header, indexIntervalBytes, false);
      expectedBase = lastOffsetOf(header) + 1;
      position += size;
    }
    return { validBytes: position, reason: null };
  }
}

function readBatchHeaderAt(fd: number, position: number): BatchHeader {
  const buffer = Buffer.allocUnsafe(BATCH_HEADER_BYTES);
  if (readFully(fd, buffer, BATCH_HEADER_BYTES, position) !== BATCH_HEADER_BYTES) throw new CorruptBatchError(`torn batch header at byte ${position}`);
  return readBatchHeader(buffer, 0);
}
