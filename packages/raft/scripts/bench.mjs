#!/usr/bin/env node
// Commits per second and commit latency of a 3-node Raft group over loopback gRPC, with 100 B
// entries, with and without fsync. The three RaftHosts run in this one process (one event loop),
// talking gRPC over 127.0.0.1; latency is propose → applied on the leader.
//   node packages/raft/scripts/bench.mjs [--entries 20000] [--entry-size 100] [--concurrency 64] [--no-sync] [--json]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createServer } from 'node:net';
import { createLogger } from '@runnel/common';
import { KvStateMachine, RaftHost } from '../dist/host/index.js';

const { values } = parseArgs({
  options: {
    entries: { type: 'string', default: '20000' },
    'entry-size': { type: 'string', default: '100' },
    concurrency: { type: 'string', default: '64' },
    'no-sync': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const total = Number(values.entries);
const concurrency = Number(values.concurrency);
const sync = !values['no-sync'];

const freePort = () => new Promise((resolve) => {
  const server = createServer().listen(0, '127.0.0.1', () => {
    const { port } = server.address();
    server.close(() => resolve(port));
  });
});

const dir = mkdtempSync(join(tmpdir(), 'raft-bench-'));
const logger = createLogger({ name: 'raft-bench', level: 'warn' });
const ports = [await freePort(), await freePort(), await freePort()];
const voters = new Map(ports.map((port, i) => [i + 1, `127.0.0.1:${port}`]));
const hosts = ports.map((port, i) => new RaftHost({
  id: i + 1, voters, group: 'bench', dataDir: join(dir, `node-${i + 1}`), listenHost: '127.0.0.1', listenPort: port,
  stateMachine: new KvStateMachine(), logger, sync, tickMs: 50, snapshotEveryEntries: 50_000,
}));
await Promise.all(hosts.map((host) => host.start()));
let leader;
while (leader === undefined) {
  leader = hosts.find((host) => host.status().role === 'leader');
  await new Promise((resolve) => setTimeout(resolve, 20));
}

const payload = 'x'.repeat(Math.max(0, Number(values['entry-size']) - 40));
const latenciesMs = new Float64Array(total);
let next = 0;
const started = performance.now();
await Promise.all(Array.from({ length: concurrency }, async () => {
  while (next < total) {
    const i = next++;
    const data = Buffer.from(JSON.stringify({ op: 'put', key: `k${i % 1000}`, value: payload }));
    const sent = performance.now();
    await leader.propose(data);
    latenciesMs[i] = performance.now() - sent;
  }
}));
const seconds = (performance.now() - started) / 1000;
latenciesMs.sort();
const at = (p) => Number(latenciesMs[Math.min(total - 1, Math.floor((p / 100) * total))].toFixed(3));
const result = { entries: total, entry_bytes: Number(values['entry-size']), concurrency, fsync: sync, seconds: Number(seconds.toFixed(3)), commits_per_s: Math.round(total / seconds), p50_ms: at(50), p99_ms: at(99), p999_ms: at(99.9) };
await Promise.all(hosts.map((host) => host.stop()));
rmSync(dir, { recursive: true, force: true });
if (values.json) console.log(JSON.stringify(result));
else console.log(`raft: ${total} entries of ${result.entry_bytes} B, ${concurrency} in flight, fsync ${sync ? 'on' : 'off'}: ${result.commits_per_s} commits/s; latency p50 ${result.p50_ms} ms, p99 ${result.p99_ms} ms, p99.9 ${result.p999_ms} ms`);
