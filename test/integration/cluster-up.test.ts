// What `npm start` runs: `runnel cluster up` starts a node process with its config written to
// DATA/node-N/server.properties, serves clients, and stops everything cleanly on Ctrl-C.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RUNNEL_BIN, makeTempDir } from '@runnel/testkit';
import { runCli } from './cli.js';

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A base port whose whole plan (base+1, +101, +201, +301) is free right now. */
async function freeBasePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    const free = await Promise.all([1, 101, 201, 301].map((offset) => portIsFree(base + offset)));
    if (free.every(Boolean)) return base;
  }
  throw new Error('no free port plan found');
}

describe('runnel cluster up (npm start)', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('starts a node on the port plan, serves the quick start, and stops cleanly on SIGINT', async () => {
    const dataDir = await makeTempDir('runnel-cluster-up-');
    dirs.push(dataDir);
    const basePort = await freeBasePort();
    const child = spawn(process.execPath, [RUNNEL_BIN, 'cluster', 'up', '--nodes', '1', '--data-dir', dataDir, '--base-port', String(basePort)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const deadline = Date.now() + 60_000;
      while (!output.includes('Press Ctrl-C to stop.')) {
        expect(Date.now(), `cluster up did not come up:\n${output}`).toBeLessThan(deadline);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const grpcPort = basePort + 1 + 100;
      expect(output).toContain(`gRPC 127.0.0.1:${grpcPort}`);
      expect(output).toContain(`--bootstrap 127.0.0.1:${grpcPort}`);
      const config = readFileSync(join(dataDir, 'node-1', 'server.properties'), 'utf8');
      expect(config).toContain(`listeners=GRPC://127.0.0.1:${grpcPort},HTTP://127.0.0.1:${basePort + 1 + 300}`);

      const bootstrap = ['--bootstrap', `127.0.0.1:${grpcPort}`];
      expect((await runCli([...bootstrap, 'topic', 'create', 'demo', '--partitions', '3', '--replication-factor', '1'])).code).toBe(0);
      expect((await runCli([...bootstrap, 'produce', 'demo'], { input: 'a\nb\nc\n' })).code).toBe(0);
      const consumed = await runCli([...bootstrap, 'consume', 'demo', '--from-beginning', '--max-messages', '3']);
      expect(consumed.stdout.trim().split('\n').sort()).toEqual(['a', 'b', 'c']);
      const health = await fetch(`http://127.0.0.1:${basePort + 1 + 300}/health`);
      expect(await health.json()).toEqual({ ready: true });

      child.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(output).toContain('stopped.');
      expect(readFileSync(join(dataDir, 'node-1', 'node.log'), 'utf8')).toContain('"msg":"node stopped"');
      expect(existsSync(join(dataDir, 'node-1', 'logs', 'topics.json'))).toBe(true);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
