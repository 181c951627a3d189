// A cluster of real node processes for tests: every node a broker and a controller voter, on free
// loopback ports (or each on its own address, e.g. in a network namespace: `placement`), started together (a node is ready only once a Raft majority elected a controller
// and it registered with it, so starting them one after another would never finish).
//
// With `networkFaults`, the links between nodes run through FaultProxy instances in the test
// process, so a test can cut one node off from the others while clients still reach it:
// - Raft and the controller API: every ordered pair (A→B) has its own proxy in front of B's
//   CONTROLLER port, and A's controller.quorum.voters names those proxies for the other voters (and
//   its own CONTROLLER listener for itself).
// - Replication: each node has a REPLICATION listener with one proxy in front of it, and advertises
//   the proxy (advertised.listeners), so followers fetching from it come through the proxy.
// - GRPC (clients) and HTTP are not proxied.
// The proxies run on the test process's event loop: blocking it (execFileSync, spawnSync, long
// synchronous work) stalls all node-to-node traffic, and the Raft quorum loses its leader.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { FaultProxy } from './faultProxy.js';
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
  /**
   * Route node-to-node traffic (Raft, the controller API, replication) through fault-injecting
   * proxies so that `cutOff()`/`heal()` work; needs a broker with the REPLICATION listener.
   * Default false: nodes talk to each other directly and have no REPLICATION listener.
   */
  networkFaults?: boolean;
  /** Each node's process.roles (default 'broker,controller'); the voters are the nodes with 'controller'. */
  roles?: (nodeId: number) => 'broker' | 'controller' | 'broker,controller';
  /**
   * Where each node runs: the address it binds and advertises, and the command it runs under (e.g.
   * `ip netns exec` into its own network namespace). Default: 127.0.0.1, run directly.
   */
  placement?: (nodeId: number) => NodePlacement;
}

export interface NodePlacement {
  host: string;
  launcher?: readonly string[];
}

/** The proxies of a cluster started with `networkFaults`. */
interface FaultNetwork {
  /** `${from}>${to}`: node `from`'s link to node `to`'s CONTROLLER listener. */
  controller: Map<string, FaultProxy>;
  /** In front of each node's REPLICATION listener (shared by every follower fetching from it). */
  replication: Map<number, FaultProxy>;
  /** Each node's REPLICATION listener port (the proxies' target). */
  replicationPorts: Map<number, number>;
  /** Nodes cut off now. */
  cut: Set<number>;
}

const pairKey = (from: number, to: number) => `${from}>${to}`;

/** Starts a proxy to `target` on a free port that is none of `taken` (ports chosen for the nodes but not bound yet). */
async function startProxy(target: number, taken: Set<number>): Promise<FaultProxy> {
  for (let attempt = 0; ; attempt++) {
    const proxy = await FaultProxy.start({ host: '127.0.0.1', port: target });
    if (!taken.has(proxy.port)) {
      taken.add(proxy.port);
      return proxy;
    }
    await proxy.close();
    if (attempt >= 20) throw new Error('could not find a free port for a proxy');
  }
}

export class LocalCluster {
  private proxiesClosed: Promise<void> | undefined;

  private constructor(
    readonly nodes: NodeProcess[],
    readonly dataDir: string,
    readonly clusterId: string,
    /**
     * controller.quorum.voters with every node's own CONTROLLER address. Without `networkFaults`
     * every node has exactly this; with it, each node's list names proxies instead (`votersOf`).
     */
    readonly voters: string,
    private readonly network: FaultNetwork | undefined,
  ) {}

  /** Creates every node's config and launches all nodes at once, waiting until all are ready. */
  static async start(options: LocalClusterOptions): Promise<LocalCluster> {
    const cluster = await LocalCluster.create(options);
    await cluster.launch();
    return cluster;
  }

