// kcat (librdkafka 2.0.2, Debian's) against a 3-node cluster through the PLAINTEXT listener:
// metadata, a 100,000-line produce with acks=all, read back in order, a balanced consumer group of
// two kcat processes, and batches compressed with each codec, which Runnel's own consumer must read.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../integration/cli.js';
import { waitFor } from '../integration/harness.js';
import { BackgroundProcess, runProcess, type ProcessResult } from '../integration/processes.js';
import { createTopic, grpcBootstrap, kafkaBootstrap, leaderOf, storedCodecs, useKafkaCluster } from './kafkaCluster.js';
import { KCAT, describeWithSystemClients } from './systemClients.js';

interface ConsumedLine {
  partition: number;
  offset: number;
  value: string;
}

/** kcat's `-f '%p %o %s\n'` output, one record a line. */
const RECORD_FORMAT = '%p %o %s\\n';

function parseRecords(stdout: string): ConsumedLine[] {
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const [partition, offset, ...value] = line.split(' ');
      return { partition: Number(partition), offset: Number(offset), value: value.join(' ') };
    });
}

/** The partitions of the last "Group ... rebalanced ...: assigned: t [0], t [2]" line kcat -G wrote to stderr (undefined before any). */
function lastAssignment(stderr: string, topic: string): number[] | undefined {
  const lines = stderr.split('\n').filter((line) => / rebalanced .*: (assigned|revoked): /.test(line));
  const last = lines.at(-1);
  if (last === undefined || !last.includes('assigned: ')) return undefined;
  return [...last.matchAll(new RegExp(`${topic} \\[(\\d+)\\]`, 'g'))].map((match) => Number(match[1])).sort((a, b) => a - b);
}

function groupByPartition(records: readonly ConsumedLine[]): Map<number, ConsumedLine[]> {
  const groups = new Map<number, ConsumedLine[]>();
  for (const record of records) {
    const group = groups.get(record.partition);
    if (group === undefined) groups.set(record.partition, [record]);
    else group.push(record);
  }
  return groups;
}

function expectSuccess(result: ProcessResult, what: string): void {
  expect(result.code, `${what} failed:\n${result.stderr.slice(-2000)}`).toBe(0);
  expect(result.stderr).not.toMatch(/Delivery failed|Failed to produce/);
}

