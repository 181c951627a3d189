// Crash recovery as a property: random appends, a crash (no clean-shutdown marker, pending index
// entries lost), then damage to the last segment (cut and/or a flipped byte) and to any index.
// After reopening, the log must be exactly the prefix of what was appended that ends before the
// damage, with indexes that answer exactly as intact ones do.
import fs from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { batchSize, listBatches, type LogSettings } from '@runnel/common';
import { PartitionLog } from '../src/index.js';
import { captureLogger, makeBatch, readAll, recordValue, removeDir, segmentFiles, tempDir, testSettings } from './helpers.js';

const NUM_RUNS = Number(process.env.STORAGE_PROPERTY_RUNS ?? 100);
/** partitionLeaderEpoch: the only batch bytes covered neither by the CRC nor by the offset chain. */
const EPOCH_FIELD = { from: 12, to: 16 };

type IndexDamage = 'none' | 'delete' | 'partial-entry' | 'garbage' | 'empty';

const scenario = fc.record({
  batches: fc.array(fc.record({ records: fc.integer({ min: 1, max: 6 }), valueBytes: fc.integer({ min: 0, max: 300 }), timestampJitter: fc.integer({ min: -40, max: 40 }) }), { minLength: 1, maxLength: 45 }),
  segmentBytes: fc.integer({ min: 2200, max: 6000 }), // a batch here is at most ~2.1 KB
  indexIntervalBytes: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 3000 })),
  cutAt: fc.option(fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), { nil: undefined }),
  flipAt: fc.option(fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), { nil: undefined }),
  flipMask: fc.integer({ min: 1, max: 255 }),
  indexDamage: fc.array(fc.constantFrom<IndexDamage>('none', 'none', 'delete', 'partial-entry', 'garbage', 'empty'), { minLength: 40, maxLength: 40 }),
  extraRecords: fc.integer({ min: 1, max: 5 }),
});
type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

interface Appended {
  offset: number;
  batchIndex: number;
  recordIndex: number;
  valueBytes: number;
  timestamp: number;
}

async function appendScenario(dir: string, settings: LogSettings, input: Scenario): Promise<Appended[]> {
  const log = await PartitionLog.open(dir, settings, { logger: captureLogger().logger });
  const appended: Appended[] = [];
  for (const [batchIndex, spec] of input.batches.entries()) {
    const timestamps = Array.from({ length: spec.records }, (_, r) => 1_000_000 + batchIndex * 50 + spec.timestampJitter + r);
    const result = await log.append(makeBatch(batchIndex, { ...spec, timestamps }));
    for (let r = 0; r < spec.records; r++) appended.push({ offset: result.firstOffset + r, batchIndex, recordIndex: r, valueBytes: spec.valueBytes, timestamp: timestamps[r]! });
  }
  await log.closeForTest({ clean: false });
  return appended;
}

/** Cuts and/or flips a byte in the last .log; returns how many records of it must survive. */
function damageLastSegment(dir: string, input: Scenario): { lastBase: number; survivingInLast: number } {
  const logs = segmentFiles(dir, '.log');
  const lastName = logs[logs.length - 1]!;
  const lastBase = Number(lastName.slice(0, 20));
  const path = join(dir, lastName);
  const bytes = fs.readFileSync(path);
  const batches = listBatches(bytes);
  let damageAt = bytes.length;
  let data = bytes;
  if (input.flipAt !== undefined && bytes.length > 0) {
    const position = Math.floor(input.flipAt * bytes.length);
    data = Buffer.from(bytes);
    data[position]! ^= input.flipMask;
    const hit = batches.find((b) => position >= b.position && position < b.position + batchSize(b.header))!;
    const inEpoch = position - hit.position >= EPOCH_FIELD.from && position - hit.position < EPOCH_FIELD.to;
    if (!inEpoch) damageAt = Math.min(damageAt, position);
  }
  if (input.cutAt !== undefined) {
    const cut = Math.floor(input.cutAt * bytes.length);
    data = data.subarray(0, cut);
    damageAt = Math.min(damageAt, cut);
  }
  fs.writeFileSync(path, data);
  // A batch survives only if it ends before the damage (and so does every batch before it).
  let survivingInLast = 0;
  for (const { position, header } of batches) {
    if (position + batchSize(header) > damageAt) break;
    survivingInLast += header.lastOffsetDelta + 1;
  }
  return { lastBase, survivingInLast };
}

function damageIndexes(dir: string, damage: IndexDamage[], seed: number): void {
  const files = [...segmentFiles(dir, '.index'), ...segmentFiles(dir, '.timeindex')];
  for (const [i, name] of files.entries()) {
    const kind = damage[i % damage.length]!;
    const path = join(dir, name);
    if (kind === 'delete') fs.rmSync(path);
    if (kind === 'empty') fs.writeFileSync(path, Buffer.alloc(0));
    if (kind === 'partial-entry') fs.appendFileSync(path, Buffer.from([7, 7, 7]));
    if (kind === 'garbage') {
      const size = fs.statSync(path).size;
      const garbage = Buffer.alloc(Math.max(size, 24), (seed + i) & 0xff);
      garbage.writeInt32BE(0x7fff0000, 0);
      fs.writeFileSync(path, garbage);
    }
  }
}

