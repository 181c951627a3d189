// Three real processes run the example replicated key-value store over Raft (packages/raft):
// SIGKILL the leader during writes, a new leader is elected, no acknowledged write is lost, and
// the killed node catches up after a restart — from a snapshot, since the others compact their
// logs every 100 entries.
import { spawn, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { freePort, makeTempDir } from '@runnel/testkit';

const KV_NODE = fileURLToPath(new URL('../../packages/raft/scripts/kv-node.mjs', import.meta.url));

interface KvNode {
  id: number;
  httpPort: number;
  args: string[];
  child: ChildProcess | undefined;
  output: string;
}

async function launch(node: KvNode): Promise<void> {
  const child = spawn(process.execPath, [KV_NODE, ...node.args], { stdio: ['ignore', 'pipe', 'pipe'] });
  node.child = child;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`kv node ${node.id} not ready:\n${node.output.slice(-3000)}`)), 30_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      node.output = (node.output + chunk.toString()).slice(-200_000);
      if (node.output.includes('"msg":"kv node ready"')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => (node.output = (node.output + chunk.toString()).slice(-200_000)));
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`kv node ${node.id} exited (${code ?? signal}):\n${node.output.slice(-3000)}`));
    });
  });
}

async function kill(node: KvNode): Promise<void> {
  const child = node.child;
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

async function request(node: KvNode, method: string, path: string, body?: string): Promise<{ status: number; json: any }> {
  const response = await fetch(`http://127.0.0.1:${node.httpPort}${path}`, { method, body, signal: AbortSignal.timeout(5_000) });
  return { status: response.status, json: await response.json() };
}

async function status(node: KvNode): Promise<any | undefined> {
  try {
    return (await request(node, 'GET', '/status')).json;
  } catch {
    return undefined;
  }
}

async function waitForLeader(nodes: KvNode[], timeoutMs = 15_000): Promise<KvNode> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const node of nodes) {
      const s = await status(node);
      if (s?.role === 'leader') return node;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('no leader elected in time');
}

describe('Raft key-value example: three processes over gRPC', () => {
  let dir: string;
  const nodes: KvNode[] = [];

  beforeEach(({ onTestFailed }) => {
    onTestFailed(() => {
      for (const node of nodes) process.stderr.write(`\n----- kv node ${node.id} -----\n${node.output.slice(-6000)}\n`);
    });
  });

  beforeAll(async () => {
    dir = await makeTempDir('runnel-raft-');
    const raftPorts = [await freePort(), await freePort(), await freePort()];
    const voters = raftPorts.map((port, i) => `${i + 1}@127.0.0.1:${port}`).join(',');
    for (let i = 0; i < 3; i++) {
      const httpPort = await freePort();
      nodes.push({
        id: i + 1,
        httpPort,
        output: '',
        child: undefined,
        args: ['--id', String(i + 1), '--data-dir', join(dir, `node-${i + 1}`), '--raft', `127.0.0.1:${raftPorts[i]}`, '--http', `127.0.0.1:${httpPort}`, '--voters', voters, '--tick-ms', '50', '--snapshot-every', '100', '--retain', '10'],
      });
    }
    await Promise.all(nodes.map(launch));
  });

  afterAll(async () => {
    await Promise.all(nodes.map(kill));
    await rm(dir, { recursive: true, force: true });
  });

  it('loses no acknowledged write when the leader is killed, and the old leader catches up', async () => {
    let leader = await waitForLeader(nodes);
    const acknowledged = new Map<string, string>();
    const writes = 600;
    let next = 0;
    let killed: KvNode | undefined;
    let failoverMs = 0;

    const writer = async () => {
      while (next < writes) {
        const i = next++;
        const key = `key-${i}`;
        const value = `value-${i}`;
        if (i === 200 && killed === undefined) {
          killed = leader;
          await kill(killed);
          const started = Date.now();
          leader = await waitForLeader(nodes.filter((node) => node !== killed));
          failoverMs = Date.now() - started;
        }
        const deadline = Date.now() + 30_000;
        for (;;) {
          expect(Date.now(), `write ${key} never succeeded`).toBeLessThan(deadline);
          const target = leader;
          const result = await request(target, 'PUT', `/kv/${key}`, value).catch(() => undefined);
          if (result?.status === 200) {
            acknowledged.set(key, value);
            break;
          }
          // Not the leader, no quorum yet, or the process is gone: find the leader and retry
          // (a put of the same value is safe to repeat).
          leader = await waitForLeader(nodes.filter((node) => node !== killed || node.child?.exitCode === null));
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, writer));
    expect(acknowledged.size).toBe(writes);
    expect(killed).toBeDefined();
    console.log(`raft kv: ${writes} writes acknowledged; a new leader ${failoverMs} ms after SIGKILL of node ${killed!.id}`);

    // Every acknowledged write is visible through a linearizable read on the new leader.
    for (const [key, value] of acknowledged) {
      const read = await request(leader, 'GET', `/kv/${key}`);
      expect(read.json.value, key).toBe(value);
    }

    // The killed node restarts from its own log and catches up with the leader.
    await launch(killed!);
    const target = (await status(leader)).commit;
    const deadline = Date.now() + 20_000;
    let applied = 0;
    while (Date.now() < deadline) {
      applied = (await status(killed!))?.applied ?? 0;
      if (applied >= target) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(applied).toBeGreaterThanOrEqual(target);
    expect(killed!.output, 'the restarted node caught up through a snapshot').toMatch(/installed a snapshot/);
    for (const [key, value] of acknowledged) {
      const read = await request(killed!, 'GET', `/kv/${key}?local=1`);
      expect(read.json.value, `${key} on the restarted node`).toBe(value);
    }
  });

  it('a leader paused with SIGSTOP is replaced, acknowledges nothing it could lose, and follows after SIGCONT', async () => {
    const paused = await waitForLeader(nodes);
    const child = paused.child!;
    child.kill('SIGSTOP');
    try {
      const others = nodes.filter((node) => node !== paused);
      const leader = await waitForLeader(others);
      const acknowledged = new Map<string, string>();
      for (let i = 0; i < 50; i++) {
        const result = await request(leader, 'PUT', `/kv/paused-${i}`, `v${i}`);
        expect(result.status).toBe(200);
        acknowledged.set(`paused-${i}`, `v${i}`);
      }
      // A write sent to the paused process is answered only after SIGCONT, and then not as a
      // success: that node is no longer the leader of the current term.
      const stale = request(paused, 'PUT', '/kv/stale', 'x').catch(() => undefined);
      child.kill('SIGCONT');
      const answer = await stale;
      expect(answer?.status ?? 0).not.toBe(200);
      const deadline = Date.now() + 15_000;
      let caughtUp = false;
      while (Date.now() < deadline && !caughtUp) {
        const s = await status(paused);
        const l = await status(leader);
        caughtUp = s?.role === 'follower' && s.leader === leader.id && s.applied >= (l?.commit ?? Infinity);
        if (!caughtUp) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(caughtUp, 'the resumed node follows the new leader and has applied its log').toBe(true);
      for (const [key, value] of acknowledged) {
        expect((await request(paused, 'GET', `/kv/${key}?local=1`)).json.value).toBe(value);
      }
    } finally {
      child.kill('SIGCONT');
    }
  });
});
