// Consumer groups end to end on a real 3-node cluster: TypeScript consumers (in this process, over
// gRPC) and `runnel consume --group` processes share partitions within a group (queue) while every
// group gets every record (publish-subscribe); members join, leave and are SIGKILLed; the
// coordinator's node is SIGKILLed; bad group input is refused without disturbing the group.
import { spawn, type ChildProcess } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { Admin, Consumer, Producer, type ConsumerOptions, type ConsumerRecord, type RebalanceListener, type TopicPartition } from '@runnel/client';
import { errorCode, type GroupApi } from '@runnel/common';
import { RUNNEL_BIN } from '@runnel/testkit';
import { GroupClients, groupCall } from './groupCalls.js';
import { startMember, startProducing, type Member } from './groupMembers.js';
import { useCluster, waitFor } from './harness.js';

const PARTITIONS = 6;
const SESSION_TIMEOUT_MS = 6000;

interface Seen {
  partition: number;
  offset: number;
  atMs: number;
}

/** A `runnel consume --group` process: what it printed, with when. */
class CliMember {
  readonly seen: Seen[] = [];
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;
  private stderr = '';

  constructor(bootstrap: string, topic: string, group: string, name: string) {
    this.child = spawn(
      process.execPath,
      [RUNNEL_BIN, '--bootstrap', bootstrap, 'consume', topic, '--group', group, '--format', 'json', '--from-beginning',
        '--consumer-property', `session.timeout.ms=${SESSION_TIMEOUT_MS}`, '--consumer-property', 'heartbeat.interval.ms=500',
        '--consumer-property', 'auto.commit.interval.ms=500', '--consumer-property', `client.id=${name}`],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let pending = '';
    this.child.stdout!.on('data', (chunk: Buffer) => {
      const lines = (pending + chunk.toString('utf8')).split('\n');
      pending = lines.pop()!;
      const atMs = Date.now();
      for (const line of lines) {
        if (line === '') continue;
        const record = JSON.parse(line) as { partition: number; offset: number };
        this.seen.push({ partition: record.partition, offset: record.offset, atMs });
      }
    });
    this.child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString('utf8')));
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  partitionsSince(sinceMs: number): Set<number> {
    return new Set(this.seen.filter((entry) => entry.atMs >= sinceMs).map((entry) => entry.partition));
  }

  signal(name: NodeJS.Signals): void {
    this.child.kill(name);
  }

  get errors(): string {
    return this.stderr;
  }
}

function ids(records: readonly ConsumerRecord[]): string[] {
  return records.map((record) => `${record.partition}:${record.offset}`);
}

