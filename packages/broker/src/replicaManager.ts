// The broker's data calls — produce, fetch, list offsets, and the leader's side of replication
// (followers' fetches, the ISR) — independent of the door they came in through (the gRPC API
// today, the Kafka wire protocol later). Errors come back per partition as Kafka error codes;
// nothing a client or follower sends can make these calls throw.
import { CorruptBatchError, RunnelError, errorCode, isControlBatch, listBatches, sliceRecords, type Logger } from '@runnel/common';
import { errorResult } from './errorResult.js';
import type { LogManager } from './logManager.js';
import { Partition, isThrottledReplica, type PendingIsrChange } from './partition.js';
import type { BrokerMetrics } from './metrics.js';
import type { ReplicationQuota } from './replicationQuota.js';

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
  /** The leader epoch the client knows (Kafka's Fetch v9+); -1 or absent: not checked. */
  currentLeaderEpoch?: number;
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
  /** -1 latest, -2 earliest, -3 the record with the largest timestamp, otherwise a timestamp in ms. */
  timestamp: number;
  /** The leader epoch the client knows (Kafka's ListOffsets v4+); -1 or absent: not checked. */
  currentLeaderEpoch?: number;
}

export interface OffsetResult {
  topic: string;
  partition: number;
  errorCode: number;
  offset: number;
  timestamp: number;
  /** The leader epoch of the answer where it is known (latest: the current one); -1 otherwise. */
  leaderEpoch: number;
}

/** OffsetForLeaderEpoch (KIP-101/320): where `leaderEpoch` ends in the leader's log. */
export interface EpochEndQuery {
  topic: string;
  partition: number;
  /** The leader epoch the client knows; -1: not checked. */
  currentLeaderEpoch: number;
  leaderEpoch: number;
}

export interface EpochEndResult {
  topic: string;
  partition: number;
  errorCode: number;
  /** The largest epoch <= the asked one in the leader's log, and where it ends; -1 and -1 when none. */
  leaderEpoch: number;
  endOffset: number;
}

export const LATEST_TIMESTAMP = -1;
export const EARLIEST_TIMESTAMP = -2;
/** KIP-734: the offset of the record with the largest timestamp. */
export const MAX_TIMESTAMP = -3;
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
  /**
   * Sends an ISR change for a partition this broker leads to the controller (AlterPartition); the
   * leader acts on the new ISR only once the change is committed and applied through the metadata.
   */
  alterIsr(partition: Partition, newIsr: ReadonlyArray<{ brokerId: number; brokerEpoch: number }>): Promise<IsrChangeOutcome>;
  /**
   * null when `brokerId` (at `brokerEpoch`, -1 unknown) may join an ISR as far as this broker's
   * metadata knows; otherwise why not (not registered, fenced, another incarnation).
   */
  isrIneligibility(brokerId: number, brokerEpoch: number): string | null;
}

/** What the controller answered to an applied ISR change: the partition epoch it is at now (-1 unknown). */
export interface IsrChangeOutcome {
  readonly partitionEpoch: number;
}

/** Refusals that say the controller applied nothing: the committed ISR stands. */
const ISR_CHANGE_NOT_APPLIED = new Set<string>(['INELIGIBLE_REPLICA', 'INVALID_REQUEST', 'STALE_BROKER_EPOCH', 'UNKNOWN_TOPIC_OR_PARTITION', 'UNKNOWN_TOPIC_ID']);
/**
 * Answers that say this leader's view is stale (or the change went through under a new leader):
 * newer metadata is on its way and shows the outcome; until then the change stays pending.
 */
const ISR_CHANGE_SETTLED_BY_METADATA = new Set<string>(['FENCED_LEADER_EPOCH', 'INVALID_UPDATE_VERSION', 'NEW_LEADER_ELECTED']);
const ISR_RETRY_DELAY_MIN_MS = 100;
const ISR_RETRY_DELAY_MAX_MS = 5_000;

function isrRetryDelayMs(attempt: number): number {
  return Math.min(ISR_RETRY_DELAY_MAX_MS, ISR_RETRY_DELAY_MIN_MS * 2 ** Math.min(attempt, 16));
}

export interface ReplicaFetchPartitionInput {
  topic: string;
  partition: number;
  currentLeaderEpoch: number;
  fetchOffset: number;
  lastFetchedEpoch: number;
  partitionMaxBytes: number;
}

export interface ReplicaFetchInput {
  replicaId: number;
  brokerEpoch: number;
  maxWaitMs: number;
  minBytes: number;
  maxBytes: number;
  partitions: ReplicaFetchPartitionInput[];
}

export interface ReplicaFetchResult {
  topic: string;
  partition: number;
  errorCode: number;
  errorMessage: string;
  highWatermark: number;
  logStartOffset: number;
  logEndOffset: number;
  divergingEpoch: { epoch: number; endOffset: number };
  records: Buffer;
}

const NO_DIVERGENCE = Object.freeze({ epoch: -1, endOffset: -1 });

