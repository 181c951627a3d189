// The follower's side of replication. One FollowerFetcher per leader broker keeps a ReplicaFetch
// stream open to it and fetches, in one request, every partition this broker follows there: from
// its log end offset, with the epoch of its last batch. It appends what comes back as is (offsets
// and leader epochs kept), truncates first when the leader says the log diverged (KIP-279), and
// restarts from the leader's log start when it fell behind it. One request is in flight per
// leader; the leader long-polls when there is nothing new, so an idle follower costs nothing.
import * as grpc from '@grpc/grpc-js';
import { errorCode, loadReplicationProto, type Logger, type ReplicationApi } from '@runnel/common';
import { failStop, InvariantViolation } from './invariant.js';
import type { BrokerMetrics } from './metrics.js';
import { isThrottledReplica, type Partition } from './partition.js';
import type { ReplicationQuota } from './replicationQuota.js';

const RECONNECT_BACKOFF_MS = 200;
/** How often a fetcher whose every partition is held back by the throttle looks at the rate again. */
const THROTTLED_RECHECK_MS = 100;
/** A partition whose fetch failed (not leader, epoch mismatch) waits this long before it is asked again. */
const PARTITION_BACKOFF_MS = 300;
const NOT_LEADER = errorCode('NOT_LEADER_OR_FOLLOWER');
const OFFSET_OUT_OF_RANGE = errorCode('OFFSET_OUT_OF_RANGE');

export interface FetcherSettings {
  /** This broker's id and (current) broker epoch. */
  readonly brokerId: number;
  readonly brokerEpoch: () => number;
  /** replica.fetch.max.bytes per partition, replica.fetch.response.max.bytes per request. */
  readonly partitionMaxBytes: number;
  readonly responseMaxBytes: number;
  /** replica.fetch.wait.max.ms: the leader's long poll. */
  readonly maxWaitMs: number;
  readonly logger: Logger;
  readonly metrics: BrokerMetrics;
  /** follower.replication.throttled.rate: bytes fetched for this broker's replicas being added (absent: unlimited). */
  readonly throttle?: ReplicationQuota;
}

interface Followed {
  readonly partition: Partition;
  retryAtMs: number;
}

export class FollowerFetcher {
  private readonly partitions = new Map<string, Followed>();
  private client: ReplicationApi.ReplicationApiClient | null = null;
  private stream: grpc.ClientDuplexStream<ReplicationApi.ReplicaFetchRequest, ReplicationApi.ReplicaFetchResponse__Output> | null = null;
  private pending: { id: number; resolve: (response: ReplicationApi.ReplicaFetchResponse__Output | null) => void } | null = null;
  private requestId = 0;
  private running = false;
  private wake: (() => void) | null = null;
  private loop: Promise<void> | null = null;

  constructor(
    readonly leaderId: number,
    readonly address: string,
    private readonly settings: FetcherSettings,
  ) {}

  get size(): number {
    return this.partitions.size;
  }

  followed(): Partition[] {
    return [...this.partitions.values()].map((entry) => entry.partition);
  }

  add(partition: Partition): void {
    this.partitions.set(partition.name, { partition, retryAtMs: 0 });
    this.wake?.();
  }

  remove(partition: Partition): void {
    const followed = this.partitions.get(partition.name);
    if (followed?.partition === partition) this.partitions.delete(partition.name);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    this.closeStream();
    this.client?.close();
    this.client = null;
    await this.loop;
  }

  private async run(): Promise<void> {
    while (this.running) {
      const now = Date.now();
      const ready = [...this.partitions.values()].filter((followed) => followed.retryAtMs <= now && followed.partition.role.leader === this.leaderId);
      // Kafka's shouldFollowerThrottle: while the quota is spent, replicas being added are not asked for.
      const throttled = this.settings.throttle?.isExceeded() === true;
      const batch = throttled ? ready.filter((followed) => !this.isThrottled(followed.partition)) : ready;
      if (batch.length === 0) {
        const nextRetry = Math.min(...[...this.partitions.values()].map((followed) => followed.retryAtMs));
        const idleMs = Number.isFinite(nextRetry) ? Math.max(10, nextRetry - now) : 1000;
        await this.sleep(ready.length > 0 ? Math.min(idleMs, THROTTLED_RECHECK_MS) : idleMs);
        continue;
      }
      const requested = batch.map((followed) => ({ followed, epoch: followed.partition.leaderEpoch, fetchOffset: followed.partition.log.logEndOffset }));
      const response = await this.send({
        requestId: ++this.requestId,
        replicaId: this.settings.brokerId,
        brokerEpoch: this.settings.brokerEpoch(),
        maxWaitMs: this.settings.maxWaitMs,
        minBytes: 1,
        maxBytes: this.settings.responseMaxBytes,
        partitions: requested.map(({ followed, epoch, fetchOffset }) => ({
          topic: followed.partition.topic,
          partition: followed.partition.index,
          currentLeaderEpoch: epoch,
          fetchOffset,
          lastFetchedEpoch: followed.partition.log.latestEpoch,
          partitionMaxBytes: this.settings.partitionMaxBytes,
        })),
      });
      if (response === null) {
        if (this.running) await this.sleep(RECONNECT_BACKOFF_MS);
        continue;
      }
      for (const [k, result] of response.partitions.entries()) {
        const entry = requested[k];
        if (entry === undefined || result.topic !== entry.followed.partition.topic || result.partition !== entry.followed.partition.index) continue;
        try {
          await this.handle(entry.followed, entry.epoch, entry.fetchOffset, result);
        } catch (error) {
          if (error instanceof InvariantViolation) failStop(error, this.settings.logger);
          entry.followed.retryAtMs = Date.now() + PARTITION_BACKOFF_MS;
          this.settings.logger.error({ partition: entry.followed.partition.name, err: error }, 'applying fetched data failed');
        }
      }
    }
  }

