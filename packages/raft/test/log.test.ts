// The log's append path checks everything before it changes anything: a broken invariant stops the
// node, and the state it leaves behind (the log, the configuration in force) is what it was.
import { describe, expect, it } from 'vitest';
import { RaftLog } from '../src/log.js';
import { MemoryStorage, RawNode, RaftInvariantError, Xoshiro128, encodeConfChange, type Entry } from '../src/index.js';

const entry = (index: number, term: number, type: Entry['type'] = 'normal', data: Uint8Array = new Uint8Array(0)): Entry => ({ index, term, type, data });

function logWithCommitted(last: number, committed: number): RaftLog {
  const storage = new MemoryStorage({ voters: [1, 2, 3], learners: [] });
  storage.append(Array.from({ length: last }, (_, k) => entry(k + 1, 1)));
  return new RaftLog(storage, committed, 0);
}

describe('RaftLog.append', () => {
  it.each([
    ['committed entries are never overwritten', [entry(2, 2)]],
    ['log append is contiguous', [entry(5, 2)]],
    ['appended entries are contiguous', [entry(4, 2), entry(6, 2)]],
    ['log terms never go backwards', [entry(4, 1), entry(5, 0)]],
  ])('refuses (%s) before it tells anyone or changes anything', (invariant, entries) => {
    const log = logWithCommitted(3, 2);
    const told: Entry[][] = [];
    log.onAppend = (appended) => told.push([...appended]);
    expect(() => log.append(entries)).toThrow(new RegExp(`"${invariant}"`));
    expect(told).toEqual([]);
    expect([log.lastIndex(), log.unstableEntries.length, log.committed]).toEqual([3, 0, 2]);
  });
});

describe('configuration entries', () => {
  it('a malformed config entry in an append leaves the configuration in force as it was', () => {
    const node = new RawNode({ id: 2, voters: [1, 2, 3], electionTicks: 10, heartbeatTicks: 1, storage: new MemoryStorage({ voters: [1, 2, 3], learners: [] }), random: new Xoshiro128(1) });
    const entries = [entry(1, 1, 'config', encodeConfChange({ type: 'addVoter', nodeId: 4 }, { voters: [1, 2, 3, 4], learners: [] })), entry(2, 1, 'config', new Uint8Array([7, 7, 7]))];
    let thrown: unknown;
    try {
      node.step({ type: 'append', from: 1, to: 2, term: 1, prevIndex: 0, prevTerm: 0, entries, commit: 0 });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(RaftInvariantError);
    expect((thrown as RaftInvariantError).invariant).toBe('config entry is well formed');
    expect(node.lastIndex).toBe(0);
    // Neither entry is in the log, so neither may be in force, now or at any later index.
    expect(node.confState()).toEqual({ voters: [1, 2, 3], learners: [] });
    expect(node.confStateAt(10)).toEqual({ voters: [1, 2, 3], learners: [] });
  });
});
