// The log of one partition: an ordered list of segments in one directory, the last one active.
// Owns offset assignment, rolling, reads, timestamp lookups, truncation, retention, the flush
// policy (with group commit) and crash recovery. Knows nothing of topics, replication or the
// network: the broker decides what to append, up to where to read, and when to truncate.
import fs from 'node:fs';
import { join } from 'node:path';
import {
  BATCH_HEADER_BYTES,
  CorruptBatchError,
  LOG_OVERHEAD,
  RunnelError,
  batchSize,
  createLogger,
  decodeRecords,
  lastOffsetOf,
  readBatchHeader,
  setBaseOffset,
  setPartitionLeaderEpoch,
  validateBatch,
  type BatchHeader,
  type LogSettings,
  type Logger,
} from '@runnel/common';
import {
  AssertionError,
  CLEAN_SHUTDOWN_FILE,
  DELETED_SUFFIX,
  LOG_SUFFIX,
  assert,
  assertOffset,
  fdatasyncAsync,
  fsyncDirectory,
  readRecoveryPoint,
  writeRecoveryPoint,
  isStrayFile,
  parseSegmentFileName,
  readFully,
  unlinkIfExists,
} from './files.js';
import { LEADER_EPOCH_CHECKPOINT_FILE, LeaderEpochCache, readCheckpoint } from './leaderEpochCache.js';
import {
  CLEANER_CHECKPOINT_FILE,
  CleaningAborted,
  OffsetMap,
  buildOffsetMap,
  completeInterruptedSwaps,
  discardCleaned,
  readCleanerCheckpoint,
  swapCleanedFiles,
  writeCleanedSegment,
  writeCleanerCheckpoint,
  type CleanedSegment,
} from './logCleaner.js';
import { INT32_MAX, Segment, type RollReason } from './segment.js';

export interface AppendResult {
  /** Offset of the first record appended. */
  firstOffset: number;
  /** Offset of the last record appended. */
  lastOffset: number;
  maxTimestamp: number;
  /** Wall clock ms when appended. */
  logAppendTime: number;
  batchCount: number;
  bytes: number;
}

export interface ReadResult {
  /** Whole batches, concatenated; an empty Buffer if nothing to return. */
  records: Buffer;
  /** Offset after the last returned record (= fetchOffset if nothing returned). */
  nextOffset: number;
}

export interface PartitionLogOptions {
  now?: () => number;
  logger?: Logger;
}

export interface AppendOptions {
  /** Written into every batch's partitionLeaderEpoch; -1 when absent (and offsets are assigned). */
  leaderEpoch?: number;
  /** false (replication followers): keep the batches' offsets, which must continue the log. */
  assignOffsets?: boolean;
}

export interface CleanOptions {
  /** The key → offset map's memory budget (log.cleaner.dedupe.buffer.size). */
  dedupeBufferBytes: number;
}

/** What the cleanable part of a compacted log looks like now (Kafka's LogToClean). */
export interface CleanableSection {
  /** The cleaner checkpoint, within the log: records from here on have not been cleaned. */
  firstDirtyOffset: number;
  /** min(active segment base, the caller's bound, the first segment newer than minCompactionLagMs, the recovery point). */
  firstUncleanableOffset: number;
  /** Bytes of the cleanable segments (wholly below firstUncleanableOffset) that were cleaned before. */
  cleanBytes: number;
  dirtyBytes: number;
  /** dirtyBytes / (cleanBytes + dirtyBytes); 0 when nothing is cleanable. */
  dirtyRatio: number;
}

export interface CleanResult {
  /** False when the pass did nothing: not compacted, not dirty enough, or aborted. */
  cleaned: boolean;
  reason: string | null;
  dirtyRatio: number;
  segmentsCleaned: number;
  bytesBefore: number;
  bytesAfter: number;
  recordsRemoved: number;
  tombstonesRemoved: number;
  /** The cleaner checkpoint after the pass (the first offset the key map did not cover). */
  cleanedUpToOffset: number;
  durationMs: number;
}

export interface ReadOptions {
  /** Exclusive: only batches whose last offset is below it (e.g. the high watermark). */
  maxOffset?: number;
}

/** A single read never allocates more than this, whatever maxBytes asks (KIP-74's one batch aside). */
export const READ_BYTES_MAX = 256 * 1024 * 1024;
/** One append call carries at most this many batches. */
export const APPEND_BATCHES_MAX = 1_000_000;
const EMPTY = Buffer.alloc(0);
/**
 * A retention step takes at most this many segments out of the log, and goes on to another only
 * within RETENTION_STEP_MS_MAX, before the pass yields to the event loop. A segment costs a close
 * and three renames: ~0.2 ms, but renames wait for the file system's journal, which a disk busy
 * with appends can make much slower.
 */
export const RETENTION_SEGMENTS_PER_STEP = 32;
const RETENTION_STEP_MS_MAX = 5;
/** setTimeout fires at once for a longer delay; a longer fileDeleteDelayMs waits this long (~24.8 days). */
const TIMER_DELAY_MS_MAX = INT32_MAX;
/** Epoch scans (header-only) read this much of a .log at a time. */
const EPOCH_SCAN_CHUNK_BYTES = 64 * 1024;

let defaultLogger: Logger | null = null;
function storageLogger(): Logger {
  defaultLogger ??= createLogger({ name: 'storage' });
  return defaultLogger;
}

function checkSettings(settings: LogSettings): void {
  const positive = (value: number, name: string): void => assert(Number.isSafeInteger(value) && value > 0, () => `LogSettings.${name} must be a positive integer, got ${value}`);
  positive(settings.segmentBytes, 'segmentBytes');
  assert(settings.segmentBytes <= INT32_MAX, 'LogSettings.segmentBytes must fit an i32 (positions in the index are i32)');
  positive(settings.segmentMs, 'segmentMs');
  positive(settings.flushMessages, 'flushMessages');
  assert(Number.isSafeInteger(settings.retentionMs) && settings.retentionMs >= -1, 'LogSettings.retentionMs must be >= -1');
  assert(Number.isSafeInteger(settings.retentionBytes) && settings.retentionBytes >= -1, 'LogSettings.retentionBytes must be >= -1');
  assert(settings.flushMs === null || (Number.isSafeInteger(settings.flushMs) && settings.flushMs >= 0), 'LogSettings.flushMs must be null or >= 0');
  assert(Number.isSafeInteger(settings.indexIntervalBytes) && settings.indexIntervalBytes >= 0, 'LogSettings.indexIntervalBytes must be >= 0');
  assert(Number.isSafeInteger(settings.maxMessageBytes) && settings.maxMessageBytes >= 0, 'LogSettings.maxMessageBytes must be >= 0');
  assert(Number.isSafeInteger(settings.fileDeleteDelayMs) && settings.fileDeleteDelayMs >= 0, 'LogSettings.fileDeleteDelayMs must be >= 0');
  assert(settings.cleanupPolicy.compact || settings.cleanupPolicy.delete, 'LogSettings.cleanupPolicy needs compact, delete or both');
  assert(Number.isSafeInteger(settings.deleteRetentionMs) && settings.deleteRetentionMs >= 0, 'LogSettings.deleteRetentionMs must be >= 0');
  assert(settings.minCleanableDirtyRatio >= 0 && settings.minCleanableDirtyRatio <= 1, 'LogSettings.minCleanableDirtyRatio must be in [0, 1]');
  assert(Number.isSafeInteger(settings.minCompactionLagMs) && settings.minCompactionLagMs >= 0, 'LogSettings.minCompactionLagMs must be >= 0');
}

interface ValidatedBatch {
  position: number;
  header: BatchHeader;
}

