// Shared by the simulator test files: run a range of seeds and fail with the seed.
import { expect } from 'vitest';
import { runSeed, type SimResult } from '../src/sim/index.js';

export interface SweepSummary {
  seeds: number;
  threeNode: number;
  fiveNode: number;
  crashes: number;
  elections: number;
  snapshotsInstalled: number;
  readsServed: number;
  confChanges: number;
  acknowledged: number;
  fsyncsPending: number;
  writesLost: number;
  corruptionsDetected: number;
  rejoinsWithoutDisruption: number;
  probeReadsServed: number;
}

export function sweep(firstSeed: number, count: number): SweepSummary {
  const summary: SweepSummary = {
    seeds: 0, threeNode: 0, fiveNode: 0, crashes: 0, elections: 0, snapshotsInstalled: 0, readsServed: 0, confChanges: 0, acknowledged: 0,
    fsyncsPending: 0, writesLost: 0, corruptionsDetected: 0, rejoinsWithoutDisruption: 0, probeReadsServed: 0,
  };
  for (let seed = firstSeed; seed < firstSeed + count; seed++) {
    let result: SimResult;
    try {
      result = runSeed(seed);
    } catch (error) {
      // The message starts with seed=<n>; replay: node packages/raft/scripts/sim.mjs --seed <n> --trace
      expect.fail((error as Error).message);
    }
    summary.seeds++;
    if (result.nodeCount === 3) summary.threeNode++;
    else summary.fiveNode++;
    summary.crashes += result.crashes;
    summary.elections += result.elections;
    summary.snapshotsInstalled += result.snapshotsInstalled;
    summary.readsServed += result.readsServed;
    summary.confChanges += result.confChanges;
    summary.acknowledged += result.acknowledged;
    summary.fsyncsPending += result.fsyncsPending;
    summary.writesLost += result.writesLost;
    summary.corruptionsDetected += result.corruptionsDetected;
    summary.rejoinsWithoutDisruption += result.rejoinsWithoutDisruption;
    summary.probeReadsServed += result.probeReadsServed;
  }
  return summary;
}

/** The sweep exercised what it claims to: both sizes, every fault kind, the checks once healed. */
export function expectCoverage(summary: SweepSummary): void {
  expect(summary.threeNode).toBeGreaterThan(0);
  expect(summary.fiveNode).toBeGreaterThan(0);
  expect(summary.crashes).toBeGreaterThan(0);
  expect(summary.snapshotsInstalled).toBeGreaterThan(0);
  expect(summary.readsServed).toBeGreaterThan(0);
  expect(summary.confChanges).toBeGreaterThan(0);
  expect(summary.acknowledged).toBeGreaterThan(0);
  expect(summary.fsyncsPending).toBeGreaterThan(0);
  expect(summary.writesLost).toBeGreaterThan(0);
  expect(summary.corruptionsDetected).toBeGreaterThan(0);
  expect(summary.rejoinsWithoutDisruption).toBeGreaterThan(0);
  expect(summary.probeReadsServed).toBeGreaterThan(0);
}
