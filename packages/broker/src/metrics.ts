import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The metrics an operator watches on a broker, in a registry of its own (tests run several nodes in one process). */
export class BrokerMetrics {
  readonly registry = new Registry();
  readonly bytesIn = new Counter({ name: 'runnel_bytes_in_total', help: 'Record batch bytes appended as leader', registers: [this.registry] });
  readonly bytesOut = new Counter({ name: 'runnel_bytes_out_total', help: 'Record batch bytes returned to fetches', registers: [this.registry] });
  readonly replicationBytesOut = new Counter({ name: 'runnel_replication_bytes_out_total', help: 'Record batch bytes sent to followers', registers: [this.registry] });
  readonly replicationBytesIn = new Counter({ name: 'runnel_replication_bytes_in_total', help: 'Record batch bytes appended as follower', registers: [this.registry] });
  readonly replicationThrottledBytes = new Counter({
    name: 'runnel_replication_throttled_bytes_total',
    help: 'Bytes copied to replicas a reassignment is adding, which count against the replication throttle (side: leader sent, follower fetched)',
    labelNames: ['side'] as const,
    registers: [this.registry],
  });
  readonly underReplicatedPartitions = new Gauge({ name: 'runnel_under_replicated_partitions', help: 'Partitions led here whose ISR is smaller than their replica set', registers: [this.registry] });
  readonly isrChanges = new Counter({ name: 'runnel_isr_changes_total', help: 'ISR changes this broker asked the controller for, by kind', labelNames: ['kind'], registers: [this.registry] });
  readonly recordsIn = new Counter({ name: 'runnel_records_in_total', help: 'Records appended as leader', registers: [this.registry] });
  readonly requests = new Counter({ name: 'runnel_requests_total', help: 'Requests by API and listener (GRPC or PLAINTEXT, the Kafka door)', labelNames: ['api', 'listener'], registers: [this.registry] });
  readonly errors = new Counter({ name: 'runnel_partition_errors_total', help: 'Per-partition errors by API and Kafka error code', labelNames: ['api', 'error'], registers: [this.registry] });
  readonly requestSeconds = new Histogram({
    name: 'runnel_request_duration_seconds',
    help: 'Time from request arrival to response, by API and listener (GRPC or PLAINTEXT, the Kafka door)',
    labelNames: ['api', 'listener'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly requestsWaitingForMemory = new Counter({ name: 'runnel_requests_waiting_for_memory_total', help: 'Requests that waited for room under queued.max.request.bytes (their stream stopped reading meanwhile)', registers: [this.registry] });
  readonly requestMemoryPeakBytes = new Gauge({ name: 'runnel_request_memory_peak_bytes', help: 'The most bytes of unanswered requests held at once (bounded by queued.max.request.bytes)', registers: [this.registry] });
  readonly offlineReplicas = new Gauge({ name: 'runnel_offline_replicas', help: 'Replicas offline on this node (their log failed, or they could not take their role) until it restarts', registers: [this.registry] });
  readonly partitions = new Gauge({ name: 'runnel_partitions', help: 'Partitions hosted by this node', registers: [this.registry] });
  readonly logSizeBytes = new Gauge({ name: 'runnel_log_size_bytes', help: 'Bytes of all partition logs on this node', registers: [this.registry] });
  readonly cleanerBytesCleaned = new Counter({ name: 'runnel_log_cleaner_bytes_cleaned_total', help: 'Bytes of segments the log cleaner rewrote (their size before cleaning)', registers: [this.registry] });
  readonly cleanerBytesReclaimed = new Counter({ name: 'runnel_log_cleaner_bytes_reclaimed_total', help: 'Bytes the log cleaner removed from segments', registers: [this.registry] });
  readonly cleanerRecordsRemoved = new Counter({ name: 'runnel_log_cleaner_records_removed_total', help: 'Records the log cleaner removed (superseded by a later record of their key, keyless, or expired tombstones)', registers: [this.registry] });
  readonly cleanerLastPassSeconds = new Gauge({ name: 'runnel_log_cleaner_last_pass_duration_seconds', help: 'How long the last cleaner pass over every compacted log took', registers: [this.registry] });
  readonly cleanerMaxDirtyRatio = new Gauge({ name: 'runnel_log_cleaner_max_dirty_ratio', help: 'The largest dirty ratio (uncleaned / cleanable bytes) of a compacted log, seen by the last cleaner pass before it cleaned', registers: [this.registry] });
  readonly segmentsDeleted = new Counter({ name: 'runnel_log_segments_deleted_total', help: 'Segments deleted by retention (their files are removed file.delete.delay.ms later)', registers: [this.registry] });

  // Kafka's and Redpanda's names for what operators alert on (kafka_server_replicamanager_*,
  // kafka_controller_*, kafka_log_log_size, redpanda_storage_disk_*), with Runnel's prefix.
  readonly isrShrinks = new Counter({ name: 'runnel_isr_shrinks_total', help: 'ISR shrinks this broker asked the controller for (Kafka IsrShrinksPerSec)', registers: [this.registry] });
  readonly isrExpands = new Counter({ name: 'runnel_isr_expands_total', help: 'ISR expands this broker asked the controller for (Kafka IsrExpandsPerSec)', registers: [this.registry] });
  readonly underMinIsrPartitions = new Gauge({ name: 'runnel_under_min_isr_partitions', help: 'Partitions led here whose ISR is smaller than min.insync.replicas (Kafka UnderMinIsrPartitionCount)', registers: [this.registry] });
  readonly leaderPartitions = new Gauge({ name: 'runnel_leader_partitions', help: 'Partitions led by this broker (Kafka LeaderCount)', registers: [this.registry] });
  readonly offlinePartitions = new Gauge({ name: 'runnel_offline_partitions', help: 'Partitions without a leader; reported by the active controller, 0 elsewhere (Kafka OfflinePartitionsCount)', registers: [this.registry] });
  readonly activeController = new Gauge({ name: 'runnel_active_controller', help: '1 on the active controller, else 0 (Kafka ActiveControllerCount)', registers: [this.registry] });
  readonly raftTerm = new Gauge({ name: 'runnel_raft_term', help: 'The metadata quorum\'s Raft term as this controller knows it', registers: [this.registry] });
  readonly raftCommitLatencySeconds = new Histogram({
    name: 'runnel_raft_commit_latency_seconds',
    help: 'On the active controller: time from a metadata record\'s append to the leader\'s Raft log to its commit (Kafka raft-metrics commit-latency)',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly raftCommitIndex = new Gauge({ name: 'runnel_raft_commit_index', help: 'The metadata quorum\'s Raft commit index as this controller knows it', registers: [this.registry] });
  readonly topicBytesIn = new Counter({ name: 'runnel_topic_bytes_in_total', help: 'Record batch bytes appended as leader, by topic (Kafka BytesInPerSec)', labelNames: ['topic'], registers: [this.registry] });
  readonly topicBytesOut = new Counter({ name: 'runnel_topic_bytes_out_total', help: 'Record batch bytes returned to consumers\' fetches, by topic (Kafka BytesOutPerSec)', labelNames: ['topic'], registers: [this.registry] });
  readonly topicRecordsIn = new Counter({ name: 'runnel_topic_records_in_total', help: 'Records appended as leader, by topic (Kafka MessagesInPerSec)', labelNames: ['topic'], registers: [this.registry] });
  readonly topicRecordsOut = new Counter({ name: 'runnel_topic_records_out_total', help: 'Records in the batches returned to consumers\' fetches, by topic', labelNames: ['topic'], registers: [this.registry] });
  readonly partitionLogSizeBytes = new Gauge({ name: 'runnel_log_partition_size_bytes', help: 'Bytes of one partition\'s log on this node (Kafka kafka_log_log_size)', labelNames: ['topic', 'partition'], registers: [this.registry] });
  readonly diskFreeBytes = new Gauge({ name: 'runnel_storage_disk_free_bytes', help: 'Free bytes (for an unprivileged user) of the log directory\'s filesystem (Redpanda redpanda_storage_disk_free_bytes)', registers: [this.registry] });
  readonly diskTotalBytes = new Gauge({ name: 'runnel_storage_disk_total_bytes', help: 'Size in bytes of the log directory\'s filesystem (Redpanda redpanda_storage_disk_total_bytes)', registers: [this.registry] });
  readonly diskFreeSpaceAlert = new Gauge({ name: 'runnel_storage_disk_free_space_alert', help: '0: enough free space; 1: under log.dir.min.free.bytes, no new replicas are placed here (Redpanda redpanda_storage_disk_free_space_alert)', registers: [this.registry] });
  readonly offlineLogDirs = new Gauge({ name: 'runnel_offline_log_dirs', help: 'Log directories offline since a write failed, until the broker restarts (Kafka OfflineLogDirectoryCount)', registers: [this.registry] });
  readonly followerLagOffsets = new Gauge({ name: 'runnel_follower_lag_offsets', help: 'How many offsets a follower is behind this leader\'s log end, by partition and replica', labelNames: ['topic', 'partition', 'replica'], registers: [this.registry] });
  /**
   * Set at each scrape from the lags the group coordinator works out (kafka-exporter's
   * kafka_consumergroup_lag, same labels); see group/groupLag.ts.
   */
  readonly consumerGroupLag = new Gauge({
    name: 'runnel_consumergroup_lag',
    help: 'High watermark minus the committed offset, per consumer group and partition; reported by the group\'s coordinator only',
    labelNames: ['consumergroup', 'topic', 'partition'],
    registers: [this.registry],
  });
  /** Works out the consumer group lags at scrape time (it asks other brokers for high watermarks); set by Node. */
  private groupLags: () => Promise<ReadonlyArray<{ group: string; topic: string; partition: number; lag: number }>> = async () => [];
  /** Refreshes the gauges read from the node's state; set by Node, run before each scrape. */
  private refresh: () => void = () => undefined;
  /** The topics the per-topic series have a label value for. */
  private readonly labelledTopics = new Set<string>();

  constructor(defaultMetrics = true) {
    if (defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'runnel_process_' });
  }

  onScrape(refresh: () => void): void {
    this.refresh = refresh;
  }

  onScrapeGroupLags(lags: () => Promise<ReadonlyArray<{ group: string; topic: string; partition: number; lag: number }>>): void {
    this.groupLags = lags;
  }

  /** The Prometheus text of every metric, with the state gauges refreshed first. */
  async scrape(): Promise<string> {
    this.refresh();
    const lags = await this.groupLags();
    // Rebuilt each time: a group that moved to another coordinator, or was deleted, leaves no series.
    this.consumerGroupLag.reset();
    for (const { group, topic, partition, lag } of lags) this.consumerGroupLag.set({ consumergroup: group, topic, partition: String(partition) }, lag);
    return this.registry.metrics();
  }

  /** Counts one produce's append, in total and for its topic. */
  countIn(topic: string, bytes: number, records: number): void {
    this.bytesIn.inc(bytes);
    this.recordsIn.inc(records);
    this.labelledTopics.add(topic);
    this.topicBytesIn.inc({ topic }, bytes);
    this.topicRecordsIn.inc({ topic }, records);
  }

  /** Counts what one partition's fetch answer returns, in total and for its topic. */
  countOut(topic: string, batches: Buffer): void {
    if (batches.length === 0) return;
    this.bytesOut.inc(batches.length);
    this.labelledTopics.add(topic);
    this.topicBytesOut.inc({ topic }, batches.length);
    this.topicRecordsOut.inc({ topic }, recordsIn(batches));
  }

  /** Drops the per-topic series of topics with no replica on this node any more, so labels stay bounded. */
  forgetTopicsExcept(hosted: ReadonlySet<string>): void {
    for (const topic of this.labelledTopics) {
      if (hosted.has(topic)) continue;
      for (const counter of [this.topicBytesIn, this.topicBytesOut, this.topicRecordsIn, this.topicRecordsOut]) counter.remove({ topic });
      this.labelledTopics.delete(topic);
    }
  }
}

/** Byte offsets in a record batch v2 header: batchLength after baseOffset, recordCount last. */
const BATCH_LENGTH_AT = 8;
const RECORD_COUNT_AT = 57;
const BATCH_HEADER_BYTES = 61;

/** The records in a run of record batches, from their headers (a torn last batch counts nothing). */
function recordsIn(batches: Buffer): number {
  let records = 0;
  for (let at = 0; at + BATCH_HEADER_BYTES <= batches.length; ) {
    records += batches.readInt32BE(at + RECORD_COUNT_AT);
    at += 12 + batches.readInt32BE(at + BATCH_LENGTH_AT);
  }
  return records;
}
