// LogManager's periodic jobs over real PartitionLogs in a temporary log directory: retention is
// bounded by each partition's high watermark, and deleted files go off the hot path.
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger, encodeRecordBatch, type LogSettings } from '@runnel/common';
import { LogManager } from '../src/logManager.js';
import { logSettings } from './leaderHarness.js';
import type { Partition } from '../src/partition.js';

const BROKER_ID = 1;
const TOPIC_ID = 'AAAAAAAAAAAAAAAAAAAAAA';

const dirs: string[] = [];
const managers: LogManager[] = [];

afterEach(async () => {
  for (const manager of managers.splice(0)) await manager.stop();
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** Small segments that expire at once: retention would delete all but the active one. */
function settings(overrides: Partial<LogSettings> = {}): LogSettings {
  return logSettings({ segmentBytes: 600, retentionMs: 1, ...overrides });
}

async function startManager(overrides: Partial<LogSettings> = {}): Promise<LogManager> {
  return (await startManagerIn(overrides)).manager;
}

async function startManagerIn(overrides: Partial<LogSettings> = {}): Promise<{ manager: LogManager; logDir: string }> {
  const logDir = fs.mkdtempSync(join(os.tmpdir(), 'runnel-broker-logs-'));
  dirs.push(logDir);
  // The retention timer is not what is tested: the test calls applyRetention itself.
  const manager = new LogManager({ logDir, defaults: settings(overrides), retentionCheckIntervalMs: 3_600_000, logger: createLogger({ name: 'test', level: 'silent' }) });
  managers.push(manager);
  await manager.start();
  return { manager, logDir };
}

/** `count` batches of one 150-byte record stamped 1 ms after the epoch: past any retention.ms. */
async function appendOldRecords(partition: Partition, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    await partition.log.append(encodeRecordBatch([{ value: Buffer.alloc(150, i), timestamp: 1 }], { now: 1 }), { leaderEpoch: 0 });
  }
}

describe('LogManager retention', () => {
  it('a follower deletes nothing at or above its high watermark', async () => {
    const logs = await startManager();
    const partition = await logs.openPartition('old', TOPIC_ID, 0, {}, BROKER_ID);
    await appendOldRecords(partition, 40);
    const bases = partition.log.segmentBaseOffsets;
    expect(bases.length).toBeGreaterThan(8);
    // The leader's high watermark, as a follower learns it: in the middle of the fifth segment.
    partition.updateFollowerHighWatermark(bases[4]! + 1);
    expect(partition.highWatermark).toBe(bases[4]! + 1);

    await logs.applyRetention();

    expect(partition.log.logStartOffset).toBe(bases[4]!);
    expect(partition.log.read(bases[4]!, 1_000_000).nextOffset).toBe(40);
  });

  it('a leader whose follower lags deletes nothing at or above the high watermark, then follows it up', async () => {
    const logs = await startManager({ retentionMs: -1, retentionBytes: 0 });
    const partition = await logs.openPartition('lagging', TOPIC_ID, 0, {}, BROKER_ID);
    partition.applyRole({ leader: BROKER_ID, leaderEpoch: 0, partitionEpoch: 0, replicas: [BROKER_ID, 2], isr: [BROKER_ID, 2] }, Date.now());
    await appendOldRecords(partition, 40);
    const bases = partition.log.segmentBaseOffsets;
    // Follower 2 has fetched up to the middle of the third segment: the high watermark stops there.
    partition.followers.get(2)!.logEndOffset = bases[2]! + 1;
    partition.maybeAdvanceHighWatermark();
    expect(partition.highWatermark).toBe(bases[2]! + 1);

    await logs.applyRetention();
    expect(partition.log.logStartOffset).toBe(bases[2]!);

    partition.followers.get(2)!.logEndOffset = 40;
    partition.maybeAdvanceHighWatermark();
    await logs.applyRetention();
    expect(partition.log.segmentCount).toBe(1);
    expect(partition.log.logEndOffset).toBe(40);
  });
});

describe('LogManager deletes files off the hot path', () => {
  const deletedFiles = (dir: string) => fs.readdirSync(dir).filter((name) => name.endsWith('.deleted'));

  it('retention takes segments out of the log at once and removes their files after file.delete.delay.ms', async () => {
    const logs = await startManager({ fileDeleteDelayMs: 1500 });
    const partition = await logs.openPartition('expiring', TOPIC_ID, 0, {}, BROKER_ID);
    await appendOldRecords(partition, 40);
    partition.updateFollowerHighWatermark(40);
    const segmentsBefore = partition.log.segmentCount;

    const deleted = await logs.applyRetention();

    expect(deleted).toBe(segmentsBefore - 1);
    expect(partition.log.segmentCount).toBe(1);
    expect(deletedFiles(partition.log.dir)).toHaveLength(deleted * 3);
    const passEndMs = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 200));
    // Not before the delay (unless a loaded machine slept through it).
    if (Date.now() - passEndMs < 1000) expect(deletedFiles(partition.log.dir)).toHaveLength(deleted * 3);
    await vi.waitFor(() => expect(deletedFiles(partition.log.dir)).toEqual([]), { timeout: 10_000, interval: 50 });
  });

  it('a topic-level file.delete.delay.ms overrides the broker default', async () => {
    const logs = await startManager({ fileDeleteDelayMs: 3_600_000 });
    const partition = await logs.openPartition('quick', TOPIC_ID, 0, { 'file.delete.delay.ms': '0' }, BROKER_ID);
    await appendOldRecords(partition, 20);
    partition.updateFollowerHighWatermark(20);
    expect(await logs.applyRetention()).toBeGreaterThan(0);
    await vi.waitFor(() => expect(deletedFiles(partition.log.dir)).toEqual([]), { timeout: 10_000, interval: 20 });
  });

  it('removing a partition renames its directory at once and removes it in the background', async () => {
    const { manager: logs, logDir } = await startManagerIn();
    const partition = await logs.openPartition('doomed', TOPIC_ID, 0, {}, BROKER_ID);
    await appendOldRecords(partition, 20);
    const dir = partition.log.dir;

    await logs.removePartition('doomed', 0);

    expect(fs.existsSync(dir)).toBe(false);
    expect(logs.partition('doomed', 0)).toBeUndefined();
    // Not removed synchronously: the renamed directory is still there when removePartition returns.
    const remains = fs.readdirSync(logDir).filter((name) => name.startsWith('doomed-0.') && name.endsWith('-delete'));
    expect(remains).toHaveLength(1);
    await vi.waitFor(() => expect(fs.readdirSync(logDir).filter((name) => name.endsWith('-delete'))).toEqual([]), { timeout: 10_000, interval: 20 });
  });
});
