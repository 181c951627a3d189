// Helpers of the scale-out tests (replica-balance, decommission): a cluster whose later nodes join
// when the test launches them, acks=all writers, and checks that every acknowledged record is
// readable and every replica of a partition holds the same bytes.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, expect } from 'vitest';
import { Admin, Consumer, Producer } from '@runnel/client';
import { RunnelError } from '@runnel/common';
import { LocalCluster, makeTempDir } from '@runnel/testkit';
import { printNodeLogsOnFailure, waitFor } from './harness.js';

export interface LateCluster {
  readonly cluster: LocalCluster;
}

/** Nodes 1..`voters` (broker and controller) start before the suite; the others (brokers only) wait for `launch()`. */
export function useClusterWithLateBrokers(nodes: number, voters: number, config: Record<string, string>): LateCluster {
  const state = {} as { cluster: LocalCluster; dir: string };
  printNodeLogsOnFailure(() => state.cluster?.nodes ?? []);
  beforeAll(async () => {
    state.dir = await makeTempDir('runnel-balance-');
    state.cluster = await LocalCluster.create({ nodes, dataDir: state.dir, config, roles: (id) => (id <= voters ? 'broker,controller' : 'broker') });
    await Promise.all(state.cluster.nodes.filter((node) => node.nodeId <= voters).map((node) => node.launch()));
  });
  afterAll(async () => {
    for (const node of state.cluster?.nodes ?? []) node.resume();
    await state.cluster?.kill();
    if (state.dir !== undefined) await rm(state.dir, { recursive: true, force: true });
  });
  return state;
}

/** Writers with acks=all spreading records over a topic's partitions until `stop()`; only retriable errors may reach them. */
export class Writers {
  readonly acknowledged = new Map<number, string[]>();
  readonly failures: unknown[] = [];
  private producing = true;
  private readonly producers: Producer[];
  private readonly loops: Promise<void>[];

  constructor(bootstrap: () => string[], topic: string, partitions: number, count: number) {
    this.producers = Array.from({ length: count }, () => new Producer({ bootstrap: bootstrap(), acks: -1, lingerMs: 5, requestTimeoutMs: 5000 }));
    let sequence = 0;
    this.loops = this.producers.map(async (producer, writer) => {
      while (this.producing) {
        const batch = Array.from({ length: 24 }, () => ({ partition: sequence % partitions, value: `w${writer}-r${sequence++}-${'x'.repeat(100)}` }));
        await Promise.all(
          batch.map(({ partition, value }) =>
            producer.send({ topic, partition, value: Buffer.from(value) }).then(
              () => (this.acknowledged.get(partition) ?? this.acknowledged.set(partition, []).get(partition)!).push(value),
              (error: unknown) => this.failures.push(error),
            ),
          ),
        );
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    });
  }

  get count(): number {
    let total = 0;
    for (const values of this.acknowledged.values()) total += values.length;
    return total;
  }

  async stop(): Promise<void> {
    this.producing = false;
    await Promise.all(this.loops);
    await Promise.all(this.producers.map((producer) => producer.close()));
  }

  expectOnlyRetriableFailures(): void {
    for (const failure of this.failures) expect(failure instanceof RunnelError && failure.retriable, String(failure)).toBe(true);
  }

  /** Reads every partition from the beginning: each acknowledged record is there. */
  async expectAllReadable(bootstrap: string[], topic: string): Promise<void> {
    const consumer = new Consumer({ bootstrap, requestTimeoutMs: 5000 });
    const read = new Set<string>();
    try {
      const partitions = [...this.acknowledged.keys()].map((partition) => ({ topic, partition }));
      consumer.assign(partitions);
      await consumer.seekToBeginning(partitions);
      for (let idle = 0; idle < 5 && read.size < this.count; ) {
        const records = await consumer.poll(500);
        if (records.length === 0) idle++;
        for (const record of records) read.add(record.value?.toString() ?? '');
      }
    } finally {
      await consumer.close();
    }
    const missing = [...this.acknowledged.values()].flat().filter((value) => !read.has(value));
    expect(missing.slice(0, 5), `${missing.length} of ${this.count} acknowledged records missing`).toEqual([]);
  }
}

/** The record bytes of a partition's segments on one node. */
export function logBytes(dataDir: string, partitionDir: string): Buffer {
  const dir = join(dataDir, 'logs', partitionDir);
  const segments = readdirSync(dir).filter((name) => name.endsWith('.log')).sort();
  return Buffer.concat(segments.map((name) => readFileSync(join(dir, name))));
}

/** Waits until every replica of every partition of `topic` holds the same segment bytes (followers catch up to the leader). */
export async function expectReplicasIdentical(cluster: LocalCluster, admin: Admin, topic: string): Promise<void> {
  const partitions = (await admin.describeTopics([topic]))[0]!.partitions;
  for (const partition of partitions) {
    await waitFor(`replicas ${partition.replicas.join(',')} of ${topic}-${partition.partition} byte-identical`, () => {
      const copies = partition.replicas.map((id) => logBytes(cluster.node(id).dataDir, `${topic}-${partition.partition}`));
      return copies[0]!.length > 0 && copies.every((copy) => copy.equals(copies[0]!)) ? true : undefined;
    }, 30_000, 250);
  }
}

/** Replicas and leaders per live broker. */
export async function countsPerBroker(admin: Admin, brokers: readonly number[]): Promise<{ replicas: Map<number, number>; leaders: Map<number, number> }> {
  const status = await admin.clusterStatus();
  const replicas = new Map(brokers.map((id) => [id, 0]));
  const leaders = new Map(brokers.map((id) => [id, 0]));
  for (const topic of status.topics) {
    for (const partition of topic.partitions) {
      for (const id of partition.replicas) replicas.set(id, (replicas.get(id) ?? 0) + 1);
      leaders.set(partition.leader, (leaders.get(partition.leader) ?? 0) + 1);
    }
  }
  return { replicas, leaders };
}

export function expectWithinOneOfMean(counts: ReadonlyMap<number, number>, brokers: readonly number[], what: string): void {
  const values = brokers.map((id) => counts.get(id) ?? 0);
  const mean = values.reduce((sum, value) => sum + value, 0) / values.length;
  for (const id of brokers) expect(Math.abs((counts.get(id) ?? 0) - mean), `${what} of broker ${id}: ${JSON.stringify([...counts])}, mean ${mean}`).toBeLessThanOrEqual(1);
}

/** Creates `topic` (12 partitions RF 3, min.insync.replicas 2) and waits until every partition has its full ISR. */
export async function createReplicatedTopic(admin: Admin, topic: string): Promise<void> {
  await admin.createTopics([{ name: topic, partitions: 12, replicationFactor: 3, configs: { 'min.insync.replicas': '2' } }]);
  await waitFor('every partition with its full ISR', async () => {
    const partitions = (await admin.describeTopics([topic]))[0]!.partitions;
    return partitions.length === 12 && partitions.every((partition) => partition.isr.length === 3) ? true : undefined;
  }, 30_000);
}
