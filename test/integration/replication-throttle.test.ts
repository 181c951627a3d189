// The replication throttle on real processes, set at runtime as a dynamic broker config: a
// partition of ~8 MiB moves to the one broker that does not hold it with
// `runnel partitions reassign --execute FILE --throttle 1048576`, while an acks=all producer keeps
// writing to it. The copy's rate (bytes the new replica holds / time from execute to completion)
// stays within 20% of the throttle; every acknowledged record is readable afterwards and the new
// replica is byte-identical to the others. `--verify` then removes the throttle. A dynamic config
// survives a SIGKILL of the active controller and of its broker.
//
// Why the rate is measured end to end: the quota measures over `replication.quota.window.num`
// samples and never divides by less than (num − 1) windows (Kafka's Rate), so a move starts with a
// burst of (num − 1) × window × rate and then waits it off; later, when an old sample expires, a
// smaller burst follows. Bytes copied by time t are therefore at most rate × max(t, (num − 1) ×
// window) plus one fetch, whatever the phase — the end-to-end rate of a move much longer than the
// windows is at most the throttle plus a few percent, which only a defect can push past 20%. With 2
// windows of 1 s and 64 KiB fetches the sawtooth is small enough that the slope of the copied bytes
// after the first windows is also within 20%, and the test reports it.
//
// The upper bound is asserted always. The lower bound (at least 80% of the throttle) holds only if
// the machine can copy faster than the throttle at all; on a loaded 2-core machine it may not, for
// reasons outside the code. So the test also moves a second partition of the same size with the
// throttle removed, and asserts the lower bound only when that unthrottled copy ran at least 4× the
// throttle (otherwise it says why it did not).
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Admin, Consumer, Producer } from '@runnel/client';
import { RunnelError } from '@runnel/common';
import { KafkaWireClient } from '@runnel/testkit';
import { runCli } from './cli.js';
import { useCluster, waitFor } from './harness.js';

const THROTTLE_BYTES_PER_SECOND = 1 << 20;
const PARTITION_BYTES = 8 << 20;
const RECORD_BYTES = 1000;
const WINDOW_COUNT = 2;
const WINDOW_SECONDS = 1;

function partitionDir(dataDir: string, topic: string): string {
  return join(dataDir, 'logs', `${topic}-0`);
}

/** The bytes of a replica's log segments (0 before the directory exists). */
function logSize(dataDir: string, topic: string): number {
  try {
    const dir = partitionDir(dataDir, topic);
    return readdirSync(dir)
      .filter((name) => name.endsWith('.log'))
      .reduce((sum, name) => sum + statSync(join(dir, name)).size, 0);
  } catch {
    return 0;
  }
}

function logBytes(dataDir: string, topic: string): Buffer {
  const dir = partitionDir(dataDir, topic);
  return Buffer.concat(readdirSync(dir).filter((name) => name.endsWith('.log')).sort().map((name) => readFileSync(join(dir, name))));
}

/** Least-squares slope of bytes over seconds. */
function slope(points: ReadonlyArray<{ seconds: number; bytes: number }>): number {
  const n = points.length;
  const meanX = points.reduce((sum, point) => sum + point.seconds, 0) / n;
  const meanY = points.reduce((sum, point) => sum + point.bytes, 0) / n;
  const covariance = points.reduce((sum, point) => sum + (point.seconds - meanX) * (point.bytes - meanY), 0);
  const variance = points.reduce((sum, point) => sum + (point.seconds - meanX) ** 2, 0);
  return covariance / variance;
}