export class PartitionLog {
  private settings: LogSettings;
  private segments: Segment[] = [];
  private state: 'open' | 'closing' | 'closed' = 'open';
  private closing: Promise<void> | null = null;
  /** Set by a failed write or fsync: the log refuses further writes (Kafka takes the log dir offline). */
  private failure: Error | null = null;
  // Flush accounting: counters of batches and records written and known durable.
  private writtenBatches = 0;
  private writtenRecords = 0;
  private flushedBatches = 0;
  private flushedRecords = 0;
  private oldestUnflushedMs: number | null = null;
  // Group commit: one fdatasync in flight; callers whose writes it does not cover share the next.
  private fsyncInFlight: Promise<void> | null = null;
  private fsyncInFlightCoversBatches = 0;
  private fsyncQueued: Promise<void> | null = null;
  /** Sealed segments whose background fdatasync has not completed, oldest first. */
  private sealedUnsynced: Array<{ segment: Segment; synced: Promise<void> }> = [];
  /** Every segment below this base offset is known durable; recovery after a crash validates from here. */
  private recoveryPoint = 0;
  /** Which leader epoch wrote which part of the log; loaded (or rebuilt) by recover(). */
  private epochs!: LeaderEpochCache;
  /** Retention passes run one after another: each waits for the previous one. */
  private retentionQueue: Promise<unknown> = Promise.resolve();
  /** Cleaned segments swapped in since open: names the old files kept for background removal. */
  private swapCount = 0;
  /** The first offset the cleaner has not cleaned; null before the first pass (everything is dirty). */
  private cleanerCheckpoint: number | null = null;
  /** Timers that remove `.deleted` files after fileDeleteDelayMs; cancelled on close. */
  private readonly fileRemovalTimers = new Set<NodeJS.Timeout>();

  private constructor(
    readonly dir: string,
    settings: LogSettings,
    private readonly now: () => number,
    private readonly logger: Logger,
  ) {
    checkSettings(settings);
    this.settings = { ...settings };
  }

  /** Opens (creating the directory if missing) and recovers the log. */
  static async open(dir: string, settings: LogSettings, options: PartitionLogOptions = {}): Promise<PartitionLog> {
    fs.mkdirSync(dir, { recursive: true });
    const log = new PartitionLog(dir, settings, options.now ?? Date.now, options.logger ?? storageLogger());
    log.recover();
    return log;
  }

  // ---- state ----------------------------------------------------------------------------------

  /** Base offset of the first segment (or the start set by truncateFullyAndStartAt). */
  get logStartOffset(): number {
    return this.segments[0]!.baseOffset;
  }

  /** The next offset to be assigned. */
  get logEndOffset(): number {
    return this.active.nextOffset;
  }

