// Shared set-up for the integration suites: one real node process (or a cluster of them) per
// suite, their output printed when a test fails, and everything removed afterwards.
import { rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { encodeRecordBatch, loadClientProto, type ClientApi } from '@runnel/common';
import { LocalCluster, NodeProcess, makeTempDir, type LocalClusterOptions } from '@runnel/testkit';

const TAIL_BYTES = 8000;

/** On a failing test, print the tail of every node's output: what the node saw, next to what the test expected. */
export function printNodeLogsOnFailure(nodes: () => Array<NodeProcess | undefined>): void {
  beforeEach(({ onTestFailed }) => {
    onTestFailed(() => {
      for (const node of nodes()) {
        if (node === undefined) continue;
        process.stderr.write(`\n----- node ${node.nodeId} (${node.dataDir}), last ${TAIL_BYTES} bytes of output -----\n${node.logs().slice(-TAIL_BYTES)}\n`);
      }
    });
  });
}

export interface SingleNode {
  readonly node: NodeProcess;
  readonly dir: string;
}

/** Starts one node (with extra server.properties keys) before the suite and removes it after. */
export function useSingleNode(config: Record<string, string> = {}): SingleNode {
  const state = {} as { node: NodeProcess; dir: string };
  printNodeLogsOnFailure(() => [state.node]);
  beforeAll(async () => {
    state.dir = await makeTempDir();
    state.node = await NodeProcess.start({ dataDir: state.dir, config });
  });
  afterAll(async () => {
    state.node?.resume();
    await state.node?.kill();
    if (state.dir !== undefined) await rm(state.dir, { recursive: true, force: true });
  });
  return state;
}

export interface ClusterFixture {
  readonly cluster: LocalCluster;
  readonly dir: string;
}

/**
 * Starts a cluster of `nodes` nodes (each a broker and a controller voter; `config` keys for every
 * node) before the suite, all at once, and removes it after.
 */
export function useCluster(nodes: number, config: Record<string, string> = {}, options: Pick<LocalClusterOptions, 'roles'> = {}): ClusterFixture {
  const state = {} as { cluster: LocalCluster; dir: string };
  printNodeLogsOnFailure(() => state.cluster?.nodes ?? []);
  beforeAll(async () => {
    state.dir = await makeTempDir('runnel-cluster-');
    state.cluster = await LocalCluster.start({ nodes, dataDir: state.dir, config, ...options });
  });
  afterAll(async () => {
    for (const node of state.cluster?.nodes ?? []) node.resume();
    await state.cluster?.kill();
    if (state.dir !== undefined) await rm(state.dir, { recursive: true, force: true });
  });
  return state;
}

/** Polls `probe` until it returns a value (not undefined); errors count as "not yet". Throws after `timeoutMs`, naming `what`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs: number, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? '' : ` (last error: ${(last as Error).message})`}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * One acks=1 produce of a single record straight to the broker at `address` (no client, no retries,
 * no metadata): what that broker itself answers.
 */
export function produceOnce(address: string, topic: string, partition: number): Promise<ClientApi.PartitionProduceResult__Output> {
  const { ClientApi: Client } = loadClientProto().runnel.v1;
  const client = new Client(address, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    const stream = client.Produce();
    const timer = setTimeout(() => reject(new Error(`no produce answer from ${address} within 5 s`)), 5000);
    stream.on('data', (response: ClientApi.ProduceResponse__Output) => {
      clearTimeout(timer);
      stream.end();
      client.close();
      resolve(response.partitions[0]!);
    });
    stream.on('error', (error) => {
      clearTimeout(timer);
      client.close();
      reject(error);
    });
    stream.write({ requestId: 1, acks: 1, timeoutMs: 5000, partitions: [{ topic, partition, records: encodeRecordBatch([{ value: Buffer.from('probe') }]) }] });
  });
}

/** What the broker at `address` itself answers to a Metadata request for `topics` (no client, no retries). */
export function metadataFrom(address: string, topics: string[]): Promise<ClientApi.MetadataResponse__Output> {
  const { ClientApi: Client } = loadClientProto().runnel.v1;
  const client = new Client(address, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    client.Metadata({ topics, includeConfigs: false, allowAutoTopicCreation: false }, { deadline: Date.now() + 5000 }, (error: grpc.ServiceError | null, response?: ClientApi.MetadataResponse__Output) => {
      client.close();
      if (error !== null) reject(error);
      else resolve(response!);
    });
  });
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A base port whose whole `runnel cluster up` plan for `nodes` nodes (base+N, +100, +200, +300) is free right now. */
export async function freeBasePort(nodes: number): Promise<number> {
  const offsets = [0, 100, 200, 300].flatMap((offset) => Array.from({ length: nodes }, (_, i) => offset + i + 1));
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    const free = await Promise.all(offsets.map((offset) => portIsFree(base + offset)));
    if (free.every(Boolean)) return base;
  }
  throw new Error('no free port plan found');
}
