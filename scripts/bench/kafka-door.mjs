#!/usr/bin/env node
// What the Kafka door costs against the gRPC door: the same records produced and consumed on one
// local 3-node cluster (testkit's LocalCluster, loopback only, the timings of `npm start`) through
// the PLAINTEXT listener by a librdkafka client (kcat, fed from a file) and by @platformatic/kafka,
// and through gRPC by `runnel bench`. Every run gets a fresh topic, so no client reads another's
// records or finds its own in the page cache of a previous run. Beside the throughput it measures
// what each run cost the brokers in CPU time, which separates the door's cost from the client's speed.
import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { once } from 'node:events';
import { parseCommandLine } from '../commandLine.mjs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HELP = `npm run bench:kafka -- [options]

Starts a local 3-node cluster in a temp dir (every node a broker and a controller voter, with the
timings of \`npm start\`) and, for each record size and each of --rounds rounds, on a fresh topic of
--partitions partitions, replication factor 3, acks=all:

  grpc          runnel bench produce, then runnel bench consume (the TypeScript client over gRPC)
  kcat          kcat -P -l FILE -X acks=all (librdkafka 2.0.2's defaults otherwise), then
                kcat -C -o beginning -e -X queued.min.messages=1000000 (no group), counting the
                lines it prints. librdkafka stops fetching once queued.min.messages (100,000)
                records wait in kcat's one queue, and looks again about once a second: with the
                default a consume measures that pause, whatever the broker.
  platformatic  @platformatic/kafka: send() calls of --send-batch records (each send is one Produce
                request per broker), as many at a time as keep runnel bench's window of
                unacknowledged records (32 MiB of them, at most 100,000) unless --in-flight says,
                acks=all, no compression; then a consumer group of one from the earliest offset

The clients take turns (the order turns round each round) and every topic is deleted after its
run. Each figure is records and MB (values only) over the wall time of the whole produce or consume,
from the client's start to its last acknowledgement or record: connection, metadata and (for
platformatic's consumer) the group join are inside it. The table gives each client's median run,
its ratio to gRPC's median, and what it cost: the three nodes' CPU time per MB (the door's cost,
whatever the client's speed: above the CPU the idle nodes use, measured for 5 s before the first
run) and the client's CPU time as a share of one core (near 100%: the client is the limit). CPU times come from /proc (Linux; '-' elsewhere); a child's is sampled every
100 ms. Progress goes to stderr, the table to stdout. It builds nothing itself (\`npm run bench:kafka\`
builds first); kcat is skipped with a line when it is not installed.

Options:
  --records N       records per run (default 1000000)
  --sizes LIST      record sizes in bytes, comma-separated (default 100,1024)
  --rounds N        runs of every client per size (default 3)
  --partitions N    partitions of each topic (default 6)
  --clients LIST    any of grpc,kcat,platformatic (default all three)
  --send-batch N    platformatic: records per send() (default 6000: 1,000 per partition)
  --in-flight N     platformatic: send() calls not yet acknowledged (default: runnel bench's window)
  --repo DIR        the repository whose built packages to run (default this one)
  --dir PATH        data directory (default a new temp dir, removed afterwards)
  --keep            keep the data directory (node output is written there)
  --json            print every run's figures as one JSON line on stdout as well
  -h, --help        this text`;

const values = parseCommandLine('bench:kafka', HELP, {
  records: { type: 'string', default: '1000000' },
  sizes: { type: 'string', default: '100,1024' },
  rounds: { type: 'string', default: '3' },
  partitions: { type: 'string', default: '6' },
  clients: { type: 'string', default: 'grpc,kcat,platformatic' },
  'send-batch': { type: 'string', default: '6000' },
  'in-flight': { type: 'string' },
  repo: { type: 'string' },
  dir: { type: 'string' },
  keep: { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
});

function integer(text, name, min) {
  const parsed = Number(text);
  if (Number.isInteger(parsed) && parsed >= min) return parsed;
  process.stderr.write(`bench:kafka: ${name} wants integers of at least ${min}, not ${text}\n`);
  process.exit(2);
}

const CLIENTS = ['grpc', 'kcat', 'platformatic'];
const recordCount = integer(values.records, '--records', 1);
const sizes = values.sizes.split(',').map((size) => integer(size, '--sizes', 1));
const rounds = integer(values.rounds, '--rounds', 1);
const partitions = integer(values.partitions, '--partitions', 1);
const sendBatch = integer(values['send-batch'], '--send-batch', 1);
const inFlightOption = values['in-flight'] === undefined ? undefined : integer(values['in-flight'], '--in-flight', 1);
/**
 * platformatic's send() calls in flight for `size`-byte records: as given, or as many as hold the
 * window of unacknowledged records `runnel bench produce` keeps (its inFlightMax), so that both
 * clients give the brokers the same amount of work to overlap.
 */
const sendsInFlight = (size) => inFlightOption ?? Math.max(1, Math.ceil(Math.min(100_000, Math.max(1_000, Math.floor((32 * 1024 * 1024) / size))) / sendBatch));
const clients = values.clients.split(',');
for (const client of clients) {
  if (!CLIENTS.includes(client)) {
    process.stderr.write(`bench:kafka: --clients takes ${CLIENTS.join(', ')}, not ${client}\n`);
    process.exit(2);
  }
}
const NODES = 3;
/** One produce or consume run's limit: generous for a loaded 2-core machine (1,000 records/s), but bounded. */
const RUN_TIMEOUT_MS = 60_000 + recordCount;

const repo = resolve(values.repo ?? fileURLToPath(new URL('../..', import.meta.url)));
const distOf = (name) => join(repo, 'packages', name, 'dist', 'index.js');
for (const name of ['testkit', 'client', 'cli']) {
  if (!existsSync(distOf(name))) {
    process.stderr.write(`bench:kafka: ${distOf(name)} is missing: build ${repo} first (npm run build)\n`);
    process.exit(2);
  }
}
const { LocalCluster, RUNNEL_BIN } = await import(pathToFileURL(distOf('testkit')).href);
const { Admin } = await import(pathToFileURL(distOf('client')).href);
const { LOCAL_TIMINGS } = await import(pathToFileURL(distOf('cli')).href);
const { Consumer, MessagesStreamModes, ProduceAcks, Producer } = await import('@platformatic/kafka');

const say = (line) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
const loadAverage = () => loadavg().map((value) => Number(value.toFixed(2)));

/** Clock ticks per second, the unit of /proc/PID/stat's CPU times. */
const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds (user and system) process `pid` has used so far, or null where /proc cannot tell. */
function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The fields after the command name, which is in parentheses and may hold spaces: utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

/** The three nodes' CPU seconds so far, or null. */
function brokerCpuSeconds(cluster) {
  const each = cluster.nodes.map((node) => (node.pid === undefined ? null : cpuSeconds(node.pid)));
  return each.some((seconds) => seconds === null) ? null : each.reduce((sum, seconds) => sum + seconds, 0);
}

/**
 * The three nodes' CPU seconds per second while no client runs (Raft ticks, heartbeats, followers'
 * long polls): taken off each run's broker CPU, so that a slow client's longer run is not charged
 * to the door it used. Null where /proc cannot tell.
 */
async function idleBrokerCpuRate(cluster, sampleMs = 5000) {
  // Past the start's own work (elections, registrations, the first metadata) first.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const before = brokerCpuSeconds(cluster);
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, sampleMs));
  const after = brokerCpuSeconds(cluster);
  return before === null || after === null ? null : (after - before) / ((performance.now() - started) / 1000);
}