describe('consumer groups', () => {
  const fixture = useCluster(3, {
    'offsets.topic.num.partitions': '3',
    'group.initial.rebalance.delay.ms': '0',
    'group.min.session.timeout.ms': '1000',
  });
  const bootstrap = () => fixture.cluster.nodes.map((node) => node.bootstrap);

  async function createTopic(name: string, records: number): Promise<void> {
    const admin = new Admin({ bootstrap: bootstrap() });
    try {
      await admin.createTopics([{ name, partitions: PARTITIONS, replicationFactor: 3 }]);
    } finally {
      await admin.close();
    }
    const producer = new Producer({ bootstrap: bootstrap(), acks: 'all', lingerMs: 5 });
    try {
      await Promise.all(Array.from({ length: records }, (_, i) => producer.send({ topic: name, key: Buffer.from(`k${i}`), value: Buffer.from(`v${i}`) })));
    } finally {
      await producer.close();
    }
  }

  const memberOptions = (groupId: string, clientId: string): ConsumerOptions => ({
    bootstrap: bootstrap(),
    groupId,
    clientId,
    autoOffsetReset: 'earliest',
    sessionTimeoutMs: SESSION_TIMEOUT_MS,
    heartbeatIntervalMs: 500,
    autoCommitIntervalMs: 500,
    maxWaitMs: 100,
  });

  /** The group's committed offset per partition (-1: none), read from outside the group. */
  async function committedOffsets(groupId: string, topic: string): Promise<number[]> {
    const reader = new Consumer({ bootstrap: bootstrap(), groupId, enableAutoCommit: false });
    try {
      const committed = await reader.committed(Array.from({ length: PARTITIONS }, (_, partition) => ({ topic, partition })));
      return committed.map((entry) => entry.offset ?? -1);
    } finally {
      await reader.close();
    }
  }

  it('shares partitions within a group (1, 3 and 8 members) and gives every group every record', async () => {
    const total = 600;
    await createTopic('orders', total);
    for (const size of [1, 3, 8]) {
      const members = Array.from({ length: size }, (_, i) => startMember(memberOptions(`queue-${size}`, `m${i}`), ['orders']));
      try {
        await waitFor(`${size} members to consume ${total} records`, () => (members.reduce((sum, member) => sum + member.records.length, 0) >= total ? true : undefined), 60_000, 100);
        // Stable: every partition owned by exactly one member; the partitions spread evenly.
        const owned = await waitFor('a stable assignment', () => {
          const assignments = members.map((member) => member.consumer.assignment());
          return assignments.flat().length === PARTITIONS ? assignments : undefined;
        }, 30_000);
        const counts = owned.map((list) => list.length).sort((a, b) => b - a);
        // Eight members started at once settle within the initial delay (0 here) plus two rounds:
        // the first member's generation, then one with everybody (or one more for a late joiner).
        const generations = new Set(members.map((member) => member.consumer.groupMetadata().generationId));
        expect(generations.size).toBe(1);
        expect([...generations][0]).toBeLessThanOrEqual(3);
        expect(counts).toEqual(size === 1 ? [6] : size === 3 ? [2, 2, 2] : [1, 1, 1, 1, 1, 1, 0, 0]);
        expect(new Set(owned.flat().map(({ partition }) => partition)).size).toBe(PARTITIONS);
        const all = ids(members.flatMap((member) => member.records));
        expect(all.length).toBe(total);
        expect(new Set(all).size).toBe(total);
      } finally {
        await Promise.all(members.map((member) => member.stop()));
      }
    }
    // Another group sees every record again (publish-subscribe).
    const audit = startMember(memberOptions('audit', 'audit-1'), ['orders']);
    try {
      await waitFor('the audit group to see every record', () => (audit.records.length >= total ? true : undefined), 30_000);
      expect(new Set(ids(audit.records)).size).toBe(total);
    } finally {
      await audit.stop();
    }
  }, 180_000);

  it('cooperative-sticky: a joining member takes its share while the others keep theirs and go on reading', async () => {
    const topic = 'shipments';
    const total = 1200;
    await createTopic(topic, total / 2);
    const revoked = new Map<string, TopicPartition[]>();
    const options = (clientId: string): ConsumerOptions => ({ ...memberOptions('shipping', clientId), partitionAssignors: ['cooperative-sticky'] });
    const listener = (name: string): RebalanceListener => ({ onPartitionsRevoked: (partitions) => void revoked.set(name, [...(revoked.get(name) ?? []), ...partitions]) });
    const members = [startMember(options('c1'), [topic], listener('c1')), startMember(options('c2'), [topic], listener('c2'))];
    try {
      const owned = (member: Member) => member.consumer.assignment().map(({ partition }) => partition).sort();
      await waitFor('two members holding 3 partitions each', () => (members.every((member) => owned(member).length === 3) ? true : undefined), 30_000);
      await waitFor('the first half read', () => (members.reduce((sum, member) => sum + member.records.length, 0) >= total / 2 ? true : undefined), 30_000);
      const before = members.map(owned);
      revoked.clear();
      members.push(startMember(options('c3'), [topic], listener('c3')));
      await waitFor('three members holding 2 partitions each', () => (members.every((member) => owned(member).length === 2) ? true : undefined), 30_000);
      // Each old member gave up exactly one partition and kept the other two throughout (no eager revoke-all).
      for (const [i, name] of ['c1', 'c2'].entries()) {
        expect(revoked.get(name)).toHaveLength(1);
        expect(before[i]!.filter((partition) => owned(members[i]!).includes(partition))).toHaveLength(2);
      }
      const producer = new Producer({ bootstrap: bootstrap(), acks: 'all', lingerMs: 5 });
      await Promise.all(Array.from({ length: total / 2 }, (_, i) => producer.send({ topic, key: `late-${i}`, value: 'late' })));
      await producer.close();
      await waitFor('every record read', () => (members.reduce((sum, member) => sum + member.records.length, 0) >= total ? true : undefined), 30_000);
      const all = ids(members.flatMap((member) => member.records));
      expect(new Set(all).size).toBe(total);
      expect(all.length).toBe(total); // partitions handed over after a commit: nothing read twice
    } finally {
      await Promise.all(members.map((member) => member.stop()));
    }
  }, 120_000);

  it('moves partitions when members join, leave and are SIGKILLed: nothing skipped, duplicates only after the last commit', async () => {
    const topic = 'payments';
    await createTopic(topic, 0);
    const producing = startProducing(bootstrap(), topic, 30, 2000);
    const address = bootstrap().join(',');
    const a = new CliMember(address, topic, 'billing', 'a');
    const b = new CliMember(address, topic, 'billing', 'b');
    let c: CliMember | undefined;
    try {
      await waitFor('a and b to consume', () => (a.seen.length > 0 && b.seen.length > 0 ? true : undefined), 30_000);
      c = new CliMember(address, topic, 'billing', 'c');
      await waitFor('c to consume', () => (c!.seen.length > 0 ? true : undefined), 30_000);
      const cJoinedMs = Date.now();
      await waitFor('all three to consume after c joined', () => ([a, b].every((member) => member.partitionsSince(cJoinedMs + 1000).size > 0) ? true : undefined), 30_000);

      // c leaves cleanly (SIGTERM: commit, LeaveGroup): a and b take its partitions without waiting for its session.
      const cPartitions = c.partitionsSince(Date.now() - 1000);
      const leftMs = Date.now();
      c.signal('SIGTERM');
      expect(await c.exited).toBe(0);
      await waitFor("c's partitions to move", () => {
        const taken = new Set([...a.partitionsSince(leftMs), ...b.partitionsSince(leftMs)]);
        return [...cPartitions].every((partition) => taken.has(partition)) ? true : undefined;
      }, SESSION_TIMEOUT_MS - 1000);

      // b is SIGKILLed: its partitions move to a within the session timeout plus one rebalance.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const bPartitions = b.partitionsSince(Date.now() - 1000);
      expect(bPartitions.size).toBeGreaterThan(0);
      b.signal('SIGKILL');
      const killedMs = Date.now();
      await b.exited;
      const committedAtKill = await committedOffsets('billing', topic);
      const resumedMs = await waitFor("b's partitions to move to a", () => {
        const taken = a.seen.filter((entry) => entry.atMs >= killedMs && bPartitions.has(entry.partition));
        return new Set(taken.map((entry) => entry.partition)).size === bPartitions.size ? Math.max(...taken.map((entry) => entry.atMs)) : undefined;
      }, SESSION_TIMEOUT_MS + 15_000);
      process.stdout.write(`consumer-groups: b's ${bPartitions.size} partitions consumed again ${resumedMs - killedMs} ms after its SIGKILL (session timeout ${SESSION_TIMEOUT_MS} ms)\n`);

      await producing.stop();
      const key = (entry: { partition: number; offset: number }) => `${entry.partition}:${entry.offset}`;
      await waitFor('every acknowledged record to be consumed', () => {
        const consumed = new Set([...a.seen, ...b.seen, ...c!.seen].map(key));
        return producing.acked.every((entry) => consumed.has(key(entry))) ? true : undefined;
      }, 30_000);
      // Duplicates: only records of b's partitions at or after b's last commit.
      const counts = new Map<string, number>();
      for (const entry of [...a.seen, ...b.seen, ...c.seen]) counts.set(key(entry), (counts.get(key(entry)) ?? 0) + 1);
      const duplicates = [...counts.entries()].filter(([, count]) => count > 1).map(([id]) => id.split(':').map(Number) as [number, number]);
      for (const [partition, offset] of duplicates) {
        expect(bPartitions.has(partition)).toBe(true);
        expect(offset).toBeGreaterThanOrEqual(committedAtKill[partition]!);
      }
      process.stdout.write(`consumer-groups: ${producing.acked.length} records, ${duplicates.length} consumed twice (all after b's last commit)\n`);
    } finally {
      await producing.stop();
      for (const member of [a, b, c]) member?.signal('SIGKILL');
    }
  }, 180_000);

  it('carries on from committed offsets after the coordinator is SIGKILLed', async () => {
    const topic = 'ledger';
    await createTopic(topic, 0);
    const clients = new GroupClients();
    const producing = startProducing(bootstrap(), topic, 20, 2000);
    const members = [startMember(memberOptions('ledger-readers', 'l1'), [topic]), startMember(memberOptions('ledger-readers', 'l2'), [topic])];
    const { cluster } = fixture;
    let killed: number | undefined;
    try {
      await waitFor('both members to consume', () => (members.every((member) => member.records.length > 0) ? true : undefined), 30_000);
      const coordinator = await clients.findCoordinator(cluster.nodes, 'ledger-readers');
      killed = coordinator.nodeId;
      await cluster.node(killed).kill('SIGKILL');
      const killedMs = Date.now();
      const countAtKill = members.reduce((sum, member) => sum + member.records.length, 0);
      await waitFor('consumption after the coordinator died', () => (members.reduce((sum, member) => sum + member.records.length, 0) > countAtKill + 200 ? true : undefined), 60_000);
      await clients.findCoordinator(cluster.nodes, 'ledger-readers', [killed]);
      await producing.stop();
      const key = (entry: { partition: number; offset: number }) => `${entry.partition}:${entry.offset}`;
      await waitFor('every acknowledged record to be consumed', () => {
        const consumed = new Set(members.flatMap((member) => member.records).map(key));
        return producing.acked.every((entry) => consumed.has(key(entry))) ? true : undefined;
      }, 60_000);
      // Commits reach the new coordinator: the committed offsets end at the log ends.
      const ends = new Array<number>(PARTITIONS).fill(0);
      for (const entry of producing.acked) ends[entry.partition] = Math.max(ends[entry.partition]!, entry.offset + 1);
      await waitFor('committed offsets at the log ends', async () => {
        const committed = await committedOffsets('ledger-readers', topic);
        return committed.every((offset, partition) => offset === ends[partition]) ? true : undefined;
      }, 30_000);
      process.stdout.write(`consumer-groups: coordinator ${killed} SIGKILLed ${Date.now() - killedMs} ms ago; all ${producing.acked.length} records consumed, offsets committed to the new coordinator\n`);
    } finally {
      await producing.stop();
      await Promise.all(members.map((member) => member.stop()));
      clients.close();
      if (killed !== undefined) await cluster.node(killed).launch();
    }
  }, 180_000);

  it('a `runnel consume --group` stopped in the middle of a rebalance exits at once', async () => {
    const topic = 'slow';
    await createTopic(topic, 0);
    const clients = new GroupClients();
    try {
      // A member that never rejoins: the next rebalance waits its whole rebalance timeout (60 s).
      const found = await clients.findCoordinator(fixture.cluster.nodes, 'slow-group');
      const coordinator = clients.get(`${found.host}:${found.port}`);
      const join = { groupId: 'slow-group', sessionTimeoutMs: 60_000, rebalanceTimeoutMs: 60_000, protocolType: 'consumer', protocols: [{ name: 'range', metadata: Buffer.alloc(0) }], groupInstanceId: '' };
      const first = await waitFor('a member id', async () => {
        const answer = await groupCall(coordinator, 'JoinGroup', { ...join, memberId: '' });
        return answer.errorCode === errorCode('COORDINATOR_LOAD_IN_PROGRESS') ? undefined : answer;
      }, 10_000);
      expect(first.errorCode).toBe(0);
      const synced = await groupCall(coordinator, 'SyncGroup', { groupId: 'slow-group', generationId: first.generationId, memberId: first.memberId, assignments: [] });
      expect(synced.errorCode).toBe(0);
      const member = new CliMember(bootstrap().join(','), topic, 'slow-group', 'waiting');
      await new Promise((resolve) => setTimeout(resolve, 3000)); // its JoinGroup now waits for the silent member
      const stoppedMs = Date.now();
      member.signal('SIGTERM');
      expect(await member.exited).toBe(0);
      expect(Date.now() - stoppedMs).toBeLessThan(5000);
      expect(member.errors).toBe('');
    } finally {
      clients.close();
    }
  }, 60_000);

  it('refuses bad group requests without disturbing the group', async () => {
    const topic = 'audit-log';
    await createTopic(topic, 60);
    const clients = new GroupClients();
    const member = startMember(memberOptions('steady', 's1'), [topic]);
    try {
      await waitFor('the member to consume', () => (member.records.length >= 60 ? true : undefined), 30_000);
      const { memberId, generationId } = member.consumer.groupMetadata();
      const found = await clients.findCoordinator(fixture.cluster.nodes, 'steady');
      const coordinator = clients.get(`${found.host}:${found.port}`);
      const commit = (request: Partial<GroupApi.OffsetCommitRequest>) =>
        groupCall(coordinator, 'OffsetCommit', { groupId: 'steady', partitions: [{ topic, partition: 0, offset: 0, leaderEpoch: -1, metadata: '' }], ...request });
      expect((await commit({ memberId: 'nobody', generationId })).partitions[0]!.errorCode).toBe(errorCode('UNKNOWN_MEMBER_ID'));
      expect((await commit({ memberId, generationId: generationId - 1 })).partitions[0]!.errorCode).toBe(errorCode('ILLEGAL_GENERATION'));
      expect((await commit({ memberId: '', generationId: -1 })).partitions[0]!.errorCode).toBe(errorCode('UNKNOWN_MEMBER_ID'));
      const beat = (request: Partial<GroupApi.HeartbeatRequest>) => groupCall(coordinator, 'Heartbeat', { groupId: 'steady', memberId, generationId, ...request });
      expect((await beat({ generationId: generationId + 5 })).errorCode).toBe(errorCode('ILLEGAL_GENERATION'));
      for (const groupId of ['', 'g'.repeat(32_768)]) {
        expect((await beat({ groupId })).errorCode).toBe(errorCode('INVALID_GROUP_ID'));
        const joined = await groupCall(coordinator, 'JoinGroup', { groupId, memberId: '', sessionTimeoutMs: 6000, rebalanceTimeoutMs: 6000, protocolType: 'consumer', protocols: [{ name: 'range', metadata: Buffer.alloc(0) }] });
        expect(joined.errorCode).toBe(errorCode('INVALID_GROUP_ID'));
      }
      expect(() => new Consumer({ bootstrap: bootstrap(), groupId: '' })).toThrow(/groupId must not be empty/);
      // None of it moved the group: same generation, still consuming, nothing committed by the strangers.
      const before = member.records.length;
      const producer = new Producer({ bootstrap: bootstrap(), acks: 'all' });
      await Promise.all(Array.from({ length: 30 }, (_, i) => producer.send({ topic, key: `late-${i}`, value: 'late' })));
      await producer.close();
      await waitFor('the member to consume the new records', () => (member.records.length >= before + 30 ? true : undefined), 30_000);
      expect(member.consumer.groupMetadata().generationId).toBe(generationId);
      expect(member.consumer.assignment()).toHaveLength(PARTITIONS);

      // A heartbeat while the group rebalances is told so; the member rejoins and carries on.
      const stranger = await groupCall(coordinator, 'JoinGroup', { groupId: 'steady', memberId: '', sessionTimeoutMs: 6000, rebalanceTimeoutMs: 6000, protocolType: 'consumer', protocols: [{ name: 'range', metadata: Buffer.alloc(0) }], requireKnownMemberId: true });
      expect(stranger.errorCode).toBe(errorCode('MEMBER_ID_REQUIRED'));
      const joining = groupCall(coordinator, 'JoinGroup', { groupId: 'steady', memberId: stranger.memberId, sessionTimeoutMs: 6000, rebalanceTimeoutMs: 6000, protocolType: 'consumer', protocols: [{ name: 'range', metadata: Buffer.alloc(0) }], requireKnownMemberId: true });
      expect((await beat({})).errorCode).toBe(errorCode('REBALANCE_IN_PROGRESS'));
      const strangerJoined = await joining;
      expect(strangerJoined.errorCode).toBe(0);
      const left = await groupCall(coordinator, 'LeaveGroup', { groupId: 'steady', members: [{ memberId: stranger.memberId, groupInstanceId: '' }] });
      expect(left.members[0]!.errorCode).toBe(0);
      await waitFor('the member to own every partition again', () => (member.consumer.assignment().length === PARTITIONS && member.consumer.groupMetadata().generationId > generationId ? true : undefined), 30_000);
    } finally {
      await member.stop();
      clients.close();
    }
  }, 120_000);
});
