#!/usr/bin/env node
// Mutation test of the simulator: does it catch a Raft core that breaks a rule?
//
// Each mutant is one textual patch to one file of the core (packages/raft/src). The runner copies
// the core and the simulator into a scratch directory (compiled with TypeScript's transpiler, one
// file at a time), applies the patch there — the sources are never touched — and runs simulator
// seeds 1..N against it in worker threads until a seed fails. A patch that does not match the
// source exactly once is an error, never "caught": the mutant would be testing nothing. The
// unmutated core runs the same seeds and must pass all of them.
//
//   node packages/raft/scripts/mutants.mjs [--seeds 2000] [--workers 2] [--only name,name]
//
// Exit code 0 only if the unmutated core passes every seed and every mutant is caught.
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

/** The rules broken, each as a patch: `find` must occur exactly once in `file`. */
const MUTANTS = [
  {
    id: 'a',
    name: 'vote-not-persisted',
    rule: 'the vote is left out of the persisted hard state',
    file: 'rawNode.ts',
    find: 'return { term: this.raft.term, vote: this.raft.vote, commit: this.raft.log.committed };',
    replace: 'return { term: this.raft.term, vote: 0, commit: this.raft.log.committed };',
  },
  {
    id: 'b',
    name: 'prevote-raises-term',
    rule: "a PreVote request raises the receiver's term",
    file: 'raft.ts',
    find: "if (message.type === 'preVote') return true;",
    replace: '',
  },
  {
    id: 'c',
    name: 'precandidate-bumps-term',
    rule: 'a pre-candidate increments its own term',
    file: 'raft.ts',
    find: "this.role = 'preCandidate';",
    replace: "this.term++;\n    this.vote = NONE;\n    this.role = 'preCandidate';",
  },
  {
    id: 'd',
    name: 'read-index-never-confirmed',
    rule: "ReadIndex rounds are never confirmed (the leader ignores the heartbeat acks)",
    file: 'raft.ts',
    find: 'this.readAcks.set(response.from, Math.max(this.readAcks.get(response.from) ?? 0, response.readId));',
    replace: '',
  },
  {
    id: 'e',
    name: 'no-leader-lease',
    rule: 'vote requests are not ignored within the leader lease',
    file: 'raft.ts',
    find: 'if (inLease && !message.transfer) return false;',
    replace: '',
  },
  {
    id: 'f',
    name: 'stable-to-ignores-term',
    rule: 'stableTo ignores the term of the entry it marks stable',
    file: 'log.ts',
    find: 'if (this.term(index) !== term) return;',
    replace: '',
  },
  {
    id: 'g',
    name: 'vote-without-log-check',
    rule: "a vote is granted without the candidate's log being up to date",
    file: 'raft.ts',
    find: 'if (canVote && this.log.isUpToDate(request.lastIndex, request.lastTerm)) {',
    replace: 'if (canVote) {',
  },
  {
    id: 'h',
    name: 'commit-earlier-term',
    rule: 'an earlier-term entry is committed by counting replicas',
    file: 'raft.ts',
    find: 'if (index <= this.log.committed || this.log.term(index) !== this.term) return false;',
    replace: 'if (index <= this.log.committed) return false;',
  },
  {
    id: 'i',
    name: 'keep-conflicting-tail',
    rule: 'a conflicting tail is not truncated (only new entries are appended)',
    file: 'log.ts',
    find: 'if (conflictIndex !== 0) this.append(entries.slice(conflictIndex - prevIndex - 1));',
    replace: 'if (conflictIndex > this.lastIndex()) this.append(entries.slice(conflictIndex - prevIndex - 1));',
  },
];

const here = dirname(fileURLToPath(import.meta.url));
const sourceRoot = join(here, '..', 'src');
/** The core and the simulator; the host (LevelDB, gRPC) and the example are not needed. */
const SKIPPED_DIRECTORIES = new Set(['host', 'example']);
const JOB_TIMEOUT_MS = 10 * 60_000;

if (isMainThread) {
  await main();
} else {
  runJobsInWorker();
}

// ---- worker: run seeds against one copy of the core ----------------------------------------------

