import fs from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RunnelError, crc32c, decodeRecords, encodeRecordBatch, listBatches, readBatchHeader, setBaseOffset, type LogSettings } from '@runnel/common';
import { CLEAN_SHUTDOWN_FILE, PartitionLog } from '../src/index.js';
import { captureLogger, makeBatch, readAll, recordValue, removeDir, segmentFiles, tempDir, testSettings } from './helpers.js';

const dirs: string[] = [];
const logs: PartitionLog[] = [];

async function openLog(settings: Partial<LogSettings> = {}, options: { now?: () => number; dir?: string } = {}): Promise<PartitionLog> {
  const dir = options.dir ?? tempDir('unit');
  if (!dirs.includes(dir)) dirs.push(dir);
  const { logger } = captureLogger();
  const log = await PartitionLog.open(dir, testSettings(settings), { logger, ...(options.now ? { now: options.now } : {}) });
  logs.push(log);
  return log;
}

afterEach(async () => {
  for (const log of logs.splice(0)) await log.closeForTest({ clean: false });
  for (const dir of dirs.splice(0)) removeDir(dir);
  vi.restoreAllMocks();
});

/** Appends `count` batches of `records` records each; returns the batches as appended. */
async function appendMany(log: PartitionLog, count: number, records = 3, valueBytes = 100, firstBatch = 0): Promise<Buffer[]> {
  const appended: Buffer[] = [];
  for (let i = firstBatch; i < firstBatch + count; i++) {
    const batch = makeBatch(i, { records, valueBytes });
    await log.append(batch);
    appended.push(batch);
  }
  return appended;
}

function expectRunnelError(action: () => unknown, name: string): void {
  let caught: unknown;
  try {
    action();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(RunnelError);
  expect((caught as RunnelError).errorName).toBe(name);
}

async function expectRejects(promise: Promise<unknown>, name: string): Promise<void> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RunnelError);
  expect((error as RunnelError).errorName).toBe(name);
}

