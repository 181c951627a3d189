#!/usr/bin/env node
// Does a large retention pass stall the node? A local 3-node cluster (testkit's LocalCluster, real
// node processes, loopback only) in a temp dir, a steady acks=all produce load at a bounded rate
// with a consumer alongside, and retention held back by log.retention.check.interval.ms so that
// its first pass has hundreds of segments to delete on every node. Each node's /metrics is scraped
// every second; the report gives, per window, the ack p50/p99/p99.9, every node's largest
// event-loop lag and the segments retention deleted, and then the acceptance figures: the largest
// event-loop lag during each node's pass, and the ack p99 of the minute around the pass against
// the minute before.
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseCommandLine } from '../commandLine.mjs';
import { percentile } from './benchSupport.mjs';
import { sendAtRate } from './sendWindow.mjs';
import { pathToFileURL } from 'node:url';

const HELP = `npm run bench:retention -- [options]

Starts a local 3-node cluster in a temp dir (every node a broker and a controller voter; heartbeats
every 1 s, fenced after 4 s, as \`npm start\`), creates a topic with small segments and
retention.bytes, produces at a steady rate with acks=all while a consumer reads along, and lets the
first retention pass (log.retention.check.interval.ms after the nodes start) delete the backlog:
about (rate x record size x seconds until the pass - partitions x retention.bytes) / segment.bytes
segments on every node. Prints one line per window, then the figures.

It builds nothing itself (\`npm run bench:retention\` builds first).

Options:
  --check-interval-ms N  log.retention.check.interval.ms (default 150000): when the first pass runs
  --duration-s N         how long the load runs (default: until 50 s after the first pass)
  --rate N               records per second (default 5000)
  --record-size N        bytes per record value (default 1024)
  --partitions N         partitions of the topic (default 6; replication factor 3)
  --segment-bytes N      the topic's segment.bytes (default 1000000)
  --retention-bytes N    the topic's retention.bytes (default 20000000)
  --window-s N           seconds per report line (default 10)
  --repo DIR             the repository whose built packages to run (default this one; a worktree
                         of another commit, built, measures that commit)
  --dir PATH             data directory (default a new temp dir, removed afterwards)
  --keep                 keep the data directory
  --json                 print the figures as one JSON line on stdout as well
  -h, --help             this text`;

const values = parseCommandLine('bench:retention', HELP, {
  'check-interval-ms': { type: 'string', default: '150000' },
  'duration-s': { type: 'string' },
  rate: { type: 'string', default: '5000' },
  'record-size': { type: 'string', default: '1024' },
  partitions: { type: 'string', default: '6' },
  'segment-bytes': { type: 'string', default: '1000000' },
  'retention-bytes': { type: 'string', default: '20000000' },
  'window-s': { type: 'string', default: '10' },
  repo: { type: 'string' },
  dir: { type: 'string' },
  keep: { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
});

function number(name, min = 1) {
  const raw = values[name];
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    process.stderr.write(`bench:retention: --${name} must be an integer >= ${min}, got ${raw}\n`);
    process.exit(2);
  }
  return value;
}

const checkIntervalMs = number('check-interval-ms', 1000);
const durationS = values['duration-s'] === undefined ? Math.ceil(checkIntervalMs / 1000) + 50 : number('duration-s');
const rate = number('rate');
const recordSize = number('record-size');
const partitions = number('partitions');
const segmentBytes = number('segment-bytes', 128);
const retentionBytes = number('retention-bytes', 0);
const windowS = number('window-s');
const NODES = 3;
const SCRAPE_INTERVAL_MS = 1000;
const SCRAPE_TIMEOUT_MS = 5000;
/** Unacknowledged sends allowed before the load waits (about the producer's 32 MiB buffer). */
const IN_FLIGHT_MAX = Math.max(1000, Math.floor((32 * 1024 * 1024) / recordSize));
/** After the load: how long acknowledgements may take to arrive. */
const DRAIN_TIMEOUT_MS = 60_000;
const LAG_METRIC = 'runnel_process_nodejs_eventloop_lag_max_seconds';
const DELETED_METRIC = 'runnel_log_segments_deleted_total';
const TOPIC = 'retention-stall';

const repo = resolve(values.repo ?? new URL('../..', import.meta.url).pathname);
const distOf = (name) => join(repo, 'packages', name, 'dist', 'index.js');
for (const name of ['testkit', 'client']) {
  if (!existsSync(distOf(name))) {
    process.stderr.write(`bench:retention: ${distOf(name)} is missing: build ${repo} first (npm run build)\n`);
    process.exit(2);
  }
}
const { LocalCluster } = await import(pathToFileURL(distOf('testkit')).href);
const { Admin, Consumer, Producer } = await import(pathToFileURL(distOf('client')).href);

