// A child process appends in a loop and prints each acknowledged offset range; it is killed with
// SIGKILL mid-append. Reopening must find every acknowledged record, a valid log, and appends
// that continue. The child runs the BUILT package (dist/), as a broker would.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { decodeRecords, listBatches, validateBatch } from '@runnel/common';
import { PartitionLog } from '../src/index.js';
import { buildStoragePackage, captureLogger, removeDir, tempDir, testSettings } from './helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
const fixture = join(here, 'fixtures', 'append-loop.mjs');
const builtEntry = join(here, '..', 'dist', 'index.js');
const ROUNDS = 4;

function valueFor(offset: number): Buffer {
  return Buffer.from(`value-${offset}-`.padEnd(40 + (offset % 50), 'x'));
}

/** Runs the child until `killAfterMs` past its first acknowledgement, SIGKILLs it, returns what it acknowledged. */
function runAndKill(dir: string, args: string[], killAfterMs: number): Promise<{ start: number; acked: Array<[number, number]> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fixture, dir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let errors = '';
    let timer: NodeJS.Timeout | null = null;
    const guard = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (timer === null && /\n\d+ \d+\n/.test(output)) timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    });
    child.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(guard);
      if (timer !== null) clearTimeout(timer);
      if (signal !== 'SIGKILL') return reject(new Error(`child exited with ${code}/${signal}: ${errors}`));
      // Only whole lines were acknowledged: a line cut by the kill is ignored.
      const lines = output.split('\n').slice(0, -1);
      const start = Number(lines[0]!.split(' ')[1]);
      const acked = lines.slice(1).map((line) => line.split(' ').map(Number) as [number, number]);
      resolve({ start, acked });
    });
  });
}

describe('SIGKILL during appends', () => {
  it('keeps every acknowledged record and recovers a valid log', async () => {
    buildStoragePackage();
    expect(fs.existsSync(builtEntry), `${builtEntry} is missing after the build`).toBe(true);
    const dir = tempDir('sigkill');
    try {
      let previousEnd = 0;
      let totalAcked = 0;
      for (let round = 0; round < ROUNDS; round++) {
        // Alternate fsync-every-append with no fsync: SIGKILL keeps the page cache either way.
        const args = [round % 2 === 0 ? '1' : '1000000', String(16 * 1024 + round * 7000), String(1 + (round % 3) * 8)];
        const { start, acked } = await runAndKill(dir, args, 150 + Math.floor(Math.random() * 400));
        expect(start).toBe(previousEnd);
        expect(acked.length).toBeGreaterThan(0);
        totalAcked += acked.length;

        const { logger, lines } = captureLogger();
        const log = await PartitionLog.open(dir, testSettings({ segmentBytes: Number(args[1]), indexIntervalBytes: 512 }), { logger });
        try {
          const maxAcked = Math.max(...acked.map(([, last]) => last));
          expect(log.logEndOffset).toBeGreaterThan(maxAcked);
          // The whole log is valid: every batch passes validation, offsets are dense, values match.
          let offset = 0;
          for (let reads = 0; offset < log.logEndOffset; reads++) {
            expect(reads).toBeLessThan(1_000_000);
            const result = log.read(offset, 256 * 1024);
            for (const { position } of listBatches(result.records)) {
              const header = validateBatch(result.records, position);
              expect(header.baseOffset).toBe(offset);
              for (const record of decodeRecords(result.records.subarray(position))) {
                expect(record.offset).toBe(offset);
                expect(record.value).toEqual(valueFor(offset));
                offset++;
              }
            }
            expect(result.nextOffset).toBe(offset);
          }
          for (const [first, last] of acked) expect(last).toBeLessThan(log.logEndOffset), expect(first).toBeLessThanOrEqual(last);
          expect(lines.filter((line) => line.level === 'error')).toEqual([]);
          // Appends continue at the log end (the next round's child also continues from it).
          const end = log.logEndOffset;
          const { encodeRecordBatch } = await import('@runnel/common');
          const appended = await log.append(encodeRecordBatch([{ value: valueFor(end), timestamp: 1 }]));
          expect(appended.firstOffset).toBe(end);
          previousEnd = end + 1;
        } finally {
          await log.close();
        }
      }
      expect(totalAcked).toBeGreaterThan(ROUNDS);
    } finally {
      removeDir(dir);
    }
  }, 120_000);
});
