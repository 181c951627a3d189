// The Producer: send() picks a partition and appends the record to the accumulator; the sender
// does the network work. Records whose topic has no metadata yet, or that arrive while more than
// bufferMemory bytes are queued, wait in order in a bounded `blocked` queue for up to maxBlockMs.
import { FifoQueue } from './fifoQueue.js';
import { COMPRESSION_CODECS, RunnelError, type CompressionCodec, type RecordHeader, type RecordInput } from '@runnel/common';
import { RecordAccumulator, type PartitionQueue, type RecordMetadata } from './accumulator.js';
import { backoffMs, sleep } from './backoff.js';
import { Cluster } from './cluster.js';
import { murmur2, toPositive } from './murmur2.js';
import { nonNegative, positiveOption, resolveClientOptions, type ClientOptions } from './options.js';
import { Sender } from './sender.js';

export type { RecordMetadata } from './accumulator.js';

export interface ProducerRecord {
  topic: string;
  key?: Buffer | string | null;
  value: Buffer | string | null;
  headers?: Record<string, Buffer | string>;
  partition?: number;
  timestamp?: number;
}

export interface ProducerOptions extends ClientOptions {
  /** 0: no answer; 1: the leader wrote it; -1 or 'all': every in-sync replica has it. Default 'all'. */
  acks?: 0 | 1 | -1 | 'all';
  /** Bytes per partition batch. Default 16384. */
  batchSize?: number;
  /** How long a batch waits for more records. Default 5. */
  lingerMs?: number;
  /** How each batch's records are compressed, framed as Kafka's producers do. Default 'none'. */
  compression?: CompressionCodec;
  /** Default Number.MAX_SAFE_INTEGER: deliveryTimeoutMs is the real bound. */
  retries?: number;
  /** Default 100, doubling per attempt up to retryBackoffMaxMs (default 1000), with jitter. */
  retryBackoffMs?: number;
  retryBackoffMaxMs?: number;
  /** Time from send() to success or failure, retries included. Default 120000. */
  deliveryTimeoutMs?: number;
  /** Produce requests in flight per broker connection. Default 5. */
  maxInFlightRequests?: number;
  /** send() waits while more than this many record bytes are queued. Default 32 MiB. */
  bufferMemory?: number;
  /** How long send() may wait for metadata or buffer memory before it fails. Default 60000 (Kafka's max.block.ms). */
  maxBlockMs?: number;
  /** Bytes of record batches in one produce request. Default 1048576 (Kafka's max.request.size). */
  maxRequestBytes?: number;
  /**
   * Called each time a partition's batches failed with a retriable error and will be sent again
   * (until deliveryTimeoutMs). Retrying is right for errors that a leader move fixes, but some
   * (KAFKA_STORAGE_ERROR: a full or failed disk) usually need an operator: this lets an
   * application say so at once instead of when delivery times out. Must not throw.
   */
  onRetriableError?: (error: RunnelError, topic: string, partition: number) => void;
  /** 'default': murmur2 of the key, sticky partition for null keys; 'round-robin'. */
  partitioner?: 'default' | 'round-robin';
}

interface BlockedSend {
  record: ProducerRecord;
  input: RecordInput;
  deadlineMs: number;
  promise: Promise<RecordMetadata>;
  resolve: (metadata: RecordMetadata) => void;
  reject: (error: Error) => void;
}

interface TopicState {
  /** Sticky partition of null-key records; -1 picks a new one. */
  sticky: number;
  roundRobinNext: number;
}

/** Sends waiting for metadata or memory; past this, send() fails at once instead of queueing more. */
const BLOCKED_SENDS_MAX = 1_000_000;

function toBuffer(value: Buffer | string | null | undefined): Buffer | null {
  if (value === null || value === undefined) return null;
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
}

function toHeaders(headers: Record<string, Buffer | string> | undefined): RecordHeader[] | undefined {
  if (headers === undefined) return undefined;
  const list: RecordHeader[] = [];
  for (const key in headers) list.push({ key, value: toBuffer(headers[key]) });
  return list;
}

