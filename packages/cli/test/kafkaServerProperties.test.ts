// The stock server.properties of Apache Kafka 1.0, 2.8 and 3.8 (ZooKeeper and KRaft) each start a
// real `runnel node` process: the file is accepted as it is (only log.dirs and ports are moved with
// --set, to a temp dir and free ports), one warning line names the Kafka keys that do nothing here,
// the node serves both doors, and SIGTERM stops it cleanly.
import { rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Admin } from '@runnel/client';
import { KafkaWireClient, NodeProcess, freePort, freePorts, makeTempDir } from '@runnel/testkit';

const FIXTURES = fileURLToPath(new URL('../../common/test/fixtures/kafka/', import.meta.url));

/** A free port whose + 100 (where a broker given only a Kafka listener serves gRPC) is free too. */
async function kafkaPortWithGrpcRoom(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await freePort();
    if (port + 100 <= 65535 && (await bindable(port + 100))) return port;
  }
  throw new Error('no free port with a free port 100 above it');
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '0.0.0.0', () => server.close(() => resolve(true)));
  });
}

/** The JSON log lines a node printed. */
function logLines(node: NodeProcess): Array<{ level: number; msg: string; [field: string]: unknown }> {
  return node
    .logs()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { level: number; msg: string });
}

const WARN = 40;