/** Everything a reader can observe of a log, to compare two recoveries. */
function observe(log: PartitionLog, appended: Appended[]): unknown {
  const reads: string[] = [];
  for (let offset = log.logStartOffset; offset < log.logEndOffset; offset++) {
    const result = log.read(offset, 1);
    reads.push(`${offset}:${result.records.length}:${result.nextOffset}`);
  }
  const timestamps = appended.map((a) => a.timestamp);
  const lookups = [...new Set([Math.min(...timestamps) - 1, ...timestamps, Math.max(...timestamps) + 1])].map((t) => log.offsetForTimestamp(t));
  return { start: log.logStartOffset, end: log.logEndOffset, size: log.sizeInBytes, segments: log.segmentBaseOffsets, reads, lookups };
}

async function checkScenario(input: Scenario): Promise<void> {
  const settings = testSettings({ segmentBytes: input.segmentBytes, indexIntervalBytes: input.indexIntervalBytes });
  const dir = tempDir('prop');
  const indexDamagedDir = `${dir}-idx`;
  try {
    const appended = await appendScenario(dir, settings, input);
    const { lastBase, survivingInLast } = damageLastSegment(dir, input);
    fs.cpSync(dir, indexDamagedDir, { recursive: true });
    damageIndexes(indexDamagedDir, input.indexDamage, input.flipMask);

    const log = await PartitionLog.open(dir, settings, { logger: captureLogger().logger });
    const other = await PartitionLog.open(indexDamagedDir, settings, { logger: captureLogger().logger });
    try {
      // Exactly the prefix that ends before the damage point.
      const expectedEnd = lastBase + survivingInLast;
      expect(log.logEndOffset).toBe(expectedEnd);
      expect(log.logStartOffset).toBe(0);
      const records = readAll(log, 0, 777);
      expect(records.map((r) => r.offset)).toEqual(Array.from({ length: expectedEnd }, (_, i) => i));
      for (const record of records) {
        const source = appended[record.offset]!;
        expect(record.value).toEqual(recordValue(source.batchIndex, source.recordIndex, source.valueBytes));
        expect(record.timestamp).toBe(source.timestamp);
      }
      // Rebuilt indexes answer exactly as loaded ones, and the exact timestamp lookups hold.
      const surviving = appended.slice(0, expectedEnd);
      expect(observe(other, appended)).toEqual(observe(log, appended));
      for (const target of surviving.map((a) => a.timestamp)) {
        const expected = surviving.find((a) => a.timestamp >= target)!;
        expect(log.offsetForTimestamp(target)).toEqual({ offset: expected.offset, timestamp: expected.timestamp });
      }
      // Appends continue at the log end.
      for (const subject of [log, other]) {
        const result = await subject.append(makeBatch(9999, { records: input.extraRecords, valueBytes: 10 }));
        expect(result.firstOffset).toBe(expectedEnd);
        expect(readAll(subject, expectedEnd).map((r) => r.value)).toEqual(Array.from({ length: input.extraRecords }, (_, r) => recordValue(9999, r, 10)));
      }
      await log.close();
      await other.close();
      // After a clean close both directories hold the same indexes, byte for byte.
      for (const suffix of ['.index', '.timeindex']) {
        const names = segmentFiles(dir, suffix);
        expect(segmentFiles(indexDamagedDir, suffix)).toEqual(names);
        for (const name of names) expect(fs.readFileSync(join(indexDamagedDir, name))).toEqual(fs.readFileSync(join(dir, name)));
      }
      // And a clean reopen sees the same log.
      const again = await PartitionLog.open(indexDamagedDir, settings, { logger: captureLogger().logger });
      expect(again.logEndOffset).toBe(expectedEnd + input.extraRecords);
      await again.close();
    } finally {
      await log.closeForTest({ clean: false });
      await other.closeForTest({ clean: false });
    }
  } finally {
    removeDir(dir);
    removeDir(indexDamagedDir);
  }
}

describe('crash recovery (property)', () => {
  it('recovers exactly the undamaged prefix, with indexes rebuilt identically', async () => {
    await fc.assert(fc.asyncProperty(scenario, checkScenario), { numRuns: NUM_RUNS });
  });

  it('recovers a log that was cut at every byte of one small segment', async () => {
    const input: Scenario = {
      batches: Array.from({ length: 6 }, (_, i) => ({ records: (i % 3) + 1, valueBytes: 20 + i, timestampJitter: 0 })),
      segmentBytes: 100_000,
      indexIntervalBytes: 64,
      cutAt: 0,
      flipAt: undefined,
      flipMask: 1,
      indexDamage: Array.from({ length: 40 }, () => 'none' as const),
      extraRecords: 1,
    };
    const dir = tempDir('cut');
    const size = (await appendScenario(dir, testSettings({ segmentBytes: 100_000, indexIntervalBytes: 64 }), input), fs.statSync(join(dir, segmentFiles(dir, '.log')[0]!)).size);
    removeDir(dir);
    for (let cut = 0; cut <= size; cut += 7) await checkScenario({ ...input, cutAt: cut / (size + 1) });
  });
});
