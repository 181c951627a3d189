import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The metrics an operator watches on a broker, in a registry of its own (tests run several nodes in one process). */
export class BrokerMetrics {
  readonly registry = new Registry();
  readonly bytesIn = new Counter({ name: 'runnel_bytes_in_total', help: 'Record batch bytes appended as leader', registers: [this.registry] });
  readonly bytesOut = new Counter({ name: 'runnel_bytes_out_total', help: 'Record batch bytes returned to fetches', registers: [this.registry] });
  readonly replicationBytesOut = new Counter({ name: 'runnel_replication_bytes_out_total', help: 'Record batch bytes sent to followers', registers: [this.registry] });
  readonly replicationBytesIn = new Counter({ name: 'runnel_replication_bytes_in_total', help: 'Record batch bytes appended as follower', registers: [this.registry] });
  readonly underReplicatedPartitions = new Gauge({ name: 'runnel_under_replicated_partitions', help: 'Partitions led here whose ISR is smaller than their replica set', registers: [this.registry] });
  readonly isrChanges = new Counter({ name: 'runnel_isr_changes_total', help: 'ISR changes this broker asked the controller for, by kind', labelNames: ['kind'], registers: [this.registry] });
  readonly recordsIn = new Counter({ name: 'runnel_records_in_total', help: 'Records appended as leader', registers: [this.registry] });
  readonly requests = new Counter({ name: 'runnel_requests_total', help: 'Requests by API', labelNames: ['api'], registers: [this.registry] });
  readonly errors = new Counter({ name: 'runnel_partition_errors_total', help: 'Per-partition errors by API and Kafka error code', labelNames: ['api', 'error'], registers: [this.registry] });
  readonly requestSeconds = new Histogram({
    name: 'runnel_request_duration_seconds',
    help: 'Time from request arrival to response, by API',
    labelNames: ['api'],
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

  constructor(defaultMetrics = true) {
    if (defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'runnel_process_' });
  }
}