/** Why a record cannot be encoded, or null; checked in send() so encoding never throws later. */
function invalidRecord(record: ProducerRecord): string | null {
  if (typeof record.topic !== 'string' || record.topic === '') return 'a record needs a topic';
  if (record.timestamp !== undefined && (!Number.isSafeInteger(record.timestamp) || record.timestamp < 0)) return `timestamp must be a non-negative integer (ms), got ${record.timestamp}`;
  if (record.partition !== undefined && (!Number.isInteger(record.partition) || record.partition < 0)) return `partition must be a non-negative integer, got ${record.partition}`;
  return null;
}

export class Producer {
  private readonly cluster: Cluster;
  private readonly accumulator: RecordAccumulator;
  private readonly sender: Sender;
  private readonly topicStates = new Map<string, TopicState>();
  private readonly blocked = new FifoQueue<BlockedSend>();
  private blockedRunning = false;
  private memoryWaiters: Array<() => void> = [];
  private closed = false;
  private readonly bufferMemory: number;
  private readonly maxBlockMs: number;
  private readonly roundRobin: boolean;
  private readonly retryBackoffMs: number;
  private readonly retryBackoffMaxMs: number;

  constructor(options: ProducerOptions) {
    const client = resolveClientOptions(options);
    const acks = options.acks === 'all' || options.acks === undefined ? -1 : options.acks;
    if (acks !== 0 && acks !== 1 && acks !== -1) throw new RangeError(`acks must be 0, 1, -1 or 'all', got ${String(options.acks)}`);
    const compression = options.compression ?? 'none';
    if (!COMPRESSION_CODECS.includes(compression)) throw new RangeError(`compression must be one of ${COMPRESSION_CODECS.join(', ')}, got ${String(compression)}`);
    const maxInFlightRequests = positiveOption('maxInFlightRequests', options.maxInFlightRequests, 5);
    this.bufferMemory = positiveOption('bufferMemory', options.bufferMemory, 32 * 1024 * 1024);
    this.maxBlockMs = nonNegative('maxBlockMs', options.maxBlockMs, 60_000);
    this.roundRobin = options.partitioner === 'round-robin';
    this.retryBackoffMs = nonNegative('retryBackoffMs', options.retryBackoffMs, 100);
    this.retryBackoffMaxMs = Math.max(this.retryBackoffMs, nonNegative('retryBackoffMaxMs', options.retryBackoffMaxMs, 1000));
    this.cluster = new Cluster({ ...client, allowAutoTopicCreation: true, produceWindowMax: maxInFlightRequests });
    this.accumulator = new RecordAccumulator({
      batchSize: positiveOption('batchSize', options.batchSize, 16_384),
      lingerMs: nonNegative('lingerMs', options.lingerMs, 5),
      compression,
      onBatchClosed: (queue) => this.onBatchClosed(queue),
      wake: () => this.sender.wake(),
      onReleased: () => {
        if (this.memoryWaiters.length > 0 && this.accumulator.bufferedBytes <= this.bufferMemory) this.releaseMemoryWaiters();
      },
    });
    this.sender = new Sender(this.accumulator, this.cluster, {
      acks,
      requestTimeoutMs: client.requestTimeoutMs,
      retries: nonNegative('retries', options.retries, Number.MAX_SAFE_INTEGER),
      retryBackoffMs: this.retryBackoffMs,
      retryBackoffMaxMs: this.retryBackoffMaxMs,
      deliveryTimeoutMs: positiveOption('deliveryTimeoutMs', options.deliveryTimeoutMs, 120_000),
      maxRequestBytes: positiveOption('maxRequestBytes', options.maxRequestBytes, 1_048_576),
      onRetriableError: options.onRetriableError,
    });
  }

