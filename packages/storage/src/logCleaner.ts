// The log cleaner's work on one partition log (Kafka's Cleaner, for one log): build a key → latest
// offset map over the dirty section, rewrite each cleanable segment into `.cleaned` files keeping
// only what the map says is the latest of its key, and recover a swap a crash interrupted.
// PartitionLog decides which segments are cleanable and swaps the cleaned files in; this file
// reads segments and writes files beside them, and never changes the log's list of segments.
import fs from 'node:fs';
import { join } from 'node:path';
import {
  CorruptBatchError,
  batchSize,
  encodeEmptyBatch,
  isControlBatch,
  isTransactionalBatch,
  lastOffsetOf,
  listBatches,
  readBatchHeader,
  rebuildBatch,
  sliceRecords,
  type BatchHeader,
  type RecordSlice,
} from '@runnel/common';
import { LOG_SUFFIX, OFFSET_INDEX_SUFFIX, TIME_INDEX_SUFFIX, assert, fsyncDirectory, replaceFile, segmentPath, unlinkIfExists } from './files.js';
import { OffsetIndex, TimeIndex } from './indexes.js';
import type { Segment } from './segment.js';

/** The first offset not yet cleaned (Kafka's cleaner-offset-checkpoint, here one per partition directory). */
export const CLEANER_CHECKPOINT_FILE = 'cleaner-offset-checkpoint';
/** A cleaned file being written; discarded at open (the segment it replaces is intact). */
export const CLEANED_SUFFIX = '.cleaned';
/** A cleaned file whose swap has begun; completed at open. */
export const SWAP_SUFFIX = '.swap';
/**
 * What one key is charged in the offset map besides its bytes: a V8 Map entry, a one-byte string
 * header and a number. Measured on Node 20 (1M keys of 16 bytes, heap after gc): ~61 bytes an entry
 * with the key; charged its bytes + 96 to cover offsets above 2^31 (heap numbers) and the Map's
 * table while it grows. Kafka charges 24 bytes (an MD5 hash and an offset); a JS Map cannot be
 * that small, so the same dedupe buffer holds fewer keys here.
 */
export const OFFSET_MAP_ENTRY_OVERHEAD_BYTES = 96;
/** A cleaner step reads this much of a segment, then yields to the event loop. */
const CLEANER_READ_BYTES = 64 * 1024;
/** Cleaned bytes are written once this much has accumulated. */
const CLEANER_WRITE_BYTES = 1024 * 1024;
/** Files of a cleaned segment, the .log last: recovery completes a swap only when the .log's swap file exists. */
const SEGMENT_SUFFIXES_LOG_LAST = [OFFSET_INDEX_SUFFIX, TIME_INDEX_SUFFIX, LOG_SUFFIX] as const;

/** Thrown inside a pass when the log was closed, failed, or lost the segment being cleaned. */
export class CleaningAborted extends Error {
  constructor(reason: string) {
    super(`cleaning aborted: ${reason}`);
    this.name = 'CleaningAborted';
  }
}

/** Key → offset of its latest record, within a memory budget (log.cleaner.dedupe.buffer.size). */
export class OffsetMap {
  private readonly offsets = new Map<string, number>();
  private usedBytes = 0;

  constructor(readonly budgetBytes: number) {
    assert(Number.isSafeInteger(budgetBytes) && budgetBytes > 0, () => `dedupe buffer must be a positive integer, got ${budgetBytes}`);
  }

  get size(): number {
    return this.offsets.size;
  }

  get bytes(): number {
    return this.usedBytes;
  }

  /** Records `offset` as the latest of `key`; false (and nothing changes) when a new key does not fit. */
  tryPut(key: Buffer, offset: number): boolean {
    const name = key.toString('latin1'); // one char per byte: distinct keys stay distinct
    if (!this.offsets.has(name)) {
      const cost = key.length + OFFSET_MAP_ENTRY_OVERHEAD_BYTES;
      if (this.usedBytes + cost > this.budgetBytes) return false;
      this.usedBytes += cost;
    }
    this.offsets.set(name, offset);
    return true;
  }

  latestOffset(key: Buffer): number | undefined {
    return this.offsets.get(key.toString('latin1'));
  }
}

export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A batch the cleaner never looks into: transaction markers and transactional data are kept whole. */
function keptWhole(header: BatchHeader): boolean {
  return isControlBatch(header) || isTransactionalBatch(header);
}

/**
 * Records of a batch, or null when they do not decode (the batch is then kept whole): the cleaner
 * must not drop what it cannot read, and a consumer reading it gets CORRUPT_MESSAGE as before.
 */
