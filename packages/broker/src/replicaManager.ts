// The broker's data calls — produce, fetch, list offsets — independent of the door they came in
// through (the gRPC API today, the Kafka wire protocol later). Errors come back per partition as
// Kafka error codes; nothing a client sends can make these calls throw.
import { RunnelError, errorCode, type Logger } from '@runnel/common';
import { errorResult } from './errorResult.js';
import type { LogManager } from './logManager.js';
import type { Partition } from './partition.js';
import type { BrokerMetrics } from './metrics.js';

export interface ProduceInput {
  topic: string;
  partition: number;
  records: Buffer;
}

export interface ProduceResult {
  topic: string;
  partition: number;
  errorCode: number;
  errorMessage: string;
  baseOffset: number;
  logAppendTime: number;
  logStartOffset: number;
}

export interface FetchInput {
  topic: string;
  partition: number;
  fetchOffset: number;
  partitionMaxBytes: number;
}

export interface FetchRequestInput {
  maxWaitMs: number;
  minBytes: number;
  maxBytes: number;
  partitions: FetchInput[];
}

export interface FetchResult {
  topic: string;
  partition: number;
  errorCode: number;
  highWatermark: number;
  logStartOffset: number;
  records: Buffer;
}

export interface OffsetQuery {
  topic: string;
  partition: number;
  /** -1 latest, -2 earliest, otherwise a timestamp in ms. */
  timestamp: number;
}

export interface OffsetResult {
  topic: string;
  partition: number;
  errorCode: number;
  offset: number;
  timestamp: number;
}

export const LATEST_TIMESTAMP = -1;
export const EARLIEST_TIMESTAMP = -2;
/** A long poll never waits longer than this, whatever the client asks. */
export const FETCH_MAX_WAIT_MS_LIMIT = 30_000;
const EMPTY = Buffer.alloc(0);

/** What the replica manager needs to know of the cluster to decide whether it may act as leader. */
export interface LeadershipView {
  /** Whether the committed metadata knows this partition (else UNKNOWN_TOPIC_OR_PARTITION). */
  partitionExists(topic: string, index: number): boolean;
  /**
   * null while this broker may act as a leader; otherwise why not (fenced by the controller, or its
   * session lease ran out without a heartbeat answer — it may have been replaced without knowing).
   */
  leadershipRevoked(): string | null;
}

export class ReplicaManager {
  constructor(
    private readonly logs: LogManager,
    private readonly cluster: LeadershipView,
    private readonly logger: Logger,
    private readonly metrics: BrokerMetrics,
    /** The broker's fetch.max.bytes: no response is built larger than this, whatever a client asks. */
    private readonly fetchMaxBytes: number,
  ) {}

  /** The partition if this broker leads it now; otherwise the Kafka error a client acts on. */
  private leaderPartition(topic: string, index: number): Partition {
    const partition = this.logs.partition(topic, index);
    if (partition === undefined) {
      if (!this.cluster.partitionExists(topic, index)) throw new RunnelError('UNKNOWN_TOPIC_OR_PARTITION', `partition ${topic}-${index} does not exist`);
      throw new RunnelError('NOT_LEADER_OR_FOLLOWER', `this broker holds no replica of ${topic}-${index}`);
    }
    if (!partition.isLeader) {
      const leader = partition.role.leader;
      throw new RunnelError('NOT_LEADER_OR_FOLLOWER', `this broker is not the leader of ${partition.name} (leader ${leader === -1 ? 'none: the partition is offline' : leader}, epoch ${partition.leaderEpoch})`);
    }
    const revoked = this.cluster.leadershipRevoked();
    if (revoked !== null) throw new RunnelError('NOT_LEADER_OR_FOLLOWER', `this broker may not lead ${partition.name} now: ${revoked}`);
    return partition;
  }

  /**
   * Appends each partition's batches. acks 0 and 1 answer after the local append; acks=-1 (all)
   * waits for the in-sync replicas, which on a single node is this node, so it is the same point.
   */
  async produce(acks: number, inputs: readonly ProduceInput[]): Promise<ProduceResult[]> {
    if (acks !== 0 && acks !== 1 && acks !== -1) {
      return inputs.map((input) => ({ ...this.failedProduce(input), errorCode: errorCode('INVALID_REQUIRED_ACKS'), errorMessage: `acks must be 0, 1 or -1 (all), got ${acks}` }));
    }
    return Promise.all(inputs.map((input) => this.appendToPartition(input)));
  }

  private failedProduce(input: ProduceInput): ProduceResult {
    return { topic: input.topic, partition: input.partition, errorCode: 0, errorMessage: '', baseOffset: -1, logAppendTime: -1, logStartOffset: -1 };
  }

  private async appendToPartition(input: ProduceInput): Promise<ProduceResult> {
    try {
      const partition = this.leaderPartition(input.topic, input.partition);
      const result = await partition.log.append(input.records, { leaderEpoch: partition.leaderEpoch });
      partition.advanceHighWatermark(result.lastOffset + 1);
      this.metrics.bytesIn.inc(result.bytes);
      this.metrics.recordsIn.inc(result.lastOffset - result.firstOffset + 1);
      return { ...this.failedProduce(input), baseOffset: result.firstOffset, logAppendTime: -1, logStartOffset: partition.log.logStartOffset };
    } catch (error) {
      const fields = errorResult(error, this.logger, { topic: input.topic, partition: input.partition });
      this.metrics.errors.inc({ api: 'produce', error: String(fields.errorCode) });
      return { ...this.failedProduce(input), ...fields };
    }
  }

