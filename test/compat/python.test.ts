// Debian's Python Kafka clients (confluent-kafka-python on librdkafka 2.0.2, and kafka-python
// 2.0.2) against a 3-node cluster: produce with acks=all, consume in a group and commit, then a
// new consumer in the same group resumes exactly at the committed offsets.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runProcess } from '../integration/processes.js';
import { createTopic, kafkaBootstrap, useKafkaCluster } from './kafkaCluster.js';
import { CONFLUENT_KAFKA_PYTHON, KAFKA_PYTHON, SYSTEM_PYTHON, describeWithSystemClients, type SystemClient } from './systemClients.js';

const GROUP_CLIENT = fileURLToPath(new URL('./python/group_client.py', import.meta.url));
const RECORDS = 600;
const FIRST_READ = 250;

interface Delivered {
  partition: number;
  offset: number;
  value: string;
}

interface ProduceReport {
  delivered: Delivered[];
  errors: string[];
  undelivered: number;
}

interface ConsumeReport {
  records: Delivered[];
  committed: Record<string, number>;
  errors: string[];
}

const cases: Array<{ client: SystemClient; flag: string }> = [
  { client: CONFLUENT_KAFKA_PYTHON, flag: 'confluent' },
  { client: KAFKA_PYTHON, flag: 'kafka-python' },
];

describe('Python clients against a 3-node cluster', () => {
  const fixture = useKafkaCluster();

  for (const { client, flag } of cases) {
    describeWithSystemClients(client.name, [client], () => {
      async function groupClient<T>(topic: string, args: string[]): Promise<T> {
        const result = await runProcess(
          SYSTEM_PYTHON,
          [GROUP_CLIENT, '--client', flag, '--bootstrap', kafkaBootstrap(fixture.cluster).join(','), '--topic', topic, '--timeout', '40', ...args],
          { timeoutMs: 60_000 },
        );
        expect(result.code, `group_client.py ${args[0]} failed:\n${result.stderr.slice(-3000)}`).toBe(0);
        return JSON.parse(result.stdout) as T;
      }

      it('produces with acks=all, consumes in a group, commits, and a restarted consumer resumes at the committed offsets', async () => {
        const topic = `python-${flag}`;
        await createTopic(fixture.cluster, topic, 3);

        const produced = await groupClient<ProduceReport>(topic, ['produce', '--count', String(RECORDS), '--prefix', flag]);
        expect(produced.errors).toEqual([]);
        expect(produced.undelivered).toBe(0);
        expect(produced.delivered).toHaveLength(RECORDS);

        const first = await groupClient<ConsumeReport>(topic, ['consume', '--group', `${flag}-group`, '--max-records', String(FIRST_READ)]);
        expect(first.errors).toEqual([]);
        expect(first.records).toHaveLength(FIRST_READ);
        // What the group committed is, per partition, the offset after the last record read there.
        const expectedCommits: Record<string, number> = {};
        for (const record of first.records) expectedCommits[record.partition] = Math.max(expectedCommits[record.partition] ?? 0, record.offset + 1);
        expect(first.committed).toEqual(expectedCommits);

        const second = await groupClient<ConsumeReport>(topic, ['consume', '--group', `${flag}-group`, '--max-records', String(RECORDS - FIRST_READ)]);
        expect(second.errors).toEqual([]);
        // The restarted member starts each partition where the commit left it (0 where nothing was committed)...
        for (const partition of new Set(second.records.map((record) => record.partition))) {
          const firstOffset = Math.min(...second.records.filter((record) => record.partition === partition).map((record) => record.offset));
          expect(firstOffset, `partition ${partition}`).toBe(first.committed[partition] ?? 0);
        }
        // ...so the two runs read every record exactly once, at the offset its delivery report gave.
        const key = (record: Delivered) => `${record.partition}:${record.offset}:${record.value}`;
        const read = [...first.records, ...second.records].map(key);
        expect(read).toHaveLength(RECORDS);
        expect(new Set(read)).toEqual(new Set(produced.delivered.map(key)));
      });
    });
  }
});
