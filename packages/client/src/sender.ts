// The sender: takes closed batches from the accumulator, groups them by the partition leader's
// broker into one ProduceRequest per broker (many partitions, up to maxRequestBytes), keeps at
// most maxInFlightRequests requests per connection, and settles each batch from its partition's
// result: resolve, retry after a backoff, or reject.
import { RunnelError, type ClientApi } from '@runnel/common';
import type { PartitionQueue, ProducerBatch, RecordAccumulator } from './accumulator.js';
import { backoffMs } from './backoff.js';
import type { Cluster } from './cluster.js';
import type { BrokerConnection } from './connection.js';
import { needsMetadataRefresh } from './errors.js';

export interface SenderOptions {
  acks: number;
  requestTimeoutMs: number;
  retries: number;
  retryBackoffMs: number;
  retryBackoffMaxMs: number;
  deliveryTimeoutMs: number;
  maxRequestBytes: number;
  /** Hears each retriable error a partition's batches will be sent again after (see ProducerOptions.onRetriableError). */
  onRetriableError?: (error: RunnelError, topic: string, partition: number) => void;
}

interface Entry {
  queue: PartitionQueue;
  batches: ProducerBatch[];
}

/** Grace on top of the broker's own timeout before the client gives up on an answer. */
const RESPONSE_GRACE_MS = 1000;

export class Sender {
  private scheduled = false;
  private wakeTimer: NodeJS.Timeout | null = null;
  private wakeAtMs = Infinity;
  private stopped = false;
  private readonly run = (): void => {
    this.scheduled = false;
    if (!this.stopped) this.drain();
  };

  /** Set while a flush waits: open batches are closed and sent without lingering. */
  flushing = 0;

  constructor(
    private readonly accumulator: RecordAccumulator,
    private readonly cluster: Cluster,
    private readonly options: SenderOptions,
  ) {}

  /** Runs the sender once on the next turn of the event loop; many calls in one turn run it once. */
  wake(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(this.run);
  }

  stop(): void {
    this.stopped = true;
    if (this.wakeTimer !== null) clearTimeout(this.wakeTimer);
    this.wakeTimer = null;
  }

  private drain(): void {
    const nowMs = Date.now();
    if (this.flushing > 0) this.accumulator.closeAll();
    else this.accumulator.closeExpired(nowMs);
    let nextWakeMs = Infinity;
    const byConnection = new Map<BrokerConnection, PartitionQueue[]>();
    for (const queue of this.accumulator.sendable) {
      if (queue.inFlight) continue;
      this.expireBatches(queue, nowMs);
      if (queue.batches.length === 0) {
        this.accumulator.sendable.delete(queue);
        continue;
      }
      if (queue.retryAtMs > nowMs) {
        nextWakeMs = Math.min(nextWakeMs, queue.retryAtMs, queue.batches[0]!.createdMs + this.options.deliveryTimeoutMs);
        continue;
      }
      const connection = this.leaderOf(queue, nowMs);
      if (connection === null) {
        nextWakeMs = Math.min(nextWakeMs, queue.retryAtMs);
        continue;
      }
      const queues = byConnection.get(connection);
      if (queues === undefined) byConnection.set(connection, [queue]);
      else queues.push(queue);
    }
    if (byConnection.size > 0 && this.flushing === 0) this.piggyback(byConnection, nowMs);
    for (const [connection, queues] of byConnection) this.sendTo(connection, queues);
    this.cluster.refreshIfWanted();
    this.scheduleWake(nextWakeMs, nowMs);
  }

  /**
   * Like Kafka's drain: once a request goes to a broker anyway, lingering batches of other
   * partitions it leads ride along instead of waiting for their own timer and request.
   */
  private piggyback(byConnection: Map<BrokerConnection, PartitionQueue[]>, nowMs: number): void {
    for (const queue of [...this.accumulator.lingering]) {
      if (queue.inFlight || queue.retryAtMs > nowMs || this.cluster.leaderId(queue.topic, queue.partition) < 0) continue;
      let connection: BrokerConnection;
      try {
        connection = this.cluster.leaderConnection(queue.topic, queue.partition);
      } catch {
        continue;
      }
      const queues = byConnection.get(connection);
      if (queues === undefined) continue;
      this.accumulator.close(queue);
      if (!queues.includes(queue)) queues.push(queue);
    }
  }

