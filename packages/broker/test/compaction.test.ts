// Compacted topics on the broker: keys are required on produce, and LogManager's cleaner passes
// clean compacted logs up to each partition's high watermark, with retention only for compact,delete.
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { crc32c, createLogger, encodeRecordBatch, errorCode, type LogSettings } from '@runnel/common';
import { LogManager } from '../src/logManager.js';
import { BrokerMetrics } from '../src/metrics.js';
import type { Partition } from '../src/partition.js';
import { leaderFixture, logSettings, TOPIC, type LeaderFixture } from './leaderHarness.js';

const SOLO = { leader: 1, leaderEpoch: 1, partitionEpoch: 1, replicas: [1], isr: [1] };
const TOPIC_ID = 'AAAAAAAAAAAAAAAAAAAAAA';
const COMPACT = { compact: true, delete: false };

describe('produce to a compacted topic', () => {
  let fixture: LeaderFixture | undefined;
  afterEach(async () => {
    await fixture?.close();
    fixture = undefined;
  });

  const produce = (records: Buffer) => fixture!.replicas.produce(1, [{ topic: TOPIC, partition: 0, records }]);

  it('refuses a record with a null key with INVALID_RECORD, naming the problem, and appends nothing', async () => {
    fixture = await leaderFixture({ brokerId: 1, role: SOLO, settings: { cleanupPolicy: COMPACT } });
    const [refused] = await produce(encodeRecordBatch([{ key: Buffer.from('a'), value: Buffer.from('1') }, { key: null, value: Buffer.from('2') }]));
    expect(refused!.errorCode).toBe(errorCode('INVALID_RECORD'));
    expect(errorCode('INVALID_RECORD')).toBe(87);
    expect(refused!.errorMessage).toMatch(/record 1 of batch 0 has a null key.*compacted/);
    expect(fixture.partition.log.logEndOffset).toBe(0);
    const [accepted] = await produce(encodeRecordBatch([{ key: Buffer.from('a'), value: null }], { compression: 'gzip' }));
    expect(accepted!.errorCode).toBe(0);
    expect(fixture.partition.log.logEndOffset).toBe(1);
  });

  for (const compression of ['snappy', 'lz4', 'zstd'] as const) {
    it(`looks into ${compression} batches for null keys, and refuses ones whose records do not decompress as CORRUPT_MESSAGE`, async () => {
      fixture = await leaderFixture({ brokerId: 1, role: SOLO, settings: { cleanupPolicy: COMPACT } });
      const [keyless] = await produce(encodeRecordBatch([{ key: Buffer.from('a'), value: Buffer.from('1') }, { key: null, value: Buffer.from('2') }], { compression }));
      expect(keyless!.errorCode).toBe(errorCode('INVALID_RECORD'));
      const broken = encodeRecordBatch([{ key: Buffer.from('a'), value: Buffer.from('1') }], { compression });
      broken.fill(0xee, 61);
      broken.writeUInt32BE(crc32c(broken.subarray(21)), 17);
      const [corrupt] = await produce(broken);
      expect(corrupt!.errorCode).toBe(errorCode('CORRUPT_MESSAGE'));
      expect(corrupt!.errorMessage).toMatch(new RegExp(`${compression}-compressed records do not decompress`));
      const [accepted] = await produce(encodeRecordBatch([{ key: Buffer.from('a'), value: Buffer.from('1') }], { compression }));
      expect(accepted!.errorCode).toBe(0);
      expect(fixture.partition.log.logEndOffset).toBe(1);
    });
  }

  it('accepts null keys on a topic that is not compacted', async () => {
    fixture = await leaderFixture({ brokerId: 1, role: SOLO });
    const [accepted] = await produce(encodeRecordBatch([{ key: null, value: Buffer.from('1') }]));
    expect(accepted!.errorCode).toBe(0);
  });
});

