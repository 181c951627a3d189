// The group coordinator on a real offsets partition (files on disk, the ReplicaManager's acks=all
// path): a group's assignment and its committed offsets are records of the partition, and a new
// coordinator that loads the partition carries the group on.
import { createLogger, errorCode } from '@runnel/common';
import { afterEach, describe, expect, it } from 'vitest';
import type { GroupSettings, JoinRequest } from '../src/group/classicGroup.js';
import { GroupCoordinator, type OffsetsLog, type OffsetsRecord } from '../src/group/groupCoordinator.js';
import { encodeOffsetsKey } from '../src/group/offsetsTopicRecords.js';
import { ReplicatedOffsetsLog } from '../src/group/replicatedOffsetsLog.js';
import { leaderFixture, TOPIC, type LeaderFixture } from './leaderHarness.js';
import { byMemberId, joinRequest, ManualClock } from './groupHarness.js';

const SETTINGS: GroupSettings = { minSessionTimeoutMs: 10, maxSessionTimeoutMs: 60_000, maxSize: 100, initialRebalanceDelayMs: 0 };
const logger = createLogger({ name: 'test', level: 'silent' });

/** Sessions of 30 s: the failover in these tests must not expire members. */
const join = (overrides: Partial<JoinRequest> = {}): JoinRequest => joinRequest({ sessionTimeoutMs: 30_000, ...overrides });