describe('the replication throttle on a real cluster', () => {
  const fixture = useCluster(4, {
    'auto.leader.rebalance.enable': 'false',
    'replication.quota.window.num': String(WINDOW_COUNT),
    'replication.quota.window.size.seconds': String(WINDOW_SECONDS),
    // Small fetches: the quota is checked between fetches, so one fetch is what it can overshoot by.
    'replica.fetch.max.bytes': String(64 << 10),
  });

  it('holds a move to the throttle set with reassign --execute --throttle, under acks=all writes, and --verify removes it', async () => {
    const cluster = fixture.cluster;
    const bootstrap = cluster.nodes.map((node) => node.bootstrap);
    const admin = new Admin({ bootstrap, requestTimeoutMs: 5000 });
    const cli = (...args: string[]) => runCli(['--bootstrap', bootstrap.join(','), ...args]);
    await admin.createTopics([
      { name: 'throttled', partitions: 1, replicationFactor: 3 },
      { name: 'reference', partitions: 1, replicationFactor: 3 },
    ]);
    const placed = async (topic: string) =>
      waitFor(`${topic} with its full ISR`, async () => {
        const partition = (await admin.describeTopics([topic]))[0]!.partitions[0]!;
        return partition.isr.length === 3 && partition.leader >= 0 ? partition : undefined;
      }, 20_000);

    // Fill both partitions with acks=all writes.
    const producer = new Producer({ bootstrap, acks: -1, lingerMs: 5, requestTimeoutMs: 10_000 });
    const acknowledged: string[] = [];
    let sequence = 0;
    const record = () => `r${sequence++}-`.padEnd(RECORD_BYTES, 'x');
    for (const topic of ['throttled', 'reference']) {
      for (let written = 0; written < PARTITION_BYTES; written += 200 * RECORD_BYTES) {
        await Promise.all(
          Array.from({ length: 200 }, () => {
            const value = record();
            return producer.send({ topic, partition: 0, value: Buffer.from(value) }).then(() => topic === 'throttled' && acknowledged.push(value));
          }),
        );
      }
    }

    const original = await placed('throttled');
    const newBroker = [1, 2, 3, 4].find((id) => !original.replicas.includes(id))!;
    // Keep the leader; drop another replica for the new one.
    const target = [original.leader, ...original.replicas.filter((id) => id !== original.leader).slice(0, 1), newBroker];
    const file = join(fixture.dir, 'throttled.json');
    writeFileSync(file, JSON.stringify({ version: 1, partitions: [{ topic: 'throttled', partition: 0, replicas: target }] }));

    // An acks=all producer keeps writing (~20 KiB/s) to the moving partition; only retriable errors may reach it.
    const failures: unknown[] = [];
    let producing = true;
    const writer = (async () => {
      while (producing) {
        await Promise.all(
          Array.from({ length: 10 }, () => {
            const value = record();
            return producer.send({ topic: 'throttled', partition: 0, value: Buffer.from(value) }).then(
              () => acknowledged.push(value),
              (error: unknown) => failures.push(error),
            );
          }),
        );
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    })();

    // Sample the new replica's log size from before the move starts until it completes.
    const samples: Array<{ atMs: number; bytes: number }> = [];
    const sampler = setInterval(() => samples.push({ atMs: Date.now(), bytes: logSize(cluster.node(newBroker).dataDir, 'throttled') }), 100);
    const executeMs = Date.now();
    const executed = await cli('partitions', 'reassign', '--execute', file, '--throttle', String(THROTTLE_BYTES_PER_SECOND));
    expect(executed.code, executed.stderr).toBe(0);
    expect(executed.stdout).toContain(`The inter-broker throttle limit was set to ${THROTTLE_BYTES_PER_SECOND} B/s`);

    // While it moves: --list and config describe show the throttle in force.
    const listed = await cli('partitions', 'reassign', '--list');
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain(`Replication throttle: cluster: leader ${THROTTLE_BYTES_PER_SECOND} B/s, follower ${THROTTLE_BYTES_PER_SECOND} B/s`);
    const described = await cli('config', 'describe', '--broker', String(newBroker), '--format', 'json');
    expect(JSON.parse(described.stdout).configs).toEqual([
      { resource: `broker ${newBroker}`, key: 'follower.replication.throttled.rate', value: String(THROTTLE_BYTES_PER_SECOND), source: 'dynamic cluster default' },
      { resource: `broker ${newBroker}`, key: 'leader.replication.throttled.rate', value: String(THROTTLE_BYTES_PER_SECOND), source: 'dynamic cluster default' },
    ]);

    const doneMs = await waitFor('the throttled move to complete', async () => {
      const partition = (await admin.describeTopics(['throttled']))[0]!.partitions[0]!;
      return partition.replicas.join(',') === target.join(',') && partition.isr.includes(newBroker) ? Date.now() : undefined;
    }, 60_000, 50);
    clearInterval(sampler);
    const movedBytes = logSize(cluster.node(newBroker).dataDir, 'throttled');
    // The copy starts at the last sample without a byte (the CLI's own start-up is not the copy's);
    // a sample late by up to 100 ms only lengthens the move, which cannot help the upper bound.
    const firstCopied = samples.findIndex((sample) => sample.bytes > 0);
    const copyStartMs = firstCopied > 0 ? samples[firstCopied - 1]!.atMs : executeMs;
    const moveSeconds = (doneMs - copyStartMs) / 1000;
    const rate = movedBytes / moveSeconds;
    // The slope after the first windows (the initial burst) up to completion.
    const steady = samples
      .filter((sample) => sample.atMs >= copyStartMs + WINDOW_COUNT * WINDOW_SECONDS * 1000 && sample.atMs <= doneMs)
      .map((sample) => ({ seconds: (sample.atMs - copyStartMs) / 1000, bytes: sample.bytes }));
    const steadyRate = steady.length >= 10 ? slope(steady) : Number.NaN;
    console.log(
      `throttled move: ${movedBytes} bytes in ${moveSeconds.toFixed(2)} s = ${(rate / 1024).toFixed(0)} KiB/s end to end, ` +
        `${(steadyRate / 1024).toFixed(0)} KiB/s after the first windows; throttle ${THROTTLE_BYTES_PER_SECOND / 1024} KiB/s`,
    );
    expect(movedBytes).toBeGreaterThanOrEqual(PARTITION_BYTES);
    expect(rate).toBeLessThanOrEqual(1.2 * THROTTLE_BYTES_PER_SECOND);
    expect(steadyRate).toBeLessThanOrEqual(1.2 * THROTTLE_BYTES_PER_SECOND);

    producing = false;
    await writer;
    for (const failure of failures) expect(failure instanceof RunnelError && failure.retriable, String(failure)).toBe(true);

    // --verify: complete, so the throttle goes.
    const verified = await cli('partitions', 'reassign', '--verify', file);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    expect(verified.stdout).toContain('Clearing the cluster-level replication throttle');
    expect(await admin.describeDynamicConfigs()).toEqual([]);
    expect((await cli('partitions', 'reassign', '--list')).stdout).toContain('Replication throttle: none');

    // config set / delete / describe by hand, and what they refuse (one stderr line naming the problem).
    const setByHand = await cli('config', 'set', '--broker', String(newBroker), 'leader.replication.throttled.rate=5000000');
    expect(setByHand.code, setByHand.stderr).toBe(0);
    expect((await cli('config', 'describe')).stdout).toMatch(new RegExp(`broker ${newBroker}\\s+leader\\.replication\\.throttled\\.rate\\s+5000000\\s+dynamic broker config`));
    expect((await cli('config', 'delete', '--broker', String(newBroker), 'leader.replication.throttled.rate')).code).toBe(0);
    expect((await cli('config', 'describe', '--cluster')).stdout).toContain('No dynamic config is set for the cluster default');
    for (const [args, message] of [
      [['config', 'set', '--cluster', 'log.retention.hours=1'], /INVALID_CONFIG: 'log\.retention\.hours' is a static broker config .*restart/],
      [['config', 'set', '--cluster', 'follower.replication.throttled.rate=-1'], /INVALID_CONFIG: invalid value '-1'/],
      [['config', 'set', '--broker', '9', 'follower.replication.throttled.rate=1'], /INVALID_REQUEST: broker 9 is not registered/],
      [['config', 'set', 'follower.replication.throttled.rate=1'], /give --broker N .* or --cluster/],
      [['config', 'delete', '--broker', '1', '--cluster', 'follower.replication.throttled.rate'], /not both/],
    ] as const) {
      const refused = await cli(...args);
      expect(refused.code, args.join(' ')).not.toBe(0);
      expect(refused.stderr.trim().split('\n')).toHaveLength(1);
      expect(refused.stderr).toMatch(message);
    }

    // The reference: the same size, unthrottled, onto the broker that does not hold it.
    const reference = await placed('reference');
    const referenceBroker = [1, 2, 3, 4].find((id) => !reference.replicas.includes(id))!;
    const referenceTarget = [reference.leader, ...reference.replicas.filter((id) => id !== reference.leader).slice(0, 1), referenceBroker];
    const referenceStartMs = Date.now();
    expect((await admin.alterPartitionReassignments([{ topic: 'reference', partition: 0, replicas: referenceTarget }]))[0]!.error).toBeNull();
    const referenceDoneMs = await waitFor('the unthrottled move to complete', async () => {
      const partition = (await admin.describeTopics(['reference']))[0]!.partitions[0]!;
      return partition.isr.includes(referenceBroker) ? Date.now() : undefined;
    }, 60_000, 50);
    const referenceRate = logSize(cluster.node(referenceBroker).dataDir, 'reference') / ((referenceDoneMs - referenceStartMs) / 1000);
    console.log(`unthrottled move: ${(referenceRate / 1024).toFixed(0)} KiB/s`);
    if (referenceRate >= 4 * THROTTLE_BYTES_PER_SECOND) expect(rate).toBeGreaterThanOrEqual(0.8 * THROTTLE_BYTES_PER_SECOND);
    else console.log(`lower bound not asserted: this machine copied only ${(referenceRate / 1024).toFixed(0)} KiB/s unthrottled`);

    // The new replica is byte-identical to another once caught up; every acknowledged record is readable.
    const other = target.find((id) => id !== newBroker)!;
    await waitFor('the new replica byte-identical to another', () => {
      const copy = logBytes(cluster.node(newBroker).dataDir, 'throttled');
      return copy.length > 0 && copy.equals(logBytes(cluster.node(other).dataDir, 'throttled')) ? true : undefined;
    }, 30_000);
    await producer.close();
    const consumer = new Consumer({ bootstrap, requestTimeoutMs: 5000 });
    const read = new Set<string>();
    try {
      consumer.assign([{ topic: 'throttled', partition: 0 }]);
      await consumer.seekToBeginning([{ topic: 'throttled', partition: 0 }]);
      for (let idle = 0; idle < 5 && read.size < acknowledged.length; ) {
        const batch = await consumer.poll(500);
        if (batch.length === 0) idle++;
        for (const entry of batch) read.add(entry.value?.toString() ?? '');
      }
    } finally {
      await consumer.close();
    }
    expect(acknowledged.filter((value) => !read.has(value))).toEqual([]);

    // A dynamic config is in the metadata log: it survives a SIGKILL of the active controller and
    // of the broker it is set on, which reads it back from the log when it restarts.
    expect((await cli('config', 'set', '--broker', String(newBroker), 'follower.replication.throttled.rate=777777')).code).toBe(0);
    const controllerId = (await admin.clusterStatus()).controller.id;
    for (const id of new Set([controllerId, newBroker])) {
      await cluster.node(id).kill('SIGKILL');
      await cluster.node(id).launch();
    }
    const door = await waitFor('the restarted broker to describe its dynamic config', async () => {
      const client = await KafkaWireClient.connect(cluster.node(newBroker).kafkaBootstrap, 'throttle-test');
      try {
        const response = await client.send('DescribeConfigs', 4, {
          resources: [{ resourceType: 4, resourceName: String(newBroker), configurationKeys: ['follower.replication.throttled.rate'] }],
        });
        const entry = response.results[0]?.configs[0];
        return entry?.value === '777777' ? entry : undefined;
      } finally {
        client.close();
      }
    }, 30_000, 200);
    expect(door).toMatchObject({ configSource: 2, readOnly: false });
    expect((await cli('config', 'delete', '--broker', String(newBroker), 'follower.replication.throttled.rate')).code).toBe(0);
    await admin.close();
  });
});
