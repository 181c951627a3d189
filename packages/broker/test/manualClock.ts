// Time for the group tests: timers run only when the test moves the clock.
import type { GroupClock } from '../src/group/classicGroup.js';

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
