// The Consumer (manual assignment, no groups yet): one Fetch in flight per broker, carrying every
// assigned partition that broker leads and that has nothing buffered; answers are decoded into a
// per-partition buffer that poll() drains, advancing positions.
import { CorruptBatchError, RunnelError, decodeRecords, isControlBatch, lastOffsetOf, readBatchHeader, BATCH_HEADER_BYTES, LOG_OVERHEAD, type ClientApi, type DecodedRecord } from '@runnel/common';
import { listOffsetsFromLeaders } from './admin.js';
import { backoffMs } from './backoff.js';
import { Cluster } from './cluster.js';
import type { BrokerConnection } from './connection.js';
import { needsMetadataRefresh } from './errors.js';
import { nonNegative, positiveOption, resolveClientOptions, type ClientOptions } from './options.js';

export interface ConsumerRecord {
  topic: string;
  partition: number;
  offset: number;
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer | null>;
}

export interface TopicPartition {
  topic: string;
  partition: number;
}

export interface ConsumerOptions extends ClientOptions {
  /** Long poll on the broker. Default 500. */
  maxWaitMs?: number;
  minBytes?: number;
  maxBytes?: number;
  maxPartitionBytes?: number;
  /** Where to start without a position, or after OFFSET_OUT_OF_RANGE. Default 'latest'. */
  autoOffsetReset?: 'earliest' | 'latest' | 'none';
  maxPollRecords?: number;
  /** Backoff after a failed fetch or offset lookup. Default 100. */
  retryBackoffMs?: number;
}

interface PartitionState {
  readonly topic: string;
  readonly partition: number;
  position: number | undefined;
  /** Bumped by seeks: answers to fetches sent before are dropped. */
  epoch: number;
  fetchInFlight: boolean;
  buffered: ConsumerRecord[];
  bufferedNext: number;
  /** Where the next fetch starts once `buffered` is drained (past control or skipped batches). */
  nextFetchOffset: number;
  retryAtMs: number;
  attempts: number;
  /** Thrown by the next poll (non-retriable fetch error, or OFFSET_OUT_OF_RANGE with reset 'none'). */
  error: RunnelError | null;
}

interface SentPartition {
  state: PartitionState;
  epoch: number;
  fetchOffset: number;
}

/** Partitions one consumer may be assigned. */
const ASSIGNMENT_MAX = 100_000;
const RETRY_BACKOFF_MAX_MS = 1000;