  /** Queues a record; resolves with its offset once the broker has it (as `acks` defines). */
  send(record: ProducerRecord): Promise<RecordMetadata> {
    if (this.closed) return Promise.reject(new Error('the producer is closed'));
    const invalid = invalidRecord(record);
    if (invalid !== null) return Promise.reject(new TypeError(invalid));
    const input: RecordInput = {
      key: toBuffer(record.key),
      value: toBuffer(record.value),
      headers: toHeaders(record.headers),
      timestamp: record.timestamp ?? Date.now(),
    };
    if (this.blocked.length === 0 && this.accumulator.bufferedBytes <= this.bufferMemory) {
      const partitionCount = this.knownPartitionCount(record.topic);
      if (partitionCount > 0) {
        return new Promise((resolve, reject) => this.append(record, input, partitionCount, resolve, reject));
      }
    }
    return this.block(record, input);
  }

  /** Sends everything queued now, without lingering, and waits until each record is settled. */
  async flush(): Promise<void> {
    const waits: Array<Promise<unknown>> = this.blocked.map((entry) => entry.promise.catch(() => undefined));
    for (const batch of this.accumulator.incomplete) waits.push(batch.done());
    this.sender.flushing++;
    try {
      this.sender.wake();
      await Promise.all(waits);
    } finally {
      this.sender.flushing--;
    }
  }

  /** Flushes, then closes the connections; later sends fail. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.flush();
    this.sender.stop();
    await this.cluster.close();
  }

  private append(record: ProducerRecord, input: RecordInput, partitionCount: number, resolve: (metadata: RecordMetadata) => void, reject: (error: Error) => void): void {
    const partition = this.choosePartition(record, input.key ?? null, partitionCount);
    if (partition < 0) {
      reject(new RunnelError('UNKNOWN_TOPIC_OR_PARTITION', `partition ${record.partition} of topic '${record.topic}' does not exist (it has ${partitionCount})`));
      return;
    }
    const queue = this.accumulator.queue(record.topic, partition);
    this.accumulator.append(queue, input, resolve, reject);
    if (this.sender.flushing > 0) this.sender.wake();
  }

  private choosePartition(record: ProducerRecord, key: Buffer | null, partitionCount: number): number {
    if (record.partition !== undefined) {
      return Number.isInteger(record.partition) && record.partition >= 0 && record.partition < partitionCount ? record.partition : -1;
    }
    if (key !== null && !this.roundRobin) return toPositive(murmur2(key)) % partitionCount;
    const state = this.topicState(record.topic);
    if (this.roundRobin) return state.roundRobinNext++ % partitionCount;
    if (state.sticky < 0 || state.sticky >= partitionCount) state.sticky = this.pickStickyPartition(record.topic, partitionCount, state.sticky);
    return state.sticky;
  }

  /** A random partition with a leader, other than the previous sticky one when there is a choice. */
  private pickStickyPartition(topic: string, partitionCount: number, previous: number): number {
    const candidates: number[] = [];
    for (let partition = 0; partition < partitionCount; partition++) {
      if (partition !== previous && this.cluster.leaderId(topic, partition) >= 0) candidates.push(partition);
    }
    if (candidates.length === 0) return previous >= 0 && previous < partitionCount ? previous : Math.floor(Math.random() * partitionCount);
    return candidates[Math.floor(Math.random() * candidates.length)]!;
  }

  private topicState(topic: string): TopicState {
    let state = this.topicStates.get(topic);
    if (state === undefined) {
      state = { sticky: -1, roundRobinNext: Math.floor(Math.random() * 1024) };
      this.topicStates.set(topic, state);
    }
    return state;
  }

  /** Null-key records move to another partition once the sticky partition's batch is closed. */
  private onBatchClosed(queue: PartitionQueue): void {
    const state = this.topicStates.get(queue.topic);
    if (state !== undefined && state.sticky === queue.partition) state.sticky = this.pickStickyPartition(queue.topic, this.knownPartitionCount(queue.topic), queue.partition);
    this.sender.wake();
  }

  /** Partitions of a topic from the cache (even if old: the sender refreshes it); -1 when unknown. */
  private knownPartitionCount(topic: string): number {
    const metadata = this.cluster.knownTopic(topic);
    if (metadata === undefined || metadata.errorCode !== 0) return -1;
    return metadata.partitions.length;
  }

