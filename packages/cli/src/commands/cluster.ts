// `runnel cluster up`: a local cluster on the fixed loopback port plan of DESIGN.md, one child
// process per node (each a combined broker and controller), each with its full config in
// DATA/node-N/server.properties so that a node can be restarted alone with
// `runnel node --config DATA/node-N/server.properties`.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const KAFKA_BASE_PORT = 9091;
/** The port plan has room for nine nodes (node N: base+N, +100, +200, +300). */
export const LOCAL_NODES_MAX = 9;

/**
 * The port plan: node N serves the Kafka protocol on 9091+N, gRPC on +100, Raft on +200, HTTP on
 * +300. `basePort` moves the whole plan (tests run a cluster beside a developer's own).
 */
export function portsOf(nodeId: number, basePort = KAFKA_BASE_PORT): { kafka: number; grpc: number; raft: number; http: number } {
  const kafka = basePort + nodeId;
  return { kafka, grpc: kafka + 100, raft: kafka + 200, http: kafka + 300 };
}

/**
 * Timings of a local cluster, shorter than Kafka's defaults (heartbeat 2000 ms, session 9000 ms,
 * imbalance check 300 s) so that a killed node is noticed, and leadership rebalanced, while you watch.
 */
export const LOCAL_TIMINGS: Readonly<Record<string, string>> = {
  'broker.heartbeat.interval.ms': '1000',
  'broker.session.timeout.ms': '4000',
  'leader.imbalance.check.interval.seconds': '30',
  // As Kafka's own example configs for development: a group's first rebalance does not wait 3 s.
  'group.initial.rebalance.delay.ms': '0',
};

/** `controller.quorum.voters` of a local cluster of `nodes` nodes: every node is a voter. */
export function localQuorumVoters(nodes: number, basePort = KAFKA_BASE_PORT): string {
  return Array.from({ length: nodes }, (_, i) => `${i + 1}@127.0.0.1:${portsOf(i + 1, basePort).raft}`).join(',');
}

/** The Kafka (PLAINTEXT) addresses of every node, comma-joined: a Kafka client's bootstrap.servers. */
export function localKafkaBootstrap(nodes: number, basePort = KAFKA_BASE_PORT): string {
  return Array.from({ length: nodes }, (_, i) => `127.0.0.1:${portsOf(i + 1, basePort).kafka}`).join(',');
}

/** The gRPC addresses of every node, comma-joined (what `--bootstrap` accepts). */
export function localBootstrap(nodes: number, basePort = KAFKA_BASE_PORT): string {
  return Array.from({ length: nodes }, (_, i) => `127.0.0.1:${portsOf(i + 1, basePort).grpc}`).join(',');
}

export interface LocalNodeOptions {
  /** Nodes in the cluster (all of them are controller voters). */
  nodes: number;
  clusterId: string;
  basePort?: number;
}

export function localNodeProperties(nodeId: number, dataDir: string, options: LocalNodeOptions): string {
  const ports = portsOf(nodeId, options.basePort);
  return [
    `# Written by 'runnel cluster up'. Restart this node alone with:`,
    `#   npx runnel node --config ${join(dataDir, `node-${nodeId}`, 'server.properties')}`,
    `node.id=${nodeId}`,
    `process.roles=broker,controller`,
    `# PLAINTEXT: Kafka clients (bootstrap.servers); GRPC: the runnel CLI and TypeScript client.`,
    `listeners=PLAINTEXT://127.0.0.1:${ports.kafka},GRPC://127.0.0.1:${ports.grpc},CONTROLLER://127.0.0.1:${ports.raft},HTTP://127.0.0.1:${ports.http}`,
    `controller.quorum.voters=${localQuorumVoters(options.nodes, options.basePort)}`,
    `cluster.id=${options.clusterId}`,
    `log.dirs=${join(dataDir, `node-${nodeId}`, 'logs')}`,
    `num.partitions=1`,
    `default.replication.factor=1`,
    `min.insync.replicas=1`,
    `# Shorter than Kafka's defaults (2000, 9000, 300) for a local cluster: a killed node is fenced`,
    `# within seconds, and leadership moves back to preferred replicas within half a minute.`,
    ...Object.entries(LOCAL_TIMINGS).map(([key, value]) => `${key}=${value}`),
    '',
  ].join('\n');
}

