// A replica that cannot take its new role, on a real 3-node cluster. The partition's directory on
// one broker is damaged with a real fault (its leader-epoch checkpoint replaced by a directory, so
// writing it fails with EISDIR — root ignores permission bits, not this). When the leader is killed
// and that broker is elected, it cannot become leader: it takes the replica offline, tells the
// controller at once, and the controller moves leadership and the ISR off it. Acknowledged acks=all
// records survive on the replica that takes over; `cluster status` shows the offline replica; a
// restart (a new incarnation) retries the log and the replica rejoins the ISR.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Admin, Consumer, Producer, type ClusterStatus } from '@runnel/client';
import { errorCode } from '@runnel/common';
import { runCli } from './cli.js';
import { produceOnce, useCluster, waitFor } from './harness.js';

const SESSION_TIMEOUT_MS = 3000;
const TOPIC = 'fragile';
const RECORDS = 200;

interface StatusJson {
  nodes: Array<{ id: number; fenced: boolean; offlineReplicas: Array<{ topic: string; partition: number }> }>;
  topics: Array<{ name: string; partitions: Array<{ partition: number; leader: number; isr: number[]; offlineReplicas: number[]; replicaOffline: boolean }> }>;
}

function partitionOf(status: ClusterStatus, index = 0) {
  return status.topics.find((candidate) => candidate.name === TOPIC)!.partitions[index]!;
}


async function readValues(bootstrap: string[]): Promise<string[]> {
  const consumer = new Consumer({ bootstrap, requestTimeoutMs: 5000 });
  const values: string[] = [];
  try {
    consumer.assign([{ topic: TOPIC, partition: 0 }]);
    await consumer.seekToBeginning([{ topic: TOPIC, partition: 0 }]);
    for (let idle = 0; idle < 3 && values.length < RECORDS; ) {
      const batch = await consumer.poll(300);
      if (batch.length === 0) idle++;
      for (const record of batch) values.push(record.value?.toString() ?? '');
    }
  } finally {
    await consumer.close();
  }
  return values;
}

describe('a replica whose directory fails on one broker', () => {
  const fixture = useCluster(3, { 'broker.session.timeout.ms': String(SESSION_TIMEOUT_MS), 'auto.leader.rebalance.enable': 'false' });

  it('goes offline there: leadership and the ISR move off it, acks=all data survives, cluster status shows it, a restart brings it back', async () => {
    const cluster = fixture.cluster;
    const bootstrapOf = (except: number[] = []) => cluster.nodes.filter((node) => node.running && !except.includes(node.nodeId)).map((node) => node.bootstrap);
    let admin = new Admin({ bootstrap: bootstrapOf(), requestTimeoutMs: 3000 });
    await admin.createTopics([{ name: TOPIC, partitions: 1, replicationFactor: 3 }]);
    const created = await waitFor('the new topic with its full ISR', async () => {
      const partition = partitionOf(await admin.clusterStatus());
      return partition.isr.length === 3 ? partition : undefined;
    }, 10_000);
    // Replicas in order: the leader, the one an election picks next (the victim), the one after.
    const [leader, victim, survivor] = created.replicas as [number, number, number];
    expect(created.leader).toBe(leader);

    const producer = new Producer({ bootstrap: bootstrapOf(), acks: -1, lingerMs: 2 });
    try {
      await Promise.all(Array.from({ length: RECORDS }, (_, k) => producer.send({ topic: TOPIC, partition: 0, value: Buffer.from(`v${k}`) })));
    } finally {
      await producer.close();
    }

    // The fault: the victim can no longer write the partition's leader-epoch checkpoint.
    const checkpoint = join(cluster.node(victim).dataDir, 'logs', `${TOPIC}-0`, 'leader-epoch-checkpoint');
    rmSync(checkpoint, { force: true });
    mkdirSync(checkpoint);
    writeFileSync(join(checkpoint, 'in-the-way'), '');

    await admin.close();
    admin = new Admin({ bootstrap: bootstrapOf([leader]), requestTimeoutMs: 3000 });
    try {
      await cluster.node(leader).kill('SIGKILL');
      const moved = await waitFor(
        `leadership of ${TOPIC}-0 to move past the failing replica on node ${victim} to node ${survivor}`,
        async () => {
          const status = await admin.clusterStatus();
          const partition = partitionOf(status);
          const offline = status.nodes.find((node) => node.id === victim)!.offlineReplicas;
          return partition.leader === survivor && offline.some((replica) => replica.topic === TOPIC && replica.partition === 0) ? status : undefined;
        },
        SESSION_TIMEOUT_MS + 20_000,
      );
      const partition = partitionOf(moved);
      expect(partition.isr).toEqual([survivor]);
      expect(partition.offlineReplicas).toEqual([victim]);

      // The victim refuses the partition with KAFKA_STORAGE_ERROR, whatever its image says.
      const refused = await produceOnce(cluster.node(victim).bootstrap, TOPIC, 0);
      expect(refused.errorCode, refused.errorMessage).toBe(errorCode('KAFKA_STORAGE_ERROR'));

      // Every acknowledged acks=all record is on the new leader.
      const values = await readValues(bootstrapOf([leader]));
      expect(values).toEqual(Array.from({ length: RECORDS }, (_, k) => `v${k}`));

      // What an operator sees.
      const bootstrap = ['--bootstrap', bootstrapOf([leader]).join(',')];
      const json = await runCli([...bootstrap, 'cluster', 'status', '--format', 'json'], { timeoutMs: 20_000 });
      expect(json.code, json.stderr).toBe(0);
      const status = JSON.parse(json.stdout) as StatusJson;
      expect(status.nodes.find((node) => node.id === victim)!.offlineReplicas).toEqual([{ topic: TOPIC, partition: 0 }]);
      expect(status.topics.find((topic) => topic.name === TOPIC)!.partitions[0]).toMatchObject({ leader: survivor, offlineReplicas: [victim], replicaOffline: true });
      const table = await runCli([...bootstrap, 'cluster', 'status'], { timeoutMs: 20_000 });
      expect(table.code, table.stderr).toBe(0);
      expect(table.stdout).toMatch(new RegExp(`REPLICA-OFFLINE ${victim}`));
      expect(table.stdout).toContain('1 offline replica');

      // Repaired and restarted (a new incarnation): the log opens again and the replica rejoins the ISR.
      rmSync(checkpoint, { recursive: true, force: true });
      await cluster.node(victim).restart();
      await waitFor(
        `node ${victim} back in the ISR of ${TOPIC}-0 with no offline replica`,
        async () => {
          const current = await admin.clusterStatus();
          const state = partitionOf(current);
          const offline = current.nodes.find((node) => node.id === victim)!.offlineReplicas;
          return state.isr.includes(victim) && offline.length === 0 && state.offlineReplicas.length === 0 ? true : undefined;
        },
        20_000,
      );
    } finally {
      await admin.close();
    }
  });
});