const say = (line) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

// ---- measurements ---------------------------------------------------------------------------

/** Ack latencies (ms) by the second the record was sent, counted from the load's start. */
const latenciesBySecond = [];
let acknowledged = 0;
let errors = 0;
let consumed = 0;
/** Per node: [{ atMs, lagMaxS, deletedTotal }] from each scrape (lag max since the previous scrape). */
const scrapes = new Map();
/** Per node: retention log lines, deduplicated, as { atMs, partition, segments }. */
const passes = new Map();
/** Per node: the longest synchronous retention step the storage logged ('deleted segments by retention', stepMs). */
const stepMsMax = new Map();

function latencySummary(fromS, toS) {
  const all = [];
  for (let second = Math.max(0, fromS); second < toS && second < latenciesBySecond.length; second++) {
    for (const value of latenciesBySecond[second] ?? []) all.push(value);
  }
  all.sort((a, b) => a - b);
  const round = (value) => (value === null ? null : Number(value.toFixed(1)));
  return { acks: all.length, p50Ms: round(percentile(all, 0.5)), p99Ms: round(percentile(all, 0.99)), p999Ms: round(percentile(all, 0.999)) };
}

async function scrape(node) {
  const response = await fetch(`http://127.0.0.1:${node.httpPort}/metrics`, { signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS) });
  const text = await response.text();
  const valueOf = (name) => {
    const match = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, 'm').exec(text);
    return match === null ? null : Number(match[1]);
  };
  return { lagMaxS: valueOf(LAG_METRIC), deletedTotal: valueOf(DELETED_METRIC) };
}

/** Reads the nodes' retention log lines ('retention deleted segments', written by every version). */
function collectPassLines(cluster) {
  for (const node of cluster.nodes) {
    const seen = passes.get(node.nodeId) ?? new Map();
    passes.set(node.nodeId, seen);
    for (const line of node.logs().split('\n')) {
      const step = /"stepMs":([0-9.]+).*"msg":"deleted segments by retention"/.exec(line);
      if (step !== null) stepMsMax.set(node.nodeId, Math.max(stepMsMax.get(node.nodeId) ?? 0, Number(step[1])));
      if (!line.includes('"msg":"retention deleted segments"') || seen.has(line)) continue;
      try {
        const entry = JSON.parse(line);
        seen.set(line, { atMs: entry.time, partition: entry.partition, segments: entry.segments });
      } catch {
        // a line cut by the output buffer's start
      }
    }
  }
}

// ---- load -----------------------------------------------------------------------------------

async function produceLoad(bootstrap, loadStartMs, stopAtMs) {
  const producer = new Producer({ bootstrap, clientId: 'bench-retention', acks: 'all', lingerMs: 1 });
  const value = randomBytes(recordSize);
  const total = Math.floor(rate * durationS);
  await sendAtRate(producer, {
    topic: TOPIC,
    value,
    rate,
    startMs: loadStartMs,
    inFlightMax: IN_FLIGHT_MAX,
    drainTimeoutMs: DRAIN_TIMEOUT_MS,
    more: (i) => i < total && Date.now() < stopAtMs,
    acked: (sentAtMs, latencyMs) => {
      (latenciesBySecond[Math.floor((sentAtMs - loadStartMs) / 1000)] ??= []).push(latencyMs);
      acknowledged++;
    },
    failed: () => errors++,
  });
  await producer.close();
}

async function consumeAlong(bootstrap, stopped) {
  const consumer = new Consumer({ bootstrap, clientId: 'bench-retention-consumer', autoOffsetReset: 'earliest', maxPollRecords: 20_000 });
  try {
    const assigned = (await consumer.partitionsFor(TOPIC)).map((partition) => ({ topic: TOPIC, partition }));
    consumer.assign(assigned);
    await consumer.seekToBeginning(assigned);
    while (!stopped()) consumed += (await consumer.poll(500)).length;
  } finally {
    await consumer.close();
  }
}

async function scrapeAlong(cluster, stopped) {
  while (!stopped()) {
    const started = Date.now();
    await Promise.all(
      cluster.nodes.map(async (node) => {
        try {
          const sample = await scrape(node);
          const list = scrapes.get(node.nodeId) ?? [];
          scrapes.set(node.nodeId, list);
          list.push({ atMs: Date.now(), ...sample });
        } catch (error) {
          say(`node ${node.nodeId}: /metrics did not answer in ${SCRAPE_TIMEOUT_MS} ms (${error.message})`);
        }
      }),
    );
    collectPassLines(cluster);
    await sleep(Math.max(0, SCRAPE_INTERVAL_MS - (Date.now() - started)));
  }
}

