#!/usr/bin/env node
// What does a partition move cost clients, and does the throttle hold it to its rate? A local
// 4-node cluster (testkit's LocalCluster, real node processes, loopback only) in a temp dir: two
// single-partition topics filled with data on three of the nodes, and an acks=all producer writing
// at a fixed moderate rate to a third topic spread over every node, timing each record's ack. Three
// phases: A without a move, B while one filled partition moves to the node that does not hold it
// with the replication throttle set (as `runnel partitions reassign --execute --throttle` sets it:
// the cluster-level leader and follower rates), C while the other moves unthrottled, D without a
// move again. For each
// phase: the ack p50/p99 and, for B and C, the move's rate (the new replica's bytes over the time
// from its first byte to the move's completion) against the throttle.
import { readdirSync, statSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseCommandLine } from '../commandLine.mjs';
import { finishCluster, importBuilt, integerOptions, killOnInterrupt, percentile } from './benchSupport.mjs';
import { SendWindow, sendAtRate } from './sendWindow.mjs';

const HELP = `npm run bench:reassign -- [options]

Starts a local 4-node cluster in a temp dir (every node a broker and a controller voter), fills two
single-partition topics (replication factor 3) with --size-mb each, and runs an acks=all producer at
--rate records/s against a third topic (--load-partitions partitions, replication factor 3, spread
over every node). Phase A: --baseline-s seconds without a move. Phase B: one filled partition moves
(its leader kept, one follower swapped for the node that does not hold it) with the cluster-level
leader/follower.replication.throttled.rate set to --throttle. Phase C: the other moves with no
throttle. Phase D: --baseline-s seconds without a move again (how much A and D differ is the noise
of the machine). Prints a table: ack p50/p99 per phase, each move's rate against the throttle.

The quota's first burst is (--window-num − 1) × --window-size-s × --throttle bytes (Kafka's Rate):
with Kafka's 11 windows and 4 MiB/s that is 40 MiB, so a partition much smaller than that moves
faster than the throttle end to end.

It builds nothing itself (\`npm run bench:reassign\` builds first).

Options:
  --size-mb N             MiB in each partition to move (default 96)
  --throttle N            bytes per second for phase B (default 4194304)
  --rate N                records per second of the measured producer (default 500)
  --record-size N         bytes per record value (default 1024)
  --load-partitions N     partitions of the producer's topic (default 8)
  --baseline-s N          seconds of phase A (default 20)
  --window-num N          replication.quota.window.num (default 11, Kafka's)
  --window-size-s N       replication.quota.window.size.seconds (default 1)
  --repo DIR              the repository whose built packages to run (default this one)
  --dir PATH              data directory (default a new temp dir, removed afterwards)
  --keep                  keep the data directory
  --json                  print the figures as one JSON line on stdout as well
  -h, --help              this text`;

