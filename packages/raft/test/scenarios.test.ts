// Scenario tests in the style of etcd's interaction tests: a hand-driven cluster, one behaviour each.
import { describe, expect, it } from 'vitest';
import { RaftError, RawNode, encodeConfChange } from '../src/index.js';
import { Cluster } from './cluster.js';

const encode = (text: string): Uint8Array => new TextEncoder().encode(text);

describe('elections', () => {
  it('elects the campaigning node and commits an empty entry of its term', () => {
    const cluster = new Cluster(3);
    cluster.elect(1);
    const status = cluster.raw(1).status();
    expect(status.role).toBe('leader');
    expect(status.term).toBe(1);
    for (const id of [1, 2, 3]) {
      expect(cluster.raw(id).leader).toBe(1);
      expect(cluster.node(id).applied.map((entry) => [entry.index, entry.term, entry.type])).toEqual([[1, 1, 'empty']]);
    }
  });

  it('a partitioned node rejoining does not depose a healthy leader (PreVote)', () => {
    const cluster = new Cluster(3);
    cluster.elect(1);
    cluster.isolate(3);
    cluster.tickAll(60); // six election timeouts: node 3 keeps pre-campaigning, alone
    expect(cluster.raw(3).term).toBe(1); // a pre-vote never bumps the term
    expect(cluster.raw(3).role).not.toBe('leader');
    cluster.heal();
    cluster.tickAll(30);
    expect(cluster.raw(1).role).toBe('leader');
    expect(cluster.raw(1).term).toBe(1);
    expect(cluster.raw(3).leader).toBe(1);
  });

  it('without PreVote the same rejoin does depose the leader (the test can fail)', () => {
    const cluster = new Cluster(3, { preVote: false, checkQuorum: false });
    cluster.elect(1);
    cluster.isolate(3);
    cluster.tickAll(60);
    expect(cluster.raw(3).term).toBeGreaterThan(1);
    cluster.heal();
    cluster.tickAll(30);
    expect(cluster.raw(1).term).toBeGreaterThan(1); // the old leader saw the inflated term
  });

  it('a leader isolated from the majority steps down within an election timeout (CheckQuorum)', () => {
    const cluster = new Cluster(3);
    cluster.elect(1);
    cluster.isolate(1);
    let ticks = 0;
    while (cluster.raw(1).role === 'leader' && ticks < 100) {
      cluster.tick(1);
      ticks++;
    }
    expect(cluster.raw(1).role).toBe('follower');
    expect(ticks).toBeLessThanOrEqual(2 * 10); // at most two check rounds after the last contact
    expect(() => cluster.raw(1).propose(encode('x'))).toThrow(RaftError);
  });

  it('without CheckQuorum an isolated leader stays leader (the test can fail)', () => {
    const cluster = new Cluster(3, { checkQuorum: false });
    cluster.elect(1);
    cluster.isolate(1);
    for (let k = 0; k < 100; k++) cluster.tick(1);
    expect(cluster.raw(1).role).toBe('leader');
  });

  it('followers that hear from a leader ignore vote requests (leader lease)', () => {
    const cluster = new Cluster(3, { preVote: false });
    cluster.elect(1);
    cluster.raw(3).campaign(); // a disruptive candidate at term 2
    cluster.stabilize();
    expect(cluster.raw(1).role).toBe('leader');
    expect(cluster.raw(2).term).toBe(1);
  });
});