describe('append and read', () => {
  it('round-trips records and reports offsets', async () => {
    const log = await openLog();
    const first = await log.append(makeBatch(0, { records: 5, valueBytes: 10 }));
    expect(first).toMatchObject({ firstOffset: 0, lastOffset: 4, batchCount: 1, maxTimestamp: 1_000_000 });
    const second = await log.append(Buffer.concat([makeBatch(1, { records: 2, valueBytes: 10 }), makeBatch(2, { records: 3, valueBytes: 10 })]), { leaderEpoch: 7 });
    expect(second).toMatchObject({ firstOffset: 5, lastOffset: 9, batchCount: 2 });
    expect(log.logEndOffset).toBe(10);

    const result = log.read(0, 1 << 20);
    expect(result.nextOffset).toBe(10);
    const batches = listBatches(result.records);
    expect(batches.map((b) => [b.header.baseOffset, b.header.partitionLeaderEpoch])).toEqual([
      [0, -1],
      [5, 7],
      [7, 7],
    ]);
    const records = readAll(log);
    expect(records.map((r) => r.offset)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(records[6]!.value).toEqual(recordValue(1, 1, 10));
    expect(records[7]!.value).toEqual(recordValue(2, 0, 10));
    expect(records[7]!.key?.toString()).toBe('k2-0');
  });

  it('keeps offsets dense across many batches and segments', async () => {
    const log = await openLog({ segmentBytes: 2048, indexIntervalBytes: 512 });
    let expectedOffset = 0;
    for (let i = 0; i < 200; i++) {
      const records = (i % 7) + 1;
      const result = await log.append(makeBatch(i, { records, valueBytes: (i * 13) % 90 }));
      expect(result.firstOffset).toBe(expectedOffset);
      expectedOffset += records;
    }
    expect(log.logEndOffset).toBe(expectedOffset);
    expect(log.segmentCount).toBeGreaterThan(10);
    const names = segmentFiles(log.dir, '.log');
    expect(names.length).toBe(log.segmentCount);
    for (const name of names) expect(name).toMatch(/^\d{20}\.log$/);
    let total = 0;
    for (const name of names) {
      const size = fs.statSync(join(log.dir, name)).size;
      expect(size).toBeLessThanOrEqual(2048);
      total += size;
    }
    expect(total).toBe(log.sizeInBytes);
    const records = readAll(log, 0, 700);
    expect(records.map((r) => r.offset)).toEqual(Array.from({ length: expectedOffset }, (_, i) => i));
  });

  it('reading from the middle of a batch returns that whole batch', async () => {
    const log = await openLog({ indexIntervalBytes: 0 });
    await appendMany(log, 4, 10, 20);
    const result = log.read(25, 1);
    const batches = listBatches(result.records);
    expect(batches).toHaveLength(1);
    expect(batches[0]!.header.baseOffset).toBe(20);
    expect(result.nextOffset).toBe(30);
  });

  it('honours maxBytes, but always returns one whole batch (KIP-74)', async () => {
    const log = await openLog();
    const appended = await appendMany(log, 5, 4, 200);
    const size = appended[0]!.length;
    expect(listBatches(log.read(0, size * 2).records)).toHaveLength(2);
    expect(listBatches(log.read(0, size * 2 + size - 1).records)).toHaveLength(2);
    const one = log.read(0, 10);
    expect(listBatches(one.records)).toHaveLength(1);
    expect(one.records.length).toBe(size);
    expect(one.nextOffset).toBe(4);
    expect(log.read(0, 0).nextOffset).toBe(4);
    expect(listBatches(log.read(4, 1 << 20).records)).toHaveLength(4);
  });

  it('stops below maxOffset', async () => {
    const log = await openLog();
    await appendMany(log, 5, 4, 50);
    expect(log.read(0, 1 << 20, { maxOffset: 8 }).nextOffset).toBe(8);
    // maxOffset inside a batch excludes that batch
    expect(log.read(0, 1 << 20, { maxOffset: 10 }).nextOffset).toBe(8);
    expect(log.read(0, 1 << 20, { maxOffset: 3 })).toEqual({ records: Buffer.alloc(0), nextOffset: 0 });
    expect(log.read(8, 1 << 20, { maxOffset: 8 }).records.length).toBe(0);
    expect(log.read(0, 1 << 20, { maxOffset: 1000 }).nextOffset).toBe(20);
  });

  it('throws OFFSET_OUT_OF_RANGE outside [logStartOffset, logEndOffset] and is empty at the end', async () => {
    const log = await openLog();
    await appendMany(log, 2);
    expectRunnelError(() => log.read(7, 100), 'OFFSET_OUT_OF_RANGE');
    expectRunnelError(() => log.read(-1, 100), 'OFFSET_OUT_OF_RANGE');
    expect(log.read(6, 100)).toEqual({ records: Buffer.alloc(0), nextOffset: 6 });
    log.truncateFullyAndStartAt(100);
    expectRunnelError(() => log.read(99, 100), 'OFFSET_OUT_OF_RANGE');
    expect(log.read(100, 100).nextOffset).toBe(100);
  });

  it('reads across segment boundaries in one call when room remains', async () => {
    const log = await openLog({ segmentBytes: 1024 });
    await appendMany(log, 30, 2, 60);
    expect(log.segmentCount).toBeGreaterThan(3);
    const result = log.read(0, 1 << 20);
    expect(result.nextOffset).toBe(60);
    expect(listBatches(result.records)).toHaveLength(30);
    for (let offset = 0; offset < 60; offset++) {
      const one = log.read(offset, 1);
      const batch = listBatches(one.records);
      expect(batch).toHaveLength(1);
      expect(batch[0]!.header.baseOffset).toBe(offset - (offset % 2));
    }
  });

  it('orders concurrent appends by call order', async () => {
    const log = await openLog({ segmentBytes: 4096 });
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => log.append(makeBatch(i, { records: 2, valueBytes: 30 }))));
    expect(results.map((r) => r.firstOffset)).toEqual(Array.from({ length: 50 }, (_, i) => i * 2));
    const records = readAll(log);
    expect(records[99]!.value).toEqual(recordValue(49, 1, 30));
  });

  it('keeps the batches offsets with assignOffsets false, and rejects a gap', async () => {
    const log = await openLog();
    const leader = encodeRecordBatch([{ value: Buffer.from('a') }, { value: Buffer.from('b') }], { baseOffset: 0, partitionLeaderEpoch: 3 });
    const next = encodeRecordBatch([{ value: Buffer.from('c') }], { baseOffset: 2, partitionLeaderEpoch: 3 });
    await log.append(Buffer.concat([leader, next]), { assignOffsets: false });
    expect(log.logEndOffset).toBe(3);
    expect(readBatchHeader(log.read(2, 100).records).partitionLeaderEpoch).toBe(3);
    await expectRejects(log.append(encodeRecordBatch([{ value: null }], { baseOffset: 5 }), { assignOffsets: false }), 'INVALID_REQUEST');
    expect(log.logEndOffset).toBe(3);
    // the leader's epoch is kept and starts the follower's leader-epoch cache (leaderEpochCache.test.ts has the rest)
    expect(log.epochEntries()).toEqual([{ epoch: 3, startOffset: 0 }]);
    expect(log.endOffsetForEpoch(3)).toEqual({ epoch: 3, endOffset: 3 });
  });
});

