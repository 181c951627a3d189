// The classic group protocol, step by step on a manual clock: joins and generations, the leader's
// assignment reaching every member, rebalances on join, leave and session expiry, and the errors a
// client acts on (MEMBER_ID_REQUIRED, UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS).
import { errorCode } from '@runnel/common';
import { describe, expect, it } from 'vitest';
import { ClassicGroup, type GroupSettings } from '../src/group/classicGroup.js';
import { byMemberId, joinRequest, ManualClock, stableGroupOfTwo, track } from './groupHarness.js';
import { settle } from './leaderHarness.js';


const SETTINGS: GroupSettings = { minSessionTimeoutMs: 6_000, maxSessionTimeoutMs: 1_800_000, maxSize: 10, initialRebalanceDelayMs: 0 };
const NONE = 0;

const request = joinRequest;

describe('ClassicGroup', () => {
  it('a first member gets its id (KIP-394), joins, leads, and syncs its own assignment', async () => {
    const group = new ClassicGroup('billing', SETTINGS, new ManualClock());
    const first = await group.join(request({ requireKnownMemberId: true }));
    expect(first.errorCode).toBe(errorCode('MEMBER_ID_REQUIRED'));
    expect(first.memberId).toMatch(/^c-/);
    const joined = await group.join(request({ memberId: first.memberId, requireKnownMemberId: true }));
    expect(joined).toMatchObject({ errorCode: NONE, generationId: 1, leader: first.memberId, memberId: first.memberId, protocolName: 'range' });
    expect(joined.members.map((member) => member.metadata.toString())).toEqual(['orders']);
    expect(group.state).toBe('CompletingRebalance');
    const synced = await group.sync({ memberId: first.memberId, generationId: 1, protocolType: 'consumer', protocolName: 'range', assignments: [{ memberId: first.memberId, assignment: Buffer.from('p0-5') }] });
    expect(synced).toMatchObject({ errorCode: NONE, protocolName: 'range' });
    expect(synced.assignment.toString()).toBe('p0-5');
    expect(group.state).toBe('Stable');
  });

  it('a second member rebalances the group: both rejoin, the leader assigns, each gets its share', async () => {
    const clock = new ManualClock();
    const stored: number[] = [];
    const group = new ClassicGroup('billing', SETTINGS, clock, async (record) => {
      stored.push(record.generationId);
    });
    const a = await group.join(request({ clientId: 'a' }));
    await group.sync({ memberId: a.memberId, generationId: 1, protocolType: null, protocolName: null, assignments: [{ memberId: a.memberId, assignment: Buffer.from('all') }] });

    const bJoin = track(group.join(request({ clientId: 'b' })));
    await settle();
    expect(group.state).toBe('PreparingRebalance');
    expect(bJoin.value).toBeUndefined();
    // a learns of the rebalance from its heartbeat and rejoins; then the join completes for both.
    expect(group.heartbeat(a.memberId, 1)).toBe(errorCode('REBALANCE_IN_PROGRESS'));
    const aJoin = await group.join(request({ clientId: 'a', memberId: a.memberId }));
    await settle();
    const b = bJoin.value!;
    expect(aJoin).toMatchObject({ generationId: 2, leader: a.memberId });
    expect(aJoin.members.map((member) => member.memberId).sort()).toEqual([a.memberId, b.memberId].sort());
    expect(b).toMatchObject({ generationId: 2, leader: a.memberId, members: [] });

    const bSync = track(group.sync({ memberId: b.memberId, generationId: 2, protocolType: null, protocolName: null, assignments: [] }));
    await settle();
    expect(bSync.value).toBeUndefined(); // waits for the leader
    const aSync = await group.sync({
      memberId: a.memberId,
      generationId: 2,
      protocolType: null,
      protocolName: null,
      assignments: [
        { memberId: a.memberId, assignment: Buffer.from('p0-2') },
        { memberId: b.memberId, assignment: Buffer.from('p3-5') },
      ],
    });
    await settle();
    expect(aSync.assignment.toString()).toBe('p0-2');
    expect(bSync.value!.assignment.toString()).toBe('p3-5');
    expect(group.state).toBe('Stable');
    expect(stored).toEqual([1, 2]);
    expect(group.heartbeat(b.memberId, 1)).toBe(errorCode('ILLEGAL_GENERATION'));
    expect(group.heartbeat(b.memberId, 2)).toBe(NONE);
  });

  it('a member whose session expires leaves, and the others rebalance without it', async () => {
    const clock = new ManualClock();
    const group = new ClassicGroup('billing', SETTINGS, clock);
    const { a, b } = await stableGroupOfTwo(group);
    clock.advance(6_000);
    expect(group.heartbeat(a, 2)).toBe(NONE); // a stays alive, b goes silent
    clock.advance(5_000);
    expect(group.state).toBe('PreparingRebalance');
    expect(group.heartbeat(b, 2)).toBe(errorCode('UNKNOWN_MEMBER_ID'));
    const rejoined = await group.join(request({ clientId: 'a', memberId: a }));
    expect(rejoined).toMatchObject({ generationId: 3, leader: a });
    expect(rejoined.members.map((member) => member.memberId)).toEqual([a]);
  });

  it('says why each rebalance starts, once per rebalance (what the coordinator logs)', async () => {
    const clock = new ManualClock();
    const events: Array<{ from: string; generation: number; reason: string }> = [];
    const group = new ClassicGroup('billing', SETTINGS, clock, async () => undefined, (event) => events.push(event));
    const { a, b } = await stableGroupOfTwo(group);
    expect(events.map((event) => event.from)).toEqual(['Empty', 'CompletingRebalance']);
    expect(events[1]).toMatchObject({ generation: 1, reason: expect.stringMatching(/^member .* joined$/) });
    events.length = 0;
    clock.advance(6_000);
    expect(group.heartbeat(a, 2)).toBe(NONE);
    clock.advance(5_000);
    expect(events).toEqual([{ from: 'Stable', generation: 2, reason: expect.stringContaining(b) }]);
  });

  it('a member that does not rejoin within the rebalance timeout is removed', async () => {
    const clock = new ManualClock();
    const group = new ClassicGroup('billing', SETTINGS, clock);
    const { a, b } = await stableGroupOfTwo(group);
    const third = track(group.join(request({ clientId: 'c' })));
    // a rejoins; b keeps heartbeating but never rejoins.
    const aJoin = track(group.join(request({ clientId: 'a', memberId: a })));
    for (let k = 0; k < 10; k++) {
      clock.advance(3_000);
      group.heartbeat(b, 2);
    }
    clock.advance(1_000);
    await settle();
    expect(aJoin.value).toMatchObject({ errorCode: NONE, generationId: 3 });
    expect(third.value).toMatchObject({ errorCode: NONE, generationId: 3 });
    expect(aJoin.value!.members.map((member) => member.memberId)).not.toContain(b);
    expect(group.heartbeat(b, 3)).toBe(errorCode('UNKNOWN_MEMBER_ID'));
  });

  it('LeaveGroup rebalances at once and answers a waiting sync with REBALANCE_IN_PROGRESS', async () => {
    const group = new ClassicGroup('billing', SETTINGS, new ManualClock());
    const a = await group.join(request({ clientId: 'a' }));
    const bJoin = track(group.join(request({ clientId: 'b' })));
    await group.join(request({ clientId: 'a', memberId: a.memberId }));
    await settle();
    const b = bJoin.value!;
    const bSync = track(group.sync({ memberId: b.memberId, generationId: 2, protocolType: null, protocolName: null, assignments: [] }));
    expect(group.leave(byMemberId(a.memberId, 'nobody'))).toEqual([NONE, errorCode('UNKNOWN_MEMBER_ID')]);
    await settle();
    expect(bSync.value!.errorCode).toBe(errorCode('REBALANCE_IN_PROGRESS'));
    const bAgain = await group.join(request({ clientId: 'b', memberId: b.memberId }));
    expect(bAgain).toMatchObject({ generationId: 3, leader: b.memberId });
    // The last member leaving ends the rebalance at once: an empty group of a new generation.
    expect(group.leave(byMemberId(b.memberId))).toEqual([NONE]);
    expect(group.state).toBe('Empty');
    expect(group.generationId).toBe(4);
  });

  it('stores the group again, with no members, when it becomes Empty (the last member left or expired)', async () => {
    const clock = new ManualClock();
    const stored: Array<{ generationId: number; members: string[] }> = [];
    const group = new ClassicGroup('billing', SETTINGS, clock, async (record) => {
      stored.push({ generationId: record.generationId, members: record.members.map((member) => member.memberId) });
    });
    const { a, b } = await stableGroupOfTwo(group);
    expect(stored.at(-1)).toEqual({ generationId: 2, members: [a, b] });
    expect(group.leave(byMemberId(b))).toEqual([NONE]);
    const aJoin = await group.join(request({ clientId: 'a', memberId: a }));
    await group.sync({ memberId: a, generationId: aJoin.generationId, protocolType: null, protocolName: null, assignments: [] });
    expect(stored.at(-1)).toEqual({ generationId: 3, members: [a] });
    clock.advance(10_000); // a's session expires: nobody is left
    expect(group.state).toBe('Empty');
    expect(stored.at(-1)).toEqual({ generationId: 4, members: [] });
  });

  it('refuses what does not fit: session timeouts, protocols, unknown members, a full group', async () => {
    const group = new ClassicGroup('billing', { ...SETTINGS, maxSize: 1 }, new ManualClock());
    expect((await group.join(request({ sessionTimeoutMs: 1_000 }))).errorCode).toBe(errorCode('INVALID_SESSION_TIMEOUT'));
    expect((await group.join(request({ protocols: [] }))).errorCode).toBe(errorCode('INCONSISTENT_GROUP_PROTOCOL'));
    expect((await group.join(request({ memberId: 'made-up' }))).errorCode).toBe(errorCode('UNKNOWN_MEMBER_ID'));
    const a = await group.join(request());
    expect(a.errorCode).toBe(NONE);
    expect((await group.join(request({ protocolType: 'connect' }))).errorCode).toBe(errorCode('INCONSISTENT_GROUP_PROTOCOL'));
    expect((await group.join(request({ protocols: [{ name: 'roundrobin', metadata: Buffer.alloc(0) }] }))).errorCode).toBe(errorCode('INCONSISTENT_GROUP_PROTOCOL'));
    expect((await group.join(request())).errorCode).toBe(errorCode('GROUP_MAX_SIZE_REACHED'));
    expect((await group.sync({ memberId: a.memberId, generationId: 7, protocolType: null, protocolName: null, assignments: [] })).errorCode).toBe(errorCode('ILLEGAL_GENERATION'));
    expect((await group.sync({ memberId: a.memberId, generationId: 1, protocolType: null, protocolName: 'roundrobin', assignments: [] })).errorCode).toBe(errorCode('INCONSISTENT_GROUP_PROTOCOL'));
  });

  it('picks the protocol every member supports that most members prefer', async () => {
    const group = new ClassicGroup('billing', SETTINGS, new ManualClock());
    const both = [
      { name: 'cooperative-sticky', metadata: Buffer.from('s') },
      { name: 'range', metadata: Buffer.from('r') },
    ];
    const a = await group.join(request({ clientId: 'a', protocols: both }));
    expect(a.protocolName).toBe('cooperative-sticky');
    const bJoin = track(group.join(request({ clientId: 'b', protocols: [both[1]!] })));
    const aJoin = await group.join(request({ clientId: 'a', memberId: a.memberId, protocols: both }));
    await settle();
    expect(aJoin.protocolName).toBe('range');
    expect(bJoin.value!.protocolName).toBe('range');
    expect(aJoin.members.map((member) => member.metadata.toString()).sort()).toEqual(['r', 'r']);
  });

  it('waits group.initial.rebalance.delay.ms for more members before the first generation', async () => {
    const clock = new ManualClock();
    const group = new ClassicGroup('billing', { ...SETTINGS, initialRebalanceDelayMs: 3_000 }, clock);
    const joins = [track(group.join(request({ clientId: 'a' })))];
    clock.advance(2_000);
    joins.push(track(group.join(request({ clientId: 'b' }))));
    clock.advance(2_000);
    await settle();
    expect(joins.map((join) => join.value)).toEqual([undefined, undefined]); // b restarted the wait
    clock.advance(1_000);
    await settle();
    expect(joins.map((join) => join.value?.generationId)).toEqual([1, 1]);
  });

  it('an assignment that cannot be stored sends the members back to rejoin', async () => {
    const group = new ClassicGroup('billing', SETTINGS, new ManualClock(), async () => {
      throw new Error('disk full');
    });
    const a = await group.join(request());
    const synced = await group.sync({ memberId: a.memberId, generationId: 1, protocolType: null, protocolName: null, assignments: [] });
    expect(synced.errorCode).toBe(errorCode('COORDINATOR_NOT_AVAILABLE'));
    expect(group.state).toBe('PreparingRebalance');
    expect((await group.join(request({ memberId: a.memberId }))).generationId).toBe(2);
  });

  it('a dead group answers waiting and new requests with COORDINATOR_NOT_AVAILABLE', async () => {
    const group = new ClassicGroup('billing', SETTINGS, new ManualClock());
    const a = await group.join(request({ clientId: 'a' }));
    const bJoin = track(group.join(request({ clientId: 'b' }))); // waits for a to rejoin
    await settle();
    expect(bJoin.value).toBeUndefined();
    group.markDead();
    await settle();
    expect(bJoin.value!.errorCode).toBe(errorCode('COORDINATOR_NOT_AVAILABLE'));
    expect(group.state).toBe('Dead');
    expect(group.heartbeat(a.memberId, 1)).toBe(errorCode('COORDINATOR_NOT_AVAILABLE'));
    expect((await group.join(request({ memberId: a.memberId }))).errorCode).toBe(errorCode('COORDINATOR_NOT_AVAILABLE'));
    expect(group.leave(byMemberId(a.memberId))).toEqual([errorCode('COORDINATOR_NOT_AVAILABLE')]);
  });
});
