// Admin's group calls against the fake brokers, each also serving a scripted GroupApi: the
// coordinator is found (and found again when it moves or loads), answers are mapped onto the
// Admin's types, and Kafka errors become RunnelErrors naming the group.
import { errorCode, loadGroupProto, RunnelError, type GroupApi } from '@runnel/common';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Admin } from '../src/index.js';
import { encodeAssignment } from '../src/group/consumerProtocol.js';
import { FakeCluster } from './fakeBroker.js';

/** The answer of each GroupApi call the Admin makes. */
interface Answers {
  FindCoordinator: GroupApi.FindCoordinatorResponse;
  ListGroups: GroupApi.ListGroupsResponse;
  DescribeGroups: GroupApi.DescribeGroupsResponse;
  OffsetFetch: GroupApi.OffsetFetchResponse;
  OffsetCommit: GroupApi.OffsetCommitResponse;
  DeleteGroups: GroupApi.DeleteGroupsResponse;
}

/** What every fake broker's GroupApi answers; `answers` are consumed first, one per call. */
class ScriptedGroups {
  coordinator = 2;
  readonly calls: Array<{ nodeId: number; method: string; request: unknown }> = [];
  readonly answers = new Map<string, unknown[]>();
  readonly listed = new Map<number, GroupApi.ListedGroup[]>();
  describe: (groupId: string) => GroupApi.DescribedGroup = (groupId) => ({ errorCode: 0, groupId, groupState: 'Dead', members: [] });
  offsets: GroupApi.OffsetFetchPartitionResult[] = [];
  commitCode = 0;
  deleteCode = 0;

  constructor(private readonly cluster: FakeCluster) {}

  /** Queues answers for `method` ahead of the scripted ones. */
  queue<M extends keyof Answers>(method: M, ...answers: Array<Answers[M]>): void {
    this.answers.set(method, [...(this.answers.get(method) ?? []), ...answers]);
  }

  handlers(nodeId: number): GroupApi.GroupApiHandlers {
    const serve =
      <M extends keyof Answers>(method: M, answer: (request: never) => Answers[M]) =>
      (call: { request: unknown }, callback: (error: null, response: unknown) => void) => {
        this.calls.push({ nodeId, method, request: call.request });
        const queued = this.answers.get(method)?.shift();
        callback(null, queued ?? answer(call.request as never));
      };
    const notCoordinator = { errorCode: errorCode('NOT_COORDINATOR') };
    const isCoordinator = () => nodeId === this.coordinator;
    return {
      FindCoordinator: serve('FindCoordinator', () => {
        const broker = this.cluster.brokers.find((candidate) => candidate.nodeId === this.coordinator)!;
        return { errorCode: 0, nodeId: broker.nodeId, host: '127.0.0.1', port: broker.port };
      }),
      ListGroups: serve('ListGroups', () => ({ errorCode: 0, groups: this.listed.get(nodeId) ?? [] })),
      DescribeGroups: serve('DescribeGroups', (request: GroupApi.DescribeGroupsRequest__Output) => ({
        groups: request.groups.map((groupId) => (isCoordinator() ? this.describe(groupId) : { ...notCoordinator, groupId })),
      })),
      OffsetFetch: serve('OffsetFetch', () => (isCoordinator() ? { errorCode: 0, partitions: this.offsets } : notCoordinator)),
      OffsetCommit: serve('OffsetCommit', (request: GroupApi.OffsetCommitRequest__Output) => ({
        partitions: request.partitions.map((entry) => ({ topic: entry.topic, partition: entry.partition, errorCode: isCoordinator() ? this.commitCode : notCoordinator.errorCode })),
      })),
      DeleteGroups: serve('DeleteGroups', (request: GroupApi.DeleteGroupsRequest__Output) => ({
        results: request.groupsNames.map((groupId) => ({ groupId, errorCode: isCoordinator() ? this.deleteCode : notCoordinator.errorCode })),
      })),
    } as unknown as GroupApi.GroupApiHandlers;
  }

  callsOf(method: string): Array<{ nodeId: number; request: unknown }> {
    return this.calls.filter((entry) => entry.method === method);
  }
}

