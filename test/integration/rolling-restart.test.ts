// A rolling restart with controlled shutdown: each node in turn gets SIGTERM (the controller moves
// its leadership away before it exits) and comes back, while a producer sends with acks=all.
// No send fails, every acknowledged record is readable at its offset, and `runnel cluster
// rebalance` then moves leadership back to the preferred replicas.
import { describe, expect, it } from 'vitest';
import { Admin, Consumer, Producer } from '@runnel/client';
import { runCli } from './cli.js';
import { useCluster } from './harness.js';

describe('rolling restart', () => {
  // No automatic rebalance here: the CLI's rebalance is what puts leadership back.
  const fixture = useCluster(3, { 'auto.leader.rebalance.enable': 'false' });
  const topic = 'rolling';

  it('restarts every node under load with no failed send and no lost record', async () => {
    const cluster = fixture.cluster;
    const bootstrap = cluster.nodes.map((node) => node.bootstrap);
    const admin = new Admin({ bootstrap });
    await admin.createTopics([{ name: topic, partitions: 6, replicationFactor: 3, configs: { 'min.insync.replicas': '2' } }]);
    const producer = new Producer({ bootstrap, acks: -1, lingerMs: 1, retryBackoffMs: 50, deliveryTimeoutMs: 60_000, requestTimeoutMs: 10_000 });
    const acknowledged = new Map<string, string>();
    const failures: string[] = [];
    let stop = false;
    let sent = 0;
    const load = (async () => {
      while (!stop && sent < 200_000) {
        const window = Array.from({ length: 50 }, () => {
          const value = `v${sent++}`;
          return producer.send({ topic, key: Buffer.from(value), value: Buffer.from(value) }).then(
            (meta) => acknowledged.set(`${meta.partition}:${meta.offset}`, value),
            (error: unknown) => failures.push(`${value}: ${(error as Error).message}`),
          );
        });
        await Promise.all(window);
      }
    })();
    try {
      for (const node of cluster.nodes) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        const status = await node.stop();
        expect(status.code, `node ${node.nodeId} exit`).toBe(0);
        expect(node.logs()).toContain('controlled shutdown: the controller moved leadership away');
        await node.launch();
        // Back in every ISR before the next one goes, as an operator's rolling restart waits.
        const deadline = Date.now() + 20_000;
        for (;;) {
          const state = await admin.clusterStatus();
          if (state.topics.find((candidate) => candidate.name === topic)!.partitions.every((partition) => partition.isr.length === 3)) break;
          expect(Date.now(), 'ISR back to 3 after a restart').toBeLessThan(deadline);
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
    } finally {
      stop = true;
      await load;
      await producer.close();
    }
    expect(failures).toEqual([]);
    expect(acknowledged.size).toBeGreaterThan(1000);

    const consumer = new Consumer({ bootstrap });
    const seen = new Map<string, string>();
    try {
      const partitions = Array.from({ length: 6 }, (_, partition) => ({ topic, partition }));
      consumer.assign(partitions);
      await consumer.seekToBeginning(partitions);
      for (let idle = 0; idle < 3; ) {
        const records = await consumer.poll(300);
        if (records.length === 0) idle++;
        for (const record of records) seen.set(`${record.partition}:${record.offset}`, record.value!.toString());
      }
    } finally {
      await consumer.close();
    }
    for (const [where, value] of acknowledged) expect(seen.get(where), `acknowledged ${value} at ${where}`).toBe(value);

    const rebalance = await runCli(['--bootstrap', bootstrap.join(','), 'cluster', 'rebalance']);
    expect(rebalance.code, rebalance.stderr).toBe(0);
    expect(rebalance.stdout).toMatch(/rolling-\d+: leader \d -> \d \(epoch \d+\)/);
    const status = await runCli(['--bootstrap', bootstrap.join(','), 'cluster', 'status', '--format', 'json']);
    const leaders = (JSON.parse(status.stdout) as { leaders: Record<string, number> }).leaders;
    expect(leaders).toEqual({ '1': 2, '2': 2, '3': 2 });
    await admin.close();
  });
});
