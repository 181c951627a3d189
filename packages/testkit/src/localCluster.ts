// A cluster of real node processes for tests: every node a broker and a controller voter, on free
// loopback ports, started together (a node is ready only once a Raft majority elected a controller
// and it registered with it, so starting them one after another would never finish).
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { NodeProcess, freePorts, type ExitStatus } from './nodeProcess.js';

export interface LocalClusterOptions {
  /** Number of nodes, ids 1..nodes. */
  nodes: number;
  /** Node N keeps its config, logs and data in DATA/node-N. */
  dataDir: string;
  /** server.properties keys for every node (override the defaults). */
  config?: Record<string, string>;
  /** Keys for one node (override `config`). */
  nodeConfig?: (nodeId: number) => Record<string, string>;
  env?: NodeJS.ProcessEnv;
}

export class LocalCluster {
  private constructor(
    readonly nodes: NodeProcess[],
    readonly dataDir: string,
    readonly clusterId: string,
    /** controller.quorum.voters of every node. */
    readonly voters: string,
  ) {}

  /** Creates every node's config (shared voters and cluster.id), launches all nodes at once and waits until all are ready. */
  static async start(options: LocalClusterOptions): Promise<LocalCluster> {
    if (!Number.isInteger(options.nodes) || options.nodes < 1) throw new RangeError(`nodes must be a positive integer, got ${options.nodes}`);
    const ids = Array.from({ length: options.nodes }, (_, i) => i + 1);
    const ports = await freePorts(3 * options.nodes);
    const portsOf = (id: number) => ({ grpc: ports[3 * (id - 1)]!, controller: ports[3 * (id - 1) + 1]!, http: ports[3 * (id - 1) + 2]! });
    const voters = ids.map((id) => `${id}@127.0.0.1:${portsOf(id).controller}`).join(',');
    const clusterId = randomBytes(16).toString('base64url');
    const nodes = await Promise.all(
      ids.map((id) =>
        NodeProcess.create({
          nodeId: id,
          dataDir: join(options.dataDir, `node-${id}`),
          ports: portsOf(id),
          env: options.env,
          config: {
            'process.roles': 'broker,controller',
            'controller.quorum.voters': voters,
            'cluster.id': clusterId,
            ...options.config,
            ...options.nodeConfig?.(id),
          },
        }),
      ),
    );
    const cluster = new LocalCluster(nodes, options.dataDir, clusterId, voters);
    try {
      await Promise.all(nodes.map((node) => node.launch()));
    } catch (error) {
      await cluster.kill();
      // The failing node's output is in the error; the others' may say why it could not join.
      const failed = /^node (\d+) /.exec((error as Error).message)?.[1];
      const others = nodes.filter((node) => String(node.nodeId) !== failed);
      const tails = others.map((node) => `----- node ${node.nodeId} (${node.dataDir}), last 2000 bytes -----\n${node.logs().slice(-2000)}`);
      throw new Error(`${(error as Error).message}\n${tails.join('\n')}`);
    }
    return cluster;
  }

  /** The node with this id (1-based). */
  node(id: number): NodeProcess {
    const node = this.nodes.find((candidate) => candidate.nodeId === id);
    if (node === undefined) throw new RangeError(`no node ${id} in a cluster of ${this.nodes.length}`);
    return node;
  }

  /** The gRPC address of every node, comma-joined: clients and `runnel --bootstrap` try each in turn. */
  get bootstrap(): string {
    return this.nodes.map((node) => node.bootstrap).join(',');
  }

  /** The nodes whose process runs (not killed or exited; a paused one counts). */
  running(): NodeProcess[] {
    return this.nodes.filter((node) => node.running);
  }

  /** SIGTERM every node at once (a clean stop), and their exit statuses in node order. */
  async stop(): Promise<ExitStatus[]> {
    return Promise.all(this.nodes.map((node) => node.stop()));
  }

  /** SIGKILL every node (paused ones too). */
  async kill(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.kill('SIGKILL')));
  }

  /** Every node's output, each under a header naming the node and its directory. */
  logs(bytesPerNode = Infinity): string {
    return this.nodes.map((node) => `----- node ${node.nodeId} (${node.dataDir}) -----\n${node.logs().slice(-bytesPerNode)}`).join('\n');
  }
}
