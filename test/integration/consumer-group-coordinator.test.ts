// The group coordinator on a real 3-node cluster, driven over GroupApi as a client library would:
// FindCoordinator creates __consumer_offsets on first use, a member joins (KIP-394), syncs its
// assignment and commits offsets; then the coordinator's node is SIGKILLed, and the new leader of
// the group's offsets partition carries the group on: same member and generation, same offsets.
// Also: a static member (group.instance.id) restarts without a rebalance, and its old member id is fenced.
import { describe, expect, it } from 'vitest';
import { Admin } from '@runnel/client';
import { errorCode } from '@runnel/common';
import { GroupClients, groupCall, type GroupClient } from './groupCalls.js';
import { useCluster, waitFor } from './harness.js';

const SESSION_TIMEOUT_MS = 3000;

describe('consumer groups: the coordinator', () => {
  const fixture = useCluster(3, {
    'broker.session.timeout.ms': String(SESSION_TIMEOUT_MS),
    'broker.heartbeat.interval.ms': '500',
    'offsets.topic.num.partitions': '3',
    'group.initial.rebalance.delay.ms': '0',
    'group.min.session.timeout.ms': '1000',
  });

  it('keeps a group and its committed offsets across a SIGKILL of the coordinator', async () => {
    const { cluster } = fixture;
    const clients = new GroupClients();
    const client = (address: string): GroupClient => clients.get(address);
    try {
      const findCoordinator = (except: number[] = []) => clients.findCoordinator(cluster.nodes, 'billing', except);
      const first = await findCoordinator();
      // The first FindCoordinator created the offsets topic: compacted, on every broker.
      const admin = new Admin({ bootstrap: cluster.nodes.map((node) => node.bootstrap) });
      try {
        const [offsetsTopic] = await admin.describeTopics(['__consumer_offsets']);
        expect(offsetsTopic!.configs['cleanup.policy']).toBe('compact');
        expect(offsetsTopic!.partitions.map((partition) => partition.replicas.length)).toEqual([3, 3, 3]);
      } finally {
        await admin.close();
      }
      const coordinator = client(`${first.host}:${first.port}`);
      const protocols = [{ name: 'range', metadata: Buffer.from('orders') }];
      const joinRequest = { groupId: 'billing', sessionTimeoutMs: 20_000, rebalanceTimeoutMs: 20_000, groupInstanceId: '', protocolType: 'consumer', protocols, clientId: 'billing-1', requireKnownMemberId: true };
      // The coordinator may still be loading its partition right after the topic was created.
      const idOnly = await waitFor(
        'a member id',
        async () => {
          const answer = await groupCall(coordinator, 'JoinGroup', { ...joinRequest, memberId: '' });
          return answer.errorCode === errorCode('COORDINATOR_LOAD_IN_PROGRESS') ? undefined : answer;
        },
        10_000,
      );
      expect(idOnly.errorCode).toBe(errorCode('MEMBER_ID_REQUIRED'));
      const joined = await groupCall(coordinator, 'JoinGroup', { ...joinRequest, memberId: idOnly.memberId });
      expect(joined).toMatchObject({ errorCode: 0, generationId: 1, leader: idOnly.memberId, memberId: idOnly.memberId, protocolName: 'range' });
      const synced = await groupCall(coordinator, 'SyncGroup', {
        groupId: 'billing',
        generationId: 1,
        memberId: joined.memberId,
        assignments: [{ memberId: joined.memberId, assignment: Buffer.from('orders:0,1') }],
      });
      expect(synced.errorCode).toBe(0);
      expect(Buffer.from(synced.assignment).toString()).toBe('orders:0,1');
      const committed = await groupCall(coordinator, 'OffsetCommit', {
        groupId: 'billing',
        generationId: 1,
        memberId: joined.memberId,
        partitions: [
          { topic: 'orders', partition: 0, offset: 42, leaderEpoch: -1, metadata: 'batch 7' },
          { topic: 'orders', partition: 1, offset: 17, leaderEpoch: -1, metadata: '' },
        ],
      });
      expect(committed.partitions.map((entry) => entry.errorCode)).toEqual([0, 0]);

      await cluster.node(first.nodeId).kill('SIGKILL');
      const next = await findCoordinator([first.nodeId]);
      const nextCoordinator = client(`${next.host}:${next.port}`);
      const fetched = await waitFor(
        'the committed offsets from the new coordinator',
        async () => {
          const answer = await groupCall(nextCoordinator, 'OffsetFetch', { groupId: 'billing', partitions: [], allPartitions: true });
          return answer.errorCode === 0 ? answer : undefined;
        },
        15_000,
        200,
      );
      expect(fetched.partitions.map((entry) => [entry.partition, Number(entry.offset), entry.metadata]).sort()).toEqual([
        [0, 42, 'batch 7'],
        [1, 17, ''],
      ]);
      // The member carries on in its generation; an older generation is refused.
      const beat = await groupCall(nextCoordinator, 'Heartbeat', { groupId: 'billing', generationId: 1, memberId: joined.memberId });
      expect(beat.errorCode).toBe(0);
      const stale = await groupCall(nextCoordinator, 'OffsetCommit', {
        groupId: 'billing',
        generationId: 0,
        memberId: joined.memberId,
        partitions: [{ topic: 'orders', partition: 0, offset: 1, leaderEpoch: -1, metadata: '' }],
      });
      expect(stale.partitions[0]!.errorCode).toBe(errorCode('ILLEGAL_GENERATION'));
      // A broker that does not coordinate the group says so.
      const other = cluster.nodes.find((node) => node.nodeId !== first.nodeId && node.nodeId !== next.nodeId)!;
      const refused = await groupCall(client(other.bootstrap), 'Heartbeat', { groupId: 'billing', generationId: 1, memberId: joined.memberId });
      expect(refused.errorCode).toBe(errorCode('NOT_COORDINATOR'));

      // The new coordinator lists and describes the group; a group with a member cannot be deleted,
      // an empty one goes with its offsets.
      const listed = await groupCall(nextCoordinator, 'ListGroups', { statesFilter: [] });
      expect(listed.groups.map((group) => [group.groupId, group.protocolType, group.groupState])).toEqual([['billing', 'consumer', 'Stable']]);
      const described = await groupCall(nextCoordinator, 'DescribeGroups', { groups: ['billing'] });
      expect(described.groups[0]).toMatchObject({ errorCode: 0, groupState: 'Stable', protocolType: 'consumer', protocolData: 'range', generationId: 1, leader: joined.memberId });
      expect(described.groups[0]!.members.map((member) => [member.memberId, member.clientId, Buffer.from(member.memberAssignment).toString()])).toEqual([[joined.memberId, 'billing-1', 'orders:0,1']]);
      const refusedDelete = await groupCall(nextCoordinator, 'DeleteGroups', { groupsNames: ['billing'] });
      expect(refusedDelete.results[0]!.errorCode).toBe(errorCode('NON_EMPTY_GROUP'));
      const left = await groupCall(nextCoordinator, 'LeaveGroup', { groupId: 'billing', members: [{ memberId: joined.memberId }] });
      expect(left.members.map((member) => member.errorCode)).toEqual([0]);
      const deleted = await groupCall(nextCoordinator, 'DeleteGroups', { groupsNames: ['billing'] });
      expect(deleted.results[0]!.errorCode).toBe(0);
      const gone = await groupCall(nextCoordinator, 'OffsetFetch', { groupId: 'billing', partitions: [], allPartitions: true });
      expect(gone.partitions).toEqual([]);
      await cluster.node(first.nodeId).launch();
    } finally {
      clients.close();
    }
  }, 120_000);

  it('lets a static member restart without a rebalance, fences its old member id, and removes it by instance id', async () => {
    const { cluster } = fixture;
    const clients = new GroupClients();
    try {
      const found = await clients.findCoordinator(cluster.nodes, 'payments');
      const coordinator = clients.get(`${found.host}:${found.port}`);
      const protocols = [{ name: 'range', metadata: Buffer.from('payments') }];
      const joinRequest = { groupId: 'payments', memberId: '', groupInstanceId: 'payments-0', sessionTimeoutMs: 20_000, rebalanceTimeoutMs: 20_000, protocolType: 'consumer', protocols, clientId: 'payments', requireKnownMemberId: true };
      const join = () => groupCall(coordinator, 'JoinGroup', joinRequest);
      // A static member needs no MEMBER_ID_REQUIRED round (the coordinator may still be loading).
      const joined = await waitFor(
        'a static join',
        async () => {
          const answer = await join();
          return answer.errorCode === errorCode('COORDINATOR_LOAD_IN_PROGRESS') ? undefined : answer;
        },
        10_000,
      );
      expect(joined).toMatchObject({ errorCode: 0, generationId: 1, leader: joined.memberId });
      const synced = await groupCall(coordinator, 'SyncGroup', {
        groupId: 'payments',
        generationId: 1,
        memberId: joined.memberId,
        groupInstanceId: 'payments-0',
        assignments: [{ memberId: joined.memberId, assignment: Buffer.from('payments:0') }],
      });
      expect(synced.errorCode).toBe(0);

      // The instance restarts: a new member id in the same generation, the old one fenced.
      const restarted = await join();
      expect(restarted).toMatchObject({ errorCode: 0, generationId: 1 });
      expect(restarted.memberId).not.toBe(joined.memberId);
      const beat = (memberId: string) => groupCall(coordinator, 'Heartbeat', { groupId: 'payments', generationId: 1, memberId, groupInstanceId: 'payments-0' });
      expect((await beat(joined.memberId)).errorCode).toBe(errorCode('FENCED_INSTANCE_ID'));
      expect((await beat(restarted.memberId)).errorCode).toBe(0);
      const staleCommit = await groupCall(coordinator, 'OffsetCommit', {
        groupId: 'payments',
        generationId: 1,
        memberId: joined.memberId,
        groupInstanceId: 'payments-0',
        partitions: [{ topic: 'payments', partition: 0, offset: 1, leaderEpoch: -1, metadata: '' }],
      });
      expect(staleCommit.partitions[0]!.errorCode).toBe(errorCode('FENCED_INSTANCE_ID'));
      const described = await groupCall(coordinator, 'DescribeGroups', { groups: ['payments'] });
      expect(described.groups[0]).toMatchObject({ groupState: 'Stable', generationId: 1 });
      expect(described.groups[0]!.members.map((member) => [member.memberId, member.groupInstanceId, Buffer.from(member.memberAssignment).toString()])).toEqual([[restarted.memberId, 'payments-0', 'payments:0']]);

      const left = await groupCall(coordinator, 'LeaveGroup', { groupId: 'payments', members: [{ memberId: '', groupInstanceId: 'payments-0' }] });
      expect(left.members).toEqual([{ memberId: '', groupInstanceId: 'payments-0', errorCode: 0 }]);
      const emptied = await groupCall(coordinator, 'DescribeGroups', { groups: ['payments'] });
      expect(emptied.groups[0]).toMatchObject({ groupState: 'Empty', members: [] });
    } finally {
      clients.close();
    }
  }, 60_000);
});
