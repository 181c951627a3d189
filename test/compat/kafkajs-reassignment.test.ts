// KafkaJS 2.2.4's reassignment admin (KIP-455: AlterPartitionReassignments,
// ListPartitionReassignments) against a 3-node cluster through the PLAINTEXT listener: a small
// partition moves to the third broker and every record stays; a large one is held mid-move by the
// follower throttle, so the listing shows the adding and removing replicas, and a cancel (a null
// replica list, which KafkaJS cannot send, so a raw request) puts it back.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Kafka, Partitioners, logLevel, type Admin } from 'kafkajs';
import { Admin as RunnelAdmin } from '@runnel/client';
import { errorCode } from '@runnel/common';
import { KafkaWireClient, type LocalCluster } from '@runnel/testkit';
import { waitFor } from '../integration/harness.js';
import { grpcBootstrap, kafkaBootstrap, missingFromReadBack, useKafkaCluster } from './kafkaCluster.js';

/** The replicas of partition 0 of `topic`, as the cluster's metadata has them. */
async function replicasOf(cluster: LocalCluster, topic: string): Promise<number[]> {
  const runnel = new RunnelAdmin({ bootstrap: grpcBootstrap(cluster) });
  try {
    const [described] = await runnel.describeTopics([topic]);
    return described!.partitions[0]!.replicas;
  } finally {
    await runnel.close();
  }
}

