// One log, two doors: records written through gRPC (Runnel's own Producer) and through the Kafka
// protocol (KafkaJS) into one partition read back identically through either door, each at the
// offset its producer was given.
import { describe, expect, it } from 'vitest';
import { Kafka, Partitioners, logLevel } from 'kafkajs';
import { Consumer as RunnelConsumer, Producer as RunnelProducer } from '@runnel/client';
import { waitFor } from '../integration/harness.js';
import { createTopic, grpcBootstrap, kafkaBootstrap, useKafkaCluster } from './kafkaCluster.js';

/** A record as either door shows it, with what the test compares. */
interface SeenRecord {
  offset: number;
  key: string | null;
  value: string;
  headers: Record<string, string>;
  timestamp: number;
}

const TOPIC = 'interop';
const PARTITION = 1;

describe('interop between the gRPC door and the Kafka door', () => {
  const fixture = useKafkaCluster();

  async function readThroughGrpc(count: number): Promise<SeenRecord[]> {
    const consumer = new RunnelConsumer({ bootstrap: grpcBootstrap(fixture.cluster), requestTimeoutMs: 5000 });
    const records: SeenRecord[] = [];
    try {
      consumer.assign([{ topic: TOPIC, partition: PARTITION }]);
      await consumer.seekToBeginning([{ topic: TOPIC, partition: PARTITION }]);
      const deadline = Date.now() + 20_000;
      while (records.length < count && Date.now() < deadline) {
        for (const record of await consumer.poll(300)) {
          records.push({
            offset: record.offset,
            key: record.key?.toString() ?? null,
            value: record.value?.toString() ?? '',
            headers: Object.fromEntries(Object.entries(record.headers).map(([name, value]) => [name, value?.toString() ?? ''])),
            timestamp: record.timestamp,
          });
        }
      }
    } finally {
      await consumer.close();
    }
    return records;
  }

  async function readThroughKafka(kafka: Kafka, count: number): Promise<SeenRecord[]> {
    const consumer = kafka.consumer({ groupId: 'interop-reader', sessionTimeout: 6000, heartbeatInterval: 500, maxWaitTimeInMs: 300 });
    const records: SeenRecord[] = [];
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [TOPIC], fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ partition, message }) => {
          if (partition !== PARTITION) return;
          records.push({
            offset: Number(message.offset),
            key: message.key?.toString() ?? null,
            value: message.value?.toString() ?? '',
            headers: Object.fromEntries(Object.entries(message.headers ?? {}).map(([name, value]) => [name, value?.toString() ?? ''])),
            timestamp: Number(message.timestamp),
          });
        },
      });
      await waitFor(`${count} records through the Kafka door`, () => (records.length >= count ? true : undefined), 20_000, 200);
    } finally {
      await consumer.disconnect();
    }
    return records.sort((a, b) => a.offset - b.offset);
  }

  it('records produced through either door read back through both, identical and at the offsets their producers were given', async () => {
    await createTopic(fixture.cluster, TOPIC, 2);
    const kafka = new Kafka({ clientId: 'compat-interop', brokers: kafkaBootstrap(fixture.cluster), logLevel: logLevel.NOTHING });
    const kafkaProducer = kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
    const grpcProducer = new RunnelProducer({ bootstrap: grpcBootstrap(fixture.cluster), acks: -1, lingerMs: 0 });
    /** What each producer said: offset → the record it sent. */
    const given = new Map<number, Omit<SeenRecord, 'offset'>>();
    try {
      await kafkaProducer.connect();
      // Interleaved rounds, so each door writes at offsets the other one moved.
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 5; i++) {
          const record = { key: `grpc-key-${round}-${i}`, value: `grpc-${round}-${i}`, headers: { door: 'grpc' }, timestamp: 1_700_000_000_000 + round * 100 + i };
          const metadata = await grpcProducer.send({ topic: TOPIC, partition: PARTITION, ...record });
          expect(metadata.partition).toBe(PARTITION);
          given.set(metadata.offset, record);
        }
        const batch = Array.from({ length: 5 }, (_, i) => ({ key: `kafka-key-${round}-${i}`, value: `kafka-${round}-${i}`, headers: { door: 'kafka' }, timestamp: 1_700_000_050_000 + round * 100 + i }));
        const [metadata] = await kafkaProducer.send({ topic: TOPIC, acks: -1, messages: batch.map((record) => ({ ...record, partition: PARTITION, timestamp: String(record.timestamp) })) });
        expect(metadata!.partition).toBe(PARTITION);
        batch.forEach((record, i) => given.set(Number(metadata!.baseOffset) + i, record));
      }
    } finally {
      await kafkaProducer.disconnect();
      await grpcProducer.close();
    }
    // Thirty records, offsets 0..29 with none given twice.
    expect([...given.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    const expected = [...given.entries()].sort(([a], [b]) => a - b).map(([offset, record]) => ({ offset, ...record }));

    expect(await readThroughGrpc(30)).toEqual(expected);
    expect(await readThroughKafka(kafka, 30)).toEqual(expected);
  });
});