export interface ReplicaManagerOptions {
  /** The broker's fetch.max.bytes: no response is built larger than this, whatever a client asks. */
  fetchMaxBytes: number;
  /** replica.lag.time.max.ms: a follower not caught up for this long leaves the ISR. */
  replicaLagTimeMaxMs: number;
  /** leader.replication.throttled.rate: bytes sent to replicas a reassignment is adding (absent: unlimited). */
  leaderThrottle?: ReplicationQuota;
  now?: () => number;
}

export class ReplicaManager {
  private readonly fetchMaxBytes: number;
  private readonly now: () => number;
  private isrTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Partitions whose last ISR change was refused: no new one before `notBeforeMs`. */
  private readonly isrChangeBackoff = new WeakMap<Partition, { attempts: number; notBeforeMs: number }>();
  private readonly isrRetryTimers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly logs: LogManager,
    private readonly cluster: LeadershipView,
    private readonly logger: Logger,
    private readonly metrics: BrokerMetrics,
    private readonly options: ReplicaManagerOptions,
  ) {
    this.fetchMaxBytes = options.fetchMaxBytes;
    this.now = options.now ?? (() => Date.now());
  }

  /** Starts the ISR shrink check (every half replica.lag.time.max.ms, as Kafka). */
  start(): void {
    this.isrTimer = setInterval(() => this.shrinkIsrs(), Math.max(100, Math.floor(this.options.replicaLagTimeMaxMs / 2)));
    this.isrTimer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.isrTimer);
    for (const timer of this.isrRetryTimers) clearTimeout(timer);
    this.isrRetryTimers.clear();
  }

  /**
   * Kafka's checkCurrentLeaderEpoch, for requests that say which leader epoch the client knows:
   * an older one is FENCED_LEADER_EPOCH (its metadata is stale), a newer one UNKNOWN_LEADER_EPOCH
   * (this broker's is); -1 is not checked. Checked before leadership, as Kafka does, on any
   * replica this broker holds.
   */
  private checkLeaderEpoch(topic: string, index: number, currentLeaderEpoch: number | undefined): void {
    if (currentLeaderEpoch === undefined || currentLeaderEpoch < 0) return;
    const partition = this.logs.partition(topic, index);
    if (partition === undefined) return;
    if (currentLeaderEpoch < partition.leaderEpoch) {
      throw new RunnelError('FENCED_LEADER_EPOCH', `${partition.name} is at leader epoch ${partition.leaderEpoch}; the request knows ${currentLeaderEpoch}`);
    }
    if (currentLeaderEpoch > partition.leaderEpoch) {
      throw new RunnelError('UNKNOWN_LEADER_EPOCH', `${partition.name} is at leader epoch ${partition.leaderEpoch} here; the request knows ${currentLeaderEpoch}`);
    }
  }

  /** The partition if this broker leads it now; otherwise the Kafka error a client acts on. */
  private leaderPartition(topic: string, index: number): Partition {
    // Offline here (its log failed, or it could not take its role): whatever the metadata says.
    const offline = this.logs.offlineReplica(topic, index);
    if (offline !== undefined) throw new RunnelError('KAFKA_STORAGE_ERROR', `${topic}-${index} is offline on this broker: ${offline.reason}`);
    const partition = this.logs.partition(topic, index);
    if (partition === undefined) {
      if (!this.cluster.partitionExists(topic, index)) {
        // A broker that has not caught up with the metadata (just restarted, or back from a pause)
        // cannot tell an unknown partition from one it has not heard of yet.
        const revoked = this.cluster.leadershipRevoked();
        if (revoked !== null) throw new RunnelError('NOT_LEADER_OR_FOLLOWER', `this broker cannot serve ${topic}-${index} now: ${revoked}`);
        throw new RunnelError('UNKNOWN_TOPIC_OR_PARTITION', `partition ${topic}-${index} does not exist`);
      }
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
   * Appends each partition's batches. acks 0 and 1 answer after the leader's append; acks=-1 (all)
   * refuses before appending when the ISR is smaller than min.insync.replicas, then waits until the
   * high watermark passes the batch (every ISR member has it), at most `timeoutMs`.
   */
  async produce(acks: number, inputs: readonly ProduceInput[], timeoutMs = 30_000): Promise<ProduceResult[]> {
    if (acks !== 0 && acks !== 1 && acks !== -1) {
      return inputs.map((input) => ({ ...this.failedProduce(input), errorCode: errorCode('INVALID_REQUIRED_ACKS'), errorMessage: `acks must be 0, 1 or -1 (all), got ${acks}` }));
    }
    return Promise.all(inputs.map((input) => this.appendToPartition(input, acks, timeoutMs)));
  }

  private failedProduce(input: ProduceInput): ProduceResult {
    return { topic: input.topic, partition: input.partition, errorCode: 0, errorMessage: '', baseOffset: -1, logAppendTime: -1, logStartOffset: -1 };
  }

  private async appendToPartition(input: ProduceInput, acks: number, timeoutMs: number): Promise<ProduceResult> {
    try {
      const partition = this.leaderPartition(input.topic, input.partition);
      if (acks === -1 && partition.role.isr.length < partition.minInsyncReplicas) {
        throw new RunnelError('NOT_ENOUGH_REPLICAS', `${partition.name} has ${partition.role.isr.length} in-sync replica(s) (${partition.role.isr.join(', ')}); min.insync.replicas is ${partition.minInsyncReplicas}`);
      }
      refuseControlBatches(partition.name, input.records);
      if (partition.log.cleanupPolicy.compact) requireKeys(partition.name, input.records);
      const leaderEpoch = partition.leaderEpoch;
      const result = await partition.log.append(input.records, { leaderEpoch });
      this.metrics.countIn(partition.topic, result.bytes, result.lastOffset - result.firstOffset + 1);
      partition.appended();
      partition.maybeAdvanceHighWatermark();
      if (acks === -1) await this.awaitReplication(partition, leaderEpoch, result.lastOffset + 1, timeoutMs);
      return { ...this.failedProduce(input), baseOffset: result.firstOffset, logAppendTime: -1, logStartOffset: partition.log.logStartOffset };
    } catch (error) {
      // A failed write or fsync leaves the log refusing writes: its replica goes offline now, not at the next check.
      this.logs.takeOfflineIfFailed(input.topic, input.partition);
      const fields = errorResult(error, this.logger, { topic: input.topic, partition: input.partition });
      this.metrics.errors.inc({ api: 'produce', error: String(fields.errorCode) });
      return { ...this.failedProduce(input), ...fields };
    }
  }

  /** Resolves once the high watermark reaches `offset` under the same leader epoch; throws the Kafka error otherwise. */
  private async awaitReplication(partition: Partition, leaderEpoch: number, offset: number, timeoutMs: number): Promise<void> {
    const check = (): 'done' | 'lost' | null => {
      if (!partition.isLeader || partition.leaderEpoch !== leaderEpoch) return 'lost';
      return partition.highWatermark >= offset ? 'done' : null;
    };
    let outcome: 'done' | 'lost' | 'timeout' | null = check();
    if (outcome === null) {
      outcome = await new Promise<'done' | 'lost' | 'timeout'>((resolve) => {
        const timer = setTimeout(() => finish('timeout'), Math.max(1, Math.min(timeoutMs, FETCH_MAX_WAIT_MS_LIMIT * 10)));
        const unsubscribe = partition.onData(() => {
          const now = check();
          if (now !== null) finish(now);
        });
        function finish(result: 'done' | 'lost' | 'timeout'): void {
          clearTimeout(timer);
          unsubscribe();
          resolve(result);
        }
      });
    }
    if (outcome === 'done') return;
    if (outcome === 'lost' && partition.offlineReason !== null) {
      throw new RunnelError('KAFKA_STORAGE_ERROR', `${partition.name} went offline on this broker (${partition.offlineReason}) before the write reached every in-sync replica; it may or may not survive`);
    }
    if (outcome === 'lost' && partition.isRemoved) {
      // Deleted, or moved off this broker: the error the lookup gives now (unknown partition, or not the leader).
      this.leaderPartition(partition.topic, partition.index);
      throw new RunnelError('NOT_LEADER_OR_FOLLOWER', `${partition.name} was removed from this broker before the write reached every in-sync replica`);
    }
    if (outcome === 'lost') {
      throw new RunnelError('NOT_LEADER_OR_FOLLOWER', `leadership of ${partition.name} moved (epoch ${leaderEpoch} → ${partition.leaderEpoch}) before the write reached every in-sync replica; it may or may not survive`);
    }
    if (partition.role.isr.length < partition.minInsyncReplicas) {
      throw new RunnelError('NOT_ENOUGH_REPLICAS_AFTER_APPEND', `${partition.name} fell to ${partition.role.isr.length} in-sync replica(s), below min.insync.replicas ${partition.minInsyncReplicas}, after the write was appended`);
    }
    throw new RunnelError('REQUEST_TIMED_OUT', `the in-sync replicas of ${partition.name} (${partition.role.isr.join(', ')}) did not all have offset ${offset - 1} within ${timeoutMs} ms`);
  }

  /**
   * Reads from each partition up to its high watermark. If fewer than minBytes are available the
   * fetch waits (a long poll) until new data arrives on any of its partitions, maxWaitMs passes,
   * or `signal` aborts (the client went away).
   */
  async fetch(request: FetchRequestInput, signal?: AbortSignal): Promise<FetchResult[]> {
    const first = this.readAll(request);
    const waitMs = Math.min(Math.max(0, request.maxWaitMs), FETCH_MAX_WAIT_MS_LIMIT);
    if (this.satisfied(first, request.minBytes) || waitMs === 0 || signal?.aborted === true) return this.answered(first);
    // While waiting, news from a partition re-reads that partition alone: a fetch over many
    // partitions does not read all of them again on every append to one.
    const available = first.map((result) => result.records.length);
    const indexes = partitionIndexes(request.partitions, (input) => this.logs.partition(input.topic, input.partition));
    await waitForData([...indexes.keys()], waitMs, signal, (changed) => {
      for (const partition of changed) {
        for (const k of indexes.get(partition) ?? []) {
          const probe = this.readPartition(probeInput(request.partitions[k]!, request.minBytes, available, k), new ResponseBudget(Number.MAX_SAFE_INTEGER));
          if (probe.errorCode !== 0) return true;
          available[k] = probe.records.length;
        }
      }
      return available.reduce((sum, bytes) => sum + bytes, 0) >= Math.max(1, request.minBytes);
    });
    // Satisfied or not, the answer is read once more, whole, within the response budget.
    return this.answered(this.readAll(request));
  }

  private satisfied(results: readonly FetchResult[], minBytes: number): boolean {
    let bytes = 0;
    for (const result of results) {
      if (result.errorCode !== 0) return true;
      bytes += result.records.length;
    }
    return bytes >= Math.max(1, minBytes);
  }

  /** Counts what a fetch answers (reads made while it waited are not answers). */
  private answered(results: FetchResult[]): FetchResult[] {
    for (const result of results) {
      this.metrics.countOut(result.topic, result.records);
      if (result.errorCode !== 0) this.metrics.errors.inc({ api: 'fetch', error: String(result.errorCode) });
    }
    return results;
  }

  private readAll(request: FetchRequestInput): FetchResult[] {
    const budget = new ResponseBudget(Math.min(Math.max(0, request.maxBytes), this.fetchMaxBytes));
    return request.partitions.map((input) => this.readPartition(input, budget));
  }

  private readPartition(input: FetchInput, budget: ResponseBudget): FetchResult {
    const base = { topic: input.topic, partition: input.partition, errorCode: 0, highWatermark: -1, logStartOffset: -1, records: EMPTY };
    try {
      this.checkLeaderEpoch(input.topic, input.partition, input.currentLeaderEpoch);
      const partition = this.leaderPartition(input.topic, input.partition);
      const log = partition.log;
      base.highWatermark = partition.highWatermark;
      base.logStartOffset = log.logStartOffset;
      if (input.fetchOffset < log.logStartOffset || input.fetchOffset > log.logEndOffset) {
        throw new RunnelError('OFFSET_OUT_OF_RANGE', `offset ${input.fetchOffset} is outside ${log.logStartOffset}..${log.logEndOffset} of ${partition.name}`);
      }
      if (input.partitionMaxBytes <= 0) throw new RunnelError('INVALID_FETCH_SIZE', `partition max bytes must be positive, got ${input.partitionMaxBytes}`);
      const records = budget.take(input.partitionMaxBytes, (maxBytes) => log.read(input.fetchOffset, maxBytes, { maxOffset: partition.highWatermark }).records);
      return { ...base, records };
    } catch (error) {
      const { errorCode: code } = errorResult(error, this.logger, { topic: input.topic, partition: input.partition });
      return { ...base, errorCode: code };
    }
  }

  // --- the leader's side of replication ---------------------------------------------------------

  /**
   * A follower's fetch: for each partition, checks the follower's epoch and that its log has not
   * diverged (KIP-279: the end of its last fetched epoch on this leader), records its log end
   * offset (which may move the high watermark and add it to the ISR), and returns the batches from
   * its fetch offset up to this leader's log end. Long-polls like a consumer fetch.
   */
  async replicaFetch(request: ReplicaFetchInput, signal?: AbortSignal): Promise<ReplicaFetchResult[]> {
    const readable = request.partitions.map((input) => this.followerFetched(request, input));
    const first = this.readForFollower(request, readable);
    const waitMs = Math.min(Math.max(0, request.maxWaitMs), FETCH_MAX_WAIT_MS_LIMIT);
    const minBytes = Math.max(1, request.minBytes);
    const sum = (sizes: readonly number[]) => sizes.reduce((total, bytes) => total + bytes, 0);
    const available = first.map((result) => result.records.length);
    if (first.some((result) => result.errorCode !== 0 || result.divergingEpoch.epoch !== -1) || sum(available) >= minBytes || waitMs === 0 || signal?.aborted === true) {
      return this.sentToFollower(request.replicaId, readable, first);
    }
    const indexes = partitionIndexes(readable, (entry) => (entry instanceof Partition ? entry : undefined));
    await waitForData([...indexes.keys()], waitMs, signal, (changed) => {
      for (const partition of changed) {
        for (const k of indexes.get(partition) ?? []) {
          const probe = this.readForFollowerAt(request.replicaId, probeInput(request.partitions[k]!, minBytes, available, k), partition, new ResponseBudget(Number.MAX_SAFE_INTEGER));
          if (probe.errorCode !== 0) return true;
          available[k] = probe.records.length;
        }
      }
      return sum(available) >= minBytes;
    });
    return this.sentToFollower(request.replicaId, readable, this.readForFollower(request, readable));
  }

  /** Counts what goes to the follower; bytes for a replica being added count against the leader's throttle. */
  private sentToFollower(replicaId: number, readable: ReadonlyArray<Partition | ReplicaFetchResult>, results: ReplicaFetchResult[]): ReplicaFetchResult[] {
    const throttle = this.options.leaderThrottle;
    for (const [k, result] of results.entries()) {
      this.metrics.replicationBytesOut.inc(result.records.length);
      const partition = readable[k];
      if (throttle !== undefined && result.records.length > 0 && partition instanceof Partition && isThrottledReplica(partition.role, replicaId)) {
        throttle.record(result.records.length);
        this.metrics.replicationThrottledBytes.inc({ side: 'leader' }, result.records.length);
      }
    }
    return results;
  }

  /** Validates one partition of a follower's fetch and records the follower's position; returns the partition or the result to send. */
  private followerFetched(request: ReplicaFetchInput, input: ReplicaFetchPartitionInput): Partition | ReplicaFetchResult {
    const base: ReplicaFetchResult = {
      topic: input.topic,
      partition: input.partition,
      errorCode: 0,
      errorMessage: '',
      highWatermark: -1,
      logStartOffset: -1,
      logEndOffset: -1,
      divergingEpoch: NO_DIVERGENCE,
      records: EMPTY,
    };
    // Errors carry the leader's log bounds too: a follower told OFFSET_OUT_OF_RANGE needs the log
    // start to start over there.
    let bounds = base;
    try {
      const partition = this.leaderPartition(input.topic, input.partition);
      const log = partition.log;
      const fields = { ...base, highWatermark: partition.highWatermark, logStartOffset: log.logStartOffset, logEndOffset: log.logEndOffset };
      bounds = fields;
      if (input.currentLeaderEpoch < partition.leaderEpoch) {
        throw new RunnelError('FENCED_LEADER_EPOCH', `${partition.name} is at leader epoch ${partition.leaderEpoch}; the follower knows ${input.currentLeaderEpoch}`);
      }
      if (input.currentLeaderEpoch > partition.leaderEpoch) {
        throw new RunnelError('UNKNOWN_LEADER_EPOCH', `${partition.name} is at leader epoch ${partition.leaderEpoch} here; the follower knows ${input.currentLeaderEpoch}`);
      }
      const follower = partition.followers.get(request.replicaId);
      if (follower === undefined) throw new RunnelError('NOT_LEADER_OR_FOLLOWER', `broker ${request.replicaId} is not a replica of ${partition.name} (replicas ${partition.role.replicas.join(', ')})`);
      if (input.lastFetchedEpoch >= 0) {
        const end = log.endOffsetForEpoch(input.lastFetchedEpoch);
        if (end.epoch !== input.lastFetchedEpoch || end.endOffset < input.fetchOffset) {
          // The follower's log holds batches this leader does not: it truncates first. (An end of
          // -1, no epoch known here, still names a point: the log start.)
          return { ...fields, divergingEpoch: { epoch: end.epoch, endOffset: end.endOffset < 0 ? log.logStartOffset : end.endOffset } };
        }
      }
      if (input.fetchOffset < log.logStartOffset || input.fetchOffset > log.logEndOffset) {
        throw new RunnelError('OFFSET_OUT_OF_RANGE', `offset ${input.fetchOffset} is outside ${log.logStartOffset}..${log.logEndOffset} of ${partition.name}`);
      }
      this.updateFollower(partition, request.replicaId, request.brokerEpoch, input.fetchOffset);
      return partition;
    } catch (error) {
      const fields = errorResult(error, this.logger, { topic: input.topic, partition: input.partition, replica: request.replicaId });
      this.metrics.errors.inc({ api: 'replicaFetch', error: String(fields.errorCode) });
      return { ...bounds, ...fields };
    }
  }

  /** Kafka's ReplicaState.updateFetchState, then the high watermark and ISR expansion. */
  private updateFollower(partition: Partition, replicaId: number, brokerEpoch: number, fetchOffset: number): void {
    const follower = partition.followers.get(replicaId)!;
    const now = this.now();
    const leaderEnd = partition.log.logEndOffset;
    if (fetchOffset >= leaderEnd) follower.lastCaughtUpMs = Math.max(follower.lastCaughtUpMs, now);
    else if (fetchOffset >= follower.lastFetchLeaderLogEndOffset) follower.lastCaughtUpMs = Math.max(follower.lastCaughtUpMs, follower.lastFetchMs);
    follower.logEndOffset = fetchOffset;
    follower.lastFetchMs = now;
    follower.lastFetchLeaderLogEndOffset = leaderEnd;
    follower.brokerEpoch = brokerEpoch;
    partition.maybeAdvanceHighWatermark();
    // Back into the ISR once it has everything up to the high watermark and this epoch's start.
    const role = partition.role;
    if (!role.isr.includes(replicaId) && this.mayChangeIsr(partition)) {
      const epochStart = partition.log.endOffsetForEpoch(partition.leaderEpoch - 1).endOffset;
      if (fetchOffset >= partition.highWatermark && fetchOffset >= Math.max(0, epochStart)) {
        // Kafka's isReplicaIsrEligible: a fenced broker, or an older incarnation of it, would be
        // refused; asking anyway costs a controller round trip per fetch.
        const ineligible = this.cluster.isrIneligibility(replicaId, brokerEpoch);
        if (ineligible === null) this.changeIsr(partition, [...role.isr, replicaId], 'expand');
      }
    }
  }

  private readForFollower(request: ReplicaFetchInput, entries: ReadonlyArray<Partition | ReplicaFetchResult>): ReplicaFetchResult[] {
    const budget = new ResponseBudget(Math.min(Math.max(0, request.maxBytes), this.fetchMaxBytes));
    return entries.map((entry, k) => (entry instanceof Partition ? this.readForFollowerAt(request.replicaId, request.partitions[k]!, entry, budget) : entry));
  }

  private readForFollowerAt(replicaId: number, input: ReplicaFetchPartitionInput, partition: Partition, budget: ResponseBudget): ReplicaFetchResult {
    const log = partition.log;
    const base: ReplicaFetchResult = {
      topic: input.topic,
      partition: input.partition,
      errorCode: 0,
      errorMessage: '',
      highWatermark: partition.highWatermark,
      logStartOffset: log.logStartOffset,
      logEndOffset: log.logEndOffset,
      divergingEpoch: NO_DIVERGENCE,
      records: EMPTY,
    };
    if (!partition.isLeader || partition.leaderEpoch !== input.currentLeaderEpoch) {
      return { ...base, errorCode: errorCode('NOT_LEADER_OR_FOLLOWER'), errorMessage: partition.isRemoved ? `${partition.name} was removed from this broker` : `leadership of ${partition.name} moved` };
    }
    if (input.fetchOffset >= log.logEndOffset || input.fetchOffset < log.logStartOffset) return base;
    // Kafka's shouldLeaderThrottle: a replica being added gets nothing while the quota is spent
    // (once in the ISR it is a full member and never throttled).
    if (this.options.leaderThrottle?.isExceeded() === true && isThrottledReplica(partition.role, replicaId)) return base;
    const records = budget.take(Math.max(1, input.partitionMaxBytes), (maxBytes) => log.read(input.fetchOffset, maxBytes).records);
    return { ...base, records };
  }

  /** Drops from the ISR every follower that has not caught up for replica.lag.time.max.ms. */
  shrinkIsrs(): void {
    const now = this.now();
    for (const partition of this.logs.allPartitions()) {
      if (!partition.isLeader || !this.mayChangeIsr(partition)) continue;
      const role = partition.role;
      const lagging = role.isr.filter((id) => {
        if (id === partition.role.leader) return false;
        const follower = partition.followers.get(id);
        return follower === undefined || now - follower.lastCaughtUpMs > this.options.replicaLagTimeMaxMs;
      });
      if (lagging.length > 0) this.changeIsr(partition, role.isr.filter((id) => !lagging.includes(id)), 'shrink');
    }
  }

  private changeIsr(partition: Partition, newIsr: number[], kind: 'expand' | 'shrink'): void {
    const change = partition.beginIsrChange(newIsr, kind);
    this.metrics.isrChanges.inc({ kind });
    (kind === 'shrink' ? this.metrics.isrShrinks : this.metrics.isrExpands).inc();
    this.logger.info({ partition: partition.name, isr: partition.role.isr, newIsr, kind }, 'asking the controller to change the ISR');
    this.sendIsrChange(partition, change, 0);
  }

  /**
   * Sends a pending ISR change and acts on the answer. The change stays pending — and the maximal
   * ISR keeps counting its additions — until the metadata shows the outcome, unless the controller
   * says it applied nothing. An answer that says nothing about the outcome (lost, timed out, no
   * controller) is asked again after a backoff, with the same partition epoch, so the controller
   * applies it at most once.
   */
  private sendIsrChange(partition: Partition, change: PendingIsrChange, attempt: number): void {
    const members = change.isr.map((id) => ({ brokerId: id, brokerEpoch: partition.followers.get(id)?.brokerEpoch ?? -1 }));
    this.cluster.alterIsr(partition, members).then(
      (outcome) => {
        // Applied: the metadata that shows it has been applied here too, or is on its way (and
        // settles the change then). A new partition epoch no higher than ours means nothing changed.
        this.isrChangeBackoff.delete(partition);
        if (outcome.partitionEpoch !== -1 && outcome.partitionEpoch <= change.partitionEpoch) partition.abandonIsrChange(change);
      },
      (error: unknown) => {
        if (partition.pendingIsrChange !== change) return; // the metadata settled it meanwhile
        const code = error instanceof RunnelError ? error.errorName : null;
        if (code !== null && ISR_CHANGE_NOT_APPLIED.has(code)) {
          partition.abandonIsrChange(change);
          const delayMs = this.backOffIsrChanges(partition);
          const repeated = this.isrChangeBackoff.get(partition)!.attempts > 1;
          this.logger[repeated ? 'debug' : 'warn']({ partition: partition.name, newIsr: change.isr, err: (error as Error).message, retryInMs: delayMs }, 'ISR change refused');
          return;
        }
        if (code !== null && ISR_CHANGE_SETTLED_BY_METADATA.has(code)) {
          this.logger.info({ partition: partition.name, newIsr: change.isr, err: (error as Error).message }, 'ISR change is stale; waiting for the metadata to show the outcome');
          return;
        }
        const delayMs = isrRetryDelayMs(attempt);
        this.logger[attempt === 0 ? 'warn' : 'debug']({ partition: partition.name, newIsr: change.isr, err: (error as Error).message, retryInMs: delayMs }, 'ISR change outcome unknown: keeping the maximal ISR and asking again');
        const timer = setTimeout(() => {
          this.isrRetryTimers.delete(timer);
          if (partition.pendingIsrChange === change && partition.isLeader && !this.stopped) this.sendIsrChange(partition, change, attempt + 1);
        }, delayMs);
        timer.unref();
        this.isrRetryTimers.add(timer);
      },
    );
  }

  /** After a refusal, no new ISR change for this partition before a growing backoff; returns it. */
  private backOffIsrChanges(partition: Partition): number {
    const previous = this.isrChangeBackoff.get(partition);
    const attempts = (previous?.attempts ?? 0) + 1;
    const delayMs = isrRetryDelayMs(attempts - 1);
    this.isrChangeBackoff.set(partition, { attempts, notBeforeMs: this.now() + delayMs });
    return delayMs;
  }

  /** Whether a new ISR change may be proposed for `partition` now. */
  private mayChangeIsr(partition: Partition): boolean {
    if (partition.pendingIsrChange !== null) return false;
    const backoff = this.isrChangeBackoff.get(partition);
    return backoff === undefined || this.now() >= backoff.notBeforeMs;
  }

  listOffsets(queries: readonly OffsetQuery[]): OffsetResult[] {
    return queries.map((query) => {
      const base = { topic: query.topic, partition: query.partition, errorCode: 0, offset: -1, timestamp: -1, leaderEpoch: -1 };
      try {
        this.checkLeaderEpoch(query.topic, query.partition, query.currentLeaderEpoch);
        const partition = this.leaderPartition(query.topic, query.partition);
        if (!partition.highWatermarkReachedEpochStart) {
          throw new RunnelError('OFFSET_NOT_AVAILABLE', `${partition.name} has a new leader whose high watermark ${partition.highWatermark} has not reached the start of its epoch yet; retry`);
        }
        if (query.timestamp === LATEST_TIMESTAMP) return { ...base, offset: partition.highWatermark, leaderEpoch: partition.leaderEpoch };
        if (query.timestamp === EARLIEST_TIMESTAMP) return { ...base, offset: partition.log.logStartOffset };
        let target = query.timestamp;
        if (query.timestamp === MAX_TIMESTAMP) {
          // The earliest record at the log's largest timestamp is the one KIP-734 asks for.
          target = partition.log.maxTimestamp;
          if (target < 0) return base;
        } else if (query.timestamp < 0) {
          throw new RunnelError('INVALID_REQUEST', `timestamp ${query.timestamp} is neither -1 (latest), -2 (earliest), -3 (max timestamp) nor a time`);
        }
        const found = partition.log.offsetForTimestamp(target);
        if (found === null || found.offset >= partition.highWatermark) return base;
        return { ...base, offset: found.offset, timestamp: found.timestamp };
      } catch (error) {
        return { ...base, errorCode: errorResult(error, this.logger, query).errorCode };
      }
    });
  }

  /**
   * OffsetForLeaderEpoch as a consumer asks it (it checks, after a leader change, that the records
   * before its position are still the leader's): the largest epoch <= the asked one in this
   * leader's log and the offset where it ends (the log end for the latest epoch).
   */
  endOffsetsForLeaderEpochs(queries: readonly EpochEndQuery[]): EpochEndResult[] {
    return queries.map((query) => {
      const base = { topic: query.topic, partition: query.partition, errorCode: 0, leaderEpoch: -1, endOffset: -1 };
      try {
        this.checkLeaderEpoch(query.topic, query.partition, query.currentLeaderEpoch);
        const partition = this.leaderPartition(query.topic, query.partition);
        const end = partition.log.endOffsetForEpoch(query.leaderEpoch);
        return { ...base, leaderEpoch: end.epoch, endOffset: end.endOffset };
      } catch (error) {
        return { ...base, errorCode: errorResult(error, this.logger, query).errorCode };
      }
    });
  }
}

/**
 * A waiting fetch's look at one partition only has to tell whether minBytes are there now: it reads
 * at most what the other partitions still lack (a read returns at least one whole batch), not the
 * partition's whole share; the answer is read in full once the fetch is satisfied.
 */
function probeInput<T extends { partitionMaxBytes: number }>(input: T, minBytes: number, available: readonly number[], k: number): T {
  const others = available.reduce((sum, bytes, index) => (index === k ? sum : sum + bytes), 0);
  return { ...input, partitionMaxBytes: Math.min(input.partitionMaxBytes, Math.max(1, minBytes - others)) };
}

/** Where each partition appears in a request (a partition may be asked for more than once). */
function partitionIndexes<T>(entries: readonly T[], partitionOf: (entry: T) => Partition | undefined): Map<Partition, number[]> {
  const indexes = new Map<Partition, number[]>();
  entries.forEach((entry, k) => {
    const partition = partitionOf(entry);
    if (partition === undefined) return;
    const list = indexes.get(partition) ?? [];
    list.push(k);
    indexes.set(partition, list);
  });
  return indexes;
}

/**
 * A long poll: resolves true when `satisfied(changed)` says so, false after `waitMs` or when
 * `signal` aborts (the caller went away). `changed` holds the partitions with news since the last
 * look. News is looked at once per turn of the event loop: the appends of one produce request land
 * in the same turn, so one answer carries all of them instead of the first one alone (for
 * followers that is one fetch round trip instead of several).
 */
function waitForData(partitions: readonly Partition[], waitMs: number, signal: AbortSignal | undefined, satisfied: (changed: ReadonlySet<Partition>) => boolean): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const unsubscribers: Array<() => void> = [];
    const changed = new Set<Partition>();
    let done = false;
    let looking: NodeJS.Immediate | undefined;
    const finish = (wasSatisfied: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearImmediate(looking);
      signal?.removeEventListener('abort', onAbort);
      for (const unsubscribe of unsubscribers) unsubscribe();
      resolve(wasSatisfied);
    };
    const onAbort = () => finish(false);
    const timer = setTimeout(() => finish(false), waitMs);
    signal?.addEventListener('abort', onAbort);
    for (const partition of partitions) {
      unsubscribers.push(
        partition.onData(() => {
          changed.add(partition);
          looking ??= setImmediate(() => {
            looking = undefined;
            const news = new Set(changed);
            changed.clear();
            if (satisfied(news)) finish(true);
          });
        }),
      );
    }
  });
}

