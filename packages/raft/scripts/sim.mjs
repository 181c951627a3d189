#!/usr/bin/env node
// Runs the Raft simulator from the built dist/ (build first: node node_modules/typescript/bin/tsc -b packages/raft).
//   node packages/raft/scripts/sim.mjs --seed 42 [--trace]     replay one seed exactly
//   node packages/raft/scripts/sim.mjs --seeds 20000 [--start 1] [--time-limit-s 300]
//                                                              sweep seeds start..start+N-1
// Exit code 1 on the first failing seed (printed as seed=<n> with the invariant).
import { parseArgs } from 'node:util';
import { runSeed, swarmOptions } from '../dist/sim/index.js';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    seeds: { type: 'string' },
    start: { type: 'string', default: '1' },
    trace: { type: 'boolean', default: false },
    'time-limit-s': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});

if (values.help || (values.seed === undefined && values.seeds === undefined)) {
  process.stdout.write('usage: sim.mjs --seed S [--trace] | --seeds N [--start S] [--time-limit-s T]\n');
  process.exit(values.help ? 0 : 2);
}

if (values.seed !== undefined) {
  const seed = Number(values.seed);
  process.stdout.write(`options ${JSON.stringify(swarmOptions(seed))}\n`);
  const trace = values.trace ? (line) => process.stdout.write(`${line}\n`) : undefined;
  const started = performance.now();
  try {
    const result = runSeed(seed, trace);
    process.stdout.write(`ok ${JSON.stringify(result)} in ${(performance.now() - started).toFixed(0)} ms\n`);
  } catch (error) {
    process.stdout.write(`FAILED ${error.message}\n`);
    process.exit(1);
  }
} else {
  const count = Number(values.seeds);
  const start = Number(values.start);
  const timeLimitMs = values['time-limit-s'] === undefined ? Infinity : Number(values['time-limit-s']) * 1000;
  const started = performance.now();
  let ran = 0;
  let lastReport = started;
  for (let seed = start; seed < start + count; seed++) {
    try {
      runSeed(seed);
    } catch (error) {
      process.stdout.write(`FAILED after ${ran} seeds: ${error.message}\nreplay: node packages/raft/scripts/sim.mjs --seed ${seed} --trace\n`);
      process.exit(1);
    }
    ran++;
    const now = performance.now();
    if (now - lastReport > 5000) {
      lastReport = now;
      process.stdout.write(`  ${ran}/${count} seeds, ${((now - started) / 1000).toFixed(1)} s\n`);
    }
    if (now - started > timeLimitMs) break;
  }
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(`ok: ${ran} seeds (${start}..${start + ran - 1}) passed in ${seconds.toFixed(1)} s (${((seconds * 1000) / ran).toFixed(1)} ms/seed)\n`);
}
