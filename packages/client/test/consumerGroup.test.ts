// The consumer's group behaviour against a scripted coordinator (fakeGroupCoordinator.ts): each
// test drives one window of the protocol (a join, a rebalance, a fenced member, a moved
// coordinator, a commit, a close) and checks what the consumer sends and when its listener runs.
import { RunnelError, encodeRecordBatch, errorCode, type ErrorName } from '@runnel/common';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RebalanceListener } from '../src/consumer.js';
import { rangeAssignor, type PartitionAssignor } from '../src/group/assignors.js';
import { decodeAssignment, decodeSubscription, encodeAssignment, encodeSubscription } from '../src/group/consumerProtocol.js';
import type { RebalanceProtocol } from '../src/group/assignors.js';
import { Consumer, type ConsumerOptions, type ConsumerRecord, type TopicPartition } from '../src/index.js';
import { FakeCluster } from './fakeBroker.js';
import { FakeGroupCoordinator, byDefault, type CallContext, type GroupMethod, type GroupRequest, type GroupResponse } from './fakeGroupCoordinator.js';

const GROUP = 'readers';
const WAIT_MS = 5000;
/** Long enough for several heartbeats (20 ms apart): what has not happened by then is not on its way. */
const QUIET_MS = 100;

const quietPeriod = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, QUIET_MS));

function names(partitions: readonly TopicPartition[]): string {
  return partitions.map(({ topic, partition }) => `${topic}-${partition}`).sort().join(',');
}

/** An OffsetCommit answer refusing every partition with `error`. */
function commitRefused(error: ErrorName) {
  return (request: { partitions: Array<{ topic: string; partition: number }> }) => ({
    partitions: request.partitions.map(({ topic, partition }) => ({ topic, partition, errorCode: errorCode(error) })),
  });
}

function assignmentBytes(topic: string, partitions: number[]): Buffer {
  return encodeAssignment({ partitions: [{ topic, partitions }] });
}

/** An answer given only once the test calls release(): `answer`'s, by default the default coordinator's. */
function held<M extends GroupMethod>(answer: (request: GroupRequest<M>, call: CallContext<M>) => GroupResponse<M> = byDefault) {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  return {
    release,
    answer: async (request: GroupRequest<M>, call: CallContext<M>): Promise<GroupResponse<M>> => {
      await released;
      return answer(request, call);
    },
  };
}

/**
 * Group calls (without heartbeats and coordinator lookups) and listener calls in the order they
 * happened. A listener call made outside poll() or close() is marked so.
 */
class Timeline {
  readonly events: string[] = [];
  private pollsAndCloses = 0;

  constructor(coordinator: FakeGroupCoordinator) {
    coordinator.onCall(({ method }) => {
      if (method !== 'Heartbeat' && method !== 'FindCoordinator') this.events.push(method);
    });
  }

  listener(withLost = true): RebalanceListener {
    const record = (what: string) => (partitions: TopicPartition[]) => void this.events.push(`${what} [${names(partitions)}]${this.pollsAndCloses > 0 ? '' : ' OUTSIDE poll/close'}`);
    return { onPartitionsRevoked: record('revoked'), onPartitionsAssigned: record('assigned'), ...(withLost ? { onPartitionsLost: record('lost') } : {}) };
  }

  clear(): void {
    this.events.length = 0;
  }

  /** The listener has heard of a new assignment since the last clear(). */
  assigned(): boolean {
    return this.events.some((event) => event.startsWith('assigned'));
  }

  async poll(consumer: Consumer, timeoutMs = 20): Promise<ConsumerRecord[]> {
    return this.whileInside(() => consumer.poll(timeoutMs));
  }

  async close(consumer: Consumer): Promise<void> {
    await this.whileInside(() => consumer.close());
  }

  /** Polls until `done` holds for the records polled so far (bounded). */
  async pollUntil(consumer: Consumer, what: string, done: (records: ConsumerRecord[]) => boolean): Promise<ConsumerRecord[]> {
    const records: ConsumerRecord[] = [];
    const deadlineMs = Date.now() + WAIT_MS;
    while (!done(records)) {
      if (Date.now() > deadlineMs) throw new Error(`timed out polling for ${what}; timeline: ${this.events.join(' | ')}`);
      records.push(...(await this.poll(consumer)));
    }
    return records;
  }

  private async whileInside<T>(run: () => Promise<T>): Promise<T> {
    this.pollsAndCloses++;
    try {
      return await run();
    } finally {
      this.pollsAndCloses--;
    }
  }
}

