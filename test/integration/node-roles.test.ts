// Nodes with one role each: three controller-only nodes form the quorum, two broker-only nodes
// find it through controller.quorum.voters, register, host replicas and serve clients.
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Admin, Consumer, Producer } from '@runnel/client';
import { LocalCluster, makeTempDir } from '@runnel/testkit';
import { printNodeLogsOnFailure, waitFor } from './harness.js';

describe('controller-only and broker-only nodes', () => {
  let cluster: LocalCluster;
  let dir: string;
  printNodeLogsOnFailure(() => cluster?.nodes ?? []);
  beforeAll(async () => {
    dir = await makeTempDir('runnel-roles-');
    cluster = await LocalCluster.start({ nodes: 5, dataDir: dir, roles: (id) => (id <= 3 ? 'controller' : 'broker') });
  });
  afterAll(async () => {
    await cluster?.kill();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('serves topics on the brokers while the controllers keep the metadata', async () => {
    const bootstrap = [cluster.node(4).bootstrap, cluster.node(5).bootstrap];
    const admin = new Admin({ bootstrap });
    try {
      await admin.createTopics([{ name: 'split', partitions: 4, replicationFactor: 2 }]);
      // Only brokers are placed; RF 3 needs three of them.
      await expect(admin.createTopics([{ name: 'too-wide', partitions: 1, replicationFactor: 3 }])).rejects.toThrow(/INVALID_REPLICATION_FACTOR/);
      const status = await admin.clusterStatus();
      expect(status.nodes.map((node) => node.id)).toEqual([4, 5]);
      expect([1, 2, 3]).toContain(status.controller.id);
      expect(status.voters.map((voter) => voter.id)).toEqual([1, 2, 3]);
      for (const partition of status.topics[0]!.partitions) expect([...partition.replicas].sort()).toEqual([4, 5]);

      const producer = new Producer({ bootstrap, acks: -1 });
      await Promise.all(Array.from({ length: 100 }, (_, k) => producer.send({ topic: 'split', partition: k % 4, value: Buffer.from(`${k}`) })));
      await producer.close();

      // Losing the active controller does not stop the brokers.
      const controller = status.controller.id;
      await cluster.node(controller).kill('SIGKILL');
      await waitFor('a new active controller', async () => {
        const now = await admin.clusterStatus();
        return now.controller.id !== -1 && now.controller.id !== controller ? true : undefined;
      }, 10_000);
      await admin.createTopics([{ name: 'after', partitions: 1, replicationFactor: 2 }]);
    } finally {
      await admin.close();
    }
    const consumer = new Consumer({ bootstrap });
    let read = 0;
    try {
      const partitions = [0, 1, 2, 3].map((partition) => ({ topic: 'split', partition }));
      consumer.assign(partitions);
      await consumer.seekToBeginning(partitions);
      for (let idle = 0; idle < 3 && read < 100; ) {
        const records = await consumer.poll(300);
        if (records.length === 0) idle++;
        read += records.length;
      }
    } finally {
      await consumer.close();
    }
    expect(read).toBe(100);
  });
});
