// Real Runnel nodes as child processes, for tests and fault injection: start on free ports with
// a data directory each, wait until ready, SIGKILL, SIGSTOP/SIGCONT, SIGTERM, restart on the same
// ports, and keep each process's output for the failure report.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The `runnel` executable of this checkout. */
export const RUNNEL_BIN = fileURLToPath(new URL('../../cli/bin/runnel.js', import.meta.url));
/** Output kept per process; older output is dropped. */
const LOG_BYTES_MAX = 1024 * 1024;
const READY_TIMEOUT_MS = 60_000;

/** A port that was free a moment ago on 127.0.0.1 (the OS picks it). */
/**
 * Where freePort looks: below the kernel's ephemeral port range. Outgoing connections take their
 * local ports from that range, so a port found free there could be taken by some connect() in the
 * second before the node binds it (EADDRINUSE, seen in CI); below it only another listener can
 * take it. Null where the range cannot be read (not Linux): the kernel then picks.
 */
const LISTEN_PORT_RANGE: readonly [number, number] | null = (() => {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return low !== undefined && low > 11_000 ? [10_000, low - 1] : null;
  } catch {
    return null;
  }
})();

function canListen(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  if (LISTEN_PORT_RANGE !== null) {
    const [low, high] = LISTEN_PORT_RANGE;
    for (let attempt = 0; attempt < 50; attempt++) {
      const port = low + Math.floor(Math.random() * (high - low + 1));
      if (await canListen(port, host)) return port;
    }
  }
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export async function makeTempDir(prefix = 'runnel-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export interface NodeProcessOptions {
  nodeId?: number;
  dataDir: string;
  /** The address every listener binds to and advertises. Default 127.0.0.1. */
  host?: string;
  /**
   * A command the node runs under, e.g. `['ip', 'netns', 'exec', 'ns1']` to put it in a network
   * namespace. It must exec the node in place (as `ip netns exec` does), so that signals reach it.
   */
  launcher?: readonly string[];
  /** Extra server.properties keys (override the harness defaults). */
  config?: Record<string, string>;
  /**
   * A server.properties to start from as it is, instead of the one the harness writes (`config` is
   * then unused): a file written for another system, with `set` pointing it at free ports and dirs.
   */
  configFile?: string;
  /** `--set key=value` arguments, in order. */
  set?: Record<string, string>;
  env?: NodeJS.ProcessEnv;
}

export interface NodePorts {
  grpc: number;
  controller: number;
  http: number;
  /** The PLAINTEXT (Kafka protocol) listener; a free port when absent. */
  kafka?: number;
}

export interface CreateNodeOptions extends NodeProcessOptions {
  /** Ports to listen on; free ports when absent. */
  ports?: NodePorts;
}

/** `count` distinct ports that were free a moment ago. */
export async function freePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const ports = new Set<number>();
  for (let attempts = 0; ports.size < count; attempts++) {
    if (attempts > count * 20) throw new Error(`could not find ${count} distinct free ports`);
    ports.add(await freePort(host));
  }
  return [...ports];
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class NodeProcess {
  private child: ChildProcess | undefined;
  private output = '';
  private exited: Promise<ExitStatus> | undefined;
  readonly configPath: string;

  private constructor(
    readonly nodeId: number,
    readonly dataDir: string,
    readonly grpcPort: number,
    /** The CONTROLLER listener (Raft among the controller quorum). */
    readonly controllerPort: number,
    readonly httpPort: number,
    /** The PLAINTEXT listener, for Kafka clients. */
    readonly kafkaPort: number,
    readonly host: string,
    private readonly launcher: readonly string[],
    private readonly env: NodeJS.ProcessEnv,
    config: Record<string, string>,
    configFile: string | undefined,
    private readonly set: Record<string, string>,
  ) {
    mkdirSync(dataDir, { recursive: true });
    if (configFile !== undefined) {
      this.configPath = configFile;
      return;
    }
    this.configPath = join(dataDir, 'server.properties');
    const properties: Record<string, string> = {
      'node.id': String(nodeId),
      'listeners': `PLAINTEXT://${host}:${kafkaPort},GRPC://${host}:${grpcPort},CONTROLLER://${host}:${controllerPort},HTTP://${host}:${httpPort}`,
      // A single node is its own quorum; a cluster passes the voters of all its nodes in `config`.
      'controller.quorum.voters': `${nodeId}@${host}:${controllerPort}`,
      'log.dirs': join(dataDir, 'logs'),
      // Shorter than Kafka's 2 s / 9 s so that tests which kill and restart a node do not wait long
      // for its old session to expire (a new incarnation registers only after that).
      'broker.heartbeat.interval.ms': '500',
      'broker.session.timeout.ms': '3000',
      ...config,
    };
    writeFileSync(this.configPath, Object.entries(properties).map(([key, value]) => `${key}=${value}`).join('\n') + '\n');
  }

  /**
   * Writes the node's server.properties (on free ports unless `ports` are given) without starting
   * it; `launch()` starts it. A cluster creates all its nodes first and launches them together.
   */
  static async create(options: CreateNodeOptions): Promise<NodeProcess> {
    let ports = options.ports;
    if (ports === undefined) {
      const [grpc, controller, http, kafka] = (await freePorts(4)) as [number, number, number, number];
      ports = { grpc, controller, http, kafka };
    }
    const kafka = ports.kafka ?? (await freePort());
    const host = options.host ?? '127.0.0.1';
    return new NodeProcess(options.nodeId ?? 1, options.dataDir, ports.grpc, ports.controller, ports.http, kafka, host, options.launcher ?? [], options.env ?? {}, options.config ?? {}, options.configFile, options.set ?? {});
  }

  /** Starts a single node (its own controller quorum) on free ports and waits until it serves requests. */
  static async start(options: NodeProcessOptions): Promise<NodeProcess> {
    const node = await NodeProcess.create(options);
    await node.launch();
    return node;
  }

  /** host:port of the CONTROLLER listener, as controller.quorum.voters names it. */
  get controllerAddress(): string {
    return `${this.host}:${this.controllerPort}`;
  }

  get bootstrap(): string {
    return `${this.host}:${this.grpcPort}`;
  }

  /** host:port of the PLAINTEXT listener: a Kafka client's bootstrap.servers. */
  get kafkaBootstrap(): string {
    return `${this.host}:${this.kafkaPort}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Everything the process printed (stdout and stderr), for failure reports. */
  logs(): string {
    return this.output;
  }

  private append(text: string): void {
    this.output = (this.output + text).slice(-LOG_BYTES_MAX);
  }

  /** Starts the process (again) with the same config and ports; resolves when it logs "node ready". */
  async launch(): Promise<void> {
    if (this.running) throw new Error(`node ${this.nodeId} is already running`);
    const sets = Object.entries(this.set).flatMap(([key, value]) => ['--set', `${key}=${value}`]);
    const [command = process.execPath, ...args] = [...this.launcher, process.execPath, RUNNEL_BIN, 'node', '--config', this.configPath, ...sets];
    const child = spawn(command, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RUNNEL_LOG_LEVEL: 'info', ...this.env },
    });
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`node ${this.nodeId} not ready after ${READY_TIMEOUT_MS} ms:\n${this.output.slice(-4000)}`)), READY_TIMEOUT_MS);
      let sinceLaunch = '';
      const onData = (chunk: Buffer) => {
        const text = chunk.toString('utf8');
        this.append(text);
        sinceLaunch = (sinceLaunch + text).slice(-65536);
        if (sinceLaunch.includes('"msg":"node ready"')) {
          clearTimeout(timer);
          child.stdout!.off('data', onData);
          child.stdout!.on('data', (more: Buffer) => this.append(more.toString('utf8')));
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', (chunk: Buffer) => this.append(chunk.toString('utf8')));
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`node ${this.nodeId} exited (${code ?? signal}) before it was ready:\n${this.output.slice(-4000)}`));
      });
    });
  }

  /** Sends `signal` and waits for the process to exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<ExitStatus> {
    if (!this.running) return (await this.exited) ?? { code: null, signal: null };
    this.child!.kill(signal);
    return this.exited!;
  }

  /** A clean stop: SIGTERM, then the exit status (0 when the node shut down cleanly). */
  async stop(): Promise<ExitStatus> {
    if (this.child?.signalCode === 'SIGSTOP') this.resume();
    return this.kill('SIGTERM');
  }

  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** Kills the process if it still runs, then starts it again on the same ports and data. */
  async restart(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.running) await this.kill(signal);
    await this.launch();
  }
}