  /** All segments' .log bytes. */
  get sizeInBytes(): number {
    let total = 0;
    for (const segment of this.segments) total += segment.sizeBytes;
    return total;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  get unflushedMessages(): number {
    return this.writtenRecords - this.flushedRecords;
  }

  /** The I/O error that took this log offline (it refuses writes), or null while it is healthy. */
  get failureCause(): Error | null {
    return this.failure;
  }

  /** Base offsets of the segments, oldest first (for tests and operators). */
  get segmentBaseOffsets(): number[] {
    return this.segments.map((segment) => segment.baseOffset);
  }

  // ---- leader epochs --------------------------------------------------------------------------

  /** Entries oldest first (a copy). */
  epochEntries(): Array<{ epoch: number; startOffset: number }> {
    return this.epochs.all();
  }

  /** The latest epoch, or -1 when the cache is empty. */
  get latestEpoch(): number {
    return this.epochs.latestEpoch;
  }

  /**
   * Kafka's OffsetsForLeaderEpoch answer for `epoch`: the largest epoch <= `epoch` in the cache and its
   * end offset = the start offset of the next larger epoch, or logEndOffset if it is the latest.
   * epoch below the first entry (or empty cache): { epoch: -1, endOffset: -1 }.
   * (Kafka: LeaderEpochFileCache.endOffsetFor.)
   */
  endOffsetForEpoch(epoch: number): { epoch: number; endOffset: number } {
    assert(Number.isSafeInteger(epoch), () => `epoch ${epoch} is not an integer`);
    return this.epochs.endOffsetFor(epoch, this.logEndOffset);
  }

  /**
   * Records that `epoch` starts at `startOffset` (a new leader calls it with its log end offset when it
   * takes over, before appending). No-op if epoch <= latestEpoch; throws (AssertionError) on
   * startOffset < the latest entry's start or > logEndOffset. Persists the checkpoint when it adds.
   */
  assignEpochStartOffset(epoch: number, startOffset: number): void {
    this.checkWritable();
    assert(Number.isSafeInteger(epoch) && epoch >= 0 && epoch <= INT32_MAX, () => `leader epoch ${epoch} must be an integer in [0, ${INT32_MAX}]`);
    assertOffset(startOffset, 'epoch start offset');
    if (epoch <= this.epochs.latestEpoch) return;
    const latest = this.epochs.latestEntry;
    assert(latest === null || startOffset >= latest.startOffset, () => `epoch ${epoch} cannot start at ${startOffset}, before epoch ${latest!.epoch} at ${latest!.startOffset}`);
    assert(startOffset <= this.logEndOffset, () => `epoch ${epoch} cannot start at ${startOffset}, past the log end ${this.logEndOffset}`);
    this.mutate('assignEpochStartOffset', () => {
      this.epochs.assign(epoch, startOffset);
      this.epochs.persist();
    });
    this.logger.info({ dir: this.dir, epoch, startOffset }, 'new leader epoch');
  }

  /** Which cleanup this log runs (the owner schedules cleaning only for compacted logs). */
  get cleanupPolicy(): { compact: boolean; delete: boolean } {
    return { ...this.settings.cleanupPolicy };
  }

  updateSettings(settings: LogSettings): void {
    checkSettings(settings);
    this.settings = { ...settings };
  }

  private get active(): Segment {
    const segment = this.segments[this.segments.length - 1];
    assert(segment !== undefined, 'a partition log always has an active segment');
    return segment;
  }

  private checkWritable(): void {
    if (this.failure !== null) throw new RunnelError('KAFKA_STORAGE_ERROR', `log ${this.dir} is offline after an I/O error: ${this.failure.message}`);
    if (this.state !== 'open') throw new RunnelError('KAFKA_STORAGE_ERROR', `log ${this.dir} is ${this.state}`);
  }

  private checkReadable(): void {
    if (this.state === 'closed') throw new RunnelError('KAFKA_STORAGE_ERROR', `log ${this.dir} is closed`);
  }

  /** Runs a mutation; an I/O error part-way leaves memory and disk unknown, so the log goes offline. */
  private mutate<T>(what: string, action: () => T): T {
    try {
      return action();
    } catch (error) {
      if (error instanceof RunnelError || error instanceof AssertionError) throw error;
      this.failure = error as Error;
      this.logger.error({ dir: this.dir, err: error }, `${what} failed; the log is offline`);
      throw new RunnelError('KAFKA_STORAGE_ERROR', `${what} failed in ${this.dir}: ${(error as Error).message}`);
    }
  }

  // ---- append ---------------------------------------------------------------------------------

  /**
   * Appends one or more concatenated record batches v2. Every batch is validated before
   * anything is written; offsets are assigned and the bytes written synchronously (so
   * concurrent callers are ordered), one writev per segment touched; then the flush policy runs.
   */
  async append(batches: Buffer, options: AppendOptions = {}): Promise<AppendResult> {
    this.checkWritable();
    if (!Buffer.isBuffer(batches) || batches.length === 0) throw new RunnelError('INVALID_REQUEST', 'append needs at least one record batch');
    const assignOffsets = options.assignOffsets !== false;
    const validated = this.validateBatches(batches, assignOffsets);
    if (!assignOffsets) this.checkFollowerOffsets(validated);
    const nowMs = this.now();
    const result = this.mutate('append', () => this.writeBatches(batches, validated, assignOffsets, options.leaderEpoch, nowMs));
    if (this.unflushedMessages >= this.settings.flushMessages) await this.flush();
    return result;
  }

  /** validateBatch on every batch, then the size limits; throws before anything is written. */
  private validateBatches(batches: Buffer, assignOffsets: boolean): ValidatedBatch[] {
    const validated: ValidatedBatch[] = [];
    let position = 0;
    while (position < batches.length) {
      if (validated.length >= APPEND_BATCHES_MAX) throw new RunnelError('INVALID_REQUEST', `more than ${APPEND_BATCHES_MAX} batches in one append`);
      let header: BatchHeader;
      try {
        // A follower copies the leader's batches, which the log cleaner may have thinned.
        header = validateBatch(batches, position, { allowOffsetGaps: !assignOffsets });
      } catch (error) {
        if (error instanceof CorruptBatchError) throw new RunnelError('CORRUPT_MESSAGE', `batch ${validated.length}: ${error.message}`);
        throw error;
      }
      const size = batchSize(header);
      if (size > this.settings.maxMessageBytes) {
        throw new RunnelError('MESSAGE_TOO_LARGE', `batch ${validated.length} is ${size} bytes, max.message.bytes is ${this.settings.maxMessageBytes}`);
      }
      if (size > this.settings.segmentBytes) {
        throw new RunnelError('RECORD_LIST_TOO_LARGE', `batch ${validated.length} is ${size} bytes, segment.bytes is ${this.settings.segmentBytes}`);
      }
      validated.push({ position, header });
      position += size;
    }
    return validated;
  }

  /** Followers keep the leader's offsets: they must start at logEndOffset and follow each other. */
  private checkFollowerOffsets(validated: ValidatedBatch[]): void {
    let expected = this.logEndOffset;
    for (const [index, { header }] of validated.entries()) {
      if (header.baseOffset !== expected) {
        throw new RunnelError('INVALID_REQUEST', `batch ${index} starts at offset ${header.baseOffset}, the log expects ${expected}`);
      }
      expected = lastOffsetOf(header) + 1;
    }
  }

  private writeBatches(batches: Buffer, validated: ValidatedBatch[], assignOffsets: boolean, leaderEpoch: number | undefined, nowMs: number): AppendResult {
    const firstOffset = this.logEndOffset;
    let nextOffset = firstOffset;
    let maxTimestamp = -1;
    let records = 0;
    let epochsChanged = false;
    for (const { position, header } of validated) {
      if (assignOffsets) {
        setBaseOffset(batches, position, nextOffset);
        header.baseOffset = nextOffset;
      }
      if (assignOffsets || leaderEpoch !== undefined) {
        setPartitionLeaderEpoch(batches, position, leaderEpoch ?? -1);
        header.partitionLeaderEpoch = leaderEpoch ?? -1;
      }
      const lastOffset = lastOffsetOf(header);
      assert(Number.isSafeInteger(lastOffset), () => `offset ${lastOffset} is not a safe integer`);
      const rollReason = this.active.shouldRoll(batchSize(header), lastOffset, header.maxTimestamp, this.settings.segmentBytes, this.settings.segmentMs, nowMs);
      if (rollReason !== null) this.roll(rollReason, nextOffset, nowMs);
      this.active.appendBatch(batches, position, header, this.settings.indexIntervalBytes, nowMs);
      // The first batch of a newer epoch starts it (Kafka's maybeAssignEpochStartOffset); -1 is none.
      if (header.partitionLeaderEpoch >= 0 && header.partitionLeaderEpoch > this.epochs.latestEpoch) {
        this.epochs.assign(header.partitionLeaderEpoch, header.baseOffset);
        epochsChanged = true;
      }
      nextOffset = lastOffset + 1;
      maxTimestamp = Math.max(maxTimestamp, header.maxTimestamp);
      records += header.recordCount;
    }
    this.active.writePending();
    // After the data: a crash in between leaves batches the checkpoint lacks, which open() adds back.
    if (epochsChanged) this.epochs.persist();
    assert(this.logEndOffset === nextOffset, 'logEndOffset must follow the last appended batch');
    this.writtenBatches += validated.length;
    this.writtenRecords += records;
    this.oldestUnflushedMs ??= nowMs;
    return { firstOffset, lastOffset: nextOffset - 1, maxTimestamp, logAppendTime: nowMs, batchCount: validated.length, bytes: batches.length };
  }

  /** Seals the active segment (written, fdatasync'd, indexes trimmed and closed) and starts a new one. */
  private roll(reason: RollReason, baseOffset: number, nowMs: number): void {
    const previous = this.active;
    assert(baseOffset === previous.nextOffset, () => `new segment ${baseOffset} must start at the log end ${previous.nextOffset}`);
    previous.seal();
    this.segments.push(Segment.create(this.dir, baseOffset, nowMs));
    fsyncDirectory(this.dir);
    const synced = this.syncSealed(previous);
    synced.catch(() => undefined); // recorded in this.failure; a flush that waits on it sees the error
    this.sealedUnsynced.push({ segment: previous, synced });
    this.logger.debug({ dir: this.dir, reason, previousBaseOffset: previous.baseOffset, previousSizeBytes: previous.sizeBytes, baseOffset }, 'rolled segment');
  }

  private markAllFlushed(): void {
    assert(this.sealedUnsynced.length === 0, 'all flushed only once every sealed segment is synced');
    this.flushedBatches = this.writtenBatches;
    this.flushedRecords = this.writtenRecords;
    this.oldestUnflushedMs = null;
  }

  /** fdatasyncs a sealed segment in the background, then moves the recovery point past it. */
  private syncSealed(segment: Segment): Promise<void> {
    const fd = segment.pinForFsync();
    return fdatasyncAsync(fd)
      .then(
        () => {
          this.sealedUnsynced = this.sealedUnsynced.filter((entry) => entry.segment !== segment);
          this.advanceRecoveryPoint();
        },
        (error: Error) => {
          this.sealedUnsynced = this.sealedUnsynced.filter((entry) => entry.segment !== segment);
          if (segment.isRetired) return; // deleted or truncated under us: nothing of it is wanted
          this.failure ??= error;
          this.logger.error({ dir: this.dir, err: error, baseOffset: segment.baseOffset }, 'fdatasync of a sealed segment failed; the log is offline');
          throw new RunnelError('KAFKA_STORAGE_ERROR', `fdatasync failed in ${this.dir}: ${error.message}`);
        },
      )
      .finally(() => segment.unpinFsync());
  }

  /** Synchronously syncs what the background has not yet (rare paths: truncation). */
  private syncSealedNow(): void {
    for (const { segment } of this.sealedUnsynced) if (!segment.isRetired) segment.syncSync();
    this.sealedUnsynced = [];
    this.advanceRecoveryPoint();
  }

  /** The oldest segment that may not be durable yet: the oldest unsynced sealed one, else the active one. */
  private advanceRecoveryPoint(): void {
    if (this.state === 'closed') return;
    const point = this.sealedUnsynced[0]?.segment.baseOffset ?? this.active.baseOffset;
    if (point === this.recoveryPoint) return;
    const lowered = point < this.recoveryPoint;
    this.recoveryPoint = point;
    writeRecoveryPoint(this.dir, point, lowered);
  }

  // ---- flush ----------------------------------------------------------------------------------

  /** fdatasync all unflushed data; appends that arrive while an fsync runs share the next one. */
  flush(): Promise<void> {
    if (this.failure !== null) return Promise.reject(new RunnelError('KAFKA_STORAGE_ERROR', `log ${this.dir} is offline: ${this.failure.message}`));
    if (this.state === 'closed') return Promise.resolve();
    const target = this.writtenBatches;
    if (this.flushedBatches >= target) return Promise.resolve();
    if (this.fsyncInFlight !== null) {
      if (this.fsyncInFlightCoversBatches >= target) return this.fsyncInFlight;
      this.fsyncQueued ??= this.fsyncInFlight
        .catch(() => undefined)
        .then(() => {
          this.fsyncQueued = null;
          return this.flush();
        });
      return this.fsyncQueued;
    }
    return this.startFsync();
  }

  private startFsync(): Promise<void> {
    const coversBatches = this.writtenBatches;
    const coversRecords = this.writtenRecords;
    const startedMs = this.now();
    const segment = this.active;
    // Sealed segments sync in the background; a flush waits for those too.
    const sealed = this.sealedUnsynced.map((entry) => entry.synced);
    const fd = segment.pinForFsync();
    const fsync: Promise<void> = Promise.all([fdatasyncAsync(fd), ...sealed])
      .then(
        () => {
          if (coversBatches <= this.flushedBatches) return;
          this.flushedBatches = coversBatches;
          this.flushedRecords = coversRecords;
          this.oldestUnflushedMs = this.flushedBatches === this.writtenBatches ? null : startedMs;
        },
        (error: Error) => {
          if (segment.isRetired) return; // truncated or deleted under us: nothing of it is wanted
          this.failure ??= error;
          this.logger.error({ dir: this.dir, err: error }, 'fdatasync failed; the log is offline');
          throw new RunnelError('KAFKA_STORAGE_ERROR', `fdatasync failed in ${this.dir}: ${error.message}`);
        },
      )
      .finally(() => {
        segment.unpinFsync();
        if (this.fsyncInFlight === fsync) this.fsyncInFlight = null;
      });
    this.fsyncInFlight = fsync;
    this.fsyncInFlightCoversBatches = coversBatches;
    return fsync;
  }

  /** Flush if settings.flushMs has passed since the oldest unflushed append. The owner calls this periodically. */
  async flushIfDue(): Promise<void> {
    if (this.settings.flushMs === null || this.oldestUnflushedMs === null || this.state !== 'open') return;
    if (this.now() - this.oldestUnflushedMs >= this.settings.flushMs) await this.flush();
  }

  // ---- read -----------------------------------------------------------------------------------

  /**
   * Whole batches from the one holding `fetchOffset`, up to maxBytes but at least one batch if
   * any is available (KIP-74), only batches whose last offset is below options.maxOffset.
   */
  read(fetchOffset: number, maxBytes: number, options: ReadOptions = {}): ReadResult {
    this.checkReadable();
    if (!Number.isSafeInteger(fetchOffset)) throw new RunnelError('INVALID_REQUEST', `fetch offset ${fetchOffset} is not an integer`);
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new RunnelError('INVALID_FETCH_SIZE', `maxBytes ${maxBytes}`);
    if (fetchOffset < this.logStartOffset || fetchOffset > this.logEndOffset) {
      throw new RunnelError('OFFSET_OUT_OF_RANGE', `offset ${fetchOffset} is outside [${this.logStartOffset}, ${this.logEndOffset}] in ${this.dir}`);
    }
    const maxOffset = Math.min(options.maxOffset ?? this.logEndOffset, this.logEndOffset);
    if (fetchOffset >= maxOffset) return { records: EMPTY, nextOffset: fetchOffset };
    try {
      return this.readSegments(fetchOffset, Math.min(maxBytes, READ_BYTES_MAX), maxOffset);
    } catch (error) {
      if (error instanceof CorruptBatchError) throw new RunnelError('KAFKA_STORAGE_ERROR', `reading ${this.dir}: ${error.message}`);
      throw error;
    }
  }

  private readSegments(fetchOffset: number, maxBytes: number, maxOffset: number): ReadResult {
    const chunks: Buffer[] = [];
    let totalBytes = 0;
    let lastOffset = -1;
    let index = this.segmentIndexFor(fetchOffset);
    let position = this.segments[index]!.findBatchPosition(fetchOffset);
    for (; index < this.segments.length; index++) {
      const part = this.segments[index]!.readBatches(position, maxBytes - totalBytes, maxOffset, totalBytes === 0);
      if (part.records.length > 0) {
        chunks.push(part.records);
        totalBytes += part.records.length;
        lastOffset = part.lastOffset;
      }
      if (!part.reachedEnd || totalBytes >= maxBytes) break;
      position = 0;
    }
    if (chunks.length === 0) return { records: EMPTY, nextOffset: fetchOffset };
    const records = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, totalBytes);
    assert(lastOffset >= fetchOffset && lastOffset < maxOffset, () => `read returned up to ${lastOffset} for fetch ${fetchOffset} below ${maxOffset}`);
    return { records, nextOffset: lastOffset + 1 };
  }