  private async handle(followed: Followed, epoch: number, fetchOffset: number, result: ReplicationApi.ReplicaFetchPartitionResult__Output): Promise<void> {
    const partition = followed.partition;
    // The role may have changed while the fetch was out: act only on what still holds.
    if (!this.partitions.has(partition.name) || partition.role.leader !== this.leaderId || partition.leaderEpoch !== epoch) return;
    const log = partition.log;
    if (log.logEndOffset !== fetchOffset) return;
    if (result.errorCode === OFFSET_OUT_OF_RANGE) {
      const leaderStart = Number(result.logStartOffset);
      const leaderEnd = Number(result.logEndOffset);
      if (leaderStart >= 0 && fetchOffset < leaderStart) {
        this.settings.logger.warn({ partition: partition.name, fetchOffset, leaderLogStart: leaderStart }, 'fell behind the leader\'s log start: starting over there');
        log.truncateFullyAndStartAt(leaderStart);
        partition.resetHighWatermarkToLogEnd();
      } else if (leaderEnd >= 0 && fetchOffset > leaderEnd) {
        this.settings.logger.warn({ partition: partition.name, fetchOffset, leaderLogEnd: leaderEnd }, 'ahead of the leader\'s log end: truncating to it');
        log.truncateTo(Math.max(leaderEnd, log.logStartOffset));
        partition.clampHighWatermarkToLogEnd();
      } else {
        followed.retryAtMs = Date.now() + PARTITION_BACKOFF_MS;
      }
      return;
    }
    if (result.errorCode !== 0) {
      if (result.errorCode !== NOT_LEADER) this.settings.logger.debug({ partition: partition.name, errorCode: result.errorCode, err: result.errorMessage }, 'replica fetch refused');
      followed.retryAtMs = Date.now() + PARTITION_BACKOFF_MS;
      return;
    }
    const diverging = result.divergingEpoch;
    if (diverging !== null && diverging !== undefined && (diverging.epoch >= 0 || Number(diverging.endOffset) >= 0)) {
      const leaderEnd = Number(diverging.endOffset);
      const mine = log.endOffsetForEpoch(diverging.epoch);
      // KIP-279: truncate to where both logs agree — the smaller of the leader's and this log's
      // end of the diverging epoch; then fetch again, which checks the next epoch down if needed.
      let target = leaderEnd < 0 ? log.logStartOffset : leaderEnd;
      if (mine.endOffset >= 0) target = Math.min(target, mine.endOffset);
      target = Math.max(target, log.logStartOffset);
      this.settings.logger.warn(
        { partition: partition.name, logEndOffset: log.logEndOffset, truncateTo: target, divergingEpoch: diverging.epoch, leaderEndOffset: leaderEnd },
        'log diverged from the leader: truncating',
      );
      // Even at the log end: truncating there also drops an epoch this log assigned but never wrote.
      log.truncateTo(target);
      partition.clampHighWatermarkToLogEnd();
      return;
    }
    if (result.records.length > 0) {
      const appended = await log.append(Buffer.from(result.records.buffer, result.records.byteOffset, result.records.byteLength), { assignOffsets: false });
      this.settings.metrics.replicationBytesIn.inc(appended.bytes);
      if (this.settings.throttle !== undefined && this.isThrottled(partition)) {
        this.settings.throttle.record(appended.bytes);
        this.settings.metrics.replicationThrottledBytes.inc({ side: 'follower' }, appended.bytes);
      }
      // The role may have changed during the append (this replica may lead now).
      if (partition.role.leader !== this.leaderId || partition.leaderEpoch !== epoch) return;
    }
    partition.updateFollowerHighWatermark(Number(result.highWatermark));
  }

  private isThrottled(partition: Partition): boolean {
    return isThrottledReplica(partition.role, this.settings.brokerId);
  }