describe('KafkaJS 2.2.4 reassigns partitions', () => {
  // A replica being added may fetch about 1 KB/s once its first fetch (up to 1 MiB) is in: a
  // partition of a few MB stays mid-move for as long as the test looks at it.
  const fixture = useKafkaCluster({ 'follower.replication.throttled.rate': '1000', 'replication.quota.window.num': '2', 'replication.quota.window.size.seconds': '1' });
  const kafka = () => new Kafka({ clientId: 'compat-kafkajs-reassign', brokers: kafkaBootstrap(fixture.cluster), logLevel: logLevel.NOTHING, retry: { retries: 10 } });

  async function topicWith(admin: Admin, topic: string, records: number, valueBytes: number): Promise<{ replicas: number[]; values: string[] }> {
    await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 2 }], waitForLeaders: true });
    const producer = kafka().producer({ createPartitioner: Partitioners.DefaultPartitioner });
    const values = Array.from({ length: records }, (_, k) => `${k}-`.padEnd(valueBytes, 'x'));
    await producer.connect();
    try {
      for (let start = 0; start < values.length; start += 100) {
        await producer.send({ topic, acks: -1, messages: values.slice(start, start + 100).map((value) => ({ value })) });
      }
    } finally {
      await producer.disconnect();
    }
    return { replicas: await replicasOf(fixture.cluster, topic), values };
  }

  it('moves a partition onto the third broker; the removed replica is deleted and every record stays', async () => {
    const admin = kafka().admin();
    await admin.connect();
    try {
      const { replicas, values } = await topicWith(admin, 'kafkajs-moved', 200, 100);
      const spare = [1, 2, 3].find((id) => !replicas.includes(id))!;
      const target = [replicas[0]!, spare];
      await admin.alterPartitionReassignments({ topics: [{ topic: 'kafkajs-moved', partitionAssignment: [{ partition: 0, replicas: target }] }] });
      await waitFor('the move to complete', async () => ((await admin.listPartitionReassignments({})).topics.length === 0 ? true : undefined), 30_000, 200);
      expect(await replicasOf(fixture.cluster, 'kafkajs-moved')).toEqual(target);
      const [metadata] = (await admin.fetchTopicMetadata({ topics: ['kafkajs-moved'] })).topics;
      expect(metadata!.partitions[0]!.replicas).toEqual(target);
      await waitFor(`node ${replicas[1]} deleted its replica`, () => (existsSync(join(fixture.cluster.node(replicas[1]!).dataDir, 'logs', 'kafkajs-moved-0')) ? undefined : true), 30_000);
      expect(await missingFromReadBack(fixture.cluster, 'kafkajs-moved', values, 30_000)).toEqual([]);

      // A broker that does not exist: KafkaJS surfaces Kafka's INVALID_REPLICA_ASSIGNMENT.
      await expect(
        admin.alterPartitionReassignments({ topics: [{ topic: 'kafkajs-moved', partitionAssignment: [{ partition: 0, replicas: [replicas[0]!, 99] }] }] }),
      ).rejects.toMatchObject({ errors: [expect.objectContaining({ type: 'INVALID_REPLICA_ASSIGNMENT' })] });
    } finally {
      await admin.disconnect();
    }
  });

  it('lists a move held by the throttle, and a raw AlterPartitionReassignments with null replicas cancels it', async () => {
    const admin = kafka().admin();
    await admin.connect();
    const raw = await KafkaWireClient.connect(kafkaBootstrap(fixture.cluster)[0]!, 'compat-reassign-raw');
    try {
      const { replicas, values } = await topicWith(admin, 'kafkajs-held', 3000, 1000);
      const spare = [1, 2, 3].find((id) => !replicas.includes(id))!;
      await admin.alterPartitionReassignments({ topics: [{ topic: 'kafkajs-held', partitionAssignment: [{ partition: 0, replicas: [replicas[0]!, spare] }] }] });
      const listed = await admin.listPartitionReassignments({ topics: [{ topic: 'kafkajs-held', partitions: [0] }] });
      // KafkaJS hands the answer over as decoded ({ name, partitions: [{ partition, … }] }), not as its typings say.
      expect(listed.topics as unknown).toEqual([
        { name: 'kafkajs-held', partitions: [{ partition: 0, replicas: [replicas[0]!, spare, replicas[1]!], addingReplicas: [spare], removingReplicas: [replicas[1]!] }] },
      ]);
      // Every moving partition when no topic is named; none of a topic that does not move.
      expect((await admin.listPartitionReassignments({})).topics.map((topic) => (topic as unknown as { name: string }).name)).toEqual(['kafkajs-held']);
      expect((await admin.listPartitionReassignments({ topics: [{ topic: 'kafkajs-moved', partitions: [0] }] })).topics).toEqual([]);
      // Still moving a little later: the throttle holds it.
      await new Promise((resolve) => setTimeout(resolve, 2000));
      expect((await admin.listPartitionReassignments({})).topics).toHaveLength(1);

      const cancelled = await raw.send('AlterPartitionReassignments', 0, { timeoutMs: 30_000, topics: [{ name: 'kafkajs-held', partitions: [{ partitionIndex: 0, replicas: null }] }] });
      expect(cancelled).toMatchObject({ errorCode: 0, responses: [{ name: 'kafkajs-held', partitions: [{ partitionIndex: 0, errorCode: 0, errorMessage: null }] }] });
      expect((await admin.listPartitionReassignments({})).topics).toEqual([]);
      expect(await replicasOf(fixture.cluster, 'kafkajs-held')).toEqual(replicas);
      await waitFor(`node ${spare} deleted its partial copy`, () => (existsSync(join(fixture.cluster.node(spare).dataDir, 'logs', 'kafkajs-held-0')) ? undefined : true), 30_000);
      // Nothing to cancel now: Kafka's NO_REASSIGNMENT_IN_PROGRESS.
      const again = await raw.send('AlterPartitionReassignments', 0, { timeoutMs: 30_000, topics: [{ name: 'kafkajs-held', partitions: [{ partitionIndex: 0, replicas: null }] }] });
      expect(again.responses[0]!.partitions[0]!.errorCode).toBe(errorCode('NO_REASSIGNMENT_IN_PROGRESS'));
      expect(await missingFromReadBack(fixture.cluster, 'kafkajs-held', values, 30_000)).toEqual([]);
    } finally {
      raw.close();
      await admin.disconnect();
    }
  });
});
