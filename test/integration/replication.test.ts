// Replication on a real 3-node cluster: followers pull from leaders, acks=all waits for the ISR,
// a new leader from the ISR has every acknowledged record, a restarted broker catches up and ends
// byte-identical, and an old leader's uncommitted tail is truncated after a failover.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Admin, Consumer, Producer, type ClusterStatus } from '@runnel/client';
import { RunnelError } from '@runnel/common';
import type { LocalCluster } from '@runnel/testkit';
import { useCluster, waitFor } from './harness.js';

/** The bytes of a replica's log: its segment files in offset order (the active one included). */
function replicaBytes(cluster: LocalCluster, nodeId: number, partition: string): Buffer | null {
  const dir = join(cluster.node(nodeId).dataDir, 'logs', partition);
  if (!existsSync(dir)) return null;
  const segments = readdirSync(dir).filter((name) => name.endsWith('.log')).sort();
  return Buffer.concat(segments.map((name) => readFileSync(join(dir, name))));
}

/** Waits until every replica of `partition` holds the same bytes, and returns their length. */
async function replicasIdentical(cluster: LocalCluster, partition: string, replicas: readonly number[], timeoutMs = 15_000): Promise<number> {
  return waitFor(
    `identical replicas of ${partition} on ${replicas.join(', ')}`,
    () => {
      const logs = replicas.map((id) => replicaBytes(cluster, id, partition));
      if (logs.some((log) => log === null)) return undefined;
      return logs.every((log) => log!.equals(logs[0]!)) ? logs[0]!.length : undefined;
    },
    timeoutMs,
    200,
  );
}

function partitionOf(status: ClusterStatus, topic: string, index: number) {
  return status.topics.find((candidate) => candidate.name === topic)!.partitions[index]!;
}

async function readAll(bootstrap: string[], topic: string, partition: number): Promise<Array<{ offset: number; value: string }>> {
  const consumer = new Consumer({ bootstrap, requestTimeoutMs: 5000 });
  const records: Array<{ offset: number; value: string }> = [];
  try {
    consumer.assign([{ topic, partition }]);
    await consumer.seekToBeginning([{ topic, partition }]);
    for (let idle = 0; idle < 3; ) {
      const batch = await consumer.poll(300);
      if (batch.length === 0) idle++;
      for (const record of batch) records.push({ offset: record.offset, value: record.value?.toString() ?? '' });
    }
  } finally {
    await consumer.close();
  }
  return records;
}

