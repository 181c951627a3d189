// The group APIs through the Kafka door onto the broker's GroupCoordinator, whose groups and offsets
// live in a real __consumer_offsets partition: a member's whole round (find the coordinator, join,
// sync, heartbeat, commit, fetch, leave) at old and flexible versions, the admin calls, and the
// errors that send a client to look for its coordinator again.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { errorCode } from '@runnel/common';
import type { KafkaWireClient } from '@runnel/testkit';
import { OFFSETS_TOPIC } from '../src/group/groupCoordinator.js';
import { KafkaDoorFixture, OTHER_BROKER, THIS_BROKER } from './kafkaDoorHarness.js';

const subscription = Buffer.from('subscription of orders');

describe('the Kafka door\'s group APIs', () => {
  let fixture: KafkaDoorFixture;
  let client: KafkaWireClient;

  beforeEach(async () => {
    fixture = await KafkaDoorFixture.start({ config: { 'offsets.topic.segment.bytes': '1048576' } });
    await fixture.createTopic('orders', 2);
    client = await fixture.connect('member-client');
  });

  afterEach(async () => {
    client.close();
    await fixture.close();
  });

  it('finds the coordinator at its PLAINTEXT address (creating __consumer_offsets on first use), at FindCoordinator 0-4', async () => {
    for (let version = 0; version <= 3; version++) {
      const found = await client.send('FindCoordinator', version, { key: 'billing', keyType: 0 });
      expect(found).toMatchObject({ errorCode: 0, nodeId: THIS_BROKER, host: '127.0.0.1', port: fixture.port });
    }
    expect(fixture.created).toEqual([OFFSETS_TOPIC]);
    expect(fixture.image.topicConfigs(OFFSETS_TOPIC).get('cleanup.policy')).toBe('compact');
    expect(fixture.image.topicConfigs(OFFSETS_TOPIC).get('segment.bytes')).toBe('1048576');
    const batched = await client.send('FindCoordinator', 4, { keyType: 0, coordinatorKeys: ['billing', 'shipping', ''] });
    expect(batched.coordinators.map((entry) => [entry.key, entry.errorCode, entry.nodeId, entry.port])).toEqual([
      ['billing', 0, THIS_BROKER, fixture.port],
      ['shipping', 0, THIS_BROKER, fixture.port],
      ['', errorCode('INVALID_GROUP_ID'), -1, -1],
    ]);
    const transactional = await client.send('FindCoordinator', 3, { key: 'tx-1', keyType: 1 });
    expect(transactional).toMatchObject({ errorCode: errorCode('INVALID_REQUEST'), nodeId: -1 });
    expect(transactional.errorMessage).toMatch(/transactions/);
  });

  /** One member's join and sync at the given versions; returns its member id and generation. */
  async function joinAndSync(groupId: string, joinVersion: number, syncVersion: number): Promise<{ memberId: string; generationId: number }> {
    expect((await client.send('FindCoordinator', 1, { key: groupId, keyType: 0 })).errorCode).toBe(0);
    const join = (memberId: string) =>
      client.send('JoinGroup', joinVersion, {
        groupId,
        sessionTimeoutMs: 10_000,
        ...(joinVersion >= 1 ? { rebalanceTimeoutMs: 10_000 } : {}),
        memberId,
        protocolType: 'consumer',
        protocols: [{ name: 'range', metadata: subscription }],
      });
    let joined = await join('');
    if (joinVersion >= 4) {
      // KIP-394: the first join only hands out the member id.
      expect(joined.errorCode).toBe(errorCode('MEMBER_ID_REQUIRED'));
      joined = await join(joined.memberId);
    }
    expect(joined).toMatchObject({ errorCode: 0, generationId: 1, protocolName: 'range', leader: joined.memberId });
    expect(joined.members.map((member) => [member.memberId, member.metadata.toString()])).toEqual([[joined.memberId, subscription.toString()]]);
    if (joinVersion >= 7) expect(joined.protocolType).toBe('consumer');
    const synced = await client.send('SyncGroup', syncVersion, {
      groupId,
      generationId: joined.generationId,
      memberId: joined.memberId,
      ...(syncVersion >= 5 ? { protocolType: 'consumer', protocolName: 'range' } : {}),
      assignments: [{ memberId: joined.memberId, assignment: Buffer.from('orders:0,1') }],
    });
    expect(synced).toMatchObject({ errorCode: 0 });
    expect(synced.assignment.toString()).toBe('orders:0,1');
    return { memberId: joined.memberId, generationId: joined.generationId };
  }

  for (const versions of [
    { join: 0, sync: 0, heartbeat: 0, commit: 2, fetch: 1, leave: 0, label: 'the oldest versions (kafka-python, KafkaJS)' },
    { join: 5, sync: 3, heartbeat: 3, commit: 7, fetch: 5, leave: 3, label: 'librdkafka 2.0\'s versions' },
    { join: 9, sync: 5, heartbeat: 4, commit: 8, fetch: 8, leave: 5, label: 'the newest, flexible versions' },
  ]) {
    it(`runs a member's whole round at ${versions.label}`, async () => {
      const groupId = `group-${versions.join}`;
      const { memberId, generationId } = await joinAndSync(groupId, versions.join, versions.sync);
      expect(await client.send('Heartbeat', versions.heartbeat, { groupId, generationId, memberId })).toMatchObject({ errorCode: 0 });
      expect((await client.send('Heartbeat', versions.heartbeat, { groupId, generationId: generationId + 1, memberId })).errorCode).toBe(errorCode('ILLEGAL_GENERATION'));

      const committed = await client.send('OffsetCommit', versions.commit, {
        groupId,
        generationIdOrMemberEpoch: generationId,
        memberId,
        topics: [{ name: 'orders', partitions: [{ partitionIndex: 0, committedOffset: 42n, committedLeaderEpoch: 0, committedMetadata: 'm' }, { partitionIndex: 1, committedOffset: 7n, committedMetadata: null }] }],
      });
      expect(committed.topics).toEqual([{ name: 'orders', partitions: [{ partitionIndex: 0, errorCode: 0 }, { partitionIndex: 1, errorCode: 0 }] }]);

      const wanted = [{ name: 'orders', partitionIndexes: [0, 1, 5] }];
      const fetched = versions.fetch >= 8 ? (await client.send('OffsetFetch', 8, { groups: [{ groupId, topics: wanted }] })).groups[0]! : await client.send('OffsetFetch', versions.fetch, { groupId, topics: wanted });
      expect(fetched.topics[0]!.partitions.map((partition) => [partition.partitionIndex, partition.committedOffset, partition.metadata, partition.errorCode])).toEqual([
        [0, 42n, 'm', 0],
        [1, 7n, '', 0],
        [5, -1n, '', 0],
      ]);
      if (versions.fetch >= 5) expect(fetched.topics[0]!.partitions[0]!.committedLeaderEpoch).toBe(0);

      const left = await client.send('LeaveGroup', versions.leave, versions.leave >= 3 ? { groupId, members: [{ memberId, groupInstanceId: null }, { memberId: 'stranger', groupInstanceId: null }] } : { groupId, memberId });
      expect(left.errorCode).toBe(0);
      if (versions.leave >= 3) expect(left.members.map((member) => [member.memberId, member.errorCode])).toEqual([[memberId, 0], ['stranger', errorCode('UNKNOWN_MEMBER_ID')]]);
      const described = (await client.send('DescribeGroups', 5, { groups: [groupId] })).groups[0]!;
      expect(described).toMatchObject({ errorCode: 0, groupState: 'Empty', members: [] });
    });
  }

  it('fetches every committed offset with a null topic list (v2+), and reports the whole group\'s error per partition before v2', async () => {
    const { memberId, generationId } = await joinAndSync('all-offsets', 5, 3);
    await client.send('OffsetCommit', 7, { groupId: 'all-offsets', generationIdOrMemberEpoch: generationId, memberId, topics: [{ name: 'orders', partitions: [{ partitionIndex: 1, committedOffset: 3n, committedMetadata: '' }] }] });
    const all = await client.send('OffsetFetch', 3, { groupId: 'all-offsets', topics: null });
    expect(all.topics.map((topic) => [topic.name, topic.partitions.map((partition) => [partition.partitionIndex, partition.committedOffset])])).toEqual([['orders', [[1, 3n]]]]);

    // The group's __consumer_offsets partition moves to another broker: this one is no longer its coordinator.
    const partition = fixture.coordinator.partitionFor('all-offsets');
    await fixture.moveLeader(OFFSETS_TOPIC, partition, OTHER_BROKER);
    const old = await client.send('OffsetFetch', 1, { groupId: 'all-offsets', topics: [{ name: 'orders', partitionIndexes: [1] }] });
    expect(old.topics[0]!.partitions[0]).toMatchObject({ committedOffset: -1n, errorCode: errorCode('NOT_COORDINATOR') });
    expect(await client.send('OffsetFetch', 4, { groupId: 'all-offsets', topics: null })).toMatchObject({ errorCode: errorCode('NOT_COORDINATOR'), topics: [] });
    expect((await client.send('Heartbeat', 4, { groupId: 'all-offsets', generationId, memberId })).errorCode).toBe(errorCode('NOT_COORDINATOR'));
    const found = await client.send('FindCoordinator', 2, { key: 'all-offsets', keyType: 0 });
    expect(found).toMatchObject({ errorCode: 0, nodeId: OTHER_BROKER, port: 2 });
  });

  it('lists groups (with v4\'s state filter), describes them, and deletes the empty ones', async () => {
    await joinAndSync('busy', 9, 5);
    const { memberId, generationId } = await joinAndSync('idle', 9, 5);
    await client.send('OffsetCommit', 8, { groupId: 'idle', generationIdOrMemberEpoch: generationId, memberId, topics: [{ name: 'orders', partitions: [{ partitionIndex: 0, committedOffset: 1n, committedMetadata: '' }] }] });
    await client.send('LeaveGroup', 5, { groupId: 'idle', members: [{ memberId, groupInstanceId: null }] });

    const listed = await client.send('ListGroups', 4, { statesFilter: [] });
    expect(listed.groups.map((group) => [group.groupId, group.protocolType, group.groupState])).toEqual([
      ['busy', 'consumer', 'Stable'],
      ['idle', 'consumer', 'Empty'],
    ]);
    expect((await client.send('ListGroups', 4, { statesFilter: ['stable'] })).groups.map((group) => group.groupId)).toEqual(['busy']);
    expect((await client.send('ListGroups', 0, {})).groups.map((group) => group.groupId)).toEqual(['busy', 'idle']);

    const described = await client.send('DescribeGroups', 4, { groups: ['busy', 'nobody'] });
    expect(described.groups[0]).toMatchObject({ errorCode: 0, groupState: 'Stable', protocolType: 'consumer', protocolData: 'range' });
    expect(described.groups[0]!.members[0]).toMatchObject({ clientId: 'member-client', clientHost: '/127.0.0.1' });
    expect(described.groups[0]!.members[0]!.memberAssignment.toString()).toBe('orders:0,1');
    expect(described.groups[1]).toMatchObject({ errorCode: 0, groupId: 'nobody', groupState: 'Dead', members: [] });

    const deleted = await client.send('DeleteGroups', 2, { groupsNames: ['idle', 'busy', 'nobody'] });
    expect(deleted.results.map((result) => [result.groupId, result.errorCode])).toEqual([
      ['idle', 0],
      ['busy', errorCode('NON_EMPTY_GROUP')],
      ['nobody', errorCode('GROUP_ID_NOT_FOUND')],
    ]);
  });
});