  private leaderOf(queue: PartitionQueue, nowMs: number): BrokerConnection | null {
    try {
      return this.cluster.leaderConnection(queue.topic, queue.partition);
    } catch (error) {
      // No leader known: ask for metadata and look again after a backoff.
      const head = queue.batches[0]!;
      head.lastError = error instanceof RunnelError ? error : new RunnelError('LEADER_NOT_AVAILABLE', String(error));
      this.cluster.requestRefresh();
      queue.retryAtMs = nowMs + this.options.retryBackoffMs;
      return null;
    }
  }

  /** Fills the connection's window with requests, each carrying as many partitions as fit. */
  private sendTo(connection: BrokerConnection, queues: PartitionQueue[]): void {
    let next = 0;
    while (next < queues.length && connection.produce.hasWindowSlot()) {
      const entries: Entry[] = [];
      let requestBytes = 0;
      while (next < queues.length) {
        const queue = queues[next]!;
        const batches = this.takeBatches(queue, this.options.maxRequestBytes - requestBytes, entries.length === 0);
        if (batches.length === 0) break;
        for (const batch of batches) requestBytes += batch.encoded!.length;
        entries.push({ queue, batches });
        next++;
      }
      this.send(connection, entries);
    }
  }

  /** Oldest batches of a queue that fit in `roomBytes`; at least one when `first` (a big batch goes alone). */
  private takeBatches(queue: PartitionQueue, roomBytes: number, first: boolean): ProducerBatch[] {
    const limit = queue.soloBatches > 0 ? 1 : queue.batches.length;
    let count = 0;
    let bytes = 0;
    while (count < limit) {
      const size = queue.batches[count]!.encoded!.length;
      if (bytes + size > roomBytes && !(first && count === 0)) break;
      bytes += size;
      count++;
    }
    if (count === 0) return [];
    if (queue.soloBatches > 0) queue.soloBatches--;
    const batches = queue.batches.splice(0, count);
    if (queue.batches.length === 0) this.accumulator.sendable.delete(queue);
    queue.inFlight = true;
    return batches;
  }

  private send(connection: BrokerConnection, entries: Entry[]): void {
    const partitions: ClientApi.PartitionRecords[] = entries.map(({ queue, batches }) => {
      for (const batch of batches) batch.attempts++;
      const records = batches.length === 1 ? batches[0]!.encoded! : Buffer.concat(batches.map((batch) => batch.encoded!));
      return { topic: queue.topic, partition: queue.partition, records };
    });
    const request: ClientApi.ProduceRequest = { acks: this.options.acks, timeoutMs: this.options.requestTimeoutMs, partitions };
    if (this.options.acks === 0) {
      connection.produce.writeOnly(request).then(
        () => this.onWritten(entries),
        (error: unknown) => this.onFailed(entries, error),
      );
      return;
    }
    connection.produce.request(request, this.options.requestTimeoutMs + RESPONSE_GRACE_MS).then(
      (response) => this.onResponse(entries, response),
      (error: unknown) => this.onFailed(entries, error),
    );
  }

  private onWritten(entries: Entry[]): void {
    for (const { queue, batches } of entries) {
      for (const batch of batches) this.accumulator.complete(batch, -1, -1);
      queue.inFlight = false;
    }
    this.wake();
  }

