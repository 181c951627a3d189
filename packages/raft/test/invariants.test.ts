// The simulator's checkers must be able to fail: feed them violations directly.
import { describe, expect, it } from 'vitest';
import { InvariantChecker, SimDisk, runSimulation, swarmOptions, type DurableView, type NodeObservation } from '../src/sim/index.js';
import { MemoryStorage, type Entry, type HardState, type Message, type Role } from '../src/index.js';

function node(term: number, role: Role, log: number[], commit = 0, vote = 0): NodeObservation {
  return { term, vote, role, commit, firstIndex: 1, lastIndex: log.length, termAt: (index) => (index === 0 ? 0 : log[index - 1]) };
}

const entry = (index: number, term: number, text: string): Entry => ({ index, term, type: 'normal', data: new TextEncoder().encode(text) });

/** A disk holding `log` (terms of entries 1..n) and `hardState`. */
function disk(log: number[], hardState: HardState, snapshotIndex = 0): DurableView {
  return { hardState, snapshotIndex, lastIndex: log.length, termAt: (index) => (index === 0 ? 0 : log[index - 1]) };
}

const voteResponse = (from: number, to: number, term: number): Message => ({ type: 'voteResponse', from, to, term, reject: false });
const appendResponse = (from: number, to: number, term: number, index: number): Message =>
  ({ type: 'appendResponse', from, to, term, index, reject: false, rejectHint: 0, logTerm: 0 });

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

describe('promises on the wire and protocol rules', () => {
  it('flags a vote sent before it is durable', () => {
    const checker = new InvariantChecker();
    expect(() => checker.onSend(2, voteResponse(2, 1, 3), disk([1], { term: 3, vote: 0, commit: 0 }))).toThrow(/a vote is durable when sent/);
    expect(() => checker.onSend(2, voteResponse(2, 1, 3), disk([1], { term: 2, vote: 1, commit: 0 }))).toThrow(/a vote is durable when sent/);
    const request: Message = { type: 'vote', from: 1, to: 2, term: 3, lastIndex: 1, lastTerm: 1, transfer: false };
    expect(() => checker.onSend(1, request, disk([1], { term: 3, vote: 0, commit: 0 }))).toThrow(/a vote is durable when sent/);
    checker.onSend(2, voteResponse(2, 1, 3), disk([1], { term: 3, vote: 1, commit: 0 }));
    checker.onSend(1, request, disk([1], { term: 3, vote: 1, commit: 0 }));
    // A durable term past the message's: that term's vote can never be cast again.
    checker.onSend(2, voteResponse(2, 1, 3), disk([1], { term: 4, vote: 0, commit: 0 }));
  });

  it('flags an acknowledgement of entries not durable, or not the leader\'s', () => {
    const checker = new InvariantChecker();
    const hardState = { term: 2, vote: 0, commit: 0 };
    expect(() => checker.onSend(2, appendResponse(2, 1, 2, 3), disk([1, 2], hardState))).toThrow(/an acknowledged append is durable when sent/);
    expect(() => checker.onSend(2, appendResponse(2, 1, 2, 2), disk([1, 1], hardState), () => 2)).toThrow(/an acknowledged append is durable/);
    checker.onSend(2, appendResponse(2, 1, 2, 2), disk([1, 2], hardState), () => 2);
    checker.onSend(2, appendResponse(2, 1, 2, 5), disk([], hardState, 5)); // inside a snapshot
    checker.onSend(2, appendResponse(2, 1, 2, 3), disk([1, 2], { term: 3, vote: 0, commit: 0 })); // durable term moved past
  });

  it('flags a pre-vote that changes the receiver\'s term, and a pre-candidate that changes its own', () => {
    const checker = new InvariantChecker();
    const preVote: Message = { type: 'preVote', from: 1, to: 2, term: 3, lastIndex: 0, lastTerm: 0, transfer: false };
    expect(() => checker.onDeliver(2, preVote, 2, node(3, 'follower', []))).toThrow(/pre-vote request leaves the receiver's term unchanged/);
    checker.onDeliver(2, preVote, 2, node(2, 'follower', []));
    checker.observe(1, node(2, 'follower', []));
    expect(() => checker.observe(1, node(3, 'preCandidate', []))).toThrow(/a pre-candidate keeps its term/);
    checker.observe(3, node(2, 'follower', []));
    checker.observe(3, node(2, 'preCandidate', []));
  });

  it('flags a leader committing an earlier-term entry, and a commit not durable on a quorum', () => {
    const checker = new InvariantChecker();
    const disks = new Map([[1, disk([1, 2], { term: 2, vote: 1, commit: 0 })], [2, disk([1], { term: 2, vote: 1, commit: 0 })], [3, disk([1, 2], { term: 2, vote: 0, commit: 0 })]]);
    expect(() => checker.onLeaderCommit(1, 3, 2, 2, [1, 2, 3], (id) => disks.get(id)!)).toThrow(/only entries of its term/);
    checker.onLeaderCommit(1, 2, 2, 2, [1, 2, 3], (id) => disks.get(id)!);
    disks.set(3, disk([1], { term: 2, vote: 0, commit: 0 }));
    expect(() => checker.onLeaderCommit(1, 2, 2, 2, [1, 2, 3], (id) => disks.get(id)!)).toThrow(/a committed entry is durable on a quorum/);
  });
});

describe('simulated disk', () => {
  it('finds an entry whose bytes changed after it was written', () => {
    const simDisk = new SimDisk(new MemoryStorage({ voters: [1], learners: [] }));
    simDisk.writeEntries([entry(1, 1, 'a'), entry(2, 1, 'bb'), entry(3, 1, 'c')]);
    simDisk.writeHardState({ term: 1, vote: 1, commit: 3 });
    expect(simDisk.findDamage()).toBeUndefined();
    let draws = 0;
    const damaged = simDisk.damageOneEntry(() => (draws++ === 0 ? 1 : 0), 3);
    expect(damaged).toBe(2);
    expect(simDisk.findDamage()).toBe(2);
    expect(simDisk.storage.hardStateNow()).toEqual({ term: 1, vote: 1, commit: 3 });
  });

  it('a node that refuses a damaged log is caught if it starts anyway (the corruption fault bites)', () => {
    const options = { ...swarmOptions(1), corruptionRate: 1 };
    expect(runSimulation(options).corruptionsDetected).toBe(1);
    expect(() => runSimulation({ ...options, verifyChecksumsAtOpen: false })).toThrow(/^seed=1 .*invariant "state machine safety"/);
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
