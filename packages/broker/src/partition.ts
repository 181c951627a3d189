import type { PartitionLog } from '@runnel/storage';

/**
 * One partition hosted by this node. With a single node every partition is led here and the
 * in-sync replica set is {this node}, so the high watermark is the log end offset of appends that
 * have completed (including their fsync when the flush policy asks for one).
 */
export class Partition {
  private highWatermarkOffset: number;
  private readonly dataListeners = new Set<() => void>();

  constructor(
    readonly topic: string,
    readonly index: number,
    readonly log: PartitionLog,
    readonly leaderEpoch: number,
  ) {
    this.highWatermarkOffset = log.logEndOffset;
  }

  get name(): string {
    return `${this.topic}-${this.index}`;
  }

  get highWatermark(): number {
    return this.highWatermarkOffset;
  }

  /** Moves the high watermark forward (never back) and wakes fetches waiting for data. */
  advanceHighWatermark(offset: number): void {
    if (offset <= this.highWatermarkOffset) return;
    if (offset > this.log.logEndOffset) {
      throw new Error(`invariant: high watermark ${offset} above log end offset ${this.log.logEndOffset} in ${this.name}`);
    }
    this.highWatermarkOffset = offset;
    for (const listener of [...this.dataListeners]) listener();
  }

  /** After truncation or retention the log may start above the old watermark. */
  resetHighWatermarkToLogEnd(): void {
    this.highWatermarkOffset = this.log.logEndOffset;
    for (const listener of [...this.dataListeners]) listener();
  }

  onData(listener: () => void): () => void {
    this.dataListeners.add(listener);
    return () => this.dataListeners.delete(listener);
  }
}