describe('rejecting bad input', () => {
  it('rejects a call with one corrupt batch and writes nothing', async () => {
    const log = await openLog();
    await appendMany(log, 2);
    const sizeBefore = log.sizeInBytes;
    const good = makeBatch(10, { records: 2, valueBytes: 10 });
    const bad = makeBatch(11, { records: 2, valueBytes: 10 });
    bad[bad.length - 3]! ^= 0x40; // inside the CRC-covered records
    await expectRejects(log.append(Buffer.concat([good, bad])), 'CORRUPT_MESSAGE');
    const torn = makeBatch(12, { records: 2, valueBytes: 10 });
    await expectRejects(log.append(Buffer.concat([good, torn.subarray(0, torn.length - 1)])), 'CORRUPT_MESSAGE');
    const wrongMagic = Buffer.from(good);
    wrongMagic[16] = 1;
    await expectRejects(log.append(wrongMagic), 'CORRUPT_MESSAGE');
    await expectRejects(log.append(Buffer.alloc(0)), 'INVALID_REQUEST');
    expect(log.logEndOffset).toBe(6);
    expect(log.sizeInBytes).toBe(sizeBefore);
    expect(fs.statSync(join(log.dir, '00000000000000000000.log')).size).toBe(sizeBefore);
  });

  it('enforces maxMessageBytes and segmentBytes', async () => {
    const log = await openLog({ maxMessageBytes: 500, segmentBytes: 100_000 });
    await expectRejects(log.append(makeBatch(0, { records: 1, valueBytes: 600 })), 'MESSAGE_TOO_LARGE');
    log.updateSettings(testSettings({ maxMessageBytes: 100_000, segmentBytes: 300 }));
    await expectRejects(log.append(makeBatch(0, { records: 1, valueBytes: 400 })), 'RECORD_LIST_TOO_LARGE');
    expect(log.logEndOffset).toBe(0);
    expect(log.sizeInBytes).toBe(0);
  });
});

describe('rolling', () => {
  it('rolls by size and never exceeds segmentBytes', async () => {
    const batchBytes = makeBatch(0, { records: 1, valueBytes: 100 }).length;
    const log = await openLog({ segmentBytes: batchBytes * 3 });
    await appendMany(log, 10, 1, 100);
    expect(log.segmentCount).toBe(4);
    expect(segmentFiles(log.dir, '.log')).toEqual([0, 3, 6, 9].map((o) => `${String(o).padStart(20, '0')}.log`));
  });

  it('rolls by time using record timestamps', async () => {
    const log = await openLog({ segmentMs: 1000 });
    await log.append(makeBatch(0, { records: 1, valueBytes: 1, timestamps: [10_000] }));
    await log.append(makeBatch(1, { records: 1, valueBytes: 1, timestamps: [10_900] }));
    expect(log.segmentCount).toBe(1);
    await log.append(makeBatch(2, { records: 1, valueBytes: 1, timestamps: [11_001] }));
    expect(log.segmentCount).toBe(2);
    await log.append(makeBatch(3, { records: 1, valueBytes: 1, timestamps: [11_500] }));
    expect(log.segmentCount).toBe(2);
  });

  it('rolls by wall clock when records carry no timestamp', async () => {
    let nowMs = 50_000;
    const log = await openLog({ segmentMs: 1000 }, { now: () => nowMs });
    const noTimestamp = () => encodeRecordBatch([{ value: Buffer.from('x'), timestamp: -1 }]);
    await log.append(noTimestamp());
    nowMs += 1000;
    await log.append(noTimestamp());
    expect(log.segmentCount).toBe(1);
    nowMs += 1;
    await log.append(noTimestamp());
    expect(log.segmentCount).toBe(2);
    expect(log.logEndOffset).toBe(3);
  });

  it('trims the indexes of a rolled segment to their exact size', async () => {
    const log = await openLog({ segmentBytes: 4000, indexIntervalBytes: 300 });
    await appendMany(log, 40, 2, 100);
    const indexes = segmentFiles(log.dir, '.index');
    expect(indexes.length).toBeGreaterThan(2);
    const sealed = fs.statSync(join(log.dir, indexes[0]!)).size;
    expect(sealed).toBeGreaterThan(0);
    expect(sealed % 8).toBe(0);
    const timeSize = fs.statSync(join(log.dir, indexes[0]!.replace('.index', '.timeindex'))).size;
    expect(timeSize).toBeGreaterThan(0);
    expect(timeSize % 12).toBe(0);
  });
});