/** A new cluster id: 16 random bytes, base64url (22 characters, as Kafka's). */
export function newClusterId(): string {
  return randomBytes(16).toString('base64url');
}

/** The cluster id kept in DATA/cluster.id, written there first if the file does not exist. */
export function readOrCreateClusterId(dataDir: string): string {
  const path = join(dataDir, 'cluster.id');
  if (existsSync(path)) {
    const id = readFileSync(path, 'utf8').trim();
    if (!/^[A-Za-z0-9_-]+$/.test(id)) throw new Error(`${path} does not hold a cluster id (letters, digits, '-' and '_'); delete it to start a new cluster`);
    return id;
  }
  const id = newClusterId();
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(path, id + '\n');
  return id;
}

export interface ClusterUpOptions {
  nodes: number;
  dataDir: string;
  basePort?: number;
}

const BIN = fileURLToPath(new URL('../../bin/runnel.js', import.meta.url));
/** How long the nodes may take to report ready before `cluster up` gives up. */
const NODE_READY_TIMEOUT_MS = 60_000;
const READY_LINE = '"msg":"node ready"';

interface LocalNode {
  nodeId: number;
  logPath: string;
  child: ChildProcess;
  /** Resolves when the node logs "node ready"; rejects (one line) if it exits first or takes too long. */
  ready: Promise<void>;
}

function lastLine(text: string): string {
  return text.trim().split('\n').filter((line) => line.trim() !== '').at(-1)?.trim() ?? '';
}

function spawnNode(nodeId: number, configPath: string, logPath: string): LocalNode {
  const child = spawn(process.execPath, [BIN, 'node', '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = createWriteStream(logPath, { flags: 'a' });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  // A full disk must not take the nodes down with their log file: unhandled, the write error ends
  // this process, and a node whose stdout nobody drains blocks on its next log line.
  log.once('error', (error) => {
    process.stderr.write(`node ${nodeId}: cannot write ${logPath} (${error.message}); its log output is dropped from now on\n`);
    for (const stream of [child.stdout!, child.stderr!]) {
      stream.unpipe(log);
      stream.resume();
    }
  });
  const ready = new Promise<void>((resolvePromise, reject) => {
    let seen = '';
    let errorText = '';
    const timer = setTimeout(() => reject(new Error(`node ${nodeId} did not become ready within ${NODE_READY_TIMEOUT_MS / 1000} s; see ${logPath}`)), NODE_READY_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      seen = (seen + chunk.toString('utf8')).slice(-65536);
      if (seen.includes(READY_LINE)) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        resolvePromise();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => (errorText = (errorText + chunk.toString('utf8')).slice(-8192)));
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      const why = lastLine(errorText);
      reject(new Error(`node ${nodeId} exited (${code ?? signal}) before it was ready${why === '' ? '' : `: ${why}`}; see ${logPath}`));
    });
  });
  ready.catch(() => undefined); // observed by clusterUp; never an unhandled rejection
  return { nodeId, logPath, child, ready };
}

/** SIGTERM every node still running, in parallel; resolves when all have exited. */
function stopNodes(nodes: LocalNode[]): Promise<void> {
  return Promise.all(
    nodes.map(
      ({ child }) =>
        new Promise<void>((done) => {
          if (child.exitCode !== null || child.signalCode !== null) return done();
          child.once('exit', () => done());
          child.kill('SIGTERM');
        }),
    ),
  ).then(() => undefined);
}

