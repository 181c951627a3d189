#!/usr/bin/env node
// The long chaos run: a local 3-node cluster in a temp dir, producers sending uniquely numbered
// values with acks=all, a live consumer, and faults (kill, pause, partition, promote) in turn for the given
// minutes; then the history checker and a byte comparison of every partition's replicas.
// Prints the report as JSON on stdout and a summary line; exits 1 if the run is not ok.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCommandLine } from './commandLine.mjs';

const HELP = `npm run chaos -- [--minutes 10] [--faults kill,pause,partition,promote] [--records 200000] [options]

Starts a local cluster of real node processes in a temp dir and runs the chaos suite against it:
producers send uniquely numbered values with acks=all (each retried on its own, every attempt
recorded), a consumer reads along, and the faults run in turn for the given minutes:
  kill       SIGKILL a random node, restart it after 1-3 s
  pause      SIGSTOP the leader of a random partition past broker.session.timeout.ms, then SIGCONT
  partition  cut a node off from the others (Raft, controller API, replication) past its session
             timeout, then heal (clients still reach it)
  promote    SIGKILL a node, restart it, and the moment it is back in the ISR of a partition whose
             preferred replica it is, make it leader: preferred-leader election and SIGKILL of the
             current leader, in turn
Afterwards: heal everything, wait for a full ISR (must be back within 10 s of the last fault), read
every partition from the start, check the history (nothing acknowledged lost, each offset one
record, duplicates only after a retried unknown outcome, consumers never go back) and compare the
replicas' segment files byte for byte.

It builds nothing: run \`npm run build\` first (it imports packages/testkit/dist).

Options:
  --minutes N          how long the faults run (default 10)
  --faults LIST        comma-separated, taken in turn (default kill,pause,partition,promote)
  --records N          values to send (default 200000), spread over the run
  --rate N             at most N sends started per second (default records / run seconds)
  --nodes N            cluster size (default 3)
  --partitions N       partitions of the topic (default 6; RF 3, min.insync.replicas 2)
  --seed N             seed of the fault schedule
  --session-timeout-ms N   broker.session.timeout.ms (default 3000; heartbeats every 500 ms,
                       replica.lag.time.max.ms 4000)
  --dir PATH           data directory (default a new temp dir)
  --keep               keep the data directory also when the run is ok
  --progress-s N       seconds between progress lines on stderr (default 10)
  -h, --help           this text

Exit status: 0 when the report is ok, 1 when not (the data directory and the nodes' output are kept
and their path printed), 2 on bad arguments.`;

const values = parseCommandLine('chaos', HELP, {
  minutes: { type: 'string', default: '10' },
  faults: { type: 'string', default: 'kill,pause,partition,promote' },
  records: { type: 'string', default: '200000' },
  rate: { type: 'string' },
  nodes: { type: 'string', default: '3' },
  partitions: { type: 'string', default: '6' },
  seed: { type: 'string' },
  'session-timeout-ms': { type: 'string', default: '3000' },
  dir: { type: 'string' },
  keep: { type: 'boolean', default: false },
  'progress-s': { type: 'string', default: '10' },
});

function number(name, { integer = true, min = 1 } = {}) {
  const raw = values[name];
  const value = Number(raw);
  if (raw === undefined || !Number.isFinite(value) || (integer && !Number.isInteger(value)) || value < min) {
    process.stderr.write(`chaos: --${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got ${raw}\n`);
    process.exit(2);
  }
  return value;
}

const minutes = number('minutes', { integer: false, min: 0.05 });
const records = number('records');
const nodes = number('nodes');
const partitions = number('partitions');
const sessionTimeoutMs = number('session-timeout-ms', { min: 500 });
const progressS = number('progress-s', { integer: false, min: 0.5 });
const rate = values.rate === undefined ? undefined : number('rate', { integer: false, min: 0.1 });
const seed = values.seed === undefined ? undefined : number('seed', { min: 0 });
const faults = values.faults.split(',').map((kind) => kind.trim()).filter((kind) => kind !== '');
for (const kind of faults) {
  if (!['kill', 'pause', 'partition', 'promote'].includes(kind)) {
    process.stderr.write(`chaos: unknown fault '${kind}' (known: kill, pause, partition, promote)\n`);
    process.exit(2);
  }
}