function sliceOrNull(batch: Buffer): ReturnType<typeof sliceRecords> | null {
  try {
    return sliceRecords(batch);
  } catch (error) {
    if (error instanceof CorruptBatchError) return null;
    throw error;
  }
}

/**
 * Visits every batch of a sealed segment, reading CLEANER_READ_BYTES at a time and yielding to the
 * event loop before each read; `checkLive` runs after each yield and throws CleaningAborted.
 */
async function visitBatches(segment: Segment, checkLive: () => void, visit: (batch: Buffer, header: BatchHeader) => Promise<void> | void): Promise<void> {
  let position = 0;
  while (position < segment.sizeBytes) {
    await yieldToEventLoop();
    checkLive();
    const chunk = segment.readBatches(position, CLEANER_READ_BYTES, Number.MAX_SAFE_INTEGER, true);
    assert(chunk.records.length > 0, () => `segment ${segment.baseOffset}: no batch at byte ${position}`);
    for (const { position: at, header } of listBatches(chunk.records)) await visit(chunk.records.subarray(at, at + batchSize(header)), header);
    position += chunk.records.length;
  }
}

/**
 * Fills `map` with the latest offset of every key in `segments` from `firstDirtyOffset` on. Stops
 * at the first key that does not fit (Kafka cleans a prefix of the dirty section when it does not
 * fit the dedupe buffer). Returns the first offset the map does not cover.
 */
export async function buildOffsetMap(segments: readonly Segment[], firstDirtyOffset: number, map: OffsetMap, checkLive: (segment: Segment) => void): Promise<number> {
  let mapEnd = firstDirtyOffset;
  let full = false;
  for (const segment of segments) {
    if (full) break;
    if (segment.nextOffset <= firstDirtyOffset) continue;
    await visitBatches(segment, () => checkLive(segment), (batch, header) => {
      if (full) return;
      const sliced = keptWhole(header) ? null : sliceOrNull(batch);
      for (const record of sliced?.records ?? []) {
        if (record.offset < firstDirtyOffset || record.key === null) continue;
        if (!map.tryPut(record.key, record.offset)) {
          full = true;
          mapEnd = record.offset;
          return;
        }
      }
      if (lastOffsetOf(header) + 1 > mapEnd) mapEnd = lastOffsetOf(header) + 1;
    });
  }
  return mapEnd;
}

export interface CleaningRules {
  map: OffsetMap;
  /** Records at or above it are outside the map's reach and kept. */
  mapEndOffset: number;
  /** A tombstone in a segment last written before this wall-clock time may go. */
  tombstoneHorizonMs: number;
  indexIntervalBytes: number;
}

export interface CleanedSegment {
  baseOffset: number;
  bytesBefore: number;
  bytesAfter: number;
  recordsRemoved: number;
  tombstonesRemoved: number;
}

/** Removed whole batches of one leader epoch in a row, to be left as one empty batch. */
interface RemovedRun {
  baseOffset: number;
  lastOffset: number;
  baseTimestamp: number;
  maxTimestamp: number;
  partitionLeaderEpoch: number;
}

/** Writes a cleaned segment's .log and its indexes, as Segment.observeBatch would index them. */
class CleanedSegmentWriter {
  private readonly logPath: string;
  private readonly offsetIndex: OffsetIndex;
  private readonly timeIndex: TimeIndex;
  private handle: fs.promises.FileHandle | null = null;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  position = 0;
  nextOffset: number;
  private writtenBytes = 0;
  private bytesSinceIndexEntry = 0;
  private maxTimestamp = -1;
  private offsetOfMaxTimestamp: number;
  private run: RemovedRun | null = null;

  constructor(
    private readonly segment: Segment,
    private readonly indexIntervalBytes: number,
  ) {
    this.logPath = segment.logPath + CLEANED_SUFFIX;
    this.offsetIndex = new OffsetIndex(segment.offsetIndex.path + CLEANED_SUFFIX, segment.baseOffset);
    this.timeIndex = new TimeIndex(segment.timeIndex.path + CLEANED_SUFFIX, segment.baseOffset);
    this.nextOffset = segment.baseOffset;
    this.offsetOfMaxTimestamp = segment.baseOffset;
  }

  async open(): Promise<void> {
    for (const path of cleanedPaths(this.segment)) unlinkIfExists(path);
    this.handle = await fs.promises.open(this.logPath, 'wx', 0o644);
    this.offsetIndex.openForWrite();
    this.timeIndex.openForWrite();
  }

  async emit(batch: Buffer): Promise<void> {
    await this.emitRun();
    await this.append(batch);
  }

