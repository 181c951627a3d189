// Broker decommission on real processes: 12 partitions RF 3 on four brokers with acks=all writers
// throughout; `runnel broker decommission 1` starts moving every replica off node 1 (throttled, so
// the moves take a while), the active controller is SIGKILLed mid-way, and the decommission still
// completes: node 1 holds no replica, can be stopped (SIGTERM) with nothing under-replicated and
// the cluster healthy, every acknowledged record is readable and the replicas are byte-identical.
import { describe, expect, it } from 'vitest';
import { Admin, Producer } from '@runnel/client';
import { runCli } from './cli.js';
import { createReplicatedTopic, expectReplicasIdentical, useClusterWithLateBrokers, Writers } from './balance.js';
import { waitFor } from './harness.js';

const TOPIC = 'retiring';

describe('broker decommission on a real cluster', () => {
  const fixture = useClusterWithLateBrokers(4, 3, {
    'broker.session.timeout.ms': '3000',
    'auto.leader.rebalance.enable': 'false',
    // Replicas being added copy at most 100 KB/s per broker: the moves outlast a controller failover.
    'follower.replication.throttled.rate': '100000',
  });

  it('moves every replica off node 1 through a controller SIGKILL; node 1 then stops with nothing under-replicated', async () => {
    const cluster = fixture.cluster;
    await cluster.node(4).launch();
    const bootstrap = () => cluster.nodes.filter((node) => node.running && node.nodeId !== 1).map((node) => node.bootstrap);
    const cli = (...args: string[]) => runCli(['--bootstrap', bootstrap().join(','), ...args], { timeoutMs: 120_000 });
    let admin = new Admin({ bootstrap: bootstrap(), requestTimeoutMs: 5000 });
    try {
      await createReplicatedTopic(admin, TOPIC);
      // About 2 MB to copy, so that the throttled moves take seconds.
      const loader = new Producer({ bootstrap: bootstrap(), acks: -1, lingerMs: 5 });
      for (let round = 0; round < 4; round++) {
        await Promise.all(Array.from({ length: 500 }, (_, k) => loader.send({ topic: TOPIC, partition: k % 12, value: Buffer.alloc(1000, 97 + round) })));
      }
      await loader.close();
      const writers = new Writers(bootstrap, TOPIC, 12, 1);
      await waitFor('records from the writer', () => (writers.count >= 200 ? true : undefined), 30_000);

      const decommission = await cli('broker', 'decommission', '1');
      expect(decommission.stderr).toBe('');
      expect(decommission.code).toBe(0);
      expect(decommission.stdout).toMatch(/^Broker 1 is decommissioned: it gets no new replicas; 9 partition\(s\) still have a replica on it\.$/m);

      // The active controller dies while the moves run; it comes back as a follower.
      expect((await admin.listPartitionReassignments()).length).toBeGreaterThan(0);
      const controllerId = (await admin.clusterStatus()).controller.id;
      await cluster.node(controllerId).kill('SIGKILL');
      await cluster.node(controllerId).launch();
      await admin.close();
      admin = new Admin({ bootstrap: bootstrap(), requestTimeoutMs: 5000 });

      const refused = await cli('broker', 'decommission', '2');
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/^runnel: INVALID_REPLICATION_FACTOR: cannot decommission broker 2: partition retiring-\d+ has 3 replicas \[[234],[234],[234]\] and the usable brokers that would remain \(\[3,4\]\) cannot hold them/);

      const status = await cli('broker', 'decommission-status', '1', '--wait', '--timeout', '90');
      expect(status.stderr).toBe('');
      expect(status.stdout).toContain('Broker 1: decommissioned, no replicas left: it can be stopped; 0 replica(s) left.');
      expect(status.code).toBe(0);
      const json = JSON.parse((await cli('cluster', 'status', '--format', 'json')).stdout) as { nodes: Array<{ id: number; decommissioned: boolean; replicas: number }> };
      expect(json.nodes.find((node) => node.id === 1)).toMatchObject({ decommissioned: true, replicas: 0 });
      expect(json.nodes.filter((node) => node.id !== 1).map((node) => node.replicas)).toEqual([12, 12, 12]);

      await writers.stop();
      writers.expectOnlyRetriableFailures();

      // Node 1 stops; nothing is under-replicated and the cluster is healthy without it.
      await cluster.node(1).stop();
      await waitFor('node 1 fenced', async () => ((await admin.clusterStatus()).nodes.find((node) => node.id === 1)?.fenced === true ? true : undefined), 30_000);
      const partitions = (await admin.describeTopics([TOPIC]))[0]!.partitions;
      for (const partition of partitions) {
        expect(partition.replicas).not.toContain(1);
        expect(partition.isr).toHaveLength(3);
      }
      const health = await cli('cluster', 'health', '--exit-when-healthy', '--timeout', '30');
      expect(health.stdout).toContain('Healthy: yes');
      expect(health.code).toBe(0);

      await writers.expectAllReadable(bootstrap(), TOPIC);
      await expectReplicasIdentical(cluster, admin, TOPIC);

      // Recommissioned, it takes replicas again (a topic placed over every broker uses it).
      await cluster.node(1).launch();
      const recommission = await cli('broker', 'recommission', '1');
      expect(recommission.stdout).toContain('Broker 1 is recommissioned');
      await admin.createTopics([{ name: 'after', partitions: 8, replicationFactor: 3 }]);
      const placed = (await admin.describeTopics(['after']))[0]!.partitions;
      expect(placed.some((partition) => partition.replicas.includes(1))).toBe(true);
    } finally {
      await admin.close();
    }
  });
});
