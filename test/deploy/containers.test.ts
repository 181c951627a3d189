// Runnel's image under testcontainers: three containers on one Docker network, each a broker and a
// controller voter, as deploy/compose runs them. A Kafka client on the host produces with acks=all
// through the advertised listeners while one container is stopped (SIGTERM: controlled shutdown,
// exit 0) and restarted, and another's process is killed (SIGKILL); every acknowledged record reads
// back, and the killed node's /readyz (and the image's HEALTHCHECK) turn healthy again on restart.
//
// Advertised address: Runnel advertises one Kafka (and one gRPC) address per broker, so it must work
// from the host and from the network alike. The network's gateway is such an address (the host's
// own address on that bridge): each node advertises gateway:<its published port>, the mode
// deploy/compose documents as RUNNEL_ADVERTISED_HOST. Replication and Raft use the network aliases.
process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true'; // the reaper's image cannot be pulled here; afterAll cleans up

import { spawnSync } from 'node:child_process';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { GenericContainer, Network, Wait, type StartedNetwork, type StartedTestContainer } from 'testcontainers';
import { Kafka, Partitioners, logLevel } from 'kafkajs';
import { freePort } from '@runnel/testkit';
import { waitFor } from '../integration/harness.js';
import { missingFromKafkaReadBack, withDeadline } from '../compat/kafkaCluster.js';
import { describeWithRunnelImage } from './runnelImage.js';

const NODE_IDS = [1, 2, 3] as const;
const CONTAINER_PORTS = { kafka: 9092, grpc: 9192, controller: 9292, http: 9392, replication: 9492 } as const;
const TOPIC = 'deploy-acks-all';
const PARTITIONS = 3;
const BATCH_SIZE = 20;
const SEND_TIMEOUT_MS = 15_000;
const RUN_LABEL = 'dev.runnel.test-run';
const runId = `deploy-${process.pid}-${Date.now()}`;

interface RunnelContainer {
  readonly nodeId: number;
  readonly container: StartedTestContainer;
  readonly hostPorts: { kafka: number; grpc: number; http: number };
}

function docker(...args: string[]): string {
  const result = spawnSync('docker', args, { encoding: 'utf8', timeout: 90_000 });
  if (result.status !== 0) throw new Error(`docker ${args.join(' ')} failed: ${result.stderr.trim()}`);
  return result.stdout.trim();
}