describeWithSystemClients('kcat against a 3-node cluster', [KCAT], () => {
  const fixture = useKafkaCluster();
  const bootstrap = () => kafkaBootstrap(fixture.cluster).join(',');
  const kcat = (args: string[], timeoutMs = 60_000) => runProcess('kcat', ['-b', bootstrap(), ...args], { timeoutMs });
  /** Produces `lines` to `topic` (`-P -l`: one record a line of a file, as a user would feed kcat). */
  const produceFile = async (topic: string, lines: readonly string[], extra: string[] = []) => {
    const file = join(fixture.dir, `${topic}-${Date.now()}.txt`);
    writeFileSync(file, lines.join('\n') + '\n');
    expectSuccess(await kcat(['-P', '-t', topic, '-X', 'acks=all', ...extra, '-l', file], 120_000), `kcat -P ${topic}`);
  };
  const consumeToEnd = async (topic: string) => {
    const result = await kcat(['-C', '-t', topic, '-o', 'beginning', '-e', '-q', '-f', RECORD_FORMAT], 120_000);
    expect(result.code, result.stderr).toBe(0);
    return parseRecords(result.stdout);
  };

  it('-L lists the 3 brokers at their Kafka addresses and the topics with leaders, replicas and ISR', async () => {
    await createTopic(fixture.cluster, 'listed', 3);
    const result = await kcat(['-L', '-J']);
    expect(result.code, result.stderr).toBe(0);
    const metadata = JSON.parse(result.stdout) as {
      controllerid: number;
      brokers: Array<{ id: number; name: string }>;
      topics: Array<{ topic: string; partitions: Array<{ partition: number; leader: number; replicas: Array<{ id: number }>; isrs: Array<{ id: number }> }> }>;
    };
    expect(metadata.brokers.map((broker) => broker.id).sort()).toEqual([1, 2, 3]);
    for (const broker of metadata.brokers) expect(broker.name).toBe(fixture.cluster.node(broker.id).kafkaBootstrap);
    expect([1, 2, 3]).toContain(metadata.controllerid);
    const listed = metadata.topics.find((topic) => topic.topic === 'listed');
    expect(listed?.partitions.map((partition) => partition.partition).sort()).toEqual([0, 1, 2]);
    for (const partition of listed!.partitions) {
      expect([1, 2, 3]).toContain(partition.leader);
      expect(partition.replicas.map((replica) => replica.id).sort()).toEqual([1, 2, 3]);
      expect(partition.isrs.map((replica) => replica.id).sort()).toEqual([1, 2, 3]);
    }
  });

  it('-P sends 100,000 lines from a file with acks=all; -C -e reads every one back, in order within each partition', async () => {
    await createTopic(fixture.cluster, 'lines', 3);
    const lines = Array.from({ length: 100_000 }, (_, i) => `line-${String(i).padStart(6, '0')}`);
    await produceFile('lines', lines);

    const records = await consumeToEnd('lines');
    expect(records).toHaveLength(lines.length);
    expect(new Set(records.map((record) => record.value))).toEqual(new Set(lines));
    const byPartition = groupByPartition(records);
    expect([...byPartition.keys()].sort()).toEqual([0, 1, 2]);
    for (const partitionRecords of byPartition.values()) {
      // Offsets dense from 0, and the lines of one partition in the order the file had them.
      expect(partitionRecords.map((record) => record.offset)).toEqual(partitionRecords.map((_, index) => index));
      const values = partitionRecords.map((record) => record.value);
      expect(values).toEqual([...values].sort());
    }
  });

  it('-G: two kcat consumers in one group split the partitions, and each gets the new records of its own', async () => {
    const topic = 'grouped';
    await createTopic(fixture.cluster, topic, 4);
    const produceRound = async (round: string) => {
      const sent: ConsumedLine[] = [];
      for (let partition = 0; partition < 4; partition++) {
        const values = Array.from({ length: 25 }, (_, i) => `${round}-p${partition}-${i}`);
        await produceFile(topic, values, ['-p', String(partition)]);
        sent.push(...values.map((value) => ({ partition, offset: -1, value })));
      }
      return sent;
    };
    const before = await produceRound('before');

    const groupConsumer = () =>
      new BackgroundProcess(
        'kcat',
        // kcat -G replaces librdkafka's default topic config with its own, so a topic property has
        // to be named as one (topic.…) to reach it.
        // -u: kcat's stdout is block-buffered into a pipe, and the test reads it as it comes.
        ['-b', bootstrap(), '-G', 'kcat-group', topic, '-u', '-f', RECORD_FORMAT, '-X', 'topic.auto.offset.reset=earliest', '-X', 'heartbeat.interval.ms=300', '-X', 'session.timeout.ms=6000'],
        90_000,
      );
    const first = groupConsumer();
    let second: BackgroundProcess | undefined;
    try {
      // Alone in the group, the first member owns every partition and reads what is there.
      await waitFor('the first member to read every record', () => (parseRecords(first.stdout).length >= before.length ? true : undefined), 30_000, 200);
      expect(lastAssignment(first.stderr, topic)).toEqual([0, 1, 2, 3]);

      second = groupConsumer();
      const joined = second;
      const [mine, theirs] = await waitFor(
        'the group to split the partitions between the two members',
        () => {
          const a = lastAssignment(first.stderr, topic);
          const b = lastAssignment(joined.stderr, topic);
          if (a === undefined || b === undefined || a.length === 0 || b.length === 0) return undefined;
          return a.length + b.length === 4 && new Set([...a, ...b]).size === 4 ? [a, b] : undefined;
        },
        30_000,
        200,
      );

      const after = await produceRound('after');
      const afterOf = (member: BackgroundProcess) => parseRecords(member.stdout).filter((record) => record.value.startsWith('after-'));
      await waitFor('both members to read the new records', () => (afterOf(first).length + afterOf(joined).length >= after.length ? true : undefined), 30_000, 200);
      const expectedFor = (partitions: number[]) => after.filter((record) => partitions.includes(record.partition)).map((record) => record.value).sort();
      expect(afterOf(first).map((record) => record.value).sort()).toEqual(expectedFor(mine!));
      expect(afterOf(joined).map((record) => record.value).sort()).toEqual(expectedFor(theirs!));
    } finally {
      await Promise.all([first.stop(), second?.stop()]);
    }
  });

  it.each(['gzip', 'snappy', 'lz4', 'zstd'] as const)('-z %s: the leader stores the batches as kcat compressed them, and kcat and runnel consume read them back', async (codec) => {
    const topic = `compressed-${codec}`;
    const lines = Array.from({ length: 2000 }, (_, i) => `${codec} line ${i} ${'x'.repeat(64)}`);
    await createTopic(fixture.cluster, topic, 1);
    await produceFile(topic, lines, ['-z', codec]);
    // librdkafka sends uncompressed batches when the broker's API versions do not admit the codec.
    const leader = await leaderOf(fixture.cluster, topic, 0);
    expect(storedCodecs(fixture.cluster, leader.nodeId, topic, 0)).toEqual(new Set([codec]));
    expect((await consumeToEnd(topic)).map((record) => record.value)).toEqual(lines);

    const consumed = await runCli(['--bootstrap', grpcBootstrap(fixture.cluster).join(','), 'consume', topic, '--from-beginning', '--max-messages', String(lines.length), '--timeout-ms', '20000']);
    expect(consumed.stderr).toBe('');
    expect(consumed.code).toBe(0);
    expect(consumed.stdout.trimEnd().split('\n')).toEqual(lines);
  });
});
