// `runnel group …` through the real CLI against a real 2-node cluster. A raw GroupApi member joins
// group 'billing', takes both partitions of 'orders' and commits offsets; group 'shipping' (whose
// offsets partition has the other coordinator) only has offsets committed from outside it. The
// CLI lists both, describes them with exact lag, plans and executes resets (refused while the
// member is in the group), deletes, and fails cleanly on bad input.
import { describe, expect, it } from 'vitest';
import { Admin, encodeAssignment, encodeSubscription, Producer } from '@runnel/client';
import { errorCode } from '@runnel/common';
import { runCli } from './cli.js';
import { groupCall, groupClient, type GroupClient } from './groupCalls.js';
import { useCluster, waitFor } from './harness.js';

/** Record timestamps of 'orders': record k of each partition has BASE_TIME_MS + k seconds (an hour ago: well within retention). */
const BASE_TIME_MS = Math.floor(Date.now() / 1000) * 1000 - 3_600_000;
const PARTITION_0_RECORDS = 30;
const PARTITION_1_RECORDS = 20;

interface DescribedJson {
  group: string;
  state: string;
  protocolType: string;
  protocol: string;
  coordinator: number;
  members: Array<{ memberId: string; clientId: string; clientHost: string; assignment: Array<{ topic: string; partitions: number[] }> }>;
  offsets: Array<{ topic: string; partition: number; committedOffset: number | null; logEndOffset: number | null; lag: number | null; owner: string | null }>;
  totalLag: number;
}