export async function clusterUp(options: ClusterUpOptions): Promise<void> {
  if (!Number.isInteger(options.nodes) || options.nodes < 1 || options.nodes > LOCAL_NODES_MAX) {
    throw new Error(`--nodes must be an integer from 1 to ${LOCAL_NODES_MAX}, got ${options.nodes}`);
  }
  const basePort = options.basePort ?? KAFKA_BASE_PORT;
  const dataDir = resolve(options.dataDir);
  const clusterId = readOrCreateClusterId(dataDir);
  const nodeIds = Array.from({ length: options.nodes }, (_, i) => i + 1);
  const nodeDir = (nodeId: number) => join(dataDir, `node-${nodeId}`);
  for (const nodeId of nodeIds) {
    mkdirSync(nodeDir(nodeId), { recursive: true });
    writeFileSync(join(nodeDir(nodeId), 'server.properties'), localNodeProperties(nodeId, dataDir, { nodes: options.nodes, clusterId, basePort }));
  }

  const nodes: LocalNode[] = [];
  let stopping = false;
  let up = false;
  const onSignal = () => {
    if (stopping) return;
    stopping = true;
    process.stderr.write('\nstopping the local cluster...\n');
    stopNodes(nodes).then(() => {
      process.stderr.write('stopped.\n');
      process.exit(0);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  // All at once: a node is ready only after it joined the controller quorum, which needs a majority.
  for (const nodeId of nodeIds) {
    const node = spawnNode(nodeId, join(nodeDir(nodeId), 'server.properties'), join(nodeDir(nodeId), 'node.log'));
    nodes.push(node);
    node.child.once('exit', (code, signal) => {
      // Before every node is ready, a failure is reported once, as the error of `cluster up`.
      if (up && !stopping) process.stderr.write(`node ${nodeId} exited (${code ?? signal}); see ${node.logPath}\n`);
    });
  }
  try {
    await Promise.all(nodes.map((node) => node.ready));
  } catch (error) {
    if (stopping) return; // Ctrl-C while starting: the signal handler stops the nodes and exits
    stopping = true;
    await stopNodes(nodes);
    throw error;
  }
  if (stopping) return; // Ctrl-C came while the last nodes were getting ready
  up = true;

  const bootstrap = basePort === KAFKA_BASE_PORT ? '' : ` --bootstrap ${localBootstrap(options.nodes, basePort)}`;
  const rf = Math.min(3, options.nodes);
  const lines = [
    `Runnel local cluster ${clusterId} is up: ${options.nodes} node(s), each a broker and a controller voter, data under ${dataDir}`,
    ...nodeIds.map((nodeId) => {
      const ports = portsOf(nodeId, basePort);
      return `  node ${nodeId}: Kafka 127.0.0.1:${ports.kafka}  gRPC 127.0.0.1:${ports.grpc}  Raft 127.0.0.1:${ports.raft}  metrics http://127.0.0.1:${ports.http}/metrics  log ${join(nodeDir(nodeId), 'node.log')}`;
    }),
    `Local timings, shorter than Kafka's defaults: heartbeat every ${LOCAL_TIMINGS['broker.heartbeat.interval.ms']} ms, ` +
      `a silent node is fenced after ${LOCAL_TIMINGS['broker.session.timeout.ms']} ms, ` +
      `leader balance checked every ${LOCAL_TIMINGS['leader.imbalance.check.interval.seconds']} s.`,
    '',
    'Try, in another terminal:',
    `  npx runnel${bootstrap} topic create demo --partitions 12 --replication-factor ${rf}`,
    `  npx runnel${bootstrap} cluster status`,
    `  seq 1 100000 | npx runnel${bootstrap} produce demo`,
    `  npx runnel${bootstrap} consume demo --from-beginning --max-messages 100000 | tail -3`,
    ...(bootstrap === '' && options.nodes > 3
      ? [`  (the CLI's default --bootstrap names nodes 1-3; to name every node: export RUNNEL_BOOTSTRAP=${localBootstrap(options.nodes, basePort)})`]
      : []),
    `Kafka clients: bootstrap.servers=${localKafkaBootstrap(options.nodes, basePort)}  (e.g. kcat -b 127.0.0.1:${portsOf(1, basePort).kafka} -L)`,
    '',
    'Press Ctrl-C to stop.',
  ];
  process.stdout.write(lines.join('\n') + '\n');
}