function runJobsInWorker() {
  parentPort.on('message', async (job) => {
    const { runSeed } = await import(pathToFileURL(join(job.dir, 'sim', 'index.js')).href);
    const started = performance.now();
    let failure;
    let seed = job.firstSeed;
    for (; seed <= job.lastSeed; seed++) {
      try {
        runSeed(seed);
      } catch (error) {
        failure = { seed, invariant: error.invariant ?? 'no unexpected exception', message: String(error.message).split('\n')[0] };
        break;
      }
    }
    parentPort.postMessage({ seedsRun: seed - job.firstSeed + (failure ? 1 : 0), failure, ms: performance.now() - started });
  });
}

// ---- main: scratch copies, scheduling, the report ---------------------------------------------

async function main() {
  const { values } = parseArgs({
    options: {
      seeds: { type: 'string', default: '2000' },
      workers: { type: 'string', default: '2' },
      only: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('usage: mutants.mjs [--seeds 2000] [--workers 2] [--only name,name]\n');
    return;
  }
  const seedCount = Number(values.seeds);
  const workerCount = Math.max(1, Number(values.workers));
  const only = values.only?.split(',');
  const mutants = only === undefined ? MUTANTS : MUTANTS.filter((m) => only.includes(m.name) || only.includes(m.id));
  const started = performance.now();
  const ts = (await import('typescript')).default;
  const scratch = mkdtempSync(join(tmpdir(), 'runnel-raft-mutants-'));
  try {
    const sources = readSources(sourceRoot);
    const baselineDir = join(scratch, 'unmutated');
    writeTranspiled(ts, sources, baselineDir);
    const jobs = [];
    const rows = [];
    for (const mutant of mutants) {
      const row = { mutant, status: 'pending' };
      rows.push(row);
      const source = sources.get(mutant.file);
      const occurrences = source === undefined ? 0 : source.split(mutant.find).length - 1;
      if (occurrences !== 1) {
        row.status = 'error';
        row.detail = `patch does not apply: found ${occurrences} times in src/${mutant.file}`;
        continue;
      }
      const patched = new Map(sources);
      patched.set(mutant.file, source.replace(mutant.find, () => mutant.replace));
      const dir = join(scratch, mutant.name);
      writeTranspiled(ts, patched, dir);
      jobs.push({ row, dir, firstSeed: 1, lastSeed: seedCount });
    }
    // The unmutated core in chunks, so both workers share it; mutants first (most fall at once).
    const baseline = { chunks: [], failure: undefined };
    const chunkSize = Math.ceil(seedCount / (4 * workerCount));
    for (let first = 1; first <= seedCount; first += chunkSize) {
      const chunk = { firstSeed: first, lastSeed: Math.min(seedCount, first + chunkSize - 1) };
      baseline.chunks.push(chunk);
      jobs.push({ baseline: chunk, dir: baselineDir, firstSeed: chunk.firstSeed, lastSeed: chunk.lastSeed });
    }
    await runJobs(jobs, workerCount, (job, result) => {
      if (job.baseline !== undefined) {
        job.baseline.result = result;
        if (result.failure !== undefined && (baseline.failure === undefined || result.failure.seed < baseline.failure.seed)) baseline.failure = result.failure;
        return;
      }
      const row = job.row;
      row.ms = result.ms;
      if (result.error !== undefined) {
        row.status = 'error';
        row.detail = result.error;
      } else if (result.failure !== undefined) {
        row.status = 'caught';
        row.seed = result.failure.seed;
        row.invariant = result.failure.invariant;
        row.detail = result.failure.message;
      } else {
        row.status = 'survived';
        row.detail = `passed seeds 1..${seedCount}`;
      }
      process.stdout.write(`  (${row.mutant.id}) ${row.mutant.name}: ${row.status}${row.seed ? ` at seed ${row.seed}` : ''}\n`);
    });
    const baselineErrors = baseline.chunks.filter((chunk) => chunk.result?.error !== undefined).map((chunk) => chunk.result.error);
    report(rows, baseline, baselineErrors, seedCount, (performance.now() - started) / 1000);
    const ok = baseline.failure === undefined && baselineErrors.length === 0 && rows.every((row) => row.status === 'caught');
    process.exitCode = ok ? 0 : 1;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** src/**.ts (less the host and the example), keyed by path relative to src. */
function readSources(root) {
  const sources = new Map();
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!SKIPPED_DIRECTORIES.has(entry.name)) walk(path);
      } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
        sources.set(relative(root, path), readFileSync(path, 'utf8'));
      }
    }
  };
  walk(root);
  return sources;
}