  /**
   * Writes every node's server.properties (shared cluster.id; with `networkFaults`, starts the
   * proxies too) without starting any node; `launch()` starts them. `start()` does both.
   */
  static async create(options: LocalClusterOptions): Promise<LocalCluster> {
    if (!Number.isInteger(options.nodes) || options.nodes < 1) throw new RangeError(`nodes must be a positive integer, got ${options.nodes}`);
    const ids = Array.from({ length: options.nodes }, (_, i) => i + 1);
    const faults = options.networkFaults === true;
    const perNode = faults ? 5 : 4;
    const ports = await freePorts(perNode * options.nodes);
    const portsOf = (id: number) => ({ grpc: ports[perNode * (id - 1)]!, controller: ports[perNode * (id - 1) + 1]!, http: ports[perNode * (id - 1) + 2]!, kafka: ports[perNode * (id - 1) + 3]! });
    const roleOf = (id: number) => options.roles?.(id) ?? 'broker,controller';
    const voterIds = ids.filter((id) => roleOf(id).includes('controller'));
    if (voterIds.length === 0) throw new RangeError('a cluster needs at least one node with the controller role');
    if (options.roles !== undefined && options.networkFaults === true) throw new RangeError('networkFaults needs every node to be a broker and a controller');
    // The fault proxies listen on the test process's loopback, which nodes placed elsewhere cannot reach.
    if (options.placement !== undefined && options.networkFaults === true) throw new RangeError('networkFaults works only with every node on 127.0.0.1 (no placement)');
    const hostOf = (id: number) => options.placement?.(id).host ?? '127.0.0.1';
    const voters = voterIds.map((id) => `${id}@${hostOf(id)}:${portsOf(id).controller}`).join(',');
    const clusterId = randomBytes(16).toString('base64url');

    let network: FaultNetwork | undefined;
    if (faults) {
      network = { controller: new Map(), replication: new Map(), replicationPorts: new Map(), cut: new Set() };
      const taken = new Set(ports);
      try {
        for (const id of ids) {
          const replicationPort = ports[perNode * (id - 1) + 4]!;
          network.replicationPorts.set(id, replicationPort);
          network.replication.set(id, await startProxy(replicationPort, taken));
          for (const from of ids) {
            if (from !== id && voterIds.includes(id)) network.controller.set(pairKey(from, id), await startProxy(portsOf(id).controller, taken));
          }
        }
      } catch (error) {
        await Promise.all([...network.controller.values(), ...network.replication.values()].map((proxy) => proxy.close()));
        throw error;
      }
    }
    const networkConfig = (id: number): Record<string, string> => {
      if (network === undefined) return { 'controller.quorum.voters': voters };
      const { grpc, controller, http, kafka } = portsOf(id);
      const replication = network.replicationPorts.get(id)!;
      return {
        'listeners': `PLAINTEXT://127.0.0.1:${kafka},GRPC://127.0.0.1:${grpc},REPLICATION://127.0.0.1:${replication},CONTROLLER://127.0.0.1:${controller},HTTP://127.0.0.1:${http}`,
        'advertised.listeners': `PLAINTEXT://127.0.0.1:${kafka},GRPC://127.0.0.1:${grpc},REPLICATION://${network.replication.get(id)!.address},CONTROLLER://127.0.0.1:${controller},HTTP://127.0.0.1:${http}`,
        'controller.quorum.voters': voterIds
          .map((voter) => `${voter}@${voter === id ? `127.0.0.1:${portsOf(voter).controller}` : network.controller.get(pairKey(id, voter))!.address}`)
          .join(','),
      };
    };
    const closeProxies = async () => {
      if (network !== undefined) await Promise.all([...network.controller.values(), ...network.replication.values()].map((proxy) => proxy.close()));
    };
    const nodes = await Promise.all(
      ids.map((id) =>
        NodeProcess.create({
          nodeId: id,
          dataDir: join(options.dataDir, `node-${id}`),
          ports: portsOf(id),
          host: hostOf(id),
          launcher: options.placement?.(id).launcher,
          env: options.env,
          config: {
            'process.roles': roleOf(id),
            ...networkConfig(id),
            'cluster.id': clusterId,
            ...options.config,
            ...options.nodeConfig?.(id),
          },
        }),
      ),
    ).catch(async (error: unknown) => {
      await closeProxies();
      throw error;
    });
    return new LocalCluster(nodes, options.dataDir, clusterId, voters, network);
  }

  /** Launches every node at once and waits until all are ready; on failure kills them all and throws with their output. */
  async launch(): Promise<void> {
    const nodes = this.nodes;
    try {
      await Promise.all(nodes.map((node) => node.launch()));
    } catch (error) {
      await this.kill();
      // The failing node's output is in the error; the others' may say why it could not join.
      const failed = /^node (\d+) /.exec((error as Error).message)?.[1];
      const others = nodes.filter((node) => String(node.nodeId) !== failed);
      const tails = others.map((node) => `----- node ${node.nodeId} (${node.dataDir}), last 2000 bytes -----\n${node.logs().slice(-2000)}`);
      throw new Error(`${(error as Error).message}\n${tails.join('\n')}`);
    }
  }

  /** Whether the cluster was created with `networkFaults` (so `cutOff`/`heal` work). */
  get networkFaults(): boolean {
    return this.network !== undefined;
  }

  private faultNetwork(): FaultNetwork {
    if (this.network === undefined) throw new Error('network faults are off: start the LocalCluster with networkFaults: true');
    return this.network;
  }