describe('replication', () => {
  it('replicates proposals and commits them everywhere', () => {
    const cluster = new Cluster(5);
    cluster.elect(1);
    for (let k = 0; k < 10; k++) cluster.propose(1, `v${k}`);
    cluster.stabilize();
    for (const id of [1, 2, 3, 4, 5]) expect(cluster.appliedTexts(id)).toEqual(Array.from({ length: 10 }, (_, k) => `v${k}`));
  });

  it('non-leaders drop proposals', () => {
    const cluster = new Cluster(3);
    cluster.elect(1);
    expect(() => cluster.raw(2).propose(encode('x'))).toThrow(/ProposalDropped/);
  });

  it('log divergence: an old leader\'s uncommitted entries of an old term are overwritten', () => {
    const cluster = new Cluster(3);
    cluster.elect(1);
    cluster.isolate(1);
    for (let k = 0; k < 5; k++) cluster.propose(1, `lost${k}`); // term 1, never committed
    const leader = cluster.awaitLeader([2, 3]); // term 2, once the lease on node 1 ran out
    for (let k = 0; k < 3; k++) cluster.propose(leader, `kept${k}`);
    cluster.stabilize();
    expect(cluster.raw(1).lastIndex).toBe(6);
    cluster.heal();
    cluster.tickAll(3, [leader]);
    expect(cluster.raw(1).role).toBe('follower');
    const logOf = (id: number) => cluster.raw(id).entriesBetween(1, cluster.raw(id).lastIndex + 1)!.map((entry) => `${entry.index}/${entry.term}`);
    expect(logOf(1)).toEqual(logOf(leader));
    expect(logOf(1).slice(0, 3)).toEqual(['1/1', '2/2', '3/2']);
    expect(cluster.appliedTexts(1)).toEqual(['kept0', 'kept1', 'kept2']);
  });

  it('a rejection carries a hint so the leader skips a whole term per round trip', () => {
    const cluster = new Cluster(3);
    cluster.elect(1);
    cluster.isolate(1);
    for (let k = 0; k < 30; k++) cluster.propose(1, `old${k}`); // indexes 2..31, term 1, only on node 1
    const first = cluster.awaitLeader([2, 3]);
    for (let k = 0; k < 10; k++) cluster.propose(first, `new${k}`);
    cluster.stabilize();
    const second = first === 2 ? 3 : 2;
    cluster.raw(first).transferLeadership(second); // term 3: its progress for node 1 starts at its last index
    cluster.stabilize();
    expect(cluster.raw(second).role).toBe('leader');
    cluster.heal();
    cluster.sent.length = 0;
    cluster.tickAll(3, [second]);
    const rejections = cluster.sent.filter((message) => message.type === 'appendResponse' && message.reject && message.from === 1);
    expect(rejections.length).toBeGreaterThan(0);
    expect(rejections.length).toBeLessThanOrEqual(2); // not one per conflicting entry (30)
    expect(cluster.raw(1).lastIndex).toBe(cluster.raw(second).lastIndex);
    expect(cluster.appliedTexts(1)).toEqual(Array.from({ length: 10 }, (_, k) => `new${k}`));
  });
});

describe('host contract', () => {
  it('never hands out a committed entry before this node persisted it', () => {
    const cluster = new Cluster(1);
    cluster.elect(1);
    const raw = cluster.raw(1);
    raw.propose(encode('x'));
    const first = raw.ready();
    expect(first.entries.map((entry) => entry.index)).toEqual([2]);
    expect(first.committedEntries.map((entry) => entry.index)).not.toContain(2);
    cluster.node(1).storage.append(first.entries);
    raw.advance();
    const second = raw.ready();
    expect(second.committedEntries.map((entry) => entry.index)).toEqual([2]);
    expect(second.hardState?.commit).toBe(2);
    raw.advance();
  });

  it('asserts that ready() and advance() alternate', () => {
    const cluster = new Cluster(1);
    cluster.raw(1).campaign();
    cluster.raw(1).ready();
    expect(() => cluster.raw(1).ready()).toThrow(/ready and advance alternate/);
  });
});

