import { readFileSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FaultProxy, LocalCluster, makeTempDir } from '../src/index.js';

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A TCP echo server on a free port; ends its side when the client does. Keeps its open sockets. */
async function echoServer(port = 0): Promise<{ server: Server; port: number; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    socket.pipe(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const bound = (server.address() as { port: number }).port;
  cleanups.push(() => closeServer(server, sockets));
  return { server, port: bound, sockets };
}

async function closeServer(server: Server, sockets: Set<Socket>): Promise<void> {
  for (const socket of sockets) socket.destroy();
  if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
}

async function startProxy(port: number): Promise<FaultProxy> {
  const proxy = await FaultProxy.start({ host: '127.0.0.1', port });
  cleanups.push(() => proxy.close());
  return proxy;
}

/** A client connection that records what it receives and when it closes. */
interface Client {
  socket: Socket;
  received: () => Buffer;
  closed: Promise<{ hadError: boolean; error: Error | undefined }>;
  ended: Promise<void>;
}

async function dial(port: number): Promise<Client> {
  const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  const chunks: Buffer[] = [];
  let error: Error | undefined;
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', (e) => (error = e));
  const closed = new Promise<{ hadError: boolean; error: Error | undefined }>((resolve) => socket.once('close', (hadError) => resolve({ hadError, error })));
  const ended = new Promise<void>((resolve) => socket.once('end', () => resolve()));
  cleanups.push(() => void socket.destroy());
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  return { socket, received: () => Buffer.concat(chunks), closed, ended };
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Resolves within `ms` or rejects naming `what`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} not within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Connects (the connection may be reset before or after it completes) and waits until it is closed, failing after `ms`. */
async function closedAtOnce(port: number, ms = 1_000): Promise<void> {
  const socket = connect({ host: '127.0.0.1', port });
  cleanups.push(() => void socket.destroy());
  socket.on('error', () => {});
  socket.write('anyone?');
  await within(new Promise((resolve) => socket.once('close', resolve)), ms, `a new connection to port ${port} closing`);
}

async function echoes(port: number, payload: Buffer): Promise<Buffer> {
  const client = await dial(port);
  client.socket.end(payload);
  await within(client.ended, 5_000, 'the echo');
  return client.received();
}

describe('FaultProxy', () => {
  it('passes bytes both ways, with back-pressure and half-close', async () => {
    const echo = await echoServer();
    const proxy = await startProxy(echo.port);
    expect(proxy.address).toBe(`127.0.0.1:${proxy.port}`);
    expect(proxy.target).toEqual({ host: '127.0.0.1', port: echo.port });
    expect(proxy.isCut).toBe(false);

    const client = await dial(proxy.port);
    client.socket.write('hello');
    await waitFor(() => client.received().toString() === 'hello', 'hello echoed');
    expect(proxy.connections).toBe(1);

    // 8 MiB through a connection, ended by the client: all of it comes back, then the end.
    const big = Buffer.alloc(8 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE(i, i);
    const back = await echoes(proxy.port, big);
    expect(back.length).toBe(big.length);
    expect(back.equals(big)).toBe(true);
  });

  it('cut() resets open connections on both sides, and resets new ones at once', async () => {
    const echo = await echoServer();
    const proxy = await startProxy(echo.port);
    const client = await dial(proxy.port);
    client.socket.write('ping');
    await waitFor(() => client.received().toString() === 'ping', 'ping echoed');
    expect(echo.sockets.size).toBe(1);

    proxy.cut();
    expect(proxy.isCut).toBe(true);
    await within(client.closed, 1_000, 'the client side closing');
    await waitFor(() => echo.sockets.size === 0, 'the server side closing', 1_000);
    expect(proxy.connections).toBe(0);

    // A new connection is accepted and reset before any byte passes; the target never sees it.
    const started = Date.now();
    const next = connect({ host: '127.0.0.1', port: proxy.port });
    cleanups.push(() => void next.destroy());
    next.on('error', () => {});
    next.write('anyone?');
    const received: Buffer[] = [];
    next.on('data', (chunk: Buffer) => received.push(chunk));
    await within(new Promise((resolve) => next.once('close', resolve)), 1_000, 'a new connection closing');
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(Buffer.concat(received).length).toBe(0);
    expect(echo.sockets.size).toBe(0);
    expect(proxy.connections).toBe(0);
  });

  it('heal() passes traffic again (cut connections stay closed)', async () => {
    const echo = await echoServer();
    const proxy = await startProxy(echo.port);
    const before = await dial(proxy.port);
    proxy.cut();
    await within(before.closed, 1_000, 'the cut connection closing');
    proxy.heal();
    expect(proxy.isCut).toBe(false);
    expect(before.socket.destroyed).toBe(true);
    expect((await echoes(proxy.port, Buffer.from('again'))).toString()).toBe('again');
    // cut and heal are idempotent
    proxy.heal();
    proxy.cut();
    proxy.cut();
    proxy.heal();
    expect((await echoes(proxy.port, Buffer.from('and again'))).toString()).toBe('and again');
  });

  it('closes a connection at once while the target is down, and reaches the target again once it is back', async () => {
    const first = await echoServer();
    const port = first.port;
    const proxy = await startProxy(port);
    expect((await echoes(proxy.port, Buffer.from('up'))).toString()).toBe('up');
    const open = await dial(proxy.port);
    await closeServer(first.server, first.sockets); // the "node" goes down
    await within(open.closed, 1_000, 'the open connection closing with the target');

    await closedAtOnce(proxy.port);

    await echoServer(port); // the "node" restarts on the same port
    expect((await echoes(proxy.port, Buffer.from('back'))).toString()).toBe('back');
  });

  it('close() stops listening and closes open connections', async () => {
    const echo = await echoServer();
    const proxy = await FaultProxy.start({ host: '127.0.0.1', port: echo.port });
    const client = await dial(proxy.port);
    await proxy.close();
    await proxy.close();
    await within(client.closed, 1_000, 'the open connection closing');
    await expect(dial(proxy.port)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('listens where it is told', async () => {
    const echo = await echoServer();
    const first = await startProxy(echo.port);
    const port = first.port;
    await first.close();
    const again = await FaultProxy.start({ host: '127.0.0.1', port: echo.port }, { listenHost: '127.0.0.1', listenPort: port });
    cleanups.push(() => again.close());
    expect(again.port).toBe(port);
    expect((await echoes(port, Buffer.from('there'))).toString()).toBe('there');
  });
});

function readProperties(path: string): Record<string, string> {
  const properties: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const at = line.indexOf('=');
    if (at > 0) properties[line.slice(0, at)] = line.slice(at + 1);
  }
  return properties;
}

async function createCluster(networkFaults: boolean): Promise<LocalCluster> {
  const dataDir = await makeTempDir('runnel-testkit-');
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const cluster = await LocalCluster.create({ nodes: 3, dataDir, networkFaults, config: { 'replica.lag.time.max.ms': '4000' } });
  cleanups.push(() => cluster.kill());
  return cluster;
}

describe('LocalCluster with networkFaults (configs only, nodes not launched)', () => {
  it('gives every ordered pair its own controller proxy and every node a replication proxy it advertises', async () => {
    const cluster = await createCluster(true);
    expect(cluster.networkFaults).toBe(true);
    const ports = new Set<number>();
    for (const node of cluster.nodes) {
      const id = node.nodeId;
      const properties = readProperties(join(cluster.dataDir, `node-${id}`, 'server.properties'));
      expect(node.configPath).toBe(join(cluster.dataDir, `node-${id}`, 'server.properties'));
      expect(properties['replica.lag.time.max.ms']).toBe('4000');
      expect(properties['cluster.id']).toBe(cluster.clusterId);

      const replication = cluster.replicationProxy(id);
      const rPort = replication.target.port;
      expect(properties['listeners']).toBe(
        `PLAINTEXT://127.0.0.1:${node.kafkaPort},GRPC://127.0.0.1:${node.grpcPort},REPLICATION://127.0.0.1:${rPort},CONTROLLER://127.0.0.1:${node.controllerPort},HTTP://127.0.0.1:${node.httpPort}`,
      );
      expect(properties['advertised.listeners']).toBe(
        `PLAINTEXT://127.0.0.1:${node.kafkaPort},GRPC://127.0.0.1:${node.grpcPort},REPLICATION://127.0.0.1:${replication.port},CONTROLLER://127.0.0.1:${node.controllerPort},HTTP://127.0.0.1:${node.httpPort}`,
      );

      // Its own CONTROLLER listener for itself, a proxy of its own for each other voter.
      const voters = properties['controller.quorum.voters']!;
      expect(voters).toBe(cluster.votersOf(id));
      const entries = voters.split(',').map((entry) => entry.split('@') as [string, string]);
      expect(entries.map(([voter]) => Number(voter))).toEqual([1, 2, 3]);
      for (const [voter, address] of entries) {
        const other = cluster.node(Number(voter));
        if (other === node) {
          expect(address).toBe(node.controllerAddress);
        } else {
          const proxy = cluster.controllerProxy(id, other.nodeId);
          expect(address).toBe(proxy.address);
          expect(proxy.target).toEqual({ host: '127.0.0.1', port: other.controllerPort });
        }
      }
      for (const port of [node.kafkaPort, node.grpcPort, node.controllerPort, node.httpPort, rPort, replication.port]) ports.add(port);
      for (const other of cluster.nodes) if (other !== node) ports.add(cluster.controllerProxy(id, other.nodeId).port);
    }
    // 5 listeners, 1 replication proxy and 2 controller proxies per node, all distinct.
    expect(ports.size).toBe(3 * 8);
    expect(cluster.voters).toBe(cluster.nodes.map((node) => `${node.nodeId}@${node.controllerAddress}`).join(','));
  });

  it('cutOff(X) cuts every link into and out of X and X\'s replication proxy; heal(X) restores them', async () => {
    const cluster = await createCluster(true);
    const ids = [1, 2, 3];
    /** Which proxies are cut, as 'a>b' for controller links and 'rN' for replication. */
    const cutProxies = () => {
      const names: string[] = [];
      for (const from of ids) for (const to of ids) if (from !== to && cluster.controllerProxy(from, to).isCut) names.push(`${from}>${to}`);
      for (const id of ids) if (cluster.replicationProxy(id).isCut) names.push(`r${id}`);
      return names;
    };
    expect(cutProxies()).toEqual([]);
    cluster.cutOff(2);
    expect(cluster.isCutOff(2)).toBe(true);
    expect(cluster.isCutOff(1)).toBe(false);
    expect(cutProxies()).toEqual(['1>2', '2>1', '2>3', '3>2', 'r2']);
    cluster.cutOff(3);
    expect(cutProxies()).toEqual(['1>2', '1>3', '2>1', '2>3', '3>1', '3>2', 'r2', 'r3']);
    expect(cluster.cutOffNodes()).toEqual([2, 3]);
    cluster.heal(2);
    // 2↔3 stays cut while 3 is cut off.
    expect(cutProxies()).toEqual(['1>3', '2>3', '3>1', '3>2', 'r3']);
    cluster.heal(3);
    cluster.heal(3);
    expect(cutProxies()).toEqual([]);
    cluster.cutOff(1);
    cluster.healAll();
    expect(cutProxies()).toEqual([]);
    expect(() => cluster.cutOff(4)).toThrow(RangeError);
    expect(() => cluster.controllerProxy(1, 1)).toThrow(RangeError);
  });

  it('cutOff resets connections made through the proxies to the nodes\' ports', async () => {
    const cluster = await createCluster(true);
    // Stand-ins for node 2's CONTROLLER and REPLICATION listeners (the nodes are not launched).
    await echoServer(cluster.node(2).controllerPort);
    await echoServer(cluster.replicationProxy(2).target.port);
    const raft = await dial(cluster.controllerProxy(1, 2).port);
    const fetch = await dial(cluster.replicationProxy(2).port);
    raft.socket.write('vote');
    fetch.socket.write('fetch');
    await waitFor(() => raft.received().toString() === 'vote' && fetch.received().toString() === 'fetch', 'traffic through the proxies');

    cluster.cutOff(1);
    // Node 1's link to node 2 is cut; followers' fetches from node 2 are not.
    await within(raft.closed, 1_000, 'the 1→2 link closing');
    fetch.socket.write('more');
    await waitFor(() => fetch.received().toString() === 'fetchmore', 'replication traffic to node 2');
    cluster.heal(1);
    expect((await echoes(cluster.controllerProxy(1, 2).port, Buffer.from('vote again'))).toString()).toBe('vote again');

    cluster.cutOff(2);
    await within(fetch.closed, 1_000, 'the fetch connection to node 2 closing');
    await closedAtOnce(cluster.replicationProxy(2).port);
    await closedAtOnce(cluster.controllerProxy(3, 2).port);
    cluster.heal(2);
    expect((await echoes(cluster.replicationProxy(2).port, Buffer.from('fetch again'))).toString()).toBe('fetch again');
  });

  it('kill() closes the proxies', async () => {
    const cluster = await createCluster(true);
    const proxy = cluster.controllerProxy(3, 1);
    await cluster.kill();
    await expect(dial(proxy.port)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('without networkFaults: today\'s configs, and cutOff throws', async () => {
    const cluster = await createCluster(false);
    expect(cluster.networkFaults).toBe(false);
    for (const node of cluster.nodes) {
      const properties = readProperties(node.configPath);
      expect(properties['listeners']).toBe(`PLAINTEXT://127.0.0.1:${node.kafkaPort},GRPC://127.0.0.1:${node.grpcPort},CONTROLLER://127.0.0.1:${node.controllerPort},HTTP://127.0.0.1:${node.httpPort}`);
      expect(properties['advertised.listeners']).toBeUndefined();
      expect(properties['controller.quorum.voters']).toBe(cluster.voters);
      expect(cluster.votersOf(node.nodeId)).toBe(cluster.voters);
    }
    expect(() => cluster.cutOff(1)).toThrow(/networkFaults/);
    expect(() => cluster.heal(1)).toThrow(/networkFaults/);
    expect(() => cluster.replicationProxy(1)).toThrow(/networkFaults/);
    expect(cluster.isCutOff(1)).toBe(false);
    cluster.healAll();
  });
});
