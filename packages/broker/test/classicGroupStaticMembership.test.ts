// Static membership (group.instance.id, KIP-345) in one classic group, on a manual clock: a static
// member joins without the MEMBER_ID_REQUIRED round, a restarted instance takes its place back under
// a new member id (without a rebalance while the group's protocol stays), the old member id is
// fenced, an absent static member outlives rebalances until its session expires, and an admin
// removes one by its instance id.
import { errorCode } from '@runnel/common';
import { describe, expect, it } from 'vitest';
import { ClassicGroup, type GroupRecord, type GroupSettings, type JoinRequest } from '../src/group/classicGroup.js';
import { joinRequest, ManualClock, stableGroupOfTwo, track } from './groupHarness.js';
import { settle } from './leaderHarness.js';

const SETTINGS: GroupSettings = { minSessionTimeoutMs: 6_000, maxSessionTimeoutMs: 1_800_000, maxSize: 10, initialRebalanceDelayMs: 0 };
const NONE = 0;
const FENCED = errorCode('FENCED_INSTANCE_ID');

/** A JoinGroup from the consumer whose group.instance.id (and client id) is `instance`. */
function staticJoin(instance: string, overrides: Partial<JoinRequest> = {}): JoinRequest {
  return joinRequest({ clientId: instance, groupInstanceId: instance, ...overrides });
}

const STATIC_PAIR = { a: { groupInstanceId: 'a' }, b: { groupInstanceId: 'b' } };

/** A group whose stored records the test can read. */
function storingGroup(clock = new ManualClock()): { group: ClassicGroup; stored: GroupRecord[] } {
  const stored: GroupRecord[] = [];
  const group = new ClassicGroup('billing', SETTINGS, clock, async (record) => {
    stored.push(record);
  });
  return { group, stored };
}

const syncOf = (memberId: string, groupInstanceId: string | null, generationId: number) => ({ memberId, groupInstanceId, generationId, protocolType: null, protocolName: null, assignments: [] });

