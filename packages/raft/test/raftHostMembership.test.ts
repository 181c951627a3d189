// Membership changes through RaftHost: four hosts in this process over real gRPC and LevelDB. A
// new member joins knowing only the existing voters' addresses, is added as a learner, catches up
// and is promoted; its address travels in the log, so members that restart later (even with a
// stale list of voters) still reach it; a restarted member takes its membership from storage.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './freePort.js';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '@runnel/common';
import { KvStateMachine, encodeKvCommand } from '../src/example/kvStateMachine.js';
import { RaftHost } from '../src/host/raftHost.js';
import { unwrapSnapshot } from '../src/host/membership.js';
import { LevelRaftStorage } from '../src/host/levelStorage.js';

const TICK_MS = 20;
const ELECTION_TICKS = 10;

async function until<T>(what: string, check: () => T | undefined | false, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

class Group {
  readonly dataDir = mkdtempSync(join(tmpdir(), 'raft-membership-'));
  readonly ports = new Map<number, number>();
  readonly hosts = new Map<number, RaftHost>();
  readonly machines = new Map<number, KvStateMachine>();

  address(id: number): string {
    return `127.0.0.1:${this.ports.get(id)}`;
  }

  /** Starts member `id` with `voters` as its configured bootstrap list (ids whose addresses it is given). */
  async start(id: number, voters: number[]): Promise<RaftHost> {
    for (const member of [id, ...voters]) if (!this.ports.has(member)) this.ports.set(member, await freePort());
    const machine = new KvStateMachine();
    const host = new RaftHost({
      id,
      voters: new Map(voters.map((voter) => [voter, this.address(voter)])),
      group: 'membership-test',
      dataDir: join(this.dataDir, `node-${id}`),
      listenHost: '127.0.0.1',
      listenPort: this.ports.get(id)!,
      stateMachine: machine,
      logger: createLogger({ name: `raft-${id}`, level: 'silent' }),
      tickMs: TICK_MS,
      electionTicks: ELECTION_TICKS,
      snapshotEveryEntries: 8,
      retainEntries: 2,
      seed: id,
    });
    await host.start();
    this.hosts.set(id, host);
    this.machines.set(id, machine);
    return host;
  }

  async stop(id: number): Promise<void> {
    await this.hosts.get(id)?.stop();
    this.hosts.delete(id);
  }

  leader(among = [...this.hosts.keys()]): Promise<RaftHost> {
    return until(`a leader among ${among}`, () => among.map((id) => this.hosts.get(id)).find((host) => host?.status().role === 'leader'));
  }

  async put(key: string, value: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await (await this.leader()).propose(encodeKvCommand({ op: 'put', key, value }));
        return;
      } catch (error) {
        if (attempt >= 50) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  async close(): Promise<void> {
    for (const id of [...this.hosts.keys()]) await this.stop(id);
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

let group: Group | undefined;
afterEach(async () => {
  await group?.close();
  group = undefined;
});

describe('RaftHost membership', () => {
  it('adds a joining member as a learner, then a voter; its address reaches members that restart with a stale voter list', async () => {
    const g = (group = new Group());
    for (const id of [1, 2, 3]) await g.start(id, [1, 2, 3]);
    for (let k = 0; k < 20; k++) await g.put(`k${k}`, `v${k}`); // past a snapshot: node 4 gets one
    // Node 4 knows the voters' addresses, not itself among them: it joins, with no vote.
    const joiner = await g.start(4, [1, 2, 3]);
    expect(joiner.membership().confState).toEqual({ voters: [], learners: [] });
    const leader = await g.leader([1, 2, 3]);
    const progress: string[] = [];
    const adding = leader.addVoter(4, g.address(4), { catchUpTimeoutMs: 20_000, onProgress: (line) => progress.push(line) });
    // One change at a time: a second one is refused while the first is in progress.
    await expect(leader.removeVoter(3)).rejects.toThrow(/another membership change is in progress \(adding node 4/);
    await adding;
    expect(progress[0]).toMatch(/node 4 added as a learner/);
    expect(progress[progress.length - 1]).toMatch(/node 4 promoted to voter/);
    const described = leader.membership();
    expect(described.confState).toEqual({ voters: [1, 2, 3, 4], learners: [] });
    expect(described.members?.find((member) => member.id === 4)).toMatchObject({ role: 'voter', address: g.address(4) });
    await until('node 4 to hold the data', () => g.machines.get(4)!.data.get('k19') === 'v19');
    expect(joiner.membership().confState).toEqual({ voters: [1, 2, 3, 4], learners: [] });

    // Remove node 1 (whichever leads) and stop it. Then node 2 restarts with its stale list
    // (1, 2, 3): it takes the membership from its storage and reaches node 4 from the log.
    const removing = await g.leader([1, 2, 3, 4]);
    await removing.removeVoter(1);
    await until('the removal to reach node 2', () => g.hosts.get(2)!.membership().confState.voters.join() === '2,3,4');
    await g.stop(1);
    for (let k = 20; k < 40; k++) await g.put(`k${k}`, `v${k}`);
    await g.stop(2);
    await g.stop(3);
    // Only 4 and 2 are up: a majority of {2,3,4} only if node 2 reaches node 4 by an address it
    // learned from the log.
    const restarted = await g.start(2, [1, 2, 3]);
    expect(restarted.membership().confState).toEqual({ voters: [2, 3, 4], learners: [] });
    expect(restarted.membership().addresses.get(4)).toBe(g.address(4));
    await g.put('after', 'restart');
    expect([2, 4]).toContain((await g.leader([2, 4])).status().id);
    // Node 4 restarts with its original config (it was not a voter there): membership from storage.
    await g.stop(4);
    const rejoined = await g.start(4, [1, 2, 3]);
    expect(rejoined.membership().confState).toEqual({ voters: [2, 3, 4], learners: [] });
    await g.put('after4', 'restart');
    await until('node 4 to apply the last write', () => g.machines.get(4)!.data.get('after4') === 'restart');
    // Its snapshot carries each member's address at the snapshot's index.
    await g.stop(4);
    const storage = await LevelRaftStorage.open(join(g.dataDir, 'node-4', 'raft'), { nodeId: 4, bootstrap: { voters: [], learners: [] } });
    const snapshot = storage.snapshot();
    await storage.close();
    expect(snapshot.metadata.index).toBeGreaterThan(0);
    expect(snapshot.metadata.confState).toEqual({ voters: [2, 3, 4], learners: [] });
    expect(Object.fromEntries(unwrapSnapshot(snapshot.data).book!)).toEqual({ 2: g.address(2), 3: g.address(3), 4: g.address(4) });
  }, 90_000);

  it('refuses a removal the voters left could not commit, and removes the leader itself (it steps down once the removal commits)', async () => {
    const g = (group = new Group());
    for (const id of [1, 2, 3]) await g.start(id, [1, 2, 3]);
    await g.put('a', '1');
    const leader = await g.leader();
    const leaderId = leader.status().id;
    const [live, dead] = [1, 2, 3].filter((id) => id !== leaderId) as [number, number];
    await g.stop(dead);
    // Removing the live follower would leave {leader, dead}: one of two answers. Refused once the
    // leader has noticed the silence (CheckQuorum's window, an election timeout).
    const refusal = await until('the refusal', () => {
      try {
        return leader.membership().members!.find((member) => member.id === dead)!.lastContactMs > 3 * ELECTION_TICKS * TICK_MS && leader.removeVoter(live).then(() => 'removed', (error: Error) => error.message);
      } catch {
        return undefined;
      }
    });
    expect(await refusal).toMatch(new RegExp(`removing node ${live} would leave voters .*of which only ${leaderId} answer the leader`));
    await leader.removeVoter(dead);
    expect(leader.membership().confState.voters).toEqual([leaderId, live].sort());
    // Now the leader removes itself: it keeps replicating until the removal commits, then steps down.
    await leader.removeVoter(leaderId);
    await until('the removed leader to step down', () => leader.status().role !== 'leader');
    const next = await g.leader([live]);
    expect(next.membership().confState).toEqual({ voters: [live], learners: [] });
    await g.put('b', '2');
    await expect(next.addVoter(9, 'nohost')).rejects.toThrow(/not host:port/);
  }, 60_000);

  it('refuses to remove the last voter', async () => {
    const g = (group = new Group());
    const only = await g.start(1, [1]);
    await g.leader();
    await expect(only.removeVoter(1)).rejects.toThrow(/last voter/);
    await expect(only.removeVoter(7)).rejects.toThrow(/node 7 is not a member/);
  }, 30_000);
});