  /** Index of the last segment whose base offset is <= offset. */
  private segmentIndexFor(offset: number): number {
    let low = 0;
    let high = this.segments.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >>> 1;
      if (this.segments[middle]!.baseOffset <= offset) low = middle;
      else high = middle - 1;
    }
    return low;
  }

  /** The largest batch timestamp in the log (ListOffsets' MAX_TIMESTAMP looks it up); -1 when the log is empty. */
  get maxTimestamp(): number {
    let max = -1;
    for (const segment of this.segments) max = Math.max(max, segment.maxTimestamp);
    return max;
  }

  /** Earliest offset whose record timestamp is >= `timestamp`, with that timestamp; null if none. */
  offsetForTimestamp(timestamp: number): { offset: number; timestamp: number } | null {
    this.checkReadable();
    assert(Number.isSafeInteger(timestamp), () => `timestamp ${timestamp} is not an integer`);
    for (const segment of this.segments) {
      if (segment.maxTimestamp < timestamp) continue; // every record in it is older
      // A batch the cleaner thinned keeps its maxTimestamp though the record that had it may be
      // gone: go on to the next batch of the segment until a kept record is recent enough.
      let found = segment.findBatchByTimestamp(timestamp);
      while (found !== null) {
        for (const record of decodeRecords(segment.readBatchAt(found.position, found.header))) {
          if (record.timestamp >= timestamp) return { offset: record.offset, timestamp: record.timestamp };
        }
        found = segment.findBatchByTimestamp(timestamp, found.position + batchSize(found.header));
      }
    }
    return null;
  }

  // ---- truncation and retention ---------------------------------------------------------------

  /** Removes every batch with lastOffset >= offset (a batch holding `offset` goes whole); later segments are deleted. */
  truncateTo(offset: number): void {
    this.checkWritable();
    assertOffset(offset, 'truncateTo offset');
    if (offset >= this.logEndOffset) {
      // No data to remove, but an epoch assigned at the log end (and never written) may be.
      this.mutate('truncateTo', () => {
        if (this.epochs.truncateFromEnd(offset)) this.epochs.persist();
      });
      return;
    }
    if (offset < this.logStartOffset) {
      this.truncateFullyAndStartAt(offset);
      return;
    }
    this.mutate('truncateTo', () => {
      let deleted = 0;
      // From the end, so a crash part-way leaves a prefix of the log.
      while (this.segments.length > 1 && this.active.baseOffset >= offset) {
        this.segments.pop()!.deleteFiles();
        deleted++;
      }
      const removedBytes = this.active.truncateTo(offset, this.settings.indexIntervalBytes, this.now());
      if (this.cleanerCheckpoint !== null && this.cleanerCheckpoint > this.logEndOffset) this.cleanerCheckpoint = this.logEndOffset;
      // Durable before new data lands at the same positions, so a crash cannot mix old and new.
      this.active.syncSync();
      if (deleted > 0) fsyncDirectory(this.dir);
      this.syncSealedNow();
      this.markAllFlushed();
      // The log may end below `offset` (the batch holding it went whole): no epoch starts at or after its end.
      if (this.epochs.truncateFromEnd(Math.min(offset, this.logEndOffset))) this.epochs.persist();
      this.logger.info({ dir: this.dir, offset, logEndOffset: this.logEndOffset, segmentsDeleted: deleted, removedBytes, latestEpoch: this.epochs.latestEpoch }, 'truncated log');
    });
  }

  /** Deletes everything; the log restarts empty at `offset` with a new segment of that base offset. */
  truncateFullyAndStartAt(offset: number): void {
    this.checkWritable();
    assertOffset(offset, 'truncateFullyAndStartAt offset');
    this.mutate('truncateFullyAndStartAt', () => {
      const renamed: string[] = [];
      for (const segment of this.segments) renamed.push(...segment.closeAndRename());
      this.segments = [Segment.create(this.dir, offset, this.now())];
      fsyncDirectory(this.dir);
      // A follower starting over may drop its whole log: the files go later, off the event loop,
      // as retention's do (unlinking hundreds of synced segments here stalled the node for seconds).
      this.scheduleFileRemoval(renamed);
      this.sealedUnsynced = [];
      this.advanceRecoveryPoint();
      this.markAllFlushed();
      if (this.epochs.clear()) this.epochs.persist();
      this.cleanerCheckpoint = null;
      unlinkIfExists(join(this.dir, CLEANER_CHECKPOINT_FILE));
      this.logger.info({ dir: this.dir, offset }, 'truncated log fully');
    });
  }

  /**
   * Deletes whole segments from the start, never the active one: while the oldest is older than
   * retentionMs (by its largest record timestamp) or the log without it is still >= retentionBytes
   * — and only while every record of the oldest is below `upperBoundOffset` (the next segment
   * starts at or below it; Kafka's UnifiedLog.deletableSegments). The caller passes its high
   * watermark: records it has not passed may still be needed by a lagging follower or a waiting
   * acks=all request, however old their timestamps are. Resolves to the number of segments deleted.
   *
   * Off the hot path, as Kafka does it: each step takes at most RETENTION_SEGMENTS_PER_STEP
   * segments (and what fits in RETENTION_STEP_MS_MAX) out of the list (reads never see them
   * again), closes them and renames their files to `.deleted`, and the pass yields to the event
   * loop before each step; the files are removed in the background after fileDeleteDelayMs
   * (unlinking hundreds of segments synchronously stood the event loop still for seconds). Nothing is fsynced per segment: a crash that loses a rename
   * brings the segment back, and the next pass deletes it again. The leader-epoch checkpoint is
   * written once, at the end of the pass, without fsync. Passes over one log run one after another.
   */
  async deleteRetainedSegments(upperBoundOffset: number): Promise<number> {
    this.checkWritable();
    assertOffset(upperBoundOffset, 'retention upper bound');
    // cleanup.policy=compact alone keeps every segment: the cleaner bounds the log by keys, not age or size.
    if (!this.settings.cleanupPolicy.delete) return 0;
    const pass = this.retentionQueue.then(() => this.retentionPass(upperBoundOffset));
    this.retentionQueue = pass.catch(() => undefined);
    return pass;
  }

  private async retentionPass(upperBoundOffset: number): Promise<number> {
    let deleted = 0;
    let epochsTruncated = false;
    // Every step takes a segment or ends the pass: as many steps as segments is the bound.
    const stepsMax = this.segments.length;
    for (let step = 0; step < stepsMax; step++) {
      // Before every step, the first too: a caller running passes over many logs yields between them.
      await yieldToEventLoop();
      // Closed or failed meanwhile: stop; open() removes the .deleted files and fits the checkpoint.
      if (this.state !== 'open' || this.failure !== null) return deleted;
      const taken = this.mutate('deleteRetainedSegments', () => this.retentionStep(upperBoundOffset));
      deleted += taken;
      if (taken === 0) break;
      // In memory at once, so that an OffsetsForLeaderEpoch between steps sees the new log start.
      if (this.epochs.truncateFromStart(this.logStartOffset)) epochsTruncated = true;
    }
    // Kafka's truncateFromStart: the epoch covering the new log start now starts there. Not fsynced
    // (as Kafka since KAFKA-15046): an fsync on the event loop under write load can take tens of
    // milliseconds, and losing this write is harmless, since open() trims entries below the log start.
    if (epochsTruncated) this.mutate('deleteRetainedSegments', () => this.epochs.persist({ durable: false }));
    return deleted;
  }

  /** One bounded step of a retention pass: takes segments out of the log and renames their files. */
  private retentionStep(upperBoundOffset: number): number {
    const nowMs = this.now();
    const { retentionMs, retentionBytes } = this.settings;
    let sizeBytes = this.sizeInBytes;
    const renamed: string[] = [];
    const taken: Array<{ baseOffset: number; nextOffset: number; expired: boolean; oversized: boolean }> = [];
    const startedMs = performance.now();
    while (
      taken.length < RETENTION_SEGMENTS_PER_STEP &&
      (taken.length === 0 || performance.now() - startedMs < RETENTION_STEP_MS_MAX) &&
      this.segments.length > 1 &&
      this.segments[1]!.baseOffset <= upperBoundOffset
    ) {
      const oldest = this.segments[0]!;
      const newestMs = oldest.maxTimestamp >= 0 ? oldest.maxTimestamp : oldest.lastModifiedMs;
      const expired = retentionMs >= 0 && nowMs - newestMs > retentionMs;
      const oversized = retentionBytes >= 0 && sizeBytes - oldest.sizeBytes >= retentionBytes;
      if (!expired && !oversized) break;
      this.segments.shift();
      renamed.push(...oldest.closeAndRename());
      sizeBytes -= oldest.sizeBytes;
      taken.push({ baseOffset: oldest.baseOffset, nextOffset: oldest.nextOffset, expired, oversized });
    }
    if (taken.length === 0) return 0;
    this.scheduleFileRemoval(renamed);
    this.logger.info(
      {
        dir: this.dir,
        segments: taken.length,
        fromBaseOffset: taken[0]!.baseOffset,
        toNextOffset: taken[taken.length - 1]!.nextOffset,
        expired: taken.filter((segment) => segment.expired).length,
        oversized: taken.filter((segment) => segment.oversized).length,
        logStartOffset: this.logStartOffset,
        fileDeleteDelayMs: this.settings.fileDeleteDelayMs,
        // How long this step held the event loop: what a retention pass costs every other request.
        stepMs: Number((performance.now() - startedMs).toFixed(2)),
      },
      'deleted segments by retention',
    );
    return taken.length;
  }

  /** Removes `.deleted` files after fileDeleteDelayMs, one at a time in libuv's pool, never on the event loop. */
  private scheduleFileRemoval(paths: string[]): void {
    if (paths.length === 0) return;
    const timer = setTimeout(() => {
      this.fileRemovalTimers.delete(timer);
      void this.removeFiles(paths);
    }, Math.min(this.settings.fileDeleteDelayMs, TIMER_DELAY_MS_MAX));
    timer.unref();
    this.fileRemovalTimers.add(timer);
  }

  private async removeFiles(paths: string[]): Promise<void> {
    for (const path of paths) {
      // Nothing touches the directory after close; open() removes whatever is left.
      if (this.state === 'closed') return;
      try {
        await fs.promises.rm(path, { force: true });
      } catch (error) {
        this.logger.warn({ dir: this.dir, file: path, err: error }, 'could not remove a deleted segment file; the next open will');
      }
    }
  }

  private cancelFileRemovals(): void {
    for (const timer of this.fileRemovalTimers) clearTimeout(timer);
    this.fileRemovalTimers.clear();
  }

  // ---- compaction -----------------------------------------------------------------------------

  /**
   * The cleanable part of the log below `upperBoundOffset` (the caller's high watermark) and how
   * dirty it is. Cleanable segments are whole sealed segments below the first uncleanable offset:
   * the smallest of the active segment's base, the bound, the base of the first segment with a
   * record newer than minCompactionLagMs, and the recovery point (a segment still syncing in the
   * background is not rewritten). Dirty bytes are those of segments from the cleaner checkpoint on.
   */
  cleanableSection(upperBoundOffset: number): CleanableSection {
    const { segments: _segments, ...section } = this.cleanableSegments(upperBoundOffset);
    return section;
  }

  /** cleanableSection with the cleanable segments themselves, oldest first. */
  private cleanableSegments(upperBoundOffset: number): CleanableSection & { segments: Segment[] } {
    assertOffset(upperBoundOffset, 'cleaner upper bound');
    const nowMs = this.now();
    let firstUncleanable = Math.min(this.active.baseOffset, upperBoundOffset, this.recoveryPoint);
    const lagMs = this.settings.minCompactionLagMs;
    if (lagMs > 0) {
      const young = this.segments.find((segment) => segment.maxTimestamp > nowMs - lagMs);
      if (young !== undefined) firstUncleanable = Math.min(firstUncleanable, young.baseOffset);
    }
    const checkpoint = this.cleanerCheckpoint;
    // A checkpoint outside the log (retention moved the start past it, truncation cut below it) restarts from the log start.
    const firstDirty = checkpoint === null || checkpoint < this.logStartOffset || checkpoint > this.logEndOffset ? this.logStartOffset : checkpoint;
    const segments = this.segments.filter((segment) => segment !== this.active && segment.nextOffset <= firstUncleanable);
    let cleanBytes = 0;
    let dirtyBytes = 0;
    for (const segment of segments) {
      if (segment.nextOffset <= firstDirty) cleanBytes += segment.sizeBytes;
      else dirtyBytes += segment.sizeBytes;
    }
    const total = cleanBytes + dirtyBytes;
    return { segments, firstDirtyOffset: firstDirty, firstUncleanableOffset: firstUncleanable, cleanBytes, dirtyBytes, dirtyRatio: total === 0 ? 0 : dirtyBytes / total };
  }

  /**
   * One cleaning pass when the log is compacted and its dirty ratio exceeds
   * minCleanableDirtyRatio: keeps the latest record of each key (and its offset) in the cleanable
   * segments (see cleanableSection), never touching the active segment or anything at or above
   * `upperBoundOffset`. Tombstones go once their segment was last written more than
   * deleteRetentionMs ago. The key map holds at most `dedupeBufferBytes`; a dirty section with more
   * keys is cleaned up to where the map filled, the rest at the next pass. The caller must never
   * truncate below the bound it gave (a high watermark is never truncated below): a record removed
   * because a later one of its key exists is lost if that later one is truncated away.
   *
   * Bounded per event-loop turn: the pass reads 64 KiB of a segment at a time and yields before
   * each read; cleaned files are written and synced in libuv's pool; only the swap of one segment
   * (renames, one directory fsync, loading its indexes) runs in one turn. A read during a pass sees
   * the old segment until its swap, the cleaned one after: both hold every key's latest value.
   * Passes and retention share one queue, so they never overlap.
   */
  async clean(upperBoundOffset: number, options: CleanOptions): Promise<CleanResult> {
    this.checkWritable();
    assertOffset(upperBoundOffset, 'cleaner upper bound');
    const pass = this.retentionQueue.then(() => this.cleanPass(upperBoundOffset, new OffsetMap(options.dedupeBufferBytes)));
    this.retentionQueue = pass.catch(() => undefined);
    return pass;
  }

  private async cleanPass(upperBoundOffset: number, map: OffsetMap): Promise<CleanResult> {
    const startedMs = performance.now();
    const result: CleanResult = { cleaned: false, reason: null, dirtyRatio: 0, segmentsCleaned: 0, bytesBefore: 0, bytesAfter: 0, recordsRemoved: 0, tombstonesRemoved: 0, cleanedUpToOffset: 0, durationMs: 0 };
    const finish = (reason: string | null): CleanResult => {
      result.reason = reason;
      result.durationMs = performance.now() - startedMs;
      return result;
    };
    if (this.state !== 'open' || this.failure !== null) return finish(`the log is ${this.failure === null ? this.state : 'offline'}`);
    if (!this.settings.cleanupPolicy.compact) return finish('cleanup.policy does not include compact');
    // Segments rolled a moment ago are still being synced in the background; the cleaner rewrites
    // only durable segments (below the recovery point), so it lets those syncs finish first.
    await Promise.all(this.sealedUnsynced.map((entry) => entry.synced.catch(() => undefined)));
    if (this.state !== 'open' || this.failure !== null) return finish(`the log is ${this.failure === null ? this.state : 'offline'}`);
    const section = this.cleanableSegments(upperBoundOffset);
    result.dirtyRatio = section.dirtyRatio;
    result.cleanedUpToOffset = section.firstDirtyOffset;
    if (section.dirtyBytes === 0 || section.dirtyRatio <= this.settings.minCleanableDirtyRatio) return finish('not dirty enough');
    const checkLive = (segment: Segment): void => {
      if (this.state !== 'open') throw new CleaningAborted(`the log is ${this.state}`);
      if (this.failure !== null) throw new CleaningAborted('the log is offline');
      if (!this.segments.includes(segment)) throw new CleaningAborted(`segment ${segment.baseOffset} left the log`);
      // A truncation that removed every later segment made it the active one, which may now change.
      if (segment === this.active) throw new CleaningAborted(`segment ${segment.baseOffset} became the active segment`);
    };
    try {
      const mapEnd = await buildOffsetMap(section.segments, section.firstDirtyOffset, map, checkLive);
      if (mapEnd === section.firstDirtyOffset) return finish(`the dedupe buffer (${map.budgetBytes} bytes) cannot hold one key`);
      const rules = { map, mapEndOffset: mapEnd, tombstoneHorizonMs: this.now() - this.settings.deleteRetentionMs, indexIntervalBytes: this.settings.indexIntervalBytes };
      for (const segment of section.segments) {
        if (segment.baseOffset >= mapEnd) break;
        const cleaned = await writeCleanedSegment(segment, rules, () => checkLive(segment));
        try {
          checkLive(segment);
        } catch (error) {
          discardCleaned(segment);
          throw error;
        }
        this.mutate('clean', () => this.swapCleanedSegment(segment, cleaned));
        result.segmentsCleaned++;
        result.bytesBefore += cleaned.bytesBefore;
        result.bytesAfter += cleaned.bytesAfter;
        result.recordsRemoved += cleaned.recordsRemoved;
        result.tombstonesRemoved += cleaned.tombstonesRemoved;
      }
      this.cleanerCheckpoint = mapEnd;
      this.mutate('clean', () => writeCleanerCheckpoint(this.dir, mapEnd));
      result.cleaned = true;
      result.cleanedUpToOffset = mapEnd;
    } catch (error) {
      if (error instanceof CleaningAborted) return finish(error.message);
      throw error;
    }
    this.logger.info({ dir: this.dir, ...result, durationMs: Number((performance.now() - startedMs).toFixed(1)), keys: map.size, mapBytes: map.bytes }, 'cleaned log');
    return finish(null);
  }

  /** Replaces a segment by its cleaned copy, in one turn of the event loop: reads see one or the other. */
  private swapCleanedSegment(old: Segment, cleaned: CleanedSegment): void {
    const index = this.segments.indexOf(old);
    assert(index >= 0 && old !== this.active, () => `segment ${old.baseOffset} must be a sealed segment of the log to be swapped`);
    old.close(false);
    // The rename over the old .log would free its blocks inside the rename, on the event loop
    // (~15 ms for a 16 MiB segment here): a second name keeps them until they are removed in the
    // background after fileDeleteDelayMs, as retention does. open() removes a `.deleted` a crash leaves.
    const retired = keepOldFilesForRemoval(old, ++this.swapCount);
    swapCleanedFiles(this.dir, old.baseOffset);
    this.scheduleFileRemoval(retired);
    const fresh = Segment.openExisting(this.dir, old.baseOffset, this.now());
    const reason = fresh.loadFromIndexes(this.settings.indexIntervalBytes, true);
    if (reason !== null) {
      this.logger.warn({ dir: this.dir, baseOffset: old.baseOffset, reason }, 'cleaned segment\'s indexes do not match it; rebuilding them');
      fresh.recoverByScan(this.settings.indexIntervalBytes, true);
    }
    assert(fresh.nextOffset === old.nextOffset && fresh.sizeBytes === cleaned.bytesAfter, () => `cleaned segment ${old.baseOffset} holds [${fresh.baseOffset}, ${fresh.nextOffset}) in ${fresh.sizeBytes} bytes, expected [.., ${old.nextOffset}) in ${cleaned.bytesAfter}`);
    this.segments[index] = fresh;
  }

  // ---- lifecycle ------------------------------------------------------------------------------

  /** Flush, write a clean-shutdown marker, close file descriptors. */
  close(): Promise<void> {
    this.closing ??= this.closeCleanly();
    return this.closing;
  }

  private async closeCleanly(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closing';
    this.cancelFileRemovals();
    let clean = this.failure === null;
    try {
      if (clean) await this.flush();
      await this.fsyncInFlight?.catch(() => undefined);
    } catch (error) {
      clean = false;
      this.logger.error({ dir: this.dir, err: error }, 'flush on close failed; no clean-shutdown marker');
    }
    if (clean && this.failure === null) this.advanceRecoveryPoint();
    for (const segment of this.segments) segment.close(clean && segment === this.active);
    if (clean && this.failure === null) {
      fs.writeFileSync(join(this.dir, CLEAN_SHUTDOWN_FILE), '');
      fsyncDirectory(this.dir);
    }
    this.state = 'closed';
  }

  /** Close and remove the directory. */
  async delete(): Promise<void> {
    await this.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * Test hook. `clean: false` simulates a crash: fds are closed with no flush, pending index
   * entries are dropped and no clean-shutdown marker is written.
   */
  async closeForTest(options: { clean: boolean }): Promise<void> {
    if (options.clean) return this.close();
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.closing = Promise.resolve();
    this.cancelFileRemovals();
    for (const segment of this.segments) segment.close(false);
  }

  // ---- recovery -------------------------------------------------------------------------------

  /**
   * Deletes stray files, loads every segment, checks or rebuilds its indexes, and after a crash
   * validates the active segment batch by batch, truncating at the first bad one.
   */
  private recover(): void {
    // Before the directory is read for segments: a decided swap becomes the segment, an undecided one goes.
    const swaps = completeInterruptedSwaps(this.dir);
    if (swaps.completed.length > 0 || swaps.discarded.length > 0) {
      this.logger.warn({ dir: this.dir, completedSwaps: swaps.completed, discarded: swaps.discarded }, 'finished the log cleaner\'s interrupted work');
    }
    unlinkIfExists(join(this.dir, `${CLEANER_CHECKPOINT_FILE}.tmp`));
    this.cleanerCheckpoint = readCleanerCheckpoint(this.dir);
    const baseOffsets = this.cleanDirectory();
    const markerPath = join(this.dir, CLEAN_SHUTDOWN_FILE);
    const clean = fs.existsSync(markerPath);
    // After a crash every segment from the recovery point on may hold data the OS never wrote.
    const recoveryPoint = clean ? Number.MAX_SAFE_INTEGER : readRecoveryPoint(this.dir);
    const interval = this.settings.indexIntervalBytes;
    const nowMs = this.now();
    const scanned: Segment[] = [];
    for (let i = 0; i < baseOffsets.length; i++) {
      const segment = Segment.openExisting(this.dir, baseOffsets[i]!, nowMs);
      const isLast = i === baseOffsets.length - 1;
      const mustScan = !clean && (isLast || segment.baseOffset >= recoveryPoint);
      if (mustScan) scanned.push(segment);
      const cutNonActive = this.recoverSegment(segment, isLast, mustScan, interval);
      const previous = this.segments[this.segments.length - 1];
      if (previous !== undefined && segment.baseOffset !== previous.nextOffset) {
        this.logger.error({ dir: this.dir, baseOffset: segment.baseOffset, expected: previous.nextOffset }, 'segment does not continue the log; deleting it and every later segment');
        segment.deleteFiles();
        this.deleteSegmentFiles(baseOffsets.slice(i + 1));
        break;
      }
      if (segment.isEmpty && !isLast && !cutNonActive) {
        this.logger.warn({ dir: this.dir, baseOffset: segment.baseOffset }, 'deleting an empty segment that is not the last');
        segment.deleteFiles();
        continue;
      }
      this.segments.push(segment);
      if (cutNonActive) {
        this.logger.error({ dir: this.dir, baseOffset: segment.baseOffset, deleted: baseOffsets.slice(i + 1) }, 'a non-active segment was corrupt; deleted every later segment');
        this.deleteSegmentFiles(baseOffsets.slice(i + 1));
        break;
      }
    }
    if (this.segments.length === 0) this.segments.push(Segment.create(this.dir, 0, nowMs));
    this.active.openIndexesForWrite();
    // What recovery validated may still sit only in the page cache (a killed process, not a
    // crashed machine): make it durable before the recovery point moves past it.
    for (const segment of scanned) if (this.segments.includes(segment) && segment !== this.active) segment.syncSync();
    this.loadEpochCache(clean, clean ? null : recoveryPoint);
    if (clean) unlinkIfExists(markerPath);
    fsyncDirectory(this.dir);
    this.advanceRecoveryPoint();
    this.logger.info(
      { dir: this.dir, clean, segments: this.segments.length, logStartOffset: this.logStartOffset, logEndOffset: this.logEndOffset, latestEpoch: this.epochs.latestEpoch },
      'opened partition log',
    );
  }

  /**
   * Loads the leader-epoch checkpoint, or rebuilds it from every batch header when it is missing or
   * unreadable. Then fits it to the recovered log: entries at or past the log end go (recovery cut
   * the data they started), the start is raised to the log start, and epochs of batches the file
   * does not know (a crash between an append and its checkpoint write) are added by scanning the
   * headers from the last entry's start, or after a crash from the recovery point if that is
   * later (the checkpoint is written before a segment can become durable). `recoveryPoint` is null
   * after a clean shutdown: the checkpoint is then complete and nothing is scanned, unless the
   * last batch's epoch says otherwise.
   */
  private loadEpochCache(clean: boolean, recoveryPoint: number | null): void {
    unlinkIfExists(join(this.dir, `${LEADER_EPOCH_CHECKPOINT_FILE}.tmp`));
    const loaded = readCheckpoint(this.dir);
    const logStart = this.logStartOffset;
    const logEnd = this.logEndOffset;
    if (loaded.entries === null) {
      this.epochs = new LeaderEpochCache(this.dir);
      this.scanEpochs(logStart);
      this.epochs.persist();
      if (!loaded.missing || logEnd > logStart) {
        this.logger.warn({ dir: this.dir, reason: loaded.reason, entries: this.epochs.all() }, 'leader-epoch checkpoint missing or unreadable; rebuilt it from the log');
      }
      return;
    }
    this.epochs = new LeaderEpochCache(this.dir, loaded.entries);
    let changed = this.epochs.truncateFromStart(logStart);
    if (this.epochs.truncateFromEnd(logEnd)) changed = true;
    const from = this.epochs.latestEntry?.startOffset ?? logStart;
    let scanFrom: number | null = clean ? null : Math.max(from, recoveryPoint ?? 0);
    const lastEpoch = this.lastBatchEpoch();
    if (lastEpoch > this.epochs.latestEpoch) scanFrom = Math.min(scanFrom ?? from, from);
    if (scanFrom !== null && scanFrom < logEnd && this.scanEpochs(scanFrom)) {
      changed = true;
      this.logger.warn({ dir: this.dir, scannedFrom: scanFrom, entries: this.epochs.all() }, 'the log holds leader epochs the checkpoint did not; added them');
    }
    if (changed) {
      this.epochs.persist();
      this.logger.info({ dir: this.dir, was: loaded.entries, entries: this.epochs.all() }, 'fitted the leader-epoch cache to the log');
    }
  }

  /** The partitionLeaderEpoch of the last batch in the log; -1 when the log is empty or unreadable. */
  private lastBatchEpoch(): number {
    const segment = [...this.segments].reverse().find((candidate) => !candidate.isEmpty);
    if (segment === undefined) return -1;
    let epoch = -1;
    try {
      visitBatchHeaders(segment.logPath, segment.findBatchPosition(segment.lastOffset), segment.sizeBytes, (header) => {
        epoch = header.partitionLeaderEpoch;
      });
    } catch (error) {
      if (!(error instanceof CorruptBatchError)) throw error;
    }
    return epoch;
  }

  /** Adds the epochs of the batches from `fromOffset` to the end (headers only); true if any was added. */
  private scanEpochs(fromOffset: number): boolean {
    let changed = false;
    for (const segment of this.segments) {
      if (segment.isEmpty || segment.nextOffset <= fromOffset) continue;
      const position = segment.baseOffset >= fromOffset ? 0 : segment.findBatchPosition(fromOffset);
      try {
        visitBatchHeaders(segment.logPath, position, segment.sizeBytes, (header) => {
          const epoch = header.partitionLeaderEpoch;
          if (epoch < 0 || epoch <= this.epochs.latestEpoch) return;
          const latest = this.epochs.latestEntry;
          if (latest !== null && header.baseOffset < latest.startOffset) {
            this.logger.warn({ dir: this.dir, epoch, baseOffset: header.baseOffset, latest }, 'a batch of a newer epoch lies before the latest epoch start; ignoring it');
            return;
          }
          this.epochs.assign(epoch, header.baseOffset);
          changed = true;
        });
      } catch (error) {
        if (!(error instanceof CorruptBatchError)) throw error;
        this.logger.warn({ dir: this.dir, baseOffset: segment.baseOffset, err: error }, 'could not read batch headers for leader epochs');
        break;
      }
    }
    return changed;
  }

  /** Returns true if a non-active segment had to be cut (the caller then drops every later segment). */
  private recoverSegment(segment: Segment, isLast: boolean, mustScan: boolean, interval: number): boolean {
    if (mustScan) {
      const result = segment.recoverByScan(interval, !isLast);
      if (result.truncatedAtBytes !== null) {
        this.logger.warn(
          { dir: this.dir, baseOffset: segment.baseOffset, positionBytes: result.truncatedAtBytes, bytesRemoved: result.bytesRemoved, reason: result.reason },
          `unclean shutdown: truncated the ${isLast ? 'active' : 'sealed'} segment at byte ${result.truncatedAtBytes}`,
        );
      }
      return !isLast && result.truncatedAtBytes !== null;
    }
    const reason = segment.loadFromIndexes(interval, !isLast);
    if (reason === null) return false;
    this.logger.warn({ dir: this.dir, baseOffset: segment.baseOffset, reason }, 'index missing or corrupt; rebuilding it from the log');
    const result = segment.recoverByScan(interval, !isLast);
    if (result.truncatedAtBytes === null) return false;
    this.logger.warn(
      { dir: this.dir, baseOffset: segment.baseOffset, positionBytes: result.truncatedAtBytes, bytesRemoved: result.bytesRemoved, reason: result.reason },
      `corrupt segment: truncated at byte ${result.truncatedAtBytes}`,
    );
    return !isLast;
  }

  /** Deletes stray and orphaned files; returns the base offsets of the .log files, ascending. */
  private cleanDirectory(): number[] {
    const names = fs.readdirSync(this.dir);
    const logs = new Set<number>();
    for (const name of names) {
      const parsed = parseSegmentFileName(name);
      if (parsed !== null && parsed.suffix === LOG_SUFFIX) logs.add(parsed.baseOffset);
    }
    for (const name of names) {
      const parsed = parseSegmentFileName(name);
      const orphan = parsed !== null && parsed.suffix !== LOG_SUFFIX && !logs.has(parsed.baseOffset);
      if (!isStrayFile(name) && !orphan) continue;
      this.logger.info({ dir: this.dir, file: name }, orphan ? 'deleting an index without a .log' : 'deleting a file left by an unfinished operation');
      fs.rmSync(join(this.dir, name), { force: true, recursive: true });
    }
    return [...logs].sort((a, b) => a - b);
  }

  private deleteSegmentFiles(baseOffsets: number[]): void {
    for (const baseOffset of [...baseOffsets].reverse()) {
      const segment = Segment.openExisting(this.dir, baseOffset, this.now());
      segment.deleteFiles();
    }
  }
}

