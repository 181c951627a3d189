// Owns the log directory: one PartitionLog per replica this broker hosts, and the periodic jobs
// that the storage layer leaves to its owner (retention, time-based flush). Which replicas exist is
// decided by the controller's metadata, not here: the broker opens and removes them as it applies
// metadata deltas. Each partition directory holds `partition.metadata` with its topic id, so that a
// directory left from a deleted topic is never served as the new topic of the same name.
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, promises as fsPromises, readFileSync, readdirSync, renameSync, rmSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { RunnelError, withTopicOverrides, type LogSettings, type Logger } from '@runnel/common';
import { PartitionLog, replaceFile, replaceFileAsync } from '@runnel/storage';
import type { BrokerMetrics } from './metrics.js';
import { Partition } from './partition.js';

const DELETED_SUFFIX = '-delete';
const STRAY_SUFFIX = '-stray';
const PARTITION_METADATA = 'partition.metadata';
/** Every partition's high watermark, as Kafka's replication-offset-checkpoint (one file per log dir). */
const HIGH_WATERMARK_CHECKPOINT = 'replication-offset-checkpoint';
const HIGH_WATERMARK_CHECKPOINT_INTERVAL_MS = 5_000;
/** How often every log is checked for a failure (a write or fsync error) that takes its replica offline. */
const LOG_FAILURE_CHECK_INTERVAL_MS = 500;
/** `<topic>-<partition>`: topic names use [a-zA-Z0-9._-], so the partition is after the last '-'. */
const PARTITION_DIR = /^(.+)-(\d+)$/;

export interface LogManagerOptions {
  logDir: string;
  /** Free bytes under which the log directory counts as full (log.dir.min.free.bytes; 0: never). */
  minFreeBytes?: number;
  defaults: LogSettings;
  retentionCheckIntervalMs: number;
  logger: Logger;
  /** The log cleaner for compacted logs (log.cleaner.*); absent: no cleaning. */
  cleaner?: { enabled: boolean; backoffMs: number; dedupeBufferBytes: number };
  /** Counts what retention deletes and the cleaner does (runnel_log_*); absent in unit tests. */
  metrics?: Pick<BrokerMetrics, 'segmentsDeleted' | 'cleanerBytesCleaned' | 'cleanerBytesReclaimed' | 'cleanerRecordsRemoved' | 'cleanerLastPassSeconds' | 'cleanerMaxDirtyRatio'>;
  /**
   * Called once per replica taken offline, with the Partition it served as if it was open (the
   * broker stops fetching for it and tells the controller at once).
   */
  onReplicaOffline?: (replica: OfflineReplica, partition: Partition | undefined) => void;
}

/**
 * A replica this broker cannot serve: its log failed (a write or fsync error), or it could not take
 * the role the metadata gave it. It refuses produce and fetch with KAFKA_STORAGE_ERROR, leads and
 * follows nothing, and is reported to the controller in every heartbeat until this process ends: a
 * restart (a new incarnation) is what retries the log (KIP-858's offline log directory, per replica).
 */
export interface OfflineReplica {
  readonly topic: string;
  readonly topicId: string;
  readonly partition: number;
  readonly reason: string;
}

/** The log directory as the broker reports it: state, and the space of its filesystem. */
export interface LogDirStatus {
  readonly path: string;
  /** online; full (free bytes under log.dir.min.free.bytes); offline (a write failed, until restart). */
  readonly state: 'online' | 'full' | 'offline';
  /** Why it is offline: the first failed write. */
  readonly offlineReason: string | null;
  /** From statfs, as of the latest check (every LOG_FAILURE_CHECK_INTERVAL_MS); -1 if statfs failed. */
  readonly freeBytes: number;
  readonly totalBytes: number;
  readonly minFreeBytes: number;
}

export class LogManager {
  private readonly partitions = new Map<string, Partition>();
  /** Offline replicas by `<topic>-<partition>`; never in `partitions` at the same time. */
  private readonly offline = new Map<string, OfflineReplica>();
  private failureCheckTimer: NodeJS.Timeout | undefined;
  private retentionTimer: NodeJS.Timeout | undefined;
  /** The retention pass in progress: one at a time, however slow the disk. */
  private retaining: Promise<number> | null = null;
  private cleanerTimer: NodeJS.Timeout | undefined;
  /** The cleaner pass in progress: one at a time. */
  private cleaning: Promise<CleanerPassSummary> | null = null;
  private stopping = false;
  private flushTimer: NodeJS.Timeout | undefined;
  private flushing = false;
  private checkpointTimer: NodeJS.Timeout | undefined;
  private checkpointing: Promise<void> | null = null;
  /** High watermarks read at start, by partition name; a replica opened later starts from its own. */
  private checkpointed = new Map<string, number>();
  /** The first write failure of a log in this directory; the directory is offline from then until restart. */
  private failedWrite: string | null = null;
  private space = { freeBytes: -1, totalBytes: -1 };