describe('Consumer in a group, against a scripted coordinator', () => {
  let cluster: FakeCluster;
  let coordinator: FakeGroupCoordinator;
  let timeline: Timeline;
  const consumers: Consumer[] = [];

  beforeEach(async () => {
    cluster = await FakeCluster.start(2);
    coordinator = FakeGroupCoordinator.attach(cluster);
    timeline = new Timeline(coordinator);
  });

  afterEach(async () => {
    await Promise.all(consumers.splice(0).map((consumer) => consumer.close()));
    await cluster.stop();
  });

  function consumer(options: Partial<ConsumerOptions> = {}): Consumer {
    const created = new Consumer({
      bootstrap: cluster.bootstrap,
      groupId: GROUP,
      requestTimeoutMs: 2000,
      maxWaitMs: 20,
      retryBackoffMs: 10,
      sessionTimeoutMs: 1000,
      heartbeatIntervalMs: 20,
      // Only the commits a test provokes: no periodic auto-commit within a test.
      autoCommitIntervalMs: 60_000,
      autoOffsetReset: 'earliest',
      ...options,
    });
    consumers.push(created);
    return created;
  }

  function appendRecords(topic: string, partition: number, count: number): void {
    cluster.append(topic, partition, encodeRecordBatch(Array.from({ length: count }, (_, i) => ({ value: Buffer.from(`${topic}-${partition}-${i}`) }))));
  }

  /** JoinGroup answers (past MEMBER_ID_REQUIRED) with another member, subscribed to `topics`, and `overrides`. */
  function anotherMemberJoins(topics: string[], overrides: GroupResponse<'JoinGroup'> = {}): void {
    const other = { memberId: 'other', groupInstanceId: '', metadata: encodeSubscription({ topics }) };
    coordinator.handle('JoinGroup', (_request, call) => {
      const answer = call.byDefault();
      return answer.errorCode === 0 ? { ...answer, members: [...answer.members!, other], ...overrides } : answer;
    });
  }

  /** A member of generation 1 owning every partition of `topic`, having polled its `perPartition` records each. */
  async function joinedConsumer(topic: string, partitions: number, perPartition: number, options: Partial<ConsumerOptions> = {}, listener = timeline.listener()): Promise<Consumer> {
    cluster.createTopic(topic, partitions);
    for (let partition = 0; partition < partitions; partition++) appendRecords(topic, partition, perPartition);
    const member = consumer(options);
    member.subscribe([topic], listener);
    await timeline.pollUntil(member, 'every record', (records) => records.length === partitions * perPartition);
    expect(member.groupMetadata()).toEqual({ groupId: GROUP, memberId: 'member-1', generationId: 1 });
    return member;
  }

  it('first join: MEMBER_ID_REQUIRED, then the minted id; the leader assigns with the chosen assignor; positions start at the committed offsets or autoOffsetReset', async () => {
    cluster.createTopic('t', 4);
    appendRecords('t', 0, 5);
    appendRecords('t', 2, 4);
    coordinator.offsets.set('t:0', 3);
    // The group picks the member's second assignor.
    anotherMemberJoins(['t'], { protocolName: 'roundrobin' });
    const member = consumer({ partitionAssignors: ['range', 'roundrobin'], autoOffsetReset: 'latest' });
    member.subscribe(['t'], timeline.listener());
    const records = await timeline.pollUntil(member, 't-0 from its committed offset', (polled) => polled.length >= 2);

    const joins = coordinator.requests('JoinGroup');
    expect(joins.map((join) => [join.memberId, join.requireKnownMemberId])).toEqual([['', true], ['member-1', true]]);
    expect(joins[1]!.protocols.map((protocol) => protocol.name)).toEqual(['range', 'roundrobin']);
    expect(decodeSubscription(joins[1]!.protocols[1]!.metadata).topics).toEqual(['t']);
    const [sync] = coordinator.requests('SyncGroup');
    expect(sync).toMatchObject({ groupId: GROUP, memberId: 'member-1', generationId: 1, protocolName: 'roundrobin' });
    // Round robin over members ordered by id (range would give member-1 partitions 0 and 1).
    const sent = Object.fromEntries(sync!.assignments.map(({ memberId, assignment }) => [memberId, decodeAssignment(assignment).partitions]));
    expect(sent).toEqual({ 'member-1': [{ topic: 't', partitions: [0, 2] }], other: [{ topic: 't', partitions: [1, 3] }] });
    expect(names(member.assignment())).toBe('t-0,t-2');
    expect(timeline.events.slice(0, 5)).toEqual(['JoinGroup', 'JoinGroup', 'SyncGroup', 'assigned [t-0,t-2]', 'OffsetFetch']);
    expect(names(coordinator.requests('OffsetFetch')[0]!.partitions)).toBe('t-0,t-2');
    // t-0 resumes at its committed 3; t-2 has none (-1), so 'latest': its end, 4.
    expect(records.map((record) => `${record.partition}:${record.offset}`)).toEqual(['0:3', '0:4']);
    expect(member.position({ topic: 't', partition: 2 })).toBe(4);
  });

  it('eager rebalance: auto-commit, then onPartitionsRevoked, then JoinGroup; onPartitionsAssigned after SyncGroup; all inside poll', async () => {
    const member = await joinedConsumer('t', 2, 3);
    timeline.clear();
    coordinator.answerNext('Heartbeat', { errorCode: errorCode('REBALANCE_IN_PROGRESS') });
    const sync = held<'SyncGroup'>((_request, call) => ({ ...call.byDefault(), assignment: assignmentBytes('t', [1]) }));
    coordinator.answerNext('SyncGroup', sync.answer);
    // The listener runs only inside poll: nothing happens on the heartbeat's answer alone...
    await coordinator.nextCall('Heartbeat');
    await quietPeriod();
    expect(timeline.events).toEqual([]);
    const syncs = coordinator.requests('SyncGroup').length;
    await timeline.pollUntil(member, 'the SyncGroup', () => coordinator.requests('SyncGroup').length > syncs);
    // ... nor when the join completes between polls.
    sync.release();
    await quietPeriod();
    expect(timeline.events).toEqual(['OffsetCommit', 'revoked [t-0,t-1]', 'JoinGroup', 'SyncGroup']);
    await timeline.pollUntil(member, 'the new assignment', () => timeline.assigned());
    expect(timeline.events).toEqual(['OffsetCommit', 'revoked [t-0,t-1]', 'JoinGroup', 'SyncGroup', 'assigned [t-1]', 'OffsetFetch']);
    const [commit] = coordinator.requests('OffsetCommit');
    expect(commit).toMatchObject({ generationId: 1, memberId: 'member-1' });
    expect(commit!.partitions.map(({ topic, partition, offset }) => `${topic}-${partition}@${offset}`).sort()).toEqual(['t-0@3', 't-1@3']);
    expect(coordinator.requests('JoinGroup').at(-1)!.memberId).toBe('member-1');
    expect(member.groupMetadata().generationId).toBe(2);
  });

  it('after REBALANCE_IN_PROGRESS, heartbeats go on until a poll starts the join: processing may outlast the session', async () => {
    const member = await joinedConsumer('t', 1, 1);
    const rebalancing = { errorCode: errorCode('REBALANCE_IN_PROGRESS') };
    coordinator.answerNext('Heartbeat', rebalancing, rebalancing, rebalancing);
    // No poll meanwhile: the application is busy with its records; the coordinator waits up to the rebalance timeout.
    for (let beat = 0; beat < 3; beat++) await coordinator.nextCall('Heartbeat');
    expect(coordinator.requests('JoinGroup')).toHaveLength(2);
    timeline.clear();
    await timeline.pollUntil(member, 'the rejoin', () => timeline.assigned());
    expect(coordinator.requests('JoinGroup')).toHaveLength(3);
  });

  describe.each([
    { error: 'ILLEGAL_GENERATION' as ErrorName, rejoinsAs: 'member-1', withLost: true, reported: 'lost' },
    { error: 'UNKNOWN_MEMBER_ID' as ErrorName, rejoinsAs: '', withLost: true, reported: 'lost' },
    { error: 'UNKNOWN_MEMBER_ID' as ErrorName, rejoinsAs: '', withLost: false, reported: 'revoked' },
  ])('heartbeat answered $error (listener with onPartitionsLost: $withLost)', ({ error, rejoinsAs, withLost, reported }) => {
    it(`reports the partitions ${reported}, commits nothing, rejoins as '${rejoinsAs}'`, async () => {
      const member = await joinedConsumer('t', 2, 3, {}, timeline.listener(withLost));
      timeline.clear();
      coordinator.answerNext('Heartbeat', { errorCode: errorCode(error) });
      await timeline.pollUntil(member, 'the rejoin', () => timeline.assigned());
      const joins = timeline.events.filter((event) => event === 'JoinGroup').length;
      expect(timeline.events).toEqual([`${reported} [t-0,t-1]`, ...Array<string>(joins).fill('JoinGroup'), 'SyncGroup', 'assigned [t-0,t-1]', 'OffsetFetch']);
      expect(coordinator.requests('JoinGroup').at(-joins)!.memberId).toBe(rejoinsAs);
      expect(coordinator.requests('OffsetCommit')).toEqual([]);
    });
  });

  describe.each(['NOT_COORDINATOR', 'COORDINATOR_NOT_AVAILABLE'] as ErrorName[])('%s: the coordinator moved to node 2', (error) => {
    /** Moves the coordinator as it answers, as a broker that just lost the group's offsets partition would. */
    const moved = <T>(answer: T): T => {
      coordinator.coordinatorNodeId = 2;
      return answer;
    };

    it('on heartbeat: looks the coordinator up again and heartbeats there', async () => {
      await joinedConsumer('t', 1, 1);
      const lookups = coordinator.requests('FindCoordinator').length;
      coordinator.answerNext('Heartbeat', () => moved({ errorCode: errorCode(error) }));
      await coordinator.nextCall('Heartbeat', (call) => call.nodeId === 2);
      expect(coordinator.requests('FindCoordinator').length).toBe(lookups + 1);
    });

    it('on JoinGroup: looks the coordinator up again and joins there', async () => {
      cluster.createTopic('t', 1);
      coordinator.answerNext('JoinGroup', () => moved({ errorCode: errorCode(error) }));
      const member = consumer();
      member.subscribe(['t']);
      await timeline.pollUntil(member, 'the join', () => member.assignment().length === 1);
      expect(coordinator.nodesAsked('JoinGroup')).toEqual([1, 2, 2]);
      expect(coordinator.requests('FindCoordinator')).toHaveLength(2);
    });

    it('on OffsetCommit: looks the coordinator up again and commits there', async () => {
      // No heartbeats during the commit: they would find the new coordinator on their own.
      const member = await joinedConsumer('t', 1, 1, { heartbeatIntervalMs: 5000, sessionTimeoutMs: 10_000 });
      coordinator.answerNext('OffsetCommit', (request) => moved(commitRefused(error)(request)));
      await member.commit([{ topic: 't', partition: 0, offset: 1 }]);
      expect(coordinator.nodesAsked('OffsetCommit')).toEqual([1, 2]);
      expect(coordinator.committedOffset('t', 0)).toBe(1);
    });
  });

  describe('COORDINATOR_LOAD_IN_PROGRESS: retried at the same coordinator', () => {
    const loading = { errorCode: errorCode('COORDINATOR_LOAD_IN_PROGRESS') };

    it('on heartbeat, JoinGroup and OffsetCommit', async () => {
      coordinator.answerNext('JoinGroup', loading);
      const member = await joinedConsumer('t', 1, 1);
      expect(coordinator.nodesAsked('JoinGroup')).toEqual([1, 1, 1]);
      coordinator.answerNext('Heartbeat', loading);
      await coordinator.nextCall('Heartbeat');
      await coordinator.nextCall('Heartbeat');
      coordinator.answerNext('OffsetCommit', commitRefused('COORDINATOR_LOAD_IN_PROGRESS'));
      await member.commit([{ topic: 't', partition: 0, offset: 1 }]);
      expect(coordinator.nodesAsked('OffsetCommit')).toEqual([1, 1]);
      expect(coordinator.committedOffset('t', 0)).toBe(1);
      expect(coordinator.requests('FindCoordinator')).toHaveLength(1);
      expect(new Set(coordinator.nodesAsked('Heartbeat'))).toEqual(new Set([1]));
    });
  });

  describe('commit', () => {
    it('commits the positions (or the offsets given) as the current generation; committed() is null where nothing is committed', async () => {
      const member = await joinedConsumer('t', 2, 3, { enableAutoCommit: false });
      await member.commit();
      expect(coordinator.requests('OffsetCommit')[0]).toMatchObject({ groupId: GROUP, generationId: 1, memberId: 'member-1' });
      await member.commit([{ topic: 't', partition: 1, offset: 1, metadata: 'm' }]);
      expect(coordinator.requests('OffsetCommit')[1]!.partitions).toEqual([{ topic: 't', partition: 1, offset: 1, leaderEpoch: -1, metadata: 'm' }]);
      expect([coordinator.committedOffset('t', 0), coordinator.committedOffset('t', 1)]).toEqual([3, 1]);
      const committed = await member.committed([{ topic: 't', partition: 0 }, { topic: 't', partition: 5 }]);
      expect(committed.map(({ partition, offset }) => [partition, offset])).toEqual([[0, 3], [5, null]]);
    });

    it.each(['UNKNOWN_MEMBER_ID', 'ILLEGAL_GENERATION'] as ErrorName[])('%s: rejected, saying the partitions may be assigned elsewhere; the next poll reports them lost', async (error) => {
      const member = await joinedConsumer('t', 1, 1, { enableAutoCommit: false });
      coordinator.answerNext('OffsetCommit', commitRefused(error));
      const refused = (await member.commit().catch((caught: unknown) => caught)) as RunnelError;
      expect(refused).toBeInstanceOf(RunnelError);
      expect(refused.errorName).toBe(error);
      expect(refused.message).toMatch(/may be assigned to another member/);
      timeline.clear();
      await timeline.pollUntil(member, 'the rejoin', () => timeline.assigned());
      expect(timeline.events[0]).toBe('lost [t-0]');
    });

    it('after the heartbeat said ILLEGAL_GENERATION: commit() is refused without a call (not sent from outside the group), and the member id is kept', async () => {
      const member = await joinedConsumer('t', 1, 1, { enableAutoCommit: false });
      coordinator.answerNext('Heartbeat', { errorCode: errorCode('ILLEGAL_GENERATION') });
      await coordinator.nextCall('Heartbeat');
      await quietPeriod(); // the answer reaches the consumer; no heartbeat follows to wait for
      const refused = (await member.commit().catch((caught: unknown) => caught)) as RunnelError;
      expect(refused).toBeInstanceOf(RunnelError);
      expect(refused.message).toMatch(/may be assigned to another member/);
      expect(coordinator.requests('OffsetCommit')).toEqual([]);
      timeline.clear();
      await timeline.pollUntil(member, 'the rejoin', () => timeline.assigned());
      expect(timeline.events.slice(0, 2)).toEqual(['lost [t-0]', 'JoinGroup']);
      expect(coordinator.requests('JoinGroup').at(-1)!.memberId).toBe('member-1');
    });

    it('REBALANCE_IN_PROGRESS: rejected; the next poll rejoins', async () => {
      const member = await joinedConsumer('t', 1, 1, { enableAutoCommit: false });
      coordinator.answerNext('OffsetCommit', commitRefused('REBALANCE_IN_PROGRESS'));
      await expect(member.commit()).rejects.toMatchObject({ errorName: 'REBALANCE_IN_PROGRESS' });
      timeline.clear();
      await timeline.pollUntil(member, 'the rejoin', () => timeline.assigned());
      expect(timeline.events.slice(0, 2)).toEqual(['revoked [t-0]', 'JoinGroup']);
    });

    it('commitAsync: one attempt with the request timeout; the callback hears the outcome once', async () => {
      const member = await joinedConsumer('t', 1, 2, { enableAutoCommit: false });
      const outcomes: Array<string | null> = [];
      const commitAsync = () => new Promise<void>((resolve) => member.commitAsync(undefined, (error) => (outcomes.push(error === null ? null : (error as RunnelError).errorName), resolve())));
      await commitAsync();
      expect(outcomes).toEqual([null]);
      expect(coordinator.committedOffset('t', 0)).toBe(2);
      // A retriable refusal is not retried (commit() would): the callback gets it.
      coordinator.answerNext('OffsetCommit', commitRefused('COORDINATOR_LOAD_IN_PROGRESS'));
      await commitAsync();
      await quietPeriod(); // a second callback call, or a retry, would come by now
      expect(outcomes).toEqual([null, 'COORDINATOR_LOAD_IN_PROGRESS']);
      expect(coordinator.requests('OffsetCommit')).toHaveLength(2);
      // A callback that throws is logged; it is no unhandled rejection (vitest fails the run on one).
      await new Promise<void>((resolve) =>
        member.commitAsync(undefined, () => {
          resolve();
          throw new Error('the application callback failed');
        }),
      );
      await quietPeriod();
    });
  });

  describe('max.poll.interval.ms', () => {
    it('a member that stops polling leaves the group; its next poll reports its partitions lost and rejoins', async () => {
      const member = await joinedConsumer('t', 1, 1, { maxPollIntervalMs: 200 });
      const left = await coordinator.nextCall('LeaveGroup');
      expect(left.request.members).toEqual([{ memberId: 'member-1', groupInstanceId: '' }]);
      timeline.clear();
      await timeline.pollUntil(member, 'the rejoin', () => timeline.assigned());
      expect(timeline.events.slice(0, 4)).toEqual(['lost [t-0]', 'JoinGroup', 'JoinGroup', 'SyncGroup']);
      expect(coordinator.requests('JoinGroup').at(-2)!.memberId).toBe('');
      expect(coordinator.requests('OffsetCommit')).toEqual([]);
    });

    it('a poll that waits longer than maxPollIntervalMs is not a member that stopped polling', async () => {
      const member = await joinedConsumer('t', 1, 1, { maxPollIntervalMs: 100 });
      expect(await timeline.poll(member, 300)).toEqual([]);
      expect(coordinator.requests('LeaveGroup')).toEqual([]);
      expect(member.groupMetadata().generationId).toBe(1);
    });
  });

  describe('close', () => {
    it('commits the positions, revokes, then leaves the group', async () => {
      const member = await joinedConsumer('t', 1, 2);
      timeline.clear();
      await timeline.close(member);
      expect(timeline.events).toEqual(['OffsetCommit', 'revoked [t-0]', 'LeaveGroup']);
      expect(coordinator.committedOffset('t', 0)).toBe(2);
    });

    it('a static member (groupInstanceId) does not send LeaveGroup', async () => {
      const member = await joinedConsumer('t', 1, 2, { groupInstanceId: 'reader-1' });
      expect(coordinator.requests('JoinGroup')[0]!.groupInstanceId).toBe('reader-1');
      timeline.clear();
      await timeline.close(member);
      expect(timeline.events).toEqual(['OffsetCommit', 'revoked [t-0]']);
    });

    it('close while JoinGroup waits: the member leaves, and the join answered afterwards goes no further', async () => {
      cluster.createTopic('t', 1);
      // Answered as to a follower, which would go straight on to SyncGroup (a leader first looks up metadata).
      const heldJoin = held<'JoinGroup'>((_request, call) => ({ ...call.byDefault(), leader: 'another-member' }));
      coordinator.answerNext('JoinGroup', byDefault, heldJoin.answer);
      const member = consumer();
      member.subscribe(['t'], timeline.listener());
      await timeline.pollUntil(member, 'the held JoinGroup', () => coordinator.requests('JoinGroup').length === 2);
      timeline.clear();
      await timeline.close(member);
      heldJoin.release();
      await quietPeriod();
      expect(timeline.events).toEqual(['LeaveGroup']);
      expect(coordinator.requests('Heartbeat')).toEqual([]);
    });

    it.each(['JoinGroup', 'SyncGroup'] as const)('unsubscribe while %s waits: its late answer is dropped; a new subscription joins afresh', async (method) => {
      cluster.createTopic('t', 1);
      const heldJoin = held<'JoinGroup'>();
      const heldSync = held<'SyncGroup'>();
      if (method === 'JoinGroup') coordinator.answerNext('JoinGroup', byDefault, heldJoin.answer);
      else coordinator.answerNext('SyncGroup', heldSync.answer);
      const member = consumer();
      member.subscribe(['t'], timeline.listener());
      const heldAt = method === 'JoinGroup' ? 2 : 1; // the JoinGroup after MEMBER_ID_REQUIRED, or the first SyncGroup
      await timeline.pollUntil(member, `the held ${method}`, () => coordinator.requests(method).length === heldAt);
      timeline.clear();
      await member.unsubscribe();
      heldJoin.release();
      heldSync.release();
      await quietPeriod();
      expect(member.groupMetadata()).toEqual({ groupId: GROUP, memberId: '', generationId: -1 });
      member.subscribe(['t'], timeline.listener());
      await timeline.pollUntil(member, 'the new join', () => timeline.assigned());
      expect(timeline.events).toEqual(['LeaveGroup', 'JoinGroup', 'JoinGroup', 'SyncGroup', 'assigned [t-0]', 'OffsetFetch']);
    });
  });

  describe('cooperative protocol', () => {
    const cooperative: PartitionAssignor & { supportedProtocols: RebalanceProtocol[] } = { name: 'test-cooperative', supportedProtocols: ['COOPERATIVE'], assign: (members, counts) => rangeAssignor.assign(members, counts) };

    it('a SyncGroup that takes a partition away revokes only that one; the kept one keeps its position and fetching; a rejoin follows', async () => {
      const member = await joinedConsumer('t', 2, 3, { partitionAssignors: [cooperative] });
      const offsetFetches = coordinator.requests('OffsetFetch').length;
      timeline.clear();
      coordinator.answerNext('Heartbeat', { errorCode: errorCode('REBALANCE_IN_PROGRESS') });
      coordinator.answerNext('SyncGroup', (_request, call) => ({ ...call.byDefault(), assignment: assignmentBytes('t', [1]) }));
      // The follow-up join waits until the test has seen the kept partition fetched meanwhile.
      const followUp = held<'JoinGroup'>();
      coordinator.answerNext('JoinGroup', byDefault, followUp.answer);
      const followUpSent = coordinator.nextCall('JoinGroup', () => coordinator.requests('JoinGroup').length === 4);
      await timeline.pollUntil(member, 'the revocation', () => names(member.assignment()) === 't-1');
      await followUpSent;
      expect(timeline.events).toEqual(['OffsetCommit', 'JoinGroup', 'SyncGroup', 'revoked [t-0]', 'assigned []', 'JoinGroup']);
      const [rejoin, followUpJoin] = coordinator.requests('JoinGroup').slice(-2).map((join) => decodeSubscription(join.protocols[0]!.metadata));
      expect(rejoin!.ownedPartitions).toEqual([{ topic: 't', partitions: [0, 1] }]);
      expect(followUpJoin!.ownedPartitions).toEqual([{ topic: 't', partitions: [1] }]);
      appendRecords('t', 1, 2);
      const during = await timeline.pollUntil(member, 't-1 records during the rejoin', (records) => records.length === 2);
      expect(during.map((record) => `${record.partition}:${record.offset}`)).toEqual(['1:3', '1:4']);
      expect(coordinator.requests('OffsetFetch').length).toBe(offsetFetches);
      followUp.release();
      await timeline.pollUntil(member, 'the third generation', () => member.groupMetadata().generationId === 3);
      expect(member.position({ topic: 't', partition: 1 })).toBe(5);
    });
  });

  describe('pattern subscription', () => {
    it('rejoins when a new topic matches; internal topics never match', async () => {
      cluster.createTopic('events-a', 1);
      cluster.createTopic('__consumer_offsets', 1);
      cluster.createTopic('other', 1);
      const member = consumer({ metadataMaxAgeMs: 50 });
      member.subscribe(/events|offsets/, timeline.listener());
      await timeline.pollUntil(member, 'the first join', () => member.assignment().length === 1);
      // Only Kafka's internal topics are left out, not every name with two underscores.
      cluster.createTopic('__user_offsets', 1);
      await timeline.pollUntil(member, 'the rejoin with __user_offsets', () => member.assignment().length === 2);
      cluster.createTopic('events-b', 2);
      await timeline.pollUntil(member, 'the rejoin with events-b', () => member.assignment().length === 4);
      const subscribed = coordinator.requests('JoinGroup').map((join) => decodeSubscription(join.protocols[0]!.metadata).topics);
      expect(subscribed.slice(0, 2)).toEqual([['events-a'], ['events-a']]);
      expect(subscribed.at(-1)).toEqual(['__user_offsets', 'events-a', 'events-b']);
      expect(subscribed.flat()).not.toContain('__consumer_offsets');
      expect(member.subscriptionTopics()).toEqual(['__user_offsets', 'events-a', 'events-b']);
    });

    it('a topic that appears while a join is in flight leads to another join', async () => {
      cluster.createTopic('events-a', 1);
      const heldJoin = held<'JoinGroup'>();
      coordinator.answerNext('JoinGroup', byDefault, heldJoin.answer);
      const member = consumer({ metadataMaxAgeMs: 50 });
      member.subscribe(/events/, timeline.listener());
      await timeline.pollUntil(member, 'the held JoinGroup', () => coordinator.requests('JoinGroup').some((join) => join.memberId !== ''));
      cluster.createTopic('events-b', 1);
      await timeline.pollUntil(member, 'a metadata check that sees events-b', () => member.subscriptionTopics().includes('events-b'));
      heldJoin.release();
      await timeline.pollUntil(member, 'events-b assigned', () => member.assignment().length === 2);
      const subscribed = coordinator.requests('JoinGroup').map((join) => decodeSubscription(join.protocols[0]!.metadata).topics);
      expect(subscribed).toEqual([['events-a'], ['events-a'], ['events-a', 'events-b']]);
    });
  });

  describe("the leader's metadata check (every metadataMaxAgeMs)", () => {
    it('covers topics only other members subscribe to: no rebalance until one of them grows', async () => {
      cluster.createTopic('t', 1);
      cluster.createTopic('u', 1);
      anotherMemberJoins(['u']);
      const member = consumer({ metadataMaxAgeMs: 50 });
      member.subscribe(['t'], timeline.listener());
      await timeline.pollUntil(member, 'the join', () => timeline.assigned());
      const requests = cluster.metadataRequests.length;
      await timeline.pollUntil(member, 'several metadata checks', () => cluster.metadataRequests.length >= requests + 5);
      expect(coordinator.requests('JoinGroup')).toHaveLength(2);
      cluster.createTopic('u', 2);
      await timeline.pollUntil(member, 'the rejoin for the grown topic', () => coordinator.requests('JoinGroup').length === 3);
    });

    it('a subscribed topic that grows (CreatePartitions): the leader rejoins and the new partitions are assigned', async () => {
      cluster.createTopic('t', 2);
      const member = consumer({ metadataMaxAgeMs: 50 });
      member.subscribe(['t'], timeline.listener());
      await timeline.pollUntil(member, 'the join', () => timeline.assigned());
      expect(names(member.assignment())).toBe('t-0,t-1');
      cluster.growTopic('t', 4);
      timeline.clear();
      await timeline.pollUntil(member, 'the rejoin', () => timeline.assigned());
      expect(names(member.assignment())).toBe('t-0,t-1,t-2,t-3');
    });

    it('notices a subscribed topic created after the join', async () => {
      cluster.createTopic('t', 1);
      const member = consumer({ metadataMaxAgeMs: 50 });
      member.subscribe(['t', 'later'], timeline.listener());
      await timeline.pollUntil(member, 'the join', () => timeline.assigned());
      expect(names(member.assignment())).toBe('t-0');
      cluster.createTopic('later', 1);
      timeline.clear();
      await timeline.pollUntil(member, 'the rejoin', () => timeline.assigned());
      expect(names(member.assignment())).toBe('later-0,t-0');
    });
  });

  it.each(['INVALID_GROUP_ID', 'INCONSISTENT_GROUP_PROTOCOL', 'GROUP_MAX_SIZE_REACHED'] as ErrorName[])('JoinGroup answered %s: poll throws it once, naming the group', async (error) => {
    cluster.createTopic('t', 1);
    coordinator.answerNext('JoinGroup', { errorCode: errorCode(error), errorMessage: 'refused by the test' });
    const member = consumer();
    member.subscribe(['t']);
    const thrown = (await timeline.poll(member, 1000).catch((caught: unknown) => caught)) as RunnelError;
    expect(thrown).toBeInstanceOf(RunnelError);
    expect(thrown.errorName).toBe(error);
    expect(thrown.message).toContain(`'${GROUP}'`);
    // Once: the next polls join (the coordinator no longer refuses).
    await timeline.pollUntil(member, 'the join', () => member.assignment().length === 1);
  });

  it('a fenced static member (FENCED_INSTANCE_ID) stays fenced: every poll throws, it does not rejoin and fence the other instance', async () => {
    cluster.createTopic('t', 1);
    coordinator.answerNext('JoinGroup', { errorCode: errorCode('FENCED_INSTANCE_ID'), errorMessage: 'refused by the test' });
    const member = consumer({ groupInstanceId: 'instance-1' });
    member.subscribe(['t']);
    for (let poll = 0; poll < 3; poll++) {
      const thrown = (await timeline.poll(member, 200).catch((caught: unknown) => caught)) as RunnelError;
      expect(thrown.errorName).toBe('FENCED_INSTANCE_ID');
    }
    expect(coordinator.requests('JoinGroup')).toHaveLength(1);
  });

  describe('pause and resume', () => {
    const t0 = { topic: 't', partition: 0 };

    it('a paused partition is not fetched until resumed', async () => {
      cluster.createTopic('t', 2);
      appendRecords('t', 0, 2);
      appendRecords('t', 1, 3);
      const member = consumer();
      // Paused from the start: no fetch may carry it.
      member.subscribe(['t'], { onPartitionsAssigned: () => member.pause([t0]) });
      const whilePaused = await timeline.pollUntil(member, 'every t-1 record', (records) => records.length === 3);
      expect(whilePaused.every((record) => record.partition === 1)).toBe(true);
      expect(cluster.fetchRequests.flatMap(({ request }) => request.partitions).filter((partition) => partition.partition === 0)).toEqual([]);
      member.resume([t0]);
      const resumed = await timeline.pollUntil(member, 't-0 records', (records) => records.length === 2);
      expect(resumed.map((record) => `${record.partition}:${record.offset}`)).toEqual(['0:0', '0:1']);
    });

    it('records buffered for a paused partition wait until it is resumed', async () => {
      cluster.createTopic('t', 2);
      appendRecords('t', 0, 5);
      appendRecords('t', 1, 3);
      const member = consumer({ maxPollRecords: 2 });
      member.subscribe(['t']);
      // Stop while t-0 still has buffered records (one fetch brought all five; a poll returns two).
      await timeline.pollUntil(member, 'some of t-0', (records) => records.some((record) => record.partition === 0));
      const pausedAt = member.position(t0)!;
      expect(pausedAt).toBeLessThan(5);
      member.pause([t0]);
      expect(member.paused()).toEqual([t0]);
      // Polls that do return records (of t-1) meanwhile.
      appendRecords('t', 1, 2);
      const whilePaused = await timeline.pollUntil(member, 'every t-1 record', () => member.position({ topic: 't', partition: 1 }) === 5);
      expect(whilePaused.filter((record) => record.partition === 0)).toEqual([]);
      expect(member.position(t0)).toBe(pausedAt);
      member.resume([t0]);
      const resumed = await timeline.pollUntil(member, 'the rest of t-0', () => member.position(t0) === 5);
      expect(resumed.map((record) => record.offset)).toEqual(Array.from({ length: 5 - pausedAt }, (_, i) => pausedAt + i));
    });
  });
});