/** ES modules as tsc emits them for this package (ES2022, imports kept as written). */
function writeTranspiled(ts, sources, dir) {
  for (const [file, source] of sources) {
    const output = ts.transpileModule(source, {
      fileName: file,
      compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, verbatimModuleSyntax: true },
      reportDiagnostics: true,
    });
    if (output.diagnostics?.length) {
      const message = ts.flattenDiagnosticMessageText(output.diagnostics[0].messageText, '\n');
      throw new Error(`src/${file} does not transpile: ${message}`);
    }
    const target = join(dir, file.replace(/\.ts$/, '.js'));
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, output.outputText);
  }
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
}

/** Runs jobs on `workerCount` threads; a job that exceeds its time budget is reported as an error. */
function runJobs(jobs, workerCount, onResult) {
  const queue = [...jobs];
  const workerPath = fileURLToPath(import.meta.url);
  return new Promise((resolve) => {
    let running = 0;
    const startWorker = () => {
      const job = queue.shift();
      if (job === undefined) {
        if (running === 0) resolve();
        return;
      }
      running++;
      const worker = new Worker(workerPath);
      const finish = (result) => {
        clearTimeout(timer);
        worker.removeAllListeners();
        void worker.terminate();
        onResult(job, result);
        running--;
        startWorker();
        if (running === 0 && queue.length === 0) resolve();
      };
      const timer = setTimeout(() => finish({ error: `no result within ${JOB_TIMEOUT_MS / 60_000} minutes` }), JOB_TIMEOUT_MS);
      worker.on('message', (result) => finish(result));
      worker.on('error', (error) => finish({ error: `worker failed: ${error.message}` }));
      worker.postMessage({ dir: job.dir, firstSeed: job.firstSeed, lastSeed: job.lastSeed });
    };
    for (let k = 0; k < workerCount; k++) startWorker();
  });
}

function report(rows, baseline, baselineErrors, seedCount, seconds) {
  const table = [['', 'mutation', 'rule broken', 'result', 'first seed', 'invariant', 'time']];
  for (const row of rows) {
    const result = row.status === 'caught' ? 'caught' : row.status === 'survived' ? 'SURVIVED' : 'ERROR';
    table.push([
      `(${row.mutant.id})`,
      row.mutant.name,
      row.mutant.rule,
      result,
      row.seed === undefined ? '-' : String(row.seed),
      row.invariant ?? (row.status === 'caught' ? '' : row.detail ?? ''),
      row.ms === undefined ? '-' : `${(row.ms / 1000).toFixed(1)} s`,
    ]);
  }
  const widths = table[0].map((_, column) => Math.max(...table.map((line) => line[column].length)));
  const format = (line) => line.map((cell, column) => cell.padEnd(widths[column])).join('  ').trimEnd();
  process.stdout.write(`\nSimulator mutation test: seeds 1..${seedCount} per mutant, stopping at the first failing seed\n\n`);
  process.stdout.write(`${format(table[0])}\n${widths.map((width) => '-'.repeat(width)).join('  ')}\n`);
  for (const line of table.slice(1)) process.stdout.write(`${format(line)}\n`);
  for (const row of rows) {
    if (row.status === 'caught') process.stdout.write(`\n(${row.mutant.id}) seed=${row.seed}: ${row.detail.slice(0, 240)}`);
  }
  process.stdout.write('\n\n');
  if (baseline.failure !== undefined) {
    process.stdout.write(`UNMUTATED CORE FAILS seed ${baseline.failure.seed}: ${baseline.failure.message}\n`);
  } else if (baselineErrors.length > 0) {
    process.stdout.write(`UNMUTATED CORE: ${baselineErrors.join('; ')}\n`);
  } else {
    process.stdout.write(`unmutated core: seeds 1..${seedCount} pass\n`);
  }
  const caught = rows.filter((row) => row.status === 'caught').length;
  process.stdout.write(`${caught} of ${rows.length} mutants caught in ${seconds.toFixed(0)} s\n`);
}