describe('LogManager cleaner passes', () => {
  const dirs: string[] = [];
  const managers: LogManager[] = [];
  afterEach(async () => {
    for (const manager of managers.splice(0)) await manager.stop();
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function startManager(overrides: Partial<LogSettings>, metrics?: BrokerMetrics, cleaner = { enabled: true, backoffMs: 3_600_000, dedupeBufferBytes: 1024 * 1024 }): Promise<LogManager> {
    const logDir = fs.mkdtempSync(join(os.tmpdir(), 'runnel-broker-cleaner-'));
    dirs.push(logDir);
    const manager = new LogManager({
      logDir,
      defaults: logSettings({ segmentBytes: 600, minCleanableDirtyRatio: 0, ...overrides }),
      retentionCheckIntervalMs: 3_600_000,
      cleaner,
      logger: createLogger({ name: 'test', level: 'silent' }),
      ...(metrics === undefined ? {} : { metrics }),
    });
    managers.push(manager);
    await manager.start();
    return manager;
  }

  /** `rounds` versions of keys 0..3, one record a batch, stamped long ago. */
  async function appendVersions(partition: Partition, rounds: number): Promise<void> {
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < 4; k++) {
        await partition.log.append(encodeRecordBatch([{ key: Buffer.from(`k${k}`), value: Buffer.alloc(100, round), timestamp: 1 }], { now: 1 }), { leaderEpoch: 0 });
      }
    }
  }

  const keysBelow = (partition: Partition, offset: number): string[] => {
    const keys: string[] = [];
    let next = partition.log.logStartOffset;
    while (next < offset) {
      const read = partition.log.read(next, 1_000_000, { maxOffset: offset });
      if (read.records.length === 0) break;
      next = read.nextOffset;
      keys.push(...(read.records.toString('latin1').match(/k\d/g) ?? []));
    }
    return keys;
  };

  it('cleans compacted logs up to the high watermark only, and counts what it did', async () => {
    const metrics = new BrokerMetrics(false);
    const logs = await startManager({ cleanupPolicy: COMPACT }, metrics);
    const partition = await logs.openPartition('compacted', TOPIC_ID, 0, {}, 1);
    const plain = await logs.openPartition('plain', TOPIC_ID, 0, { 'cleanup.policy': 'delete' }, 1);
    await appendVersions(partition, 10);
    await appendVersions(plain, 10);
    const bases = partition.log.segmentBaseOffsets;
    expect(bases.length).toBeGreaterThan(6);
    const highWatermark = bases[5]! + 1;
    partition.updateFollowerHighWatermark(highWatermark);
    plain.updateFollowerHighWatermark(40);
    const aboveBefore = partition.log.read(bases[5]!, 1_000_000).records;
    const plainSize = plain.log.sizeInBytes;

    const summary = await logs.applyCleaning();

    expect(summary.logsCleaned).toBe(1);
    expect(summary.recordsRemoved).toBeGreaterThan(0);
    expect(summary.maxDirtyRatio).toBe(1);
    expect(keysBelow(partition, bases[5]!).sort()).toEqual(['k0', 'k1', 'k2', 'k3']);
    expect(partition.log.read(bases[5]!, 1_000_000).records).toEqual(aboveBefore);
    expect(plain.log.sizeInBytes).toBe(plainSize);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(new RegExp(`runnel_log_cleaner_records_removed_total ${summary.recordsRemoved}\\b`));
    expect(text).toMatch(/runnel_log_cleaner_bytes_cleaned_total [1-9]/);
    expect(text).toMatch(/runnel_log_cleaner_max_dirty_ratio 1\b/);
    expect(text).toMatch(/runnel_log_cleaner_last_pass_duration_seconds /);
  });

  it('runs a pass every log.cleaner.backoff.ms, and none when log.cleaner.enable is false', async () => {
    const enabled = await startManager({ cleanupPolicy: COMPACT }, undefined, { enabled: true, backoffMs: 50, dedupeBufferBytes: 1024 * 1024 });
    const disabled = await startManager({ cleanupPolicy: COMPACT }, undefined, { enabled: false, backoffMs: 50, dedupeBufferBytes: 1024 * 1024 });
    const cleaned = await enabled.openPartition('timed', TOPIC_ID, 0, {}, 1);
    const untouched = await disabled.openPartition('off', TOPIC_ID, 0, {}, 1);
    for (const partition of [cleaned, untouched]) {
      await appendVersions(partition, 10);
      partition.updateFollowerHighWatermark(40);
    }
    const sizeBefore = untouched.log.sizeInBytes;
    await vi.waitFor(() => expect(cleaned.log.sizeInBytes).toBeLessThan(sizeBefore), { timeout: 10_000, interval: 20 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(untouched.log.sizeInBytes).toBe(sizeBefore);
    expect((await disabled.applyCleaning()).logsCleaned).toBe(0);
  });

  it('compact alone keeps expired segments; compact,delete deletes them', async () => {
    const logs = await startManager({ cleanupPolicy: COMPACT, retentionMs: 1 });
    const compactOnly = await logs.openPartition('compact-only', TOPIC_ID, 0, {}, 1);
    const both = await logs.openPartition('compact-delete', TOPIC_ID, 0, { 'cleanup.policy': 'compact,delete' }, 1);
    await appendVersions(compactOnly, 5);
    await appendVersions(both, 5);
    compactOnly.updateFollowerHighWatermark(20);
    both.updateFollowerHighWatermark(20);
    await logs.applyRetention();
    expect(compactOnly.log.logStartOffset).toBe(0);
    expect(both.log.segmentCount).toBe(1);
  });
});
