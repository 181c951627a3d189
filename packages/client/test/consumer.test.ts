import { RunnelError, encodeRecordBatch } from '@runnel/common';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { recordsFrom } from '../src/consumer.js';
import { Consumer, type ConsumerOptions, type ConsumerRecord } from '../src/index.js';
import { FakeCluster } from './fakeBroker.js';

/** Appends one batch of `count` records valued `${prefix}${i}` (i counting from `first`). */
function appendBatch(cluster: FakeCluster, topic: string, partition: number, count: number, first = 0, prefix = 'v'): void {
  const records = Array.from({ length: count }, (_, i) => ({ key: null, value: Buffer.from(`${prefix}${first + i}`), headers: [{ key: 'h', value: Buffer.from('x') }], timestamp: 1000 + first + i }));
  cluster.append(topic, partition, encodeRecordBatch(records));
}

async function pollUntil(consumer: Consumer, count: number, timeoutMs = 5000): Promise<ConsumerRecord[]> {
  const out: ConsumerRecord[] = [];
  const deadlineMs = Date.now() + timeoutMs;
  while (out.length < count && Date.now() < deadlineMs) out.push(...(await consumer.poll(200)));
  return out;
}

describe('Consumer against a fake broker', () => {
  let cluster: FakeCluster;
  const consumers: Consumer[] = [];

  beforeEach(async () => {
    cluster = await FakeCluster.start(2);
  });

  afterEach(async () => {
    await Promise.all(consumers.splice(0).map((consumer) => consumer.close()));
    await cluster.stop();
  });

  function consumer(options: Partial<ConsumerOptions> = {}): Consumer {
    const created = new Consumer({ bootstrap: cluster.bootstrap, requestTimeoutMs: 5000, maxWaitMs: 100, retryBackoffMs: 10, ...options });
    consumers.push(created);
    return created;
  }

  it('returns records from the position on, skipping earlier records of the first batch', async () => {
    cluster.createTopic('t', 1);
    appendBatch(cluster, 't', 0, 5, 0);
    appendBatch(cluster, 't', 0, 5, 5);
    appendBatch(cluster, 't', 0, 5, 10);
    const c = consumer();
    c.assign([{ topic: 't', partition: 0 }]);
    expect(c.assignment()).toEqual([{ topic: 't', partition: 0 }]);
    c.seek({ topic: 't', partition: 0 }, 7);
    const records = await pollUntil(c, 8);
    expect(records.map((record) => record.offset)).toEqual([7, 8, 9, 10, 11, 12, 13, 14]);
    expect(records[0]).toMatchObject({ topic: 't', partition: 0, key: null, timestamp: 1007, headers: { h: Buffer.from('x') } });
    expect(records[0]!.value!.toString()).toBe('v7');
    expect(c.position({ topic: 't', partition: 0 })).toBe(15);
    // The broker was asked from offset 7 and answered with the whole batch starting at 5.
    expect(cluster.fetchRequests[0]!.request.partitions[0]!.fetchOffset).toBe(7);
  });

  it('limits a poll to maxPollRecords and continues where it stopped', async () => {
    cluster.createTopic('many', 1);
    appendBatch(cluster, 'many', 0, 25);
    const c = consumer({ maxPollRecords: 10, autoOffsetReset: 'earliest' });
    c.assign([{ topic: 'many', partition: 0 }]);
    const first = await c.poll(2000);
    expect(first.map((record) => record.offset)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(c.position({ topic: 'many', partition: 0 })).toBe(10);
    const rest = await pollUntil(c, 15);
    expect(rest.map((record) => record.offset)).toEqual(Array.from({ length: 15 }, (_, i) => i + 10));
  });

  it('starts at the end by default (latest) and sees only new records', async () => {
    cluster.createTopic('late', 1);
    appendBatch(cluster, 'late', 0, 3, 0, 'old');
    const c = consumer();
    c.assign([{ topic: 'late', partition: 0 }]);
    expect(await c.poll(300)).toEqual([]);
    expect(c.position({ topic: 'late', partition: 0 })).toBe(3);
    appendBatch(cluster, 'late', 0, 2, 3, 'new');
    const records = await pollUntil(c, 2);
    expect(records.map((record) => record.value!.toString())).toEqual(['new3', 'new4']);
  });

  it('long-polls: a record appended during poll is returned by that poll', async () => {
    cluster.createTopic('wait', 1);
    const c = consumer({ maxWaitMs: 2000, autoOffsetReset: 'earliest' });
    c.assign([{ topic: 'wait', partition: 0 }]);
    setTimeout(() => appendBatch(cluster, 'wait', 0, 1), 150);
    const startedMs = Date.now();
    const records = await c.poll(3000);
    expect(records).toHaveLength(1);
    expect(Date.now() - startedMs).toBeLessThan(1500);
  });

  it('returns [] after timeoutMs when there is nothing', async () => {
    cluster.createTopic('empty', 1);
    const c = consumer({ autoOffsetReset: 'earliest' });
    c.assign([{ topic: 'empty', partition: 0 }]);
    const startedMs = Date.now();
    expect(await c.poll(250)).toEqual([]);
    expect(Date.now() - startedMs).toBeGreaterThanOrEqual(240);
  });

  it('resets to the log start after OFFSET_OUT_OF_RANGE with autoOffsetReset earliest', async () => {
    cluster.createTopic('retained', 1);
    appendBatch(cluster, 'retained', 0, 5, 0);
    appendBatch(cluster, 'retained', 0, 5, 5);
    cluster.truncateBefore('retained', 0, 5);
    const c = consumer({ autoOffsetReset: 'earliest' });
    c.assign([{ topic: 'retained', partition: 0 }]);
    c.seek({ topic: 'retained', partition: 0 }, 1);
    const records = await pollUntil(c, 5);
    expect(records.map((record) => record.offset)).toEqual([5, 6, 7, 8, 9]);
  });

  it('throws OFFSET_OUT_OF_RANGE with autoOffsetReset none', async () => {
    cluster.createTopic('strict', 1);
    appendBatch(cluster, 'strict', 0, 2);
    const c = consumer({ autoOffsetReset: 'none' });
    c.assign([{ topic: 'strict', partition: 0 }]);
    await expect(c.poll(100)).rejects.toMatchObject({ errorName: 'OFFSET_OUT_OF_RANGE' });
    c.seek({ topic: 'strict', partition: 0 }, 50);
    const error = (await pollUntil(c, 1).catch((e: unknown) => e)) as RunnelError;
    expect(error).toBeInstanceOf(RunnelError);
    expect(error.errorName).toBe('OFFSET_OUT_OF_RANGE');
    expect(error.message).toContain('strict-0');
  });

  it('sends one fetch per broker carrying all the partitions it leads', async () => {
    cluster.createTopic('spread', 4); // node 1 leads 0 and 2, node 2 leads 1 and 3
    for (let partition = 0; partition < 4; partition++) appendBatch(cluster, 'spread', partition, 3, 0, `p${partition}-`);
    const c = consumer({ autoOffsetReset: 'earliest' });
    c.assign([0, 1, 2, 3].map((partition) => ({ topic: 'spread', partition })));
    const records = await pollUntil(c, 12);
    expect(records).toHaveLength(12);
    for (let partition = 0; partition < 4; partition++) {
      expect(records.filter((record) => record.partition === partition).map((record) => record.offset)).toEqual([0, 1, 2]);
    }
    const first = new Map<number, number[]>();
    for (const { nodeId, request } of cluster.fetchRequests) if (!first.has(nodeId)) first.set(nodeId, request.partitions.map((entry) => entry.partition).sort());
    expect(first.get(1)).toEqual([0, 2]);
    expect(first.get(2)).toEqual([1, 3]);
  });

  it('seekToBeginning, seekToEnd and partitionsFor', async () => {
    cluster.createTopic('seeks', 3);
    appendBatch(cluster, 'seeks', 1, 4);
    const c = consumer();
    expect(await c.partitionsFor('seeks')).toEqual([0, 1, 2]);
    await expect(c.partitionsFor('nothing')).rejects.toMatchObject({ errorName: 'UNKNOWN_TOPIC_OR_PARTITION', message: expect.stringContaining("'nothing'") });
    const tp = { topic: 'seeks', partition: 1 };
    c.assign([tp]);
    expect(c.position(tp)).toBeUndefined();
    await c.seekToEnd();
    expect(c.position(tp)).toBe(4);
    await c.seekToBeginning([tp]);
    expect(c.position(tp)).toBe(0);
    expect((await pollUntil(c, 4)).map((record) => record.offset)).toEqual([0, 1, 2, 3]);
    expect(() => c.seek({ topic: 'seeks', partition: 0 }, 0)).toThrow(/not assigned/);
  });

  it('seekToBeginning retries a leader that is not one yet (a new topic, metadata catching up), as Kafka\'s consumer does', async () => {
    cluster.createTopic('fresh', 1);
    appendBatch(cluster, 'fresh', 0, 3);
    const c = consumer();
    const tp = { topic: 'fresh', partition: 0 };
    c.assign([tp]);
    cluster.notLeaderListOffsets = 2;
    await c.seekToBeginning([tp]);
    expect(c.position(tp)).toBe(0);
    expect(cluster.notLeaderListOffsets).toBe(0);
  });

  it('recovers from a killed fetch stream', async () => {
    cluster.createTopic('flaky', 1);
    appendBatch(cluster, 'flaky', 0, 3);
    cluster.killFetchStreams = 1;
    const c = consumer({ autoOffsetReset: 'earliest' });
    c.assign([{ topic: 'flaky', partition: 0 }]);
    expect((await pollUntil(c, 3)).map((record) => record.offset)).toEqual([0, 1, 2]);
    expect(cluster.fetchRequests.length).toBeGreaterThanOrEqual(2);
  });

  it('follows a moved leader after NOT_LEADER_OR_FOLLOWER', async () => {
    cluster.createTopic('moved', 1, [1]);
    appendBatch(cluster, 'moved', 0, 2);
    const c = consumer({ autoOffsetReset: 'earliest' });
    c.assign([{ topic: 'moved', partition: 0 }]);
    expect(await pollUntil(c, 2)).toHaveLength(2);
    cluster.partition('moved', 0).leader = 2;
    appendBatch(cluster, 'moved', 0, 2, 2);
    expect((await pollUntil(c, 2)).map((record) => record.offset)).toEqual([2, 3]);
    expect(cluster.fetchRequests.at(-1)!.nodeId).toBe(2);
  });

  it('retries retriable partition errors and throws non-retriable ones', async () => {
    cluster.createTopic('errors', 1);
    appendBatch(cluster, 'errors', 0, 1);
    cluster.fetchFaults.push({ topic: 'errors', errorCode: 56, times: 2 }); // KAFKA_STORAGE_ERROR, retriable
    const c = consumer({ autoOffsetReset: 'earliest' });
    c.assign([{ topic: 'errors', partition: 0 }]);
    expect(await pollUntil(c, 1)).toHaveLength(1);
    cluster.fetchFaults.push({ topic: 'errors', errorCode: 4, times: 1 }); // INVALID_FETCH_SIZE
    appendBatch(cluster, 'errors', 0, 1, 1);
    await expect(pollUntil(c, 1)).rejects.toMatchObject({ errorName: 'INVALID_FETCH_SIZE', retriable: false });
  });

  it('decodes batches of every codec, and fails a partition whose records do not decompress with CORRUPT_MESSAGE', async () => {
    cluster.createTopic('codecs', 1);
    const codecs = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;
    for (const [i, compression] of codecs.entries()) cluster.append('codecs', 0, encodeRecordBatch([{ value: Buffer.from(`${compression}-a`) }, { value: Buffer.from(`${compression}-b`) }], { compression, now: 1000 + i }));
    const c = consumer({ autoOffsetReset: 'earliest' });
    c.assign([{ topic: 'codecs', partition: 0 }]);
    expect((await pollUntil(c, 10)).map((record) => record.value?.toString())).toEqual(codecs.flatMap((compression) => [`${compression}-a`, `${compression}-b`]));
    const broken = encodeRecordBatch([{ value: Buffer.from('lost') }], { compression: 'zstd' });
    broken.fill(0xff, 61);
    cluster.append('codecs', 0, broken);
    await expect(pollUntil(c, 1)).rejects.toMatchObject({ errorName: 'CORRUPT_MESSAGE', message: expect.stringMatching(/codecs-0 at offset 10: zstd-compressed records do not decompress/) });
  });

  it('recordsFrom ignores a partial batch at the end of a fetch answer', () => {
    const first = encodeRecordBatch([{ value: Buffer.from('a') }, { value: Buffer.from('b') }], { baseOffset: 10 });
    const second = encodeRecordBatch([{ value: Buffer.from('c') }], { baseOffset: 12 });
    const bytes = Buffer.concat([first, second.subarray(0, second.length - 3)]);
    const { records, nextOffset } = recordsFrom('t', 0, bytes, 11);
    expect(records.map((record) => record.offset)).toEqual([11]);
    expect(nextOffset).toBe(12);
    expect(recordsFrom('t', 0, Buffer.concat([first, second.subarray(0, 20)]), 10).records).toHaveLength(2);
  });
});
