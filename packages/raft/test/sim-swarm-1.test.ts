// Simulator swarm, seeds 1..1000 (VOPR-style random options per seed; safety then liveness).
import { describe, it } from 'vitest';
import { expectCoverage, sweep } from './simulator.js';

describe('simulator swarm 1/4', () => {
  for (let chunk = 0; chunk < 4; chunk++) {
    const first = 1 + chunk * 250;
    it(`seeds ${first}..${first + 249}`, () => {
      expectCoverage(sweep(first, 250));
    });
  }
});