describe('indexes', () => {
  it('finds every offset the same way with a dense, sparse or absent index', async () => {
    const contents: string[][] = [];
    for (const indexIntervalBytes of [0, 700, 1 << 30]) {
      const log = await openLog({ indexIntervalBytes, segmentBytes: 8192 });
      await appendMany(log, 60, 5, 40);
      const seen: string[] = [];
      for (let offset = 0; offset < log.logEndOffset; offset++) {
        const result = log.read(offset, 1);
        seen.push(`${readBatchHeader(result.records).baseOffset}-${result.nextOffset}`);
      }
      contents.push(seen);
    }
    expect(contents[1]).toEqual(contents[0]);
    expect(contents[2]).toEqual(contents[0]);
    expect(contents[0]![12]).toBe('10-15');
  });

  it('offsetForTimestamp is exact, across segments and after reopen', async () => {
    const log = await openLog({ segmentBytes: 1500, indexIntervalBytes: 200 });
    const all: Array<{ offset: number; timestamp: number }> = [];
    let offset = 0;
    for (let i = 0; i < 80; i++) {
      // rising overall, with some records older than earlier ones
      const timestamps = [0, 1, 2].map((r) => 10_000 + i * 10 + ((i * 7 + r * 13) % 25) - 12);
      await log.append(makeBatch(i, { records: 3, valueBytes: 20, timestamps }));
      for (const timestamp of timestamps) all.push({ offset: offset++, timestamp });
    }
    expect(log.segmentCount).toBeGreaterThan(3);
    const expected = (target: number) => all.find((r) => r.timestamp >= target) ?? null;
    const check = (subject: PartitionLog) => {
      for (let target = 9_950; target <= 10_820; target += 3) expect(subject.offsetForTimestamp(target)).toEqual(expected(target));
    };
    check(log);
    expect(log.offsetForTimestamp(0)).toEqual({ offset: 0, timestamp: all[0]!.timestamp });
    expect(log.offsetForTimestamp(99_999)).toBeNull();
    await log.close();
    const reopened = await openLog({ segmentBytes: 1500, indexIntervalBytes: 200 }, { dir: log.dir });
    check(reopened);
  });
});

describe('retention', () => {
  it('deletes segments older than retentionMs, never the active one', async () => {
    let nowMs = 1_000_000;
    const log = await openLog({ segmentBytes: 600, retentionMs: 10_000 }, { now: () => nowMs });
    for (let i = 0; i < 12; i++) await log.append(makeBatch(i, { records: 1, valueBytes: 150, timestamps: [100_000 + i * 1000] }));
    const segments = log.segmentCount;
    expect(segments).toBeGreaterThan(3);
    nowMs = 100_000 + 5 * 1000 + 10_000 + 1; // batches 0..4 are past retention
    const deleted = await log.deleteRetainedSegments(log.logEndOffset);
    expect(deleted).toBeGreaterThan(0);
    expect(log.logStartOffset).toBeGreaterThan(0);
    expect(log.logStartOffset).toBeLessThanOrEqual(6);
    expectRunnelError(() => log.read(0, 100), 'OFFSET_OUT_OF_RANGE');
    expect(readAll(log)[0]!.offset).toBe(log.logStartOffset);
    nowMs = 10_000_000;
    await log.deleteRetainedSegments(log.logEndOffset);
    expect(log.segmentCount).toBe(1);
    expect(log.logEndOffset).toBe(12);
    expect(log.logStartOffset).toBe(segmentFiles(log.dir, '.log').map((name) => Number(name.slice(0, 20)))[0]);
    expect(log.read(log.logStartOffset, 1000).records.length).toBeGreaterThan(0);
  });

  it('deletes the oldest segments while the rest is still >= retentionBytes', async () => {
    const log = await openLog({ segmentBytes: 1000 });
    await appendMany(log, 30, 1, 200);
    const before = log.segmentCount;
    const segmentSize = Math.round(log.sizeInBytes / before);
    log.updateSettings(testSettings({ segmentBytes: 1000, retentionBytes: segmentSize * 3 }));
    const deleted = await log.deleteRetainedSegments(log.logEndOffset);
    expect(deleted).toBeGreaterThan(0);
    expect(log.sizeInBytes).toBeGreaterThanOrEqual(segmentSize * 3 - segmentSize);
    expect(log.segmentCount).toBe(before - deleted);
    expect(await log.deleteRetainedSegments(log.logEndOffset)).toBe(0);
    log.updateSettings(testSettings({ segmentBytes: 1000, retentionBytes: 0 }));
    await log.deleteRetainedSegments(log.logEndOffset);
    expect(log.segmentCount).toBe(1);
    expect(log.logEndOffset).toBe(30);
  });
});

