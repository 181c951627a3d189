// The coordinator's OffsetsLog on this broker's replicas of __consumer_offsets: appends go through
// the ReplicaManager like any acks=all produce (so they are replicated and survive the leader), and
// a load reads the leader's own log.
import { RunnelError, batchSize, decodeRecords, encodeRecordBatch, listBatches } from '@runnel/common';
import type { LogManager } from '../logManager.js';
import type { ReplicaManager } from '../replicaManager.js';
import { OFFSETS_TOPIC, type OffsetsLog, type OffsetsRecord } from './groupCoordinator.js';

/** Bytes read per step of a load; the loop yields between steps. */
const LOAD_READ_BYTES = 1024 * 1024;

export class ReplicatedOffsetsLog implements OffsetsLog {
  constructor(
    private readonly logs: LogManager,
    private readonly replicas: ReplicaManager,
    /** How long an append waits for every in-sync replica (offsets.commit.timeout.ms). */
    private readonly commitTimeoutMs: number,
    private readonly topic: string = OFFSETS_TOPIC,
  ) {}

  async append(partition: number, records: readonly OffsetsRecord[]): Promise<void> {
    const batch = encodeRecordBatch(records.map((record) => ({ key: record.key, value: record.value })));
    const [result] = await this.replicas.produce(-1, [{ topic: this.topic, partition, records: batch }], this.commitTimeoutMs);
    if (result === undefined) throw new RunnelError('UNKNOWN_SERVER_ERROR', `no produce result for ${this.topic}-${partition}`);
    if (result.errorCode !== 0) throw RunnelError.fromCode(result.errorCode, result.errorMessage);
  }

  /**
   * Every record up to the log end as the load starts: a leader's whole log is committed or will
   * be (only followers truncate), so the coordinator may act on all of it, as Kafka's does.
   */
  async *readAll(partition: number): AsyncIterable<OffsetsRecord> {
    const replica = this.logs.partition(this.topic, partition);
    if (replica === undefined) throw new RunnelError('NOT_COORDINATOR', `this broker holds no replica of ${this.topic}-${partition}`);
    const end = replica.log.logEndOffset;
    let offset = replica.log.logStartOffset;
    while (offset < end) {
      const { records, nextOffset } = replica.log.read(offset, LOAD_READ_BYTES, { maxOffset: end });
      if (nextOffset <= offset) break;
      for (const { position, header } of listBatches(records)) {
        const batch = records.subarray(position, position + batchSize(header));
        for (const record of decodeRecords(batch)) {
          if (record.offset < offset) continue;
          yield { key: record.key ?? Buffer.alloc(0), value: record.value };
        }
      }
      offset = nextOffset;
      // A large partition loads over many turns of the event loop, not in one.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}
