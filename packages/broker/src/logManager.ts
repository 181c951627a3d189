// Owns the log directory: which topics exist (TopicStore), one PartitionLog per partition, and
// the periodic jobs that the storage layer leaves to its owner (retention, time-based flush).
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { RunnelError, parseTopicConfigs, withTopicOverrides, type LogSettings, type Logger } from '@runnel/common';
import { PartitionLog } from '@runnel/storage';
import { Partition } from './partition.js';
import { TopicStore, type TopicRecord } from './topicStore.js';

const TOPIC_NAME = /^[a-zA-Z0-9._-]+$/;
const TOPIC_NAME_MAX_LENGTH = 249;
const DELETED_SUFFIX = '-delete';
/** Partitions per topic are bounded so that one request cannot open millions of files. */
export const PARTITIONS_PER_TOPIC_MAX = 10_000;

export function validateTopicName(name: string): void {
  if (name === '' || name === '.' || name === '..') throw new RunnelError('INVALID_TOPIC_EXCEPTION', `topic name '${name}' is not allowed`);
  if (name.length > TOPIC_NAME_MAX_LENGTH) throw new RunnelError('INVALID_TOPIC_EXCEPTION', `topic name is ${name.length} characters; the limit is ${TOPIC_NAME_MAX_LENGTH}`);
  if (!TOPIC_NAME.test(name)) throw new RunnelError('INVALID_TOPIC_EXCEPTION', `topic name '${name}' may contain only ASCII letters, digits, '.', '_' and '-'`);
}

export interface LogManagerOptions {
  logDir: string;
  defaults: LogSettings;
  retentionCheckIntervalMs: number;
  logger: Logger;
}

export class LogManager {
  private readonly store: TopicStore;
  private readonly topics = new Map<string, TopicRecord>();
  private readonly partitions = new Map<string, Partition>();
  private retentionTimer: NodeJS.Timeout | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private flushing = false;

  constructor(private readonly options: LogManagerOptions) {
    this.store = new TopicStore(options.logDir);
  }

  async start(): Promise<void> {
    mkdirSync(this.options.logDir, { recursive: true });
    this.removeDeletedDirectories();
    for (const topic of this.store.load()) {
      this.topics.set(topic.name, topic);
      await this.openPartitions(topic);
    }
    this.retentionTimer = setInterval(() => this.applyRetention(), this.options.retentionCheckIntervalMs);
    this.retentionTimer.unref();
    this.scheduleTimedFlush();
  }

  async stop(): Promise<void> {
    clearInterval(this.retentionTimer);
    clearInterval(this.flushTimer);
    await Promise.all([...this.partitions.values()].map((partition) => partition.log.close()));
    this.partitions.clear();
  }

  topicNames(): string[] {
    return [...this.topics.keys()].sort();
  }

  topic(name: string): TopicRecord | undefined {
    return this.topics.get(name);
  }

  partition(topic: string, index: number): Partition | undefined {
    return this.partitions.get(`${topic}-${index}`);
  }

  allPartitions(): Partition[] {
    return [...this.partitions.values()];
  }

  /** Validates a topic creation; throws RunnelError with the Kafka error for the first problem. */
  validateNewTopic(name: string, partitions: number, replicationFactor: number, configs: Record<string, string>, liveBrokers: number): void {
    validateTopicName(name);
    if (this.topics.has(name)) throw new RunnelError('TOPIC_ALREADY_EXISTS', `topic '${name}' already exists`);
    if (!Number.isInteger(partitions) || partitions < 1) throw new RunnelError('INVALID_PARTITIONS', `number of partitions must be at least 1, got ${partitions}`);
    if (partitions > PARTITIONS_PER_TOPIC_MAX) throw new RunnelError('INVALID_PARTITIONS', `number of partitions ${partitions} is over the limit of ${PARTITIONS_PER_TOPIC_MAX}`);
    if (!Number.isInteger(replicationFactor) || replicationFactor < 1) throw new RunnelError('INVALID_REPLICATION_FACTOR', `replication factor must be at least 1, got ${replicationFactor}`);
    if (replicationFactor > liveBrokers) {
      throw new RunnelError('INVALID_REPLICATION_FACTOR', `replication factor ${replicationFactor} is larger than the ${liveBrokers} available broker(s)`);
    }
    try {
      parseTopicConfigs(configs);
    } catch (error) {
      throw new RunnelError('INVALID_CONFIG', (error as Error).message);
    }
  }

  async createTopic(name: string, partitions: number, replicationFactor: number, configs: Record<string, string>): Promise<TopicRecord> {
    const record: TopicRecord = { name, topicId: randomUUID(), partitions, replicationFactor, configs, leaderEpoch: 0, createdAtMs: Date.now() };
    await this.openPartitions(record);
    this.topics.set(name, record);
    this.store.save([...this.topics.values()]);
    this.options.logger.info({ topic: name, partitions, replicationFactor, configs }, 'topic created');
    return record;
  }

  /**
   * Forgets the topic first (so a crash mid-way cannot resurrect it), then renames each partition
   * directory out of the way and deletes it.
   */
  async deleteTopic(name: string): Promise<Partition[]> {
    const record = this.topics.get(name);
    if (record === undefined) throw new RunnelError('UNKNOWN_TOPIC_OR_PARTITION', `topic '${name}' does not exist`);
    this.topics.delete(name);
    this.store.save([...this.topics.values()]);
    const removed: Partition[] = [];
    for (let index = 0; index < record.partitions; index++) {
      const partition = this.partitions.get(`${name}-${index}`);
      if (partition === undefined) continue;
      this.partitions.delete(partition.name);
      removed.push(partition);
      await partition.log.close();
      const doomed = join(this.options.logDir, `${partition.name}.${randomUUID().replaceAll('-', '')}${DELETED_SUFFIX}`);
      renameSync(partition.log.dir, doomed);
      rmSync(doomed, { recursive: true, force: true });
    }
    this.options.logger.info({ topic: name }, 'topic deleted');
    return removed;
  }

  settingsFor(topic: TopicRecord): LogSettings {
    return withTopicOverrides(this.options.defaults, topic.configs);
  }

  private async openPartitions(topic: TopicRecord): Promise<void> {
    const settings = this.settingsFor(topic);
    for (let index = 0; index < topic.partitions; index++) {
      const dir = join(this.options.logDir, `${topic.name}-${index}`);
      const log = await PartitionLog.open(dir, settings, { logger: this.options.logger.child({ partition: `${topic.name}-${index}` }) });
      this.partitions.set(`${topic.name}-${index}`, new Partition(topic.name, index, log, topic.leaderEpoch));
    }
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

  /** Runs retention over every partition; returns how many segments were deleted. */
  applyRetention(): number {
    let deleted = 0;
    for (const partition of this.partitions.values()) {
      try {
        const count = partition.log.deleteRetainedSegments();
        if (count > 0) {
          deleted += count;
          this.options.logger.info({ partition: partition.name, segments: count, logStartOffset: partition.log.logStartOffset }, 'retention deleted segments');
        }
      } catch (error) {
        this.options.logger.error({ err: error, partition: partition.name }, 'retention failed');
      }
    }
    return deleted;
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