describe('GroupCoordinator', () => {
  let fixture: LeaderFixture | undefined;
  afterEach(async () => {
    await fixture?.close();
    fixture = undefined;
  });

  /** A coordinator over partition 0 of the fixture's topic (one offsets partition: every group lands there). */
  async function coordinator(): Promise<GroupCoordinator> {
    fixture ??= await leaderFixture({ brokerId: 1, role: { leader: 1, leaderEpoch: 1, partitionEpoch: 1, replicas: [1], isr: [1] } });
    const log = new ReplicatedOffsetsLog(fixture.logs, fixture.replicas, 5_000, TOPIC);
    const coordinator = new GroupCoordinator({ offsetsPartitions: () => 1, group: SETTINGS, log, logger });
    await coordinator.becomeCoordinator(0, 1);
    return coordinator;
  }

  it('stores a generation\'s assignment and the committed offsets; a new coordinator loads both and the group carries on', async () => {
    const first = await coordinator();
    const joined = await first.join('billing', join());
    expect(joined.errorCode).toBe(0);
    const synced = await first.sync('billing', { memberId: joined.memberId, generationId: 1, protocolType: 'consumer', protocolName: 'range', assignments: [{ memberId: joined.memberId, assignment: Buffer.from('orders:0-5') }] });
    expect(synced.errorCode).toBe(0);
    const committed = await first.commitOffsets('billing', joined.memberId, 1, [
      { topic: 'orders', partition: 0, offset: 42, leaderEpoch: 3, metadata: 'm' },
      { topic: 'orders', partition: 1, offset: 7, leaderEpoch: -1, metadata: '' },
    ]);
    expect(committed).toEqual([0, 0]);
    expect(fixture!.partition.log.logEndOffset).toBe(3); // one group record, two offset records

    // The partition's leadership moves (here: to a new coordinator over the same replica).
    first.resign(0);
    expect(first.heartbeat('billing', joined.memberId, 1)).toBe(errorCode('NOT_COORDINATOR'));
    const second = await coordinator();
    const described = second.describe('billing').group!;
    expect(described).toMatchObject({ state: 'Stable', generationId: 1, protocolName: 'range', leader: joined.memberId });
    expect(described.members.map((member) => member.assignment.toString())).toEqual(['orders:0-5']);
    expect(second.heartbeat('billing', joined.memberId, 1)).toBe(0);
    expect(second.fetchOffsets('billing', null).offsets.map((entry) => [entry.partition, entry.offset, entry.leaderEpoch, entry.metadata]).sort()).toEqual([
      [0, 42, 3, 'm'],
      [1, 7, -1, ''],
    ]);
    const missing = second.fetchOffsets('billing', [{ topic: 'orders', partition: 9 }]).offsets[0]!;
    expect(missing.offset).toBe(-1);
  });

  it('rewrites the group record when the group becomes Empty: a new coordinator does not bring departed members back', async () => {
    const first = await coordinator();
    const joined = await first.join('billing', join());
    await first.sync('billing', { memberId: joined.memberId, generationId: 1, protocolType: null, protocolName: null, assignments: [{ memberId: joined.memberId, assignment: Buffer.from('orders:0') }] });
    expect(first.leave('billing', byMemberId(joined.memberId)).members).toEqual([0]);
    expect(first.describe('billing').group).toMatchObject({ state: 'Empty', generationId: 2, members: [] });

    first.resign(0);
    const second = await coordinator();
    expect(second.describe('billing').group).toMatchObject({ state: 'Empty', generationId: 2, leader: '', protocolName: '', members: [] });
    expect(second.heartbeat('billing', joined.memberId, 1)).toBe(errorCode('UNKNOWN_MEMBER_ID'));
    // Being empty, the group takes commits from outside it again.
    expect(await second.commitOffsets('billing', '', -1, [{ topic: 'orders', partition: 0, offset: 3, leaderEpoch: -1, metadata: '' }])).toEqual([0]);
  });

  it('stores a static member\'s instance id: a new coordinator fences the old member id and lets the restarted instance back in without a rebalance', async () => {
    const first = await coordinator();
    const offset = [{ topic: 'orders', partition: 0, offset: 5, leaderEpoch: -1, metadata: '' }];
    const joined = await first.join('billing', join({ groupInstanceId: 'billing-0' }));
    await first.sync('billing', { memberId: joined.memberId, groupInstanceId: 'billing-0', generationId: 1, protocolType: null, protocolName: null, assignments: [{ memberId: joined.memberId, assignment: Buffer.from('orders:0') }] });
    // The instance restarts: a new member id, the same generation; the old id may no longer commit.
    const restarted = await first.join('billing', join({ groupInstanceId: 'billing-0' }));
    expect(restarted).toMatchObject({ errorCode: 0, generationId: 1 });
    expect(await first.commitOffsets('billing', joined.memberId, 1, offset, 'billing-0')).toEqual([errorCode('FENCED_INSTANCE_ID')]);
    expect(await first.commitOffsets('billing', restarted.memberId, 1, offset, 'billing-0')).toEqual([0]);

    first.resign(0);
    const second = await coordinator();
    const described = second.describe('billing').group!;
    expect(described).toMatchObject({ state: 'Stable', generationId: 1, leader: restarted.memberId });
    expect(described.members.map((member) => [member.memberId, member.groupInstanceId, member.assignment.toString()])).toEqual([[restarted.memberId, 'billing-0', 'orders:0']]);
    expect(second.heartbeat('billing', joined.memberId, 1, 'billing-0')).toBe(errorCode('FENCED_INSTANCE_ID'));
    expect(second.heartbeat('billing', restarted.memberId, 1, 'billing-0')).toBe(0);
    const again = await second.join('billing', join({ groupInstanceId: 'billing-0' }));
    expect(again).toMatchObject({ errorCode: 0, generationId: 1 });
    expect(second.describe('billing').group).toMatchObject({ state: 'Stable', generationId: 1, leader: again.memberId });
    expect(await second.commitOffsets('billing', restarted.memberId, 1, offset, 'billing-0')).toEqual([errorCode('FENCED_INSTANCE_ID')]);
    expect(second.leave('billing', [{ memberId: '', groupInstanceId: 'billing-0' }]).members).toEqual([0]);
    expect(second.describe('billing').group).toMatchObject({ state: 'Empty', members: [] });
  });

  it('checks who commits: members of the current generation, or anyone while the group is empty', async () => {
    const coordinatorHere = await coordinator();
    expect(await coordinatorHere.commitOffsets('tools', '', -1, [{ topic: 'orders', partition: 0, offset: 5, leaderEpoch: -1, metadata: '' }])).toEqual([0]);
    const joined = await coordinatorHere.join('billing', join());
    const offset = [{ topic: 'orders', partition: 0, offset: 1, leaderEpoch: -1, metadata: '' }];
    expect(await coordinatorHere.commitOffsets('billing', '', -1, offset)).toEqual([errorCode('UNKNOWN_MEMBER_ID')]);
    expect(await coordinatorHere.commitOffsets('billing', 'stranger', 1, offset)).toEqual([errorCode('UNKNOWN_MEMBER_ID')]);
    expect(await coordinatorHere.commitOffsets('billing', joined.memberId, 0, offset)).toEqual([errorCode('ILLEGAL_GENERATION')]);
    // Joined but not synced: the generation's assignment is not out yet.
    expect(await coordinatorHere.commitOffsets('billing', joined.memberId, 1, offset)).toEqual([errorCode('REBALANCE_IN_PROGRESS')]);
    await coordinatorHere.sync('billing', { memberId: joined.memberId, generationId: 1, protocolType: null, protocolName: null, assignments: [] });
    expect(await coordinatorHere.commitOffsets('billing', joined.memberId, 1, [{ ...offset[0]!, metadata: 'x'.repeat(5000) }, { ...offset[0]!, partition: 1 }])).toEqual([
      errorCode('OFFSET_METADATA_TOO_LARGE'),
      0,
    ]);
    expect(coordinatorHere.fetchOffsets('billing', null).offsets.map((entry) => entry.partition)).toEqual([1]);
    expect(coordinatorHere.fetchOffsets('tools', null).offsets.map((entry) => entry.offset)).toEqual([5]);
    expect((await coordinatorHere.join('', join())).errorCode).toBe(errorCode('INVALID_GROUP_ID'));
    // As Kafka: a generation for a group never heard of is an old one; a member id for an Empty group is no member.
    expect(await coordinatorHere.commitOffsets('nobody-knows', 'm-1', 3, offset)).toEqual([errorCode('ILLEGAL_GENERATION')]);
    expect(coordinatorHere.leave('billing', byMemberId(joined.memberId)).members).toEqual([0]);
    expect(await coordinatorHere.commitOffsets('billing', joined.memberId, 1, offset)).toEqual([errorCode('UNKNOWN_MEMBER_ID')]);
    // A group known only by offsets committed from outside it is described as Empty, not Dead.
    expect(coordinatorHere.describe('tools').group).toMatchObject({ groupId: 'tools', state: 'Empty', members: [] });
    expect(coordinatorHere.describe('nobody-knows').group).toBeNull();
  });

  it('refuses offset metadata longer than offset.metadata.max.bytes', async () => {
    fixture ??= await leaderFixture({ brokerId: 1, role: { leader: 1, leaderEpoch: 1, partitionEpoch: 1, replicas: [1], isr: [1] } });
    const log = new ReplicatedOffsetsLog(fixture.logs, fixture.replicas, 5_000, TOPIC);
    const strict = new GroupCoordinator({ offsetsPartitions: () => 1, group: SETTINGS, log, logger, offsetMetadataBytesMax: 8 });
    await strict.becomeCoordinator(0, 1);
    const commit = (metadata: string) => strict.commitOffsets('tools', '', -1, [{ topic: 'orders', partition: 0, offset: 5, leaderEpoch: -1, metadata }]);
    expect(await commit('12345678')).toEqual([0]);
    expect(await commit('123456789')).toEqual([errorCode('OFFSET_METADATA_TOO_LARGE')]);
  });

  it('answers NOT_COORDINATOR for groups it does not host, and a failed write as COORDINATOR_NOT_AVAILABLE without remembering it', async () => {
    const coordinatorHere = await coordinator();
    const elsewhere = new GroupCoordinator({ offsetsPartitions: () => 1, group: SETTINGS, log: new ReplicatedOffsetsLog(fixture!.logs, fixture!.replicas, 5_000, TOPIC), logger });
    expect((await elsewhere.join('billing', join())).errorCode).toBe(errorCode('NOT_COORDINATOR'));
    expect(elsewhere.fetchOffsets('billing', null).errorCode).toBe(errorCode('NOT_COORDINATOR'));
    // min.insync.replicas above the ISR: the acks=all write is refused.
    fixture!.partition.minInsyncReplicas = 2;
    expect(await coordinatorHere.commitOffsets('tools', '', -1, [{ topic: 'orders', partition: 0, offset: 5, leaderEpoch: -1, metadata: '' }])).toEqual([errorCode('COORDINATOR_NOT_AVAILABLE')]);
    expect(coordinatorHere.fetchOffsets('tools', null).offsets).toEqual([]);
  });

  it('answers COORDINATOR_LOAD_IN_PROGRESS while it loads, and applies tombstones when it does', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const records: OffsetsRecord[] = [
      { key: encodeOffsetsKey({ type: 'offset', group: 'g', topic: 't', partition: 0 }), value: null },
      { key: encodeOffsetsKey({ type: 'group', group: 'g' }), value: null },
    ];
    // A stand-in log (the coordinator is the layer above it): it holds the load until released.
    const log: OffsetsLog = {
      append: async () => undefined,
      async *readAll() {
        await gate;
        yield* records;
      },
    };
    const loading = new GroupCoordinator({ offsetsPartitions: () => 1, group: SETTINGS, log, logger });
    const loaded = loading.becomeCoordinator(0, 1);
    expect(loading.heartbeat('g', 'm', 1)).toBe(errorCode('COORDINATOR_LOAD_IN_PROGRESS'));
    expect((await loading.join('g', join())).errorCode).toBe(errorCode('COORDINATOR_LOAD_IN_PROGRESS'));
    release();
    await loaded;
    expect(loading.isCoordinatorFor('g')).toBe(true);
    expect(loading.fetchOffsets('g', null).offsets).toEqual([]);
    expect(loading.describe('g').group).toBeNull();
  });
});

