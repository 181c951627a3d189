// Shared by the group tests: a clock whose timers run only when the test moves it, a JoinGroup
// request with the fields a consumer sends, LeaveGroup entries, and a Stable group of two.
import { expect } from 'vitest';
import type { ClassicGroup, GroupClock, JoinRequest, LeavingMember } from '../src/group/classicGroup.js';
import { settle } from './leaderHarness.js';

/** A consumer's JoinGroup request (a first join unless `memberId` is given). */
export function joinRequest(overrides: Partial<JoinRequest> = {}): JoinRequest {
  return {
    memberId: '',
    groupInstanceId: null,
    clientId: 'c',
    clientHost: '/127.0.0.1',
    protocolType: 'consumer',
    protocols: [{ name: 'range', metadata: Buffer.from('orders') }],
    sessionTimeoutMs: 10_000,
    rebalanceTimeoutMs: 30_000,
    requireKnownMemberId: false,
    ...overrides,
  };
}

/** LeaveGroup entries of dynamic members (no instance id). */
export function byMemberId(...memberIds: string[]): LeavingMember[] {
  return memberIds.map((memberId) => ({ memberId, groupInstanceId: null }));
}

export class ManualClock implements GroupClock {
  private nowMs = 0;
  private timers: Array<{ atMs: number; run: () => void; cancelled: boolean }> = [];

  now(): number {
    return this.nowMs;
  }

  schedule(delayMs: number, run: () => void): () => void {
    const timer = { atMs: this.nowMs + delayMs, run, cancelled: false };
    this.timers.push(timer);
    return () => {
      timer.cancelled = true;
    };
  }

  /** Moves time forward, running due timers in order. */
  advance(ms: number): void {
    const target = this.nowMs + ms;
    for (;;) {
      const due = this.timers.filter((timer) => !timer.cancelled && timer.atMs <= target).sort((a, b) => a.atMs - b.atMs)[0];
      if (due === undefined) break;
      due.cancelled = true;
      this.nowMs = due.atMs;
      due.run();
    }
    this.nowMs = target;
  }
}

/** Tracks a pending promise's outcome without awaiting it. */
export function track<T>(promise: Promise<T>): { value: T | undefined } {
  const box: { value: T | undefined } = { value: undefined };
  void promise.then((value) => {
    box.value = value;
  });
  return box;
}

/**
 * A Stable group of two members at generation 2: a (the leader, assigned 'a-share') and b
 * (assigned 'b-share'), each joining with `joins.a` / `joins.b` over the defaults.
 */
export async function stableGroupOfTwo(group: ClassicGroup, joins: { a?: Partial<JoinRequest>; b?: Partial<JoinRequest> } = {}): Promise<{ a: string; b: string }> {
  const joinA = { clientId: 'a', ...joins.a };
  const joinB = { clientId: 'b', ...joins.b };
  const a = await group.join(joinRequest(joinA));
  const bJoin = track(group.join(joinRequest(joinB)));
  await group.join(joinRequest({ ...joinA, memberId: a.memberId }));
  await settle();
  const b = bJoin.value!;
  const sync = { generationId: 2, protocolType: null, protocolName: null };
  const bSync = group.sync({ ...sync, memberId: b.memberId, groupInstanceId: joinB.groupInstanceId ?? null, assignments: [] });
  await group.sync({
    ...sync,
    memberId: a.memberId,
    groupInstanceId: joinA.groupInstanceId ?? null,
    assignments: [
      { memberId: a.memberId, assignment: Buffer.from('a-share') },
      { memberId: b.memberId, assignment: Buffer.from('b-share') },
    ],
  });
  await bSync;
  expect(group.state).toBe('Stable');
  return { a: a.memberId, b: b.memberId };
}
