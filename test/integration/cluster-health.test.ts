// `runnel cluster health` and `runnel topic describe` against a real 3-node cluster: the verdict and
// exit status follow a broker's death and return, and describe shows every partition's log start
// and high watermark, asked of its own leader, whichever node the CLI bootstraps from.
import { describe, expect, it } from 'vitest';
import { Producer } from '@runnel/client';
import { runCli } from './cli.js';
import { useCluster, waitFor } from './harness.js';

describe('runnel cluster health and topic describe', () => {
  const fixture = useCluster(3);
  const cli = (...args: string[]) => runCli(['--bootstrap', fixture.cluster.bootstrap, ...args], { timeoutMs: 60_000 });

  it('shows log start and high watermark of every partition, not only those the bootstrap node leads', async () => {
    const created = await cli('topic', 'create', 'described', '--partitions', '3', '--replication-factor', '2');
    expect(created.code, created.stderr).toBe(0);
    const producer = new Producer({ bootstrap: fixture.cluster.bootstrap, acks: 'all', lingerMs: 0 });
    for (let partition = 0; partition < 3; partition++) {
      for (let i = 0; i <= partition; i++) await producer.send({ topic: 'described', partition, value: `p${partition}-${i}` });
    }
    await producer.close();
    // Bootstrapping from node 1 alone: it leads at most some of the partitions.
    const described = await runCli(['--bootstrap', fixture.cluster.node(1).bootstrap, 'topic', 'describe', 'described', '--format', 'json'], { timeoutMs: 60_000 });
    expect(described.code, described.stderr).toBe(0);
    const [topic] = JSON.parse(described.stdout) as Array<{ partitions: Array<{ partition: number; leader: number; logStartOffset: number; highWatermark: number }> }>;
    expect(new Set(topic!.partitions.map((partition) => partition.leader)).size).toBeGreaterThan(1);
    expect(topic!.partitions.map((partition) => [partition.partition, partition.logStartOffset, partition.highWatermark])).toEqual([
      [0, 0, 1],
      [1, 0, 2],
      [2, 0, 3],
    ]);
  });

  it('says healthy (exit 0), then names the dead broker and the partition under min ISR (exit 1), then waits until healthy again', async () => {
    const healthy = await cli('cluster', 'health');
    expect(healthy.code, healthy.stderr).toBe(0);
    expect(healthy.stdout).toMatch(/^Healthy: yes\nController: node \d\nLive brokers: 1, 2, 3\n/);
    const created = await cli('topic', 'create', 'strict', '--partitions', '1', '--replication-factor', '3', '--config', 'min.insync.replicas=3');
    expect(created.code, created.stderr).toBe(0);

    await fixture.cluster.node(3).kill();
    const unhealthy = await waitFor('cluster health to see node 3 down and strict-0 under min ISR', async () => {
      const result = await cli('cluster', 'health', '--format', 'json');
      const verdict = JSON.parse(result.stdout) as { healthy: boolean; brokers: { down: number[] }; underMinIsrPartitions: string[]; problems: string[] };
      return result.code === 1 && verdict.brokers.down.includes(3) && verdict.underMinIsrPartitions.includes('strict-0') ? verdict : undefined;
    }, 20_000, 500);
    expect(unhealthy.healthy).toBe(false);
    expect(unhealthy.problems).toContain('brokers not live: 3');
    const gaveUp = await cli('cluster', 'health', '--exit-when-healthy', '--timeout', '1');
    expect(gaveUp.code).toBe(1);
    expect(gaveUp.stdout).toMatch(/Healthy: no/);

    const waiting = cli('cluster', 'health', '--exit-when-healthy', '--timeout', '45');
    await fixture.cluster.node(3).launch();
    const recovered = await waiting;
    expect(recovered.code, recovered.stdout + recovered.stderr).toBe(0);
    expect(recovered.stdout).toMatch(/Healthy: yes/);
  });

  it('refuses a bad --timeout with a message naming it', async () => {
    const result = await cli('cluster', 'health', '--exit-when-healthy', '--timeout', 'soon');
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/--timeout must be an integer/);
  });
});