describe('GroupCoordinator: listing, describing and deleting groups', () => {
  let fixture: LeaderFixture | undefined;
  afterEach(async () => {
    await fixture?.close();
    fixture = undefined;
  });

  it('deletes an empty group with its offsets (tombstones a new coordinator honours), refuses one with members', async () => {
    fixture = await leaderFixture({ brokerId: 1, role: { leader: 1, leaderEpoch: 1, partitionEpoch: 1, replicas: [1], isr: [1] } });
    const start = async () => {
      const made = new GroupCoordinator({ offsetsPartitions: () => 1, group: SETTINGS, log: new ReplicatedOffsetsLog(fixture!.logs, fixture!.replicas, 5_000, TOPIC), logger });
      await made.becomeCoordinator(0, 1);
      return made;
    };
    const here = await start();
    const member = await here.join('billing', join());
    await here.sync('billing', { memberId: member.memberId, generationId: 1, protocolType: null, protocolName: null, assignments: [] });
    await here.commitOffsets('billing', member.memberId, 1, [{ topic: 'orders', partition: 0, offset: 9, leaderEpoch: -1, metadata: '' }]);
    await here.commitOffsets('tools', '', -1, [{ topic: 'orders', partition: 0, offset: 3, leaderEpoch: -1, metadata: '' }]);
    expect(here.listGroups()).toEqual([
      { groupId: 'billing', protocolType: 'consumer', state: 'Stable' },
      { groupId: 'tools', protocolType: '', state: 'Empty' },
    ]);
    expect(await here.deleteGroup('billing')).toBe(errorCode('NON_EMPTY_GROUP'));
    expect(await here.deleteGroup('nobody')).toBe(errorCode('GROUP_ID_NOT_FOUND'));
    here.leave('billing', byMemberId(member.memberId));
    expect(await here.deleteGroup('billing')).toBe(0);
    expect(await here.deleteGroup('tools')).toBe(0);
    expect(here.listGroups()).toEqual([]);
    expect(here.fetchOffsets('billing', null).offsets).toEqual([]);
    here.resign(0);
    const next = await start();
    expect(next.listGroups()).toEqual([]);
    expect(next.describe('billing').group).toBeNull();
    expect(next.fetchOffsets('tools', null).offsets).toEqual([]);
  });
});