/**
 * One run's figures: records and MB (values only) per second of wall time, the nodes' CPU
 * milliseconds per MB moved above their idle rate, and the client's CPU time as a percentage of
 * one core.
 */
function figure(records, size, ms, brokerCpuS, clientCpuShare) {
  const seconds = ms / 1000;
  const mb = (records * size) / 1e6;
  return {
    records,
    seconds: Number(seconds.toFixed(3)),
    records_per_s: Math.round(records / seconds),
    mb_per_s: Number((mb / seconds).toFixed(1)),
    broker_cpu_s: brokerCpuS === null ? null : Number(brokerCpuS.toFixed(2)),
    broker_cpu_ms_per_mb: brokerCpuS === null ? null : Number(((brokerCpuS * 1000) / mb).toFixed(1)),
    client_cpu_pct: clientCpuShare === null ? null : Math.round(clientCpuShare * 100),
  };
}

/**
 * Runs `command` to its end within RUN_TIMEOUT_MS; resolves with its exit code, its stdout (unless
 * `countLines`, then only the number of lines it printed, so a large consume is not held in memory),
 * the tail of its stderr and its CPU time over its wall time (from the last 100 ms sample before it
 * exited; null where /proc cannot tell).
 */
function run(command, args, { countLines = false } = {}) {
  return new Promise((resolveRun, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let lines = 0;
    let stderr = '';
    let cpuS = null;
    const started = performance.now();
    const sampler = setInterval(() => (cpuS = cpuSeconds(child.pid) ?? cpuS), 100);
    child.stdout.on('data', (chunk) => {
      if (!countLines) stdout += chunk.toString('utf8');
      else for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) lines++;
    });
    child.stderr.on('data', (chunk) => (stderr = (stderr + chunk.toString('utf8')).slice(-4000)));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} did not finish in ${RUN_TIMEOUT_MS} ms: ${stderr}`));
    }, RUN_TIMEOUT_MS);
    child.once('error', (error) => {
      clearTimeout(timer);
      clearInterval(sampler);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      clearInterval(sampler);
      resolveRun({ code, stdout, lines, stderr, cpuShare: cpuS === null ? null : cpuS / ((performance.now() - started) / 1000) });
    });
  });
}

async function hasKcat() {
  try {
    return (await run('kcat', ['-V'])).code === 0;
  } catch {
    return false;
  }
}

/** The sum of the high watermarks of `topic`: what the cluster acknowledged, whatever the client said. */
async function storedRecords(admin, topic) {
  const offsets = await admin.listOffsets(Array.from({ length: partitions }, (_, partition) => ({ topic, partition, timestamp: 'latest' })));
  return offsets.reduce((sum, entry) => sum + entry.offset, 0);
}

function expectCount(what, got) {
  if (got !== recordCount) throw new Error(`${what}: ${got} records, expected ${recordCount}`);
}

/**
 * Each client's produce and consume of `size`-byte records on `topic`; each resolves with
 * `{ ms, clientCpuShare }` (the client's CPU time over its wall time) or throws. The caller creates the topic (but for gRPC, whose bench creates
 * its own), measures the brokers, and deletes the topic afterwards.
 */
function grpcRuns(cluster) {
  const bench = async (args) => {
    const result = await run(process.execPath, [RUNNEL_BIN, '--bootstrap', cluster.bootstrap, 'bench', ...args, '--json']);
    if (result.code !== 0) throw new Error(`runnel bench ${args[0]} failed: ${result.stderr}`);
    return { ...JSON.parse(result.stdout.trim().split('\n').at(-1)), cpuShare: result.cpuShare };
  };
  // runnel bench counts key and value bytes; the figures here are values only, as for the others.
  return {
    createsTopic: true,
    async produce(topic, size) {
      const result = await bench(['produce', '--topic', topic, '--records', String(recordCount), '--record-size', String(size), '--acks', 'all', '--partitions', String(partitions), '--replication-factor', String(NODES)]);
      if (result.errors !== 0) throw new Error(`runnel bench produce: ${result.errors} errors`);
      expectCount('runnel bench produce', result.records);
      return { ms: result.seconds * 1000, clientCpuShare: result.cpuShare };
    },
    async consume(topic) {
      const result = await bench(['consume', '--topic', topic, '--records', String(recordCount)]);
      expectCount('runnel bench consume', result.records);
      return { ms: result.seconds * 1000, clientCpuShare: result.cpuShare };
    },
  };
}

function kcatRuns(cluster, admin, dir) {
  const bootstrap = () => cluster.nodes.map((node) => node.kafkaBootstrap).join(',');
  return {
    createsTopic: false,
    async produce(topic, size) {
      const file = join(dir, `records-${size}.txt`);
      const out = createWriteStream(file);
      const line = `${'k'.repeat(size)}\n`;
      for (let i = 0; i < recordCount; i++) if (!out.write(line)) await once(out, 'drain');
      out.end();
      await once(out, 'finish');
      try {
        const started = performance.now();
        const produced = await run('kcat', ['-P', '-b', bootstrap(), '-t', topic, '-X', 'acks=all', '-l', file]);
        const ms = performance.now() - started;
        if (produced.code !== 0 || /Delivery failed|Failed to produce/.test(produced.stderr)) throw new Error(`kcat -P failed: ${produced.stderr}`);
        expectCount('kcat -P', await storedRecords(admin, topic));
        return { ms, clientCpuShare: produced.cpuShare };
      } finally {
        await rm(file, { force: true });
      }
    },
    async consume(topic) {
      const started = performance.now();
      const consumed = await run('kcat', ['-C', '-b', bootstrap(), '-t', topic, '-o', 'beginning', '-e', '-q', '-X', 'queued.min.messages=1000000', '-X', 'queued.max.messages.kbytes=1000000'], { countLines: true });
      const ms = performance.now() - started;
      if (consumed.code !== 0) throw new Error(`kcat -C failed: ${consumed.stderr}`);
      expectCount('kcat -C', consumed.lines);
      return { ms, clientCpuShare: consumed.cpuShare };
    },
  };
}

/** CPU seconds this process has used so far: platformatic runs inside it. */
const ownCpuSeconds = () => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
};

function platformaticRuns(cluster, admin) {
  const bootstrapBrokers = () => cluster.nodes.map((node) => node.kafkaBootstrap);
  return {
    createsTopic: false,
    async produce(topic, size) {
      const value = Buffer.alloc(size, 0x70);
      const producer = new Producer({ clientId: 'bench-kafka', bootstrapBrokers: bootstrapBrokers(), autocreateTopics: false });
      try {
        const started = performance.now();
        const cpuBefore = ownCpuSeconds();
        let next = 0;
        const sender = async () => {
          while (next < recordCount) {
            const count = Math.min(sendBatch, recordCount - next);
            next += count;
            // 1.35's send() takes acks=1 unless the call names it (the constructor's is not used).
            await producer.send({ acks: ProduceAcks.ALL, messages: Array.from({ length: count }, () => ({ topic, value })) });
          }
        };
        await Promise.race([
          Promise.all(Array.from({ length: sendsInFlight(size) }, sender)),
          new Promise((_, reject) => setTimeout(() => reject(new Error(`platformatic produce did not finish in ${RUN_TIMEOUT_MS} ms`)), RUN_TIMEOUT_MS).unref()),
        ]);
        const ms = performance.now() - started;
        const clientCpuShare = (ownCpuSeconds() - cpuBefore) / (ms / 1000);
        expectCount('platformatic produce', await storedRecords(admin, topic));
        return { ms, clientCpuShare };
      } finally {
        await producer.close();
      }
    },
    async consume(topic) {
      const consumer = new Consumer({ clientId: 'bench-kafka', groupId: `bench-kafka-${topic}`, bootstrapBrokers: bootstrapBrokers(), sessionTimeout: 10_000, heartbeatInterval: 1000 });
      try {
        const started = performance.now();
        const cpuBefore = ownCpuSeconds();
        const stream = await consumer.consume({ topics: [topic], mode: MessagesStreamModes.EARLIEST, autocommit: false });
        let received = 0;
        try {
          await new Promise((done, reject) => {
            const timer = setTimeout(() => reject(new Error(`platformatic consume: ${received} of ${recordCount} records in ${RUN_TIMEOUT_MS} ms`)), RUN_TIMEOUT_MS);
            stream.on('error', (error) => {
              clearTimeout(timer);
              reject(new Error(causeChain(error)));
            });
            stream.on('data', () => {
              if (++received === recordCount) {
                clearTimeout(timer);
                done();
              }
            });
          });
        } finally {
          await stream.close().catch(() => undefined);
        }
        const ms = performance.now() - started;
        return { ms, clientCpuShare: (ownCpuSeconds() - cpuBefore) / (ms / 1000) };
      } finally {
        await consumer.close(true);
      }
    },
  };
}

/** An error and, one level down each time, the first of the errors it aggregates (how @platformatic/kafka nests them). */
function causeChain(error) {
  const inner = error.errors?.[0];
  return inner === undefined ? error.message : `${error.message} <- ${causeChain(inner)}`;
}

/** `step()`'s figure, or what stopped it, so that one client failing leaves the others' figures standing. */
async function attempt(what, step) {
  try {
    return await step();
  } catch (error) {
    say(`${what}: ${error.message}`);
    return { error: error.message.split('\n')[0] };
  }
}

/** The run with the median records/s of those that finished (the lower middle one of an even count), with the range. */
function median(runs) {
  const finished = runs.filter((run) => run.error === undefined).sort((a, b) => a.records_per_s - b.records_per_s);
  if (finished.length === 0) return { error: runs[0]?.error ?? 'no run' };
  const middle = finished[Math.floor((finished.length - 1) / 2)];
  return { ...middle, min_records_per_s: finished[0].records_per_s, max_records_per_s: finished.at(-1).records_per_s, runs: finished.length, failed: runs.length - finished.length };
}

function table(results) {
  const rows = [
    '| size | client | produce records/s (range) | MB/s | vs gRPC | broker CPU ms/MB | client CPU | consume records/s (range) | MB/s | vs gRPC | broker CPU ms/MB | client CPU |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  const thousands = (value) => `${Math.round(value / 1000)}k`;
  for (const { size, byClient } of results) {
    const cells = (client, kind) => {
      const mine = byClient[client][kind];
      if (mine.error !== undefined) return ['failed', '', '', '', ''];
      const grpc = byClient.grpc?.[kind];
      const ratio = client === 'grpc' || grpc?.records_per_s === undefined ? '' : `×${(mine.records_per_s / grpc.records_per_s).toFixed(2)}`;
      const range = mine.runs > 1 ? ` (${thousands(mine.min_records_per_s)}–${thousands(mine.max_records_per_s)})` : '';
      return [`${mine.records_per_s.toLocaleString('en')}${range}`, String(mine.mb_per_s), ratio, mine.broker_cpu_ms_per_mb === null ? '-' : String(mine.broker_cpu_ms_per_mb), mine.client_cpu_pct === null ? '-' : `${mine.client_cpu_pct}%`];
    };
    for (const client of Object.keys(byClient)) rows.push(`| ${size} B | ${client} | ${[...cells(client, 'produce'), ...cells(client, 'consume')].join(' | ')} |`);
  }
  const failures = results.flatMap(({ size, byClient }) =>
    Object.entries(byClient).flatMap(([client, figures]) => ['produce', 'consume'].filter((kind) => figures[kind].failed > 0 || figures[kind].error !== undefined).map((kind) => `${size} B ${client} ${kind}: ${figures[kind].failed ?? rounds} of ${rounds} runs failed`)),
  );
  return [...rows, ...(failures.length > 0 ? ['', ...failures] : [])].join('\n');
}

// ---- run ------------------------------------------------------------------------------------

const dir = values.dir ?? (await mkdtemp(join(tmpdir(), 'runnel-bench-kafka-')));
const loadAverageBefore = loadAverage();
say(`bench:kafka: ${NODES} nodes of ${repo} in ${dir}; ${recordCount} records per run, ${rounds} round(s); load average ${loadAverageBefore.join(' ')}`);
let cluster;
async function interrupted(signal) {
  say(`bench:kafka: ${signal}; stopping the nodes, data kept in ${dir}`);
  await cluster?.kill().catch(() => undefined);
  process.exit(130);
}
process.on('SIGINT', interrupted);
process.on('SIGTERM', interrupted);
// The last resort on any way out: no node outlives the benchmark.
process.on('exit', () => {
  for (const node of cluster?.running() ?? []) if (node.pid !== undefined) process.kill(node.pid, 'SIGKILL');
});

const runKcat = clients.includes('kcat') && (await hasKcat());
if (clients.includes('kcat') && !runKcat) say('bench:kafka: kcat is not installed (apt-get install -y kcat): its runs are skipped');
const runnable = clients.filter((client) => client !== 'kcat' || runKcat);

/** One client's produce and consume on a fresh topic, measured, and the topic deleted afterwards. */
async function oneRun(client, runs, admin, size, round) {
  const topic = `${client}-${size}-${round}`;
  if (!runs.createsTopic) await admin.createTopics([{ name: topic, partitions, replicationFactor: NODES }]);
  const measured = (kind, step) =>
    attempt(`${client} ${kind}`, async () => {
      const brokerBefore = brokerCpuSeconds(cluster);
      const { ms, clientCpuShare } = await step();
      const brokerAfter = brokerCpuSeconds(cluster);
      const busy = brokerBefore === null || brokerAfter === null || idleRate === null ? null : Math.max(0, brokerAfter - brokerBefore - idleRate * (ms / 1000));
      return figure(recordCount, size, ms, busy, clientCpuShare);
    });
  try {
    const produce = await measured('produce', () => runs.produce(topic, size));
    const consume = produce.error === undefined ? await measured('consume', () => runs.consume(topic)) : { error: 'nothing was produced to read' };
    return { produce, consume };
  } finally {
    // Deleted at once, so that a long benchmark does not fill the disk (1 KiB x 1,000,000 x RF 3 is 3 GB a run).
    await admin.deleteTopics([topic]).catch((error) => say(`could not delete ${topic}: ${error.message}`));
  }
}

let ok = false;
/** The idle nodes' CPU seconds per second (idleBrokerCpuRate), measured once the cluster is up. */
let idleRate = null;
try {
  cluster = await LocalCluster.start({ nodes: NODES, dataDir: dir, config: { ...LOCAL_TIMINGS, 'default.replication.factor': String(NODES) } });
  const admin = new Admin({ bootstrap: cluster.bootstrap, clientId: 'bench-kafka' });
  try {
    idleRate = await idleBrokerCpuRate(cluster);
    say(`bench:kafka: the idle nodes use ${idleRate === null ? '-' : `${(idleRate * 1000).toFixed(0)} ms`} of CPU per second together; each run's broker CPU is counted above that`);
    const clientRuns = { grpc: grpcRuns(cluster), kcat: kcatRuns(cluster, admin, dir), platformatic: platformaticRuns(cluster, admin) };
    const results = [];
    const everyRun = [];
    for (const size of sizes) {
      const runsBy = Object.fromEntries(runnable.map((client) => [client, { produce: [], consume: [] }]));
      for (let round = 0; round < rounds; round++) {
        const order = runnable.map((_, k) => runnable[(k + round) % runnable.length]);
        for (const client of order) {
          say(`round ${round + 1}/${rounds}, ${client}: ${recordCount} records of ${size} B`);
          const { produce, consume } = await oneRun(client, clientRuns[client], admin, size, round);
          runsBy[client].produce.push(produce);
          runsBy[client].consume.push(consume);
          everyRun.push({ size, round, client, produce, consume, loadAverage: loadAverage() });
          say(`round ${round + 1}/${rounds}, ${client}: produce ${produce.records_per_s ?? '-'} records/s (${produce.broker_cpu_ms_per_mb ?? '-'} broker CPU ms/MB), consume ${consume.records_per_s ?? '-'} records/s (${consume.broker_cpu_ms_per_mb ?? '-'} broker CPU ms/MB)`);
        }
      }
      const byClient = Object.fromEntries(runnable.map((client) => [client, { produce: median(runsBy[client].produce), consume: median(runsBy[client].consume) }]));
      results.push({ size, byClient });
    }
    const loadAverageAfter = loadAverage();
    process.stdout.write(`${table(results)}\n\nmedian of ${rounds} run(s) each; load average before ${loadAverageBefore.join(' ')}, after ${loadAverageAfter.join(' ')}\n`);
    if (values.json) process.stdout.write(`${JSON.stringify({ records: recordCount, rounds, partitions, replicationFactor: NODES, acks: 'all', idleBrokerCpuPerSecond: idleRate, results, runs: everyRun, loadAverageBefore, loadAverageAfter })}\n`);
    ok = results.every(({ byClient }) => Object.values(byClient).every(({ produce, consume }) => produce.error === undefined && consume.error === undefined && produce.failed === 0 && consume.failed === 0));
  } finally {
    await admin.close();
  }
} catch (error) {
  say(`bench:kafka: ${error.stack ?? error.message}`);
} finally {
  if (cluster !== undefined) {
    for (const node of cluster.nodes) await writeFile(join(node.dataDir, 'process-output.log'), node.logs()).catch(() => undefined);
    await cluster.stop().catch(() => cluster.kill());
  }
  if (ok && !values.keep && values.dir === undefined) await rm(dir, { recursive: true, force: true });
  else say(`bench:kafka: data and node output kept in ${dir}`);
}
process.exit(ok ? 0 : 1);
