// KafkaJS 2.2.4 against a 3-node cluster through the PLAINTEXT listener: admin topic creation and
// deletion, an acks=-1 gzip producer, a consumer group of two members, a topic grown under a running
// group (admin.createPartitions), and a producer that goes on
// through a SIGKILL of a partition leader without losing an acknowledged record.
import { describe, expect, it } from 'vitest';
import { CompressionTypes, Kafka, Partitioners, logLevel, type Consumer } from 'kafkajs';
import { Admin as RunnelAdmin } from '@runnel/client';
import { waitFor } from '../integration/harness.js';
import { createTopic, grpcBootstrap, kafkaBootstrap, expectRecoveredWithoutLoss, produceAcrossLeaderKill, useKafkaCluster } from './kafkaCluster.js';

describe('KafkaJS 2.2.4 against a 3-node cluster', () => {
  const fixture = useKafkaCluster({ 'min.insync.replicas': '2' });
  const kafka = () =>
    new Kafka({
      clientId: 'compat-kafkajs',
      brokers: kafkaBootstrap(fixture.cluster),
      // The failover test expects the client to ride out a leader election (the controller fences
      // a dead broker after broker.session.timeout.ms, 3 s here) on its own retries.
      retry: { retries: 10, initialRetryTime: 200, maxRetryTime: 2000 },
      connectionTimeout: 3000,
      requestTimeout: 10_000,
      logLevel: logLevel.NOTHING,
    });
  const producerOf = (client: Kafka) => client.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });

  it('admin creates a topic (3 partitions, RF 3) and deletes it', async () => {
    const admin = kafka().admin();
    const runnel = new RunnelAdmin({ bootstrap: grpcBootstrap(fixture.cluster) });
    await admin.connect();
    try {
      expect(await admin.createTopics({ topics: [{ topic: 'kafkajs-admin', numPartitions: 3, replicationFactor: 3 }], waitForLeaders: true })).toBe(true);
      expect(await admin.listTopics()).toContain('kafkajs-admin');
      const [described] = (await admin.fetchTopicMetadata({ topics: ['kafkajs-admin'] })).topics;
      expect(described!.partitions.map((partition) => partition.replicas.length)).toEqual([3, 3, 3]);
      // The broker's own view agrees with what the Kafka client was told.
      const [stored] = await runnel.describeTopics(['kafkajs-admin']);
      expect(stored!.partitions.map((partition) => partition.replicas.length)).toEqual([3, 3, 3]);

      await admin.deleteTopics({ topics: ['kafkajs-admin'], timeout: 10_000 });
      await waitFor('kafkajs-admin to be gone', async () => (!(await admin.listTopics()).includes('kafkajs-admin') ? true : undefined), 10_000, 200);
      expect(await runnel.listTopics()).not.toContain('kafkajs-admin');
    } finally {
      await admin.disconnect();
      await runnel.close();
    }
  });

  it('two group members split the partitions and read every record of an acks=-1 gzip producer', async () => {
    const topic = 'kafkajs-group';
    await createTopic(fixture.cluster, topic, 4);
    const client = kafka();
    const assignments = new Map<Consumer, number[]>();
    const received = new Map<Consumer, Array<{ partition: number; value: string }>>();
    const members = [0, 1].map(() => client.consumer({ groupId: 'kafkajs-group', sessionTimeout: 6000, heartbeatInterval: 500, maxWaitTimeInMs: 500 }));
    const producer = producerOf(client);
    try {
      for (const member of members) {
        received.set(member, []);
        member.on(member.events.GROUP_JOIN, (event) => assignments.set(member, [...(event.payload.memberAssignment[topic] ?? [])].sort()));
        await member.connect();
        await member.subscribe({ topics: [topic], fromBeginning: true });
        await member.run({ eachMessage: async ({ partition, message }) => void received.get(member)!.push({ partition, value: message.value!.toString() }) });
      }
      await waitFor(
        'both members to be assigned two partitions each',
        () => (members.every((member) => assignments.get(member)?.length === 2) && new Set(members.flatMap((member) => assignments.get(member)!)).size === 4 ? true : undefined),
        30_000,
        200,
      );

      await producer.connect();
      const values = Array.from({ length: 2000 }, (_, i) => `kafkajs-${i}`);
      for (let start = 0; start < values.length; start += 200) {
        const sent = await producer.send({
          topic,
          acks: -1,
          compression: CompressionTypes.GZIP,
          messages: values.slice(start, start + 200).map((value, i) => ({ key: `key-${start + i}`, value })),
        });
        expect(sent.every((metadata) => metadata.errorCode === 0)).toBe(true);
      }

      const total = () => members.reduce((sum, member) => sum + received.get(member)!.length, 0);
      await waitFor('every record to be consumed', () => (total() >= values.length ? true : undefined), 30_000, 200);
      expect(new Set(members.flatMap((member) => received.get(member)!.map((record) => record.value)))).toEqual(new Set(values));
      for (const member of members) {
        const records = received.get(member)!;
        expect(records.length).toBeGreaterThan(0);
        expect(new Set(records.map((record) => record.partition))).toEqual(new Set(assignments.get(member)));
      }
    } finally {
      await producer.disconnect();
      for (const member of members) await member.disconnect();
    }
  });

  it('admin.createPartitions grows a topic; a running group rebalances onto the new partitions at its metadata refresh; shrinking is INVALID_PARTITIONS', async () => {
    const topic = 'kafkajs-grow';
    await createTopic(fixture.cluster, topic, 2);
    const client = kafka();
    const admin = client.admin();
    const assignments = new Map<Consumer, number[]>();
    const received: Array<{ partition: number; value: string }> = [];
    // metadataMaxAge: KafkaJS compares the partitions of its subscribed topics after each metadata
    // refresh and rejoins when they changed.
    const members = [0, 1].map(() => client.consumer({ groupId: 'kafkajs-grow', sessionTimeout: 6000, heartbeatInterval: 500, maxWaitTimeInMs: 500, metadataMaxAge: 1000 }));
    const producer = producerOf(client);
    const covered = (partitions: number) => () =>
      new Set(members.flatMap((member) => assignments.get(member) ?? [])).size === partitions && members.every((member) => (assignments.get(member)?.length ?? 0) === partitions / 2) ? true : undefined;
    try {
      for (const member of members) {
        member.on(member.events.GROUP_JOIN, (event) => assignments.set(member, [...(event.payload.memberAssignment[topic] ?? [])].sort()));
        await member.connect();
        await member.subscribe({ topics: [topic], fromBeginning: true });
        await member.run({ eachMessage: async ({ partition, message }) => void received.push({ partition, value: message.value!.toString() }) });
      }
      await waitFor('both members to get one of the 2 partitions', covered(2), 30_000, 200);

      await admin.connect();
      await admin.createPartitions({ topicPartitions: [{ topic, count: 4 }] });
      // The broker that answered has the new partitions; the others get them as they apply the
      // metadata log (in Kafka too, metadata reaches brokers one by one).
      await waitFor(
        'every partition of the grown topic in the metadata',
        async () => ((await admin.fetchTopicMetadata({ topics: [topic] })).topics[0]!.partitions.map((partition) => partition.partitionId).sort().join() === '0,1,2,3' ? true : undefined),
        10_000,
        200,
      );
      await waitFor('both members to get two of the 4 partitions', covered(4), 30_000, 200);

      await producer.connect();
      const values = Array.from({ length: 40 }, (_, i) => `grown-${i}`);
      const sent = await producer.send({ topic, acks: -1, messages: values.map((value, i) => ({ value, partition: i % 4 })) });
      expect(sent.every((metadata) => metadata.errorCode === 0)).toBe(true);
      await waitFor('every record, on all 4 partitions, to be consumed', () => (values.every((value) => received.some((record) => record.value === value)) ? true : undefined), 30_000, 200);
      expect(new Set(received.map((record) => record.partition))).toEqual(new Set([0, 1, 2, 3]));

      const refused = (await admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] }).catch((error: unknown) => error)) as { type?: string; name?: string };
      expect(refused).toMatchObject({ type: 'INVALID_PARTITIONS' });
      expect((await admin.fetchTopicMetadata({ topics: [topic] })).topics[0]!.partitions).toHaveLength(4);
    } finally {
      await producer.disconnect();
      for (const member of members) await member.disconnect();
      await admin.disconnect();
    }
  });

  it('SIGKILL of a partition leader mid-produce: the producer recovers and no acknowledged record is lost', async () => {
    const topic = 'kafkajs-failover';
    await createTopic(fixture.cluster, topic, 3);
    const client = kafka();
    const producer = producerOf(client);
    await producer.connect();
    const run = await produceAcrossLeaderKill(fixture.cluster, topic, (values) => producer.send({ topic, acks: -1, messages: values.map((value) => ({ value })) })).finally(() =>
      producer.disconnect(),
    );
    await expectRecoveredWithoutLoss(fixture.cluster, topic, run);
  });
});