describe('replication', () => {
  const fixture = useCluster(3, { 'replica.lag.time.max.ms': '4000', 'log.retention.check.interval.ms': '200' });
  const bootstrap = () => fixture.cluster.nodes.filter((node) => node.running).map((node) => node.bootstrap);

  it('acks=all writes reach every replica, byte for byte', async () => {
    const admin = new Admin({ bootstrap: bootstrap() });
    await admin.createTopics([{ name: 'replicated', partitions: 3, replicationFactor: 3, configs: { 'min.insync.replicas': '2' } }]);
    const producer = new Producer({ bootstrap: bootstrap(), acks: -1, lingerMs: 2 });
    try {
      const sends = Array.from({ length: 3000 }, (_, k) => producer.send({ topic: 'replicated', partition: k % 3, value: Buffer.from(`r${k}`) }));
      const acked = await Promise.all(sends);
      expect(acked).toHaveLength(3000);
    } finally {
      await producer.close();
    }
    for (let p = 0; p < 3; p++) expect(await replicasIdentical(fixture.cluster, `replicated-${p}`, [1, 2, 3])).toBeGreaterThan(0);
    const status = await admin.clusterStatus();
    await admin.close();
    for (let p = 0; p < 3; p++) expect(partitionOf(status, 'replicated', p).isr).toHaveLength(3);
  });

  it('SIGKILL of a leader: the new leader has every acknowledged record; the old one catches up after a restart', async () => {
    const cluster = fixture.cluster;
    let admin = new Admin({ bootstrap: bootstrap() });
    const before = partitionOf(await admin.clusterStatus(), 'replicated', 0);
    await admin.close();
    const victim = before.leader;
    const producer = new Producer({ bootstrap: bootstrap(), acks: -1, lingerMs: 1, retryBackoffMs: 100, deliveryTimeoutMs: 30_000, requestTimeoutMs: 5000 });
    const acknowledged = new Map<number, string>();
    let failed = 0;
    try {
      let k = 0;
      const sendSome = async (count: number) => {
        const sends = [];
        for (let i = 0; i < count; i++, k++) {
          const value = `k${k}`;
          sends.push(
            producer.send({ topic: 'replicated', partition: 0, value: Buffer.from(value) }).then(
              (meta) => acknowledged.set(meta.offset, value),
              () => failed++,
            ),
          );
        }
        await Promise.all(sends);
      };
      await sendSome(500);
      await cluster.node(victim).kill('SIGKILL');
      await sendSome(500); // retried until the new leader takes them
    } finally {
      await producer.close();
    }
    expect(failed).toBe(0);
    admin = new Admin({ bootstrap: bootstrap() });
    const after = partitionOf(await admin.clusterStatus(), 'replicated', 0);
    expect(after.leader).not.toBe(victim);
    expect(after.leaderEpoch).toBeGreaterThan(before.leaderEpoch);
    const records = await readAll(bootstrap(), 'replicated', 0);
    const byOffset = new Map(records.map((record) => [record.offset, record.value]));
    for (const [offset, value] of acknowledged) expect(byOffset.get(offset), `acknowledged offset ${offset}`).toBe(value);
    // Dense offsets, each value once.
    expect(records.map((record) => record.offset)).toEqual(records.map((_, i) => i));
    expect(new Set(records.map((record) => record.value)).size).toBe(records.length);

    await cluster.node(victim).launch();
    await replicasIdentical(cluster, 'replicated-0', [1, 2, 3]);
    const healed = await waitFor('the restarted broker back in the ISR', async () => {
      const state = partitionOf(await admin.clusterStatus(), 'replicated', 0);
      return state.isr.length === 3 ? state : undefined;
    }, 15_000);
    expect(healed.isr).toContain(victim);
    await admin.close();
  });

  it('refuses acks=all with NOT_ENOUGH_REPLICAS when the ISR is below min.insync.replicas', async () => {
    const cluster = fixture.cluster;
    const admin = new Admin({ bootstrap: bootstrap() });
    await admin.createTopics([{ name: 'strict', partitions: 1, replicationFactor: 3, configs: { 'min.insync.replicas': '3' } }]);
    const state = partitionOf(await admin.clusterStatus(), 'strict', 0);
    const follower = state.replicas.find((id) => id !== state.leader)!;
    const producer = new Producer({ bootstrap: bootstrap(), acks: -1, retries: 0, deliveryTimeoutMs: 5000, requestTimeoutMs: 3000 });
    try {
      await producer.send({ topic: 'strict', value: Buffer.from('all three') });
      cluster.node(follower).pause();
      await waitFor('the paused follower out of the ISR', async () => (partitionOf(await admin.clusterStatus(), 'strict', 0).isr.includes(follower) ? undefined : true), 15_000);
      const error = await producer.send({ topic: 'strict', value: Buffer.from('two of three') }).then(
        () => null,
        (reason: unknown) => reason,
      );
      expect(error).toBeInstanceOf(RunnelError);
      expect((error as RunnelError).errorName).toMatch(/NOT_ENOUGH_REPLICAS/);
    } finally {
      cluster.node(follower).resume();
      await producer.close();
    }
    await waitFor('the follower back in the ISR', async () => (partitionOf(await admin.clusterStatus(), 'strict', 0).isr.length === 3 ? true : undefined), 20_000);
    await admin.close();
  });

  it('a follower that fell behind the leader\'s log start starts over there and rejoins the ISR', async () => {
    const cluster = fixture.cluster;
    const admin = new Admin({ bootstrap: bootstrap() });
    await admin.createTopics([{ name: 'retained', partitions: 1, replicationFactor: 3, configs: { 'segment.bytes': '1024', 'retention.bytes': '2048' } }]);
    const state = partitionOf(await admin.clusterStatus(), 'retained', 0);
    const follower = state.replicas.find((id) => id !== state.leader)!;
    const producer = new Producer({ bootstrap: bootstrap(), acks: 1, lingerMs: 0 });
    try {
      for (let k = 0; k < 20; k++) await producer.send({ topic: 'retained', partition: 0, value: Buffer.from(`early-${k}`.padEnd(60, '.')) });
      await replicasIdentical(cluster, 'retained-0', state.replicas);
      await cluster.node(follower).kill('SIGKILL');
      // Segments roll every kilobyte and retention keeps about two: the leader's log start moves
      // past everything the stopped follower has.
      for (let k = 0; k < 300; k++) await producer.send({ topic: 'retained', partition: 0, value: Buffer.from(`late-${k}`.padEnd(60, '.')) });
      const [earliest] = await waitFor('the leader\'s log start past offset 20', async () => {
        const offsets = await admin.listOffsets([{ topic: 'retained', partition: 0, timestamp: 'earliest' }]);
        return offsets[0]!.offset > 20 ? offsets : undefined;
      }, 10_000);
      await cluster.node(follower).launch();
      await waitFor('the follower back in the ISR', async () => (partitionOf(await admin.clusterStatus(), 'retained', 0).isr.length === 3 ? true : undefined), 20_000);
      expect(cluster.node(follower).logs()).toMatch(/fell behind the leader's log start: starting over there/);
      expect(earliest!.offset).toBeGreaterThan(20);
    } finally {
      await producer.close();
      await admin.close();
    }
  });

  it('an old leader truncates its uncommitted tail after a failover and ends byte-identical with the new leader', async () => {
    const cluster = fixture.cluster;
    let admin = new Admin({ bootstrap: bootstrap() });
    await admin.createTopics([{ name: 'diverge', partitions: 1, replicationFactor: 2 }]);
    const state = partitionOf(await admin.clusterStatus(), 'diverge', 0);
    await admin.close();
    const [oldLeader, other] = [state.leader, state.replicas.find((id) => id !== state.leader)!];
    const oldLeaderNode = cluster.node(oldLeader);
    const direct = new Producer({ bootstrap: [oldLeaderNode.bootstrap], acks: -1, lingerMs: 0 });
    await Promise.all(Array.from({ length: 10 }, (_, k) => direct.send({ topic: 'diverge', value: Buffer.from(`committed-${k}`) })));
    // The follower stops fetching (paused, within its session timeout): acks=1 writes now stay on
    // the leader alone, above the high watermark.
    cluster.node(other).pause();
    // Its fetch in flight is answered (empty) within replica.fetch.wait.max.ms; after that it asks
    // for nothing more until it resumes. Stay well inside its session timeout.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const tail = new Producer({ bootstrap: [oldLeaderNode.bootstrap], acks: 1, lingerMs: 0 });
    await Promise.all(Array.from({ length: 5 }, (_, k) => tail.send({ topic: 'diverge', value: Buffer.from(`uncommitted-${k}`) })));
    await tail.close().catch(() => undefined);
    await direct.close().catch(() => undefined);
    await oldLeaderNode.kill('SIGKILL');
    cluster.node(other).resume();

    admin = new Admin({ bootstrap: bootstrap() });
    await waitFor('the follower to take over', async () => (partitionOf(await admin.clusterStatus(), 'diverge', 0).leader === other ? true : undefined), 15_000);
    const producer = new Producer({ bootstrap: bootstrap(), acks: -1 });
    await Promise.all(Array.from({ length: 7 }, (_, k) => producer.send({ topic: 'diverge', value: Buffer.from(`new-${k}`) })));
    await producer.close();

    await oldLeaderNode.launch();
    await replicasIdentical(cluster, 'diverge-0', [oldLeader, other]);
    const values = (await readAll(bootstrap(), 'diverge', 0)).map((record) => record.value);
    expect(values).toEqual([...Array.from({ length: 10 }, (_, k) => `committed-${k}`), ...Array.from({ length: 7 }, (_, k) => `new-${k}`)]);
    expect(oldLeaderNode.logs()).toMatch(/log diverged from the leader: truncating/);
    await admin.close();
  });
});