const values = parseCommandLine('bench:reassign', HELP, {
  'size-mb': { type: 'string', default: '96' },
  throttle: { type: 'string', default: '4194304' },
  rate: { type: 'string', default: '500' },
  'record-size': { type: 'string', default: '1024' },
  'load-partitions': { type: 'string', default: '8' },
  'baseline-s': { type: 'string', default: '20' },
  'window-num': { type: 'string', default: '11' },
  'window-size-s': { type: 'string', default: '1' },
  repo: { type: 'string' },
  dir: { type: 'string' },
  keep: { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
});

const number = integerOptions('bench:reassign', values);

const sizeBytes = number('size-mb') * 1024 * 1024;
const throttle = number('throttle');
const rate = number('rate');
const recordSize = number('record-size');
const loadPartitions = number('load-partitions');
const baselineS = number('baseline-s');
const windowNum = number('window-num', 2);
const windowSizeS = number('window-size-s');
const NODES = 4;
const LOAD_TOPIC = 'bench-load';
const MOVED_TOPICS = { throttled: 'bench-move-throttled', unthrottled: 'bench-move-unthrottled' };
const FILL_RECORD_BYTES = 16 * 1024;
const MOVE_TIMEOUT_MS = 30 * 60_000;
const DRAIN_TIMEOUT_MS = 60_000;
const SAMPLE_INTERVAL_MS = 100;

const { repo, modules } = await importBuilt('bench:reassign', values.repo, ['testkit', 'client']);
const { LocalCluster } = modules.testkit;
const { Admin, Producer } = modules.client;

const say = (line) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

// ---- the measured load ----------------------------------------------------------------------

/** Every ack as { atMs (when sent), latencyMs }. */
const acks = [];
let failed = 0;

async function produceLoad(bootstrap, stopped) {
  const producer = new Producer({ bootstrap, clientId: 'bench-reassign', acks: 'all', lingerMs: 1 });
  const value = randomBytes(recordSize);
  await sendAtRate(producer, {
    topic: LOAD_TOPIC,
    value,
    rate,
    startMs: Date.now(),
    inFlightMax: 10_000,
    drainTimeoutMs: DRAIN_TIMEOUT_MS,
    more: () => !stopped(),
    acked: (atMs, latencyMs) => acks.push({ atMs, latencyMs }),
    failed: () => failed++,
  });
  await producer.close();
}

function latencies(fromMs, toMs) {
  const sorted = acks.filter((ack) => ack.atMs >= fromMs && ack.atMs < toMs).map((ack) => ack.latencyMs).sort((a, b) => a - b);
  const round = (value) => (value === null ? null : Number(value.toFixed(1)));
  return { acks: sorted.length, p50Ms: round(percentile(sorted, 0.5)), p99Ms: round(percentile(sorted, 0.99)), maxMs: round(sorted.at(-1) ?? null) };
}

// ---- filling and moving ---------------------------------------------------------------------

async function fill(bootstrap, topic) {
  const producer = new Producer({ bootstrap, clientId: 'bench-reassign-fill', acks: 'all', lingerMs: 5 });
  const value = randomBytes(FILL_RECORD_BYTES);
  const window = new SendWindow(256);
  let failure = null;
  for (let written = 0; written < sizeBytes && failure === null; written += FILL_RECORD_BYTES) {
    await window.acquire();
    producer.send({ topic, partition: 0, value }).then(
      () => window.release(),
      (error) => {
        failure ??= error;
        window.release();
      },
    );
  }
  await producer.flush();
  await window.drain(DRAIN_TIMEOUT_MS);
  await producer.close();
  if (failure !== null) throw failure;
}

function logSize(dataDir, topic) {
  try {
    const dir = join(dataDir, 'logs', `${topic}-0`);
    return readdirSync(dir)
      .filter((name) => name.endsWith('.log'))
      .reduce((sum, name) => sum + statSync(join(dir, name)).size, 0);
  } catch {
    return 0;
  }
}

function slope(points) {
  if (points.length < 10) return null;
  const meanX = points.reduce((sum, point) => sum + point.seconds, 0) / points.length;
  const meanY = points.reduce((sum, point) => sum + point.bytes, 0) / points.length;
  const covariance = points.reduce((sum, point) => sum + (point.seconds - meanX) * (point.bytes - meanY), 0);
  const variance = points.reduce((sum, point) => sum + (point.seconds - meanX) ** 2, 0);
  return covariance / variance;
}

/** Moves `topic`-0 off one follower onto the node that does not hold it; resolves with the move's figures. */
async function move(admin, cluster, topic) {
  const partition = (await admin.describeTopics([topic]))[0].partitions[0];
  const target = cluster.nodes.map((node) => node.nodeId).find((id) => !partition.replicas.includes(id));
  const replicas = [partition.leader, ...partition.replicas.filter((id) => id !== partition.leader).slice(0, 1), target];
  const dataDir = cluster.nodes.find((node) => node.nodeId === target).dataDir;
  const samples = [];
  const sampler = setInterval(() => samples.push({ atMs: Date.now(), bytes: logSize(dataDir, topic) }), SAMPLE_INTERVAL_MS);
  const startMs = Date.now();
  const [outcome] = await admin.alterPartitionReassignments([{ topic, partition: 0, replicas }]);
  if (outcome.error !== null) throw outcome.error;
  let doneMs;
  for (;;) {
    const moving = await admin.listPartitionReassignments([{ topic, partition: 0 }]);
    if (moving.length === 0) {
      doneMs = Date.now();
      break;
    }
    if (Date.now() - startMs > MOVE_TIMEOUT_MS) throw new Error(`${topic}-0 did not finish moving in ${MOVE_TIMEOUT_MS / 60_000} min`);
    await sleep(50);
  }
  clearInterval(sampler);
  const bytes = logSize(dataDir, topic);
  const firstCopied = samples.findIndex((sample) => sample.bytes > 0);
  const copyStartMs = firstCopied > 0 ? samples[firstCopied - 1].atMs : startMs;
  const steady = samples
    .filter((sample) => sample.atMs >= copyStartMs + windowNum * windowSizeS * 1000 && sample.atMs <= doneMs)
    .map((sample) => ({ seconds: (sample.atMs - copyStartMs) / 1000, bytes: sample.bytes }));
  return {
    from: partition.replicas,
    to: replicas,
    bytes,
    startMs,
    doneMs,
    seconds: Number(((doneMs - copyStartMs) / 1000).toFixed(2)),
    bytesPerSecond: Math.round(bytes / ((doneMs - copyStartMs) / 1000)),
    steadyBytesPerSecond: slope(steady) === null ? null : Math.round(slope(steady)),
  };
}

async function setThrottle(admin, bytesPerSecond) {
  const keys = ['leader.replication.throttled.rate', 'follower.replication.throttled.rate'];
  const ops = keys.map((key) => (bytesPerSecond === null ? { key, op: 'delete' } : { key, op: 'set', value: String(bytesPerSecond) }));
  const [outcome] = await admin.incrementalAlterConfigs([{ resource: { type: 'cluster', name: '' }, ops }]);
  if (outcome.error !== null) throw outcome.error;
}

// ---- report ---------------------------------------------------------------------------------

function report(phases) {
  const kib = (value) => (value === null || value === undefined ? '-' : `${Math.round(value / 1024)}`);
  const cell = (value, width) => String(value ?? '-').padStart(width);
  const lines = [`phase                 seconds   acks   p50ms   p99ms   maxms   move KiB/s  (after windows)  throttle KiB/s  ratio`];
  for (const phase of phases) {
    const ratio = phase.move && phase.throttle ? (phase.move.bytesPerSecond / phase.throttle).toFixed(3) : '-';
    lines.push(
      `${phase.name.padEnd(20)} ${cell(phase.seconds, 8)} ${cell(phase.latency.acks, 6)} ${cell(phase.latency.p50Ms, 7)} ${cell(phase.latency.p99Ms, 7)} ${cell(phase.latency.maxMs, 7)} ` +
        `${cell(kib(phase.move?.bytesPerSecond), 12)} ${cell(kib(phase.move?.steadyBytesPerSecond), 16)} ${cell(phase.throttle === null ? 'none' : kib(phase.throttle), 15)} ${cell(ratio, 6)}`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  for (const phase of phases.filter((candidate) => candidate.move)) {
    process.stdout.write(`${phase.name}: ${phase.move.bytes} bytes [${phase.move.from}] -> [${phase.move.to}] in ${phase.move.seconds} s\n`);
  }
  process.stdout.write(`load: ${rate} records/s of ${recordSize} B, acks=all, to ${loadPartitions} partitions; acknowledged ${acks.length}, failed ${failed}; quota ${windowNum} windows of ${windowSizeS} s\n`);
  if (values.json) process.stdout.write(`${JSON.stringify({ rate, recordSize, loadPartitions, sizeBytes, throttle, windowNum, windowSizeS, failed, phases })}\n`);
}

// ---- run ------------------------------------------------------------------------------------

const dir = values.dir ?? (await mkdtemp(join(tmpdir(), 'runnel-bench-reassign-')));
say(`bench:reassign: ${NODES} nodes of ${repo} in ${dir}; ${values['size-mb']} MiB per moved partition; throttle ${throttle} B/s; load ${rate} records/s of ${recordSize} B`);
let cluster;
killOnInterrupt('bench:reassign', dir, () => cluster);

let ok = false;
try {
  cluster = await LocalCluster.start({
    nodes: NODES,
    dataDir: dir,
    config: {
      'auto.leader.rebalance.enable': 'false',
      'replication.quota.window.num': String(windowNum),
      'replication.quota.window.size.seconds': String(windowSizeS),
    },
  });
  const bootstrap = cluster.bootstrap;
  const admin = new Admin({ bootstrap, clientId: 'bench-reassign' });
  await admin.createTopics([
    { name: LOAD_TOPIC, partitions: loadPartitions, replicationFactor: 3 },
    { name: MOVED_TOPICS.throttled, partitions: 1, replicationFactor: 3 },
    { name: MOVED_TOPICS.unthrottled, partitions: 1, replicationFactor: 3 },
  ]);
  await sleep(2000); // leaders elected, followers fetching
  say('filling the partitions to move');
  for (const topic of Object.values(MOVED_TOPICS)) await fill(bootstrap, topic);
  // Followers caught up, and the fill's dirty pages written back, so that phase A is not measured
  // against the fill's aftermath.
  await sleep(15_000);

  let stopped = false;
  const loading = produceLoad(bootstrap, () => stopped);
  const phases = [];
  try {
    await sleep(3000); // the producer's connections warm
    const baselineStartMs = Date.now();
    say(`phase A: ${baselineS} s without a move`);
    await sleep(baselineS * 1000);
    phases.push({ name: 'A no move', seconds: baselineS, latency: latencies(baselineStartMs, Date.now()), move: null, throttle: null });

    say(`phase B: a move throttled to ${throttle} B/s`);
    await setThrottle(admin, throttle);
    const throttled = await move(admin, cluster, MOVED_TOPICS.throttled);
    phases.push({ name: 'B throttled move', seconds: throttled.seconds, latency: latencies(throttled.startMs, throttled.doneMs), move: throttled, throttle });
    await setThrottle(admin, null);
    await sleep(3000);

    say('phase C: a move without a throttle');
    const unthrottled = await move(admin, cluster, MOVED_TOPICS.unthrottled);
    phases.push({ name: 'C unthrottled move', seconds: unthrottled.seconds, latency: latencies(unthrottled.startMs, unthrottled.doneMs), move: unthrottled, throttle: null });

    say(`phase D: ${baselineS} s without a move again`);
    const againStartMs = Date.now();
    await sleep(baselineS * 1000);
    phases.push({ name: 'D no move (again)', seconds: baselineS, latency: latencies(againStartMs, Date.now()), move: null, throttle: null });
  } finally {
    stopped = true;
    await loading;
    await admin.close();
  }
  report(phases);
  ok = true;
} catch (error) {
  say(`bench:reassign: ${error.stack ?? error.message}`);
} finally {
  await finishCluster('bench:reassign', cluster, dir, { ok, keep: values.keep, dirGiven: values.dir !== undefined });
}
process.exit(ok ? 0 : 1);
