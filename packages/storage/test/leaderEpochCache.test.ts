// The leader-epoch cache (Kafka's LeaderEpochFileCache, KIP-101/KIP-279): the cache alone, and how
// PartitionLog keeps it (appends, truncation, retention, checkpoint persistence, crash recovery).
import fs from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { encodeRecordBatch, listBatches, type LogSettings } from '@runnel/common';
import { AssertionError, LEADER_EPOCH_CHECKPOINT_FILE, LeaderEpochCache, PartitionLog, formatCheckpoint, parseCheckpoint, segmentFileName } from '../src/index.js';
import { captureLogger, makeBatch, readAll, removeDir, tempDir, testSettings, type LogLine } from './helpers.js';

const dirs: string[] = [];
const logs: PartitionLog[] = [];

async function openLog(settings: Partial<LogSettings> = {}, options: { dir?: string; lines?: LogLine[] } = {}): Promise<PartitionLog> {
  const dir = options.dir ?? tempDir('epochs');
  if (!dirs.includes(dir)) dirs.push(dir);
  const captured = captureLogger();
  const log = await PartitionLog.open(dir, testSettings(settings), { logger: captured.logger });
  if (options.lines) options.lines.push(...captured.lines);
  logs.push(log);
  return log;
}

afterEach(async () => {
  for (const log of logs.splice(0)) await log.closeForTest({ clean: false });
  for (const dir of dirs.splice(0)) removeDir(dir);
  vi.restoreAllMocks();
});

const checkpointPath = (dir: string) => join(dir, LEADER_EPOCH_CHECKPOINT_FILE);
const checkpointText = (dir: string) => fs.readFileSync(checkpointPath(dir), 'utf8');

/** Leader appends: `count` batches of `records` records stamped with `epoch`. */
async function appendEpoch(log: PartitionLog, epoch: number, count: number, records = 2, valueBytes = 50): Promise<void> {
  for (let i = 0; i < count; i++) await log.append(makeBatch(i, { records, valueBytes }), { leaderEpoch: epoch });
}

/** A follower's batch: the leader's offsets and epoch. */
function leaderBatch(baseOffset: number, epoch: number, records = 2): Buffer {
  const values = Array.from({ length: records }, (_, i) => ({ value: Buffer.from(`o${baseOffset + i}e${epoch}`) }));
  return encodeRecordBatch(values, { baseOffset, partitionLeaderEpoch: epoch, now: 1_000_000 });
}

function expectAssertion(action: () => unknown): void {
  expect(action).toThrow(AssertionError);
}

