import fs from 'node:fs';
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeRecords, encodeRecordBatch, listBatches, type DecodedRecord, type LogSettings, type Logger } from '@runnel/common';
import { PartitionLog } from '../src/index.js';

export function testSettings(overrides: Partial<LogSettings> = {}): LogSettings {
  return {
    segmentBytes: 1024 * 1024,
    segmentMs: 7 * 24 * 3_600_000,
    retentionMs: -1,
    retentionBytes: -1,
    flushMessages: Number.MAX_SAFE_INTEGER,
    flushMs: null,
    indexIntervalBytes: 4096,
    maxMessageBytes: 1024 * 1024,
    minInsyncReplicas: 1,
    fileDeleteDelayMs: 60_000,
    cleanupPolicy: { compact: false, delete: true },
    deleteRetentionMs: 86_400_000,
    minCleanableDirtyRatio: 0.5,
    minCompactionLagMs: 0,
    ...overrides,
  };
}

export function tempDir(label: string): string {
  return fs.mkdtempSync(join(os.tmpdir(), `runnel-storage-${label}-`));
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/** The value of record `recordIndex` in batch `batchIndex`: recognisable and of a chosen size. */
export function recordValue(batchIndex: number, recordIndex: number, valueBytes: number): Buffer {
  const label = Buffer.from(`b${batchIndex}r${recordIndex};`);
  const value = Buffer.alloc(Math.max(valueBytes, label.length), (batchIndex * 31 + recordIndex) & 0xff);
  label.copy(value);
  return value;
}

export interface BatchSpec {
  records: number;
  valueBytes: number;
  /** Timestamp of each record; defaults to 1_000_000 + batchIndex. */
  timestamps?: number[];
}

export function makeBatch(batchIndex: number, spec: BatchSpec): Buffer {
  const records = [];
  for (let r = 0; r < spec.records; r++) {
    records.push({
      key: Buffer.from(`k${batchIndex}-${r}`),
      value: recordValue(batchIndex, r, spec.valueBytes),
      timestamp: spec.timestamps?.[r] ?? 1_000_000 + batchIndex,
    });
  }
  return encodeRecordBatch(records, { now: 1_000_000 });
}

/** Every record from `from` to the log end, decoded, reading with `maxBytes` per call. */
export function readAll(log: PartitionLog, from = log.logStartOffset, maxBytes = 64 * 1024): DecodedRecord[] {
  const records: DecodedRecord[] = [];
  let offset = from;
  for (let reads = 0; offset < log.logEndOffset; reads++) {
    if (reads > 1_000_000) throw new Error('readAll: no progress');
    const result = log.read(offset, maxBytes);
    if (result.records.length === 0) throw new Error(`readAll: empty read at ${offset} below ${log.logEndOffset}`);
    for (const { position } of listBatches(result.records)) {
      for (const record of decodeRecords(result.records.subarray(position))) {
        if (record.offset >= offset) records.push(record);
      }
    }
    offset = result.nextOffset;
  }
  return records;
}

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  fields: Record<string, unknown>;
  message: string;
}

/** A Logger that remembers what it was told (only the methods storage uses). */
export function captureLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: LogLine['level']) => (fields: Record<string, unknown>, message: string) => {
    lines.push({ level, fields, message });
  };
  const logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } as unknown as Logger;
  return { logger, lines };
}

export function segmentFiles(dir: string, suffix: string): string[] {
  return fs.readdirSync(dir).filter((name) => name.endsWith(suffix)).sort();
}

/** Brings dist/ up to date (a no-op when it is): a child process that runs the built package must run the code under test. */
export function buildStoragePackage(): void {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
  const result = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-b', 'packages/storage'], { cwd: root, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`tsc -b packages/storage failed:\n${result.stdout}${result.stderr}`);
}
