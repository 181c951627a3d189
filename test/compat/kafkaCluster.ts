// The cluster every compat suite runs its Kafka clients against: three real nodes, each a broker
// and a controller voter with a PLAINTEXT (Kafka) listener on a free port, plus the few things the
// suites ask of it through Runnel's own gRPC door and disk (creating topics with a known layout,
// finding a partition's leader, the codecs of stored batches) so that what a Kafka client sees can
// be checked against the broker's truth, and a producer run across a leader's SIGKILL with a
// read-back of what it was promised.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { Admin } from '@runnel/client';
import { batchSize, compressionOf, readBatchHeader, type CompressionCodec } from '@runnel/common';
import type { LocalCluster, NodeProcess } from '@runnel/testkit';
import { expect } from 'vitest';
import { metadataFrom, useCluster, waitFor, type ClusterFixture } from '../integration/harness.js';

/**
 * Timings shortened so group joins and failovers take seconds, not Kafka's defaults: no initial
 * rebalance delay, clients may ask for short sessions, and __consumer_offsets has 3 partitions
 * rather than 50 (created on the first FindCoordinator, all on these 3 nodes).
 */
export const COMPAT_NODE_CONFIG: Readonly<Record<string, string>> = {
  'default.replication.factor': '3',
  'num.partitions': '3',
  'offsets.topic.num.partitions': '3',
  'group.initial.rebalance.delay.ms': '0',
  'group.min.session.timeout.ms': '1000',
};

/** A 3-node cluster for the suite (started before its first test, removed after its last). */
export function useKafkaCluster(config: Record<string, string> = {}): ClusterFixture {
  return useCluster(3, { ...COMPAT_NODE_CONFIG, ...config });
}

/** bootstrap.servers for a Kafka client: the PLAINTEXT address of every node still running. */
export function kafkaBootstrap(cluster: LocalCluster): string[] {
  return cluster.running().map((node: NodeProcess) => node.kafkaBootstrap);
}

/** The gRPC addresses of the running nodes, for Runnel's own client. */
export function grpcBootstrap(cluster: LocalCluster): string[] {
  return cluster.running().map((node) => node.bootstrap);
}

/**
 * Creates a topic through the gRPC door (so its layout does not depend on the Kafka client under
 * test) and waits until every running node's metadata has a leader for every partition. Metadata
 * reaches the brokers one by one, as in Kafka (its tests wait for propagation the same way); a
 * client bootstrapping from a node that has not caught up sees partitions without a leader, and
 * librdkafka's partitioner then sends every keyless record to the others.
 */
export async function createTopic(cluster: LocalCluster, name: string, partitions: number, configs: Record<string, string> = {}): Promise<void> {
  const admin = new Admin({ bootstrap: grpcBootstrap(cluster) });
  try {
    await admin.createTopics([{ name, partitions, replicationFactor: 3, configs }]);
  } finally {
    await admin.close();
  }
  for (const node of cluster.running()) {
    await waitFor(
      `leaders for every partition of ${name} in node ${node.nodeId}'s metadata`,
      async () => {
        const [topic] = (await metadataFrom(node.bootstrap, [name])).topics;
        const led = topic !== undefined && topic.errorCode === 0 && topic.partitions.length === partitions && topic.partitions.every((partition) => partition.leader >= 0);
        return led ? true : undefined;
      },
      15_000,
    );
  }
}

/** The node leading `topic`/`partition` now, as the controller's metadata has it. */
export async function leaderOf(cluster: LocalCluster, topic: string, partition: number): Promise<NodeProcess> {
  const admin = new Admin({ bootstrap: grpcBootstrap(cluster) });
  try {
    const [description] = await admin.describeTopics([topic]);
    const leader = description!.partitions.find((candidate) => candidate.partition === partition)!.leader;
    return cluster.node(leader);
  } finally {
    await admin.close();
  }
}

/**
 * The compression codecs of the batches node `nodeId` stored for `topic`/`partition`, read from its
 * segment files: what the broker kept, whatever a client says it sent.
 */
export function storedCodecs(cluster: LocalCluster, nodeId: number, topic: string, partition: number): Set<CompressionCodec> {
  const dir = join(cluster.node(nodeId).dataDir, 'logs', `${topic}-${partition}`);
  const codecs = new Set<CompressionCodec>();
  for (const segment of readdirSync(dir).filter((name) => name.endsWith('.log'))) {
    const bytes = readFileSync(join(dir, segment));
    for (let position = 0; position < bytes.length; ) {
      const header = readBatchHeader(bytes, position);
      codecs.add(compressionOf(header.attributes));
      position += batchSize(header);
    }
  }
  return codecs;
}