describe('retention bounded by the high watermark', () => {
  /** 40 batches of one record stamped at 1 ms after the epoch: every segment is past any retention.ms. */
  async function oldRecordsLog(): Promise<PartitionLog> {
    const log = await openLog({ segmentBytes: 600, retentionMs: 1 });
    for (let i = 0; i < 40; i++) await log.append(makeBatch(i, { records: 1, valueBytes: 150, timestamps: [1] }));
    expect(log.segmentCount).toBeGreaterThan(8);
    return log;
  }

  it('retention.ms deletes only segments wholly below the bound (the next segment starts at or below it)', async () => {
    const log = await oldRecordsLog();
    const bases = log.segmentBaseOffsets;
    // A bound in the middle of a segment: that segment holds records at and above the bound, so it stays.
    const containing = bases[4]!;
    const bound = containing + 1;
    expect(bases[5]!).toBeGreaterThan(bound);
    await log.deleteRetainedSegments(bound);
    expect(log.logStartOffset).toBe(containing);
    expect(readAll(log).map((record) => record.offset)).toEqual(Array.from({ length: 40 - containing }, (_, i) => containing + i));
    // A bound on a segment boundary lets the segment below it go, and nothing more.
    await log.deleteRetainedSegments(bases[6]!);
    expect(log.logStartOffset).toBe(bases[6]!);
    // Nothing was replicated: nothing may go, however old.
    const empty = await oldRecordsLog();
    expect(await empty.deleteRetainedSegments(0)).toBe(0);
    expect(empty.logStartOffset).toBe(0);
  });

  it('retention.bytes stops at the bound too, even when the log stays larger than retention.bytes', async () => {
    const log = await oldRecordsLog();
    log.updateSettings(testSettings({ segmentBytes: 600, retentionBytes: 0 }));
    const bases = log.segmentBaseOffsets;
    await log.deleteRetainedSegments(bases[3]! + 1);
    expect(log.logStartOffset).toBe(bases[3]!);
    // A bound at the log end still never deletes the active segment.
    await log.deleteRetainedSegments(log.logEndOffset);
    expect(log.segmentCount).toBe(1);
    expect(log.logEndOffset).toBe(40);
  });
});

describe('retention off the hot path', () => {
  const deletedFiles = (dir: string) => fs.readdirSync(dir).filter((name) => name.endsWith('.deleted'));

  it('a pass over hundreds of segments renames them to .deleted in bounded steps, with no unlink or fsync and one checkpoint write, and removes the files after fileDeleteDelayMs', async () => {
    // One batch per segment: 320 segments, every one past retention.ms, written by leader epochs 0..3.
    const log = await openLog({ segmentBytes: 200, retentionMs: 1, fileDeleteDelayMs: 1500 });
    for (let i = 0; i < 320; i++) await log.append(makeBatch(i, { records: 1, valueBytes: 100, timestamps: [1] }), { leaderEpoch: Math.floor(i / 100) });
    expect(log.segmentCount).toBe(320);
    expect(log.epochEntries()).toHaveLength(4);
    const unlinks = vi.spyOn(fs, 'unlinkSync');
    const renames = vi.spyOn(fs, 'renameSync');
    const removals = vi.spyOn(fs, 'rmSync');
    const fsyncs = vi.spyOn(fs, 'fsyncSync');
    const datasyncs = vi.spyOn(fs, 'fdatasyncSync');
    // The pass must let other work run between its steps: count event-loop turns while it runs.
    let turns = 0;
    let ticking = true;
    const tick = (): void => {
      turns++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const deleted = await log.deleteRetainedSegments(log.logEndOffset);
    ticking = false;

    expect(deleted).toBe(319);
    expect(log.segmentBaseOffsets).toEqual([319]);
    expectRunnelError(() => log.read(0, 1000), 'OFFSET_OUT_OF_RANGE');
    expect(turns).toBeGreaterThanOrEqual(4);
    expect(unlinks).not.toHaveBeenCalled();
    expect(removals).not.toHaveBeenCalled();
    expect(datasyncs).not.toHaveBeenCalled();
    expect(fsyncs).not.toHaveBeenCalled();
    // The leader-epoch checkpoint is written once for the pass, not per step or segment.
    expect(renames.mock.calls.filter(([, to]) => String(to).endsWith('leader-epoch-checkpoint'))).toHaveLength(1);
    expect(log.epochEntries()).toEqual([{ epoch: 3, startOffset: 319 }]);
    expect(fs.readFileSync(join(log.dir, 'leader-epoch-checkpoint'), 'utf8')).toBe('0\n1\n3 319\n');
    expect(deletedFiles(log.dir)).toHaveLength(319 * 3);
    expect(segmentFiles(log.dir, '.log')).toEqual(['00000000000000000319.log']);

    const passEndMs = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 200));
    // Not before the delay (unless a loaded machine slept through it).
    if (Date.now() - passEndMs < 1000) expect(deletedFiles(log.dir)).toHaveLength(319 * 3);
    await vi.waitFor(() => expect(deletedFiles(log.dir)).toEqual([]), { timeout: 10_000, interval: 50 });
    expect(unlinks).not.toHaveBeenCalled();
    expect(readAll(log).map((record) => record.offset)).toEqual([319]);
  });

  it('.deleted files left by a pass are never loaded as segments and are removed at open', async () => {
    const log = await openLog({ segmentBytes: 200, retentionMs: 1, fileDeleteDelayMs: 3_600_000 });
    for (let i = 0; i < 10; i++) await log.append(makeBatch(i, { records: 1, valueBytes: 100, timestamps: [1] }));
    await log.deleteRetainedSegments(5);
    expect(log.logStartOffset).toBe(5);
    expect(deletedFiles(log.dir)).toHaveLength(5 * 3);
    await log.close(); // before the delay: the files stay for open() to find
    expect(deletedFiles(log.dir)).toHaveLength(5 * 3);
    const reopened = await openLog({ segmentBytes: 200 }, { dir: log.dir });
    expect(reopened.segmentBaseOffsets).toEqual([5, 6, 7, 8, 9]);
    expect(deletedFiles(log.dir)).toEqual([]);
    expect(readAll(reopened).map((record) => record.offset)).toEqual([5, 6, 7, 8, 9]);
  });
});

