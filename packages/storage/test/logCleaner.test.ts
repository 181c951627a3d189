import fs from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BATCH_HEADER_BYTES, compressionOf, crc32c, encodeRecordBatch, listBatches, readBatchHeader, type DecodedRecord, type LogSettings, type RecordInput } from '@runnel/common';
import { CLEANER_CHECKPOINT_FILE, PartitionLog, segmentFileName } from '../src/index.js';
import { OffsetMap, buildOffsetMap, writeCleanedSegment } from '../src/logCleaner.js';
import { captureLogger, readAll, removeDir, tempDir, testSettings } from './helpers.js';

const dirs: string[] = [];
const logs: PartitionLog[] = [];
const BIG_BUFFER = 64 * 1024 * 1024;

const compacted: Partial<LogSettings> = {
  segmentBytes: 2048,
  cleanupPolicy: { compact: true, delete: false },
  minCleanableDirtyRatio: 0,
  deleteRetentionMs: 1000,
  indexIntervalBytes: 256,
};

async function openLog(settings: Partial<LogSettings> = {}, options: { now?: () => number; dir?: string } = {}): Promise<PartitionLog> {
  const dir = options.dir ?? tempDir('cleaner');
  if (!dirs.includes(dir)) dirs.push(dir);
  const { logger } = captureLogger();
  const log = await PartitionLog.open(dir, testSettings({ ...compacted, ...settings }), { logger, ...(options.now ? { now: options.now } : {}) });
  logs.push(log);
  return log;
}

afterEach(async () => {
  for (const log of logs.splice(0)) await log.closeForTest({ clean: false });
  for (const dir of dirs.splice(0)) removeDir(dir);
});

const key = (k: number): Buffer => Buffer.from(`key-${k}`);
const value = (k: number, version: number): Buffer => Buffer.from(`value-${k}-v${version}-${'x'.repeat(40)}`);

/** Writes `rounds` versions of keys 0..keys-1, `perBatch` records a batch; returns key → [offset, value] of each key's last write. */
async function writeVersions(log: PartitionLog, keys: number, rounds: number, perBatch = 2, timestamp = 1_000_000): Promise<Map<string, { offset: number; value: string | null }>> {
  const latest = new Map<string, { offset: number; value: string | null }>();
  const pending: RecordInput[] = [];
  const flush = async (): Promise<void> => {
    if (pending.length === 0) return;
    const result = await log.append(encodeRecordBatch(pending, { now: timestamp }));
    pending.forEach((record, i) => latest.set(record.key!.toString(), { offset: result.firstOffset + i, value: record.value?.toString() ?? null }));
    pending.length = 0;
  };
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < keys; k++) {
      pending.push({ key: key(k), value: value(k, round), timestamp });
      if (pending.length === perBatch) await flush();
    }
  }
  await flush();
  return latest;
}

function byKey(records: DecodedRecord[]): Map<string, DecodedRecord[]> {
  const grouped = new Map<string, DecodedRecord[]>();
  for (const record of records) {
    const name = record.key?.toString() ?? '<null>';
    grouped.set(name, [...(grouped.get(name) ?? []), record]);
  }
  return grouped;
}

/** Every key's latest write is readable at its offset with its value. */
function expectLatest(log: PartitionLog, latest: Map<string, { offset: number; value: string | null }>): void {
  const grouped = byKey(readAll(log));
  for (const [name, expected] of latest) {
    const records = grouped.get(name) ?? [];
    const last = records[records.length - 1];
    expect(last, `key ${name}`).toBeDefined();
    expect(last!.offset, `offset of ${name}`).toBe(expected.offset);
    expect(last!.value?.toString() ?? null, `value of ${name}`).toBe(expected.value);
  }
}

function fileBytes(dir: string, baseOffset: number): Buffer {
  return fs.readFileSync(join(dir, segmentFileName(baseOffset, '.log')));
}