  /** A wholly removed batch: its offsets join the run that becomes one empty batch. */
  async remove(header: BatchHeader): Promise<void> {
    if (this.run !== null && this.run.partitionLeaderEpoch !== header.partitionLeaderEpoch) await this.emitRun();
    if (this.run === null) {
      this.run = { baseOffset: header.baseOffset, lastOffset: lastOffsetOf(header), baseTimestamp: header.baseTimestamp, maxTimestamp: header.maxTimestamp, partitionLeaderEpoch: header.partitionLeaderEpoch };
      return;
    }
    this.run.lastOffset = lastOffsetOf(header);
    this.run.maxTimestamp = Math.max(this.run.maxTimestamp, header.maxTimestamp);
  }

  private async emitRun(): Promise<void> {
    if (this.run === null) return;
    const run = this.run;
    this.run = null;
    await this.append(encodeEmptyBatch(run));
  }

  private async append(batch: Buffer): Promise<void> {
    const header = readBatchHeader(batch, 0);
    assert(header.baseOffset === this.nextOffset, () => `cleaned segment ${this.segment.baseOffset}: batch at ${header.baseOffset} does not follow ${this.nextOffset - 1}`);
    const lastOffset = lastOffsetOf(header);
    if (header.maxTimestamp > this.maxTimestamp) {
      this.maxTimestamp = header.maxTimestamp;
      this.offsetOfMaxTimestamp = lastOffset;
    }
    if (this.bytesSinceIndexEntry >= this.indexIntervalBytes) {
      this.offsetIndex.append(lastOffset, this.position);
      this.timeIndex.maybeAppend(this.maxTimestamp, this.offsetOfMaxTimestamp);
      this.bytesSinceIndexEntry = 0;
    }
    this.bytesSinceIndexEntry += batch.length;
    this.position += batch.length;
    this.nextOffset = lastOffset + 1;
    this.pending.push(batch);
    this.pendingBytes += batch.length;
    if (this.pendingBytes >= CLEANER_WRITE_BYTES) await this.writePending();
  }

  private async writePending(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const data = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.handle!.write(data, done, data.length - done, this.writtenBytes + done);
      assert(bytesWritten > 0, () => `${this.logPath}: write made no progress`);
      done += bytesWritten;
    }
    this.writtenBytes += data.length;
  }

  /** Writes what is pending and the final time index entry, makes the files durable and closes them. */
  async finish(): Promise<void> {
    await this.emitRun();
    await this.writePending();
    assert(this.nextOffset === this.segment.nextOffset, () => `cleaned segment ${this.segment.baseOffset} ends at ${this.nextOffset}, the segment at ${this.segment.nextOffset}`);
    this.timeIndex.maybeAppend(this.maxTimestamp, this.offsetOfMaxTimestamp);
    for (const index of [this.offsetIndex, this.timeIndex]) {
      index.writePending(true);
      index.sync(); // a few KB: cheap, unlike the .log's sync below
      index.close(true);
    }
    await this.handle!.datasync();
    await this.handle!.close();
    this.handle = null;
    // Tombstone expiry reads the segment's last-modified time: cleaning must not make it young again.
    const modified = new Date(this.segment.lastModifiedMs);
    await fs.promises.utimes(this.logPath, modified, modified);
  }

  async abandon(): Promise<void> {
    this.offsetIndex.close(false);
    this.timeIndex.close(false);
    await this.handle?.close().catch(() => undefined);
    this.handle = null;
    for (const path of cleanedPaths(this.segment)) unlinkIfExists(path);
  }
}

function cleanedPaths(segment: Segment): string[] {
  return SEGMENT_SUFFIXES_LOG_LAST.map((suffix) => segmentPath(segment.dir, segment.baseOffset, suffix) + CLEANED_SUFFIX);
}

/** Should the cleaner keep this record of a segment whose last write was at `lastModifiedMs`? */
function keeps(record: RecordSlice, rules: CleaningRules, lastModifiedMs: number, counts: { tombstones: number }): boolean {
  if (record.offset >= rules.mapEndOffset) return true;
  // As Kafka: a compacted log has no use for a record without a key (produce refuses them).
  if (record.key === null) return false;
  const latest = rules.map.latestOffset(record.key);
  if (latest !== undefined && record.offset < latest) return false;
  if (record.valueIsNull && lastModifiedMs < rules.tombstoneHorizonMs) {
    counts.tombstones++;
    return false;
  }
  return true;
}

/**
 * Writes the cleaned copy of `segment` to `<base>.log.cleaned` (+ `.index.cleaned`,
 * `.timeindex.cleaned`), durable when this resolves. Every batch keeps its offsets: a thinned
 * batch is re-encoded with its header, a batch with nothing left joins a run of removed batches
 * that becomes one empty batch holding their offsets, so batches still follow each other.
 */