  /** Sends one request on the stream (opening it if needed); null when the stream broke. */
  private send(request: ReplicationApi.ReplicaFetchRequest): Promise<ReplicationApi.ReplicaFetchResponse__Output | null> {
    const stream = this.openStream();
    return new Promise((resolve) => {
      // The leader answers within maxWaitMs; a stream silent far beyond that is broken.
      const timer = setTimeout(() => {
        this.settings.logger.warn({ leader: this.leaderId }, 'replica fetch unanswered: reconnecting');
        this.closeStream();
      }, this.settings.maxWaitMs + 15_000);
      this.pending = {
        id: request.requestId as number,
        resolve: (response) => {
          clearTimeout(timer);
          this.pending = null;
          resolve(response);
        },
      };
      stream.write(request);
    });
  }

  private openStream(): grpc.ClientDuplexStream<ReplicationApi.ReplicaFetchRequest, ReplicationApi.ReplicaFetchResponse__Output> {
    if (this.stream !== null) return this.stream;
    if (this.client === null) {
      const { ReplicationApi: Client } = loadReplicationProto().runnel.v1;
      this.client = new Client(this.address, grpc.credentials.createInsecure(), {
        'grpc.max_receive_message_length': this.settings.responseMaxBytes + 4 * 1024 * 1024,
        'grpc-node.flow_control_window': 16 * 1024 * 1024,
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
        // A restarted leader must be fetched from again within a moment, not after grpc-js's
        // default reconnect backoff (which grows to minutes).
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 1_000,
      });
    }
    const stream = this.client.ReplicaFetch();
    this.stream = stream;
    stream.on('data', (response: ReplicationApi.ReplicaFetchResponse__Output) => {
      if (this.pending !== null && Number(response.requestId) === this.pending.id) this.pending.resolve(response);
    });
    const broken = (error?: Error) => {
      if (this.stream !== stream) return;
      this.stream = null;
      if (error !== undefined && this.running && (error as grpc.ServiceError).code !== grpc.status.CANCELLED) {
        this.settings.logger.debug({ leader: this.leaderId, err: error.message }, 'replica fetch stream ended');
      }
      this.pending?.resolve(null);
    };
    stream.on('error', broken);
    stream.on('end', () => broken());
    stream.on('close', () => broken());
    return stream;
  }

  private closeStream(): void {
    const stream = this.stream;
    this.stream = null;
    stream?.cancel();
    this.pending?.resolve(null);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = null;
        done();
      };
    });
  }
}

/** The fetchers of one broker: a partition is followed by the fetcher of its current leader. */
export class ReplicaFetcherManager {
  private readonly fetchers = new Map<number, FollowerFetcher>();
  private readonly followedBy = new Map<string, FollowerFetcher>();

  constructor(private readonly settings: FetcherSettings) {}

  /** Follows `partition` on `leaderId` (at `address`), moving it off any other fetcher. */
  follow(partition: Partition, leaderId: number, address: string): void {
    const current = this.followedBy.get(partition.name);
    if (current !== undefined && current.leaderId === leaderId && current.address === address) {
      current.add(partition); // the same leader, maybe a new epoch: ask again at once
      return;
    }
    this.stopFollowing(partition);
    let fetcher = this.fetchers.get(leaderId);
    if (fetcher !== undefined && fetcher.address !== address) {
      // The leader moved (a restart on another address): every partition followed there moves
      // with it, not only the one whose metadata said so first.
      const moved = fetcher.followed();
      void fetcher.stop();
      this.fetchers.delete(leaderId);
      fetcher = this.startFetcher(leaderId, address);
      for (const other of moved) {
        fetcher.add(other);
        this.followedBy.set(other.name, fetcher);
      }
    }
    fetcher ??= this.startFetcher(leaderId, address);
    fetcher.add(partition);
    this.followedBy.set(partition.name, fetcher);
  }

  private startFetcher(leaderId: number, address: string): FollowerFetcher {
    const fetcher = new FollowerFetcher(leaderId, address, this.settings);
    this.fetchers.set(leaderId, fetcher);
    fetcher.start();
    return fetcher;
  }

  stopFollowing(partition: Partition): void {
    const fetcher = this.followedBy.get(partition.name);
    if (fetcher === undefined) return;
    fetcher.remove(partition);
    this.followedBy.delete(partition.name);
    // A fetcher that follows nothing closes its stream and connection (Kafka's shutdownIdleFetcherThreads).
    if (fetcher.size === 0 && this.fetchers.get(fetcher.leaderId) === fetcher) {
      this.fetchers.delete(fetcher.leaderId);
      void fetcher.stop();
    }
  }

  /** How many leaders this broker fetches from now. */
  get fetcherCount(): number {
    return this.fetchers.size;
  }

  /** The address `partition` is fetched from, if it is followed. */
  fetchedFrom(partition: Partition): string | undefined {
    return this.followedBy.get(partition.name)?.address;
  }

  /** The `<topic>-<partition>` names this broker fetches for, sorted. */
  followedPartitions(): string[] {
    return [...this.followedBy.keys()].sort();
  }

  async stop(): Promise<void> {
    await Promise.all([...this.fetchers.values()].map((fetcher) => fetcher.stop()));
    this.fetchers.clear();
    this.followedBy.clear();
  }
}
