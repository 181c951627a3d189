// The simulator's checkers must be able to fail: feed them violations directly.
import { describe, expect, it } from 'vitest';
import { InvariantChecker, runSimulation, swarmOptions, type NodeObservation } from '../src/sim/index.js';
import type { Entry, Role } from '../src/index.js';

function node(term: number, role: Role, log: number[], commit = 0, vote = 0): NodeObservation {
  return { term, vote, role, commit, firstIndex: 1, lastIndex: log.length, termAt: (index) => (index === 0 ? 0 : log[index - 1]) };
}

const entry = (index: number, term: number, text: string): Entry => ({ index, term, type: 'normal', data: new TextEncoder().encode(text) });

describe('invariant checker', () => {
  it('flags two leaders in one term (election safety)', () => {
    const checker = new InvariantChecker();
    checker.observe(1, node(2, 'leader', [1]));
    expect(() => checker.observe(2, node(2, 'leader', [1]))).toThrow(/election safety/);
  });

  it('flags a new leader missing a committed entry (leader completeness)', () => {
    const checker = new InvariantChecker();
    checker.observe(1, node(1, 'leader', [1, 1], 2));
    expect(() => checker.observe(2, node(2, 'leader', [1]))).toThrow(/leader completeness/);
  });

  it('flags the same index and term with different predecessors (log matching)', () => {
    const checker = new InvariantChecker();
    checker.onPersistEntries(1, [entry(2, 2, 'a')], node(2, 'follower', [1, 2]));
    expect(() => checker.onPersistEntries(2, [entry(2, 2, 'a')], node(2, 'follower', [2, 2]))).toThrow(/log matching/);
    expect(() => checker.onPersistEntries(3, [entry(2, 2, 'b')], node(2, 'follower', [1, 2]))).toThrow(/log matching/);
  });

  it('flags two values applied at one index (state machine safety)', () => {
    const checker = new InvariantChecker();
    checker.onApply(1, entry(3, 1, 'x'));
    expect(() => checker.onApply(2, entry(3, 1, 'y'))).toThrow(/state machine safety/);
  });

  it('flags a term or vote going backwards across a restart', () => {
    const checker = new InvariantChecker();
    checker.onPersistHardState(1, { term: 3, vote: 2, commit: 1 });
    expect(() => checker.onRestart(1, node(2, 'follower', [1]))).toThrow(/term never goes backwards/);
    expect(() => checker.onRestart(1, node(3, 'follower', [1], 0, 3))).toThrow(/vote never changes/);
    expect(() => checker.onPersistHardState(1, { term: 3, vote: 3, commit: 1 })).toThrow(/one vote per term/);
    expect(() => checker.onPersistHardState(1, { term: 3, vote: 2, commit: 0 })).toThrow(/durable commit/);
  });

  it('flags a commit index going backwards on a node', () => {
    const checker = new InvariantChecker();
    checker.observe(1, node(1, 'follower', [1, 1], 2));
    expect(() => checker.observe(1, node(1, 'follower', [1, 1], 1))).toThrow(/commit index never goes backwards/);
  });
});

describe('simulator', () => {
  it('replays a seed exactly', () => {
    const traceOf = (seed: number): string[] => {
      const lines: string[] = [];
      runSimulation(swarmOptions(seed), (line) => lines.push(line));
      return lines;
    };
    const first = traceOf(12345);
    expect(first.length).toBeGreaterThan(100);
    expect(traceOf(12345)).toEqual(first);
    expect(traceOf(12346)).not.toEqual(first);
  });

  it('fails with the seed and the invariant name', () => {
    // No time at all for the liveness phase: nobody can be elected in zero ticks.
    const options = { ...swarmOptions(5), safetyTicks: 0, livenessTicksMax: 0 };
    expect(() => runSimulation(options)).toThrow(/^seed=5 tick=0 invariant "liveness" violated/);
  });
});
