// `runnel bench produce|consume`: throughput and latency figures through a real node.
import { randomBytes } from 'node:crypto';
import { SingleBar, Presets } from 'cli-progress';
import * as hdr from 'hdr-histogram-js';
import { Admin, Consumer, Producer, type ProducerOptions } from '@runnel/client';
import { RunnelError, type CompressionCodec } from '@runnel/common';
import { printJson, printLine } from '../output.js';

export interface BenchProduceOptions {
  topic: string;
  records: number;
  recordSize: number;
  batchSize: number;
  lingerMs: number;
  acks: ProducerOptions['acks'];
  partitions: number;
  /** When the topic is created; the cluster's default.replication.factor when absent. */
  replicationFactor?: number;
  rate?: number;
  compression: CompressionCodec;
  json: boolean;
}

export interface BenchConsumeOptions {
  topic: string;
  records: number;
  json: boolean;
}

export interface BenchResult {
  records: number;
  bytes: number;
  seconds: number;
  records_per_s: number;
  mb_per_s: number;
  p50_ms: number;
  p99_ms: number;
  p999_ms: number;
  max_ms: number;
  errors: number;
}

/**
 * Unacknowledged sends the benchmark allows before it waits: about the producer's default
 * bufferMemory (32 MiB) of records, so latency figures measure the pipeline rather than a queue
 * of the benchmark's own making.
 */
function inFlightMax(recordSize: number): number {
  return Math.min(100_000, Math.max(1_000, Math.floor((32 * 1024 * 1024) / recordSize)));
}

function summarize(records: number, bytes: number, startedNs: bigint, histogram: hdr.Histogram, errors: number): BenchResult {
  const seconds = Number(process.hrtime.bigint() - startedNs) / 1e9;
  const ms = (percentile: number) => Number((histogram.getValueAtPercentile(percentile) / 1000).toFixed(3));
  return {
    records,
    bytes,
    seconds: Number(seconds.toFixed(3)),
    records_per_s: Math.round(records / seconds),
    mb_per_s: Number((bytes / seconds / 1e6).toFixed(2)),
    p50_ms: ms(50),
    p99_ms: ms(99),
    p999_ms: ms(99.9),
    max_ms: Number((histogram.maxValue / 1000).toFixed(3)),
    errors,
  };
}

function report(kind: string, result: BenchResult, json: boolean): void {
  if (json) {
    printJson({ bench: kind, ...result });
    return;
  }
  // produce: send() to acknowledgement; consume: the record's timestamp to its arrival (end to
  // end, meaningful while a producer is running).
  const latency = kind === 'consume' ? 'end-to-end latency' : 'ack latency';
  printLine(
    `${kind}: ${result.records} records, ${(result.bytes / 1e6).toFixed(1)} MB in ${result.seconds} s: ` +
      `${result.records_per_s} records/s, ${result.mb_per_s} MB/s; ${latency} p50 ${result.p50_ms} ms, p99 ${result.p99_ms} ms, ` +
      `p99.9 ${result.p999_ms} ms, max ${result.max_ms} ms; errors ${result.errors}`,
  );
}

function progressBar(total: number): SingleBar | undefined {
  if (!process.stderr.isTTY) return undefined;
  const bar = new SingleBar({ stream: process.stderr, format: ' {bar} {percentage}% | {value}/{total} records | {eta}s left' }, Presets.shades_classic);
  bar.start(total, 0);
  return bar;
}

async function ensureTopic(bootstrap: string, topic: string, partitions: number, replicationFactor = -1): Promise<void> {
  const admin = new Admin({ bootstrap, clientId: 'runnel-bench' });
  try {
    await admin.createTopics([{ name: topic, partitions, replicationFactor }]);
  } catch (error) {
    if (!(error instanceof RunnelError && error.errorName === 'TOPIC_ALREADY_EXISTS')) throw error;
  } finally {
    await admin.close();
  }
}

export async function benchProduce(bootstrap: string, options: BenchProduceOptions): Promise<BenchResult> {
  await ensureTopic(bootstrap, options.topic, options.partitions, options.replicationFactor);
  const producer = new Producer({ bootstrap, clientId: 'runnel-bench', acks: options.acks, batchSize: options.batchSize, lingerMs: options.lingerMs, compression: options.compression });
  const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
  const value = randomBytes(options.recordSize);
  const bar = progressBar(options.records);
  let acknowledged = 0;
  let errors = 0;
  let inFlight = 0;
  let wake: (() => void) | undefined;
  // One settle path per record, no extra promise: the benchmark's own cost stays out of the figures.
  const settled = () => {
    inFlight--;
    if ((acknowledged + errors) % 10_000 === 0) bar?.update(acknowledged + errors);
    if (wake !== undefined && inFlight < IN_FLIGHT_MAX / 2) {
      const resume = wake;
      wake = undefined;
      resume();
    }
  };
  const started = process.hrtime.bigint();
  const IN_FLIGHT_MAX = inFlightMax(options.recordSize);
  const startedMs = performance.now();
  const intervalMs = options.rate === undefined ? 0 : 1000 / options.rate;
  for (let i = 0; i < options.records; i++) {
    if (intervalMs > 0) {
      const aheadMs = startedMs + intervalMs * i - performance.now();
      if (aheadMs >= 1) await new Promise((resolve) => setTimeout(resolve, aheadMs));
    }
    if (inFlight >= IN_FLIGHT_MAX) await new Promise<void>((resolve) => (wake = resolve));
    const sentAtMs = performance.now();
    inFlight++;
    producer.send({ topic: options.topic, value }).then(
      () => {
        histogram.recordValue(Math.max(1, Math.round((performance.now() - sentAtMs) * 1000)));
        acknowledged++;
        settled();
      },
      () => {
        errors++;
        settled();
      },
    );
  }
  await producer.flush();
  while (inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 5));
  const result = summarize(acknowledged, acknowledged * options.recordSize, started, histogram, errors);
  bar?.stop();
  await producer.close();
  report('produce', result, options.json);
  return result;
}

export async function benchConsume(bootstrap: string, options: BenchConsumeOptions): Promise<BenchResult> {
  const consumer = new Consumer({ bootstrap, clientId: 'runnel-bench', autoOffsetReset: 'earliest', maxPollRecords: 100_000 });
  const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
  const bar = progressBar(options.records);
  let records = 0;
  let bytes = 0;
  const started = process.hrtime.bigint();
  try {
    const partitions = (await consumer.partitionsFor(options.topic)).map((partition) => ({ topic: options.topic, partition }));
    consumer.assign(partitions);
    await consumer.seekToBeginning(partitions);
    let idlePolls = 0;
    while (records < options.records) {
      const batch = await consumer.poll(1000);
      if (batch.length === 0 && ++idlePolls >= 10) throw new Error(`only ${records} of ${options.records} records arrived before the topic went quiet for 10 s`);
      if (batch.length > 0) idlePolls = 0;
      const now = Date.now();
      for (const record of batch) {
        // End-to-end latency: the record's create time to now (meaningful while a producer runs).
        histogram.recordValue(Math.max(1, (now - record.timestamp) * 1000));
        bytes += (record.value?.length ?? 0) + (record.key?.length ?? 0);
      }
      records += batch.length;
      bar?.update(Math.min(records, options.records));
    }
  } finally {
    bar?.stop();
    await consumer.close();
  }
  const result = summarize(records, bytes, started, histogram, 0);
  report('consume', result, options.json);
  return result;
}