/**
 * Reads `topic` from its beginning through the Kafka door (KafkaJS, in a group of its own) until
 * every one of `expected` has arrived or `timeoutMs` has passed, and returns those that never did.
 */
export async function missingFromReadBack(cluster: LocalCluster, topic: string, expected: readonly string[], timeoutMs: number): Promise<string[]> {
  return missingFromKafkaReadBack(kafkaBootstrap(cluster), topic, expected, timeoutMs);
}

/** `missingFromReadBack` through the Kafka listeners at `brokers` (host:port), for clusters this suite did not start. */
export async function missingFromKafkaReadBack(brokers: string[], topic: string, expected: readonly string[], timeoutMs: number): Promise<string[]> {
  const kafka = new Kafka({ clientId: 'compat-read-back', brokers, logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `${topic}-read-back`, sessionTimeout: 6000, heartbeatInterval: 500, maxWaitTimeInMs: 500 });
  const read = new Set<string>();
  const missing = () => expected.filter((value) => !read.has(value));
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void read.add(message.value?.toString() ?? '') });
    const deadline = Date.now() + timeoutMs;
    while (missing().length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 250));
  } finally {
    await consumer.disconnect();
  }
  return missing();
}

/** `promise`, or a rejection naming `what` once `timeoutMs` has passed (a client call that never settles fails its test, not the run). */
export async function withDeadline<T>(what: string, promise: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

export interface LeaderKillRun {
  /** Every value whose send resolved: the client's promise that the cluster has it. */
  acknowledged: string[];
  /** Batches whose send rejected (their values may or may not be stored). */
  failedBatches: number;
  /** Batches acknowledged after the kill, the last one included when it succeeded. */
  acknowledgedAfterKill: number;
  lastBatchAcknowledged: boolean;
  killed: NodeProcess;
}

export interface LeaderKillOptions {
  batches: number;
  batchSize: number;
  /** The leader of partition 0 is SIGKILLed once this many batches were sent. */
  killAfterBatches: number;
  /** One send's limit, past the client's own retries. */
  sendTimeoutMs: number;
  /** The whole run's limit: batches not sent by then are not sent. */
  runTimeoutMs: number;
}

/** 3,000 records in batches of 25, the leader killed after 750: about 10 s on this machine, most of it the failover. */
const LEADER_KILL_RUN: LeaderKillOptions = { batches: 120, batchSize: 25, killAfterBatches: 30, sendTimeoutMs: 30_000, runTimeoutMs: 90_000 };

/**
 * Sends `batches` batches of distinct values one after another through `send` (a Kafka client's
 * produce with acks=all), and SIGKILLs the leader of `topic`'s partition 0 part-way. A rejected
 * send is counted, not retried: the client's own retries are what is under test.
 */
export async function produceAcrossLeaderKill(
  cluster: LocalCluster,
  topic: string,
  send: (values: string[]) => Promise<unknown>,
  options: LeaderKillOptions = LEADER_KILL_RUN,
): Promise<LeaderKillRun> {
  const acknowledged: string[] = [];
  let failedBatches = 0;
  let acknowledgedAfterKill = 0;
  let lastBatchAcknowledged = false;
  let killed: NodeProcess | undefined;
  const deadline = Date.now() + options.runTimeoutMs;
  let batch = 0;
  for (; batch < options.batches && Date.now() < deadline; batch++) {
    if (batch === options.killAfterBatches) {
      killed = await leaderOf(cluster, topic, 0);
      await killed.kill('SIGKILL');
    }
    const values = Array.from({ length: options.batchSize }, (_, i) => `${topic}-${batch}-${i}`);
    try {
      await withDeadline(`send of batch ${batch}`, send(values), options.sendTimeoutMs);
      acknowledged.push(...values);
      if (killed !== undefined) acknowledgedAfterKill++;
      lastBatchAcknowledged = batch === options.batches - 1;
    } catch {
      failedBatches++;
    }
  }
  if (killed === undefined) throw new Error(`only ${batch} batches were sent before the run's deadline; the leader was never killed`);
  return { acknowledged, failedBatches, acknowledgedAfterKill, lastBatchAcknowledged, killed };
}

/**
 * What a leader-kill run must show: the producer got acknowledgements again after the kill (its
 * last batch among them), and every record it was promised is read back from the survivors.
 */
export async function expectRecoveredWithoutLoss(cluster: LocalCluster, topic: string, run: LeaderKillRun): Promise<void> {
  expect(run.acknowledgedAfterKill).toBeGreaterThan(0);
  expect(run.lastBatchAcknowledged).toBe(true);
  const missing = await missingFromReadBack(cluster, topic, run.acknowledged, 45_000);
  expect(missing.length, `acknowledged but not read back through the surviving brokers (first: ${missing.slice(0, 5).join(', ')})`).toBe(0);
}
