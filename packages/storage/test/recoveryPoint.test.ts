// A rolled segment is synced in the background, not on the append that rolled it; the recovery
// point records how far the log is known durable, and after a crash recovery validates every
// segment from there on, not only the active one.
import fs from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PartitionLog } from '../src/index.js';
import { RECOVERY_POINT_FILE, segmentFileName } from '../src/files.js';
import { captureLogger, makeBatch, readAll, removeDir, tempDir, testSettings } from './helpers.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) removeDir(dir);
});

async function logWithSegments(batches: number): Promise<{ dir: string; log: PartitionLog }> {
  const dir = tempDir('recovery-point');
  dirs.push(dir);
  const log = await PartitionLog.open(dir, testSettings({ segmentBytes: 4096 }), { logger: captureLogger().logger });
  for (let i = 0; i < batches; i++) await log.append(makeBatch(i, { records: 4, valueBytes: 100 }));
  return { dir, log };
}

const recoveryPoint = (dir: string) => Number(fs.readFileSync(join(dir, RECOVERY_POINT_FILE), 'utf8'));

describe('recovery point', () => {
  it('moves to the active segment once the sealed ones are synced', async () => {
    const { dir, log } = await logWithSegments(40);
    expect(log.segmentCount).toBeGreaterThan(3);
    await log.flush();
    const active = log.segmentBaseOffsets.at(-1)!;
    expect(recoveryPoint(dir)).toBe(active);
    await log.close();
    expect(recoveryPoint(dir)).toBe(active);
  });

  it('after a crash, validates sealed segments from the recovery point and cuts at the first damage', async () => {
    const { dir, log } = await logWithSegments(40);
    await log.flush();
    const bases = log.segmentBaseOffsets;
    const expected = readAll(log);
    await log.closeForTest({ clean: false });
    // As if the machine crashed before the background syncs finished: the recovery point is
    // still at the second segment, and the third one lost a byte in the middle.
    fs.writeFileSync(join(dir, RECOVERY_POINT_FILE), `${bases[1]}\n`);
    const damaged = join(dir, segmentFileName(bases[2]!, '.log'));
    const bytes = fs.readFileSync(damaged);
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    fs.writeFileSync(damaged, bytes);

    const reopened = await PartitionLog.open(dir, testSettings({ segmentBytes: 4096 }), { logger: captureLogger().logger });
    const survivors = readAll(reopened);
    expect(reopened.logEndOffset).toBeGreaterThanOrEqual(bases[2]!);
    expect(reopened.logEndOffset).toBeLessThan(bases[3]!);
    expect(reopened.segmentBaseOffsets).toEqual(bases.slice(0, 3));
    expect(survivors.map((r) => r.value)).toEqual(expected.slice(0, survivors.length).map((r) => r.value));
    // The recovered log takes appends again, from its new end.
    const result = await reopened.append(makeBatch(99, { records: 2, valueBytes: 10 }));
    expect(result.firstOffset).toBe(survivors.length);
    await reopened.close();
  });

  it('without a recovery point file, a crash validates every segment', async () => {
    const { dir, log } = await logWithSegments(40);
    const bases = log.segmentBaseOffsets;
    await log.closeForTest({ clean: false });
    fs.rmSync(join(dir, RECOVERY_POINT_FILE), { force: true });
    const first = join(dir, segmentFileName(bases[0]!, '.log'));
    fs.truncateSync(first, fs.statSync(first).size - 7);
    const reopened = await PartitionLog.open(dir, testSettings({ segmentBytes: 4096 }), { logger: captureLogger().logger });
    expect(reopened.segmentBaseOffsets).toEqual([bases[0]]);
    expect(reopened.logEndOffset).toBeLessThan(bases[1]!);
    await reopened.close();
  });
});
