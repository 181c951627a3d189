// Scale-out on real processes: three nodes hold 12 partitions RF 3 while acks=all producers write
// throughout; brokers 4 and 5 join and `runnel cluster rebalance --replicas --wait` (the real CLI)
// spreads the replicas and leaders: every broker ends within one of the mean replica and leader
// counts, every acknowledged record is readable, every partition's replicas are byte-identical,
// and the producers saw only retriable errors.
import { describe, expect, it } from 'vitest';
import { Admin } from '@runnel/client';
import { runCli } from './cli.js';
import { countsPerBroker, createReplicatedTopic, expectReplicasIdentical, expectWithinOneOfMean, useClusterWithLateBrokers, Writers } from './balance.js';
import { waitFor } from './harness.js';

const TOPIC = 'scaled';

describe('cluster rebalance --replicas on a real cluster', () => {
  const fixture = useClusterWithLateBrokers(5, 3, { 'broker.session.timeout.ms': '3000', 'auto.leader.rebalance.enable': 'false' });

  it('spreads 12 partitions RF 3 from 3 brokers over 5 with acks=all writes throughout', async () => {
    const cluster = fixture.cluster;
    const bootstrap = () => cluster.nodes.filter((node) => node.running).map((node) => node.bootstrap);
    const admin = new Admin({ bootstrap: bootstrap(), requestTimeoutMs: 5000 });
    try {
      await createReplicatedTopic(admin, TOPIC);
      const writers = new Writers(bootstrap, TOPIC, 12, 2);
      await waitFor('records on every partition', () => (writers.acknowledged.size === 12 && writers.count >= 600 ? true : undefined), 30_000);

      // Brokers 4 and 5 join.
      await Promise.all([cluster.node(4).launch(), cluster.node(5).launch()]);
      await waitFor('brokers 4 and 5 unfenced', async () => {
        const nodes = (await admin.clusterStatus()).nodes;
        return [4, 5].every((id) => nodes.find((node) => node.id === id)?.fenced === false) ? true : undefined;
      }, 30_000);

      const dryRun = await runCli(['--bootstrap', bootstrap().join(','), 'cluster', 'rebalance', '--replicas', '--dry-run']);
      expect(dryRun.stderr).toBe('');
      expect(dryRun.stdout).toMatch(/^4\s+0 -> [78]\s+0 -> [23]$/m);
      expect(dryRun.stdout).toContain('Dry run: nothing was moved.');
      expect(await admin.listPartitionReassignments()).toEqual([]);

      const rebalance = await runCli(['--bootstrap', bootstrap().join(','), 'cluster', 'rebalance', '--replicas', '--wait', '--timeout', '90'], { timeoutMs: 120_000 });
      expect(rebalance.stderr).toBe('');
      expect(rebalance.code).toBe(0);
      expect(rebalance.stdout).toContain('every move completed');
      expect(rebalance.stdout).toContain('Preferred-leader election:');

      const brokers = [1, 2, 3, 4, 5];
      const counts = await countsPerBroker(admin, brokers);
      expectWithinOneOfMean(counts.replicas, brokers, 'replicas');
      expectWithinOneOfMean(counts.leaders, brokers, 'leaders');
      expect(counts.replicas.get(4)).toBeGreaterThan(0);
      expect(counts.replicas.get(5)).toBeGreaterThan(0);
      const partitions = (await admin.describeTopics([TOPIC]))[0]!.partitions;
      for (const partition of partitions) expect(partition.replicas).toHaveLength(3);

      await writers.stop();
      writers.expectOnlyRetriableFailures();
      await writers.expectAllReadable(bootstrap(), TOPIC);
      await expectReplicasIdentical(cluster, admin, TOPIC);
    } finally {
      await admin.close();
    }
  });
});

describe('auto.replica.rebalance.enable on a real cluster', () => {
  const fixture = useClusterWithLateBrokers(4, 3, { 'broker.session.timeout.ms': '3000', 'auto.replica.rebalance.enable': 'true' });

  it('gives a broker that joins its share of replicas without a command', async () => {
    const cluster = fixture.cluster;
    const bootstrap = () => cluster.nodes.filter((node) => node.running).map((node) => node.bootstrap);
    const admin = new Admin({ bootstrap: bootstrap(), requestTimeoutMs: 5000 });
    try {
      await createReplicatedTopic(admin, TOPIC);
      await cluster.node(4).launch();
      const counts = await waitFor('broker 4 holding its share, no move left', async () => {
        if ((await admin.listPartitionReassignments()).length > 0) return undefined;
        const current = await countsPerBroker(admin, [1, 2, 3, 4]);
        return current.replicas.get(4) === 9 ? current : undefined;
      }, 60_000, 500);
      expectWithinOneOfMean(counts.replicas, [1, 2, 3, 4], 'replicas');
    } finally {
      await admin.close();
    }
  });
});
