#!/usr/bin/env node
// The controller's state machine in the Raft simulator, from the built dist/ (build first:
// node node_modules/typescript/bin/tsc -b packages/raft packages/controller).
//   node packages/controller/scripts/sim.mjs --seed 42 [--trace] [--mode applied-image]
//   node packages/controller/scripts/sim.mjs --seeds 20000 [--start 1] [--time-limit-s 300]
// Exit code 1 on the first failing seed (printed as seed=<n> with the invariant).
import { parseArgs } from 'node:util';
import { swarmOptions } from '@runnel/raft/sim';
import { runControllerSeed } from '../dist/sim/index.js';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    seeds: { type: 'string' },
    start: { type: 'string', default: '1' },
    trace: { type: 'boolean', default: false },
    mode: { type: 'string', default: 'kraft' },
    'time-limit-s': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});

if (values.help || (values.seed === undefined && values.seeds === undefined)) {
  process.stdout.write('usage: sim.mjs --seed S [--trace] | --seeds N [--start S] [--time-limit-s T]   [--mode kraft|applied-image]\n');
  process.exit(values.help ? 0 : 2);
}
const workloadOptions = { mode: values.mode };

if (values.seed !== undefined) {
  const seed = Number(values.seed);
  process.stdout.write(`options ${JSON.stringify(swarmOptions(seed))}\n`);
  const trace = values.trace ? (line) => process.stdout.write(`${line}\n`) : undefined;
  const started = performance.now();
  try {
    const result = runControllerSeed(seed, workloadOptions, trace);
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
  const totals = {};
  let ran = 0;
  let lastReport = started;
  for (let seed = start; seed < start + count; seed++) {
    try {
      const result = runControllerSeed(seed, workloadOptions);
      for (const [key, value] of Object.entries(result.controller)) totals[key] = (totals[key] ?? 0) + value;
    } catch (error) {
      process.stdout.write(`FAILED after ${ran} seeds: ${error.message}\nreplay: node packages/controller/scripts/sim.mjs --seed ${seed} --trace${values.mode === 'kraft' ? '' : ` --mode ${values.mode}`}\n`);
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
  process.stdout.write(`ok ${ran} seeds (${start}..${start + ran - 1}) in ${seconds.toFixed(1)} s\n${JSON.stringify(totals)}\n`);
}