describe('LeaderEpochCache', () => {
  const cache = () =>
    new LeaderEpochCache('/nonexistent', [
      { epoch: 1, startOffset: 0 },
      { epoch: 3, startOffset: 10 },
      { epoch: 4, startOffset: 25 },
    ]);

  it('endOffsetFor follows Kafka: exact epoch, between entries, above the latest, below the first, empty', () => {
    const c = cache();
    const logEnd = 40;
    expect(c.endOffsetFor(1, logEnd)).toEqual({ epoch: 1, endOffset: 10 }); // exact: the next epoch's start
    expect(c.endOffsetFor(3, logEnd)).toEqual({ epoch: 3, endOffset: 25 });
    expect(c.endOffsetFor(4, logEnd)).toEqual({ epoch: 4, endOffset: 40 }); // the latest ends at the log end
    expect(c.endOffsetFor(2, logEnd)).toEqual({ epoch: 1, endOffset: 10 }); // between: the largest epoch <= 2
    expect(c.endOffsetFor(9, logEnd)).toEqual({ epoch: 4, endOffset: 40 }); // above the latest
    expect(c.endOffsetFor(0, logEnd)).toEqual({ epoch: 0, endOffset: 0 }); // below the first: ends where the first starts
    expect(c.endOffsetFor(-1, logEnd)).toEqual({ epoch: -1, endOffset: -1 });
    expect(new LeaderEpochCache('/nonexistent').endOffsetFor(5, logEnd)).toEqual({ epoch: -1, endOffset: -1 }); // empty
  });

  it('assign adds only newer epochs and refuses a start offset that goes back', () => {
    const c = cache();
    expect(c.assign(4, 30)).toBe(false);
    expect(c.assign(2, 30)).toBe(false);
    expectAssertion(() => c.assign(5, 24));
    expect(c.assign(5, 25)).toBe(true);
    expect(c.latestEpoch).toBe(5);
    expect(c.latestEntry).toEqual({ epoch: 5, startOffset: 25 });
    expectAssertion(() => c.assign(-1, 30));
    expect(new LeaderEpochCache('/nonexistent').latestEpoch).toBe(-1);
  });

  it('truncateFromEnd drops entries starting at or after the offset', () => {
    const c = cache();
    expect(c.truncateFromEnd(40)).toBe(false);
    expect(c.truncateFromEnd(25)).toBe(true);
    expect(c.all()).toEqual([
      { epoch: 1, startOffset: 0 },
      { epoch: 3, startOffset: 10 },
    ]);
    expect(c.truncateFromEnd(0)).toBe(true);
    expect(c.isEmpty).toBe(true);
  });

  it('truncateFromStart keeps the epoch covering the new start, raised to it', () => {
    let c = cache();
    expect(c.truncateFromStart(0)).toBe(false);
    expect(c.truncateFromStart(12)).toBe(true);
    expect(c.all()).toEqual([
      { epoch: 3, startOffset: 12 },
      { epoch: 4, startOffset: 25 },
    ]);
    c = cache();
    expect(c.truncateFromStart(25)).toBe(true);
    expect(c.all()).toEqual([{ epoch: 4, startOffset: 25 }]);
    c = cache();
    expect(c.truncateFromStart(100)).toBe(true);
    expect(c.all()).toEqual([{ epoch: 4, startOffset: 100 }]);
    c = new LeaderEpochCache('/nonexistent', [{ epoch: 2, startOffset: 50 }]);
    expect(c.truncateFromStart(10)).toBe(false);
  });

  it('all() is a copy', () => {
    const c = cache();
    c.all()[0]!.epoch = 99;
    expect(c.all()[0]!.epoch).toBe(1);
  });

  it('reads and writes Kafka checkpoint text, refusing malformed files', () => {
    const entries = cache().all();
    expect(formatCheckpoint(entries)).toBe('0\n3\n1 0\n3 10\n4 25\n');
    expect(parseCheckpoint('0\n3\n1 0\n3 10\n4 25\n')).toEqual(entries);
    expect(parseCheckpoint('0\n0\n')).toEqual([]);
    expect(() => parseCheckpoint('')).toThrow();
    expect(() => parseCheckpoint('1\n0\n')).toThrow(/version/);
    expect(() => parseCheckpoint('0\n2\n1 0\n')).toThrow(/count/);
    expect(() => parseCheckpoint('0\n1\n1\n')).toThrow();
    expect(() => parseCheckpoint('0\n2\n3 0\n1 10\n')).toThrow(/does not follow/);
    expect(() => parseCheckpoint('0\n2\n1 10\n3 5\n')).toThrow(/does not follow/);
    expect(() => parseCheckpoint('0\n1\n1 -4\n')).toThrow();
    expect(() => parseCheckpoint('garbage')).toThrow();
  });
});