  /**
   * Cuts node `nodeId` off from the other nodes; clients still reach it over GRPC. Every link
   * between it and another node (Raft and the controller API, both ways) and the proxy in front of
   * its REPLICATION listener stop passing traffic: open connections are reset and new ones are reset
   * as soon as they are accepted, until `heal(nodeId)`. Not cut: the node's own replication fetches
   * from other leaders, which go through those leaders' proxies (shared by all their followers);
   * the controller fences the node once its heartbeats stop, which removes it from every ISR anyway.
   * Cuts of several nodes combine: a link stays cut while either of its ends is cut off.
   */
  cutOff(nodeId: number): void {
    const network = this.faultNetwork();
    this.node(nodeId);
    network.cut.add(nodeId);
    this.applyCuts();
  }

  /** Ends `cutOff(nodeId)` (links to nodes still cut off stay cut). New connections pass; nodes reconnect on their own. */
  heal(nodeId: number): void {
    const network = this.faultNetwork();
    this.node(nodeId);
    network.cut.delete(nodeId);
    this.applyCuts();
  }

  /** Heals every node that is cut off (nothing without `networkFaults`). */
  healAll(): void {
    if (this.network === undefined) return;
    this.network.cut.clear();
    this.applyCuts();
  }

  isCutOff(nodeId: number): boolean {
    this.node(nodeId);
    return this.network?.cut.has(nodeId) ?? false;
  }

  /** The nodes cut off now, in id order. */
  cutOffNodes(): number[] {
    return [...(this.network?.cut ?? [])].sort((a, b) => a - b);
  }

  /** The proxy node `from` dials to reach node `to`'s CONTROLLER listener (for one-way or custom cuts; `cutOff`/`heal` set it again). */
  controllerProxy(from: number, to: number): FaultProxy {
    this.node(from);
    this.node(to);
    const proxy = this.faultNetwork().controller.get(pairKey(from, to));
    if (proxy === undefined) throw new RangeError(`no proxy from node ${from} to itself`);
    return proxy;
  }

  /** The proxy in front of node `nodeId`'s REPLICATION listener, which it advertises. */
  replicationProxy(nodeId: number): FaultProxy {
    this.node(nodeId);
    return this.faultNetwork().replication.get(nodeId)!;
  }

  /** The controller.quorum.voters node `nodeId` was configured with. */
  votersOf(nodeId: number): string {
    this.node(nodeId);
    const network = this.network;
    if (network === undefined) return this.voters;
    return this.nodes
      .map((voter) => `${voter.nodeId}@${voter.nodeId === nodeId ? voter.controllerAddress : network.controller.get(pairKey(nodeId, voter.nodeId))!.address}`)
      .join(',');
  }

  private applyCuts(): void {
    const network = this.network!;
    const set = (proxy: FaultProxy, cut: boolean) => {
      if (cut && !proxy.isCut) proxy.cut();
      else if (!cut && proxy.isCut) proxy.heal();
    };
    for (const from of this.nodes) {
      for (const to of this.nodes) {
        if (from === to) continue;
        set(network.controller.get(pairKey(from.nodeId, to.nodeId))!, network.cut.has(from.nodeId) || network.cut.has(to.nodeId));
      }
    }
    for (const [id, proxy] of network.replication) set(proxy, network.cut.has(id));
  }

  private async closeProxies(): Promise<void> {
    const network = this.network;
    if (network === undefined) return;
    this.proxiesClosed ??= Promise.all([...network.controller.values(), ...network.replication.values()].map((proxy) => proxy.close())).then(() => undefined);
    return this.proxiesClosed;
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

  /**
   * SIGTERM every node at once (a clean stop), and their exit statuses in node order. Heals every
   * cut first (a controlled shutdown talks to the controller), and closes the proxies afterwards.
   */
  async stop(): Promise<ExitStatus[]> {
    this.healAll();
    try {
      return await Promise.all(this.nodes.map((node) => node.stop()));
    } finally {
      await this.closeProxies();
    }
  }

  /** SIGKILL every node (paused ones too), then close the proxies. */
  async kill(): Promise<void> {
    try {
      await Promise.all(this.nodes.map((node) => node.kill('SIGKILL')));
    } finally {
      await this.closeProxies();
    }
  }

  /** Every node's output, each under a header naming the node and its directory. */
  logs(bytesPerNode = Infinity): string {
    return this.nodes.map((node) => `----- node ${node.nodeId} (${node.dataDir}) -----\n${node.logs().slice(-bytesPerNode)}`).join('\n');
  }
}