  constructor(private readonly options: LogManagerOptions) {}

  /**
   * The log directory's state. Kafka takes a whole directory offline at its first I/O error; here
   * each failed log's replica goes offline on its own, and the directory is reported offline so
   * that no new replica is placed on it. Full clears as soon as space is freed; offline needs a
   * restart (the failed logs are reopened and recovered).
   */
  logDirStatus(): LogDirStatus {
    const minFreeBytes = this.options.minFreeBytes ?? 0;
    const { freeBytes, totalBytes } = this.space;
    const full = minFreeBytes > 0 && freeBytes >= 0 && freeBytes < minFreeBytes;
    const state = this.failedWrite !== null ? 'offline' : full ? 'full' : 'online';
    return { path: this.options.logDir, state, offlineReason: this.failedWrite, freeBytes, totalBytes, minFreeBytes };
  }

  /** Measures the free space of the log directory's filesystem (cheap: one statfs). */
  measureSpace(): void {
    try {
      const stats = statfsSync(this.options.logDir);
      this.space = { freeBytes: stats.bavail * stats.bsize, totalBytes: stats.blocks * stats.bsize };
    } catch (error) {
      this.space = { freeBytes: -1, totalBytes: -1 };
      this.options.logger.warn({ err: error, logDir: this.options.logDir }, 'cannot measure the free space of the log directory');
    }
  }

