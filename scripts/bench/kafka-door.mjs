#!/usr/bin/env node
// What the Kafka door costs against the gRPC door: the same records produced and consumed on one
// local 3-node cluster (testkit's LocalCluster, loopback only, the timings of `npm start`) through
// the PLAINTEXT listener by a librdkafka client (kcat, fed from a file) and by @platformatic/kafka,
// and through gRPC by `runnel bench`. Every run gets a fresh topic, so no client reads another's
// records or finds its own in the page cache of a previous run.
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { once } from 'node:events';
import { parseCommandLine } from '../commandLine.mjs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HELP = `npm run bench:kafka -- [options]

Starts a local 3-node cluster in a temp dir (every node a broker and a controller voter, with the
timings of \`npm start\`) and, for each record size, on a fresh topic of --partitions partitions,
replication factor 3, acks=all:

  grpc          runnel bench produce, then runnel bench consume (the TypeScript client over gRPC)
  kcat          kcat -P -l FILE -X acks=all (librdkafka 2.0.2's defaults otherwise), then
                kcat -C -o beginning -e (no group) counting the lines it prints
  platformatic  @platformatic/kafka: send() calls of --send-batch records, --in-flight at a time,
                acks=all, no compression; then a consumer group of one from the earliest offset

Each figure is records and MB (values only) over the wall time of the whole produce or consume,
from the client's start to its last acknowledgement or record: connection, metadata and (for
platformatic's consumer) the group join are inside it. The Kafka door's figures are also given as
a ratio to gRPC's. Progress goes to stderr, the table to stdout. It builds nothing itself
(\`npm run bench:kafka\` builds first); kcat is skipped with a line when it is not installed.

Options:
  --records N       records per run (default 200000)
  --sizes LIST      record sizes in bytes, comma-separated (default 100,1024)
  --partitions N    partitions of each topic (default 6)
  --clients LIST    any of grpc,kcat,platformatic (default all three)
  --send-batch N    platformatic: records per send() (default 1000)
  --in-flight N     platformatic: send() calls not yet acknowledged (default 4)
  --repo DIR        the repository whose built packages to run (default this one)
  --dir PATH        data directory (default a new temp dir, removed afterwards)
  --keep            keep the data directory (node output is written there)
  --json            print the figures as one JSON line on stdout as well
  -h, --help        this text`;

const values = parseCommandLine('bench:kafka', HELP, {
  records: { type: 'string', default: '200000' },
  sizes: { type: 'string', default: '100,1024' },
  partitions: { type: 'string', default: '6' },
  clients: { type: 'string', default: 'grpc,kcat,platformatic' },
  'send-batch': { type: 'string', default: '1000' },
  'in-flight': { type: 'string', default: '4' },
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
const partitions = integer(values.partitions, '--partitions', 1);
const sendBatch = integer(values['send-batch'], '--send-batch', 1);
const inFlightMax = integer(values['in-flight'], '--in-flight', 1);
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

/** Records and MB per second of `records` values of `size` bytes moved in `ms`. */
function figure(records, size, ms) {
  const seconds = ms / 1000;
  return { records, seconds: Number(seconds.toFixed(3)), records_per_s: Math.round(records / seconds), mb_per_s: Number(((records * size) / seconds / 1e6).toFixed(1)) };
}

/**
 * Runs `command` to its end within RUN_TIMEOUT_MS; resolves with its exit code, its stdout (unless
 * `countLines`, then only the number of lines it printed, so a large consume is not held in memory)
 * and the tail of its stderr.
 */
function run(command, args, { countLines = false } = {}) {
  return new Promise((resolveRun, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let lines = 0;
    let stderr = '';
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
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolveRun({ code, stdout, lines, stderr });
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

/** One client's produce and consume of `size`-byte records on a topic of its own; each returns a figure or throws. */
function grpcRuns(cluster) {
  const topic = (size) => `grpc-${size}`;
  const bench = async (args) => {
    const result = await run(process.execPath, [RUNNEL_BIN, '--bootstrap', cluster.bootstrap, 'bench', ...args, '--json']);
    if (result.code !== 0) throw new Error(`runnel bench ${args[0]} failed: ${result.stderr}`);
    return JSON.parse(result.stdout.trim().split('\n').at(-1));
  };
  // runnel bench counts key and value bytes; the figures here are values only, as for the others.
  return {
    async produce(size) {
      const result = await bench(['produce', '--topic', topic(size), '--records', String(recordCount), '--record-size', String(size), '--acks', 'all', '--partitions', String(partitions), '--replication-factor', String(NODES)]);
      if (result.errors !== 0) throw new Error(`runnel bench produce: ${result.errors} errors`);
      return figure(result.records, size, result.seconds * 1000);
    },
    async consume(size) {
      const result = await bench(['consume', '--topic', topic(size), '--records', String(recordCount)]);
      return figure(result.records, size, result.seconds * 1000);
    },
  };
}

function kcatRuns(cluster, admin, dir) {
  const topic = (size) => `kcat-${size}`;
  const bootstrap = () => cluster.nodes.map((node) => node.kafkaBootstrap).join(',');
  return {
    async produce(size) {
      await admin.createTopics([{ name: topic(size), partitions, replicationFactor: NODES }]);
      const file = join(dir, `records-${size}.txt`);
      const out = createWriteStream(file);
      const line = `${'k'.repeat(size)}\n`;
      for (let i = 0; i < recordCount; i++) if (!out.write(line)) await once(out, 'drain');
      out.end();
      await once(out, 'finish');
      try {
        const started = performance.now();
        const produced = await run('kcat', ['-P', '-b', bootstrap(), '-t', topic(size), '-X', 'acks=all', '-l', file]);
        const elapsedMs = performance.now() - started;
        if (produced.code !== 0 || /Delivery failed|Failed to produce/.test(produced.stderr)) throw new Error(`kcat -P failed: ${produced.stderr}`);
        expectCount('kcat -P', await storedRecords(admin, topic(size)));
        return figure(recordCount, size, elapsedMs);
      } finally {
        await rm(file, { force: true });
      }
    },
    async consume(size) {
      const started = performance.now();
      const consumed = await run('kcat', ['-C', '-b', bootstrap(), '-t', topic(size), '-o', 'beginning', '-e', '-q'], { countLines: true });
      const elapsedMs = performance.now() - started;
      if (consumed.code !== 0) throw new Error(`kcat -C failed: ${consumed.stderr}`);
      expectCount('kcat -C', consumed.lines);
      return figure(recordCount, size, elapsedMs);
    },
  };
}

function platformaticRuns(cluster, admin) {
  const topic = (size) => `platformatic-${size}`;
  const bootstrapBrokers = () => cluster.nodes.map((node) => node.kafkaBootstrap);
  return {
    async produce(size) {
      await admin.createTopics([{ name: topic(size), partitions, replicationFactor: NODES }]);
      const value = Buffer.alloc(size, 0x70);
      const producer = new Producer({ clientId: 'bench-kafka', bootstrapBrokers: bootstrapBrokers(), autocreateTopics: false });
      try {
        const started = performance.now();
        let next = 0;
        const sender = async () => {
          while (next < recordCount) {
            const count = Math.min(sendBatch, recordCount - next);
            next += count;
            // 1.35's send() takes acks=1 unless the call names it (the constructor's is not used).
            await producer.send({ acks: ProduceAcks.ALL, messages: Array.from({ length: count }, () => ({ topic: topic(size), value })) });
          }
        };
        await Promise.race([
          Promise.all(Array.from({ length: inFlightMax }, sender)),
          new Promise((_, reject) => setTimeout(() => reject(new Error(`platformatic produce did not finish in ${RUN_TIMEOUT_MS} ms`)), RUN_TIMEOUT_MS).unref()),
        ]);
        const elapsedMs = performance.now() - started;
        expectCount('platformatic produce', await storedRecords(admin, topic(size)));
        return figure(recordCount, size, elapsedMs);
      } finally {
        await producer.close();
      }
    },
    async consume(size) {
      const consumer = new Consumer({ clientId: 'bench-kafka', groupId: `bench-kafka-${size}`, bootstrapBrokers: bootstrapBrokers(), sessionTimeout: 10_000, heartbeatInterval: 1000 });
      try {
        const started = performance.now();
        const stream = await consumer.consume({ topics: [topic(size)], mode: MessagesStreamModes.EARLIEST, autocommit: false });
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
        return figure(recordCount, size, performance.now() - started);
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

function table(results) {
  const rows = ['| size | client | produce records/s | produce MB/s | vs gRPC | consume records/s | consume MB/s | vs gRPC |', '|---|---|---|---|---|---|---|---|'];
  for (const { size, byClient } of results) {
    const cells = (client, kind) => {
      const mine = byClient[client][kind];
      if (mine.error !== undefined) return ['failed', '', ''];
      const grpc = byClient.grpc?.[kind];
      const ratio = client === 'grpc' || grpc?.records_per_s === undefined ? '' : `×${(mine.records_per_s / grpc.records_per_s).toFixed(2)}`;
      return [mine.records_per_s.toLocaleString('en'), String(mine.mb_per_s), ratio];
    };
    for (const client of Object.keys(byClient)) rows.push(`| ${size} B | ${client} | ${[...cells(client, 'produce'), ...cells(client, 'consume')].join(' | ')} |`);
  }
  const failures = results.flatMap(({ size, byClient }) =>
    Object.entries(byClient).flatMap(([client, figures]) => ['produce', 'consume'].filter((kind) => figures[kind].error !== undefined).map((kind) => `${size} B ${client} ${kind} failed: ${figures[kind].error}`)),
  );
  return [...rows, ...(failures.length > 0 ? ['', ...failures] : [])].join('\n');
}

// ---- run ------------------------------------------------------------------------------------

const dir = values.dir ?? (await mkdtemp(join(tmpdir(), 'runnel-bench-kafka-')));
const loadAverageBefore = loadAverage();
say(`bench:kafka: ${NODES} nodes of ${repo} in ${dir}; ${recordCount} records per run; load average ${loadAverageBefore.join(' ')}`);
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

let ok = false;
try {
  cluster = await LocalCluster.start({ nodes: NODES, dataDir: dir, config: { ...LOCAL_TIMINGS, 'default.replication.factor': String(NODES) } });
  const admin = new Admin({ bootstrap: cluster.bootstrap, clientId: 'bench-kafka' });
  try {
    const clientRuns = { grpc: grpcRuns(cluster), kcat: kcatRuns(cluster, admin, dir), platformatic: platformaticRuns(cluster, admin) };
    const results = [];
    for (const size of sizes) {
      const byClient = {};
      for (const client of clients) {
        if (client === 'kcat' && !runKcat) continue;
        say(`${client}: ${recordCount} records of ${size} B`);
        const runs = clientRuns[client];
        const produce = await attempt(`${client} produce`, () => runs.produce(size));
        const consume = produce.error === undefined ? await attempt(`${client} consume`, () => runs.consume(size)) : { error: 'nothing was produced to read' };
        byClient[client] = { produce, consume };
        say(`${client}: produce ${produce.records_per_s ?? '-'} records/s (${produce.mb_per_s ?? '-'} MB/s), consume ${consume.records_per_s ?? '-'} records/s (${consume.mb_per_s ?? '-'} MB/s)`);
      }
      results.push({ size, byClient });
    }
    const loadAverageAfter = loadAverage();
    process.stdout.write(`${table(results)}\n\nload average before ${loadAverageBefore.join(' ')}, after ${loadAverageAfter.join(' ')}\n`);
    if (values.json) process.stdout.write(`${JSON.stringify({ records: recordCount, partitions, replicationFactor: NODES, acks: 'all', results, loadAverageBefore, loadAverageAfter })}\n`);
    ok = results.every(({ byClient }) => Object.values(byClient).every(({ produce, consume }) => produce.error === undefined && consume.error === undefined));
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
