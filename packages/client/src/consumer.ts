// The Consumer: partitions assigned by hand (assign) or by its group (subscribe, Kafka's classic
// group protocol; see group/groupMembership.ts). One Fetch in flight per broker, carrying every
// assigned partition that broker leads and that has nothing buffered; answers are decoded into a
// per-partition buffer that poll() drains, advancing positions. With a group id, positions start at
// the group's committed offsets and are committed back (auto-commit, commit, commitAsync).
import { CorruptBatchError, RunnelError, decodeRecords, isControlBatch, lastOffsetOf, readBatchHeader, BATCH_HEADER_BYTES, LOG_OVERHEAD, type ClientApi, type DecodedRecord } from '@runnel/common';
import { listOffsetsFromLeaders } from './admin.js';
import { ASSIGNORS, type PartitionAssignor } from './group/assignors.js';
import type { TopicPartitions } from './group/consumerProtocol.js';
import { GroupMembership, type CommitEntry, type JoinedGeneration } from './group/groupMembership.js';
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
  /** The consumer group: needed by subscribe() and by commits. */
  groupId?: string;
  /** Static membership (KIP-345): a restart within the session timeout keeps the assignment without a rebalance. */
  groupInstanceId?: string;
  /** The coordinator removes a member it has not heard from for this long. Default 45000. */
  sessionTimeoutMs?: number;
  /** Default 3000; at most a third of the session timeout is sensible. */
  heartbeatIntervalMs?: number;
  /** A member that does not poll for this long leaves its group (Kafka's max.poll.interval.ms). Default 300000. */
  maxPollIntervalMs?: number;
  /** Commit positions every autoCommitIntervalMs, before a rebalance and on close. Default true with a group id. */
  enableAutoCommit?: boolean;
  autoCommitIntervalMs?: number;
  /** In order of preference; every member of a group must share one. Default ['range', 'cooperative-sticky'] as Kafka 3. */
  partitionAssignors?: ReadonlyArray<string | PartitionAssignor>;
  /** A pattern subscription leaves out internal topics (__consumer_offsets). Default true. */
  excludeInternalTopics?: boolean;
}

/**
 * Called inside poll() (and close()) around a change of the group's assignment, as Kafka's
 * ConsumerRebalanceListener. `onPartitionsRevoked` runs before the partitions go (commit their
 * offsets there); `onPartitionsLost` when the member was fenced or expired (another member may
 * already own them: do not commit), by default the same as revoked.
 */
export interface RebalanceListener {
  onPartitionsRevoked?(partitions: TopicPartition[]): void | Promise<void>;
  onPartitionsAssigned?(partitions: TopicPartition[]): void | Promise<void>;
  onPartitionsLost?(partitions: TopicPartition[]): void | Promise<void>;
}

/** A committed offset: the position the group resumes from, null when nothing is committed. */
export interface CommittedOffset extends TopicPartition {
  offset: number | null;
  metadata: string;
}

export interface OffsetToCommit extends TopicPartition {
  /** The offset of the next record to read, as in Kafka. */
  offset: number;
  metadata?: string;
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
  /** The position comes from the group's committed offset, not yet fetched. */
  awaitingCommitted: boolean;
  paused: boolean;
}

interface Subscription {
  /** Topics named, or matched by the pattern at the last metadata check. */
  topics: Set<string>;
  pattern: RegExp | null;
  listener: RebalanceListener;
}

interface SentPartition {
  state: PartitionState;
  epoch: number;
  fetchOffset: number;
}

/** Partitions one consumer may be assigned. */
const ASSIGNMENT_MAX = 100_000;
const RETRY_BACKOFF_MAX_MS = 1000;
const DEFAULT_ASSIGNORS = ['range', 'cooperative-sticky'];
const CLOSE_TIMEOUT_MS = 30_000;
/** Kafka's internal topics, which a pattern subscription leaves out with excludeInternalTopics. */
const INTERNAL_TOPICS: ReadonlySet<string> = new Set(['__consumer_offsets', '__transaction_state']);

function flatten(list: readonly TopicPartitions[]): TopicPartition[] {
  return list.flatMap(({ topic, partitions }) => partitions.map((partition) => ({ topic, partition })));
}

function grouped(partitions: readonly TopicPartition[]): TopicPartitions[] {
  const byTopic = new Map<string, number[]>();
  for (const { topic, partition } of partitions) byTopic.set(topic, [...(byTopic.get(topic) ?? []), partition]);
  return [...byTopic.entries()].map(([topic, list]) => ({ topic, partitions: list.sort((a, b) => a - b) }));
}

