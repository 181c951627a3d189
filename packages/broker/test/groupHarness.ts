// Shared by the group tests: a clock whose timers run only when the test moves it, and a
// JoinGroup request with the fields a consumer sends.
import type { GroupClock, JoinRequest } from '../src/group/classicGroup.js';

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