function key(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

function toConsumerRecord(topic: string, partition: number, record: DecodedRecord): ConsumerRecord {
  const headers: Record<string, Buffer | null> = {};
  for (const header of record.headers) headers[header.key] = header.value;
  return { topic, partition, offset: record.offset, timestamp: record.timestamp, key: record.key, value: record.value, headers };
}

/**
 * Records at or after `fetchOffset` in whole batches of `records`, and the offset after the last
 * whole batch. A partial batch at the end (servers send whole batches) is ignored.
 */
export function recordsFrom(topic: string, partition: number, records: Buffer, fetchOffset: number): { records: ConsumerRecord[]; nextOffset: number } {
  const out: ConsumerRecord[] = [];
  let nextOffset = fetchOffset;
  let position = 0;
  while (position + BATCH_HEADER_BYTES <= records.length) {
    const header = readBatchHeader(records, position);
    const size = header.batchLength + LOG_OVERHEAD;
    if (header.batchLength < BATCH_HEADER_BYTES - LOG_OVERHEAD) throw new CorruptBatchError(`batch at byte ${position} of ${topic}-${partition} has a bad length ${header.batchLength}`);
    if (position + size > records.length) break;
    if (!isControlBatch(header) && lastOffsetOf(header) >= fetchOffset) {
      for (const record of decodeRecords(records.subarray(position, position + size))) {
        if (record.offset >= fetchOffset) out.push(toConsumerRecord(topic, partition, record));
      }
    }
    nextOffset = Math.max(nextOffset, lastOffsetOf(header) + 1);
    position += size;
  }
  return { records: out, nextOffset };
}

export class Consumer {
  private readonly cluster: Cluster;
  private states = new Map<string, PartitionState>();
  private readonly fetchWaiters = new Set<() => void>();
  private drainStart = 0;
  private closed = false;
  private readonly maxWaitMs: number;
  private readonly minBytes: number;
  private readonly maxBytes: number;
  private readonly maxPartitionBytes: number;
  private readonly autoOffsetReset: 'earliest' | 'latest' | 'none';
  private readonly maxPollRecords: number;
  private readonly requestTimeoutMs: number;
  private readonly retryBackoffMs: number;

  constructor(options: ConsumerOptions) {
    const client = resolveClientOptions(options);
    this.cluster = new Cluster({ ...client, allowAutoTopicCreation: false, produceWindowMax: 1 });
    this.requestTimeoutMs = client.requestTimeoutMs;
    this.maxWaitMs = nonNegative('maxWaitMs', options.maxWaitMs, 500);
    this.minBytes = nonNegative('minBytes', options.minBytes, 1);
    this.maxBytes = positiveOption('maxBytes', options.maxBytes, 52_428_800);
    this.maxPartitionBytes = positiveOption('maxPartitionBytes', options.maxPartitionBytes, 1_048_576);
    this.maxPollRecords = positiveOption('maxPollRecords', options.maxPollRecords, 500);
    this.retryBackoffMs = nonNegative('retryBackoffMs', options.retryBackoffMs, 100);
    const reset = options.autoOffsetReset ?? 'latest';
    if (reset !== 'earliest' && reset !== 'latest' && reset !== 'none') throw new RangeError(`autoOffsetReset must be 'earliest', 'latest' or 'none', got ${String(reset)}`);
    this.autoOffsetReset = reset;
  }

  /** Replaces the assignment; partitions kept from the old one keep their positions. */
  assign(partitions: TopicPartition[]): void {
    if (partitions.length > ASSIGNMENT_MAX) throw new RangeError(`at most ${ASSIGNMENT_MAX} partitions can be assigned`);
    const next = new Map<string, PartitionState>();
    for (const { topic, partition } of partitions) {
      if (!Number.isInteger(partition) || partition < 0) throw new RangeError(`bad partition ${partition} of topic '${topic}'`);
      const id = key(topic, partition);
      next.set(id, this.states.get(id) ?? this.newState(topic, partition));
      this.cluster.track(topic);
    }
    this.states = next;
  }

  assignment(): TopicPartition[] {
    return [...this.states.values()].map(({ topic, partition }) => ({ topic, partition }));
  }

  /** The partition ids of `topic`, sorted; UNKNOWN_TOPIC_OR_PARTITION if it does not exist. */
  async partitionsFor(topic: string): Promise<number[]> {
    const response = await this.cluster.metadata({ topics: [topic], allowAutoTopicCreation: false });
    const info = response.topics.find((candidate) => candidate.name === topic);
    if (info === undefined) throw new RunnelError('UNKNOWN_TOPIC_OR_PARTITION', `topic '${topic}' does not exist`);
    if (info.errorCode !== 0) throw RunnelError.fromCode(info.errorCode, `topic '${topic}': ${info.errorMessage || 'metadata error'}`);
    return info.partitions.map((partition) => partition.partition).sort((a, b) => a - b);
  }

  /** The next poll returns records from `offset` on. */
  seek(partition: TopicPartition, offset: number): void {
    if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`seek offset must be a non-negative integer, got ${offset}`);
    this.setPosition(this.assigned(partition), offset);
  }

  async seekToBeginning(partitions?: TopicPartition[]): Promise<void> {
    await this.seekTo(partitions, 'earliest');
  }

  async seekToEnd(partitions?: TopicPartition[]): Promise<void> {
    await this.seekTo(partitions, 'latest');
  }

  /** Offset of the next record poll() returns for the partition; undefined before one is known. */
  position(partition: TopicPartition): number | undefined {
    return this.assigned(partition).position;
  }

  /**
   * Records at or after each partition's position, in offset order per partition, at most
   * maxPollRecords; waits up to `timeoutMs` for some, then returns [].
   */
  async poll(timeoutMs: number): Promise<ConsumerRecord[]> {
    if (this.closed) throw new Error('the consumer is closed');
    const deadlineMs = Date.now() + Math.max(0, timeoutMs);
    for (;;) {
      this.throwPartitionError();
      const records = this.drainBuffered();
      if (records.length > 0) return records;
      await this.resetPositions();
      await this.ensureMetadata();
      const inFlight = this.sendFetches();
      const remainingMs = deadlineMs - Date.now();
      if (remainingMs <= 0 || this.closed) return [];
      // Nothing in flight means every partition waits for a retry: sleep a backoff, not the whole timeout.
      await this.waitForFetch(inFlight ? remainingMs : Math.min(remainingMs, Math.max(this.retryBackoffMs, 1)));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const wake of this.fetchWaiters) wake();
    await this.cluster.close();
  }

  private newState(topic: string, partition: number): PartitionState {
    return { topic, partition, position: undefined, epoch: 0, fetchInFlight: false, buffered: [], bufferedNext: 0, nextFetchOffset: 0, retryAtMs: 0, attempts: 0, error: null };
  }

  private assigned(partition: TopicPartition): PartitionState {
    const state = this.states.get(key(partition.topic, partition.partition));
    if (state === undefined) throw new Error(`${partition.topic}-${partition.partition} is not assigned to this consumer`);
    return state;
  }

  private setPosition(state: PartitionState, offset: number | undefined): void {
    state.position = offset;
    state.epoch++;
    state.buffered = [];
    state.bufferedNext = 0;
    state.nextFetchOffset = offset ?? 0;
    state.error = null;
    state.retryAtMs = 0;
  }

  private async seekTo(partitions: TopicPartition[] | undefined, spec: 'earliest' | 'latest'): Promise<void> {
    const states = (partitions ?? this.assignment()).map((partition) => this.assigned(partition));
    if (states.length === 0) return;
    const epochs = states.map((state) => state.epoch);
    const offsets = await listOffsetsFromLeaders(this.cluster, states.map(({ topic, partition }) => ({ topic, partition, timestamp: spec })));
    states.forEach((state, i) => {
      // A seek() made while the lookup ran wins.
      if (state.epoch === epochs[i] && this.states.get(key(state.topic, state.partition)) === state) this.setPosition(state, offsets[i]!.offset);
    });
  }

  /** Gives partitions without a position one from autoOffsetReset ('none' throws). */
  private async resetPositions(): Promise<void> {
    const nowMs = Date.now();
    const missing = [...this.states.values()].filter((state) => state.position === undefined && state.retryAtMs <= nowMs);
    if (missing.length === 0) return;
    if (this.autoOffsetReset === 'none') {
      const state = missing[0]!;
      throw new RunnelError('OFFSET_OUT_OF_RANGE', `${state.topic}-${state.partition} has no position and autoOffsetReset is 'none'`);
    }
    try {
      await this.seekTo(missing, this.autoOffsetReset);
    } catch (error) {
      if (!(error instanceof RunnelError) || !error.retriable) throw error;
      this.cluster.requestRefresh();
      for (const state of missing) this.backOff(state);
    }
  }

  private async ensureMetadata(): Promise<void> {
    const missing = [...this.states.values()].some((state) => this.cluster.knownTopic(state.topic) === undefined);
    if (!missing) {
      this.cluster.refreshIfWanted();
      return;
    }
    try {
      await this.cluster.refresh();
    } catch {
      // Leaders stay unknown; the fetch step backs those partitions off.
    }
  }

  private throwPartitionError(): void {
    for (const state of this.states.values()) {
      if (state.error !== null) {
        const error = state.error;
        state.error = null;
        throw error;
      }
    }
  }

  /** Up to maxPollRecords buffered records, starting at a rotating partition for fairness. */
  private drainBuffered(): ConsumerRecord[] {
    const out: ConsumerRecord[] = [];
    const states = [...this.states.values()];
    for (let i = 0; i < states.length && out.length < this.maxPollRecords; i++) {
      const state = states[(this.drainStart + i) % states.length]!;
      while (state.bufferedNext < state.buffered.length && out.length < this.maxPollRecords) {
        const record = state.buffered[state.bufferedNext++]!;
        out.push(record);
        state.position = record.offset + 1;
      }
      if (state.bufferedNext >= state.buffered.length && state.buffered.length > 0) {
        state.buffered = [];
        state.bufferedNext = 0;
        if (state.position !== undefined) state.position = Math.max(state.position, state.nextFetchOffset);
      }
    }
    this.drainStart++;
    return out;
  }

  /** Sends one Fetch per broker without one in flight; true if any fetch is in flight afterwards. */
  private sendFetches(): boolean {
    const nowMs = Date.now();
    const byConnection = new Map<BrokerConnection, PartitionState[]>();
    let inFlight = false;
    for (const state of this.states.values()) {
      if (state.fetchInFlight) inFlight = true;
      if (state.fetchInFlight || state.position === undefined || state.buffered.length > 0 || state.retryAtMs > nowMs || state.error !== null) continue;
      let connection: BrokerConnection;
      try {
        connection = this.cluster.leaderConnection(state.topic, state.partition);
      } catch {
        this.cluster.requestRefresh();
        this.backOff(state);
        continue;
      }
      if (!connection.fetch.hasWindowSlot()) continue;
      const list = byConnection.get(connection);
      if (list === undefined) byConnection.set(connection, [state]);
      else list.push(state);
    }
    for (const [connection, states] of byConnection) {
      this.fetchFrom(connection, states);
      inFlight = true;
    }
    return inFlight;
  }

  private fetchFrom(connection: BrokerConnection, states: PartitionState[]): void {
    const sent: SentPartition[] = states.map((state) => ({ state, epoch: state.epoch, fetchOffset: state.position! }));
    for (const { state } of sent) state.fetchInFlight = true;
    const request: ClientApi.FetchRequest = {
      maxWaitMs: this.maxWaitMs,
      minBytes: this.minBytes,
      maxBytes: this.maxBytes,
      partitions: sent.map(({ state, fetchOffset }) => ({ topic: state.topic, partition: state.partition, fetchOffset, partitionMaxBytes: this.maxPartitionBytes })),
    };
    connection.fetch
      .request(request, this.maxWaitMs + this.requestTimeoutMs)
      .then(
        (response) => this.onFetched(sent, response),
        (error: unknown) => this.onFetchFailed(sent, error),
      )
      .finally(() => {
        for (const { state } of sent) state.fetchInFlight = false;
        for (const wake of this.fetchWaiters) wake();
      });
  }

  private isCurrent({ state, epoch, fetchOffset }: SentPartition): boolean {
    return this.states.get(key(state.topic, state.partition)) === state && state.epoch === epoch && state.position === fetchOffset;
  }

  private onFetched(sent: SentPartition[], response: ClientApi.FetchResponse__Output): void {
    const results = new Map(response.partitions.map((result) => [key(result.topic, result.partition), result]));
    for (const entry of sent) {
      const result = results.get(key(entry.state.topic, entry.state.partition));
      if (result === undefined || !this.isCurrent(entry)) continue;
      if (result.errorCode === 0) this.acceptRecords(entry, result.records);
      else this.onPartitionError(entry.state, result.errorCode);
    }
  }

  private acceptRecords({ state, fetchOffset }: SentPartition, bytes: Buffer): void {
    try {
      const { records, nextOffset } = recordsFrom(state.topic, state.partition, bytes, fetchOffset);
      state.attempts = 0;
      state.buffered = records;
      state.bufferedNext = 0;
      state.nextFetchOffset = nextOffset;
      // Nothing to hand out (control batches, or records below the position): move on at once.
      if (records.length === 0) state.position = Math.max(fetchOffset, nextOffset);
    } catch (error) {
      const detail = `${state.topic}-${state.partition} at offset ${fetchOffset}: ${(error as Error).message}`;
      state.error = new RunnelError('CORRUPT_MESSAGE', detail);
    }
  }

  private onPartitionError(state: PartitionState, code: number): void {
    const what = `fetch ${state.topic}-${state.partition} at offset ${state.position}`;
    if (code === 1) {
      if (this.autoOffsetReset === 'none') state.error = new RunnelError('OFFSET_OUT_OF_RANGE', `${what} and autoOffsetReset is 'none'`);
      else this.setPosition(state, undefined);
      return;
    }
    const error = RunnelError.fromCode(code, what);
    if (!error.retriable) {
      state.error = error;
      return;
    }
    if (needsMetadataRefresh(code)) this.cluster.requestRefresh();
    this.backOff(state);
  }

  private onFetchFailed(sent: SentPartition[], error: unknown): void {
    this.cluster.requestRefresh();
    this.cluster.options.logger?.debug({ err: (error as Error)?.message }, 'fetch failed');
    for (const entry of sent) if (this.isCurrent(entry)) this.backOff(entry.state);
  }

  private backOff(state: PartitionState): void {
    state.attempts++;
    state.retryAtMs = Date.now() + backoffMs(state.attempts, this.retryBackoffMs, Math.max(this.retryBackoffMs, RETRY_BACKOFF_MAX_MS));
  }

  private waitForFetch(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.fetchWaiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, timeoutMs);
      this.fetchWaiters.add(wake);
    });
  }
}
