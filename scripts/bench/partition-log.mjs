#!/usr/bin/env node
// Benchmark of PartitionLog alone (no network): append throughput, then a sequential read of the
// whole log. Batches are encoded before the clock starts: encoding is the producer's cost.
//
//   node scripts/bench/partition-log.mjs [--records 1000000] [--record-size 1024] [--batch-bytes 16384]
//        [--batches-per-append 1] [--in-flight 1] [--dir /tmp/...] [--fsync] [--keep] [--json]
//
// --fsync sets flushMessages=1 (every append waits for fdatasync; concurrent appends share one).
// --in-flight N keeps N appends outstanding (what a broker with many producers does).
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PartitionLog } from '../../packages/storage/dist/index.js';
import { encodeRecordBatch } from '../../packages/common/dist/index.js';

const MB = 1e6;

function parseArgs(argv) {
  const options = { records: 1_000_000, recordSize: 1024, batchBytes: 16 * 1024, batchesPerAppend: 1, inFlight: 1, dir: null, fsync: false, keep: false, json: false, segmentBytes: 1024 * 1024 * 1024 };
  const numeric = { '--records': 'records', '--record-size': 'recordSize', '--batch-bytes': 'batchBytes', '--batches-per-append': 'batchesPerAppend', '--in-flight': 'inFlight', '--segment-bytes': 'segmentBytes' };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg in numeric) {
      const value = Number(argv[++i]);
      if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`${arg} needs a positive integer`);
      options[numeric[arg]] = value;
    } else if (arg === '--dir') options.dir = argv[++i];
    else if (arg === '--fsync') options.fsync = true;
    else if (arg === '--keep') options.keep = true;
    else if (arg === '--json') options.json = true;
    else throw new Error(`unknown argument ${arg}`);
  }
  return options;
}

/** Pre-encodes the batches: records of recordSize value bytes, as many per batch as fit batchBytes. */
function encodeBatches(options) {
  const value = Buffer.alloc(options.recordSize, 0x61);
  const probe = encodeRecordBatch([{ value }, { value }], { now: 1 });
  const perRecord = probe.length - encodeRecordBatch([{ value }], { now: 1 }).length;
  const recordsPerBatch = Math.max(1, Math.floor((options.batchBytes - (probe.length - 2 * perRecord)) / perRecord));
  const template = encodeRecordBatch(Array.from({ length: recordsPerBatch }, () => ({ value })), { now: Date.now() });
  const batches = [];
  for (let left = options.records; left > 0; left -= recordsPerBatch) {
    const count = Math.min(left, recordsPerBatch);
    batches.push(count === recordsPerBatch ? Buffer.from(template) : encodeRecordBatch(Array.from({ length: count }, () => ({ value })), { now: Date.now() }));
  }
  if (options.batchesPerAppend === 1) return { calls: batches, recordsPerBatch, batchCount: batches.length };
  // Several batches per call, as a produce request carries them: one contiguous buffer per call.
  const calls = [];
  for (let i = 0; i < batches.length; i += options.batchesPerAppend) {
    calls.push(Buffer.concat(batches.slice(i, i + options.batchesPerAppend)));
    for (let j = i; j < i + options.batchesPerAppend && j < batches.length; j++) batches[j] = null; // free as we go
  }
  return { calls, recordsPerBatch, batchCount: batches.length };
}

/** Appends every call, then flushes; returns the seconds spent before the final flush. */
async function appendAll(log, calls, inFlight) {
  const start = process.hrtime.bigint();
  let next = 0;
  async function worker() {
    while (next < calls.length) await log.append(calls[next++]);
  }
  await Promise.all(Array.from({ length: inFlight }, worker));
  const writeSeconds = Number(process.hrtime.bigint() - start) / 1e9;
  await log.flush();
  return writeSeconds;
}