describe('PartitionLog leader epochs', () => {
  it('leader appends fill the cache with the first offset of each epoch; epoch -1 adds nothing', async () => {
    const log = await openLog();
    expect(log.latestEpoch).toBe(-1);
    expect(log.epochEntries()).toEqual([]);
    await log.append(makeBatch(0, { records: 3, valueBytes: 10 })); // no epoch: offsets 0..2
    expect(log.epochEntries()).toEqual([]);
    await appendEpoch(log, 2, 3); // 3..8
    await appendEpoch(log, 2, 1); // 9..10
    await log.append(Buffer.concat([makeBatch(0, { records: 2, valueBytes: 10 }), makeBatch(1, { records: 2, valueBytes: 10 })]), { leaderEpoch: 5 }); // 11..14
    expect(log.epochEntries()).toEqual([
      { epoch: 2, startOffset: 3 },
      { epoch: 5, startOffset: 11 },
    ]);
    expect(log.latestEpoch).toBe(5);
    expect(checkpointText(log.dir)).toBe('0\n2\n2 3\n5 11\n');
    expect(log.endOffsetForEpoch(2)).toEqual({ epoch: 2, endOffset: 11 });
    expect(log.endOffsetForEpoch(4)).toEqual({ epoch: 2, endOffset: 11 });
    expect(log.endOffsetForEpoch(5)).toEqual({ epoch: 5, endOffset: 15 });
    expect(log.endOffsetForEpoch(6)).toEqual({ epoch: 5, endOffset: 15 });
    expect(log.endOffsetForEpoch(1)).toEqual({ epoch: 1, endOffset: 3 });
    // an older epoch after a newer one adds nothing
    await appendEpoch(log, 3, 1);
    expect(log.latestEpoch).toBe(5);
  });

  it('writes the checkpoint only when an entry is added or removed', async () => {
    const log = await openLog({ segmentBytes: 2000 });
    const rename = vi.spyOn(fs, 'renameSync');
    const checkpointWrites = () => rename.mock.calls.filter(([, to]) => String(to).endsWith(LEADER_EPOCH_CHECKPOINT_FILE)).length;
    await appendEpoch(log, 1, 30); // rolls segments too
    expect(log.segmentCount).toBeGreaterThan(1);
    expect(checkpointWrites()).toBe(1);
    await appendEpoch(log, 2, 10);
    expect(checkpointWrites()).toBe(2);
    log.assignEpochStartOffset(2, log.logEndOffset); // no-op
    expect(checkpointWrites()).toBe(2);
    log.truncateTo(log.logEndOffset + 5); // nothing to drop
    expect(checkpointWrites()).toBe(2);
  });

  it('assignEpochStartOffset records a new leader epoch at the log end; later appends of it add nothing', async () => {
    const log = await openLog();
    await appendEpoch(log, 1, 2); // 0..3
    log.assignEpochStartOffset(4, 4);
    expect(log.epochEntries()).toEqual([
      { epoch: 1, startOffset: 0 },
      { epoch: 4, startOffset: 4 },
    ]);
    expect(checkpointText(log.dir)).toBe('0\n2\n1 0\n4 4\n');
    expect(log.endOffsetForEpoch(1)).toEqual({ epoch: 1, endOffset: 4 });
    log.assignEpochStartOffset(4, 4); // same epoch: no-op
    log.assignEpochStartOffset(3, 4); // older: no-op
    expect(log.epochEntries()).toHaveLength(2);
    await appendEpoch(log, 4, 2);
    expect(log.epochEntries()).toEqual([
      { epoch: 1, startOffset: 0 },
      { epoch: 4, startOffset: 4 },
    ]);
    expectAssertion(() => log.assignEpochStartOffset(5, 3)); // before the latest start
    expectAssertion(() => log.assignEpochStartOffset(5, log.logEndOffset + 1)); // past the log end
    expect(log.latestEpoch).toBe(4);
  });

  it('follower appends keep the batches epochs and fill the cache', async () => {
    const log = await openLog();
    const leaderLog = Buffer.concat([leaderBatch(0, 2), leaderBatch(2, 2, 3), leaderBatch(5, -1), leaderBatch(7, 5), leaderBatch(9, 7, 1)]);
    await log.append(leaderLog.subarray(0, leaderBatch(0, 2).length * 1), { assignOffsets: false });
    await log.append(leaderLog.subarray(leaderBatch(0, 2).length), { assignOffsets: false });
    expect(log.logEndOffset).toBe(10);
    const stored = listBatches(log.read(0, 1 << 20).records).map((b) => [b.header.baseOffset, b.header.partitionLeaderEpoch]);
    expect(stored).toEqual([
      [0, 2],
      [2, 2],
      [5, -1],
      [7, 5],
      [9, 7],
    ]);
    expect(log.epochEntries()).toEqual([
      { epoch: 2, startOffset: 0 },
      { epoch: 5, startOffset: 7 },
      { epoch: 7, startOffset: 9 },
    ]);
    expect(log.endOffsetForEpoch(6)).toEqual({ epoch: 5, endOffset: 9 });
    expect(readAll(log).map((r) => r.value?.toString())).toContain('o9e7');
  });

  it('persists across a clean reopen', async () => {
    const log = await openLog({ segmentBytes: 1500 });
    await appendEpoch(log, 0, 5);
    await appendEpoch(log, 3, 10);
    await appendEpoch(log, 8, 5);
    const entries = log.epochEntries();
    expect(entries.map((e) => e.epoch)).toEqual([0, 3, 8]);
    await log.close();
    const reopened = await openLog({ segmentBytes: 1500 }, { dir: log.dir });
    expect(reopened.epochEntries()).toEqual(entries);
    expect(reopened.endOffsetForEpoch(8)).toEqual({ epoch: 8, endOffset: reopened.logEndOffset });
  });

  it('rebuilds a deleted or corrupt checkpoint from every segment, with a warning', async () => {
    const log = await openLog({ segmentBytes: 1000 });
    await appendEpoch(log, 1, 6);
    await appendEpoch(log, 2, 6);
    await log.append(makeBatch(0, { records: 1, valueBytes: 10 })); // epoch -1
    await appendEpoch(log, 6, 6);
    expect(log.segmentCount).toBeGreaterThan(3);
    const entries = log.epochEntries();
    expect(entries.map((e) => e.epoch)).toEqual([1, 2, 6]);
    await log.close();

    fs.rmSync(checkpointPath(log.dir));
    const lines: LogLine[] = [];
    let reopened = await openLog({ segmentBytes: 1000 }, { dir: log.dir, lines });
    expect(reopened.epochEntries()).toEqual(entries);
    expect(checkpointText(log.dir)).toBe(formatCheckpoint(entries));
    expect(lines.some((l) => l.level === 'warn' && /leader-epoch checkpoint/.test(l.message))).toBe(true);
    await reopened.close();

    for (const corrupt of ['0\n5\n1 0\n', 'not a checkpoint', '0\n2\n2 10\n1 20\n', '']) {
      fs.writeFileSync(checkpointPath(log.dir), corrupt);
      const warnings: LogLine[] = [];
      reopened = await openLog({ segmentBytes: 1000 }, { dir: log.dir, lines: warnings });
      expect(reopened.epochEntries()).toEqual(entries);
      expect(warnings.some((l) => l.level === 'warn' && /rebuilt/.test(l.message))).toBe(true);
      await reopened.close();
    }
  });

  it('a new empty log gets an empty checkpoint without a warning', async () => {
    const lines: LogLine[] = [];
    const log = await openLog({}, { lines });
    expect(checkpointText(log.dir)).toBe('0\n0\n');
    expect(lines.filter((l) => l.level === 'warn')).toEqual([]);
  });

  it('truncateTo drops the epochs starting at or after the new end, and that survives reopen', async () => {
    const log = await openLog({ segmentBytes: 1000 });
    await appendEpoch(log, 1, 5); // 0..9
    await appendEpoch(log, 2, 5); // 10..19
    await appendEpoch(log, 3, 5); // 20..29
    log.truncateTo(20);
    expect(log.epochEntries()).toEqual([
      { epoch: 1, startOffset: 0 },
      { epoch: 2, startOffset: 10 },
    ]);
    expect(log.endOffsetForEpoch(3)).toEqual({ epoch: 2, endOffset: 20 });
    // 11 is inside the batch 10..11, which goes whole: the log ends at 10 and epoch 2 has no data left
    log.truncateTo(11);
    expect(log.logEndOffset).toBe(10);
    expect(log.epochEntries()).toEqual([{ epoch: 1, startOffset: 0 }]);
    expect(checkpointText(log.dir)).toBe('0\n1\n1 0\n');
    await appendEpoch(log, 4, 1);
    expect(log.epochEntries()).toEqual([
      { epoch: 1, startOffset: 0 },
      { epoch: 4, startOffset: 10 },
    ]);
    // an epoch assigned at the log end and never written goes with truncateTo(logEnd)
    log.assignEpochStartOffset(5, log.logEndOffset);
    log.truncateTo(log.logEndOffset);
    expect(log.latestEpoch).toBe(4);
    await log.close();
    const reopened = await openLog({ segmentBytes: 1000 }, { dir: log.dir });
    expect(reopened.epochEntries()).toEqual([
      { epoch: 1, startOffset: 0 },
      { epoch: 4, startOffset: 10 },
    ]);
  });

  it('truncateFullyAndStartAt clears the cache', async () => {
    const log = await openLog();
    await appendEpoch(log, 1, 3);
    await appendEpoch(log, 2, 3);
    log.truncateFullyAndStartAt(100);
    expect(log.epochEntries()).toEqual([]);
    expect(log.latestEpoch).toBe(-1);
    expect(log.endOffsetForEpoch(2)).toEqual({ epoch: -1, endOffset: -1 });
    expect(checkpointText(log.dir)).toBe('0\n0\n');
    await log.append(leaderBatch(100, 3), { assignOffsets: false });
    expect(log.epochEntries()).toEqual([{ epoch: 3, startOffset: 100 }]);
    // truncateTo below the log start truncates fully
    log.truncateTo(50);
    expect(log.epochEntries()).toEqual([]);
    await log.close();
    const reopened = await openLog({}, { dir: log.dir });
    expect(reopened.epochEntries()).toEqual([]);
  });

  it('retention drops epochs wholly below the new log start and raises the one covering it', async () => {
    const log = await openLog({ segmentBytes: 700 });
    await appendEpoch(log, 1, 6, 1, 150);
    await appendEpoch(log, 2, 6, 1, 150);
    await appendEpoch(log, 3, 6, 1, 150);
    expect(log.epochEntries()).toEqual([
      { epoch: 1, startOffset: 0 },
      { epoch: 2, startOffset: 6 },
      { epoch: 3, startOffset: 12 },
    ]);
    const bases = log.segmentBaseOffsets;
    const newStart = bases.find((base) => base > 6 && base < 12)!;
    expect(newStart).toBeDefined();
    // keep everything from newStart: retention.bytes = the size of those segments
    const keepSegments = bases.length - bases.indexOf(newStart);
    const sizeFrom = fs
      .readdirSync(log.dir)
      .filter((n) => n.endsWith('.log') && Number(n.slice(0, 20)) >= newStart)
      .reduce((total, n) => total + fs.statSync(join(log.dir, n)).size, 0);
    log.updateSettings(testSettings({ segmentBytes: 700, retentionBytes: sizeFrom }));
    await log.deleteRetainedSegments(log.logEndOffset);
    expect(log.segmentCount).toBe(keepSegments);
    expect(log.logStartOffset).toBe(newStart);
    expect(log.epochEntries()).toEqual([
      { epoch: 2, startOffset: newStart },
      { epoch: 3, startOffset: 12 },
    ]);
    expect(checkpointText(log.dir)).toBe(`0\n2\n2 ${newStart}\n3 12\n`);
    expect(log.endOffsetForEpoch(1)).toEqual({ epoch: 1, endOffset: newStart });
    await log.close();
    const reopened = await openLog({ segmentBytes: 700 }, { dir: log.dir });
    expect(reopened.epochEntries()).toEqual([
      { epoch: 2, startOffset: newStart },
      { epoch: 3, startOffset: 12 },
    ]);
  });

  it('after a crash, adds the epochs of batches an older checkpoint copy lacks', async () => {
    const log = await openLog();
    await appendEpoch(log, 1, 3); // 0..5
    await appendEpoch(log, 2, 3); // 6..11
    const older = checkpointText(log.dir);
    await appendEpoch(log, 4, 2); // 12..15
    await log.append(leaderBatch(16, 6), { assignOffsets: false });
    await log.closeForTest({ clean: false });
    fs.writeFileSync(checkpointPath(log.dir), older); // as if the process died before the checkpoint write
    const reopened = await openLog({}, { dir: log.dir });
    expect(reopened.logEndOffset).toBe(18);
    expect(reopened.epochEntries()).toEqual([
      { epoch: 1, startOffset: 0 },
      { epoch: 2, startOffset: 6 },
      { epoch: 4, startOffset: 12 },
      { epoch: 6, startOffset: 16 },
    ]);
    expect(checkpointText(log.dir)).toBe('0\n4\n1 0\n2 6\n4 12\n6 16\n');
  });

  it('after a clean close, an older checkpoint copy is still completed (the last batch has a newer epoch)', async () => {
    const log = await openLog({ segmentBytes: 1000 });
    await appendEpoch(log, 1, 5);
    const older = checkpointText(log.dir);
    await appendEpoch(log, 2, 10);
    await appendEpoch(log, 3, 5);
    const entries = log.epochEntries();
    await log.close();
    fs.writeFileSync(checkpointPath(log.dir), older);
    const reopened = await openLog({ segmentBytes: 1000 }, { dir: log.dir });
    expect(reopened.epochEntries()).toEqual(entries);
  });

  it('after a crash that cut the tail, drops the epochs that started in it', async () => {
    const log = await openLog();
    await appendEpoch(log, 1, 3); // 0..5
    await appendEpoch(log, 2, 1); // 6..7, the last batch
    expect(log.latestEpoch).toBe(2);
    await log.closeForTest({ clean: false });
    const segment = join(log.dir, segmentFileName(0, '.log'));
    fs.truncateSync(segment, fs.statSync(segment).size - 5); // tear the last batch
    const reopened = await openLog({}, { dir: log.dir });
    expect(reopened.logEndOffset).toBe(6);
    expect(reopened.epochEntries()).toEqual([{ epoch: 1, startOffset: 0 }]);
    expect(checkpointText(log.dir)).toBe('0\n1\n1 0\n');
  });

  it('an epoch assigned at the log end and never written does not survive a reopen (Kafka drops it too)', async () => {
    const log = await openLog();
    await appendEpoch(log, 1, 2);
    log.assignEpochStartOffset(3, log.logEndOffset);
    await log.close();
    const reopened = await openLog({}, { dir: log.dir });
    expect(reopened.epochEntries()).toEqual([{ epoch: 1, startOffset: 0 }]);
  });

  it('a clean reopen does not scan the log for epochs', async () => {
    const log = await openLog({ segmentBytes: 1000 });
    await appendEpoch(log, 1, 20);
    await appendEpoch(log, 2, 20);
    await log.close();
    const open = vi.spyOn(fs, 'openSync');
    const reopened = await openLog({ segmentBytes: 1000 }, { dir: log.dir });
    // one read-only open to peek at the last batch's epoch; no scan of the other segments
    const readOnlyLogOpens = open.mock.calls.filter(([path, flags]) => String(path).endsWith('.log') && flags === 'r');
    expect(readOnlyLogOpens).toHaveLength(1);
    expect(reopened.latestEpoch).toBe(2);
  });
});