  private block(record: ProducerRecord, input: RecordInput): Promise<RecordMetadata> {
    if (this.blocked.length >= BLOCKED_SENDS_MAX) {
      return Promise.reject(new RunnelError('REQUEST_TIMED_OUT', `more than ${BLOCKED_SENDS_MAX} sends are waiting for metadata or buffer memory`));
    }
    let resolve!: (metadata: RecordMetadata) => void;
    let reject!: (error: Error) => void;
    const promise = new Promise<RecordMetadata>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.blocked.push({ record, input, deadlineMs: Date.now() + this.maxBlockMs, promise, resolve, reject });
    void this.drainBlocked();
    return promise;
  }

  /** Moves blocked sends into the accumulator in order, as metadata and memory allow. */
  private async drainBlocked(): Promise<void> {
    if (this.blockedRunning) return;
    this.blockedRunning = true;
    try {
      for (let attempt = 1; this.blocked.length > 0; ) {
        const head = this.blocked.peek()!;
        const waited = await this.whyBlocked(head, attempt);
        if (waited === 'ready') {
          this.blocked.shift();
          this.append(head.record, head.input, this.knownPartitionCount(head.record.topic), head.resolve, head.reject);
          attempt = 1;
        } else if (waited !== 'failed') {
          attempt++;
        }
      }
    } finally {
      this.blockedRunning = false;
    }
  }

  /** 'ready' when the head can be appended; waits (bounded) otherwise; 'failed' after rejecting it. */
  private async whyBlocked(head: BlockedSend, attempt: number): Promise<'ready' | 'waited' | 'failed'> {
    const remainingMs = head.deadlineMs - Date.now();
    const topic = head.record.topic;
    if (this.knownPartitionCount(topic) <= 0) {
      const error = await this.loadTopic(topic);
      if (error !== null && (!error.retriable || remainingMs <= 0)) return this.failHead(error, remainingMs <= 0);
      if (error !== null) {
        await sleep(Math.min(remainingMs, backoffMs(attempt, this.retryBackoffMs, this.retryBackoffMaxMs)));
        return 'waited';
      }
    }
    if (this.accumulator.bufferedBytes > this.bufferMemory) {
      if (remainingMs <= 0) return this.failHead(new RunnelError('REQUEST_TIMED_OUT', `${this.accumulator.bufferedBytes} bytes stayed queued above bufferMemory ${this.bufferMemory}`), true);
      await this.waitForMemory(remainingMs);
      return 'waited';
    }
    return 'ready';
  }

  private failHead(error: RunnelError, timedOut: boolean): 'failed' {
    const head = this.blocked.shift()!;
    const detail = timedOut ? `send to '${head.record.topic}' waited maxBlockMs ${this.maxBlockMs}: ${error.message}` : error.message;
    head.reject(timedOut ? Object.assign(new RunnelError('REQUEST_TIMED_OUT', detail), { cause: error }) : error);
    return 'failed';
  }

  /** Fetches metadata for a topic (creating it if the broker allows); null when its partitions are known. */
  private async loadTopic(topic: string): Promise<RunnelError | null> {
    try {
      const metadata = await this.cluster.topic(topic);
      if (metadata.errorCode === 0 && metadata.partitions.length > 0) return null;
      this.cluster.requestRefresh();
      if (metadata.errorCode === 0) return new RunnelError('LEADER_NOT_AVAILABLE', `topic '${topic}' has no partitions yet`);
      return RunnelError.fromCode(metadata.errorCode, `topic '${topic}': ${metadata.errorMessage || 'metadata error'}`);
    } catch (error) {
      this.cluster.requestRefresh();
      if (error instanceof RunnelError) return error;
      return new RunnelError('NETWORK_EXCEPTION', String((error as Error)?.message ?? error));
    }
  }

  private waitForMemory(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.memoryWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
      // The last batch may have settled before this wait began.
      if (this.accumulator.bufferedBytes <= this.bufferMemory) this.releaseMemoryWaiters();
    });
  }

  private releaseMemoryWaiters(): void {
    const waiters = this.memoryWaiters;
    this.memoryWaiters = [];
    for (const wake of waiters) wake();
  }
}