describe('truncation', () => {
  it('truncateTo removes the batch holding the offset and everything after, across segments', async () => {
    const log = await openLog({ segmentBytes: 1200, indexIntervalBytes: 100 });
    await appendMany(log, 40, 4, 60);
    const segmentsBefore = log.segmentCount;
    log.truncateTo(61); // batch 15 holds 60..63
    expect(log.logEndOffset).toBe(60);
    expect(log.segmentCount).toBeLessThan(segmentsBefore);
    expect(readAll(log).map((r) => r.offset)).toEqual(Array.from({ length: 60 }, (_, i) => i));
    const result = await log.append(makeBatch(100, { records: 2, valueBytes: 5 }));
    expect(result.firstOffset).toBe(60);
    expect(readAll(log, 60)[0]!.value).toEqual(recordValue(100, 0, 5));
    log.truncateTo(1000); // beyond the end: nothing
    expect(log.logEndOffset).toBe(62);
    await log.close();
    const reopened = await openLog({ segmentBytes: 1200, indexIntervalBytes: 100 }, { dir: log.dir });
    expect(reopened.logEndOffset).toBe(62);
    expect(readAll(reopened).map((r) => r.offset)).toEqual(Array.from({ length: 62 }, (_, i) => i));
  });

  it('truncateTo a segment base offset and to zero', async () => {
    const log = await openLog({ segmentBytes: 700 });
    await appendMany(log, 20, 1, 200);
    const bases = log.segmentBaseOffsets;
    log.truncateTo(bases[2]!);
    expect(log.logEndOffset).toBe(bases[2]);
    log.truncateTo(0);
    expect(log.logEndOffset).toBe(0);
    expect(log.segmentCount).toBe(1);
    expect((await log.append(makeBatch(0, { records: 1, valueBytes: 1 }))).firstOffset).toBe(0);
  });

  it('truncateFullyAndStartAt empties the log and restarts it at the offset, removing the old files later', async () => {
    const log = await openLog({ segmentBytes: 700, fileDeleteDelayMs: 300 });
    await appendMany(log, 10, 1, 200);
    const unlinks = vi.spyOn(fs, 'unlinkSync');
    log.truncateFullyAndStartAt(1234);
    // No segment file is unlinked on the event loop (a small checkpoint may be).
    expect(unlinks.mock.calls.map(([path]) => String(path)).filter((path) => /\.(log|index|timeindex)(\.deleted)?$/.test(path))).toEqual([]);
    unlinks.mockRestore();
    expect(log.logStartOffset).toBe(1234);
    expect(log.logEndOffset).toBe(1234);
    expect(log.sizeInBytes).toBe(0);
    expect(segmentFiles(log.dir, '.log')).toEqual(['00000000000000001234.log']);
    expect(fs.readdirSync(log.dir).filter((n) => n.endsWith('.deleted')).length).toBeGreaterThan(0);
    await vi.waitFor(() => expect(fs.readdirSync(log.dir).filter((n) => n.endsWith('.deleted'))).toEqual([]), { timeout: 10_000, interval: 50 });
    expect((await log.append(makeBatch(0, { records: 3, valueBytes: 1 }))).firstOffset).toBe(1234);
    await log.close();
    const reopened = await openLog({ segmentBytes: 700 }, { dir: log.dir });
    expect([reopened.logStartOffset, reopened.logEndOffset]).toEqual([1234, 1237]);
  });
});

