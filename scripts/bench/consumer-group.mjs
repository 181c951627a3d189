#!/usr/bin/env node
// Consumer groups on a local 3-node cluster (testkit's LocalCluster, real node processes, loopback
// only, the timings of `npm start`) in a temp dir, every group member a separate OS process
// (consumer-group-worker.mjs beside this file) so that members run in parallel as deployments do:
// 1. throughput: a preloaded topic read by a group of one member, then by a fresh group of three;
// 2. failover: under a steady acks=all load, one of three members is SIGKILLed; how long until
//    every partition it owned is consumed again by the others, and was any acknowledged record
//    skipped;
// 3. commit latency: in the steady phase of 2, members commit synchronously after each poll that
//    returned records; the percentiles of those commits.
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { parseCommandLine } from '../commandLine.mjs';
import { SendWindow } from './sendWindow.mjs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HELP = `npm run bench:groups -- [options]

Starts a local 3-node cluster in a temp dir (every node a broker and a controller voter, with the
timings of \`npm start\`, group.initial.rebalance.delay.ms 0) and measures consumer groups on topics
of 6 partitions, replication factor 3, each group member a separate process:

1. throughput: preloads --records records (acks=1), then reads them all with a group of one member
   and with a fresh group of three (auto-commit, the client's default fetch settings). A run starts
   once the whole group is assigned (members hold their partitions paused until then) and is timed
   from the first record any member polled to the last.
2. failover: --rate records/s with acks=all, a group of three members (session.timeout.ms
   --session-timeout-ms, heartbeats every 1000 ms, a synchronous commit after each poll that
   returned records); after --steady-s seconds of steady consumption one member is SIGKILLed. The
   figure is the time from the SIGKILL until a record of every partition it owned has been polled by
   another member; afterwards every acknowledged offset must have been polled by some member.
3. commit latency: every commit() of the steady seconds of 2, over all members.

Progress goes to stderr, the figures to stdout. It builds nothing itself (\`npm run bench:groups\`
builds first).

Options:
  --records N             records to preload and read (default 600000)
  --record-size N         bytes per record value (default 100)
  --rate N                records per second of the steady load (default 2000)
  --session-timeout-ms N  the failover group's session.timeout.ms (default 10000)
  --steady-s N            seconds of steady consumption before the SIGKILL (default 20)
  --repo DIR              the repository whose built packages to run (default this one)
  --dir PATH              data directory (default a new temp dir, removed afterwards)
  --keep                  keep the data directory (node output and member logs are written there)
  --json                  print the figures as one JSON line on stdout as well
  -h, --help              this text`;

const values = parseCommandLine('bench:groups', HELP, {
  records: { type: 'string', default: '600000' },
  'record-size': { type: 'string', default: '100' },
  rate: { type: 'string', default: '2000' },
  'session-timeout-ms': { type: 'string', default: '10000' },
  'steady-s': { type: 'string', default: '20' },
  repo: { type: 'string' },
  dir: { type: 'string' },
  keep: { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
});

function integerOption(name, min) {
  const parsed = Number(values[name]);
  if (Number.isInteger(parsed) && parsed >= min) return parsed;
  process.stderr.write(`bench:groups: --${name} wants an integer of at least ${min}, not ${values[name]}\n`);
  process.exit(2);
}

const recordCount = integerOption('records', 1);
const recordSize = integerOption('record-size', 1);
const rate = integerOption('rate', 1);
const HEARTBEAT_INTERVAL_MS = 1000;
const sessionTimeoutMs = integerOption('session-timeout-ms', HEARTBEAT_INTERVAL_MS + 1);
const steadyS = integerOption('steady-s', 1);
const NODES = 3;
const PARTITIONS = 6;
const THROUGHPUT_TOPIC = 'group-bench-throughput';
const STEADY_TOPIC = 'group-bench-steady';
/** Unacknowledged sends allowed before a load waits (about the producer's 32 MiB buffer). */
const IN_FLIGHT_MAX = Math.max(1000, Math.floor((32 * 1024 * 1024) / recordSize));
const ACK_DRAIN_TIMEOUT_MS = 60_000;
const HIGH_WATERMARK_TIMEOUT_MS = 60_000;
const GROUP_ASSIGNED_TIMEOUT_MS = 60_000;
/** Reading the preload: generous for a slow machine (1,000 records/s), but bounded. */
const READ_ALL_TIMEOUT_MS = 60_000 + recordCount;
/** The coordinator waits one session timeout, then the group rebalances: a minute more is plenty. */
const FAILOVER_TIMEOUT_MS = sessionTimeoutMs + 60_000;
/** The load runs on after the takeover, so that the survivors are seen reading new records too. */
const AFTER_TAKEOVER_MS = 5000;
const CATCH_UP_TIMEOUT_MS = 60_000;
const WORKER_EXIT_TIMEOUT_MS = 15_000;
/** No member outlives the benchmark's longest possible run. */
const WORKER_MAX_S = Math.ceil((GROUP_ASSIGNED_TIMEOUT_MS + READ_ALL_TIMEOUT_MS + steadyS * 1000 + FAILOVER_TIMEOUT_MS + CATCH_UP_TIMEOUT_MS) / 1000) + 60;
const WAIT_STEP_MS = 50;
const PROGRESS_INTERVAL_MS = 5000;

const repo = resolve(values.repo ?? fileURLToPath(new URL('../..', import.meta.url)));
const WORKER_SCRIPT = fileURLToPath(new URL('./consumer-group-worker.mjs', import.meta.url));
const distOf = (name) => join(repo, 'packages', name, 'dist', 'index.js');
for (const name of ['testkit', 'client', 'cli']) {
  if (!existsSync(distOf(name))) {
    process.stderr.write(`bench:groups: ${distOf(name)} is missing: build ${repo} first (npm run build)\n`);
    process.exit(2);
  }
}
const { LocalCluster } = await import(pathToFileURL(distOf('testkit')).href);
const { Admin, Producer } = await import(pathToFileURL(distOf('client')).href);
const { LOCAL_TIMINGS } = await import(pathToFileURL(distOf('cli')).href);

const say = (line) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
const sleep = (ms) => new Promise((done) => setTimeout(done, ms));
const loadAverage = () => loadavg().map((value) => Number(value.toFixed(2)));
const seconds = (ms) => Number((ms / 1000).toFixed(2));

class WaitTimedOut extends Error {}

/** Waits until `done()` (which may be async) holds, checking every WAIT_STEP_MS; throws WaitTimedOut after `timeoutMs`. */
async function until(what, timeoutMs, done) {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() >= deadline) throw new WaitTimedOut(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(WAIT_STEP_MS);
  }
}

// ---- group members --------------------------------------------------------------------------

/** Every member process started and not yet seen exiting: killed on any way out. */
const liveWorkers = new Set();

/** Offsets of one partition that some member polled, as sorted, disjoint, non-adjacent [first, last] runs. */
class OffsetRuns {
  runs = [];

  add(first, last) {
    let i = 0;
    while (i < this.runs.length && this.runs[i][1] < first - 1) i++;
    let merged = [first, last];
    let j = i;
    while (j < this.runs.length && this.runs[j][0] <= last + 1) {
      merged = [Math.min(merged[0], this.runs[j][0]), Math.max(merged[1], this.runs[j][1])];
      j++;
    }
    this.runs.splice(i, j - i, merged);
  }

  /** Is every offset of [0, end) in a run? */
  coversUpTo(end) {
    return end === 0 || (this.runs.length > 0 && this.runs[0][0] === 0 && this.runs[0][1] >= end - 1);
  }

  has(offset) {
    return this.runs.some(([first, last]) => first <= offset && offset <= last);
  }

  get distinct() {
    return this.runs.reduce((sum, [first, last]) => sum + last - first + 1, 0);
  }
}

/** One group's members and what they reported. */
class GroupRun {
  constructor(name, logDir) {
    this.name = name;
    this.logDir = logDir;
    this.members = [];
    this.polledByPartition = Array.from({ length: PARTITIONS }, () => new OffsetRuns());
    this.recordsPolled = 0;
    this.firstPollMs = null;
    this.lastPollMs = null;
    /** Set by watchTakeover: per partition, the first poll of it by a member other than `excluded` at or after `sinceMs`. */
    this.takeover = null;
  }

  start(count, workerOptions) {
    for (let index = 1; index <= count; index++) {
      const member = { index, readyMs: null, assignments: [], commits: [], recordsPolled: 0, exited: false, expectedExit: false };
      const args = [WORKER_SCRIPT, '--repo', repo, '--max-s', String(WORKER_MAX_S), '--group', this.name, ...workerOptions];
      member.child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
      member.logPath = join(this.logDir, `${this.name}-member-${index}.log`);
      member.child.stderr.pipe(createWriteStream(member.logPath));
      member.child.stdin.on('error', () => undefined); // a member that died: its exit is what counts
      member.exitedPromise = new Promise((done) => member.child.on('exit', done)).then(() => {
        member.exited = true;
        liveWorkers.delete(member.child);
      });
      createInterface({ input: member.child.stdout }).on('line', (line) => this.onReport(member, line));
      liveWorkers.add(member.child);
      this.members.push(member);
    }
  }

  onReport(member, line) {
    let report;
    try {
      report = JSON.parse(line);
    } catch {
      return;
    }
    if (report.event === 'ready') member.readyMs = report.atMs;
    else if (report.event === 'assigned') member.assignments.push(report);
    else if (report.event === 'commit') member.commits.push(report);
    else if (report.event === 'polled') {
      for (const [partition, first, last] of report.ranges) {
        this.polledByPartition[partition].add(first, last);
        const count = last - first + 1;
        member.recordsPolled += count;
        this.recordsPolled += count;
        const takeover = this.takeover;
        if (takeover !== null && member !== takeover.excluded && report.atMs >= takeover.sinceMs && !takeover.firstPollMs.has(partition)) {
          takeover.firstPollMs.set(partition, report.atMs);
        }
      }
      this.firstPollMs ??= report.atMs;
      this.lastPollMs = Math.max(this.lastPollMs ?? 0, report.atMs);
    }
  }

  /** When the last member had loaded the client (started after the benchmark spawned it). */
  get allReadyMs() {
    return Math.max(...this.members.map((member) => member.readyMs ?? Infinity));
  }

  running() {
    return this.members.filter((member) => !member.expectedExit);
  }

  /** Throws if a member that should run exited (its log says why). */
  checkAlive() {
    const dead = this.members.find((member) => member.exited && !member.expectedExit);
    if (dead !== undefined) throw new Error(`group ${this.name}: member ${dead.index} exited early (code ${dead.child.exitCode}, signal ${dead.child.signalCode}); see ${dead.logPath}`);
  }

  /** The generation every running member holds, if they all hold the same one and together own every partition once. */
  assignedGeneration() {
    this.checkAlive();
    const latest = this.running().map((member) => member.assignments.at(-1));
    if (latest.some((assignment) => assignment === undefined)) return null;
    const generation = latest[0].generation;
    if (latest.some((assignment) => assignment.generation !== generation)) return null;
    const owned = latest.flatMap((assignment) => assignment.partitions);
    return owned.length === PARTITIONS && new Set(owned).size === PARTITIONS ? generation : null;
  }

  /** Records polled by more than one member, or twice by one (re-read after a rebalance). */
  get polledTwice() {
    return this.recordsPolled - this.polledByPartition.reduce((sum, runs) => sum + runs.distinct, 0);
  }

  /** Offsets in `offsetsByPartition` that no member polled: how many, and the first few as partition@offset. */
  unpolled(offsetsByPartition) {
    let count = 0;
    const examples = [];
    offsetsByPartition.forEach((offsets, partition) => {
      for (const offset of offsets) {
        if (this.polledByPartition[partition].has(offset)) continue;
        count++;
        if (examples.length < 10) examples.push(`${partition}@${offset}`);
      }
    });
    return { count, examples };
  }

  coversUpTo(endOffsets) {
    this.checkAlive();
    return endOffsets.every((end, partition) => this.polledByPartition[partition].coversUpTo(end));
  }

  tell(line) {
    for (const member of this.running()) if (!member.exited) member.child.stdin.write(`${line}\n`);
  }

  watchTakeover(excluded, sinceMs) {
    this.takeover = { excluded, sinceMs, firstPollMs: new Map() };
  }

  sigkill(member) {
    member.expectedExit = true;
    member.child.kill('SIGKILL');
  }

  /** Asks every member to close (leave the group) and exit; SIGKILLs those that do not in time. */
  async stop() {
    for (const member of this.members) member.expectedExit = true;
    for (const member of this.members) if (!member.exited) member.child.stdin.end('stop\n');
    const exited = Promise.all(this.members.map((member) => member.exitedPromise));
    if ((await Promise.race([exited.then(() => true), sleep(WORKER_EXIT_TIMEOUT_MS).then(() => false)])) === false) {
      say(`group ${this.name}: members still running ${WORKER_EXIT_TIMEOUT_MS} ms after stop; killing them`);
      for (const member of this.members) if (!member.exited) member.child.kill('SIGKILL');
      await exited;
    }
  }

  spread() {
    return this.members.map((member) => ({ member: member.index, partitions: member.assignments.at(-1)?.partitions ?? [], recordsPolled: member.recordsPolled }));
  }
}

function killLiveWorkers() {
  for (const child of liveWorkers) child.kill('SIGKILL');
}

// ---- loads ----------------------------------------------------------------------------------

/**
 * Sends records i = 0, 1, ... to partition i mod PARTITIONS (every partition gets its share
 * whatever the producer's batching), at most `count`, paced to `perSecond` if given, until
 * `stopped()`; waits for the acknowledgements. Acknowledged offsets go to `onAck(partition, offset)`.
 */
async function produce(producer, topic, { count, perSecond, stopped = () => false, onAck = () => undefined, onProgress }) {
  const value = randomBytes(recordSize);
  const startedMs = Date.now();
  const window = new SendWindow(IN_FLIGHT_MAX);
  let acknowledged = 0;
  let failed = 0;
  let sent = 0;
  for (; sent < count && !stopped(); sent++) {
    if (perSecond !== undefined) {
      const aheadMs = startedMs + (1000 * sent) / perSecond - Date.now();
      if (aheadMs >= 1) await sleep(aheadMs);
    }
    await window.acquire();
    producer.send({ topic, partition: sent % PARTITIONS, value }).then(
      (metadata) => {
        acknowledged++;
        onAck(metadata.partition, metadata.offset);
        window.release();
      },
      () => {
        failed++;
        window.release();
      },
    );
    if (onProgress !== undefined && sent % 50_000 === 0) onProgress(sent, acknowledged);
  }
  await producer.flush();
  const unsettled = await window.drain(ACK_DRAIN_TIMEOUT_MS);
  return { sent, acknowledged, failed, unsettled };
}

async function highWatermarks(admin, topic) {
  const listed = await admin.listOffsets(Array.from({ length: PARTITIONS }, (_, partition) => ({ topic, partition, timestamp: 'latest' })));
  return listed.map((entry) => entry.offset);
}

// ---- the three measurements -----------------------------------------------------------------

async function preload(bootstrap, admin) {
  say(`preloading ${recordCount} records of ${recordSize} B (acks=1) into ${THROUGHPUT_TOPIC}`);
  const producer = new Producer({ bootstrap, clientId: 'bench-groups-preload', acks: 1 });
  const acked = new Array(PARTITIONS).fill(0);
  const startedMs = Date.now();
  let outcome;
  try {
    outcome = await produce(producer, THROUGHPUT_TOPIC, {
      count: recordCount,
      onAck: (partition, offset) => (acked[partition] = Math.max(acked[partition], offset + 1)),
      onProgress: (sent, acknowledged) => sent > 0 && say(`  sent ${sent}, acknowledged ${acknowledged}`),
    });
  } finally {
    await producer.close();
  }
  if (outcome.failed > 0 || outcome.unsettled > 0) throw new Error(`preload: ${outcome.failed} sends failed, ${outcome.unsettled} unanswered`);
  say(`  ${outcome.acknowledged} acknowledged in ${seconds(Date.now() - startedMs)} s; waiting for the followers (high watermarks)`);
  // Consumers read up to the high watermark: the read starts with the whole preload readable.
  let ends;
  await until('the high watermarks to reach the acknowledged offsets', HIGH_WATERMARK_TIMEOUT_MS, async () => {
    ends = await highWatermarks(admin, THROUGHPUT_TOPIC);
    return ends.every((end, partition) => end >= acked[partition]);
  });
  return ends;
}

async function readAll(bootstrap, logDir, size, endOffsets) {
  const run = new GroupRun(`bench-throughput-${size}-${randomBytes(3).toString('hex')}`, logDir);
  const spawnedMs = Date.now();
  const records = endOffsets.reduce((sum, end) => sum + end, 0);
  let progress;
  run.start(size, ['--bootstrap', bootstrap, '--topic', THROUGHPUT_TOPIC, '--session-timeout-ms', String(sessionTimeoutMs), '--commit', 'auto', '--gate']);
  try {
    await until(`${size} member(s) to be assigned every partition`, GROUP_ASSIGNED_TIMEOUT_MS, () => run.assignedGeneration() !== null);
    const assignedMs = Date.now();
    const generationAtGo = run.assignedGeneration();
    run.tell('go');
    progress = setInterval(() => say(`  polled ${run.recordsPolled} of ${records}`), PROGRESS_INTERVAL_MS);
    await until(`group of ${size} to read the preload`, READ_ALL_TIMEOUT_MS, () => run.coversUpTo(endOffsets));
    const spanMs = run.lastPollMs - run.firstPollMs;
    const generations = new Set(run.members.flatMap((member) => member.assignments.map((assignment) => assignment.generation)));
    const result = {
      members: size,
      records,
      polledTwice: run.polledTwice,
      firstToLastMs: spanMs,
      recordsPerS: Math.round(records / (spanMs / 1000)),
      membersStartedMs: run.allReadyMs - spawnedMs,
      assignedAfterStartMs: assignedMs - run.allReadyMs,
      rebalancesDuringRead: [...generations].filter((generation) => generation > generationAtGo).length,
      spread: run.spread(),
    };
    say(`  group of ${size}: ${result.recordsPerS} records/s (${records} records in ${seconds(spanMs)} s); spread ${formatSpread(result.spread)}`);
    return result;
  } finally {
    clearInterval(progress);
    await run.stop();
  }
}

async function failover(bootstrap, logDir) {
  const run = new GroupRun(`bench-failover-${randomBytes(3).toString('hex')}`, logDir);
  const acked = Array.from({ length: PARTITIONS }, () => []);
  const producer = new Producer({ bootstrap, clientId: 'bench-groups-steady', acks: 'all', lingerMs: 1 });
  let loadStopped = false;
  const loadMaxS = (GROUP_ASSIGNED_TIMEOUT_MS + FAILOVER_TIMEOUT_MS + AFTER_TAKEOVER_MS) / 1000 + steadyS;
  say(`failover: ${rate} records/s (acks=all) into ${STEADY_TOPIC}; 3 members, session.timeout.ms ${sessionTimeoutMs}, heartbeat ${HEARTBEAT_INTERVAL_MS} ms, commit after each poll`);
  const progress = setInterval(() => say(`  acknowledged ${acked.reduce((sum, offsets) => sum + offsets.length, 0)}, polled ${run.recordsPolled}`), PROGRESS_INTERVAL_MS);
  const loading = produce(producer, STEADY_TOPIC, { count: Math.ceil(rate * loadMaxS), perSecond: rate, stopped: () => loadStopped, onAck: (partition, offset) => acked[partition].push(offset) });
  try {
    run.start(3, ['--bootstrap', bootstrap, '--topic', STEADY_TOPIC, '--session-timeout-ms', String(sessionTimeoutMs), '--heartbeat-interval-ms', String(HEARTBEAT_INTERVAL_MS), '--commit', 'sync']);
    await until('3 members to be assigned every partition', GROUP_ASSIGNED_TIMEOUT_MS, () => run.assignedGeneration() !== null);
    await until('every member to poll records', GROUP_ASSIGNED_TIMEOUT_MS, () => run.assignedGeneration() !== null && run.members.every((member) => member.recordsPolled > 0));
    // The records produced while the group formed are read first: the steady seconds start once
    // the members have caught up, so that their commits are those of a group keeping pace.
    const endsNow = acked.map((offsets) => offsets.reduce((end, offset) => Math.max(end, offset + 1), 0));
    say(`  all 3 members consuming (generation ${run.assignedGeneration()}); catching up with the ${endsNow.reduce((sum, end) => sum + end, 0)} records acknowledged so far`);
    await until('the members to catch up with the load', CATCH_UP_TIMEOUT_MS, () => run.coversUpTo(endsNow));
    const steadyFromMs = Date.now();
    const generationBeforeKill = run.assignedGeneration();
    say(`  caught up (spread ${formatSpread(run.spread())}); ${steadyS} s steady`);
    await until(`${steadyS} s of steady consumption`, steadyS * 1000 + GROUP_ASSIGNED_TIMEOUT_MS, () => {
      run.checkAlive();
      return Date.now() >= steadyFromMs + steadyS * 1000;
    });
    if (run.assignedGeneration() !== generationBeforeKill) say('  the group rebalanced during the steady seconds');

    const victim = run.members.at(-1);
    const victimPartitions = victim.assignments.at(-1).partitions;
    const spreadBeforeKill = run.spread();
    const killedMs = Date.now();
    run.watchTakeover(victim, killedMs);
    run.sigkill(victim);
    say(`  SIGKILLed member ${victim.index} (pid ${victim.child.pid}), which owned partitions ${victimPartitions.join(',')}`);
    const takeover = run.takeover;
    await until(`partitions ${victimPartitions.join(',')} to be consumed by the other members`, FAILOVER_TIMEOUT_MS, () => {
      run.checkAlive();
      return victimPartitions.every((partition) => takeover.firstPollMs.has(partition));
    });
    const perPartitionMs = Object.fromEntries(victimPartitions.map((partition) => [partition, takeover.firstPollMs.get(partition) - killedMs]));
    const consumingAgainMs = Math.max(...Object.values(perPartitionMs));
    const reassignedMs = Math.min(...run.running().map((member) => member.assignments.find((assignment) => assignment.atMs >= killedMs)?.atMs ?? Infinity)) - killedMs;
    say(`  consuming again ${consumingAgainMs} ms after the SIGKILL (new assignment after ${reassignedMs} ms)`);

    await sleep(AFTER_TAKEOVER_MS);
    loadStopped = true;
    const load = await loading;
    let skipped = run.unpolled(acked);
    try {
      await until('the survivors to read every acknowledged record', CATCH_UP_TIMEOUT_MS, () => {
        run.checkAlive();
        skipped = run.unpolled(acked);
        return skipped.count === 0;
      });
    } catch (error) {
      // Records never polled are the finding itself: reported, not thrown.
      if (!(error instanceof WaitTimedOut)) throw error;
      say(`  ${error.message}: ${skipped.count} acknowledged records not polled`);
    }
    const commits = run.members.flatMap((member) => member.commits);
    const steadyCommits = commits.filter((commit) => commit.error === undefined && commit.atMs >= steadyFromMs && commit.atMs < killedMs);
    return {
      rate,
      sessionTimeoutMs,
      heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
      steadyS,
      spreadBeforeKill,
      killedMember: victim.index,
      killedPartitions: victimPartitions,
      reassignedMs,
      consumingAgainMs,
      consumingAgainByPartitionMs: perPartitionMs,
      spreadAfter: run.spread().filter((entry) => entry.member !== victim.index),
      acknowledged: load.acknowledged,
      failedSends: load.failed,
      unansweredSends: load.unsettled,
      skipped: skipped.count,
      skippedExamples: skipped.examples,
      polledTwice: run.polledTwice,
      commits: { steady: latencySummary(steadyCommits.map((commit) => commit.ms)), failed: commits.filter((commit) => commit.error !== undefined).length, total: commits.length },
    };
  } finally {
    clearInterval(progress);
    loadStopped = true;
    await loading.catch(() => undefined);
    await producer.close().catch(() => undefined);
    await run.stop();
  }
}

// ---- report ---------------------------------------------------------------------------------

function latencySummary(latencies) {
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (fraction) => (sorted.length === 0 ? null : Number(sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))].toFixed(2)));
  return { count: sorted.length, p50Ms: at(0.5), p99Ms: at(0.99), p999Ms: at(0.999), maxMs: sorted.length === 0 ? null : Number(sorted.at(-1).toFixed(2)) };
}

