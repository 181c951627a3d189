// The leader's view of one follower: how much of the log it holds (match), what to send next, and
// how fast to send it (probe: one message per round trip; replicate: a bounded pipeline; snapshot:
// wait for an InstallSnapshot to land).
import { assert } from './types.js';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** A bounded window of in-flight append messages, each remembered by its last index. */
export class Inflights {
  private readonly lastIndexes: number[] = [];
  readonly capacity: number;

  constructor(capacity: number) {
    assert(capacity >= 1, 'inflight capacity >= 1', () => `${capacity}`);
    this.capacity = capacity;
  }

  get count(): number {
    return this.lastIndexes.length;
  }

  full(): boolean {
    return this.lastIndexes.length >= this.capacity;
  }

  add(lastIndex: number): void {
    assert(!this.full(), 'inflight window is bounded', () => `adding beyond ${this.capacity}`);
    this.lastIndexes.push(lastIndex);
  }

  /** Release every message whose entries are all acknowledged (last index <= index). */
  freeTo(index: number): void {
    let released = 0;
    while (released < this.lastIndexes.length && this.lastIndexes[released]! <= index) released++;
    if (released > 0) this.lastIndexes.splice(0, released);
  }

  /** Forget the oldest message: it (or its reply) may be lost; a rejection will rewind `next`. */
  freeFirstOne(): void {
    this.lastIndexes.shift();
  }

  reset(): void {
    this.lastIndexes.length = 0;
  }
}

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** Probe state: a probe is outstanding; no more appends until a response or heartbeat response. */
  probeSent = false;
  /** Snapshot state: index of the snapshot sent. */
  pendingSnapshot = 0;
  /** Snapshot state: leader ticks since the snapshot was sent (resent after an election timeout). */
  snapshotElapsedTicks = 0;
  /** Heard from since the last CheckQuorum round. */
  recentActive = false;
  isLearner: boolean;
  readonly inflights: Inflights;

  constructor(next: number, inflightCapacity: number, isLearner: boolean) {
    this.next = next;
    this.inflights = new Inflights(inflightCapacity);
    this.isLearner = isLearner;
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      this.next = Math.max(this.match + 1, this.pendingSnapshot + 1);
    } else {
      this.next = this.match + 1;
    }
    this.resetState('probe');
  }

  becomeReplicate(): void {
    this.next = this.match + 1;
    this.resetState('replicate');
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
    this.next = snapshotIndex + 1;
  }

  private resetState(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.snapshotElapsedTicks = 0;
    this.inflights.reset();
  }

  /** An acknowledgement up to `index`. Returns whether match moved. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      this.probeSent = false;
      updated = true;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /**
   * A rejection of the append at `rejected`; `matchHint` is where the follower's log may match.
   * Returns false if the rejection is stale (the reply to an older message).
   */
  maybeDecreaseTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }
}