describe('close and reopen', () => {
  it('gives the same state after a clean close, and manages the clean-shutdown marker', async () => {
    const settings = { segmentBytes: 3000, indexIntervalBytes: 256 };
    const log = await openLog(settings);
    await appendMany(log, 50, 3, 70);
    const before = { start: log.logStartOffset, end: log.logEndOffset, size: log.sizeInBytes, segments: log.segmentCount, data: log.read(0, 1 << 20).records };
    await log.close();
    expect(fs.existsSync(join(log.dir, CLEAN_SHUTDOWN_FILE))).toBe(true);
    const indexBytes = segmentFiles(log.dir, '.index').map((n) => fs.readFileSync(join(log.dir, n)));
    const { logger, lines } = captureLogger();
    const reopened = await PartitionLog.open(log.dir, testSettings(settings), { logger });
    logs.push(reopened);
    expect(fs.existsSync(join(log.dir, CLEAN_SHUTDOWN_FILE))).toBe(false);
    expect(lines.filter((l) => l.level === 'warn' || l.level === 'error')).toEqual([]);
    expect({ start: reopened.logStartOffset, end: reopened.logEndOffset, size: reopened.sizeInBytes, segments: reopened.segmentCount, data: reopened.read(0, 1 << 20).records }).toEqual(before);
    expect((await reopened.append(makeBatch(99, { records: 1, valueBytes: 1 }))).firstOffset).toBe(150);
    await reopened.close();
    // the sealed segments' indexes were loaded, not rewritten
    expect(segmentFiles(log.dir, '.index').slice(0, indexBytes.length - 1).map((n) => fs.readFileSync(join(log.dir, n)))).toEqual(indexBytes.slice(0, -1));
  });

  it('after a crash truncates a torn tail and logs the byte position', async () => {
    const log = await openLog();
    const appended = await appendMany(log, 5, 2, 50);
    await log.closeForTest({ clean: false });
    const path = join(log.dir, '00000000000000000000.log');
    const keep = appended[0]!.length * 3 + 17;
    fs.truncateSync(path, keep);
    const { logger, lines } = captureLogger();
    const reopened = await PartitionLog.open(log.dir, testSettings(), { logger });
    logs.push(reopened);
    expect(reopened.logEndOffset).toBe(6);
    expect(fs.statSync(path).size).toBe(appended[0]!.length * 3);
    const warning = lines.find((l) => l.level === 'warn');
    expect(warning?.fields.positionBytes).toBe(appended[0]!.length * 3);
    expect((await reopened.append(makeBatch(9, { records: 1, valueBytes: 1 }))).firstOffset).toBe(6);
  });

  it('after a crash cuts at a batch whose offset does not follow (baseOffset is outside the CRC)', async () => {
    for (const wrongBase of [0, 5, 1_000_000]) {
      const log = await openLog();
      const appended = await appendMany(log, 5, 2, 50);
      await log.closeForTest({ clean: false });
      const path = join(log.dir, '00000000000000000000.log');
      const bytes = fs.readFileSync(path);
      bytes.writeBigInt64BE(BigInt(wrongBase), appended[0]!.length * 3); // batch 3 should start at 6
      fs.writeFileSync(path, bytes);
      const { logger, lines } = captureLogger();
      const reopened = await PartitionLog.open(log.dir, testSettings(), { logger });
      logs.push(reopened);
      expect(reopened.logEndOffset).toBe(6);
      expect(lines.find((l) => l.level === 'warn')?.fields.positionBytes).toBe(appended[0]!.length * 3);
    }
  });

  it('on a clean open refuses a sealed segment whose batches do not chain', async () => {
    const batchBytes = makeBatch(0, { records: 2, valueBytes: 50 }).length;
    const log = await openLog({ segmentBytes: batchBytes * 4, indexIntervalBytes: 1 << 20 });
    await appendMany(log, 10, 2, 50);
    await log.close();
    const path = join(log.dir, '00000000000000000000.log');
    const bytes = fs.readFileSync(path);
    bytes.writeBigInt64BE(2n, batchBytes * 2); // third batch claims offset 2 instead of 4
    fs.writeFileSync(path, bytes);
    const reopened = await openLog({ segmentBytes: batchBytes * 4, indexIntervalBytes: 1 << 20 }, { dir: log.dir });
    expect(reopened.logEndOffset).toBe(4);
    expect(reopened.segmentCount).toBe(1);
  });

  it('rebuilds a corrupt index of a sealed segment and cuts a corrupt sealed segment, dropping later ones', async () => {
    const settings = { segmentBytes: 1000, indexIntervalBytes: 100 };
    const log = await openLog(settings);
    await appendMany(log, 30, 1, 150);
    const bases = log.segmentBaseOffsets;
    expect(bases.length).toBeGreaterThan(4);
    await log.close();
    const name = (base: number, suffix: string) => join(log.dir, `${String(base).padStart(20, '0')}${suffix}`);
    fs.writeFileSync(name(bases[0]!, '.index'), Buffer.from([1, 2, 3])); // not a whole entry: rebuilt
    fs.rmSync(name(bases[0]!, '.timeindex'));
    // segment 2: damage a CRC-covered byte of its second batch and drop its index
    const second = fs.readFileSync(name(bases[2]!, '.log'));
    const secondBatch = listBatches(second)[1]!;
    second[secondBatch.position + 70] ^= 0xff;
    fs.writeFileSync(name(bases[2]!, '.log'), second);
    fs.rmSync(name(bases[2]!, '.index'));
    fs.writeFileSync(name(bases[2]!, '.log.deleted'), 'stray');
    fs.writeFileSync(join(log.dir, '00000000000000999999.index'), 'orphan');
    const { logger, lines } = captureLogger();
    const reopened = await PartitionLog.open(log.dir, testSettings(settings), { logger });
    logs.push(reopened);
    expect(reopened.logEndOffset).toBe(secondBatch.header.baseOffset);
    expect(reopened.segmentBaseOffsets).toEqual(bases.slice(0, 3));
    expect(segmentFiles(log.dir, '.log')).toHaveLength(3);
    expect(fs.existsSync(name(bases[2]!, '.log.deleted'))).toBe(false);
    expect(fs.existsSync(join(log.dir, '00000000000000999999.index'))).toBe(false);
    expect(lines.some((l) => l.level === 'error' && /later segment/.test(l.message))).toBe(true);
    expect(readAll(reopened).map((r) => r.value)).toEqual(Array.from({ length: secondBatch.header.baseOffset }, (_, i) => recordValue(i, 0, 150)));
    expect(fs.statSync(name(bases[0]!, '.index')).size % 8).toBe(0);
  });
});