/**
 * Links each of the segment's files to `<name>.<swap>.deleted` and returns the new names. A name
 * of its own per swap: a segment cleaned again before the last copy is removed must not unlink
 * (and so free on the event loop) that copy, nor take the name retention's rename uses.
 */
function keepOldFilesForRemoval(segment: Segment, swap: number): string[] {
  const kept: string[] = [];
  for (const path of [segment.logPath, segment.offsetIndex.path, segment.timeIndex.path]) {
    const name = `${path}.${swap}${DELETED_SUFFIX}`;
    try {
      fs.linkSync(path, name);
      kept.push(name);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  return kept;
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Visits the header of every batch of the .log at `path` from byte `position` to `end`, reading
 * EPOCH_SCAN_CHUNK_BYTES at a time and skipping bodies (through its own read-only fd).
 */
function visitBatchHeaders(path: string, position: number, end: number, visit: (header: BatchHeader) => void): void {
  const fd = fs.openSync(path, 'r');
  try {
    const buffer = Buffer.allocUnsafe(EPOCH_SCAN_CHUNK_BYTES);
    let chunkStart = 0;
    let chunkLength = 0;
    while (position < end) {
      if (end - position < BATCH_HEADER_BYTES) throw new CorruptBatchError(`torn batch header at byte ${position} of ${path}`);
      if (position < chunkStart || position + BATCH_HEADER_BYTES > chunkStart + chunkLength) {
        chunkStart = position;
        chunkLength = readFully(fd, buffer, Math.min(buffer.length, end - position), position);
        if (chunkLength < BATCH_HEADER_BYTES) throw new CorruptBatchError(`short read at byte ${position} of ${path}`);
      }
      const header = readBatchHeader(buffer, position - chunkStart);
      const size = batchSize(header);
      if (header.batchLength < BATCH_HEADER_BYTES - LOG_OVERHEAD || position + size > end) {
        throw new CorruptBatchError(`batch at byte ${position} of ${path} has a bad length ${header.batchLength}`);
      }
      visit(header);
      position += size;
    }
  } finally {
    fs.closeSync(fd);
  }
}