  private onResponse(entries: Entry[], response: ClientApi.ProduceResponse__Output): void {
    const results = new Map<string, ClientApi.PartitionProduceResult__Output>();
    for (const result of response.partitions) results.set(`${result.topic}\u0000${result.partition}`, result);
    for (const entry of entries) {
      const { queue, batches } = entry;
      const result = results.get(`${queue.topic}\u0000${queue.partition}`);
      queue.inFlight = false;
      if (result === undefined) {
        this.retryOrFail(entry, new RunnelError('UNKNOWN_SERVER_ERROR', `the broker's answer has no result for ${queue.topic}-${queue.partition}`));
      } else if (result.errorCode !== 0) {
        const detail = `produce to ${queue.topic}-${queue.partition}${result.errorMessage ? `: ${result.errorMessage}` : ''}`;
        this.retryOrFail(entry, RunnelError.fromCode(result.errorCode, detail));
      } else {
        let offset = result.baseOffset;
        for (const batch of batches) {
          this.accumulator.complete(batch, offset, result.logAppendTime);
          offset += batch.records.length;
        }
      }
    }
    this.wake();
  }

  private onFailed(entries: Entry[], error: unknown): void {
    const failure = error instanceof RunnelError ? error : new RunnelError('NETWORK_EXCEPTION', String((error as Error)?.message ?? error));
    if (failure.errorName === 'NETWORK_EXCEPTION' || failure.errorName === 'REQUEST_TIMED_OUT') this.cluster.requestRefresh();
    for (const entry of entries) {
      entry.queue.inFlight = false;
      this.retryOrFail(entry, failure);
    }
    this.wake();
  }

  /**
   * A retriable error puts the batches back at the head of their queue (order kept) for another
   * try after a backoff, until retries or deliveryTimeoutMs run out. A non-retriable error on a
   * request that carried several batches of the partition sends them again one by one, so only
   * the batch the broker refuses fails.
   */
  private retryOrFail(entry: Entry, error: RunnelError): void {
    const { queue, batches } = entry;
    const nowMs = Date.now();
    if (!error.retriable && batches.length > 1) {
      queue.batches.unshift(...batches);
      queue.soloBatches = batches.length;
      this.accumulator.sendable.add(queue);
      return;
    }
    const retry: ProducerBatch[] = [];
    for (const batch of batches) {
      batch.lastError = error;
      if (!error.retriable) this.accumulator.fail(batch, error);
      else if (batch.attempts > this.options.retries) this.accumulator.fail(batch, error);
      else if (nowMs - batch.createdMs >= this.options.deliveryTimeoutMs) this.accumulator.fail(batch, this.timeoutError(batch, nowMs));
      else retry.push(batch);
    }
    if (retry.length === 0) return;
    this.options.onRetriableError?.(error, queue.topic, queue.partition);
    if (needsMetadataRefresh(error.code)) this.cluster.requestRefresh();
    queue.batches.unshift(...retry);
    queue.retryAtMs = nowMs + backoffMs(retry[0]!.attempts, this.options.retryBackoffMs, this.options.retryBackoffMaxMs);
    this.accumulator.sendable.add(queue);
  }

  /** Fails batches that waited longer than deliveryTimeoutMs (no leader, or retries that kept failing). */
  private expireBatches(queue: PartitionQueue, nowMs: number): void {
    while (queue.batches.length > 0 && nowMs - queue.batches[0]!.createdMs >= this.options.deliveryTimeoutMs) {
      const batch = queue.batches.shift()!;
      this.accumulator.fail(batch, this.timeoutError(batch, nowMs));
    }
  }

  private timeoutError(batch: ProducerBatch, nowMs: number): RunnelError {
    const { topic, partition } = batch.queue;
    const last = batch.lastError === null ? '' : `; last error: ${batch.lastError.message}`;
    return new RunnelError(
      'REQUEST_TIMED_OUT',
      `expiring ${batch.records.length} record(s) for ${topic}-${partition}: ${nowMs - batch.createdMs} ms passed since batch creation (deliveryTimeoutMs ${this.options.deliveryTimeoutMs})${last}`,
    );
  }

  private scheduleWake(atMs: number, nowMs: number): void {
    if (atMs === Infinity || atMs >= this.wakeAtMs) return;
    if (this.wakeTimer !== null) clearTimeout(this.wakeTimer);
    this.wakeAtMs = atMs;
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = null;
      this.wakeAtMs = Infinity;
      this.wake();
    }, Math.max(0, atMs - nowMs));
  }
}
