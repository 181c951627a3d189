// Kafka's queued.max.request.bytes: one bound, for the whole broker, on the bytes of requests it
// has received and not yet answered. Each stream already stops reading past a number of requests in
// flight; without a broker-wide bound, many streams (or a few with large requests waiting for
// acks=all) could still hold any amount of memory. A request that does not fit waits — and its
// stream stops reading, which HTTP/2 flow control turns into back-pressure on the client — until
// answered requests free enough; it is never refused or cut.

import { assert } from './invariant.js';

interface Waiter {
  readonly bytes: number;
  readonly grant: () => void;
}

export class RequestMemoryPool {
  private used = 0;
  private peak = 0;
  private readonly waiting: Waiter[] = [];

  /** `capacityBytes` -1: unlimited. */
  constructor(readonly capacityBytes: number) {
    assert(Number.isSafeInteger(capacityBytes) && (capacityBytes === -1 || capacityBytes > 0), `a request memory pool holds -1 (unlimited) or a positive number of bytes, not ${capacityBytes}`);
  }

  get usedBytes(): number {
    return this.used;
  }

  /** The most bytes held at once since start. */
  get peakBytes(): number {
    return this.peak;
  }

  get waitingRequests(): number {
    return this.waiting.length;
  }

  /**
   * Takes `bytes` now and returns true, or queues the caller (first come, first served) and returns
   * false; `grant` runs once the bytes are taken. A request larger than the whole pool is taken when
   * nothing else is held, so that it cannot wait forever.
   */
  acquire(bytes: number, grant: () => void): boolean {
    if (this.waiting.length === 0 && this.fits(bytes)) {
      this.take(bytes);
      return true;
    }
    this.waiting.push({ bytes, grant });
    return false;
  }

  release(bytes: number): void {
    assert(bytes <= this.used, `releasing ${bytes} bytes from a pool holding ${this.used}`);
    this.used -= bytes;
    while (this.waiting.length > 0 && this.fits(this.waiting[0]!.bytes)) {
      const next = this.waiting.shift()!;
      this.take(next.bytes);
      next.grant();
    }
  }

  private fits(bytes: number): boolean {
    return this.capacityBytes === -1 || this.used === 0 || this.used + bytes <= this.capacityBytes;
  }

  private take(bytes: number): void {
    this.used += bytes;
    this.peak = Math.max(this.peak, this.used);
  }
}