// ---- report ---------------------------------------------------------------------------------

/** The largest lag a node reported for scrape intervals that overlap [fromMs, toMs]. */
function lagMaxMs(nodeId, fromMs, toMs) {
  let max = null;
  const list = scrapes.get(nodeId) ?? [];
  for (let i = 0; i < list.length; i++) {
    const intervalStart = i === 0 ? list[i].atMs - SCRAPE_INTERVAL_MS : list[i - 1].atMs;
    if (list[i].atMs < fromMs || intervalStart > toMs || list[i].lagMaxS === null) continue;
    max = Math.max(max ?? 0, list[i].lagMaxS * 1000);
  }
  return max === null ? null : Number(max.toFixed(1));
}

function segmentsDeleted(nodeId, fromMs, toMs) {
  let total = 0;
  for (const { atMs, segments } of passes.get(nodeId)?.values() ?? []) if (atMs >= fromMs && atMs < toMs) total += segments;
  return total;
}

function report(loadStartMs, cluster) {
  const ids = cluster.nodes.map((node) => node.nodeId);
  const lines = [];
  lines.push(`window(s)   acks    p50ms   p99ms  p999ms  ${ids.map((id) => `lag${id}ms`.padStart(8)).join(' ')}  ${ids.map((id) => `del${id}`.padStart(5)).join(' ')}`);
  for (let from = 0; from < durationS; from += windowS) {
    const summary = latencySummary(from, from + windowS);
    const fromMs = loadStartMs + from * 1000;
    const toMs = fromMs + windowS * 1000;
    const cell = (value, width) => String(value ?? '-').padStart(width);
    lines.push(
      `${`${from}-${from + windowS}`.padEnd(10)} ${cell(summary.acks, 6)} ${cell(summary.p50Ms, 8)} ${cell(summary.p99Ms, 7)} ${cell(summary.p999Ms, 7)}  ` +
        `${ids.map((id) => cell(lagMaxMs(id, fromMs, toMs), 8)).join(' ')}  ${ids.map((id) => cell(segmentsDeleted(id, fromMs, toMs), 5)).join(' ')}`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);

  const figures = { rate, recordSize, partitions, segmentBytes, retentionBytes, checkIntervalMs, durationS, acknowledged, errors, consumed, nodes: [] };
  for (const id of ids) {
    const entries = [...(passes.get(id)?.values() ?? [])].sort((a, b) => a.atMs - b.atMs);
    if (entries.length === 0) {
      figures.nodes.push({ node: id, segmentsDeleted: 0 });
      continue;
    }
    // The first pass: the log lines within one check interval of the first one.
    const first = entries.filter((entry) => entry.atMs < entries[0].atMs + checkIntervalMs / 2);
    const passStartMs = first[0].atMs;
    const passEndMs = first[first.length - 1].atMs;
    const metricTotal = (scrapes.get(id) ?? []).reduce((max, sample) => Math.max(max, sample.deletedTotal ?? 0), 0);
    // The pass ran from at most one partition's work before the first line to the last line; one
    // scrape interval each side covers the lag sample that saw it.
    const lagDuringPassMs = lagMaxMs(id, passStartMs - SCRAPE_INTERVAL_MS, passEndMs + 2 * SCRAPE_INTERVAL_MS);
    const passSecond = Math.floor((passStartMs - loadStartMs) / 1000);
    const minuteOfPass = latencySummary(passSecond - 30, passSecond + 30);
    const minuteBefore = latencySummary(passSecond - 90, passSecond - 30);
    // Every lag sample from 5 s before the pass to 10 s after it: the stall, or its absence, in context.
    const lagAroundPassMs = (scrapes.get(id) ?? [])
      .filter((sample) => sample.atMs >= passStartMs - 5000 && sample.atMs <= passEndMs + 10_000 && sample.lagMaxS !== null)
      .map((sample) => Math.round(sample.lagMaxS * 1000));
    figures.nodes.push({
      node: id,
      lagAroundPassMs,
      segmentsDeleted: first.reduce((sum, entry) => sum + entry.segments, 0),
      segmentsDeletedMetric: metricTotal === 0 ? null : metricTotal,
      passAtS: Number(((passStartMs - loadStartMs) / 1000).toFixed(1)),
      passLogSpanMs: passEndMs - passStartMs,
      longestStepMs: stepMsMax.get(id) ?? null,
      eventLoopLagMaxDuringPassMs: lagDuringPassMs,
      ackP99MinuteOfPassMs: minuteOfPass.p99Ms,
      ackP99MinuteBeforeMs: minuteBefore.p99Ms,
      ackP999MinuteOfPassMs: minuteOfPass.p999Ms,
      ackP999MinuteBeforeMs: minuteBefore.p999Ms,
    });
  }
  for (const node of figures.nodes) {
    if (node.segmentsDeleted === 0) {
      process.stdout.write(`node ${node.node}: no retention pass seen\n`);
      continue;
    }
    const ratio = node.ackP99MinuteBeforeMs ? (node.ackP99MinuteOfPassMs / node.ackP99MinuteBeforeMs).toFixed(2) : '-';
    process.stdout.write(
      `node ${node.node}: first pass at ${node.passAtS} s deleted ${node.segmentsDeleted} segments (log lines over ${node.passLogSpanMs} ms); ` +
        `event-loop lag max during it ${node.eventLoopLagMaxDuringPassMs} ms; longest synchronous step ${node.longestStepMs ?? '-'} ms; ack p99 minute of the pass ${node.ackP99MinuteOfPassMs} ms vs ` +
        `${node.ackP99MinuteBeforeMs} ms the minute before (x${ratio}); p99.9 ${node.ackP999MinuteOfPassMs} vs ${node.ackP999MinuteBeforeMs} ms\n` +
        `  event-loop lag max per 1 s scrape from 5 s before to 10 s after the pass (ms): ${node.lagAroundPassMs.join(' ')}\n`,
    );
  }
  process.stdout.write(`records acknowledged ${acknowledged}, failed ${errors}, consumed ${consumed}\n`);
  if (values.json) process.stdout.write(`${JSON.stringify(figures)}\n`);
}

// ---- run ------------------------------------------------------------------------------------

const dir = values.dir ?? (await mkdtemp(join(tmpdir(), 'runnel-bench-retention-')));
say(`bench:retention: ${NODES} nodes of ${repo} in ${dir}; ${rate} records/s of ${recordSize} B for ${durationS} s; first retention pass ${checkIntervalMs / 1000} s after start`);
let cluster;
let interrupted = false;
process.on('SIGINT', async () => {
  if (interrupted) return;
  interrupted = true;
  say(`bench:retention: interrupted; data kept in ${dir}`);
  await cluster?.kill().catch(() => undefined);
  process.exit(130);
});

let ok = false;
try {
  cluster = await LocalCluster.start({
    nodes: NODES,
    dataDir: dir,
    config: {
      'broker.heartbeat.interval.ms': '1000',
      'broker.session.timeout.ms': '4000',
      'log.retention.check.interval.ms': String(checkIntervalMs),
    },
  });
  const bootstrap = cluster.bootstrap;
  const admin = new Admin({ bootstrap, clientId: 'bench-retention' });
  try {
    await admin.createTopics([{ name: TOPIC, partitions, replicationFactor: NODES, configs: { 'segment.bytes': String(segmentBytes), 'retention.bytes': String(retentionBytes) } }]);
  } finally {
    await admin.close();
  }
  await sleep(2000); // leaders elected, followers fetching
  const loadStartMs = Date.now();
  const stopAtMs = loadStartMs + durationS * 1000;
  let stopped = false;
  const scraping = scrapeAlong(cluster, () => stopped);
  const consuming = consumeAlong(bootstrap, () => stopped);
  const progress = setInterval(() => {
    const second = Math.floor((Date.now() - loadStartMs) / 1000);
    const recent = latencySummary(second - windowS, second);
    const deleted = cluster.nodes.map((node) => segmentsDeleted(node.nodeId, 0, Infinity)).join('/');
    say(`t=${second}s acked ${acknowledged} failed ${errors} consumed ${consumed}; last ${windowS}s p99 ${recent.p99Ms} ms; segments deleted ${deleted}`);
  }, 30_000);
  try {
    await produceLoad(bootstrap, loadStartMs, stopAtMs + DRAIN_TIMEOUT_MS);
  } finally {
    stopped = true;
    clearInterval(progress);
    await Promise.all([scraping, consuming.catch((error) => say(`consumer: ${error.message}`))]);
  }
  collectPassLines(cluster);
  report(loadStartMs, cluster);
  ok = true;
} catch (error) {
  say(`bench:retention: ${error.stack ?? error.message}`);
} finally {
  if (cluster !== undefined) {
    for (const node of cluster.nodes) await writeFile(join(node.dataDir, 'process-output.log'), node.logs()).catch(() => undefined);
    await cluster.stop().catch(() => cluster.kill());
  }
  if (ok && !values.keep && values.dir === undefined) await rm(dir, { recursive: true, force: true });
  else say(`bench:retention: data and node output kept in ${dir}`);
}
process.exit(ok ? 0 : 1);