function resolveAssignors(list: ReadonlyArray<string | PartitionAssignor> | undefined): PartitionAssignor[] {
  const wanted = list ?? DEFAULT_ASSIGNORS.filter((name) => ASSIGNORS.some((assignor) => assignor.name === name));
  if (wanted.length === 0) throw new RangeError('partitionAssignors needs at least one assignor');
  return wanted.map((entry) => {
    if (typeof entry !== 'string') return entry;
    const found = ASSIGNORS.find((assignor) => assignor.name === entry);
    if (found === undefined) throw new RangeError(`unknown partition assignor '${entry}'; known: ${ASSIGNORS.map((assignor) => assignor.name).join(', ')}`);
    return found;
  });
}

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
  private readonly groupId: string | null;
  private readonly membership: GroupMembership | null;
  private readonly autoCommit: boolean;
  private readonly autoCommitIntervalMs: number;
  private readonly excludeInternalTopics: boolean;
  private subscription: Subscription | null = null;
  private nextAutoCommitMs = 0;
  private autoCommitInFlight = false;
  /** Positions last committed, so that auto-commit sends only what moved. */
  private readonly lastCommitted = new Map<string, number>();
  private nextSubscriptionCheckMs = 0;

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
    this.excludeInternalTopics = options.excludeInternalTopics ?? true;
    this.groupId = options.groupId ?? null;
    this.autoCommitIntervalMs = positiveOption('autoCommitIntervalMs', options.autoCommitIntervalMs, 5000);
    if (this.groupId === null) {
      if (options.enableAutoCommit === true) throw new RangeError('enableAutoCommit needs a groupId');
      this.membership = null;
      this.autoCommit = false;
      return;
    }
    if (this.groupId === '') throw new RangeError('groupId must not be empty');
    this.autoCommit = options.enableAutoCommit ?? true;
    const sessionTimeoutMs = positiveOption('sessionTimeoutMs', options.sessionTimeoutMs, 45_000);
    const heartbeatIntervalMs = positiveOption('heartbeatIntervalMs', options.heartbeatIntervalMs, 3000);
    if (heartbeatIntervalMs >= sessionTimeoutMs) throw new RangeError(`heartbeatIntervalMs (${heartbeatIntervalMs}) must be below sessionTimeoutMs (${sessionTimeoutMs})`);
    this.membership = new GroupMembership(
      this.cluster,
      {
        groupId: this.groupId,
        groupInstanceId: options.groupInstanceId ?? '',
        clientId: client.clientId,
        sessionTimeoutMs,
        heartbeatIntervalMs,
        maxPollIntervalMs: positiveOption('maxPollIntervalMs', options.maxPollIntervalMs, 300_000),
        retryBackoffMs: this.retryBackoffMs,
        requestTimeoutMs: this.requestTimeoutMs,
        assignors: resolveAssignors(options.partitionAssignors),
        logger: client.logger,
      },
      {
        subscribedTopics: () => [...(this.subscription?.topics ?? [])],
        ownedPartitions: () => grouped(this.assignment()),
        wake: () => this.wakeFetchWaiters(),
      },
    );
  }

  /**
   * Joins the group (groupId) for `topics`, or for every topic whose name matches `pattern`
   * (checked again every metadataMaxAgeMs); the group's leader member assigns the partitions. The
   * join happens in poll(), which also runs the listener.
   */
  subscribe(topics: readonly string[] | RegExp, listener: RebalanceListener = {}): void {
    if (this.membership === null) throw new Error('subscribe needs a groupId');
    if (this.subscription === null && this.states.size > 0) throw new Error('subscribe is not available while partitions are assigned with assign(); call assign([]) first');
    const pattern = topics instanceof RegExp ? topics : null;
    const named = pattern === null ? new Set(topics as readonly string[]) : new Set<string>();
    for (const topic of named) if (topic === '') throw new RangeError('a subscribed topic name must not be empty');
    const changed = this.subscription === null || pattern !== null || String(this.subscription.pattern) !== String(pattern) || [...named].sort().join('\u0000') !== [...this.subscription.topics].sort().join('\u0000');
    this.subscription = { topics: pattern === null ? named : (this.subscription?.topics ?? new Set()), pattern, listener };
    if (pattern !== null) this.nextSubscriptionCheckMs = 0;
    if (changed) this.membership.requestRejoin('subscription changed');
  }

  /** The topics of the subscription (for a pattern: those it matched at the last check). */
  subscriptionTopics(): string[] {
    return [...(this.subscription?.topics ?? [])].sort();
  }

  /** Revokes the partitions (listener), leaves the group and forgets the subscription. */
  async unsubscribe(): Promise<void> {
    if (this.subscription === null) return;
    await this.leaveGroup('unsubscribed');
    this.subscription = null;
  }

  /** Replaces the assignment; partitions kept from the old one keep their positions. */
  assign(partitions: TopicPartition[]): void {
    if (this.subscription !== null) throw new Error('assign is not available while subscribed to a group; call unsubscribe() first');
    this.setAssignment(partitions);
  }

  private setAssignment(partitions: readonly TopicPartition[]): void {
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

  /** Fetching stops for `partitions` (their buffered records stay) until resume(); the group keeps them. */
  pause(partitions: TopicPartition[]): void {
    for (const partition of partitions) this.assigned(partition).paused = true;
  }

  resume(partitions: TopicPartition[]): void {
    for (const partition of partitions) this.assigned(partition).paused = false;
    this.wakeFetchWaiters();
  }

  paused(): TopicPartition[] {
    return [...this.states.values()].filter((state) => state.paused).map(({ topic, partition }) => ({ topic, partition }));
  }

  /**
   * Commits offsets for the group and waits until they are stored, retrying coordinator moves for
   * up to requestTimeoutMs. Without `offsets`: the position of every assigned partition (the
   * offset after the last record poll() returned), which is what auto-commit does.
   */
  async commit(offsets?: readonly OffsetToCommit[]): Promise<void> {
    const membership = this.requireGroup('commit');
    const entries = offsets === undefined ? this.positionsToCommit(false) : this.checkedOffsets(offsets);
    await membership.commit(entries, Date.now() + this.requestTimeoutMs, { subscribed: this.subscription !== null });
    for (const entry of entries) this.lastCommitted.set(key(entry.topic, entry.partition), entry.offset);
  }

  /** commit() without waiting and without retries, as Kafka's commitAsync; `callback` hears how it went (errors are logged without one). */
  commitAsync(offsets?: readonly OffsetToCommit[], callback?: (error: Error | null) => void): void {
    const membership = this.requireGroup('commitAsync');
    const entries = offsets === undefined ? this.positionsToCommit(false) : this.checkedOffsets(offsets);
    // One attempt (Kafka's commitAsync does not retry) with the whole request timeout: the deadline is also the call's gRPC deadline.
    membership.commit(entries, Date.now() + this.requestTimeoutMs, { retry: false, subscribed: this.subscription !== null }).then(
      () => {
        for (const entry of entries) this.lastCommitted.set(key(entry.topic, entry.partition), entry.offset);
        this.runCommitCallback(callback, null);
      },
      (error: Error) => {
        if (callback !== undefined) this.runCommitCallback(callback, error);
        else this.cluster.options.logger?.warn({ group: this.groupId, err: error.message }, 'asynchronous commit failed');
      },
    );
  }

  /** A throwing callback is the application's bug: logged, not an unhandled rejection. */
  private runCommitCallback(callback: ((error: Error | null) => void) | undefined, error: Error | null): void {
    try {
      callback?.(error);
    } catch (thrown) {
      this.cluster.options.logger?.error({ group: this.groupId, err: (thrown as Error)?.message }, 'the commitAsync callback threw');
    }
  }

  /** The group's committed offsets for `partitions` (null where nothing is committed). */
  async committed(partitions: TopicPartition[]): Promise<CommittedOffset[]> {
    const membership = this.requireGroup('committed');
    const results = await membership.committed(partitions, Date.now() + this.requestTimeoutMs);
    return results.map((result) => ({ topic: result.topic, partition: result.partition, offset: result.offset < 0 ? null : result.offset, metadata: result.metadata }));
  }

  /** The member id and generation this consumer holds in its group (generation -1 outside one). */
  groupMetadata(): { groupId: string | null; memberId: string; generationId: number } {
    return { groupId: this.groupId, memberId: this.membership?.memberId ?? '', generationId: this.membership?.generationId ?? -1 };
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
    // The group counts time between polls against maxPollIntervalMs, not a long poll's wait.
    this.membership?.pollStarted();
    try {
      return await this.pollUntil(Date.now() + Math.max(0, timeoutMs));
    } finally {
      this.membership?.pollEnded();
    }
  }

  private async pollUntil(deadlineMs: number): Promise<ConsumerRecord[]> {
    for (;;) {
      if (this.subscription !== null) await this.updateGroup(deadlineMs);
      else if (this.autoCommit) this.maybeAutoCommit();
      this.throwPartitionError();
      const records = this.drainBuffered();
      if (records.length > 0) return records;
      await this.fetchCommittedPositions();
      await this.resetPositions();
      await this.ensureMetadata();
      const inFlight = this.sendFetches();
      const remainingMs = deadlineMs - Date.now();
      if (remainingMs <= 0 || this.closed) return [];
      // Nothing in flight means every partition waits for a retry: sleep a backoff, not the whole timeout.
      await this.waitForFetch(inFlight ? remainingMs : Math.min(remainingMs, Math.max(this.retryBackoffMs, 1)));
    }
  }

  /**
   * Commits (with auto-commit), revokes the partitions (listener), leaves the group (a dynamic
   * member; a static one is removed at its session timeout), then closes the connections.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      if (this.subscription !== null) await this.leaveGroup('consumer closed');
      else if (this.autoCommit) await this.commitQuietly(this.positionsToCommit(true), Date.now() + Math.min(this.requestTimeoutMs, CLOSE_TIMEOUT_MS));
    } finally {
      this.closed = true;
      await this.membership?.close('consumer closed');
      this.wakeFetchWaiters();
      await this.cluster.close();
    }
  }

  // ---- the group ----------------------------------------------------------------------------------

  /** The group's part of a poll: checks, commits, listener calls and (re)joins. */
  private async updateGroup(deadlineMs: number): Promise<void> {
    const membership = this.membership!;
    membership.throwIfFatal();
    if (Date.now() >= this.nextSubscriptionCheckMs) await this.checkSubscription();
    const joined = membership.takeJoined();
    if (joined !== null) await this.onJoinComplete(joined);
    if (membership.rejoinNeeded && !membership.joinInFlight) {
      await this.onJoinPrepare();
      membership.startJoin();
    }
    if (membership.joinInFlight && this.states.size === 0) {
      // Nothing to fetch meanwhile (an eager rebalance, a first join): wait for the join.
      await membership.waitForJoin(deadlineMs - Date.now());
      const done = membership.takeJoined();
      if (done !== null) await this.onJoinComplete(done);
    }
    membership.throwIfFatal();
    if (this.autoCommit && membership.generationValid) this.maybeAutoCommit();
  }

  /**
   * Before a join: commit (auto-commit) and, for the eager protocol, revoke everything; partitions
   * of a generation that was lost are reported lost instead (their offsets are not committed).
   */
  private async onJoinPrepare(): Promise<void> {
    const membership = this.membership!;
    const listener = this.subscription!.listener;
    const owned = this.assignment();
    if (membership.takeLost()) {
      this.setAssignment([]);
      if (owned.length > 0) await (listener.onPartitionsLost ?? listener.onPartitionsRevoked)?.call(listener, owned);
      return;
    }
    if (this.autoCommit && membership.generationValid) await this.commitQuietly(this.positionsToCommit(true), Date.now() + this.requestTimeoutMs);
    const revoked = membership.protocol === 'EAGER' ? owned : owned.filter(({ topic }) => !this.subscription!.topics.has(topic));
    if (revoked.length === 0) return;
    await listener.onPartitionsRevoked?.(revoked);
    const revokedIds = new Set(revoked.map(({ topic, partition }) => key(topic, partition)));
    this.setAssignment(owned.filter(({ topic, partition }) => !revokedIds.has(key(topic, partition))));
  }

  /**
   * After a join: take the new assignment. Cooperative (KIP-429): partitions that move to another
   * member are revoked now and handed over in the rebalance that follows, so no partition has two
   * owners in one generation.
   */
  private async onJoinComplete(joined: JoinedGeneration): Promise<void> {
    const listener = this.subscription?.listener ?? {};
    const assigned = flatten(joined.assignment);
    const assignedIds = new Set(assigned.map(({ topic, partition }) => key(topic, partition)));
    const owned = this.assignment();
    const ownedIds = new Set(owned.map(({ topic, partition }) => key(topic, partition)));
    const revoked = owned.filter(({ topic, partition }) => !assignedIds.has(key(topic, partition)));
    if (revoked.length > 0) {
      if (this.autoCommit) await this.commitQuietly(this.positionsToCommit(true).filter(({ topic, partition }) => !assignedIds.has(key(topic, partition))), Date.now() + this.requestTimeoutMs);
      await listener.onPartitionsRevoked?.(revoked);
      this.membership!.requestRejoin('partitions revoked in a cooperative rebalance');
    }
    this.setAssignment(assigned);
    this.nextAutoCommitMs = Date.now() + this.autoCommitIntervalMs;
    await listener.onPartitionsAssigned?.(assigned.filter(({ topic, partition }) => !ownedIds.has(key(topic, partition))));
  }

  /** Revoke (or lose), commit and leave; the consumer owns nothing afterwards. */
  private async leaveGroup(reason: string): Promise<void> {
    const membership = this.membership!;
    const listener = this.subscription?.listener ?? {};
    const owned = this.assignment();
    if (membership.generationValid) {
      if (this.autoCommit) await this.commitQuietly(this.positionsToCommit(true), Date.now() + Math.min(this.requestTimeoutMs, CLOSE_TIMEOUT_MS));
      if (owned.length > 0) await listener.onPartitionsRevoked?.(owned);
    } else if (owned.length > 0) {
      await (listener.onPartitionsLost ?? listener.onPartitionsRevoked)?.call(listener, owned);
    }
    this.setAssignment([]);
    await membership.leave(reason);
  }

  /** Pattern subscriptions pick up new topics; the leader notices partition counts that changed. */
  private async checkSubscription(): Promise<void> {
    const subscription = this.subscription!;
    this.nextSubscriptionCheckMs = Date.now() + this.cluster.options.metadataMaxAgeMs;
    let response: ClientApi.MetadataResponse__Output;
    try {
      // A leader also watches the topics only other members subscribe to (assignedTopics).
      const topics = subscription.pattern === null ? [...new Set([...subscription.topics, ...this.membership!.assignedTopics])] : [];
      response = await this.cluster.metadata({ topics, allowAutoTopicCreation: false });
    } catch (error) {
      this.nextSubscriptionCheckMs = Date.now() + this.retryBackoffMs;
      this.cluster.options.logger?.debug({ err: (error as Error).message }, 'subscription metadata check failed');
      return;
    }
    const counts = new Map<string, number>();
    for (const topic of response.topics) if (topic.errorCode === 0 && topic.partitions.length > 0) counts.set(topic.name, topic.partitions.length);
    if (subscription.pattern !== null) {
      const pattern = subscription.pattern;
      const matched = [...counts.keys()].filter((name) => (pattern.lastIndex = 0, pattern.test(name)) && !(this.excludeInternalTopics && INTERNAL_TOPICS.has(name))).sort();
      if (matched.join('\u0000') !== [...subscription.topics].sort().join('\u0000')) {
        subscription.topics = new Set(matched);
        this.membership!.requestRejoin(`pattern ${String(pattern)} now matches ${matched.length} topic(s)`);
      }
    }
    this.membership!.checkAssignedMetadata(counts);
  }

  private maybeAutoCommit(): void {
    if (this.autoCommitInFlight || Date.now() < this.nextAutoCommitMs) return;
    this.nextAutoCommitMs = Date.now() + this.autoCommitIntervalMs;
    const entries = this.positionsToCommit(true);
    if (entries.length === 0) return;
    this.autoCommitInFlight = true;
    this.commitQuietly(entries, Date.now() + this.requestTimeoutMs).finally(() => (this.autoCommitInFlight = false));
  }

  /** A commit whose failure is logged, not thrown (auto-commit, commits before a rebalance or close). */
  private async commitQuietly(entries: CommitEntry[], deadlineMs: number): Promise<void> {
    if (entries.length === 0) return;
    try {
      await this.membership!.commit(entries, deadlineMs);
      for (const entry of entries) this.lastCommitted.set(key(entry.topic, entry.partition), entry.offset);
    } catch (error) {
      this.cluster.options.logger?.warn({ group: this.groupId, err: (error as Error).message }, 'offset commit failed');
    }
  }

  /** The position of every assigned partition that has one (only those that moved since the last commit, if `changedOnly`). */
  private positionsToCommit(changedOnly: boolean): CommitEntry[] {
    const entries: CommitEntry[] = [];
    for (const [id, state] of this.states) {
      if (state.position === undefined || (changedOnly && this.lastCommitted.get(id) === state.position)) continue;
      entries.push({ topic: state.topic, partition: state.partition, offset: state.position });
    }
    return entries;
  }

  private checkedOffsets(offsets: readonly OffsetToCommit[]): CommitEntry[] {
    return offsets.map(({ topic, partition, offset, metadata }) => {
      if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`commit offset of ${topic}-${partition} must be a non-negative integer, got ${offset}`);
      if (!Number.isInteger(partition) || partition < 0) throw new RangeError(`bad partition ${partition} of topic '${topic}'`);
      return { topic, partition, offset, metadata };
    });
  }

  private requireGroup(what: string): GroupMembership {
    if (this.membership === null) throw new Error(`${what} needs a groupId`);
    if (this.closed) throw new Error('the consumer is closed');
    return this.membership;
  }

  /** Partitions whose position is the group's committed offset look it up (OffsetFetch). */
  private async fetchCommittedPositions(): Promise<void> {
    if (this.membership === null) return;
    const nowMs = Date.now();
    const waiting = [...this.states.values()].filter((state) => state.awaitingCommitted && state.position === undefined && state.retryAtMs <= nowMs);
    if (waiting.length === 0) return;
    const epochs = waiting.map((state) => state.epoch);
    try {
      const results = await this.membership.committed(waiting, nowMs + this.requestTimeoutMs);
      const byId = new Map(results.map((result) => [key(result.topic, result.partition), result.offset]));
      waiting.forEach((state, i) => {
        const id = key(state.topic, state.partition);
        // A seek() made while the lookup ran wins.
        if (state.epoch !== epochs[i] || this.states.get(id) !== state) return;
        state.awaitingCommitted = false;
        const offset = byId.get(id) ?? -1;
        if (offset >= 0) {
          this.setPosition(state, offset);
          this.lastCommitted.set(id, offset);
        }
      });
    } catch (error) {
      if (!(error instanceof RunnelError) || !error.retriable) throw error;
      for (const state of waiting) this.backOff(state);
    }
  }

  private wakeFetchWaiters(): void {
    for (const wake of this.fetchWaiters) wake();
  }

  private newState(topic: string, partition: number): PartitionState {
    const awaitingCommitted = this.membership !== null;
    return { topic, partition, position: undefined, epoch: 0, fetchInFlight: false, buffered: [], bufferedNext: 0, nextFetchOffset: 0, retryAtMs: 0, attempts: 0, error: null, awaitingCommitted, paused: false };
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
    state.awaitingCommitted = false;
  }

  private async seekTo(partitions: TopicPartition[] | undefined, spec: 'earliest' | 'latest'): Promise<void> {
    const states = (partitions ?? this.assignment()).map((partition) => this.assigned(partition));
    if (states.length === 0) return;
    const epochs = states.map((state) => state.epoch);
    const offsets = await this.listOffsetsRetrying(states.map(({ topic, partition }) => ({ topic, partition, timestamp: spec })));
    states.forEach((state, i) => {
      // A seek() made while the lookup ran wins.
      if (state.epoch === epochs[i] && this.states.get(key(state.topic, state.partition)) === state) this.setPosition(state, offsets[i]!.offset);
    });
  }

  /**
   * The leaders' offsets, retrying retriable answers (NOT_LEADER_OR_FOLLOWER right after a topic
   * is created or a leader moved: the lookup refreshes the metadata) until requestTimeoutMs, as
   * Kafka's consumer retries its offset lookups until its API timeout.
   */
  private async listOffsetsRetrying(queries: Parameters<typeof listOffsetsFromLeaders>[1]): ReturnType<typeof listOffsetsFromLeaders> {
    const deadlineMs = Date.now() + this.requestTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await listOffsetsFromLeaders(this.cluster, queries);
      } catch (error) {
        if (!(error instanceof RunnelError) || !error.retriable || Date.now() >= deadlineMs) throw error;
        await new Promise((resolve) => setTimeout(resolve, Math.min(backoffMs(attempt, this.retryBackoffMs, 1000), Math.max(0, deadlineMs - Date.now()))));
      }
    }
  }

  /** Gives partitions without a position one from autoOffsetReset ('none' throws). */
  private async resetPositions(): Promise<void> {
    const nowMs = Date.now();
    const missing = [...this.states.values()].filter((state) => state.position === undefined && !state.awaitingCommitted && state.retryAtMs <= nowMs);
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
      if (state.paused) continue;
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
      if (state.fetchInFlight || state.paused || state.position === undefined || state.buffered.length > 0 || state.retryAtMs > nowMs || state.error !== null) continue;
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
        this.wakeFetchWaiters();
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