describe('snapshots', () => {
  it('a follower behind the compacted log catches up from a snapshot', () => {
    const cluster = new Cluster(3);
    cluster.elect(1);
    cluster.isolate(3);
    for (let k = 0; k < 20; k++) cluster.propose(1, `v${k}`);
    cluster.stabilize();
    const leader = cluster.node(1);
    const appliedIndex = leader.raw.status().applied;
    expect(appliedIndex).toBe(21);
    leader.storage.createSnapshot(appliedIndex, leader.raw.confStateAt(appliedIndex), encode('state@21'));
    leader.storage.compact(appliedIndex - 2);
    expect(leader.raw.firstIndex).toBe(20);
    cluster.heal();
    cluster.tickAll(5);
    const follower = cluster.node(3);
    expect(follower.snapshotsInstalled).toBe(1);
    expect(follower.storage.snapshot().data).toEqual(encode('state@21'));
    expect(follower.raw.status().applied).toBe(21);
    cluster.propose(1, 'after');
    cluster.stabilize();
    expect(cluster.appliedTexts(3)).toEqual(['after']); // entries after the snapshot come from the log
  });

  it('a restarted node recovers its term, vote, log and commit from storage', () => {
    const cluster = new Cluster(3);
    cluster.elect(1);
    cluster.propose(1, 'a');
    cluster.stabilize();
    const node = cluster.node(2);
    const restarted = new RawNode({
      id: 2, voters: [1, 2, 3], electionTicks: 10, heartbeatTicks: 1, storage: node.storage, random: cluster.random,
    });
    expect(restarted.term).toBe(1);
    expect(restarted.vote).toBe(1);
    expect(restarted.lastIndex).toBe(2);
    expect(restarted.commit).toBeGreaterThanOrEqual(1);
  });
});

describe('leadership transfer and ReadIndex', () => {
  it('transfers leadership to an up-to-date follower with TimeoutNow', () => {
    const cluster = new Cluster(3);
    cluster.elect(1);
    cluster.propose(1, 'a');
    cluster.stabilize();
    cluster.raw(1).transferLeadership(2);
    cluster.processReady(1);
    expect(cluster.queue.map((message) => message.type)).toEqual(['timeoutNow']);
    cluster.stabilize();
    expect(cluster.raw(2).role).toBe('leader');
    expect(cluster.raw(2).term).toBe(2);
    expect(cluster.raw(1).leader).toBe(2);
  });

  it('catches a lagging transfer target up before TimeoutNow, and drops proposals meanwhile', () => {
    const cluster = new Cluster(3);
    cluster.elect(1);
    cluster.isolate(3);
    for (let k = 0; k < 5; k++) cluster.propose(1, `v${k}`);
    cluster.stabilize();
    cluster.heal();
    cluster.raw(1).transferLeadership(3);
    expect(() => cluster.raw(1).propose(encode('during'))).toThrow(/ProposalDropped/);
    cluster.processReady(1);
    expect(cluster.queue.some((message) => message.type === 'timeoutNow')).toBe(false);
    cluster.stabilize();
    expect(cluster.raw(3).role).toBe('leader');
    expect(cluster.appliedTexts(3)).toEqual(['v0', 'v1', 'v2', 'v3', 'v4']);
  });

  it('ReadIndex answers only after a quorum acknowledged a heartbeat', () => {
    const cluster = new Cluster(3);
    cluster.elect(1);
    cluster.raw(1).readIndex(encode('r1'));
    cluster.processReady(1);
    expect(cluster.node(1).readStates).toEqual([]);
    const heartbeats = cluster.queue.filter((message) => message.type === 'heartbeat');
    expect(heartbeats.length).toBe(2);
    cluster.deliver((message) => message.type === 'heartbeat' && message.to === 2);
    expect(cluster.node(1).readStates).toEqual([]); // node 2 answered, but its response is still queued
    cluster.deliver((message) => message.type === 'heartbeatResponse' && message.from === 2);
    expect(cluster.node(1).readStates).toEqual([{ index: 1, context: encode('r1') }]);
  });

  it('a new leader serves reads only after committing an entry of its term', () => {
    const cluster = new Cluster(3);
    cluster.raw(1).campaign();
    // Deliver the vote round only: node 1 becomes leader with its empty entry uncommitted.
    for (let k = 0; k < 4; k++) {
      cluster.processAll();
      cluster.deliver((message) => message.type !== 'append');
    }
    expect(cluster.raw(1).role).toBe('leader');
    expect(cluster.raw(1).commit).toBe(0);
    cluster.raw(1).readIndex(encode('early'));
    cluster.processReady(1);
    expect(cluster.queue.some((message) => message.type === 'heartbeat')).toBe(false);
    cluster.stabilize();
    expect(cluster.node(1).readStates).toEqual([{ index: 1, context: encode('early') }]);
  });

  it('a new leader that is the only voter also waits for an entry of its term before serving reads', () => {
    // Simulator seed 576: the single-voter shortcut answered from a commit index that missed an
    // entry its predecessor had committed with this node's acknowledgement alone.
    const cluster = new Cluster(2);
    cluster.elect(1);
    const removal = cluster.raw(1).proposeConfChange({ type: 'removeVoter', nodeId: 1 });
    cluster.processReady(1);
    cluster.deliver((message) => message.to === 2);
    cluster.deliver((message) => message.to === 1);
    cluster.queue = []; // node 2 never hears that the removal committed
    expect(cluster.raw(1).commit).toBe(removal);
    expect(cluster.raw(2).commit).toBeLessThan(removal);
    cluster.raw(2).campaign();
    expect(cluster.raw(2).role).toBe('leader');
    cluster.raw(2).readIndex(encode('r'));
    cluster.processReady(2);
    expect(cluster.node(2).readStates).toEqual([{ index: removal + 1, context: encode('r') }]);
  });

  it('a follower forwards ReadIndex to the leader and serves it once applied', () => {
    const cluster = new Cluster(3);
    cluster.elect(1);
    cluster.propose(1, 'a');
    cluster.stabilize();
    cluster.raw(2).readIndex(encode('f'));
    cluster.stabilize();
    expect(cluster.node(2).readStates).toEqual([{ index: 2, context: encode('f') }]);
  });
});