/**
 * The response byte limit of one fetch, as KIP-74 has it: the first partition with data may
 * exceed it (one large batch must not stall a reader); after that it is strict, and a partition
 * whose data does not fit is left out of this response.
 */
class ResponseBudget {
  private seenData = false;

  constructor(private remaining: number) {}

  /** What `read(maxBytes)` returns if it fits, else nothing; the budget shrinks by what is taken. */
  take(partitionMaxBytes: number, read: (maxBytes: number) => Buffer): Buffer {
    if (this.seenData && this.remaining === 0) return EMPTY;
    const records = read(this.seenData ? Math.min(partitionMaxBytes, this.remaining) : partitionMaxBytes);
    if (this.seenData && records.length > this.remaining) return EMPTY;
    if (records.length > 0) this.seenData = true;
    this.remaining = Math.max(0, this.remaining - records.length);
    return records;
  }
}

/** The batches of a produce request, or null when they do not parse (the log's own validation names that problem). */
function parsedBatches(records: Buffer): ReturnType<typeof listBatches> | null {
  try {
    return listBatches(records);
  } catch (error) {
    if (error instanceof CorruptBatchError) return null;
    throw error;
  }
}

/**
 * Control batches (transaction markers) are the broker's to write, as in Kafka's LogValidator: a
 * client that sends one is refused with INVALID_RECORD.
 */