  async start(): Promise<void> {
    mkdirSync(this.options.logDir, { recursive: true });
    this.removeDeletedDirectories();
    this.checkpointed = this.readHighWatermarks();
    this.measureSpace();
    this.checkpointTimer = setInterval(() => void this.checkpointHighWatermarks(), HIGH_WATERMARK_CHECKPOINT_INTERVAL_MS);
    this.checkpointTimer.unref();
    this.retentionTimer = setInterval(() => void this.applyRetention(), this.options.retentionCheckIntervalMs);
    this.retentionTimer.unref();
    this.scheduleCleaning();
    this.failureCheckTimer = setInterval(() => this.takeFailedLogsOffline(), LOG_FAILURE_CHECK_INTERVAL_MS);
    this.failureCheckTimer.unref();
    this.scheduleTimedFlush();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.retentionTimer);
    clearTimeout(this.cleanerTimer);
    clearInterval(this.flushTimer);
    clearInterval(this.checkpointTimer);
    clearInterval(this.failureCheckTimer);
    // A pass stops at its next partition. Directory removals are not waited for: what they leave
    // is removed at the next start.
    await this.retaining;
    await this.cleaning;
    await this.checkpointHighWatermarks();
    await Promise.all([...this.partitions.values()].map((partition) => partition.log.close()));
    this.partitions.clear();
  }

  partition(topic: string, index: number): Partition | undefined {
    return this.partitions.get(`${topic}-${index}`);
  }

  allPartitions(): Partition[] {
    return [...this.partitions.values()];
  }

  offlineReplica(topic: string, index: number): OfflineReplica | undefined {
    return this.offline.get(`${topic}-${index}`);
  }

  /** Every replica offline on this broker, by name: what each heartbeat reports. */
  offlineReplicas(): OfflineReplica[] {
    return [...this.offline.values()].sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
  }

  /**
   * Takes the replica offline on this broker (see OfflineReplica): it is no longer served, its log
   * is closed, and `onReplicaOffline` hears of it. Returns false if it already was offline.
   */
  takeOffline(topic: string, topicId: string, index: number, cause: unknown): boolean {
    const name = `${topic}-${index}`;
    if (this.offline.has(name)) return false;
    const partition = this.partitions.get(name);
    if (partition !== undefined && partition.topicId !== topicId) {
      throw new Error(`invariant: taking ${name} of topic id ${topicId} offline, but this broker hosts topic id ${partition.topicId} under that name`);
    }
    const reason = cause instanceof Error ? cause.message : String(cause);
    const replica: OfflineReplica = { topic, topicId, partition: index, reason };
    this.offline.set(name, replica);
    if (partition !== undefined) {
      this.partitions.delete(name);
      partition.takeOffline(reason);
      // Closed to let go of its files; a failed log writes no clean-shutdown marker, so a restart recovers it.
      partition.log.close().catch((error: unknown) => this.options.logger.error({ err: error, partition: name }, 'closing an offline replica\'s log failed'));
    }
    this.options.logger.error({ partition: name, topicId, err: cause }, 'replica offline on this broker: it stops serving, and the controller moves leadership and the ISR off it');
    this.options.onReplicaOffline?.(replica, partition);
    return true;
  }

  /** Takes the replica offline if its log has failed (a write or fsync error); returns whether it did. */
  takeOfflineIfFailed(topic: string, index: number): boolean {
    const partition = this.partitions.get(`${topic}-${index}`);
    const cause = partition?.log.failureCause ?? null;
    if (partition === undefined || cause === null) return false;
    if (this.failedWrite === null) {
      this.failedWrite = `${partition.name}: ${cause.message}`;
      this.options.logger.error({ logDir: this.options.logDir, err: cause }, 'log directory offline: no new replica is placed on this broker until it restarts (free space first if the disk is full)');
    }
    return this.takeOffline(partition.topic, partition.topicId, partition.index, cause);
  }

  /** Every failed log's replica goes offline (failures found by retention, flushes and followers' appends); the free space is measured. */
  private takeFailedLogsOffline(): void {
    for (const partition of [...this.partitions.values()]) this.takeOfflineIfFailed(partition.topic, partition.index);
    this.measureSpace();
  }

  settingsFor(configs: Readonly<Record<string, string>>): LogSettings {
    return withTopicOverrides(this.options.defaults, configs);
  }

  /**
   * The replica of `topic`-`index` (topic id `topicId`), opened (and recovered) from its directory,
   * or created empty. A directory that belongs to another topic id (a deleted topic of the same
   * name) is removed first.
   */
  async openPartition(topic: string, topicId: string, index: number, configs: Readonly<Record<string, string>>, brokerId: number): Promise<Partition> {
    const name = `${topic}-${index}`;
    const offline = this.offline.get(name);
    if (offline !== undefined && offline.topicId === topicId) {
      throw new RunnelError('KAFKA_STORAGE_ERROR', `replica ${name} is offline on this broker until it restarts: ${offline.reason}`);
    }
    // An offline replica of an older topic of the same name: that topic is gone, and its directory with it below.
    if (offline !== undefined) this.offline.delete(name);
    const existing = this.partitions.get(name);
    if (existing !== undefined && existing.topicId === topicId) return existing;
    if (existing !== undefined) await this.removePartition(topic, index);
    const dir = join(this.options.logDir, name);
    const storedId = readTopicId(dir);
    if (storedId !== null && storedId !== topicId) {
      this.options.logger.warn({ partition: name, storedTopicId: storedId, topicId }, 'removing a partition directory left by an older topic of the same name');
      this.deleteDirectory(dir, name);
    }
    const log = await PartitionLog.open(dir, this.settingsFor(configs), { logger: this.options.logger.child({ partition: name }) });
    if (storedId !== topicId) writeTopicId(dir, topicId);
    const settings = this.settingsFor(configs);
    const partition = new Partition(topic, topicId, index, log, brokerId, settings.minInsyncReplicas, storedId === topicId ? (this.checkpointed.get(name) ?? 0) : 0);
    this.partitions.set(name, partition);
    return partition;
  }

  /**
   * Stops serving a replica and deletes its data (the topic was deleted or the replica moved away).
   * An offline replica is forgotten (nothing is left to report) and its directory deleted if it can be.
   */
  async removePartition(topic: string, index: number): Promise<Partition | undefined> {
    const name = `${topic}-${index}`;
    if (this.offline.delete(name)) {
      const dir = join(this.options.logDir, name);
      try {
        if (existsSync(dir)) this.deleteDirectory(dir, name);
      } catch (error) {
        // Left where it is: at the next start it is not assigned here and is set aside as a stray.
        this.options.logger.warn({ partition: name, err: error }, 'cannot delete the directory of a removed offline replica');
      }
      return undefined;
    }
    const partition = this.partitions.get(name);
    if (partition === undefined) return undefined;
    this.partitions.delete(name);
    partition.markRemoved();
    await partition.log.close();
    this.deleteDirectory(partition.log.dir, name);
    return partition;
  }

  /**
   * Partition directories that the metadata does not give this broker (a topic deleted while the
   * broker was down, a replica moved away). They are renamed out of the way, not deleted: an image
   * that is wrong must never cost data. `hosted` holds `<topic>-<partition>` names.
   */
  setAsideStrayDirectories(hosted: ReadonlySet<string>): string[] {
    const strays: string[] = [];
    for (const entry of readdirSync(this.options.logDir, { withFileTypes: true })) {
      if (!entry.isDirectory() || !PARTITION_DIR.test(entry.name) || hosted.has(entry.name)) continue;
      if (!existsSync(join(this.options.logDir, entry.name, PARTITION_METADATA)) && !existsSync(join(this.options.logDir, entry.name, '00000000000000000000.log'))) continue;
      const target = join(this.options.logDir, `${entry.name}.${randomUUID().replaceAll('-', '')}${STRAY_SUFFIX}`);
      renameSync(join(this.options.logDir, entry.name), target);
      strays.push(entry.name);
      this.options.logger.warn({ dir: entry.name, movedTo: target }, 'set aside a partition directory that the metadata does not assign to this broker');
    }
    return strays;
  }

  /**
   * Writes every hosted partition's high watermark (atomically: tmp, fsync, rename). Off the event
   * loop: an fsync while the page cache is busy with appends can take tens of milliseconds, which
   * every produce and fetch would wait for.
   */
  checkpointHighWatermarks(): Promise<void> {
    if (this.checkpointing !== null) return this.checkpointing;
    const lines = this.allPartitions().map((partition) => `${partition.topic} ${partition.index} ${partition.highWatermark}`);
    const path = join(this.options.logDir, HIGH_WATERMARK_CHECKPOINT);
    this.checkpointing = replaceFileAsync(path, `0\n${lines.length}\n${lines.join('\n')}${lines.length > 0 ? '\n' : ''}`)
      .catch((error: unknown) => this.options.logger.error({ err: error }, 'cannot checkpoint high watermarks'))
      .finally(() => {
        this.checkpointing = null;
      });
    return this.checkpointing;
  }

  private readHighWatermarks(): Map<string, number> {
    const marks = new Map<string, number>();
    let text: string;
    try {
      text = readFileSync(join(this.options.logDir, HIGH_WATERMARK_CHECKPOINT), 'utf8');
    } catch {
      return marks;
    }
    const lines = text.split('\n').filter((line) => line.trim() !== '');
    for (const line of lines.slice(2)) {
      const match = /^(\S+) (\d+) (\d+)$/.exec(line.trim());
      if (match !== null) marks.set(`${match[1]}-${match[2]}`, Number(match[3]));
    }
    return marks;
  }

  /**
   * Renames the directory out of the way at once (the partition is gone from this moment) and
   * removes it in the background: removing gigabytes of segments synchronously would stall every
   * request on this node. A crash before the removal ends leaves a `-delete` directory, which
   * start() removes.
   */
  private deleteDirectory(dir: string, name: string): void {
    const doomed = join(this.options.logDir, `${name}.${randomUUID().replaceAll('-', '')}${DELETED_SUFFIX}`);
    renameSync(dir, doomed);
    void fsPromises
      .rm(doomed, { recursive: true, force: true })
      .catch((error: unknown) => this.options.logger.warn({ err: error, dir: doomed }, 'could not remove the directory of a deleted partition; the next start will'));
  }

  private removeDeletedDirectories(): void {
    if (!existsSync(this.options.logDir)) return;
    for (const entry of readdirSync(this.options.logDir, { withFileTypes: true })) {
      if (entry.isDirectory() && entry.name.endsWith(DELETED_SUFFIX)) {
        rmSync(join(this.options.logDir, entry.name), { recursive: true, force: true });
        this.options.logger.info({ dir: entry.name }, 'removed the remains of a deleted partition');
      }
    }
  }
  /**
   * Runs retention over every partition, one after another; resolves to how many segments were
   * deleted. Each partition keeps every record at or above its high watermark (a leader's, or a
   * follower's as the leader told it, as Kafka does on both): a follower that lags still finds
   * them, and an acks=all request waiting for them is not answered by their deletion. The logs
   * take deleted segments out at once and remove their files later, in bounded steps that let
   * produce, fetch and heartbeats run in between. A pass started while one runs joins it.
   */
  applyRetention(): Promise<number> {
    this.retaining ??= this.retentionPass().finally(() => {
      this.retaining = null;
    });
    return this.retaining;
  }

  private async retentionPass(): Promise<number> {
    let deleted = 0;
    for (const partition of [...this.partitions.values()]) {
      if (this.stopping) break;
      if (this.partitions.get(partition.name) !== partition) continue; // removed while the pass ran
      try {
        const count = await partition.log.deleteRetainedSegments(partition.highWatermark);
        if (count > 0) {
          deleted += count;
          this.options.metrics?.segmentsDeleted.inc(count);
          this.options.logger.info({ partition: partition.name, segments: count, logStartOffset: partition.log.logStartOffset, highWatermark: partition.highWatermark }, 'retention deleted segments');
        }
      } catch (error) {
        this.options.logger.error({ err: error, partition: partition.name }, 'retention failed');
      }
    }
    return deleted;
  }

  /** Kafka's cleaner thread: a pass over the compacted logs, then log.cleaner.backoff.ms of rest, and again. */
  private scheduleCleaning(): void {
    const cleaner = this.options.cleaner;
    if (cleaner === undefined || !cleaner.enabled || this.stopping) return;
    this.cleanerTimer = setTimeout(() => {
      void this.applyCleaning().finally(() => this.scheduleCleaning());
    }, cleaner.backoffMs);
    this.cleanerTimer.unref();
  }

  /**
   * Cleans every compacted log that is dirty enough, one after another, each up to its high
   * watermark (a leader's, or a follower's as the leader told it): a record the high watermark has
   * not passed may still be truncated or be needed as written by a lagging follower. The logs work in
   * bounded steps that yield to the event loop. `compact,delete` logs also get retention from the
   * retention pass. A pass started while one runs joins it.
   */
  applyCleaning(): Promise<CleanerPassSummary> {
    this.cleaning ??= this.cleanerPass().finally(() => {
      this.cleaning = null;
    });
    return this.cleaning;
  }

  private async cleanerPass(): Promise<CleanerPassSummary> {
    const summary: CleanerPassSummary = { logsCleaned: 0, bytesCleaned: 0, bytesReclaimed: 0, recordsRemoved: 0, maxDirtyRatio: 0 };
    const cleaner = this.options.cleaner;
    if (cleaner === undefined || !cleaner.enabled) return summary;
    const startedMs = performance.now();
    for (const partition of [...this.partitions.values()]) {
      if (this.stopping) break;
      if (this.partitions.get(partition.name) !== partition || !partition.log.cleanupPolicy.compact) continue;
      try {
        const result = await partition.log.clean(partition.highWatermark, { dedupeBufferBytes: cleaner.dedupeBufferBytes });
        summary.maxDirtyRatio = Math.max(summary.maxDirtyRatio, result.dirtyRatio);
        if (!result.cleaned) continue;
        summary.logsCleaned++;
        summary.bytesCleaned += result.bytesBefore;
        summary.bytesReclaimed += result.bytesBefore - result.bytesAfter;
        summary.recordsRemoved += result.recordsRemoved;
        this.options.metrics?.cleanerBytesCleaned.inc(result.bytesBefore);
        this.options.metrics?.cleanerBytesReclaimed.inc(result.bytesBefore - result.bytesAfter);
        this.options.metrics?.cleanerRecordsRemoved.inc(result.recordsRemoved);
      } catch (error) {
        this.options.logger.error({ err: error, partition: partition.name }, 'log cleaning failed');
      }
    }
    this.options.metrics?.cleanerLastPassSeconds.set((performance.now() - startedMs) / 1000);
    this.options.metrics?.cleanerMaxDirtyRatio.set(summary.maxDirtyRatio);
    return summary;
  }

  private scheduleTimedFlush(): void {
    // The shortest flush.ms of any topic decides how often to look; each log knows if it is due.
    const interval = Math.max(10, Math.min(1000, this.options.defaults.flushMs ?? 1000));
    this.flushTimer = setInterval(() => void this.flushDue(), interval);
    this.flushTimer.unref();
  }

  private async flushDue(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      for (const partition of this.partitions.values()) await partition.log.flushIfDue();
    } catch (error) {
      this.options.logger.error({ err: error }, 'time-based flush failed');
    } finally {
      this.flushing = false;
    }
  }
}

export interface CleanerPassSummary {
  logsCleaned: number;
  bytesCleaned: number;
  bytesReclaimed: number;
  recordsRemoved: number;
  /** The largest dirty ratio seen, before cleaning. */
  maxDirtyRatio: number;
}

function readTopicId(dir: string): string | null {
  try {
    const match = /^topic_id=(.+)$/m.exec(readFileSync(join(dir, PARTITION_METADATA), 'utf8'));
    return match === null ? null : match[1]!.trim();
  } catch {
    return null;
  }
}

function writeTopicId(dir: string, topicId: string): void {
  replaceFile(join(dir, PARTITION_METADATA), `version: 0\ntopic_id=${topicId}\n`);
}
