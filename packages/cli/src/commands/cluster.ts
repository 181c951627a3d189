// `runnel cluster up`: a local cluster on the fixed loopback port plan of DESIGN.md, one child
// process per node, each with its full config in DATA/node-N/server.properties so that a node
// can be restarted alone with `runnel node --config DATA/node-N/server.properties`.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const KAFKA_BASE_PORT = 9091;

/**
 * The port plan: node N serves the Kafka protocol on 9091+N, gRPC on +100, Raft on +200, HTTP on
 * +300. `basePort` moves the whole plan (tests run a cluster beside a developer's own).
 */
export function portsOf(nodeId: number, basePort = KAFKA_BASE_PORT): { kafka: number; grpc: number; raft: number; http: number } {
  const kafka = basePort + nodeId;
  return { kafka, grpc: kafka + 100, raft: kafka + 200, http: kafka + 300 };
}

export function localNodeProperties(nodeId: number, dataDir: string, basePort = KAFKA_BASE_PORT): string {
  const ports = portsOf(nodeId, basePort);
  return [
    `# Written by 'runnel cluster up'. Restart this node alone with:`,
    `#   npx runnel node --config ${join(dataDir, `node-${nodeId}`, 'server.properties')}`,
    `node.id=${nodeId}`,
    `process.roles=broker`,
    `listeners=GRPC://127.0.0.1:${ports.grpc},HTTP://127.0.0.1:${ports.http}`,
    `log.dirs=${join(dataDir, `node-${nodeId}`, 'logs')}`,
    `num.partitions=1`,
    `default.replication.factor=1`,
    `min.insync.replicas=1`,
    '',
  ].join('\n');
}

export interface ClusterUpOptions {
  nodes: number;
  dataDir: string;
  basePort?: number;
}

const BIN = fileURLToPath(new URL('../../bin/runnel.js', import.meta.url));
/** How long a node may take to report ready before `cluster up` gives up. */
const NODE_READY_TIMEOUT_MS = 60_000;

function startNodeProcess(nodeId: number, configPath: string, logPath: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [BIN, 'node', '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = createWriteStream(logPath, { flags: 'a' });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  return new Promise((resolvePromise, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`node ${nodeId} did not become ready within ${NODE_READY_TIMEOUT_MS} ms; see ${logPath}`)), NODE_READY_TIMEOUT_MS);
    child.stdout!.on('data', (chunk: Buffer) => {
      seen = (seen + chunk.toString('utf8')).slice(-65536);
      if (seen.includes('"msg":"node ready"')) {
        clearTimeout(timer);
        resolvePromise(child);
      }
    });
    let errorText = '';
    child.stderr!.on('data', (chunk: Buffer) => (errorText += chunk.toString('utf8')));
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`node ${nodeId} exited (${code ?? signal}) while starting: ${errorText.trim() || `see ${logPath}`}`));
    });
  });
}

export async function clusterUp(options: ClusterUpOptions): Promise<void> {
  if (!Number.isInteger(options.nodes) || options.nodes < 1) throw new Error(`--nodes must be a positive integer, got ${options.nodes}`);
  if (options.nodes > 1) {
    throw new Error(`--nodes ${options.nodes}: a multi-node cluster needs the Raft controller, which this build does not have yet; use --nodes 1`);
  }
  const dataDir = resolve(options.dataDir);
  const children: ChildProcess[] = [];
  const stopAll = async () => {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((done) => {
            if (child.exitCode !== null || child.signalCode !== null) return done();
            child.once('exit', () => done());
            child.kill('SIGTERM');
          }),
      ),
    );
  };
  let stopping = false;
  const onSignal = () => {
    if (stopping) return;
    stopping = true;
    process.stderr.write('\nstopping the local cluster...\n');
    stopAll().then(() => {
      process.stderr.write('stopped.\n');
      process.exit(0);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  for (let nodeId = 1; nodeId <= options.nodes; nodeId++) {
    const nodeDir = join(dataDir, `node-${nodeId}`);
    mkdirSync(nodeDir, { recursive: true });
    const configPath = join(nodeDir, 'server.properties');
    writeFileSync(configPath, localNodeProperties(nodeId, dataDir, options.basePort));
    try {
      const child = await startNodeProcess(nodeId, configPath, join(nodeDir, 'node.log'));
      children.push(child);
      child.once('exit', (code, signal) => {
        if (!stopping) process.stderr.write(`node ${nodeId} exited (${code ?? signal}); see ${join(nodeDir, 'node.log')}\n`);
      });
    } catch (error) {
      await stopAll();
      throw error;
    }
  }
  const basePort = options.basePort ?? KAFKA_BASE_PORT;
  const bootstrap = basePort === KAFKA_BASE_PORT ? '' : ` --bootstrap 127.0.0.1:${portsOf(1, basePort).grpc}`;
  const lines = [
    `Runnel local cluster is up: ${options.nodes} node(s), data under ${dataDir}`,
    ...Array.from({ length: options.nodes }, (_, i) => {
      const ports = portsOf(i + 1, options.basePort);
      return `  node ${i + 1}: gRPC 127.0.0.1:${ports.grpc}  metrics http://127.0.0.1:${ports.http}/metrics  log ${join(dataDir, `node-${i + 1}`, 'node.log')}`;
    }),
    '',
    'Try, in another terminal:',
    `  npx runnel${bootstrap} topic create demo --partitions 3 --replication-factor 1`,
    `  seq 1 100000 | npx runnel${bootstrap} produce demo`,
    `  npx runnel${bootstrap} consume demo --from-beginning --max-messages 100000 | tail -3`,
    '',
    'Press Ctrl-C to stop.',
  ];
  process.stdout.write(lines.join('\n') + '\n');
}
