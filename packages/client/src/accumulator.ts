// The RecordAccumulator: one open batch per partition collecting records until it is full
// (batchSize bytes, estimated) or lingerMs old; then it is encoded once and waits in its
// partition's queue for the sender. Encoded bytes are kept for retries.
import { BATCH_HEADER_BYTES, encodeRecordBatch, type CompressionCodec, type RecordInput, type RunnelError } from '@runnel/common';

export interface RecordMetadata {
  topic: string;
  partition: number;
  /** -1 with acks=0: the broker does not say. */
  offset: number;
  timestamp: number;
}

/** Per-record overhead inside a batch at most: length, attributes, deltas, key/value lengths, header count. */
const RECORD_OVERHEAD_BYTES_MAX = 26;

export function estimateRecordBytes(record: RecordInput): number {
  let bytes = RECORD_OVERHEAD_BYTES_MAX + (record.key?.length ?? 0) + (record.value?.length ?? 0);
  const headers = record.headers;
  if (headers !== undefined) for (const header of headers) bytes += 10 + header.key.length * 3 + (header.value?.length ?? 0);
  return bytes;
}

export class ProducerBatch {
  readonly records: RecordInput[] = [];
  readonly resolves: Array<(metadata: RecordMetadata) => void> = [];
  readonly rejects: Array<(error: Error) => void> = [];
  estimatedBytes = BATCH_HEADER_BYTES;
  encoded: Buffer | null = null;
  /** Times this batch was sent. */
  attempts = 0;
  lastError: RunnelError | null = null;
  lingerTimer: NodeJS.Timeout | null = null;
  private doneWaiters: Array<() => void> | null = null;

  constructor(
    readonly queue: PartitionQueue,
    readonly createdMs: number,
  ) {}

  /** Resolves when every record of the batch has been resolved or rejected. */
  done(): Promise<void> {
    this.doneWaiters ??= [];
    const waiters = this.doneWaiters;
    return new Promise((resolve) => waiters.push(resolve));
  }

  notifyDone(): void {
    if (this.doneWaiters === null) return;
    for (const wake of this.doneWaiters) wake();
    this.doneWaiters = null;
  }
}

/** The batches of one partition, oldest first. At most one request per partition is in flight. */
export class PartitionQueue {
  /** Closed (encoded) batches waiting to be sent, oldest first. */
  readonly batches: ProducerBatch[] = [];
  open: ProducerBatch | null = null;
  inFlight = false;
  retryAtMs = 0;
  /** Send the next N batches one per request, to find which batch a broker refused. */
  soloBatches = 0;

  constructor(
    readonly topic: string,
    readonly partition: number,
  ) {}
}

export interface AccumulatorOptions {
  batchSize: number;
  lingerMs: number;
  compression: CompressionCodec;
  /** Called when a batch closes, so the sender can look at it, and the partitioner move on. */
  onBatchClosed: (queue: PartitionQueue) => void;
  /** Asks the sender to run soon (lingerMs 0: a new batch is sendable at the next turn). */
  wake: () => void;
  /** Called when a batch settles and its bytes no longer count against bufferMemory. */
  onReleased: () => void;
}

export class RecordAccumulator {
  private readonly queuesByTopic = new Map<string, PartitionQueue[]>();
  /** Queues with closed batches: what the sender looks at. */
  readonly sendable = new Set<PartitionQueue>();
  /** Queues with an open batch. */
  readonly lingering = new Set<PartitionQueue>();
  /** Batches whose records are not all resolved or rejected yet. */
  readonly incomplete = new Set<ProducerBatch>();
  bufferedBytes = 0;
  private readonly onLingerExpired = (batch: ProducerBatch): void => {
    batch.lingerTimer = null;
    if (batch.queue.open === batch) this.close(batch.queue);
  };

  constructor(private readonly options: AccumulatorOptions) {}

  queue(topic: string, partition: number): PartitionQueue {
    let queues = this.queuesByTopic.get(topic);
    if (queues === undefined) {
      queues = [];
      this.queuesByTopic.set(topic, queues);
    }
    let queue = queues[partition];
    if (queue === undefined) {
      queue = new PartitionQueue(topic, partition);
      queues[partition] = queue;
    }
    return queue;
  }

  /** Adds a record to its partition's open batch; a record that does not fit goes to a new batch. */
  append(queue: PartitionQueue, record: RecordInput, resolve: (metadata: RecordMetadata) => void, reject: (error: Error) => void): void {
    const bytes = estimateRecordBytes(record);
    let batch = queue.open;
    if (batch !== null && batch.estimatedBytes + bytes > this.options.batchSize) {
      this.close(queue);
      batch = null;
    }
    if (batch === null) batch = this.openBatch(queue);
    batch.records.push(record);
    batch.resolves.push(resolve);
    batch.rejects.push(reject);
    batch.estimatedBytes += bytes;
    this.bufferedBytes += bytes;
    if (batch.estimatedBytes >= this.options.batchSize) this.close(queue);
  }

  /** Closes the open batch of `queue`: encodes it and queues it for the sender. */
  close(queue: PartitionQueue): void {
    const batch = queue.open;
    if (batch === null) return;
    queue.open = null;
    this.lingering.delete(queue);
    if (batch.lingerTimer !== null) clearTimeout(batch.lingerTimer);
    batch.lingerTimer = null;
    batch.encoded = encodeRecordBatch(batch.records, { compression: this.options.compression });
    queue.batches.push(batch);
    this.sendable.add(queue);
    this.options.onBatchClosed(queue);
  }

  closeAll(): void {
    for (const queue of [...this.lingering]) this.close(queue);
  }

  /** Closes open batches that have lingered for lingerMs (the timers do this too; this catches lingerMs 0). */
  closeExpired(nowMs: number): void {
    for (const queue of [...this.lingering]) {
      if (queue.open !== null && nowMs - queue.open.createdMs >= this.options.lingerMs) this.close(queue);
    }
  }

  /** Resolves every record of a sent batch; offsets follow from `baseOffset` (-1 stays -1). */
  complete(batch: ProducerBatch, baseOffset: number, logAppendTimeMs: number): void {
    const { topic, partition } = batch.queue;
    const records = batch.records;
    for (let i = 0; i < records.length; i++) {
      const timestamp = logAppendTimeMs > 0 ? logAppendTimeMs : records[i]!.timestamp!;
      batch.resolves[i]!({ topic, partition, offset: baseOffset < 0 ? -1 : baseOffset + i, timestamp });
    }
    this.release(batch);
  }

  fail(batch: ProducerBatch, error: Error): void {
    for (const reject of batch.rejects) reject(error);
    this.release(batch);
  }

  private openBatch(queue: PartitionQueue): ProducerBatch {
    const batch = new ProducerBatch(queue, Date.now());
    queue.open = batch;
    this.lingering.add(queue);
    this.incomplete.add(batch);
    if (this.options.lingerMs > 0) batch.lingerTimer = setTimeout(this.onLingerExpired, this.options.lingerMs, batch);
    else this.options.wake();
    return batch;
  }

  private release(batch: ProducerBatch): void {
    this.bufferedBytes -= batch.estimatedBytes - BATCH_HEADER_BYTES;
    this.incomplete.delete(batch);
    batch.notifyDone();
    this.options.onReleased();
  }
}
