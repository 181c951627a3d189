// The controller's state machine replicated by the Raft simulator under its faults (issue 4):
// random broker registrations, heartbeats, fencing, topic creation and deletion, AlterPartition
// from current and stale leaders, controlled shutdown and preferred elections. The workload checks
// after every tick that no partition has two leaders in one leader epoch, every leader is in its
// ISR (⊆ replicas), epochs only grow, and nodes at the same applied index hold the same image.
// A failure names the seed: node packages/controller/scripts/sim.mjs --seed S --trace
import { describe, expect, it } from 'vitest';
import { SimulationFailure } from '@runnel/raft/sim';
import { runControllerSeed } from '../src/sim/index.js';

function sweep(first: number, count: number, mode: 'kraft' | 'applied-image' = 'kraft') {
  const totals = { batchesApplied: 0, batchesAppliedFromEarlierTerms: 0, fenced: 0, topicsCreated: 0, topicsDeleted: 0, alterPartitionsAccepted: 0, alterPartitionsRejected: 0, registrations: 0 };
  for (let seed = first; seed < first + count; seed++) {
    let result;
    try {
      result = runControllerSeed(seed, { mode });
    } catch (error) {
      throw new Error(`seed=${seed}: ${(error as Error).message}\nreplay: node packages/controller/scripts/sim.mjs --seed ${seed} --trace`);
    }
    for (const key of Object.keys(totals) as (keyof typeof totals)[]) totals[key] += result.controller[key];
  }
  return totals;
}

describe('controller in the Raft simulator', () => {
  for (let chunk = 0; chunk < 3; chunk++) {
    const first = 1 + chunk * 100;
    it(`seeds ${first}..${first + 99}`, () => {
      const totals = sweep(first, 100);
      // The workload reaches what it is meant to exercise.
      expect(totals.batchesApplied).toBeGreaterThan(1000);
      expect(totals.fenced).toBeGreaterThan(0);
      expect(totals.topicsCreated).toBeGreaterThan(0);
      expect(totals.topicsDeleted).toBeGreaterThan(0);
      expect(totals.alterPartitionsAccepted).toBeGreaterThan(0);
      expect(totals.alterPartitionsRejected).toBeGreaterThan(0);
      expect(totals.batchesAppliedFromEarlierTerms).toBeGreaterThan(0);
    });
  }

  it('a leader deciding on its applied image while its own batches are pending breaks the image (the checks can fail)', () => {
    let failure: unknown;
    for (let seed = 1; seed <= 20 && failure === undefined; seed++) {
      try {
        runControllerSeed(seed, { mode: 'applied-image' });
      } catch (error) {
        failure = error;
      }
    }
    expect(failure).toBeInstanceOf(SimulationFailure);
    expect((failure as SimulationFailure).message).toMatch(/seed=\d+/);
  });
});