function readAll(log) {
  let offset = log.logStartOffset;
  let bytes = 0;
  while (offset < log.logEndOffset) {
    const result = log.read(offset, 1024 * 1024);
    bytes += result.records.length;
    offset = result.nextOffset;
  }
  return bytes;
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const dir = options.dir ?? fs.mkdtempSync(join(os.tmpdir(), 'runnel-bench-log-'));
  const settings = {
    segmentBytes: options.segmentBytes,
    segmentMs: 7 * 24 * 3_600_000,
    retentionMs: -1,
    retentionBytes: -1,
    flushMessages: options.fsync ? 1 : Number.MAX_SAFE_INTEGER,
    flushMs: null,
    indexIntervalBytes: 4096,
    maxMessageBytes: Math.max(1048588, options.batchBytes * 2),
    minInsyncReplicas: 1,
    fileDeleteDelayMs: 60_000,
    cleanupPolicy: { compact: false, delete: true },
    deleteRetentionMs: 86_400_000,
    minCleanableDirtyRatio: 0.5,
    minCompactionLagMs: 0,
  };
  const silent = { debug() {}, info() {}, warn() {}, error() {} };
  const { calls, recordsPerBatch, batchCount } = encodeBatches(options);
  const log = await PartitionLog.open(dir, settings, { logger: silent });
  try {
    const appendStart = process.hrtime.bigint();
    // Like dd conv=fdatasync, the append time includes the final flush of everything written.
    const writeSeconds = await appendAll(log, calls, options.inFlight);
    const appendSeconds = Number(process.hrtime.bigint() - appendStart) / 1e9;
    const logBytes = log.sizeInBytes;

    const readStart = process.hrtime.bigint();
    const readBytes = readAll(log);
    const readSeconds = Number(process.hrtime.bigint() - readStart) / 1e9;
    if (readBytes !== logBytes) throw new Error(`read ${readBytes} bytes of ${logBytes}`);

    const summary = {
      records: options.records,
      record_size: options.recordSize,
      batch_bytes: options.batchBytes,
      records_per_batch: recordsPerBatch,
      batches: batchCount,
      batches_per_append: options.batchesPerAppend,
      in_flight: options.inFlight,
      fsync: options.fsync,
      segments: log.segmentCount,
      log_bytes: logBytes,
      append_seconds: round(appendSeconds),
      append_records_per_s: Math.round(options.records / appendSeconds),
      append_mb_per_s: round(logBytes / MB / appendSeconds),
      append_seconds_before_final_flush: round(writeSeconds),
      final_flush_seconds: round(appendSeconds - writeSeconds),
      read_seconds: round(readSeconds),
      read_records_per_s: Math.round(options.records / readSeconds),
      read_mb_per_s: round(readBytes / MB / readSeconds),
    };
    if (options.json) {
      process.stdout.write(JSON.stringify(summary) + '\n');
    } else {
      process.stdout.write(
        `PartitionLog: ${options.records} records of ${options.recordSize} B, ${recordsPerBatch} per batch (${batchCount} batches of ~${options.batchBytes} B), ` +
          `${options.batchesPerAppend} batch(es) per append, ${options.inFlight} in flight${options.fsync ? ', fsync every append' : ''}, ${log.segmentCount} segment(s)\n` +
          `  append: ${summary.append_records_per_s.toLocaleString('en-US')} records/s, ${summary.append_mb_per_s} MB/s (${summary.append_seconds} s, of which the final fdatasync ${summary.final_flush_seconds} s)\n` +
          `  read:   ${summary.read_records_per_s.toLocaleString('en-US')} records/s, ${summary.read_mb_per_s} MB/s (${summary.read_seconds} s)\n`,
      );
    }
  } finally {
    await log.close();
    if (!options.keep && options.dir === null) fs.rmSync(dir, { recursive: true, force: true });
  }
}

function round(value) {
  return Math.round(value * 100) / 100;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    process.stderr.write(`${error.stack ?? error}\n`);
    process.exit(1);
  });
}