describe('flush policy', () => {
  it('fsyncs before resolving when flushMessages is 1, sharing fsyncs between concurrent appends', async () => {
    const log = await openLog({ flushMessages: 1 });
    const fdatasync = vi.spyOn(fs, 'fdatasync');
    await log.append(makeBatch(0, { records: 1, valueBytes: 10 }));
    expect(log.unflushedMessages).toBe(0);
    expect(fdatasync).toHaveBeenCalledTimes(1);
    const appends = Array.from({ length: 40 }, (_, i) => log.append(makeBatch(i + 1, { records: 1, valueBytes: 10 })));
    await Promise.all(appends);
    expect(log.unflushedMessages).toBe(0);
    // group commit: 40 appends issued together need far fewer than 40 fsyncs
    expect(fdatasync.mock.calls.length).toBeLessThanOrEqual(3);
    expect(fdatasync.mock.calls.length).toBeGreaterThanOrEqual(2);
  });

  it('leaves data unflushed under a large flushMessages until flush() or flushIfDue()', async () => {
    let nowMs = 0;
    const log = await openLog({ flushMessages: 100, flushMs: 1000 }, { now: () => nowMs });
    const fdatasync = vi.spyOn(fs, 'fdatasync');
    await appendMany(log, 10, 3);
    expect(log.unflushedMessages).toBe(30);
    expect(fdatasync).not.toHaveBeenCalled();
    nowMs = 999;
    await log.flushIfDue();
    expect(log.unflushedMessages).toBe(30);
    nowMs = 1000;
    await log.flushIfDue();
    expect(log.unflushedMessages).toBe(0);
    expect(fdatasync).toHaveBeenCalledTimes(1);
    await appendMany(log, 40, 3, 10, 100); // crosses flushMessages=100 on the 34th batch
    expect(log.unflushedMessages).toBeLessThan(100);
    await log.flush();
    expect(log.unflushedMessages).toBe(0);
  });

  it('refuses appends after close', async () => {
    const log = await openLog();
    await log.close();
    await expectRejects(log.append(makeBatch(0, { records: 1, valueBytes: 1 })), 'KAFKA_STORAGE_ERROR');
  });
});

describe('records decode after storage', () => {
  for (const compression of ['gzip', 'snappy', 'lz4', 'zstd'] as const) {
    it(`stores ${compression} batches opaque and decodes them back`, async () => {
      const log = await openLog();
      const batch = encodeRecordBatch(
        Array.from({ length: 20 }, (_, i) => ({ value: Buffer.from(`${compression}-${i}`), timestamp: 5000 + i })),
        { compression },
      );
      await log.append(Buffer.from(batch));
      const stored = log.read(0, 1 << 20).records;
      expect(stored.subarray(61).equals(batch.subarray(61))).toBe(true);
      expect(decodeRecords(stored).map((r) => r.value?.toString())).toEqual(Array.from({ length: 20 }, (_, i) => `${compression}-${i}`));
      expect(log.offsetForTimestamp(5007)).toEqual({ offset: 7, timestamp: 5007 });
    });
  }

  it("refuses, as CORRUPT_MESSAGE naming the codec, a producer's batch whose records do not decompress, and writes nothing", async () => {
    const log = await openLog();
    const good = encodeRecordBatch([{ value: Buffer.from('fine') }], { compression: 'lz4' });
    const bad = encodeRecordBatch([{ value: Buffer.from('x'.repeat(100)) }], { compression: 'lz4' });
    bad.writeUInt32LE(bad.length, 61 + 7); // the first block's size: past the end of the frame
    bad.writeUInt32BE(crc32c(bad.subarray(21)), 17); // the producer's CRC covers what it sent
    const error = await log.append(Buffer.concat([good, bad])).then(() => null, (e: unknown) => e);
    expect((error as RunnelError).errorName).toBe('CORRUPT_MESSAGE');
    expect((error as RunnelError).message).toMatch(/batch 1: batch at byte \d+: lz4-compressed records do not decompress/);
    expect(log.logEndOffset).toBe(0);
    // A follower copies what its leader checked.
    await log.append(good);
    setBaseOffset(bad, 0, 1);
    await log.append(bad, { assignOffsets: false });
    expect(log.logEndOffset).toBe(2);
  });
});
