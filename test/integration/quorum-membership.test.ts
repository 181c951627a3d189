// Controller quorum membership with real processes: three nodes serve acks=all writes while a
// fourth (controller only, configured with the existing voters and not itself) is added with
// `runnel quorum add-voter` and node 1 is removed with `remove-voter`, then stopped. Node 4 is
// restarted with its original config and must still be a voter (from its log, not its config);
// then the old members 2 and 3 are SIGKILLed one at a time, each restarted before the next, so a
// majority of {2,3,4} is always up — and only with node 4 voting. The controller keeps working
// (topics are created, a killed broker's partitions get a new leader) and every acknowledged
// record is read back.
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Admin, Consumer, Producer } from '@runnel/client';
import { LocalCluster, NodeProcess, makeTempDir } from '@runnel/testkit';
import { runCli } from './cli.js';
import { printNodeLogsOnFailure, waitFor } from './harness.js';

const TOPIC = 'membership';
const PARTITIONS = 3;

describe('controller quorum membership', () => {
  let cluster: LocalCluster;
  let node4: NodeProcess;
  let dir: string;
  printNodeLogsOnFailure(() => [...(cluster?.nodes ?? []), node4]);
  beforeAll(async () => {
    dir = await makeTempDir('runnel-quorum-');
    cluster = await LocalCluster.start({ nodes: 3, dataDir: dir });
  });
  afterAll(async () => {
    await node4?.kill();
    await cluster?.kill();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('adds voter 4, removes voter 1, and keeps a working controller while the old members are killed one at a time', async () => {
    const controllers = () => [...cluster.nodes.map((node) => node.controllerAddress), node4.controllerAddress].join(',');
    const brokers = [2, 3].map((id) => cluster.node(id).bootstrap);
    const admin = new Admin({ bootstrap: brokers });
    await admin.createTopics([{ name: TOPIC, partitions: PARTITIONS, replicationFactor: 3 }]);

    // Writes with acks=all for the whole test; every acknowledged record must be readable at the end.
    const producer = new Producer({ bootstrap: brokers, acks: -1 });
    const acknowledged = new Set<string>();
    let writing = true;
    const writer = (async () => {
      for (let k = 0; writing; k++) {
        const value = `r${k}`;
        try {
          await producer.send({ topic: TOPIC, partition: k % PARTITIONS, value: Buffer.from(value) });
          acknowledged.add(value);
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 100)); // a failover in progress
        }
      }
    })();

    // Node 4: the existing voters in its controller.quorum.voters, itself not among them.
    node4 = await NodeProcess.start({
      nodeId: 4,
      dataDir: join(dir, 'node-4'),
      config: { 'process.roles': 'controller', 'controller.quorum.voters': cluster.voters, 'cluster.id': cluster.clusterId },
    });
    const added = await runCli(['quorum', 'add-voter', `4@${node4.controllerAddress}`, '--bootstrap-controller', controllers(), '--timeout', '30'], { timeoutMs: 60_000 });
    expect(added.stderr).toBe('');
    expect(added.stdout).toMatch(/node 4 added as a learner[\s\S]*node 4 promoted to voter/);
    expect(added.code).toBe(0);
    const removed = await runCli(['quorum', 'remove-voter', '1', '--bootstrap-controller', controllers()], { timeoutMs: 60_000 });
    expect(removed.stderr + removed.stdout).toMatch(/node 1 removed/);
    expect(removed.code).toBe(0);
    const describe = async () => JSON.parse((await runCli(['quorum', 'describe', '--format', 'json', '--bootstrap-controller', controllers()], { timeoutMs: 30_000 })).stdout) as {
      leaderId: number; voters: { id: number; address: string; logEndOffset: number }[]; learners: unknown[];
    };
    const quorum = await describe();
    expect(quorum.voters.map((voter) => voter.id)).toEqual([2, 3, 4]);
    expect(quorum.voters.find((voter) => voter.id === 4)?.address).toBe(node4.controllerAddress);
    expect(quorum.learners).toEqual([]);
    await cluster.node(1).stop();

    // Node 4 restarts with its original config (it is not a voter there): its membership comes from its log.
    await node4.restart('SIGKILL');
    const controllerWorks = async (name: string) => {
      await waitFor(`topic ${name} to be created`, async () => {
        await admin.createTopics([{ name, partitions: 1, replicationFactor: 1 }]);
        return true;
      }, 30_000);
    };
    for (const victim of [2, 3]) {
      const survivor = victim === 2 ? 3 : 2;
      const before = await admin.clusterStatus();
      const led = before.topics.find((topic) => topic.name === TOPIC)!.partitions.filter((partition) => partition.leader === victim).map((partition) => partition.partition);
      await cluster.node(victim).kill('SIGKILL');
      // Only {survivor, 4} are up of the voters {2, 3, 4}: the controller works only if node 4 votes.
      await controllerWorks(`after-kill-${victim}`);
      const survivorAdmin = new Admin({ bootstrap: [cluster.node(survivor).bootstrap] });
      try {
        await waitFor(`node ${victim}'s partitions to get a new leader`, async () => {
          const status = await survivorAdmin.clusterStatus();
          const partitions = status.topics.find((topic) => topic.name === TOPIC)!.partitions;
          return led.every((id) => partitions[id]!.leader !== victim && partitions[id]!.leader >= 0) ? true : undefined;
        }, 30_000);
      } finally {
        await survivorAdmin.close();
      }
      await cluster.node(victim).launch();
    }
    const after = await describe();
    expect(after.voters.map((voter) => voter.id)).toEqual([2, 3, 4]);

    writing = false;
    await writer;
    await producer.close();
    expect(acknowledged.size).toBeGreaterThan(0);
    const consumer = new Consumer({ bootstrap: brokers });
    const read = new Set<string>();
    try {
      const partitions = Array.from({ length: PARTITIONS }, (_, partition) => ({ topic: TOPIC, partition }));
      consumer.assign(partitions);
      await consumer.seekToBeginning(partitions);
      await waitFor('every acknowledged record', async () => {
        for (const record of await consumer.poll(500)) read.add(Buffer.from(record.value ?? []).toString());
        return [...acknowledged].every((value) => read.has(value)) ? true : undefined;
      }, 30_000);
    } finally {
      await consumer.close();
      await admin.close();
    }
  }, 180_000);
});