function formatSpread(spread) {
  return spread.map((entry) => `member ${entry.member}: [${entry.partitions.join(',')}] ${entry.recordsPolled} records`).join('; ');
}

function report(figures) {
  const [one, three] = figures.throughput;
  const { failover: fail } = figures;
  const commits = fail.commits.steady;
  const lines = [
    `load average (1/5/15 min): ${figures.loadAverageBefore.join(' ')} before, ${figures.loadAverageAfter.join(' ')} after`,
    `throughput, ${one.records} records of ${recordSize} B, ${PARTITIONS} partitions, RF ${NODES}:`,
    ...[one, three].map((entry) => `  ${entry.members} member(s): ${entry.recordsPerS} records/s (first record to last ${seconds(entry.firstToLastMs)} s; processes up ${entry.membersStartedMs} ms after spawn, group assigned ${entry.assignedAfterStartMs} ms later; ${entry.rebalancesDuringRead} rebalances while reading; ${entry.polledTwice} polled twice); ${formatSpread(entry.spread)}`),
    `  three / one: x${figures.throughputRatio}`,
    `failover, ${fail.rate} records/s acks=all, session.timeout.ms ${fail.sessionTimeoutMs}, heartbeat ${fail.heartbeatIntervalMs} ms:`,
    `  SIGKILL of member ${fail.killedMember} (partitions ${fail.killedPartitions.join(',')}): new assignment after ${fail.reassignedMs} ms, all its partitions consumed again after ${fail.consumingAgainMs} ms (${Object.entries(fail.consumingAgainByPartitionMs).map(([partition, ms]) => `${partition}: ${ms}`).join(', ')})`,
    `  acknowledged ${fail.acknowledged} (failed sends ${fail.failedSends}), skipped ${fail.skipped}${fail.skipped > 0 ? ` e.g. ${fail.skippedExamples.join(' ')}` : ''}, polled twice ${fail.polledTwice}`,
    `commit latency, commit() after each poll with records, ${fail.steadyS} s steady, 3 members: ${commits.count} commits, p50 ${commits.p50Ms} ms, p99 ${commits.p99Ms} ms, p99.9 ${commits.p999Ms} ms, max ${commits.maxMs} ms; ${fail.commits.failed} of ${fail.commits.total} commits refused over the whole phase (rebalance)`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  if (values.json) process.stdout.write(`${JSON.stringify(figures)}\n`);
}

// ---- run ------------------------------------------------------------------------------------

const dir = values.dir ?? (await mkdtemp(join(tmpdir(), 'runnel-bench-groups-')));
const logDir = join(dir, 'members');
mkdirSync(logDir, { recursive: true });
const loadAverageBefore = loadAverage();
say(`bench:groups: ${NODES} nodes of ${repo} in ${dir}; load average ${loadAverageBefore.join(' ')}`);
let cluster;
let shuttingDown = false;
async function interrupted(signal) {
  if (shuttingDown) return;
  shuttingDown = true;
  say(`bench:groups: ${signal}; stopping members and nodes, data kept in ${dir}`);
  killLiveWorkers();
  await cluster?.kill().catch(() => undefined);
  process.exit(130);
}
process.on('SIGINT', interrupted);
process.on('SIGTERM', interrupted);
// The last resort on any way out: no member or node outlives the benchmark.
process.on('exit', () => {
  killLiveWorkers();
  for (const node of cluster?.running() ?? []) if (node.pid !== undefined) process.kill(node.pid, 'SIGKILL');
});

let ok = false;
try {
  cluster = await LocalCluster.start({ nodes: NODES, dataDir: dir, config: { ...LOCAL_TIMINGS } });
  const bootstrap = cluster.bootstrap;
  const admin = new Admin({ bootstrap, clientId: 'bench-groups' });
  try {
    await admin.createTopics([THROUGHPUT_TOPIC, STEADY_TOPIC].map((name) => ({ name, partitions: PARTITIONS, replicationFactor: NODES })));
    const endOffsets = await preload(bootstrap, admin);
    const throughput = [];
    for (const size of [1, 3]) {
      say(`reading the preload with a group of ${size}`);
      throughput.push(await readAll(bootstrap, logDir, size, endOffsets));
    }
    const failoverFigures = await failover(bootstrap, logDir);
    const figures = {
      records: recordCount,
      recordSize,
      partitions: PARTITIONS,
      replicationFactor: NODES,
      throughput,
      throughputRatio: Number((throughput[1].recordsPerS / throughput[0].recordsPerS).toFixed(2)),
      failover: failoverFigures,
      loadAverageBefore,
      loadAverageAfter: loadAverage(),
    };
    report(figures);
    ok = failoverFigures.skipped === 0;
    if (!ok) say(`bench:groups: ${failoverFigures.skipped} acknowledged records were never polled`);
  } finally {
    await admin.close();
  }
} catch (error) {
  // After Ctrl-C the members are killed under the waits: their deaths are no finding.
  if (!shuttingDown) say(`bench:groups: ${error.stack ?? error.message}`);
} finally {
  killLiveWorkers();
  if (cluster !== undefined) {
    for (const node of cluster.nodes) await writeFile(join(node.dataDir, 'process-output.log'), node.logs()).catch(() => undefined);
    await cluster.stop().catch(() => cluster.kill());
  }
  if (ok && !values.keep && values.dir === undefined) await rm(dir, { recursive: true, force: true });
  else say(`bench:groups: data, node output and member logs kept in ${dir}`);
}
process.exit(ok ? 0 : 1);