  /**
   * Reads from each partition up to its high watermark. If fewer than minBytes are available the
   * fetch waits (a long poll) until new data arrives on any of its partitions, maxWaitMs passes,
   * or `signal` aborts (the client went away).
   */
  async fetch(request: FetchRequestInput, signal?: AbortSignal): Promise<FetchResult[]> {
    let results = this.readAll(request);
    const waitMs = Math.min(Math.max(0, request.maxWaitMs), FETCH_MAX_WAIT_MS_LIMIT);
    if (this.satisfied(results, request.minBytes) || waitMs === 0 || signal?.aborted === true) return results;
    const partitions = request.partitions
      .map((input) => this.logs.partition(input.topic, input.partition))
      .filter((partition): partition is Partition => partition !== undefined);
    await new Promise<void>((resolve) => {
      const unsubscribers: Array<() => void> = [];
      const finish = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', finish);
        for (const unsubscribe of unsubscribers) unsubscribe();
        resolve();
      };
      const onData = () => {
        results = this.readAll(request);
        if (this.satisfied(results, request.minBytes)) finish();
      };
      const timer = setTimeout(finish, waitMs);
      signal?.addEventListener('abort', finish);
      for (const partition of partitions) unsubscribers.push(partition.onData(onData));
    });
    return this.readAll(request);
  }

  private satisfied(results: readonly FetchResult[], minBytes: number): boolean {
    let bytes = 0;
    for (const result of results) {
      if (result.errorCode !== 0) return true;
      bytes += result.records.length;
    }
    return bytes >= Math.max(1, minBytes);
  }

  private readAll(request: FetchRequestInput): FetchResult[] {
    let remaining = Math.min(Math.max(0, request.maxBytes), this.fetchMaxBytes);
    let first = true;
    return request.partitions.map((input) => {
      const result = this.readPartition(input, remaining, first);
      if (result.records.length > 0) first = false;
      remaining = Math.max(0, remaining - result.records.length);
      return result;
    });
  }

  private readPartition(input: FetchInput, remainingBytes: number, firstWithData: boolean): FetchResult {
    const base = { topic: input.topic, partition: input.partition, errorCode: 0, highWatermark: -1, logStartOffset: -1, records: EMPTY };
    try {
      const partition = this.leaderPartition(input.topic, input.partition);
      const log = partition.log;
      base.highWatermark = partition.highWatermark;
      base.logStartOffset = log.logStartOffset;
      if (input.fetchOffset < log.logStartOffset || input.fetchOffset > log.logEndOffset) {
        throw new RunnelError('OFFSET_OUT_OF_RANGE', `offset ${input.fetchOffset} is outside ${log.logStartOffset}..${log.logEndOffset} of ${partition.name}`);
      }
      if (input.partitionMaxBytes <= 0) throw new RunnelError('INVALID_FETCH_SIZE', `partition max bytes must be positive, got ${input.partitionMaxBytes}`);
      // Once an earlier partition returned data, the response limit is strict (KIP-74 lets only
      // the first non-empty partition exceed it, so that a large batch cannot stall a consumer).
      if (!firstWithData && remainingBytes === 0) return base;
      const maxBytes = firstWithData ? input.partitionMaxBytes : Math.min(input.partitionMaxBytes, remainingBytes);
      const read = log.read(input.fetchOffset, maxBytes, { maxOffset: partition.highWatermark });
      if (!firstWithData && read.records.length > remainingBytes) return base;
      this.metrics.bytesOut.inc(read.records.length);
      return { ...base, records: read.records };
    } catch (error) {
      const { errorCode: code } = errorResult(error, this.logger, { topic: input.topic, partition: input.partition });
      this.metrics.errors.inc({ api: 'fetch', error: String(code) });
      return { ...base, errorCode: code };
    }
  }

  listOffsets(queries: readonly OffsetQuery[]): OffsetResult[] {
    return queries.map((query) => {
      const base = { topic: query.topic, partition: query.partition, errorCode: 0, offset: -1, timestamp: -1 };
      try {
        const partition = this.leaderPartition(query.topic, query.partition);
        if (query.timestamp === LATEST_TIMESTAMP) return { ...base, offset: partition.highWatermark };
        if (query.timestamp === EARLIEST_TIMESTAMP) return { ...base, offset: partition.log.logStartOffset };
        if (query.timestamp < 0) throw new RunnelError('INVALID_REQUEST', `timestamp ${query.timestamp} is neither -1 (latest), -2 (earliest) nor a time`);
        const found = partition.log.offsetForTimestamp(query.timestamp);
        if (found === null || found.offset >= partition.highWatermark) return base;
        return { ...base, offset: found.offset, timestamp: found.timestamp };
      } catch (error) {
        return { ...base, errorCode: errorResult(error, this.logger, query).errorCode };
      }
    });
  }
}