describe('runnel group', () => {
  const fixture = useCluster(2, {
    'offsets.topic.num.partitions': '2',
    'offsets.topic.replication.factor': '2',
    'group.initial.rebalance.delay.ms': '0',
  });
  const cli = (...args: string[]) => runCli(['--bootstrap', fixture.cluster.bootstrap, ...args], { timeoutMs: 60_000 });
  const describeJson = async (group: string): Promise<DescribedJson> => {
    const result = await cli('group', 'describe', group, '--format', 'json');
    expect(result.stderr).toBe('');
    return JSON.parse(result.stdout) as DescribedJson;
  };
  const committedOffsets = async (group: string) => (await describeJson(group)).offsets.map((row) => [row.partition, row.committedOffset]);
  const member = { coordinator: undefined as GroupClient | undefined, memberId: '' };

  it('sets up: a topic with records, a group with a member and commits, a group with commits only', async () => {
    const { cluster } = fixture;
    const admin = new Admin({ bootstrap: cluster.bootstrap });
    const producer = new Producer({ bootstrap: cluster.bootstrap, lingerMs: 0 });
    try {
      await waitFor('both brokers registered', async () => ((await admin.describeCluster()).brokers.length === 2 ? true : undefined), 30_000);
      await admin.createTopics([{ name: 'orders', partitions: 2, replicationFactor: 2 }]);
      const sends = [
        ...Array.from({ length: PARTITION_0_RECORDS }, (_, k) => producer.send({ topic: 'orders', partition: 0, value: `p0-${k}`, timestamp: BASE_TIME_MS + k * 1000 })),
        ...Array.from({ length: PARTITION_1_RECORDS }, (_, k) => producer.send({ topic: 'orders', partition: 1, value: `p1-${k}`, timestamp: BASE_TIME_MS + k * 1000 })),
      ];
      await Promise.all(sends);
      // 'shipping' commits from outside any group (as a reset does): the coordinator keeps its offsets only.
      await admin.alterGroupOffsets('shipping', [{ topic: 'orders', partition: 0, offset: 25 }]);
      // Also waits until billing's coordinator has loaded its partition, so that the raw JoinGroup is answered.
      expect(await admin.listGroupOffsets('billing')).toEqual([]);
      const [billing, shipping] = await Promise.all([admin.findCoordinator('billing'), admin.findCoordinator('shipping')]);
      // Their __consumer_offsets partitions (1 and 0) have leaders on different brokers: `group list` must ask both.
      expect(billing.nodeId).not.toBe(shipping.nodeId);
      member.coordinator = groupClient(billing.connection.address);
    } finally {
      await producer.close();
      await admin.close();
    }

    const coordinator = member.coordinator!;
    const join = { groupId: 'billing', sessionTimeoutMs: 60_000, rebalanceTimeoutMs: 10_000, groupInstanceId: '', protocolType: 'consumer', clientId: 'billing-1', requireKnownMemberId: true };
    const protocols = [{ name: 'range', metadata: encodeSubscription({ topics: ['orders'] }) }];
    const idOnly = await groupCall(coordinator, 'JoinGroup', { ...join, protocols, memberId: '' });
    expect(idOnly.errorCode).toBe(errorCode('MEMBER_ID_REQUIRED'));
    const joined = await groupCall(coordinator, 'JoinGroup', { ...join, protocols, memberId: idOnly.memberId });
    expect(joined).toMatchObject({ errorCode: 0, generationId: 1, leader: idOnly.memberId });
    member.memberId = joined.memberId;
    const assignment = encodeAssignment({ partitions: [{ topic: 'orders', partitions: [0, 1] }] });
    const synced = await groupCall(coordinator, 'SyncGroup', { groupId: 'billing', generationId: 1, memberId: member.memberId, assignments: [{ memberId: member.memberId, assignment }] });
    expect(synced.errorCode).toBe(0);
    const committed = await groupCall(coordinator, 'OffsetCommit', {
      groupId: 'billing',
      generationId: 1,
      memberId: member.memberId,
      partitions: [
        { topic: 'orders', partition: 0, offset: 10, leaderEpoch: -1, metadata: '' },
        { topic: 'orders', partition: 1, offset: 15, leaderEpoch: -1, metadata: '' },
      ],
    });
    expect(committed.partitions.map((entry) => entry.errorCode)).toEqual([0, 0]);
  });

  it('lists the groups of every coordinator', async () => {
    const table = await cli('group', 'list');
    expect(table.stderr).toBe('');
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^GROUP\s+STATE\s+PROTOCOL-TYPE\nbilling\s+Stable\s+consumer\nshipping\s+Empty\s+-\n$/);
    const json = await cli('group', 'list', '--format', 'json');
    expect(JSON.parse(json.stdout)).toEqual([
      { group: 'billing', state: 'Stable', protocolType: 'consumer' },
      { group: 'shipping', state: 'Empty', protocolType: '' },
    ]);
  });

  it('describes a group: members, their partitions, committed offsets, log end offsets and lag', async () => {
    const table = await cli('group', 'describe', 'billing');
    expect(table.stderr).toBe('');
    expect(table.code).toBe(0);
    const id = member.memberId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    expect(table.stdout).toMatch(/^Group: billing {2}State: Stable {2}Protocol: consumer \(range\) {2}Generation: 1 {2}Coordinator: node \d\n/);
    expect(table.stdout).toMatch(new RegExp(`MEMBER-ID\\s+CLIENT-ID\\s+HOST\\s+PARTITIONS\\n${id}\\s+billing-1\\s+/127\\.0\\.0\\.1\\s+orders:0,1\\n`));
    expect(table.stdout).toMatch(new RegExp(`TOPIC\\s+PARTITION\\s+CURRENT-OFFSET\\s+LOG-END-OFFSET\\s+LAG\\s+OWNER\\norders\\s+0\\s+10\\s+30\\s+20\\s+${id}\\norders\\s+1\\s+15\\s+20\\s+5\\s+${id}\\n`));
    expect(table.stdout).toMatch(/\n\nTotal lag: 25\n$/);

    const billing = await describeJson('billing');
    expect(billing).toMatchObject({ group: 'billing', state: 'Stable', protocolType: 'consumer', protocol: 'range', totalLag: 25 });
    expect(billing.members).toEqual([{ memberId: member.memberId, groupInstanceId: null, clientId: 'billing-1', clientHost: '/127.0.0.1', assignment: [{ topic: 'orders', partitions: [0, 1] }] }]);
    expect(billing.offsets).toEqual([
      { topic: 'orders', partition: 0, committedOffset: 10, logEndOffset: PARTITION_0_RECORDS, lag: 20, owner: member.memberId },
      { topic: 'orders', partition: 1, committedOffset: 15, logEndOffset: PARTITION_1_RECORDS, lag: 5, owner: member.memberId },
    ]);

    // A group known by its commits only: no members, owner '-'.
    const shipping = await cli('group', 'describe', 'shipping');
    expect(shipping.stdout).toMatch(/State: Empty .*\n\nNo active members\.\n\nTOPIC.*\norders\s+0\s+25\s+30\s+5\s+-\n\nTotal lag: 5\n$/);
    const shippingJson = await describeJson('shipping');
    expect(shippingJson.offsets).toEqual([{ topic: 'orders', partition: 0, committedOffset: 25, logEndOffset: 30, lag: 5, owner: null }]);
    expect(shippingJson.coordinator).not.toBe(billing.coordinator);
  });

  it('exports the same lag as runnel_consumergroup_lag, on each group\'s coordinator only', async () => {
    const { cluster } = fixture;
    const scrape = async (nodeId: number) => (await fetch(`http://127.0.0.1:${cluster.node(nodeId).httpPort}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
    const lagSeries = (text: string) => text.split('\n').filter((line) => line.startsWith('runnel_consumergroup_lag{')).sort();
    const [billing, shipping] = [(await describeJson('billing')).coordinator, (await describeJson('shipping')).coordinator];
    expect(billing).not.toBe(shipping); // so one of them asks the other broker for a high watermark
    expect(lagSeries(await scrape(billing))).toEqual([
      'runnel_consumergroup_lag{consumergroup="billing",topic="orders",partition="0"} 20',
      'runnel_consumergroup_lag{consumergroup="billing",topic="orders",partition="1"} 5',
    ]);
    expect(lagSeries(await scrape(shipping))).toEqual(['runnel_consumergroup_lag{consumergroup="shipping",topic="orders",partition="0"} 5']);
  });

  it('plans a reset while the member is in the group, and refuses to execute it', async () => {
    const dryRun = await cli('group', 'reset-offsets', 'billing', '--topic', 'orders', '--to-earliest');
    expect(dryRun.stderr).toBe('');
    expect(dryRun.code).toBe(0);
    expect(dryRun.stdout).toMatch(/^TOPIC\s+PARTITION\s+CURRENT-OFFSET\s+NEW-OFFSET\norders\s+0\s+10\s+0\norders\s+1\s+15\s+0\n\n/);
    expect(dryRun.stdout).toContain("Dry run: nothing changed. --execute is refused while group 'billing' has 1 active member (state Stable).");

    const refused = await cli('group', 'reset-offsets', 'billing', '--topic', 'orders', '--to-earliest', '--execute');
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toBe("runnel: cannot reset the offsets of group 'billing': it has 1 active member (state Stable); stop its consumers first\n");
    expect(await committedOffsets('billing')).toEqual([
      [0, 10],
      [1, 15],
    ]);

    const deleteRefused = await cli('group', 'delete', 'billing');
    expect(deleteRefused.code).toBe(1);
    expect(deleteRefused.stderr).toBe("runnel: NON_EMPTY_GROUP: cannot delete group 'billing': it has active members\n");
  });

  it('executes resets once the member has left: shift, offset and datetime, clamped to the log', async () => {
    const left = await groupCall(member.coordinator!, 'LeaveGroup', { groupId: 'billing', members: [{ memberId: member.memberId, groupInstanceId: '' }] });
    expect(left.members.map((entry) => entry.errorCode)).toEqual([0]);
    member.coordinator!.close();

    const dryRun = await cli('group', 'reset-offsets', 'billing', '--topic', 'orders', '--shift-by', '-4');
    expect(dryRun.stdout).toContain('Dry run: nothing changed. Add --execute to commit these offsets.');
    expect(await committedOffsets('billing')).toEqual([
      [0, 10],
      [1, 15],
    ]);

    const shifted = await cli('group', 'reset-offsets', 'billing', '--topic', 'orders', '--partitions', '0', '--shift-by', '-4', '--execute');
    expect(shifted.stderr).toBe('');
    expect(shifted.stdout).toMatch(/^TOPIC\s+PARTITION\s+CURRENT-OFFSET\s+NEW-OFFSET\norders\s+0\s+10\s+6\n\nCommitted the new offsets of group 'billing' for 1 partition\.\n$/);
    expect(await committedOffsets('billing')).toEqual([
      [0, 6],
      [1, 15],
    ]);

    const beyondEnd = await cli('group', 'reset-offsets', 'billing', '--topic', 'orders', '--to-offset', '25', '--execute', '--format', 'json');
    expect(JSON.parse(beyondEnd.stdout)).toEqual({
      group: 'billing',
      executed: true,
      offsets: [
        { topic: 'orders', partition: 0, currentOffset: 6, newOffset: 25 },
        { topic: 'orders', partition: 1, currentOffset: 15, newOffset: PARTITION_1_RECORDS },
      ],
    });

    // Partition 0's record 12 is the first at or after +11.5 s; partition 1 has none after +25 s.
    const atTime = await cli('group', 'reset-offsets', 'billing', '--topic', 'orders', '--partitions', '0', '--to-datetime', new Date(BASE_TIME_MS + 11_500).toISOString(), '--execute');
    expect(atTime.stderr).toBe('');
    const afterLast = await cli('group', 'reset-offsets', 'billing', '--topic', 'orders', '--partitions', '1', '--to-datetime', new Date(BASE_TIME_MS + 25_000).toISOString(), '--execute');
    expect(afterLast.stderr).toBe('');
    expect(await committedOffsets('billing')).toEqual([
      [0, 12],
      [1, PARTITION_1_RECORDS],
    ]);
    const billing = await describeJson('billing');
    expect(billing).toMatchObject({ state: 'Empty', members: [], totalLag: PARTITION_0_RECORDS - 12 });
    expect(billing.offsets.map((row) => row.owner)).toEqual([null, null]);
  });

  it('deletes a group without members; it is gone afterwards', async () => {
    const deleted = await cli('group', 'delete', 'billing', '--format', 'json');
    expect(deleted.stderr).toBe('');
    expect(JSON.parse(deleted.stdout)).toEqual({ deleted: ['billing'] });
    const gone = await cli('group', 'describe', 'billing');
    expect(gone.code).toBe(1);
    expect(gone.stderr).toBe("runnel: GROUP_ID_NOT_FOUND: group 'billing' does not exist\n");
    expect(JSON.parse((await cli('group', 'list', '--format', 'json')).stdout)).toEqual([{ group: 'shipping', state: 'Empty', protocolType: '' }]);
    const table = await cli('group', 'delete', 'shipping');
    expect(table.stdout).toBe('Deleted group shipping.\n');
    expect((await cli('group', 'list')).stdout).toBe('No groups.\n');
  });

  it('fails with one line on stderr for an unknown group, a missing or doubled target, and a partition the topic lacks', async () => {
    const cases: Array<[string[], string | RegExp]> = [
      [['group', 'describe', 'ghost'], "runnel: GROUP_ID_NOT_FOUND: group 'ghost' does not exist\n"],
      [['group', 'delete', 'ghost'], "runnel: GROUP_ID_NOT_FOUND: group 'ghost' does not exist\n"],
      [['group', 'reset-offsets', 'ghost', '--topic', 'orders'], 'runnel: reset-offsets needs exactly one of --to-earliest, --to-latest, --to-offset, --to-datetime, --shift-by: none was given\n'],
      [['group', 'reset-offsets', 'ghost', '--topic', 'orders', '--to-earliest', '--to-latest'], 'runnel: reset-offsets needs exactly one of --to-earliest, --to-latest, --to-offset, --to-datetime, --shift-by: got --to-earliest and --to-latest\n'],
      [['group', 'reset-offsets', 'ghost', '--topic', 'orders', '--partitions', '0,7', '--to-latest'], "runnel: topic 'orders' has no partition 7 (it has 2 partitions: 0 to 1)\n"],
      [['group', 'reset-offsets', 'ghost', '--topic', 'nope', '--to-latest'], /^runnel: UNKNOWN_TOPIC_OR_PARTITION: topic 'nope'.* does not exist\n$/],
      [['group', 'reset-offsets', 'ghost', '--topic', 'orders', '--shift-by', '1'], 'runnel: cannot shift the offset of orders-0: the group has no committed offset for it\n'],
    ];
    for (const [args, stderr] of cases) {
      const result = await cli(...args);
      expect({ args, code: result.code, stdout: result.stdout, stderr: result.stderr }).toEqual({ args, code: 1, stdout: '', stderr: typeof stderr === 'string' ? stderr : expect.stringMatching(stderr) });
    }
  });
});