describe('log cleaner', () => {
  it('keeps each key\'s latest record at its original offset, and a fetch at a removed offset returns the next kept batch', async () => {
    const log = await openLog();
    const latest = await writeVersions(log, 20, 10);
    expect(log.segmentCount).toBeGreaterThan(5);
    const sizeBefore = log.sizeInBytes;
    const endBefore = log.logEndOffset;
    const result = await log.clean(log.logEndOffset, { dedupeBufferBytes: BIG_BUFFER });
    expect(result.cleaned).toBe(true);
    expect(result.recordsRemoved).toBeGreaterThan(0);
    expect(log.sizeInBytes).toBeLessThan(sizeBefore);
    expect(log.logEndOffset).toBe(endBefore);
    expectLatest(log, latest);
    // Below the active segment (which a pass never touches), one record per key is left.
    const activeBase = log.segmentBaseOffsets[log.segmentCount - 1]!;
    const cleanedRecords = readAll(log).filter((record) => record.offset < activeBase);
    expect(cleanedRecords.length).toBeGreaterThan(0);
    expect(new Set(cleanedRecords.map((record) => record.key!.toString())).size).toBe(cleanedRecords.length);
    // Offset 0 was key-0's first version: gone. A fetch there returns batches from the next kept one on.
    expect(cleanedRecords.some((record) => record.offset === 0)).toBe(false);
    const read = log.read(0, 1_000_000);
    expect(read.records.length).toBeGreaterThan(0);
    expect(read.nextOffset).toBeGreaterThan(0);
    // Reopened (indexes loaded from the cleaned files), the log reads the same.
    await log.close();
    const reopened = await openLog({}, { dir: log.dir });
    expectLatest(reopened, latest);
    expect(reopened.logEndOffset).toBe(endBefore);
    expect(Number(fs.readFileSync(join(log.dir, CLEANER_CHECKPOINT_FILE), 'utf8'))).toBe(result.cleanedUpToOffset);
  });

  for (const compression of ['gzip', 'snappy', 'lz4', 'zstd'] as const) {
    it(`rewrites ${compression} batches too, keeping the kept records' offsets, timestamps and codec`, async () => {
      const log = await openLog();
      const records: RecordInput[] = [];
      for (let i = 0; i < 30; i++) records.push({ key: key(i % 3), value: value(i % 3, i), timestamp: 5_000 + i });
      for (let i = 0; i < 30; i += 5) await log.append(encodeRecordBatch(records.slice(i, i + 5), { compression, now: 5_000 }));
      await log.append(encodeRecordBatch([{ key: key(9), value: value(9, 0) }], { now: 5_000 })); // a later segment so the earlier ones are sealed
      for (let i = 0; i < 40; i++) await log.append(encodeRecordBatch([{ key: key(100 + i), value: Buffer.alloc(100) }], { now: 5_000 }));
      const result = await log.clean(log.logEndOffset, { dedupeBufferBytes: BIG_BUFFER });
      expect(result.recordsRemoved).toBeGreaterThan(0);
      const kept = readAll(log).filter((record) => record.offset < 30);
      expect(kept.map((record) => record.offset)).toEqual([27, 28, 29]);
      expect(kept.map((record) => record.timestamp)).toEqual([5_027, 5_028, 5_029]);
      expect(kept.map((record) => record.value!.toString())).toEqual([value(0, 27), value(1, 28), value(2, 29)].map(String));
      const thinned = readBatchHeader(log.read(27, 1).records);
      expect([thinned.baseOffset, thinned.recordCount, compressionOf(thinned.attributes)]).toEqual([25, 3, compression]);
      expect(log.offsetForTimestamp(5_010)).toEqual({ offset: 27, timestamp: 5_027 });
    });
  }

  it('keeps whole a batch whose records do not decompress, and cleans the rest', async () => {
    const log = await openLog();
    await log.append(encodeRecordBatch([{ key: key(1), value: value(1, 0) }], { compression: 'zstd', now: 5_000 }));
    // A follower's append is checked no further than its CRC, so a log can hold such a batch.
    const broken = encodeRecordBatch([{ key: key(2), value: value(2, 0) }], { compression: 'zstd', baseOffset: 1, now: 5_000 });
    broken.fill(0x5a, BATCH_HEADER_BYTES);
    broken.writeUInt32BE(crc32c(broken.subarray(21)), 17);
    await log.append(broken, { assignOffsets: false });
    const latest = await writeVersions(log, 3, 10); // key-1 again (and others), rolling the segments above
    const result = await log.clean(log.logEndOffset, { dedupeBufferBytes: BIG_BUFFER });
    expect(result.cleaned).toBe(true);
    expect(readBatchHeader(log.read(0, 1).records)).toMatchObject({ baseOffset: 0, recordCount: 0 }); // key-1's old record went
    expect(log.read(1, 1).records.equals(broken)).toBe(true);
    const afterBroken = byKey(readAll(log, 2)); // decoding from 0 would stop at the broken batch
    for (const [name, expected] of latest) expect(afterBroken.get(name)?.at(-1)?.offset, name).toBe(expected.offset);
  });

  it('removes a tombstone only once its segment was last written more than delete.retention.ms ago', async () => {
    let nowMs = 1_000_000;
    const log = await openLog({ deleteRetentionMs: 10_000 }, { now: () => nowMs });
    await log.append(encodeRecordBatch([{ key: key(1001), value: value(1001, 0) }, { key: key(1002), value: value(1002, 0) }], { now: nowMs }));
    const tombstone = await log.append(encodeRecordBatch([{ key: key(1001), value: null }], { now: nowMs }));
    await writeVersions(log, 10, 8, 2, nowMs); // other keys: rolls segments past the tombstone
    const findTombstone = (): DecodedRecord | undefined => readAll(log).find((record) => record.offset === tombstone.firstOffset);
    nowMs += 9_000;
    await log.clean(log.logEndOffset, { dedupeBufferBytes: BIG_BUFFER });
    expect(findTombstone()?.value).toBeNull();
    expect(readAll(log).some((record) => record.key?.toString() === 'key-1001' && record.value !== null)).toBe(false);
    nowMs += 2_000;
    await writeVersions(log, 10, 8, 2, nowMs); // dirty again
    const result = await log.clean(log.logEndOffset, { dedupeBufferBytes: BIG_BUFFER });
    expect(result.tombstonesRemoved).toBe(1);
    expect(findTombstone()).toBeUndefined();
    expect(readAll(log).some((record) => record.key?.toString() === 'key-1001')).toBe(false);
    expect(readAll(log).find((record) => record.key?.toString() === 'key-1002')?.value?.toString()).toBe(value(1002, 0).toString());
  });

  it('touches nothing at or above the upper bound, nor the active segment', async () => {
    const log = await openLog();
    await writeVersions(log, 10, 24);
    const bases = log.segmentBaseOffsets;
    expect(bases.length).toBeGreaterThan(6);
    const bound = bases[4]! + 1; // inside the fifth segment: it and everything after stay as they are
    const untouched = bases.slice(4).map((base) => fileBytes(log.dir, base));
    const recordsAbove = readAll(log, bases[4]!);
    const result = await log.clean(bound, { dedupeBufferBytes: BIG_BUFFER });
    expect(result.segmentsCleaned).toBe(4);
    expect(bases.slice(4).map((base) => fileBytes(log.dir, base))).toEqual(untouched);
    expect(readAll(log, bases[4]!)).toEqual(recordsAbove);
    // The same log with the bound at the end still never rewrites the active segment.
    const active = bases[bases.length - 1]!;
    const activeBytes = fileBytes(log.dir, active);
    await log.clean(log.logEndOffset, { dedupeBufferBytes: BIG_BUFFER });
    expect(fileBytes(log.dir, active)).toEqual(activeBytes);
  });

  it('leaves records newer than min.compaction.lag.ms alone, and does nothing below min.cleanable.dirty.ratio or without compact', async () => {
    let nowMs = 2_000_000;
    const log = await openLog({ minCompactionLagMs: 60_000 }, { now: () => nowMs });
    await writeVersions(log, 10, 12, 2, nowMs);
    expect((await log.clean(log.logEndOffset, { dedupeBufferBytes: BIG_BUFFER })).segmentsCleaned).toBe(0);
    nowMs += 60_001;
    expect((await log.clean(log.logEndOffset, { dedupeBufferBytes: BIG_BUFFER })).segmentsCleaned).toBeGreaterThan(0);
    const lazy = await openLog({ minCleanableDirtyRatio: 0.99 });
    await writeVersions(lazy, 10, 12);
    await lazy.clean(lazy.logEndOffset, { dedupeBufferBytes: BIG_BUFFER }); // first pass: everything dirty, ratio 1
    await writeVersions(lazy, 10, 2);
    const second = await lazy.clean(lazy.logEndOffset, { dedupeBufferBytes: BIG_BUFFER });
    expect(second.cleaned).toBe(false);
    expect(second.dirtyRatio).toBeLessThan(0.99);
    const deleting = await openLog({ cleanupPolicy: { compact: false, delete: true } });
    await writeVersions(deleting, 10, 12);
    expect((await deleting.clean(deleting.logEndOffset, { dedupeBufferBytes: BIG_BUFFER })).cleaned).toBe(false);
  });

  it('compact alone keeps segments retention would delete; compact,delete applies retention', async () => {
    const compactOnly = await openLog({ retentionMs: 1 });
    await writeVersions(compactOnly, 10, 12);
    expect(await compactOnly.deleteRetainedSegments(compactOnly.logEndOffset)).toBe(0);
    const both = await openLog({ retentionMs: 1, cleanupPolicy: { compact: true, delete: true } });
    await writeVersions(both, 10, 12);
    expect(await both.deleteRetainedSegments(both.logEndOffset)).toBeGreaterThan(0);
  });

  it('a reader during a pass always finds every key\'s latest value', async () => {
    const log = await openLog({ segmentBytes: 4096 });
    const latest = await writeVersions(log, 50, 40, 5);
    expect(log.segmentCount).toBeGreaterThan(20);
    const sizeBefore = log.sizeInBytes;
    let done = false;
    const pass = log.clean(log.logEndOffset, { dedupeBufferBytes: BIG_BUFFER }).finally(() => {
      done = true;
    });
    let readsDuringPass = 0;
    let sawPartlyCleaned = false;
    while (!done) {
      expectLatest(log, latest);
      readsDuringPass++;
      if (log.sizeInBytes < sizeBefore) sawPartlyCleaned = true;
      await new Promise((resolve) => setImmediate(resolve));
    }
    await pass;
    expect(readsDuringPass).toBeGreaterThan(5);
    expect(sawPartlyCleaned).toBe(true);
    expectLatest(log, latest);
  });

  it('with a small dedupe buffer cleans a prefix of the dirty section per pass, and stays correct', async () => {
    const log = await openLog();
    const latest = await writeVersions(log, 40, 6);
    const entryBytes = 'key-10'.length + 96;
    const budget = entryBytes * 10;
    const first = await log.clean(log.logEndOffset, { dedupeBufferBytes: budget });
    const section = log.cleanableSection(log.logEndOffset);
    expect(first.cleaned).toBe(true);
    // 40 keys do not fit in room for 10: the pass stopped early, and the rest is still dirty.
    expect(first.cleanedUpToOffset).toBeLessThan(section.firstUncleanableOffset);
    expect(section.dirtyBytes).toBeGreaterThan(0);
    expectLatest(log, latest);
    for (let pass = 0; pass < 50 && log.cleanableSection(log.logEndOffset).dirtyBytes > 0; pass++) {
      await log.clean(log.logEndOffset, { dedupeBufferBytes: budget });
      expectLatest(log, latest);
    }
    expect(log.cleanableSection(log.logEndOffset).dirtyBytes).toBe(0);
  });

  it('a truncation into the segment being cleaned stops the pass and leaves no cleaned file', async () => {
    const log = await openLog({ segmentBytes: 4096 });
    await writeVersions(log, 50, 40, 5);
    const second = log.segmentBaseOffsets[1]!;
    const cleanedFile = join(log.dir, segmentFileName(second, '.log') + '.cleaned');
    const pass = log.clean(log.logEndOffset, { dedupeBufferBytes: BIG_BUFFER });
    for (let turns = 0; !fs.existsSync(cleanedFile); turns++) {
      expect(turns).toBeLessThan(100_000);
      await new Promise((resolve) => setImmediate(resolve));
    }
    // Everything from inside the second segment on goes: the second segment becomes the active one.
    log.truncateTo(second + 1);
    const result = await pass;
    expect(result.cleaned).toBe(false);
    expect(result.reason).toMatch(/became the active segment/);
    expect(fs.readdirSync(log.dir).filter((name) => name.endsWith('.cleaned') || name.endsWith('.swap'))).toEqual([]);
    expect(log.logEndOffset).toBeLessThanOrEqual(second + 1);
    // (This test truncates below the bound it gave the pass, which a caller bounding by its high
    // watermark never does; what the first segment lost to later versions is gone with them.)
    expect(() => readAll(log)).not.toThrow();
  });

  it('keeps the replaced files as .deleted and removes them after file.delete.delay.ms', async () => {
    const deleted = (dir: string): string[] => fs.readdirSync(dir).filter((name) => name.endsWith('.deleted'));
    const slow = await openLog({ fileDeleteDelayMs: 3_600_000 });
    await writeVersions(slow, 20, 10);
    const result = await slow.clean(slow.logEndOffset, { dedupeBufferBytes: BIG_BUFFER });
    expect(deleted(slow.dir)).toHaveLength(result.segmentsCleaned * 3);
    const quick = await openLog({ fileDeleteDelayMs: 0 });
    await writeVersions(quick, 20, 10);
    expect((await quick.clean(quick.logEndOffset, { dedupeBufferBytes: BIG_BUFFER })).segmentsCleaned).toBeGreaterThan(0);
    await vi.waitFor(() => expect(deleted(quick.dir)).toEqual([]), { timeout: 10_000, interval: 20 });
  });

  it('a follower copies a cleaned log batch for batch (thinned and empty batches), and a producer may not send gaps', async () => {
    const leader = await openLog();
    await writeVersions(leader, 20, 10, 3); // batches of 3 over 20 keys: some lose part of their records
    await leader.clean(leader.logEndOffset, { dedupeBufferBytes: BIG_BUFFER });
    const follower = await openLog();
    let offset = 0;
    while (offset < leader.logEndOffset) {
      const read = leader.read(offset, 4096);
      await follower.append(Buffer.from(read.records), { assignOffsets: false, leaderEpoch: 0 });
      offset = read.nextOffset;
    }
    expect(follower.logEndOffset).toBe(leader.logEndOffset);
    expect(readAll(follower)).toEqual(readAll(leader));
    const thinned = leader.read(0, 1_000_000);
    const withGap = listBatches(thinned.records).find(({ header }) => header.recordCount > 0 && header.recordCount < header.lastOffsetDelta + 1);
    expect(withGap).toBeDefined();
    const fresh = await openLog();
    await expect(fresh.append(Buffer.from(thinned.records.subarray(withGap!.position, withGap!.position + withGap!.header.batchLength + 12)))).rejects.toThrow(/records but lastOffsetDelta/);
  });

  it('the offset map refuses a key past its budget', () => {
    const map = new OffsetMap(2 * (5 + 96));
    expect(map.tryPut(Buffer.from('aaaaa'), 1)).toBe(true);
    expect(map.tryPut(Buffer.from('bbbbb'), 2)).toBe(true);
    expect(map.tryPut(Buffer.from('aaaaa'), 3)).toBe(true); // an update costs nothing
    expect(map.tryPut(Buffer.from('ccccc'), 4)).toBe(false);
    expect(map.latestOffset(Buffer.from('aaaaa'))).toBe(3);
    expect(map.latestOffset(Buffer.from('ccccc'))).toBeUndefined();
  });
});