const dist = new URL('../packages/testkit/dist/index.js', import.meta.url);
if (!existsSync(dist)) {
  process.stderr.write(`chaos: ${dist.pathname} is missing: run \`npm run build\` first\n`);
  process.exit(2);
}
const { LocalCluster, runChaos } = await import(dist.href);

const log = (line) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
const dir = values.dir ?? (await mkdtemp(join(tmpdir(), 'runnel-chaos-')));
log(`chaos: ${nodes} nodes in ${dir}; faults ${faults.join(',') || 'none'} for ${minutes} min; ${records} records`);

let cluster;
let interrupted = false;
const onSignal = async (signal) => {
  if (interrupted) return;
  interrupted = true;
  log(`chaos: ${signal}: stopping the cluster; data kept in ${dir}`);
  for (const node of cluster?.nodes ?? []) node.resume();
  await cluster?.kill().catch(() => undefined);
  process.exit(130);
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

async function keepNodeOutput() {
  for (const node of cluster?.nodes ?? []) {
    await writeFile(join(node.dataDir, 'process-output.log'), node.logs()).catch(() => undefined);
  }
}

let report;
try {
  cluster = await LocalCluster.start({
    nodes,
    dataDir: dir,
    networkFaults: faults.includes('partition'),
    config: {
      'broker.session.timeout.ms': String(sessionTimeoutMs),
      'broker.heartbeat.interval.ms': String(Math.max(100, Math.floor(sessionTimeoutMs / 6))),
      'replica.lag.time.max.ms': String(sessionTimeoutMs + 1000),
    },
  });
  report = await runChaos({
    cluster,
    records,
    durationMs: minutes * 60_000,
    faults,
    partitions,
    replicationFactor: Math.min(3, nodes),
    minInsyncReplicas: Math.min(2, nodes),
    ratePerSec: rate,
    seed,
    sessionTimeoutMs,
    log,
    progressIntervalMs: progressS * 1000,
  });
} catch (error) {
  log(`chaos: the run failed: ${error?.stack ?? error}`);
  await keepNodeOutput();
  for (const node of cluster?.nodes ?? []) node.resume();
  await cluster?.kill().catch(() => undefined);
  log(`chaos: data and node output kept in ${dir}`);
  process.exit(1);
}

await keepNodeOutput();
for (const node of cluster.nodes) node.resume();
await cluster.kill().catch(() => undefined);
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
const c = report.check.counts;
log(
  `chaos ${report.ok ? 'OK' : 'FAILED'}: ${c.sent} records sent, ${c.acknowledged} acknowledged, ${c.failed} failed, ${c.unknown} unknown (${c.exhausted} given up); ` +
    `lost ${c.lost}, inconsistent ${c.inconsistent}, duplicates ${c.duplicates} (${c.unexplainedDuplicates} unexplained), gaps ${c.gaps}, backwards ${c.backwards}; ` +
    `faults ${report.faults.total} (kill ${report.faults.kill}, pause ${report.faults.pause}, partition ${report.faults.partition}, promote ${report.faults.promote}); ` +
    `full ISR ${report.isrHealMs} ms after the last fault; replicas ${report.replicasIdentical ? 'identical' : 'DIFFER'}`,
);
if (report.ok) {
  if (values.keep || values.dir !== undefined) log(`chaos: data kept in ${dir}`);
  else await rm(dir, { recursive: true, force: true });
  process.exit(0);
}
log(`chaos: problems: ${report.problems.join('; ')}`);
log(`chaos: data and node output (DATA/node-N/process-output.log) kept in ${dir}`);
process.exit(1);
