// What `npm start` runs: `runnel cluster up` starts three node processes (each a broker and a
// controller voter) with their configs written to DATA/node-N/server.properties, forms a cluster
// that spreads a topic's leaders evenly, and stops everything cleanly on Ctrl-C.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RUNNEL_BIN, makeTempDir } from '@runnel/testkit';
import { runCli } from './cli.js';
import { freeBasePort } from './harness.js';

const NODES = 3;

interface StatusJson {
  clusterId: string;
  controller: { id: number; term: number };
  nodes: Array<{ id: number; host: string; port: number; fenced: boolean }>;
  topics: Array<{ name: string; partitions: Array<{ partition: number; leader: number; replicas: number[]; isr: number[]; offline: boolean }> }>;
  leaders: Record<string, number>;
}

describe('runnel cluster up (npm start)', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('starts 3 nodes on the port plan, balances a topic\'s leaders over them, and stops cleanly on SIGINT', async () => {
    const dataDir = await makeTempDir('runnel-cluster-up-');
    dirs.push(dataDir);
    const basePort = await freeBasePort(NODES);
    const child = spawn(process.execPath, [RUNNEL_BIN, 'cluster', 'up', '--nodes', String(NODES), '--data-dir', dataDir, '--base-port', String(basePort)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const ids = Array.from({ length: NODES }, (_, i) => i + 1);
    const kafkaPort = (id: number) => basePort + id;
    const grpcPort = (id: number) => basePort + id + 100;
    const raftPort = (id: number) => basePort + id + 200;
    const httpPort = (id: number) => basePort + id + 300;
    try {
      const deadline = Date.now() + 70_000;
      while (!output.includes('Press Ctrl-C to stop.')) {
        expect(Date.now(), `cluster up did not come up:\n${output}`).toBeLessThan(deadline);
        expect(child.exitCode, `cluster up exited:\n${output}`).toBeNull();
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(output.trim().split('\n').at(-1)).toBe('Press Ctrl-C to stop.');

      const voters = `controller.quorum.voters=${ids.map((id) => `${id}@127.0.0.1:${raftPort(id)}`).join(',')}`;
      const clusterId = readFileSync(join(dataDir, 'cluster.id'), 'utf8').trim();
      expect(clusterId).not.toBe('');
      for (const id of ids) {
        expect(output).toContain(`Kafka 127.0.0.1:${kafkaPort(id)}  gRPC 127.0.0.1:${grpcPort(id)}`);
        expect(output).toContain(`Raft 127.0.0.1:${raftPort(id)}`);
        const config = readFileSync(join(dataDir, `node-${id}`, 'server.properties'), 'utf8');
        expect(config).toContain(`node.id=${id}\n`);
        expect(config).toContain('process.roles=broker,controller\n');
        expect(config).toContain(`listeners=PLAINTEXT://127.0.0.1:${kafkaPort(id)},GRPC://127.0.0.1:${grpcPort(id)},CONTROLLER://127.0.0.1:${raftPort(id)},HTTP://127.0.0.1:${httpPort(id)}\n`);
        expect(config).toContain(`${voters}\n`);
        expect(config).toContain(`cluster.id=${clusterId}\n`);
        expect(config).toContain('broker.session.timeout.ms=4000\n');
        expect((await fetch(`http://127.0.0.1:${httpPort(id)}/health`)).ok).toBe(true);
      }

      expect(output).toContain(`Kafka clients: bootstrap.servers=${ids.map((id) => `127.0.0.1:${kafkaPort(id)}`).join(',')}`);
      const bootstrapList = ids.map((id) => `127.0.0.1:${grpcPort(id)}`).join(',');
      expect(output).toContain(`--bootstrap ${bootstrapList} topic create demo --partitions 12 --replication-factor 3`);
      const bootstrap = ['--bootstrap', bootstrapList];
      const created = await runCli([...bootstrap, 'topic', 'create', 'demo', '--partitions', '12', '--replication-factor', '3']);
      expect(created.code, created.stderr).toBe(0);

      // The answering node's metadata image may trail the commit of the new topic by a moment.
      let status: StatusJson | undefined;
      const statusDeadline = Date.now() + 10_000;
      for (;;) {
        const result = await runCli([...bootstrap, 'cluster', 'status', '--format', 'json']);
        expect(result.code, result.stderr).toBe(0);
        expect(result.stdout.trim().split('\n')).toHaveLength(1);
        status = JSON.parse(result.stdout) as StatusJson;
        if (status.topics.find((topic) => topic.name === 'demo')?.partitions.length === 12) break;
        expect(Date.now(), `demo never appeared in cluster status: ${result.stdout}`).toBeLessThan(statusDeadline);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(status.clusterId).toBe(clusterId);
      expect(ids).toContain(status.controller.id);
      expect(status.controller.term).toBeGreaterThan(0);
      expect(status.nodes.map((node) => ({ id: node.id, port: node.port, fenced: node.fenced }))).toEqual(ids.map((id) => ({ id, port: grpcPort(id), fenced: false })));
      const demo = status.topics.find((topic) => topic.name === 'demo')!;
      for (const partition of demo.partitions) {
        expect(partition.offline).toBe(false);
        expect([...partition.replicas].sort((a, b) => a - b)).toEqual(ids);
        expect(partition.replicas).toContain(partition.leader);
      }
      expect(status.leaders).toEqual({ '1': 4, '2': 4, '3': 4 });

      const table = await runCli([...bootstrap, 'cluster', 'status']);
      expect(table.code, table.stderr).toBe(0);
      expect(table.stdout).toContain('leaders: node 1: 4  node 2: 4  node 3: 4');
      expect(table.stdout).toContain('0 offline');

      child.kill('SIGINT');
      const code = await Promise.race([exited, new Promise<string>((resolve) => setTimeout(() => resolve('still running after 30 s'), 30_000))]);
      expect(code, output).toBe(0);
      expect(output).toContain('stopped.');
      for (const id of ids) {
        expect(readFileSync(join(dataDir, `node-${id}`, 'node.log'), 'utf8')).toContain('"msg":"node stopped"');
        expect(existsSync(join(dataDir, `node-${id}`, 'logs'))).toBe(true);
      }
    } finally {
      // SIGKILL would orphan the nodes: let `cluster up` stop them first when it still runs.
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 30_000))]);
        child.kill('SIGKILL');
      }
    }
  });
});