describe('GroupCoordinator: offsets.retention.minutes', () => {
  let fixture: LeaderFixture | undefined;
  afterEach(async () => {
    await fixture?.close();
    fixture = undefined;
  });

  it('expires the offsets of a group empty for the retention time, and offsets committed from outside a group after it', async () => {
    fixture = await leaderFixture({ brokerId: 1, role: { leader: 1, leaderEpoch: 1, partitionEpoch: 1, replicas: [1], isr: [1] } });
    const clock = new ManualClock();
    clock.advance(1_000_000);
    const start = async () => {
      const made = new GroupCoordinator({ offsetsPartitions: () => 1, group: SETTINGS, log: new ReplicatedOffsetsLog(fixture!.logs, fixture!.replicas, 5_000, TOPIC), logger, clock });
      await made.becomeCoordinator(0, 1);
      return made;
    };
    const here = await start();
    const retentionMs = 60_000;
    const offset = (partition: number) => [{ topic: 'orders', partition, offset: 5, leaderEpoch: -1, metadata: '' }];
    await here.commitOffsets('tools', '', -1, offset(0));
    const member = await here.join('billing', join());
    await here.sync('billing', { memberId: member.memberId, generationId: 1, protocolType: null, protocolName: null, assignments: [] });
    await here.commitOffsets('billing', member.memberId, 1, offset(1));

    clock.advance(50_000);
    here.leave('billing', byMemberId(member.memberId)); // billing is empty from now on
    expect(await here.expireOffsets(retentionMs)).toBe(0);
    clock.advance(20_000); // tools' commit is 70 s old; billing has been empty 20 s
    expect(await here.expireOffsets(retentionMs)).toBe(1);
    expect(here.fetchOffsets('tools', null).offsets).toEqual([]);
    expect(here.fetchOffsets('billing', null).offsets.map((entry) => entry.partition)).toEqual([1]);
    // A group with members keeps its offsets however old they are.
    clock.advance(60_000);
    expect(await here.expireOffsets(retentionMs)).toBe(1);
    expect(here.fetchOffsets('billing', null).offsets).toEqual([]);
    expect(here.listGroups()).toEqual([]);
    here.resign(0);
    const next = await start();
    expect(next.listGroups()).toEqual([]);
    expect(next.fetchOffsets('billing', null).offsets).toEqual([]);
  });

  it('keeps the offsets of a group that has members', async () => {
    fixture = await leaderFixture({ brokerId: 1, role: { leader: 1, leaderEpoch: 1, partitionEpoch: 1, replicas: [1], isr: [1] } });
    const clock = new ManualClock();
    const here = new GroupCoordinator({ offsetsPartitions: () => 1, group: SETTINGS, log: new ReplicatedOffsetsLog(fixture.logs, fixture.replicas, 5_000, TOPIC), logger, clock });
    await here.becomeCoordinator(0, 1);
    const member = await here.join('billing', join({ sessionTimeoutMs: 60_000 }));
    await here.sync('billing', { memberId: member.memberId, generationId: 1, protocolType: null, protocolName: null, assignments: [] });
    await here.commitOffsets('billing', member.memberId, 1, [{ topic: 'orders', partition: 0, offset: 5, leaderEpoch: -1, metadata: '' }]);
    for (let k = 0; k < 10; k++) {
      clock.advance(50_000);
      expect(here.heartbeat('billing', member.memberId, 1)).toBe(0);
    }
    expect(await here.expireOffsets(60_000)).toBe(0);
    expect(here.fetchOffsets('billing', null).offsets.map((entry) => entry.offset)).toEqual([5]);
  });
});