describe("Kafka's stock server.properties start a node", () => {
  const started: NodeProcess[] = [];
  const dirs: string[] = [];

  afterEach(async ({ task }) => {
    if (task.result?.state === 'fail') for (const node of started) process.stderr.write(`\n----- node ${node.nodeId} -----\n${node.logs().slice(-6000)}\n`);
    for (const node of started.splice(0)) await node.kill();
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });

  async function start(file: string, nodeId: number, ports: { kafka: number; grpc: number; controller: number }, set: Record<string, string>, env: NodeJS.ProcessEnv = {}): Promise<NodeProcess> {
    const dataDir = await makeTempDir('runnel-kafka-config-');
    dirs.push(dataDir);
    const node = await NodeProcess.create({ nodeId, dataDir, configFile: join(FIXTURES, file), set: { 'log.dirs': join(dataDir, 'logs'), ...set }, ports: { ...ports, http: 0 }, env });
    started.push(node);
    await node.launch();
    return node;
  }

  /** Exactly one warning line names the ignored Kafka keys: these. */
  function expectOneIgnoredKeysWarning(node: NodeProcess, keys: readonly string[]): void {
    const warnings = logLines(node).filter((line) => line.level >= WARN && line.msg.startsWith('ignoring '));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toMatch(new RegExp(`^ignoring ${keys.length} Kafka settings that have no effect in Runnel: `));
    expect([...(warnings[0]!.ignoredKafkaKeys as string[])].sort()).toEqual([...keys].sort());
  }

  /** Both doors answer: a topic created over gRPC is in the Kafka Metadata answer, led by this broker at its advertised address. */
  async function expectServes(node: NodeProcess, grpc: string, kafka: { host: string; port: number }): Promise<void> {
    const admin = new Admin({ bootstrap: grpc, requestTimeoutMs: 10_000 });
    try {
      await admin.createTopics([{ name: 'stock', partitions: 1, replicationFactor: 1 }]);
    } finally {
      await admin.close();
    }
    const client = await KafkaWireClient.connect(`${kafka.host}:${kafka.port}`);
    try {
      const metadata = await client.send('Metadata', 1, { topics: [{ name: 'stock' }] });
      expect(metadata.brokers).toEqual([{ nodeId: node.nodeId, host: kafka.host, port: kafka.port, rack: null }]);
      expect(metadata.topics[0]).toMatchObject({ errorCode: 0, name: 'stock', partitions: [expect.objectContaining({ leaderId: node.nodeId })] });
    } finally {
      client.close();
    }
  }

  async function expectCleanStop(node: NodeProcess): Promise<void> {
    expect(await node.stop()).toEqual({ code: 0, signal: null });
  }

  const STOCK_IGNORED = ['num.network.threads', 'num.io.threads', 'socket.send.buffer.bytes', 'socket.receive.buffer.bytes', 'num.recovery.threads.per.data.dir', 'transaction.state.log.replication.factor', 'transaction.state.log.min.isr'];

  for (const version of ['1.0.0', '2.8.0', '3.8.0']) {
    it(`Kafka ${version} config/server.properties (ZooKeeper): broker 0, a quorum of its own`, async () => {
      const [kafka, grpc, controller] = (await freePorts(3)) as [number, number, number];
      // The file sets no listeners; the ports are moved off Kafka's and Runnel's defaults.
      const node = await start(`${version}/server.properties`, 0, { kafka, grpc, controller }, {
        listeners: `PLAINTEXT://127.0.0.1:${kafka},GRPC://127.0.0.1:${grpc},CONTROLLER://127.0.0.1:${controller}`,
      });
      expectOneIgnoredKeysWarning(node, [...STOCK_IGNORED, 'zookeeper.connect', 'zookeeper.connection.timeout.ms']);
      await expectServes(node, `127.0.0.1:${grpc}`, { host: '127.0.0.1', port: kafka });
      await expectCleanStop(node);
    });
  }

  it('takes Kafka\'s keys from RUNNEL_* variables too, as a container sets them: RUNNEL_BROKER_ID, RUNNEL_ADVERTISED_LISTENERS', async () => {
    const [kafka, grpc, controller] = (await freePorts(3)) as [number, number, number];
    const node = await start('3.8.0/server.properties', 5, { kafka, grpc, controller }, { listeners: `PLAINTEXT://0.0.0.0:${kafka},GRPC://127.0.0.1:${grpc},CONTROLLER://127.0.0.1:${controller}` }, {
      RUNNEL_BROKER_ID: '5',
      RUNNEL_ADVERTISED_LISTENERS: `PLAINTEXT://localhost:${kafka}`,
      RUNNEL_NUM_IO_THREADS: '16',
    });
    // The file's num.io.threads=8 is overridden, and still ignored: one warning, the same keys.
    expectOneIgnoredKeysWarning(node, [...STOCK_IGNORED, 'zookeeper.connect', 'zookeeper.connection.timeout.ms']);
    await expectServes(node, `127.0.0.1:${grpc}`, { host: 'localhost', port: kafka });
    await expectCleanStop(node);
  });

  for (const version of ['2.8.0', '3.8.0']) {
    it(`Kafka ${version} config/kraft/server.properties: a combined node, gRPC on the Kafka port + 100`, async () => {
      const kafka = await kafkaPortWithGrpcRoom();
      const controller = await freePort();
      // The file's own listeners, moved to free ports: Kafka and the controller on every interface.
      const node = await start(`${version}/kraft/server.properties`, 1, { kafka, grpc: kafka + 100, controller }, {
        listeners: `PLAINTEXT://:${kafka},CONTROLLER://:${controller}`,
        'advertised.listeners': `PLAINTEXT://localhost:${kafka}`,
        'controller.quorum.voters': `1@localhost:${controller}`,
      });
      expectOneIgnoredKeysWarning(node, [...STOCK_IGNORED, 'inter.broker.listener.name']);
      expect(logLines(node).some((line) => line.msg.includes(`serving gRPC (the runnel CLI, the TypeScript client, followers' fetches) on 0.0.0.0:${kafka + 100}`))).toBe(true);
      await expectServes(node, `localhost:${kafka + 100}`, { host: 'localhost', port: kafka });
      await expectCleanStop(node);
    });

    it(`Kafka ${version} config/kraft/controller.properties and broker.properties: a controller-only and a broker-only node together`, async () => {
      const kafka = await kafkaPortWithGrpcRoom();
      const controllerPort = await freePort();
      // 2.8's controller names its listener PLAINTEXT (controller.listener.names=PLAINTEXT), 3.8's CONTROLLER.
      const controllerName = version === '2.8.0' ? 'PLAINTEXT' : 'CONTROLLER';
      const voters = `1@localhost:${controllerPort}`;
      const controller = await start(`${version}/kraft/controller.properties`, 1, { kafka: 0, grpc: 0, controller: controllerPort }, {
        listeners: `${controllerName}://:${controllerPort}`,
        'controller.quorum.voters': voters,
      });
      expectOneIgnoredKeysWarning(controller, STOCK_IGNORED);
      const brokerId = version === '2.8.0' ? 1 : 2;
      const broker = await start(`${version}/kraft/broker.properties`, brokerId, { kafka, grpc: kafka + 100, controller: 0 }, {
        listeners: `PLAINTEXT://localhost:${kafka}`,
        'advertised.listeners': `PLAINTEXT://localhost:${kafka}`,
        'controller.quorum.voters': voters,
      });
      expectOneIgnoredKeysWarning(broker, [...STOCK_IGNORED, 'inter.broker.listener.name']);
      await expectServes(broker, `localhost:${kafka + 100}`, { host: 'localhost', port: kafka });
      await expectCleanStop(broker);
      await expectCleanStop(controller);
    });
  }
});