describe('membership', () => {
  it('a change right after an election waits for the entry of the new term', () => {
    const cluster = new Cluster(3, {}, [4]);
    cluster.raw(1).campaign();
    for (let k = 0; k < 4; k++) {
      cluster.processAll();
      cluster.deliver((message) => message.type !== 'append');
    }
    expect(cluster.raw(1).role).toBe('leader');
    expect(() => cluster.raw(1).proposeConfChange({ type: 'addLearner', nodeId: 4 })).toThrow(/ConfChangeRejected/);
    cluster.stabilize();
    cluster.raw(1).proposeConfChange({ type: 'addLearner', nodeId: 4 });
    // At most one uncommitted change.
    expect(() => cluster.raw(1).proposeConfChange({ type: 'addVoter', nodeId: 4 })).toThrow(/ConfChangeRejected/);
    cluster.stabilize();
    expect(cluster.raw(1).confState()).toEqual({ voters: [1, 2, 3], learners: [4] });
    expect(cluster.raw(4).confState()).toEqual({ voters: [1, 2, 3], learners: [4] });
    cluster.raw(1).proposeConfChange({ type: 'addVoter', nodeId: 4 });
    cluster.stabilize();
    expect(cluster.raw(2).confState()).toEqual({ voters: [1, 2, 3, 4], learners: [] });
    cluster.propose(1, 'x');
    cluster.stabilize();
    expect(cluster.appliedTexts(4)).toEqual(['x']);
  });

  it('a leader that removes itself keeps replicating until the removal commits, then steps down', () => {
    const cluster = new Cluster(3);
    cluster.elect(1);
    cluster.raw(1).proposeConfChange({ type: 'removeVoter', nodeId: 1 });
    expect(() => cluster.raw(1).propose(encode('x'))).toThrow(/removing itself/);
    cluster.stabilize();
    expect(cluster.raw(1).role).toBe('follower');
    expect(cluster.raw(2).confState().voters).toEqual([2, 3]);
    cluster.tickAll(30, [2, 3]);
    const leader = [2, 3].find((id) => cluster.raw(id).role === 'leader');
    expect(leader).toBeDefined();
  });

  it('a member that joins with no configuration never campaigns, and takes the configuration from the first config entry', () => {
    const cluster = new Cluster(3, {}, [4]);
    cluster.elect(1);
    cluster.propose(1, 'before');
    cluster.stabilize();
    cluster.tick(4, 50);
    expect(cluster.queue.filter((message) => message.from === 4)).toEqual([]);
    expect(cluster.raw(4).confState()).toEqual({ voters: [], learners: [] });
    cluster.raw(1).proposeConfChange({ type: 'addLearner', nodeId: 4 });
    cluster.stabilize();
    // It got the log from index 1 (bootstrap never in it): the config entry told it everything.
    expect(cluster.raw(4).confState()).toEqual({ voters: [1, 2, 3], learners: [4] });
    expect(cluster.appliedTexts(4)).toEqual(['before']);
    cluster.raw(1).proposeConfChange({ type: 'addVoter', nodeId: 4 });
    cluster.stabilize();
    expect(cluster.raw(4).confState()).toEqual({ voters: [1, 2, 3, 4], learners: [] });
    // A voter now: it can lead.
    cluster.isolate(1);
    expect(cluster.awaitLeader([2, 3, 4])).toBeGreaterThan(1);
  });

  it('a restarted member takes its membership from its storage, not from its (stale) bootstrap voters', () => {
    const cluster = new Cluster(3, {}, [4]);
    cluster.elect(1);
    for (const change of [{ type: 'addLearner', nodeId: 4 }, { type: 'addVoter', nodeId: 4 }, { type: 'removeVoter', nodeId: 1 }] as const) {
      cluster.raw(1).proposeConfChange(change);
      cluster.stabilize();
    }
    expect(cluster.raw(2).confState()).toEqual({ voters: [2, 3, 4], learners: [] });
    cluster.compact(2); // node 2's membership now comes from its snapshot
    cluster.restart(2, [1, 2, 3]);
    cluster.restart(3, [1, 2, 3]); // node 3's from its log's config entries
    cluster.restart(4, []);
    for (const id of [2, 3, 4]) expect(cluster.raw(id).confState()).toEqual({ voters: [2, 3, 4], learners: [] });
    // Node 1, removed, does not disturb them: it is not a voter in its own log either.
    cluster.restart(1, [1, 2, 3]);
    expect(cluster.raw(1).confState().voters).toEqual([2, 3, 4]);
    cluster.isolate(2);
    const leader = cluster.awaitLeader([1, 3, 4]);
    expect([3, 4]).toContain(leader);
  });

  it('a snapshot carries the configuration at its index, and a joining member installing it takes that configuration', () => {
    const cluster = new Cluster(3, {}, [4, 5]);
    cluster.elect(1);
    cluster.raw(1).proposeConfChange({ type: 'addLearner', nodeId: 4 });
    cluster.stabilize();
    cluster.propose(1, 'x');
    cluster.stabilize();
    // Isolated, node 1 appends node 5's addition but cannot commit it: the snapshot at the applied
    // index must carry the configuration in force there, not the newest one in the log.
    cluster.isolate(1);
    cluster.raw(1).proposeConfChange({ type: 'addLearner', nodeId: 5 });
    cluster.processReady(1);
    expect(cluster.raw(1).confState().learners).toEqual([4, 5]);
    cluster.compact(1);
    expect(cluster.node(1).storage.snapshot().metadata.confState).toEqual({ voters: [1, 2, 3], learners: [4] });
    cluster.heal();
    cluster.queue = [];
    cluster.stabilize();
    cluster.tickAll(3);
    // Node 5 joins with no configuration and an empty log; the compacted leader sends its snapshot.
    expect(cluster.node(5).snapshotsInstalled).toBe(1);
    expect(cluster.raw(5).confState()).toEqual({ voters: [1, 2, 3], learners: [4, 5] });
    cluster.restart(5, []);
    expect(cluster.raw(5).confState()).toEqual({ voters: [1, 2, 3], learners: [4, 5] });
  });

  it('a config entry whose configuration does not follow from the one before it breaks an invariant', () => {
    const cluster = new Cluster(3);
    const entries = [{ index: 1, term: 1, type: 'config' as const, data: encodeConfChange({ type: 'addVoter', nodeId: 4 }, { voters: [1, 2, 4], learners: [] }) }];
    expect(() => cluster.raw(2).step({ type: 'append', from: 1, to: 2, term: 1, prevIndex: 0, prevTerm: 0, entries, commit: 0 })).toThrow(/follows from the configuration before it/);
    expect(cluster.raw(2).confState()).toEqual({ voters: [1, 2, 3], learners: [] });
  });

  it('rejects removing the last voter', () => {
    const cluster = new Cluster(1);
    cluster.elect(1);
    expect(() => cluster.raw(1).proposeConfChange({ type: 'removeVoter', nodeId: 1 })).toThrow(/last voter/);
  });
});

void RaftError;