function refuseControlBatches(partitionName: string, records: Buffer): void {
  const control = parsedBatches(records)?.findIndex(({ header }) => isControlBatch(header)) ?? -1;
  if (control >= 0) throw new RunnelError('INVALID_RECORD', `${partitionName}: batch ${control} is a control batch; clients may not write control records`);
}

/**
 * A compacted log keeps the latest record of each key, so a record without a key has no place in
 * it (Kafka refuses it with INVALID_RECORD). Batches that do not parse are left to the log's own
 * validation, which refuses them as CORRUPT_MESSAGE.
 */
function requireKeys(partitionName: string, records: Buffer): void {
  const batches = parsedBatches(records);
  if (batches === null) return;
  for (const [index, { position, header }] of batches.entries()) {
    if (isControlBatch(header)) continue;
    let sliced: ReturnType<typeof sliceRecords>;
    try {
      sliced = sliceRecords(records.subarray(position));
    } catch (error) {
      if (error instanceof CorruptBatchError) return;
      throw error;
    }
    const keyless = sliced.records.findIndex((record) => record.key === null);
    if (keyless >= 0) {
      throw new RunnelError('INVALID_RECORD', `record ${keyless} of batch ${index} has a null key; ${partitionName} is compacted (cleanup.policy includes compact), and compacted topics require a key on every record`);
    }
  }
}
