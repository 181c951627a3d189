// RaftHost over real gRPC and LevelDB, its peer played by the test: a RaftTransport the test sends
// hand-written messages through and reads the host's messages from. Each test drives the host into
// one situation a real cluster reaches only by bad luck (a restart with a read in flight, an index
// reused by a re-elected leader, a broken invariant) and checks what the host does there.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './freePort.js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '@runnel/common';
import { RaftHost, type RaftHostOptions, type StateMachine } from '../src/host/raftHost.js';
import { RaftTransport } from '../src/host/transport.js';
import { RaftInvariantError, type Message } from '../src/types.js';

const GROUP = 'host-test';
const TICK_MS = 20;
/** Long enough that neither the host nor CheckQuorum acts on its own while a test runs (10–20 s). */
const ELECTION_TICKS = 500;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until<T>(what: string, check: () => T | undefined | false, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** Records what it applied; each entry's result names its data and index. */
class RecordingStateMachine implements StateMachine {
  readonly applied: string[] = [];
  apply(data: Uint8Array, index: number): unknown {
    const text = Buffer.from(data).toString('utf8');
    this.applied.push(text);
    return `${text}@${index}`;
  }
  snapshot(): Uint8Array {
    return Buffer.from(JSON.stringify(this.applied));
  }
  restore(data: Uint8Array): void {
    this.applied.splice(0, this.applied.length, ...(JSON.parse(Buffer.from(data).toString('utf8')) as string[]));
  }
}

/** The other member of a two-voter group, played by the test over a real RaftTransport. */
class ScriptedPeer {
  private constructor(
    readonly id: number,
    private readonly transport: RaftTransport,
    /** Everything the host sent to this peer, in arrival order. */
    readonly received: Message[],
  ) {}

  static async start(id: number, port: number, hostId: number, hostAddress: string): Promise<ScriptedPeer> {
    const received: Message[] = [];
    const transport = new RaftTransport({
      nodeId: id,
      group: GROUP,
      host: '127.0.0.1',
      port,
      peers: new Map([[hostId, hostAddress]]),
      logger: createLogger({ name: 'scripted-peer', level: 'silent' }),
      onMessage: (message) => received.push(message),
    });
    await transport.start();
    cleanups.push(() => transport.stop());
    return new ScriptedPeer(id, transport, received);
  }

  send(message: Message): void {
    this.transport.send([message]);
  }

  /**
   * Sends `message` until the host answers with a message that `reply` accepts: a stream that a
   * restart broke loses what it held, and the transport reconnects only after a backoff.
   */
  async sendUntil<T extends Message>(message: Message, reply: (m: Message) => m is T, what: string): Promise<T> {
    const from = this.received.length;
    let sentAt = 0;
    return until(what, () => {
      const answer = this.received.slice(from).find(reply);
      if (answer !== undefined) return answer;
      if (Date.now() - sentAt > 300) {
        this.send(message);
        sentAt = Date.now();
      }
      return undefined;
    });
  }

  async next<T extends Message>(reply: (m: Message) => m is T, what: string, from = 0): Promise<T> {
    return until(what, () => this.received.slice(from).find(reply));
  }
}

/** A message of type `type` (for which `extra` holds). */
type Of<K extends Message['type']> = Message & { type: K };
const is =
  <K extends Message['type']>(type: K, extra: (m: Of<K>) => boolean = () => true) =>
  (m: Message): m is Of<K> =>
    m.type === type && extra(m as Of<K>);

interface Group {
  hostId: number;
  peerId: number;
  hostPort: number;
  dataDir: string;
  voters: Map<number, string>;
  peer: ScriptedPeer;
  start(extra?: Partial<RaftHostOptions>): Promise<RaftHost>;
}

/** A RaftHost `hostId` and a ScriptedPeer `peerId`, the two voters of one group. */
async function twoVoters(hostId: number, peerId: number): Promise<Group> {
  const [hostPort, peerPort] = [await freePort(), await freePort()];
  const dataDir = mkdtempSync(join(tmpdir(), 'raft-host-'));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const voters = new Map([
    [hostId, `127.0.0.1:${hostPort}`],
    [peerId, `127.0.0.1:${peerPort}`],
  ]);
  const peer = await ScriptedPeer.start(peerId, peerPort, hostId, voters.get(hostId)!);
  return {
    hostId,
    peerId,
    hostPort,
    dataDir,
    voters,
    peer,
    async start(extra = {}) {
      const host = new RaftHost({
        id: hostId,
        voters,
        group: GROUP,
        dataDir,
        listenHost: '127.0.0.1',
        listenPort: hostPort,
        stateMachine: new RecordingStateMachine(),
        logger: createLogger({ name: 'raft-host-test', level: 'silent' }),
        tickMs: TICK_MS,
        electionTicks: ELECTION_TICKS,
        ...extra,
      });
      await host.start();
      cleanups.push(() => host.stop());
      return host;
    },
  };
}

describe('RaftHost: a broken invariant', () => {
  it('stops the node and reports a fatal error when stepping a message breaks an invariant; it is not logged as a malformed message', async () => {
    const group = await twoVoters(1, 2);
    const fatal: Error[] = [];
    const logger = createLogger({ name: 'raft-host-test', level: 'silent' });
    const warn = vi.spyOn(logger, 'warn');
    const host = await group.start({ logger, onFatal: (error) => fatal.push(error) });
    // The peer hands leadership to the host (TimeoutNow) and grants its vote: the host leads term 1.
    const vote = await group.peer.sendUntil({ type: 'timeoutNow', from: 2, to: 1, term: 0 }, is('vote'), 'a vote request');
    group.peer.send({ type: 'voteResponse', from: 2, to: 1, term: vote.term, reject: false });
    await until('the host to lead', () => host.status().role === 'leader');
    // A second leader of the same term: Raft's election safety is broken, and only a bug can do that.
    group.peer.send({ type: 'append', from: 2, to: 1, term: vote.term, prevIndex: 0, prevTerm: 0, entries: [], commit: 0 });
    await until('a fatal error', () => fatal.length > 0, 3000);
    expect(fatal[0]).toBeInstanceOf(RaftInvariantError);
    expect((fatal[0] as RaftInvariantError).invariant).toBe('election safety');
    expect(warn.mock.calls.map((call) => call[1])).not.toContain('dropping a malformed Raft message');
    expect(() => host.propose(Buffer.from('after'))).toThrow(/raft node 1 has failed: raft invariant "election safety" violated/);
  });
});

describe('RaftHost: linearizable reads', () => {
  it('a read answer meant for an earlier run of this node does not complete a read after a restart', async () => {
    const group = await twoVoters(2, 1);
    let host = await group.start();
    // The peer leads term 1 and commits one entry on the host.
    await group.peer.sendUntil(
      { type: 'append', from: 1, to: 2, term: 1, prevIndex: 0, prevTerm: 0, entries: [{ index: 1, term: 1, type: 'normal', data: Buffer.from('a') }], commit: 1 },
      is('appendResponse', (m) => m.index === 1 && !m.reject),
      'the host to take entry 1',
    );
    void host.linearizableRead().catch(() => undefined);
    const before = await group.peer.next(is('readIndex'), 'a forwarded read');

    await host.stop();
    host = await group.start();
    await group.peer.sendUntil({ type: 'heartbeat', from: 1, to: 2, term: 1, commit: 1, readId: 0 }, is('heartbeatResponse'), 'the restarted host to follow');
    let readDone = false;
    const read = host.linearizableRead().then(() => {
      readDone = true;
    });
    read.catch(() => undefined); // awaited below; a failed test stops the host while it is pending
    const after = await group.peer.next(is('readIndex'), 'the new forwarded read', group.peer.received.indexOf(before) + 1);

    // The leader's answer to the first run's read arrives late, then a heartbeat: once the host
    // answered the heartbeat it has stepped the stale answer, and the new read must still wait.
    group.peer.send({ type: 'readIndexResponse', from: 1, to: 2, term: 1, index: 1, context: before.context });
    const mark = group.peer.received.length;
    group.peer.send({ type: 'heartbeat', from: 1, to: 2, term: 1, commit: 1, readId: 0 });
    await group.peer.next(is('heartbeatResponse'), 'a heartbeat answer', mark);
    await sleep(50);
    expect(readDone).toBe(false);

    group.peer.send({ type: 'readIndexResponse', from: 1, to: 2, term: 1, index: 1, context: after.context });
    await read;
    expect(readDone).toBe(true);
  });
});

describe('RaftHost: proposals', () => {
  it('an entry settles only the proposal made at its index and term: an old proposal at a reused index neither removes nor settles the new one', async () => {
    const group = await twoVoters(1, 2);
    const host = await group.start({ proposalTimeoutMs: 1500 });
    const settled = new Map<string, string>();
    const track = (name: string, proposal: Promise<unknown>): Promise<unknown> =>
      proposal.then(
        (result) => settled.set(name, `resolved ${String(result)}`),
        (error: Error) => settled.set(name, `rejected ${error.message}`),
      );

    // Term 1: the host leads (empty entry 1) and proposes p0 at 2 and p1 at 3; nothing commits.
    const vote1 = await group.peer.sendUntil({ type: 'timeoutNow', from: 2, to: 1, term: 0 }, is('vote'), 'a vote request');
    group.peer.send({ type: 'voteResponse', from: 2, to: 1, term: vote1.term, reject: false });
    await until('the host to lead term 1', () => host.status().role === 'leader' && host.status().term === 1);
    void track('p0', host.propose(Buffer.from('p0')));
    void track('p1', host.propose(Buffer.from('p1')));
    expect(host.status().lastIndex).toBe(3);
    await sleep(500); // p2's timer will fire this much after p1's: time for entry 3 to commit

    // Term 2: the peer leads and replaces the host's entries 1..3 with its empty entry 1.
    group.peer.send({ type: 'append', from: 2, to: 1, term: 2, prevIndex: 0, prevTerm: 0, entries: [{ index: 1, term: 2, type: 'empty', data: new Uint8Array(0) }], commit: 0 });
    await until('the host to follow term 2 with one entry', () => host.status().term === 2 && host.status().lastIndex === 1);

    // Term 3: the host leads again (empty entry 2) and proposes p2 at index 3, the index of p1.
    const mark = group.peer.received.length;
    group.peer.send({ type: 'timeoutNow', from: 2, to: 1, term: 2 });
    const vote3 = await group.peer.next(is('vote', (m) => m.term === 3), 'a vote request for term 3', mark);
    group.peer.send({ type: 'voteResponse', from: 2, to: 1, term: vote3.term, reject: false });
    await until('the host to lead term 3', () => host.status().role === 'leader' && host.status().term === 3);
    const p2 = track('p2', host.propose(Buffer.from('p2')));
    expect(host.status().lastIndex).toBe(3);

    // p1's timer fires first; only then does entry 3 of term 3 commit.
    await until('p1 to time out', () => settled.get('p1'), 3000);
    expect(settled.has('p2')).toBe(false);
    group.peer.send({ type: 'appendResponse', from: 2, to: 1, term: 3, index: 3, reject: false, rejectHint: 0, logTerm: 0 });
    await p2;
    expect(settled.get('p2')).toBe('resolved p2@3');
    expect(settled.get('p1')).toMatch(/^rejected ProposalDropped/);
    expect(settled.get('p0')).toMatch(/^rejected ProposalDropped/);
  });

  it('reports each committed proposal\'s time from its append on the leader to its commit', async () => {
    const group = await twoVoters(1, 2);
    const latencies: number[] = [];
    const host = await group.start({ onCommitLatency: (seconds) => latencies.push(seconds) });
    const vote = await group.peer.sendUntil({ type: 'timeoutNow', from: 2, to: 1, term: 0 }, is('vote'), 'a vote request');
    group.peer.send({ type: 'voteResponse', from: 2, to: 1, term: vote.term, reject: false });
    await until('the host to lead term 1', () => host.status().role === 'leader' && host.status().term === 1);
    const proposal = host.propose(Buffer.from('p'));
    expect(host.status().lastIndex).toBe(2);
    await sleep(300); // the peer takes its time to acknowledge: that is the commit latency
    group.peer.send({ type: 'appendResponse', from: 2, to: 1, term: 1, index: 2, reject: false, rejectHint: 0, logTerm: 0 });
    await proposal;
    expect(latencies).toHaveLength(1);
    expect(latencies[0]).toBeGreaterThanOrEqual(0.29);
    expect(latencies[0]).toBeLessThan(5);
  });
});
