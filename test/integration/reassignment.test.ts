// Replica reassignment (KIP-455) on real processes: a partition moves from three brokers to a set
// that drops its leader and adds a node started later, while an acks=all producer keeps writing.
// The move is held half-way (the new replica's process is SIGSTOPped), the active controller is
// SIGKILLed, then the new replica itself is SIGKILLed and restarted: the move completes, the new
// replica holds a byte-identical copy, the removed replica's directory is gone, and every
// acknowledged record is readable. A cancelled move goes back to the original replicas and the
// partial copy is deleted.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Admin, Consumer, Producer } from '@runnel/client';
import { RunnelError } from '@runnel/common';
import { runCli } from './cli.js';
import { useCluster, waitFor } from './harness.js';

const SESSION_TIMEOUT_MS = 3000;

function logBytes(dataDir: string, partitionDir: string): Buffer {
  const dir = join(dataDir, 'logs', partitionDir);
  const segments = readdirSync(dir).filter((name) => name.endsWith('.log')).sort();
  return Buffer.concat(segments.map((name) => readFileSync(join(dir, name))));
}

describe('partition reassignment on a real cluster', () => {
  const fixture = useCluster(4, { 'broker.session.timeout.ms': String(SESSION_TIMEOUT_MS), 'auto.leader.rebalance.enable': 'false' });

  it('moves [a,b,c] to [b,c,4] (the leader removed) through a controller SIGKILL and a target SIGKILL, with acks=all writes throughout; a cancel reverts', async () => {
    const cluster = fixture.cluster;
    // Node 4 is held with SIGSTOP at times: clients bootstrap from the others.
    const bootstrap = () => cluster.nodes.filter((node) => node.running && node.nodeId !== 4).map((node) => node.bootstrap);
    // Node 4 joins later: down while the topics are placed on 1..3.
    await cluster.node(4).kill('SIGKILL');
    let admin = new Admin({ bootstrap: bootstrap(), requestTimeoutMs: 3000 });
    await waitFor('node 4 fenced', async () => ((await admin.clusterStatus()).nodes.find((node) => node.id === 4)?.fenced === true ? true : undefined), 20_000);
    await admin.createTopics([
      { name: 'moving', partitions: 1, replicationFactor: 3, configs: { 'min.insync.replicas': '2' } },
      { name: 'cancelled', partitions: 1, replicationFactor: 3 },
    ]);
    const original = await waitFor('the topic with its full ISR', async () => {
      const partition = (await admin.describeTopics(['moving']))[0]!.partitions[0]!;
      return partition.isr.length === 3 && partition.leader === partition.replicas[0] ? partition : undefined;
    }, 20_000);
    const leader = original.leader;
    const target = [...original.replicas.filter((id) => id !== leader), 4];

    // An acks=all producer writing throughout; only retriable errors may reach it.
    const producer = new Producer({ bootstrap: bootstrap(), acks: -1, lingerMs: 5, requestTimeoutMs: 5000 });
    const acknowledged: string[] = [];
    const failures: unknown[] = [];
    let producing = true;
    let sequence = 0;
    const writer = (async () => {
      while (producing) {
        const values = Array.from({ length: 20 }, () => `r${sequence++}-${'x'.repeat(200)}`);
        await Promise.all(
          values.map((value) =>
            producer.send({ topic: 'moving', partition: 0, value: Buffer.from(value) }).then(
              () => acknowledged.push(value),
              (error: unknown) => failures.push(error),
            ),
          ),
        );
      }
    })();
    await waitFor('some acknowledged records', () => (acknowledged.length >= 500 ? true : undefined), 30_000);

    // Node 4 starts, registers and is unfenced; then it is held (SIGSTOP) so that the move waits for it.
    await cluster.node(4).launch();
    await waitFor('node 4 unfenced', async () => ((await admin.clusterStatus()).nodes.find((node) => node.id === 4)?.fenced === false ? true : undefined), 30_000);
    cluster.node(4).pause();
    const outcomes = await admin.alterPartitionReassignments([{ topic: 'moving', partition: 0, replicas: target }]);
    expect(outcomes).toEqual([{ topic: 'moving', partition: 0, error: null }]);
    const moving = await admin.listPartitionReassignments(undefined, { progress: true });
    expect(moving).toMatchObject([{ topic: 'moving', partition: 0, addingReplicas: [4], removingReplicas: [leader], targetReplicas: target }]);
    expect(moving[0]!.progress?.adding[0]).toMatchObject({ brokerId: 4 });

    // The active controller dies mid-move (it may be a replica too). With node 4 held, the two
    // other voters are not a majority of four: it restarts at once, and a new election follows.
    const controllerId = (await admin.clusterStatus()).controller.id;
    expect(controllerId).not.toBe(4);
    await cluster.node(controllerId).kill('SIGKILL');
    await cluster.node(controllerId).launch();
    await admin.close();
    admin = new Admin({ bootstrap: bootstrap(), requestTimeoutMs: 3000 });
    await waitFor('an active controller again, which still lists the move', async () => {
      if ((await admin.clusterStatus()).controller.id < 0) return undefined;
      const list = await admin.listPartitionReassignments();
      return list.length === 1 && list[0]!.addingReplicas.join(',') === '4' ? true : undefined;
    }, 30_000);

    // The target replica is SIGKILLed while held, and restarted: it copies the log and joins the ISR.
    await cluster.node(4).kill('SIGKILL');
    await cluster.node(4).launch();
    await admin.close();
    admin = new Admin({ bootstrap: bootstrap(), requestTimeoutMs: 3000 });
    const done = await waitFor('the move to complete', async () => {
      if ((await admin.listPartitionReassignments()).length > 0) return undefined;
      const partition = (await admin.describeTopics(['moving']))[0]!.partitions[0]!;
      return partition.replicas.join(',') === target.join(',') && partition.isr.length === 3 ? partition : undefined;
    }, 60_000);
    expect(done.leader).not.toBe(leader);
    expect(target).toContain(done.leader);

    producing = false;
    await writer;
    await producer.close();
    for (const failure of failures) expect(failure instanceof RunnelError && failure.retriable, String(failure)).toBe(true);

    // The removed replica's directory is deleted; the new one is a byte-identical copy once caught up.
    await waitFor('the removed replica deleted', () => (existsSync(join(cluster.node(leader).dataDir, 'logs', 'moving-0')) ? undefined : true), 30_000);
    const other = target.find((id) => id !== 4)!;
    await waitFor('node 4 byte-identical to another replica', () => {
      const copy = logBytes(cluster.node(4).dataDir, 'moving-0');
      return copy.length > 0 && copy.equals(logBytes(cluster.node(other).dataDir, 'moving-0')) ? true : undefined;
    }, 30_000);

    // Every acknowledged record is readable.
    const consumer = new Consumer({ bootstrap: bootstrap(), requestTimeoutMs: 5000 });
    const read = new Set<string>();
    try {
      consumer.assign([{ topic: 'moving', partition: 0 }]);
      await consumer.seekToBeginning([{ topic: 'moving', partition: 0 }]);
      for (let idle = 0; idle < 5 && read.size < acknowledged.length; ) {
        const batch = await consumer.poll(500);
        if (batch.length === 0) idle++;
        for (const record of batch) read.add(record.value?.toString() ?? '');
      }
    } finally {
      await consumer.close();
    }
    expect(acknowledged.filter((value) => !read.has(value))).toEqual([]);

    // Cancel mid-move: the partition goes back to its original replicas; node 4's partial copy is deleted.
    const before = (await admin.describeTopics(['cancelled']))[0]!.partitions[0]!;
    const spare = before.replicas.includes(4) ? undefined : 4;
    expect(spare).toBe(4);
    cluster.node(4).pause();
    const cancelTarget = [...before.replicas.slice(0, 2), 4];
    expect((await admin.alterPartitionReassignments([{ topic: 'cancelled', partition: 0, replicas: cancelTarget }]))[0]!.error).toBeNull();
    expect(await admin.listPartitionReassignments([{ topic: 'cancelled', partition: 0 }])).toHaveLength(1);
    // While it moves, the CLI starts another reassignment only when told to (Kafka's --additional).
    const otherFile = join(fixture.dir, 'other.json');
    writeFileSync(otherFile, JSON.stringify({ version: 1, partitions: [{ topic: 'moving', partition: 0, replicas: target }] }));
    const execute = (...extra: string[]) => runCli(['--bootstrap', bootstrap().join(','), 'partitions', 'reassign', '--execute', otherFile, ...extra]);
    const refused = await execute();
    expect(refused.code).not.toBe(0);
    expect(refused.stderr.trim()).toMatch(/^runnel: cannot execute: 1 partition\(s\) are still moving \(cancelled-0\); .* --additional/);
    const additional = await execute('--additional');
    expect(additional.code, additional.stderr).toBe(0);
    expect((await admin.alterPartitionReassignments([{ topic: 'cancelled', partition: 0, replicas: null }]))[0]!.error).toBeNull();
    cluster.node(4).resume();
    const reverted = (await admin.describeTopics(['cancelled']))[0]!.partitions[0]!;
    expect([...reverted.replicas].sort()).toEqual([...before.replicas].sort());
    expect(await admin.listPartitionReassignments()).toEqual([]);
    await waitFor('node 4 deleted its partial copy', () => (existsSync(join(cluster.node(4).dataDir, 'logs', 'cancelled-0')) ? undefined : true), 30_000);
    const second = (await admin.alterPartitionReassignments([{ topic: 'cancelled', partition: 0, replicas: null }]))[0]!;
    expect(second.error?.errorName).toBe('NO_REASSIGNMENT_IN_PROGRESS');
    await admin.close();

    // The CLI over the same cluster: --verify the finished move, --plan a new one, --list, a bad file.
    const cli = (...args: string[]) => runCli(['--bootstrap', bootstrap().join(','), 'partitions', 'reassign', ...args]);
    const file = join(fixture.dir, 'moving.json');
    writeFileSync(file, JSON.stringify({ version: 1, partitions: [{ topic: 'moving', partition: 0, replicas: target }] }));
    const verified = await cli('--verify', file, '--format', 'json');
    expect(verified.code, verified.stderr).toBe(0);
    expect(JSON.parse(verified.stdout).partitions[0].state).toBe('complete');
    const planned = await cli('--plan', file);
    expect(planned.code, planned.stderr).toBe(0);
    expect(planned.stdout).toContain(`moving-0: [${target.join(',')}] -> [${target.join(',')}]`);
    expect((await cli('--list')).stdout).toContain('No reassignment in progress.');
    writeFileSync(file, JSON.stringify({ version: 1, partitions: [{ topic: 'moving', partition: 0, replicas: [1, 1] }] }));
    const bad = await cli('--execute', file);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toContain('names a broker twice');
  });
});
