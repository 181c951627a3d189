// Simulator swarm, seeds 3001..4000 (VOPR-style random options per seed; safety then liveness).
import { describe, it } from 'vitest';
import { expectCoverage, sweep } from './simulator.js';

describe('simulator swarm 4/4', () => {
  for (let chunk = 0; chunk < 4; chunk++) {
    const first = 3001 + chunk * 250;
    it(`seeds ${first}..${first + 249}`, () => {
      expectCoverage(sweep(first, 250));
    });
  }
});