export async function writeCleanedSegment(segment: Segment, rules: CleaningRules, checkLive: () => void): Promise<CleanedSegment> {
  const writer = new CleanedSegmentWriter(segment, rules.indexIntervalBytes);
  let recordsRemoved = 0;
  const counts = { tombstones: 0 };
  try {
    await writer.open();
    await visitBatches(segment, checkLive, async (batch, header) => {
      const sliced = keptWhole(header) ? null : sliceOrNull(batch);
      if (sliced === null) return writer.emit(batch);
      const kept = sliced.records.filter((record) => keeps(record, rules, segment.lastModifiedMs, counts));
      recordsRemoved += sliced.records.length - kept.length;
      if (kept.length === 0) return writer.remove(header);
      if (kept.length === sliced.records.length) return writer.emit(batch);
      return writer.emit(rebuildBatch(batch, sliced.section, kept));
    });
    await writer.finish();
  } catch (error) {
    await writer.abandon();
    throw error;
  }
  return { baseOffset: segment.baseOffset, bytesBefore: segment.sizeBytes, bytesAfter: writer.position, recordsRemoved, tombstonesRemoved: counts.tombstones };
}

/** Removes a cleaned segment's `.cleaned` files (a pass that stopped before its swap). */
export function discardCleaned(segment: Segment): void {
  for (const path of cleanedPaths(segment)) unlinkIfExists(path);
}

/**
 * Puts the cleaned files of the segment at `baseOffset` in place of its files, Kafka's way: every
 * `.cleaned` file is renamed to `.swap` (the .log last) and the directory synced — from then on the
 * swap is decided, and `completeInterruptedSwaps` finishes it after a crash — then each `.swap` is
 * renamed over the file it replaces (the .log last). A rename replaces a file atomically, so there
 * is no moment without a .log for these offsets. The caller closes the old Segment first.
 */
export function swapCleanedFiles(dir: string, baseOffset: number): void {
  for (const suffix of SEGMENT_SUFFIXES_LOG_LAST) {
    const path = segmentPath(dir, baseOffset, suffix);
    fs.renameSync(path + CLEANED_SUFFIX, path + SWAP_SUFFIX);
  }
  fsyncDirectory(dir);
  for (const suffix of SEGMENT_SUFFIXES_LOG_LAST) {
    const path = segmentPath(dir, baseOffset, suffix);
    fs.renameSync(path + SWAP_SUFFIX, path);
  }
}

/**
 * At open, before segments are loaded: `.cleaned` files are discarded (their segment was never
 * touched); a `<base>.log.swap` means the swap was decided, so it is completed (index `.swap` files
 * still there are renamed over the old indexes first, then the .log); an index `.swap` without a
 * `.log.swap` is from a swap that had not been decided (the .log is renamed to .swap last) and is
 * discarded. Returns the base offsets whose swap was completed.
 */
export function completeInterruptedSwaps(dir: string): { completed: number[]; discarded: string[] } {
  const names = fs.readdirSync(dir);
  const completed: number[] = [];
  const discarded: string[] = [];
  for (const name of names) {
    if (!name.endsWith(LOG_SUFFIX + SWAP_SUFFIX)) continue;
    const baseOffset = Number(name.slice(0, name.length - (LOG_SUFFIX + SWAP_SUFFIX).length));
    if (!Number.isSafeInteger(baseOffset)) continue;
    for (const suffix of SEGMENT_SUFFIXES_LOG_LAST) {
      const path = segmentPath(dir, baseOffset, suffix);
      if (fs.existsSync(path + SWAP_SUFFIX)) fs.renameSync(path + SWAP_SUFFIX, path);
    }
    completed.push(baseOffset);
  }
  for (const name of fs.readdirSync(dir)) {
    if (!name.endsWith(CLEANED_SUFFIX) && !name.endsWith(SWAP_SUFFIX)) continue;
    unlinkIfExists(join(dir, name));
    discarded.push(name);
  }
  if (completed.length > 0 || discarded.length > 0) fsyncDirectory(dir);
  return { completed: completed.sort((a, b) => a - b), discarded };
}

/** The cleaner checkpoint, or null when there is none (or it cannot be read: everything is then dirty). */
export function readCleanerCheckpoint(dir: string): number | null {
  try {
    const value = Number(fs.readFileSync(join(dir, CLEANER_CHECKPOINT_FILE), 'utf8').trim());
    return Number.isSafeInteger(value) && value >= 0 ? value : null;
  } catch {
    return null;
  }
}

/**
 * Not fsynced: a lost write leaves an older, lower checkpoint, and the next pass cleans again what
 * was already clean — more work, never lost data.
 */
export function writeCleanerCheckpoint(dir: string, offset: number): void {
  replaceFile(join(dir, CLEANER_CHECKPOINT_FILE), `${offset}\n`, { durable: false });
}