describe('log cleaner crash recovery', () => {
  /** A log with superseded records, its first segment cleaned into .cleaned files but not swapped: what a crash mid-pass leaves. */
  async function crashedMidPass(): Promise<{ dir: string; latest: Map<string, { offset: number; value: string | null }>; before: DecodedRecord[]; firstBase: number; cleanedBytes: number }> {
    const log = await openLog();
    const latest = await writeVersions(log, 10, 12);
    const before = readAll(log);
    const map = new OffsetMap(BIG_BUFFER);
    const segments = (log as unknown as { segments: Parameters<typeof buildOffsetMap>[0] }).segments;
    const sealed = segments.slice(0, -1);
    const mapEnd = await buildOffsetMap(sealed, 0, map, () => undefined);
    const cleaned = await writeCleanedSegment(sealed[0]!, { map, mapEndOffset: mapEnd, tombstoneHorizonMs: 0, indexIntervalBytes: 256 }, () => undefined);
    expect(cleaned.bytesAfter).toBeLessThan(cleaned.bytesBefore);
    await log.closeForTest({ clean: false });
    return { dir: log.dir, latest, before, firstBase: sealed[0]!.baseOffset, cleanedBytes: cleaned.bytesAfter };
  }

  const suffixes = ['.index', '.timeindex', '.log'];

  it('discards .cleaned files: the segment is as it was', async () => {
    const { dir, before } = await crashedMidPass();
    expect(fs.readdirSync(dir).filter((name) => name.endsWith('.cleaned'))).toHaveLength(3);
    const log = await openLog({}, { dir });
    expect(fs.readdirSync(dir).filter((name) => name.endsWith('.cleaned') || name.endsWith('.swap'))).toEqual([]);
    expect(readAll(log)).toEqual(before);
  });

  it('completes a decided swap (.swap files, the .log among them): the cleaned segment replaces the old one', async () => {
    const { dir, latest, firstBase, cleanedBytes } = await crashedMidPass();
    for (const suffix of suffixes) {
      const path = join(dir, segmentFileName(firstBase, suffix));
      fs.renameSync(path + '.cleaned', path + '.swap');
    }
    const log = await openLog({}, { dir });
    expect(fs.readdirSync(dir).filter((name) => name.endsWith('.swap'))).toEqual([]);
    expect(fileBytes(dir, firstBase).length).toBe(cleanedBytes);
    expectLatest(log, latest);
  });

  it('completes a swap interrupted half-way (indexes renamed, the .log still .swap)', async () => {
    const { dir, latest, firstBase, cleanedBytes } = await crashedMidPass();
    for (const suffix of suffixes) {
      const path = join(dir, segmentFileName(firstBase, suffix));
      fs.renameSync(path + '.cleaned', suffix === '.log' ? path + '.swap' : path);
    }
    const log = await openLog({}, { dir });
    expect(fileBytes(dir, firstBase).length).toBe(cleanedBytes);
    expectLatest(log, latest);
    // Reads from every offset of the cleaned segment work (indexes match the cleaned .log).
    for (let offset = firstBase; offset < log.segmentBaseOffsets[1]!; offset++) expect(log.read(offset, 100_000).nextOffset).toBeGreaterThan(offset);
  });

  it('discards an undecided swap (index .swap files without the .log\'s)', async () => {
    const { dir, before, firstBase } = await crashedMidPass();
    for (const suffix of ['.index', '.timeindex']) {
      const path = join(dir, segmentFileName(firstBase, suffix));
      fs.renameSync(path + '.cleaned', path + '.swap');
    }
    const log = await openLog({}, { dir });
    expect(fs.readdirSync(dir).filter((name) => name.endsWith('.swap') || name.endsWith('.cleaned'))).toEqual([]);
    expect(readAll(log)).toEqual(before);
  });

  it('a batch emptied by the cleaner becomes an empty batch holding its offsets, so the segment still ends where it did', async () => {
    const log = await openLog();
    await writeVersions(log, 4, 20, 1);
    const firstEnd = log.segmentBaseOffsets[1]!;
    await log.clean(log.logEndOffset, { dedupeBufferBytes: BIG_BUFFER });
    const read = log.read(0, 1_000_000, { maxOffset: firstEnd });
    const headers = listBatches(read.records).map(({ position }) => readBatchHeader(read.records, position));
    expect(headers[0]!.baseOffset).toBe(0);
    expect(headers.some((header) => header.recordCount === 0)).toBe(true);
    for (let i = 1; i < headers.length; i++) expect(headers[i]!.baseOffset).toBe(headers[i - 1]!.baseOffset + headers[i - 1]!.lastOffsetDelta + 1);
    expect(read.nextOffset).toBe(firstEnd);
  });
});
