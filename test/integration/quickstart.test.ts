// The README's quick start, end to end through the real CLI and a real node process.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compressionOf, listBatches } from '@runnel/common';
import { useSingleNode } from './harness.js';
import { runCli } from './cli.js';

describe('quick start through the runnel CLI', () => {
  const single = useSingleNode();

  const cli = (args: string[], input?: string) => runCli(['--bootstrap', single.node.bootstrap, ...args], { input });

  it('creates a topic, pipes 100,000 lines through produce and reads them back in order', async () => {
    const created = await cli(['topic', 'create', 'demo', '--partitions', '3', '--replication-factor', '1']);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);

    const lines = Array.from({ length: 100_000 }, (_, i) => `line-${i}`);
    const produced = await cli(['produce', 'demo'], lines.join('\n') + '\n');
    expect(produced.stderr).toBe('');
    expect(produced.code).toBe(0);

    const consumed = await cli(['consume', 'demo', '--from-beginning', '--max-messages', '100000', '--format', 'json']);
    expect(consumed.code).toBe(0);
    const records = consumed.stdout.trim().split('\n').map((line) => JSON.parse(line) as { partition: number; offset: number; value: string });
    expect(records).toHaveLength(100_000);
    expect(new Set(records.map((record) => record.value))).toEqual(new Set(lines));
    // Within each partition, offsets are dense from 0 and lines keep the order they were sent in.
    const byPartition = new Map<number, typeof records>();
    for (const record of records) {
      if (!byPartition.has(record.partition)) byPartition.set(record.partition, []);
      byPartition.get(record.partition)!.push(record);
    }
    expect(byPartition.size).toBeGreaterThan(1);
    for (const partitionRecords of byPartition.values()) {
      expect(partitionRecords.map((record) => record.offset)).toEqual(partitionRecords.map((_, index) => index));
      const numbers = partitionRecords.map((record) => Number(record.value.slice('line-'.length)));
      expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
    }

    const one = await cli(['consume', 'demo', '--partition', '1', '--offset', '5', '--max-messages', '3', '--format', 'json']);
    const offsets = one.stdout.trim().split('\n').map((line) => (JSON.parse(line) as { offset: number }).offset);
    expect(offsets).toEqual([5, 6, 7]);
  });

  it('lists and describes topics as tables and as JSON', async () => {
    const list = await cli(['topic', 'list', '--format', 'json']);
    expect(JSON.parse(list.stdout)).toContainEqual({ name: 'demo', partitions: 3 });
    const table = await cli(['topic', 'list']);
    expect(table.stdout).toMatch(/TOPIC\s+PARTITIONS\ndemo\s+3/);
    const describe = await cli(['topic', 'describe', 'demo', '--format', 'json']);
    const [topic] = JSON.parse(describe.stdout) as Array<{ name: string; partitions: Array<{ leader: number; highWatermark: number }> }>;
    expect(topic!.name).toBe('demo');
    expect(topic!.partitions.map((p) => p.leader)).toEqual([1, 1, 1]);
    expect(topic!.partitions.reduce((sum, p) => sum + p.highWatermark, 0)).toBe(100_000);
  });

  it('keys records with --key-separator and sends equal keys to one partition', async () => {
    await cli(['topic', 'create', 'keyed', '--partitions', '4', '--replication-factor', '1']);
    const input = Array.from({ length: 200 }, (_, i) => `user-${i % 5}:event-${i}`).join('\n');
    expect((await cli(['produce', 'keyed', '--key-separator', ':'], input)).code).toBe(0);
    const consumed = await cli(['consume', 'keyed', '--from-beginning', '--max-messages', '200', '--format', 'json']);
    const records = consumed.stdout.trim().split('\n').map((line) => JSON.parse(line) as { partition: number; key: string; value: string });
    expect(records).toHaveLength(200);
    const partitionOfKey = new Map<string, number>();
    for (const record of records) {
      expect(partitionOfKey.get(record.key) ?? record.partition).toBe(record.partition);
      partitionOfKey.set(record.key, record.partition);
    }
    expect(partitionOfKey.size).toBe(5);
  });

  for (const codec of ['gzip', 'snappy', 'lz4', 'zstd'] as const) {
    it(`stores ${codec}-compressed batches from produce --compression ${codec} as sent, and consume reads them back`, async () => {
      const topic = `zipped-${codec}`;
      await cli(['topic', 'create', topic, '--partitions', '1', '--replication-factor', '1']);
      const lines = Array.from({ length: 5000 }, (_, i) => `compressible line ${i} ${'z'.repeat(50)}`);
      const produced = await cli(['produce', topic, '--compression', codec], lines.join('\n'));
      expect(produced.stderr).toBe('');
      expect(produced.code).toBe(0);
      const consumed = await cli(['consume', topic, '--from-beginning', '--max-messages', '5000']);
      expect(consumed.stdout.trim().split('\n')).toEqual(lines);
      const shown = await cli(['topic', 'describe', topic, '--format', 'json']);
      const [described] = JSON.parse(shown.stdout) as Array<{ partitions: Array<{ highWatermark: number }> }>;
      expect(described!.partitions[0]!.highWatermark).toBe(5000);
      // The node stored the producer's batches as they came: compressed with the codec asked for.
      const segment = readFileSync(join(single.dir, 'logs', `${topic}-0`, '00000000000000000000.log'));
      const batches = listBatches(segment);
      expect(new Set(batches.map(({ header }) => compressionOf(header.attributes)))).toEqual(new Set([codec]));
      expect(segment.length).toBeLessThan(lines.join('\n').length / 4);
    });
  }

  it('benchmarks produce with a compression codec', async () => {
    const bench = await cli(['bench', 'produce', '--topic', 'bench-zstd', '--records', '2000', '--record-size', '200', '--compression', 'zstd', '--acks', '1', '--json']);
    expect(bench.code).toBe(0);
    expect(JSON.parse(bench.stdout.trim().split('\n').at(-1)!)).toMatchObject({ records: 2000, errors: 0 });
    const unknown = await cli(['produce', 'demo', '--compression', 'brotli'], 'x\n');
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch("argument 'brotli' is invalid. Allowed choices are none, gzip, snappy, lz4, zstd");
  });

  it('fails with one clear line and a non-zero exit', async () => {
    const again = await cli(['topic', 'create', 'demo', '--partitions', '3', '--replication-factor', '1']);
    expect(again.code).not.toBe(0);
    expect(again.stderr.trim().split('\n')).toHaveLength(1);
    expect(again.stderr).toMatch(/TOPIC_ALREADY_EXISTS/);

    const tooMany = await cli(['topic', 'create', 'wide', '--partitions', '1', '--replication-factor', '3']);
    expect(tooMany.code).not.toBe(0);
    expect(tooMany.stderr).toMatch(/INVALID_REPLICATION_FACTOR/);

    const badConfig = await cli(['topic', 'create', 'cfg', '--partitions', '1', '--replication-factor', '1', '--config', 'retention.msec=5']);
    expect(badConfig.code).not.toBe(0);
    expect(badConfig.stderr).toMatch(/retention.msec/);

    const missing = await cli(['topic', 'describe', 'no-such-topic']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/no-such-topic/);

    const unreachable = await runCli(['--bootstrap', '127.0.0.1:1', 'topic', 'list'], { timeoutMs: 60_000 });
    expect(unreachable.code).not.toBe(0);
    expect(unreachable.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('deletes a topic and its data', async () => {
    await cli(['topic', 'create', 'doomed', '--partitions', '2', '--replication-factor', '1']);
    expect((await cli(['topic', 'delete', 'doomed'])).code).toBe(0);
    const list = await cli(['topic', 'list', '--format', 'json']);
    expect((JSON.parse(list.stdout) as Array<{ name: string }>).map((t) => t.name)).not.toContain('doomed');
  });

  it('shuts down cleanly on SIGTERM and keeps its topics and records across the restart', async () => {
    const status = await single.node.stop();
    expect(status).toEqual({ code: 0, signal: null });
    expect(single.node.logs()).toMatch(/node stopped/);
    await single.node.launch();
    const describe = await cli(['topic', 'describe', 'demo', '--format', 'json']);
    const [topic] = JSON.parse(describe.stdout) as Array<{ partitions: Array<{ highWatermark: number }> }>;
    expect(topic!.partitions.reduce((sum, p) => sum + p.highWatermark, 0)).toBe(100_000);
  });
});
