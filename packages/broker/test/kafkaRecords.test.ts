// Produce, Fetch, ListOffsets and OffsetForLeaderEpoch through the Kafka door, on real logs: the
// batches a client sends come back byte for byte (but for the base offset and leader epoch the
// broker assigns), fetch long-polls and answers at the high watermark without an error, and the
// errors clients recover by (NOT_LEADER_OR_FOLLOWER, FENCED/UNKNOWN_LEADER_EPOCH,
// OFFSET_OUT_OF_RANGE) come back per partition.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { crc32c, decodeRecords, encodeRecordBatch, errorCode, readBatchHeader } from '@runnel/common';
import type { KafkaWireClient } from '@runnel/testkit';
import { KafkaDoorFixture, OTHER_BROKER } from './kafkaDoorHarness.js';

/** The offset of the batch header field after which the broker rewrites nothing (magic onwards). */
const MAGIC_OFFSET = 16;

const batchOf = (values: string[], timestamp = 1_700_000_000_000) => encodeRecordBatch(values.map((value, k) => ({ value: Buffer.from(value), timestamp: timestamp + k })));

describe('the Kafka door\'s record APIs', () => {
  let fixture: KafkaDoorFixture;
  let client: KafkaWireClient;

  beforeEach(async () => {
    fixture = await KafkaDoorFixture.start();
    await fixture.createTopic('orders', 2);
    await fixture.createTopic('elsewhere', 1, OTHER_BROKER);
    client = await fixture.connect();
  });

  afterEach(async () => {
    client.close();
    await fixture.close();
  });

  const produce = (version: number, records: Buffer, options: { partition?: number; topic?: string; acks?: number } = {}) =>
    client.send('Produce', version, {
      acks: options.acks ?? -1,
      timeoutMs: 5_000,
      topicData: [{ name: options.topic ?? 'orders', partitionData: [{ index: options.partition ?? 0, records }] }],
    });

  const fetchAt = (version: number, fetchOffset: number, options: { maxWaitMs?: number; minBytes?: number; maxBytes?: number; partitionMaxBytes?: number; currentLeaderEpoch?: number; topic?: string; isolationLevel?: number } = {}) =>
    client.send('Fetch', version, {
      replicaId: -1,
      maxWaitMs: options.maxWaitMs ?? 0,
      minBytes: options.minBytes ?? 1,
      maxBytes: options.maxBytes ?? 1 << 20,
      isolationLevel: options.isolationLevel ?? 0,
      topics: [{ topic: options.topic ?? 'orders', partitions: [{ partition: 0, fetchOffset, partitionMaxBytes: options.partitionMaxBytes ?? 1 << 20, ...(options.currentLeaderEpoch === undefined ? {} : { currentLeaderEpoch: options.currentLeaderEpoch }) }] }],
    });

  it('stores produced batches as sent and fetches them back identical, at every Produce (3-9) and Fetch (4-12) version', async () => {
    const sent: Buffer[] = [];
    for (let version = 3; version <= 9; version++) {
      const batch = batchOf([`v${version}-a`, `v${version}-b`]);
      sent.push(Buffer.from(batch));
      const response = await produce(version, batch);
      expect(response.responses[0]!.partitionResponses[0]).toMatchObject({ index: 0, errorCode: 0, baseOffset: BigInt((version - 3) * 2) });
      if (version >= 5) expect(response.responses[0]!.partitionResponses[0]!.logStartOffset).toBe(0n);
    }
    for (let version = 4; version <= 12; version++) {
      const fetched = (await fetchAt(version, 0)).responses[0]!.partitions[0]!;
      expect(fetched).toMatchObject({ errorCode: 0, highWatermark: 14n, lastStableOffset: 14n });
      if (version >= 5) expect(fetched.logStartOffset).toBe(0n);
      if (version >= 11) expect(fetched.preferredReadReplica).toBe(-1);
      // The broker assigned base offsets and its leader epoch; everything from the magic byte on is the client's.
      let position = 0;
      for (const [k, original] of sent.entries()) {
        const header = readBatchHeader(fetched.records!, position);
        expect(header.baseOffset).toBe(k * 2);
        expect(header.partitionLeaderEpoch).toBe(0);
        expect(fetched.records!.subarray(position + MAGIC_OFFSET, position + original.length).equals(original.subarray(MAGIC_OFFSET))).toBe(true);
        position += original.length;
      }
      expect(position).toBe(fetched.records!.length);
    }
  });

  it('lists Produce from v0 (librdkafka compresses only then) but refuses v0-2 message sets, storing nothing', async () => {
    const versions = await client.send('ApiVersions', 3, { clientSoftwareName: 'test', clientSoftwareVersion: '1' });
    expect(versions.apiKeys.find((entry) => entry.apiKey === 0)).toMatchObject({ minVersion: 0, maxVersion: 9 });
    for (let version = 0; version <= 2; version++) {
      const answer = (await produce(version, batchOf(['old']))).responses[0]!.partitionResponses[0]!;
      expect(answer).toMatchObject({ index: 0, errorCode: errorCode('UNSUPPORTED_FOR_MESSAGE_FORMAT'), baseOffset: -1n });
    }
    expect((await fetchAt(12, 0)).responses[0]!.partitions[0]).toMatchObject({ errorCode: 0, highWatermark: 0n });
  });

  it('refuses a control batch from a client with INVALID_RECORD (control records are the broker\'s), storing nothing', async () => {
    const batch = batchOf(['marker']);
    // The control bit of the attributes (byte 21, under the CRC, which covers attributes onwards).
    batch.writeInt16BE(batch.readInt16BE(21) | 0x20, 21);
    batch.writeUInt32BE(crc32c(batch.subarray(21)), 17);
    const answer = (await produce(9, batch)).responses[0]!.partitionResponses[0]!;
    expect(answer.errorCode).toBe(errorCode('INVALID_RECORD'));
    expect(answer.errorMessage).toMatch(/control batch/);
    expect((await fetchAt(12, 0)).responses[0]!.partitions[0]).toMatchObject({ errorCode: 0, highWatermark: 0n });
  });

  it('Fetch v13 names topics by id (KIP-516): the same records, the id echoed; an unknown id is UNKNOWN_TOPIC_ID', async () => {
    await produce(9, batchOf(['by-id']));
    const metadata = await client.send('Metadata', 12, { topics: [{ name: 'orders', topicId: '00000000-0000-0000-0000-000000000000' }], allowAutoTopicCreation: false, includeTopicAuthorizedOperations: false });
    const topicId = metadata.topics[0]!.topicId;
    expect(topicId).not.toBe('00000000-0000-0000-0000-000000000000');
    const fetchById = (id: string) =>
      client.send('Fetch', 13, { replicaId: -1, maxWaitMs: 0, minBytes: 1, maxBytes: 1 << 20, isolationLevel: 0, topics: [{ topicId: id, partitions: [{ partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20 }] }] });
    const byId = (await fetchById(topicId)).responses[0]!;
    expect(byId.topicId).toBe(topicId);
    expect(byId.partitions[0]).toMatchObject({ errorCode: 0, highWatermark: 1n });
    expect(decodeRecords(byId.partitions[0]!.records!).map((record) => record.value?.toString())).toEqual(['by-id']);
    const unknown = (await fetchById('0badc0de-0000-4000-8000-000000000000')).responses[0]!;
    expect(unknown.partitions[0]!.errorCode).toBe(errorCode('UNKNOWN_TOPIC_ID'));
  });

  it('answers a fetch at the high watermark with no records and no error, and beyond the log end with OFFSET_OUT_OF_RANGE', async () => {
    await produce(7, batchOf(['a', 'b', 'c']));
    expect((await fetchAt(11, 3)).responses[0]!.partitions[0]).toMatchObject({ errorCode: 0, highWatermark: 3n, records: Buffer.alloc(0) });
    expect((await fetchAt(11, 4)).responses[0]!.partitions[0]!.errorCode).toBe(errorCode('OFFSET_OUT_OF_RANGE'));
    // The first batch may start before the fetch offset: clients skip what they did not ask for.
    const inside = (await fetchAt(11, 1)).responses[0]!.partitions[0]!;
    expect(decodeRecords(inside.records!).map((record) => record.offset)).toEqual([0, 1, 2]);
  });

  it('returns at least one whole batch even when it is larger than max bytes', async () => {
    const large = batchOf([Buffer.alloc(4000, 'x').toString()]);
    await produce(7, large);
    const fetched = (await fetchAt(11, 0, { maxBytes: 100, partitionMaxBytes: 100 })).responses[0]!.partitions[0]!;
    expect(fetched.records!.length).toBe(large.length);
  });

  it('long-polls: an empty fetch waits up to max wait, and answers as soon as min bytes arrive', async () => {
    const started = Date.now();
    const empty = (await fetchAt(12, 0, { maxWaitMs: 300 })).responses[0]!.partitions[0]!;
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(empty.records!.length).toBe(0);
    // Min bytes 0 is satisfied by nothing: answered at once, as Kafka does.
    const eager = Date.now();
    await fetchAt(12, 0, { maxWaitMs: 5_000, minBytes: 0 });
    expect(Date.now() - eager).toBeLessThan(1_000);

    const producer = await fixture.connect('producer');
    const waiting = fetchAt(12, 0, { maxWaitMs: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const sentAt = Date.now();
    await producer.send('Produce', 9, { acks: 1, timeoutMs: 1000, topicData: [{ name: 'orders', partitionData: [{ index: 0, records: batchOf(['wake up']) }] }] });
    const woken = (await waiting).responses[0]!.partitions[0]!;
    expect(Date.now() - sentAt).toBeLessThan(2_000);
    expect(decodeRecords(woken.records!)[0]!.value!.toString()).toBe('wake up');
    producer.close();
  });

  it('accepts read_committed: the last stable offset is the high watermark, no aborted transactions', async () => {
    await produce(7, batchOf(['a']));
    const fetched = (await fetchAt(11, 0, { isolationLevel: 1 })).responses[0]!.partitions[0]!;
    expect(fetched).toMatchObject({ errorCode: 0, highWatermark: 1n, lastStableOffset: 1n, abortedTransactions: [] });
  });

  it('keeps no fetch sessions: a full fetch gets session id 0, an incremental one FETCH_SESSION_ID_NOT_FOUND', async () => {
    const full = await client.send('Fetch', 11, { maxWaitMs: 0, minBytes: 0, sessionId: 0, sessionEpoch: 0, topics: [{ topic: 'orders', partitions: [{ partition: 0, fetchOffset: 0, partitionMaxBytes: 1024 }] }] });
    expect(full).toMatchObject({ errorCode: 0, sessionId: 0 });
    const incremental = await client.send('Fetch', 11, { maxWaitMs: 0, minBytes: 0, sessionId: 7, sessionEpoch: 3, topics: [] });
    expect(incremental).toMatchObject({ errorCode: errorCode('FETCH_SESSION_ID_NOT_FOUND'), responses: [] });
  });

  it('fences by the leader epoch the client knows (Fetch v9+, ListOffsets v4+, OffsetForLeaderEpoch)', async () => {
    await fixture.moveLeader('orders', 0, 1); // still led here, at epoch 1
    expect((await fetchAt(12, 0, { currentLeaderEpoch: 0 })).responses[0]!.partitions[0]!.errorCode).toBe(errorCode('FENCED_LEADER_EPOCH'));
    expect((await fetchAt(12, 0, { currentLeaderEpoch: 2 })).responses[0]!.partitions[0]!.errorCode).toBe(errorCode('UNKNOWN_LEADER_EPOCH'));
    expect((await fetchAt(12, 0, { currentLeaderEpoch: 1 })).responses[0]!.partitions[0]!.errorCode).toBe(0);
    expect((await fetchAt(12, 0, { currentLeaderEpoch: -1 })).responses[0]!.partitions[0]!.errorCode).toBe(0);
    const listed = await client.send('ListOffsets', 7, { replicaId: -1, topics: [{ name: 'orders', partitions: [{ partitionIndex: 0, currentLeaderEpoch: 0, timestamp: -1n }] }] });
    expect(listed.topics[0]!.partitions[0]!.errorCode).toBe(errorCode('FENCED_LEADER_EPOCH'));
    const ends = await client.send('OffsetForLeaderEpoch', 4, { topics: [{ topic: 'orders', partitions: [{ partition: 0, currentLeaderEpoch: 0, leaderEpoch: 0 }] }] });
    expect(ends.topics[0]!.partitions[0]!.errorCode).toBe(errorCode('FENCED_LEADER_EPOCH'));
  });

  it('answers NOT_LEADER_OR_FOLLOWER for a partition led elsewhere and UNKNOWN_TOPIC_OR_PARTITION for one that does not exist', async () => {
    expect((await produce(9, batchOf(['x']), { topic: 'elsewhere' })).responses[0]!.partitionResponses[0]).toMatchObject({ errorCode: errorCode('NOT_LEADER_OR_FOLLOWER'), baseOffset: -1n });
    expect((await produce(9, batchOf(['x']), { topic: 'nowhere' })).responses[0]!.partitionResponses[0]!.errorCode).toBe(errorCode('UNKNOWN_TOPIC_OR_PARTITION'));
    expect((await fetchAt(12, 0, { topic: 'elsewhere' })).responses[0]!.partitions[0]!.errorCode).toBe(errorCode('NOT_LEADER_OR_FOLLOWER'));
    // One request, several partitions: each gets its own answer.
    const mixed = await client.send('Produce', 8, {
      acks: 1,
      timeoutMs: 1000,
      topicData: [
        { name: 'orders', partitionData: [{ index: 0, records: batchOf(['ok']) }, { index: 1, records: Buffer.from('not a batch') }] },
        { name: 'elsewhere', partitionData: [{ index: 0, records: batchOf(['no']) }] },
      ],
    });
    expect(mixed.responses.map((topic) => topic.partitionResponses.map((partition) => partition.errorCode))).toEqual([[0, errorCode('CORRUPT_MESSAGE')], [errorCode('NOT_LEADER_OR_FOLLOWER')]]);
    expect(mixed.responses[0]!.partitionResponses[1]!.errorMessage).toMatch(/batch 0/);
  });

  it('sends no response to an acks=0 produce, and closes the connection (one log line) when one fails', async () => {
    client.sendOneWay('Produce', 7, { acks: 0, timeoutMs: 1000, topicData: [{ name: 'orders', partitionData: [{ index: 0, records: batchOf(['quiet']) }] }] });
    // The next request is answered, and nothing came for the acks=0 one.
    const after = await fetchAt(11, 0);
    expect(decodeRecords(after.responses[0]!.partitions[0]!.records!).map((record) => record.value!.toString())).toEqual(['quiet']);
    expect(client.answeredOrder).toHaveLength(1);

    client.sendOneWay('Produce', 7, { acks: 0, timeoutMs: 1000, topicData: [{ name: 'elsewhere', partitionData: [{ index: 0, records: batchOf(['lost']) }] }] });
    await client.closed;
    expect(fixture.logged('an acks=0 produce failed')).toHaveLength(1);
  });

  it('lists offsets: earliest, latest, by timestamp and the max timestamp, at versions 1-7', async () => {
    await produce(7, batchOf(['a', 'b'], 1_000));
    await produce(7, encodeRecordBatch([{ value: Buffer.from('late'), timestamp: 9_000 }, { value: Buffer.from('early'), timestamp: 2_000 }]));
    for (let version = 1; version <= 7; version++) {
      const response = await client.send('ListOffsets', version, {
        replicaId: -1,
        topics: [{ name: 'orders', partitions: [-2n, -1n, 1_001n, 5_000n, 10_000n, -3n].map((timestamp) => ({ partitionIndex: 0, timestamp })) }],
      });
      const answers = response.topics[0]!.partitions.map((partition) => [partition.errorCode, partition.offset, partition.timestamp]);
      expect(answers).toEqual([
        [0, 0n, -1n],
        [0, 4n, -1n],
        [0, 1n, 1_001n],
        [0, 2n, 9_000n],
        [0, -1n, -1n],
        [0, 2n, 9_000n],
      ]);
      if (version >= 4) expect(response.topics[0]!.partitions[1]!.leaderEpoch).toBe(0);
    }
  });

  it('answers OffsetForLeaderEpoch with where each epoch ends in the leader\'s log', async () => {
    await produce(7, batchOf(['a', 'b']));
    await fixture.moveLeader('orders', 0, 1);
    await produce(7, batchOf(['c']));
    for (let version = 2; version <= 4; version++) {
      const response = await client.send('OffsetForLeaderEpoch', version, {
        topics: [{ topic: 'orders', partitions: [0, 1, 5].map((leaderEpoch) => ({ partition: 0, currentLeaderEpoch: 1, leaderEpoch })) }],
      });
      expect(response.topics[0]!.partitions.map((partition) => [partition.errorCode, partition.leaderEpoch, partition.endOffset])).toEqual([
        [0, 0, 2n],
        [0, 1, 3n],
        [0, 1, 3n],
      ]);
    }
  });
});