describe('ClassicGroup: static membership', () => {
  it('a static member joins at once, where a dynamic one is first asked to get a member id, and is described with its instance id', async () => {
    const group = new ClassicGroup('billing', SETTINGS, new ManualClock());
    const joined = await group.join(staticJoin('a', { requireKnownMemberId: true }));
    expect(joined).toMatchObject({ errorCode: NONE, generationId: 1, leader: joined.memberId });
    expect(joined.memberId).toMatch(/^a-/);
    expect(joined.members.map((member) => [member.memberId, member.groupInstanceId])).toEqual([[joined.memberId, 'a']]);
    expect(group.describe().members.map((member) => [member.memberId, member.groupInstanceId])).toEqual([[joined.memberId, 'a']]);
  });

  it('a restarted follower gets its place back: new member id, same generation and assignment, no rebalance; the old id is fenced', async () => {
    const { group, stored } = storingGroup();
    const { a, b } = await stableGroupOfTwo(group, STATIC_PAIR);
    const rejoin = track(group.join(staticJoin('b')));
    await settle();
    const rejoined = rejoin.value!;
    expect(rejoined).toMatchObject({ errorCode: NONE, generationId: 2, leader: a, protocolName: 'range', members: [] });
    expect(rejoined.memberId).toMatch(/^b-/);
    expect(rejoined.memberId).not.toBe(b);
    expect(group.state).toBe('Stable');
    // Stored with the new member id (and b's assignment) before b heard of it.
    expect(stored.at(-1)!.generationId).toBe(2);
    expect(stored.at(-1)!.members.map((member) => [member.memberId, member.groupInstanceId, member.assignment.toString()])).toEqual([
      [a, 'a', 'a-share'],
      [rejoined.memberId, 'b', 'b-share'],
    ]);

    const synced = await group.sync(syncOf(rejoined.memberId, 'b', 2));
    expect(synced).toMatchObject({ errorCode: NONE });
    expect(synced.assignment.toString()).toBe('b-share');
    expect(group.heartbeat(a, 2, 'a')).toBe(NONE); // a never hears of a rebalance
    expect(group.heartbeat(rejoined.memberId, 2, 'b')).toBe(NONE);
    expect(group.heartbeat(b, 2, 'b')).toBe(FENCED);
  });

  it('a restarted leader keeps the lead under its new id, but is told the old leader id so that it does not assign', async () => {
    const group = new ClassicGroup('billing', SETTINGS, new ManualClock());
    const { a, b } = await stableGroupOfTwo(group, STATIC_PAIR);
    const rejoin = track(group.join(staticJoin('a')));
    await settle();
    const rejoined = rejoin.value!;
    expect(rejoined).toMatchObject({ errorCode: NONE, generationId: 2, leader: a, members: [] });
    expect(group.describe()).toMatchObject({ state: 'Stable', generationId: 2, leader: rejoined.memberId });
    expect((await group.sync(syncOf(rejoined.memberId, 'a', 2))).assignment.toString()).toBe('a-share');
    // The next rebalance is led by the new member id.
    const bJoin = track(group.join(staticJoin('b', { memberId: b, protocols: [{ name: 'range', metadata: Buffer.from('orders,payments') }] })));
    const aJoin = await group.join(staticJoin('a', { memberId: rejoined.memberId }));
    await settle();
    expect(aJoin).toMatchObject({ generationId: 3, leader: rejoined.memberId });
    expect(aJoin.members.map((member) => member.memberId).sort()).toEqual([rejoined.memberId, b].sort());
    expect(bJoin.value).toMatchObject({ generationId: 3, leader: rejoined.memberId });
  });

  it('rebalances when the rejoin changes the protocol the group would choose; new metadata under the same protocol does not', async () => {
    const { group, stored } = storingGroup();
    const first = await group.join(staticJoin('a'));
    await group.sync({ ...syncOf(first.memberId, 'a', 1), assignments: [{ memberId: first.memberId, assignment: Buffer.from('orders:0') }] });

    const resubscribed = track(group.join(staticJoin('a', { protocols: [{ name: 'range', metadata: Buffer.from('orders,payments') }] })));
    await settle();
    expect(resubscribed.value).toMatchObject({ errorCode: NONE, generationId: 1, protocolName: 'range' });
    expect(group.state).toBe('Stable');
    // The new subscription is kept (and stored) for the leader's next assignment.
    expect(stored.at(-1)!.members.map((member) => member.metadata.toString())).toEqual(['orders,payments']);

    const switched = track(group.join(staticJoin('a', { protocols: [{ name: 'roundrobin', metadata: Buffer.from('orders') }] })));
    await settle();
    expect(switched.value).toMatchObject({ errorCode: NONE, generationId: 2, protocolName: 'roundrobin' });
    expect(switched.value!.leader).toBe(switched.value!.memberId);
    expect(group.state).toBe('CompletingRebalance');
  });

  it('fences the old member id on every call once its instance has rejoined, and answers its waiting SyncGroup with FENCED_INSTANCE_ID', async () => {
    const group = new ClassicGroup('billing', SETTINGS, new ManualClock());
    const a = await group.join(staticJoin('a'));
    const bJoin = track(group.join(staticJoin('b')));
    await group.join(staticJoin('a', { memberId: a.memberId }));
    await settle();
    const b = bJoin.value!.memberId;
    const oldSync = track(group.sync(syncOf(b, 'b', 2))); // waits for the leader's assignment

    // b restarts while the leader assigns: that generation is void.
    const rejoin = track(group.join(staticJoin('b')));
    await settle();
    expect(oldSync.value!.errorCode).toBe(FENCED);
    expect(group.state).toBe('PreparingRebalance');
    expect(group.heartbeat(b, 2, 'b')).toBe(FENCED);
    expect((await group.sync(syncOf(b, 'b', 2))).errorCode).toBe(FENCED);
    expect((await group.join(staticJoin('b', { memberId: b }))).errorCode).toBe(FENCED);
    expect(group.leave([{ memberId: b, groupInstanceId: 'b' }])).toEqual([FENCED]);
    expect(group.heartbeat(b, 2, 'nobody')).toBe(errorCode('UNKNOWN_MEMBER_ID'));

    // The new member id counts as joined: a's rejoin completes the next generation.
    const aJoin = await group.join(staticJoin('a', { memberId: a.memberId }));
    await settle();
    const newB = rejoin.value!.memberId;
    expect(rejoin.value).toMatchObject({ errorCode: NONE, generationId: 3, leader: a.memberId });
    expect(aJoin.members.map((member) => [member.memberId, member.groupInstanceId])).toEqual([
      [a.memberId, 'a'],
      [newB, 'b'],
    ]);
  });

  it('keeps an absent static member through a rebalance (the leader assigns to it) until its session expires', async () => {
    const clock = new ManualClock();
    const group = new ClassicGroup('billing', SETTINGS, clock);
    const { a, b } = await stableGroupOfTwo(group, { a: { groupInstanceId: 'a' }, b: { groupInstanceId: 'b', sessionTimeoutMs: 60_000 } });
    // c joins; a rejoins; b is down and misses the rebalance (30 s rebalance timeout).
    const cJoin = track(group.join(joinRequest({ clientId: 'c' })));
    const aJoin = track(group.join(staticJoin('a', { memberId: a })));
    clock.advance(30_000);
    await settle();
    expect(aJoin.value).toMatchObject({ errorCode: NONE, generationId: 3, leader: a });
    const c = cJoin.value!.memberId;
    expect(aJoin.value!.members.map((member) => member.memberId).sort()).toEqual([a, b, c].sort());
    await group.sync({ ...syncOf(a, 'a', 3), assignments: [{ memberId: b, assignment: Buffer.from('b-share') }] });
    expect(group.describe().members.find((member) => member.memberId === b)?.assignment.toString()).toBe('b-share');

    // a and c stay alive; b's session (60 s since its last call) runs out.
    for (let elapsed = 30_000; elapsed < 60_000; elapsed += 5_000) {
      expect([group.heartbeat(a, 3, 'a'), group.heartbeat(c, 3)]).toEqual([NONE, NONE]);
      clock.advance(5_000);
    }
    expect(group.state).toBe('PreparingRebalance');
    expect(group.describe().members.map((member) => member.memberId).sort()).toEqual([a, c].sort());
    expect(group.heartbeat(b, 3, 'b')).toBe(errorCode('UNKNOWN_MEMBER_ID'));
  });

  it('when only absent static members are left, the join waits a rebalance timeout more for one of them', async () => {
    const clock = new ManualClock();
    const group = new ClassicGroup('billing', SETTINGS, clock);
    const { a, b } = await stableGroupOfTwo(group, { a: { groupInstanceId: 'a', sessionTimeoutMs: 120_000 } });
    // Both hosts go down. b (dynamic) expires after 10 s; the rebalance that starts finds nobody.
    clock.advance(10_000);
    expect(group.state).toBe('PreparingRebalance');
    clock.advance(30_000);
    expect(group.describe()).toMatchObject({ state: 'PreparingRebalance', generationId: 2 });
    expect(group.describe().members.map((member) => member.memberId)).toEqual([a]);
    expect(group.heartbeat(b, 2)).toBe(errorCode('UNKNOWN_MEMBER_ID'));
    // a's host comes back: its join completes the generation at once, and it leads.
    const rejoin = track(group.join(staticJoin('a')));
    await settle();
    expect(rejoin.value).toMatchObject({ errorCode: NONE, generationId: 3, leader: rejoin.value!.memberId });
    expect(rejoin.value!.members.map((member) => member.groupInstanceId)).toEqual(['a']);
  });

  it('LeaveGroup by instance id alone removes that static member, whatever its member id', async () => {
    const group = new ClassicGroup('billing', SETTINGS, new ManualClock());
    const { a, b } = await stableGroupOfTwo(group, STATIC_PAIR);
    expect(
      group.leave([
        { memberId: '', groupInstanceId: 'b' },
        { memberId: '', groupInstanceId: 'nobody' },
        { memberId: '', groupInstanceId: null },
      ]),
    ).toEqual([NONE, errorCode('UNKNOWN_MEMBER_ID'), errorCode('UNKNOWN_MEMBER_ID')]);
    expect(group.state).toBe('PreparingRebalance');
    expect(group.heartbeat(b, 2, 'b')).toBe(errorCode('UNKNOWN_MEMBER_ID'));
    // A static member may leave by its own member id too.
    expect(group.leave([{ memberId: a, groupInstanceId: 'a' }])).toEqual([NONE]);
    expect(group.state).toBe('Empty');
    // Its instance id is free again: a new join with it is a new member.
    const again = await group.join(staticJoin('b'));
    expect(again).toMatchObject({ errorCode: NONE, generationId: 4, leader: again.memberId });
  });

  it('puts the old member back when the new member id cannot be stored, and tells the newcomer to retry', async () => {
    let failing = false;
    const group = new ClassicGroup('billing', SETTINGS, new ManualClock(), async () => {
      if (failing) throw new Error('disk full');
    });
    const { a, b } = await stableGroupOfTwo(group, STATIC_PAIR);
    failing = true;
    const rejoin = track(group.join(staticJoin('b')));
    await settle();
    expect(rejoin.value).toMatchObject({ errorCode: errorCode('COORDINATOR_NOT_AVAILABLE'), memberId: '' });
    expect(group.state).toBe('Stable');
    expect(group.describe().members.map((member) => member.memberId)).toEqual([a, b]);
    expect(group.heartbeat(b, 2, 'b')).toBe(NONE);
  });
});