describe('Admin group calls against fake brokers', () => {
  let cluster: FakeCluster;
  let groups: ScriptedGroups;
  let admin: Admin;

  beforeEach(async () => {
    cluster = await FakeCluster.start(3);
    groups = new ScriptedGroups(cluster);
    for (const broker of cluster.brokers) broker.server.addService(loadGroupProto().runnel.v1.GroupApi.service, groups.handlers(broker.nodeId));
    admin = new Admin({ bootstrap: cluster.bootstrap, requestTimeoutMs: 3000 });
  });

  afterEach(async () => {
    await admin.close();
    await cluster.stop();
  });

  it('finds the coordinator, retrying while none is available or it is loading', async () => {
    groups.queue('FindCoordinator', { errorCode: errorCode('COORDINATOR_NOT_AVAILABLE'), errorMessage: '__consumer_offsets-7 has no leader now' });
    groups.queue('FindCoordinator', { errorCode: errorCode('COORDINATOR_LOAD_IN_PROGRESS') });
    const coordinator = await admin.findCoordinator('billing');
    expect(coordinator.nodeId).toBe(2);
    expect(coordinator.connection.address).toBe(cluster.brokers[1]!.address);
    expect(groups.callsOf('FindCoordinator').map((entry) => entry.request)).toEqual([{ key: 'billing' }, { key: 'billing' }, { key: 'billing' }]);
  });

  it('gives up on the coordinator after requestTimeoutMs, with the last error naming the group; INVALID_GROUP_ID at once', async () => {
    const unavailable = { errorCode: errorCode('COORDINATOR_NOT_AVAILABLE'), errorMessage: 'no leader' };
    groups.queue('FindCoordinator', ...Array.from({ length: 100 }, () => unavailable));
    const shortAdmin = new Admin({ bootstrap: cluster.bootstrap, requestTimeoutMs: 600 });
    try {
      const startedMs = Date.now();
      const error = (await shortAdmin.findCoordinator('billing').catch((e: unknown) => e)) as RunnelError;
      expect(Date.now() - startedMs).toBeGreaterThanOrEqual(300);
      expect(Date.now() - startedMs).toBeLessThan(2000);
      expect(groups.callsOf('FindCoordinator').length).toBeGreaterThan(2);
      expect(error).toBeInstanceOf(RunnelError);
      expect(error.errorName).toBe('COORDINATOR_NOT_AVAILABLE');
      expect(error.message).toContain("group 'billing': no coordinator answered within 600 ms");
      expect(error.message).toContain('no leader');
      groups.answers.clear();
      groups.queue('FindCoordinator', { errorCode: errorCode('INVALID_GROUP_ID'), errorMessage: 'the group id is empty' });
      await expect(shortAdmin.findCoordinator('')).rejects.toMatchObject({ errorName: 'INVALID_GROUP_ID', message: expect.stringContaining('the group id is empty') });
      expect(groups.callsOf('FindCoordinator').filter((entry) => (entry.request as { key: string }).key === '')).toHaveLength(1);
    } finally {
      await shortAdmin.close();
    }
  });

  it('lists the groups of every broker, merged and sorted', async () => {
    groups.listed.set(1, [{ groupId: 'zeta', protocolType: 'consumer', groupState: 'Stable' }]);
    groups.listed.set(2, [
      { groupId: 'alpha', protocolType: '', groupState: 'Empty' },
      { groupId: 'zeta', protocolType: 'consumer', groupState: 'Stable' },
    ]);
    groups.listed.set(3, [{ groupId: 'mid', protocolType: 'consumer', groupState: 'PreparingRebalance' }]);
    expect(await admin.listGroups()).toEqual([
      { groupId: 'alpha', state: 'Empty', protocolType: '' },
      { groupId: 'mid', state: 'PreparingRebalance', protocolType: 'consumer' },
      { groupId: 'zeta', state: 'Stable', protocolType: 'consumer' },
    ]);
    expect(new Set(groups.callsOf('ListGroups').map((entry) => entry.nodeId))).toEqual(new Set([1, 2, 3]));
  });

  it('fails a group listing that misses a broker, naming the broker', async () => {
    groups.queue('ListGroups', { errorCode: errorCode('UNKNOWN_SERVER_ERROR'), errorMessage: 'broken' });
    const error = (await admin.listGroups().catch((e: unknown) => e)) as RunnelError;
    expect(error).toBeInstanceOf(RunnelError);
    expect(error.message).toMatch(/list groups on node \d \(127\.0\.0\.1:\d+\): broken/);
  });

  it('describes a group with its members\' decoded assignments, asking the coordinator again after it moved', async () => {
    groups.describe = (groupId) => ({
      errorCode: 0,
      groupId,
      groupState: 'Stable',
      protocolType: 'consumer',
      protocolData: 'range',
      generationId: 4,
      leader: 'm-1',
      members: [
        { memberId: 'm-1', groupInstanceId: '', clientId: 'c-1', clientHost: '/10.0.0.1', memberAssignment: encodeAssignment({ partitions: [{ topic: 'orders', partitions: [0, 1] }] }) },
        { memberId: 'm-2', groupInstanceId: 'static-2', clientId: 'c-2', clientHost: '/10.0.0.2', memberAssignment: Buffer.alloc(0) },
      ],
    });
    groups.coordinator = 1;
    groups.queue('FindCoordinator', { errorCode: 0, nodeId: 3, host: '127.0.0.1', port: cluster.brokers[2]!.port });
    const [description] = await admin.describeGroups(['billing']);
    expect(description).toEqual({
      groupId: 'billing',
      state: 'Stable',
      protocolType: 'consumer',
      protocol: 'range',
      generationId: 4,
      leader: 'm-1',
      coordinator: 1,
      members: [
        { memberId: 'm-1', groupInstanceId: null, clientId: 'c-1', clientHost: '/10.0.0.1', assignment: [{ topic: 'orders', partitions: [0, 1] }] },
        { memberId: 'm-2', groupInstanceId: 'static-2', clientId: 'c-2', clientHost: '/10.0.0.2', assignment: [] },
      ],
    });
    expect(groups.callsOf('DescribeGroups').map((entry) => entry.nodeId)).toEqual([3, 1]);
  });

  it('decodes assignments only for consumer groups, and names the member whose bytes do not decode', async () => {
    groups.describe = (groupId) => ({
      errorCode: 0,
      groupId,
      groupState: 'Stable',
      protocolType: groupId === 'connect' ? 'connect' : 'consumer',
      members: [{ memberId: 'm-9', memberAssignment: Buffer.from('orders:0') }],
    });
    const [connect] = await admin.describeGroups(['connect']);
    expect(connect!.members[0]!.assignment).toEqual([]);
    await expect(admin.describeGroups(['billing'])).rejects.toMatchObject({ message: expect.stringMatching(/group 'billing'.*member 'm-9'/) });
    groups.describe = (groupId) => ({ errorCode: errorCode('INVALID_GROUP_ID'), groupId });
    await expect(admin.describeGroups(['bad'])).rejects.toMatchObject({ errorName: 'INVALID_GROUP_ID', message: expect.stringContaining("group 'bad'") });
  });

  it('lists committed offsets sorted, leaving out partitions without a commit', async () => {
    groups.offsets = [
      { topic: 'orders', partition: 1, offset: 17, leaderEpoch: -1, metadata: '' },
      { topic: 'audit', partition: 0, offset: -1, leaderEpoch: -1, metadata: '' },
      { topic: 'orders', partition: 0, offset: 42, leaderEpoch: 3, metadata: 'batch 7' },
    ];
    expect(await admin.listGroupOffsets('billing', [{ topic: 'audit', partition: 0 }, { topic: 'orders', partition: 0 }, { topic: 'orders', partition: 1 }])).toEqual([
      { topic: 'orders', partition: 0, offset: 42, leaderEpoch: 3, metadata: 'batch 7' },
      { topic: 'orders', partition: 1, offset: 17, leaderEpoch: -1, metadata: '' },
    ]);
    await admin.listGroupOffsets('billing');
    expect(groups.callsOf('OffsetFetch').map((entry) => entry.request)).toEqual([
      {
        groupId: 'billing',
        partitions: [
          { topic: 'audit', partition: 0 },
          { topic: 'orders', partition: 0 },
          { topic: 'orders', partition: 1 },
        ],
        allPartitions: false,
      },
      { groupId: 'billing', partitions: [], allPartitions: true },
    ]);
    groups.offsets = [{ topic: 'orders', partition: 0, offset: 1, errorCode: errorCode('UNKNOWN_TOPIC_OR_PARTITION') }];
    await expect(admin.listGroupOffsets('billing')).rejects.toMatchObject({ errorName: 'UNKNOWN_TOPIC_OR_PARTITION', message: expect.stringContaining("group 'billing' for orders-0") });
  });

  it('alters offsets from outside the group, and says so when the group has members', async () => {
    await admin.alterGroupOffsets('billing', [{ topic: 'orders', partition: 0, offset: 5 }]);
    expect(groups.callsOf('OffsetCommit').map((entry) => entry.request)).toEqual([
      { groupId: 'billing', generationId: -1, memberId: '', groupInstanceId: '', partitions: [{ topic: 'orders', partition: 0, offset: 5, leaderEpoch: -1, metadata: '' }] },
    ]);
    groups.commitCode = errorCode('UNKNOWN_MEMBER_ID');
    await expect(admin.alterGroupOffsets('billing', [{ topic: 'orders', partition: 0, offset: 5 }])).rejects.toMatchObject({
      errorName: 'UNKNOWN_MEMBER_ID',
      message: expect.stringContaining("cannot alter the offsets of group 'billing': it has active members"),
    });
    await expect(admin.alterGroupOffsets('billing', [{ topic: 'orders', partition: 0, offset: -3 }])).rejects.toThrow(RangeError);
  });

  it('deletes groups, every one tried, the first failure thrown naming its group', async () => {
    await admin.deleteGroups(['a', 'b']);
    expect(groups.callsOf('DeleteGroups').map((entry) => entry.request)).toEqual([{ groupsNames: ['a'] }, { groupsNames: ['b'] }]);
    groups.deleteCode = errorCode('NON_EMPTY_GROUP');
    await expect(admin.deleteGroups(['busy'])).rejects.toMatchObject({ errorName: 'NON_EMPTY_GROUP', message: "NON_EMPTY_GROUP: cannot delete group 'busy': it has active members" });
    groups.deleteCode = errorCode('GROUP_ID_NOT_FOUND');
    await expect(admin.deleteGroups(['ghost'])).rejects.toMatchObject({ errorName: 'GROUP_ID_NOT_FOUND', message: "GROUP_ID_NOT_FOUND: group 'ghost' does not exist" });
  });
});