/** This run's containers, started or not (they carry its label). */
function labelledContainers(): string[] {
  return spawnSync('docker', ['ps', '--all', '--quiet', '--filter', `label=${RUN_LABEL}=${runId}`], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
}

function printLogs(containerIds: string[], why: string): void {
  for (const id of containerIds) {
    const logs = spawnSync('docker', ['logs', '--tail', '40', id], { encoding: 'utf8' });
    process.stderr.write(`--- ${why}: container ${id}, last log lines:\n${logs.stdout}${logs.stderr}`);
  }
}

async function readyzStatus(node: RunnelContainer): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${node.hostPorts.http}/readyz`, { signal: AbortSignal.timeout(2000) });
  return response.status;
}

const waitUntilReady = (node: RunnelContainer, timeoutMs: number) =>
  waitFor(`node ${node.nodeId}'s /readyz to answer 200`, async () => ((await readyzStatus(node)) === 200 ? true : undefined), timeoutMs, 500);

describeWithRunnelImage('the Runnel image: three containers, a host client, SIGTERM and SIGKILL', (imageTag) => {
  let network: StartedNetwork | undefined;
  const nodes: RunnelContainer[] = [];
  let gateway = '';

  beforeAll(async () => {
    const startedAt = Date.now();
    network = await new Network().start();
    gateway = docker('network', 'inspect', network.getName(), '--format', '{{(index .IPAM.Config 0).Gateway}}');
    const hostPorts = new Map<number, RunnelContainer['hostPorts']>();
    for (const nodeId of NODE_IDS) hostPorts.set(nodeId, { kafka: await freePort('0.0.0.0'), grpc: await freePort('0.0.0.0'), http: await freePort('0.0.0.0') });
    const voters = NODE_IDS.map((id) => `${id}@runnel-${id}:${CONTAINER_PORTS.controller}`).join(',');
    const started = await Promise.all(
      NODE_IDS.map(async (nodeId) => {
        const ports = hostPorts.get(nodeId)!;
        const container = await new GenericContainer(imageTag)
          .withNetwork(network!)
          .withNetworkAliases(`runnel-${nodeId}`)
          .withLabels({ [RUN_LABEL]: runId })
          .withEnvironment({
            RUNNEL_NODE_ID: String(nodeId),
            RUNNEL_CLUSTER_ID: 'deploy-test',
            RUNNEL_CONTROLLER_QUORUM_VOTERS: voters,
            RUNNEL_LISTENERS: `PLAINTEXT://0.0.0.0:${CONTAINER_PORTS.kafka},GRPC://0.0.0.0:${CONTAINER_PORTS.grpc},REPLICATION://0.0.0.0:${CONTAINER_PORTS.replication},CONTROLLER://0.0.0.0:${CONTAINER_PORTS.controller},HTTP://0.0.0.0:${CONTAINER_PORTS.http}`,
            RUNNEL_ADVERTISED_LISTENERS: `PLAINTEXT://${gateway}:${ports.kafka},GRPC://${gateway}:${ports.grpc},REPLICATION://runnel-${nodeId}:${CONTAINER_PORTS.replication},CONTROLLER://runnel-${nodeId}:${CONTAINER_PORTS.controller}`,
            RUNNEL_DEFAULT_REPLICATION_FACTOR: '3',
            RUNNEL_MIN_INSYNC_REPLICAS: '2',
            RUNNEL_OFFSETS_TOPIC_REPLICATION_FACTOR: '3',
            RUNNEL_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
            // A killed broker is fenced (its partitions led elsewhere) within seconds, not Kafka's 9 s.
            RUNNEL_BROKER_HEARTBEAT_INTERVAL_MS: '1000',
            RUNNEL_BROKER_SESSION_TIMEOUT_MS: '4000',
          })
          // Fixed host ports: the advertised ones must be known before the node starts, and stay
          // the same across a restart.
          .withExposedPorts(
            { container: CONTAINER_PORTS.kafka, host: ports.kafka },
            { container: CONTAINER_PORTS.grpc, host: ports.grpc },
            { container: CONTAINER_PORTS.http, host: ports.http },
          )
          .withWaitStrategy(Wait.forHealthCheck())
          .withStartupTimeout(90_000)
          .start();
        return { nodeId, container, hostPorts: ports };
      }),
    ).catch((error: unknown) => {
      printLogs(labelledContainers(), 'failed to start');
      throw error;
    });
    nodes.push(...started);
    process.stderr.write(`deploy: three containers healthy in ${((Date.now() - startedAt) / 1000).toFixed(1)} s\n`);
  }, 120_000);

  afterAll(async () => {
    // By label, not by `nodes`: a container whose start failed (unhealthy, timed out) was never
    // handed back, and there is no reaper to remove it.
    const leftovers = labelledContainers();
    if (leftovers.length > 0) spawnSync('docker', ['rm', '--force', '--volumes', ...leftovers], { stdio: 'ignore', timeout: 60_000 });
    await network?.stop().catch(() => undefined);
  }, 60_000);

  afterEach((context) => {
    if (context.task.result?.state === 'fail') printLogs(labelledContainers(), 'test failed');
  });

  const kafka = () =>
    new Kafka({
      clientId: 'deploy-test',
      brokers: nodes.map((node) => `${gateway}:${node.hostPorts.kafka}`),
      retry: { retries: 10, initialRetryTime: 200, maxRetryTime: 2000 },
      connectionTimeout: 3000,
      requestTimeout: 10_000,
      logLevel: logLevel.NOTHING,
    });

  it('each broker advertises the address the host reached it by', async () => {
    const admin = kafka().admin();
    await admin.connect();
    try {
      const { brokers } = await admin.describeCluster();
      expect(brokers.map((broker) => `${broker.host}:${broker.port}`).sort()).toEqual(nodes.map((node) => `${gateway}:${node.hostPorts.kafka}`).sort());
      expect(docker('inspect', '--format', '{{.Config.User}}', nodes[0]!.container.getId())).toBe('runnel');
    } finally {
      await admin.disconnect();
    }
  });

  it('keeps every acks=all record through a SIGTERM of one node and a SIGKILL of another', async () => {
    const client = kafka();
    const admin = client.admin();
    await admin.connect();
    expect(await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS, replicationFactor: 3 }], waitForLeaders: true })).toBe(true);
    await admin.disconnect();

    const producer = client.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const acknowledged: string[] = [];
    let failedBatches = 0;
    let producing = true;
    let batch = 0;
    // Only what a produce answer confirmed, partition by partition: KafkaJS 2.2.4 can resolve a
    // send whose partition moved, during its retries, to a broker that had already answered for
    // other partitions, without that partition's records (tulios/kafkajs#1303). Counting them as
    // acknowledged would blame the brokers for the client's loss.
    const production = (async () => {
      while (producing) {
        const values = Array.from({ length: BATCH_SIZE }, (_, i) => `${TOPIC}-${batch}-${i}`);
        const partitionOf = (index: number) => index % PARTITIONS;
        batch++;
        try {
          const answers = await withDeadline(
            `send of batch ${batch}`,
            producer.send({ topic: TOPIC, acks: -1, messages: values.map((value, index) => ({ value, partition: partitionOf(index) })) }),
            SEND_TIMEOUT_MS,
          );
          const confirmed = new Set(answers.filter((answer) => answer.errorCode === 0).map((answer) => answer.partition));
          acknowledged.push(...values.filter((_, index) => confirmed.has(partitionOf(index))));
        } catch {
          failedBatches++;
        }
      }
    })();
    const progressed = (since: number) => waitFor(`acknowledged writes beyond ${since}`, () => (acknowledged.length >= since + 5 * BATCH_SIZE ? true : undefined), 30_000, 100);

    try {
      await progressed(0);
      const [, stopped, killed] = nodes as [RunnelContainer, RunnelContainer, RunnelContainer];

      // SIGTERM (docker stop): a controlled shutdown hands leadership over and exits 0, well before
      // docker's grace period would escalate to SIGKILL.
      const stopStarted = Date.now();
      docker('stop', '--time', '60', stopped.container.getId());
      expect(Date.now() - stopStarted).toBeLessThan(45_000);
      expect(docker('inspect', '--format', '{{.State.ExitCode}}', stopped.container.getId())).toBe('0');
      await progressed(acknowledged.length);
      docker('start', stopped.container.getId());
      await waitUntilReady(stopped, 60_000);

      // SIGKILL of the node's process (PID 1): no shutdown at all; its partitions fail over.
      docker('kill', '--signal', 'KILL', killed.container.getId());
      expect(docker('inspect', '--format', '{{.State.Running}}', killed.container.getId())).toBe('false');
      await progressed(acknowledged.length);
    } finally {
      producing = false;
      await production;
      await producer.disconnect();
    }

    const survivors = nodes.filter((node) => node !== nodes[2]).map((node) => `${gateway}:${node.hostPorts.kafka}`);
    const missing = await missingFromKafkaReadBack(survivors, TOPIC, acknowledged, 45_000);
    expect(missing.length, `acknowledged but not read back (first: ${missing.slice(0, 5).join(', ')}; ${failedBatches} batches failed)`).toBe(0);
    expect(acknowledged.length).toBeGreaterThan(15 * BATCH_SIZE);
  });

  it('a restarted node turns ready again: /readyz 200 and the image HEALTHCHECK healthy', async () => {
    const killed = nodes[2]!;
    docker('start', killed.container.getId());
    await waitUntilReady(killed, 60_000);
    await waitFor(
      `node ${killed.nodeId}'s health check to pass`,
      () => (docker('inspect', '--format', '{{.State.Health.Status}}', killed.container.getId()) === 'healthy' ? true : undefined),
      30_000,
      500,
    );
  });
});
