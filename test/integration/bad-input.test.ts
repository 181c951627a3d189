// Malformed, oversized and nonsensical requests get a Kafka error code or a gRPC status naming
// the problem, and the node keeps serving. Speaks raw gRPC so the client library cannot hide anything.
import { spawnSync } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeRecordBatch, errorCode, loadClientProto, type ClientApi } from '@runnel/common';
import { useSingleNode } from './harness.js';
import { RUNNEL_BIN } from '@runnel/testkit';

type Client = ClientApi.ClientApiClient;

function unary<Request, Response>(call: (request: Request, callback: (error: grpc.ServiceError | null, response?: Response) => void) => unknown, request: Request): Promise<Response> {
  return new Promise((resolve, reject) => call(request, (error, response) => (error ? reject(error) : resolve(response!))));
}

/** Sends one request on a fresh stream and returns its response (or the stream's error). */
function onStream<Request extends { requestId?: number }, Response>(open: () => grpc.ClientDuplexStream<Request, Response>, request: Request): Promise<Response> {
  return new Promise((resolve, reject) => {
    const stream = open();
    stream.on('data', (response: Response) => {
      resolve(response);
      stream.end();
    });
    stream.on('error', reject);
    stream.write(request);
  });
}

describe('bad input never crashes the node', () => {
  const single = useSingleNode({ 'message.max.bytes': '10000', 'socket.request.max.bytes': '1048576', 'log.retention.check.interval.ms': '100' });
  let client: Client;
  let requestId = 0;

  const produce = (partitions: ClientApi.PartitionRecords[], acks = 1) => onStream(() => client.Produce(), { requestId: ++requestId, acks, timeoutMs: 5000, partitions });
  const fetch = (partitions: ClientApi.PartitionFetch[], maxWaitMs = 0) =>
    onStream(() => client.Fetch(), { requestId: ++requestId, maxWaitMs, minBytes: 1, maxBytes: 1 << 20, partitions });
  const batch = (values: string[]) => encodeRecordBatch(values.map((value) => ({ value: Buffer.from(value) })));
  const stillServing = async () => {
    const response = await produce([{ topic: 'ok', partition: 0, records: batch(['still here']) }]);
    expect(response.partitions![0]!.errorCode).toBe(0);
  };

  beforeAll(async () => {
    const { ClientApi } = loadClientProto().runnel.v1;
    client = new ClientApi(single.node.bootstrap, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': 8 << 20 });
    const created = await unary(client.CreateTopics.bind(client), {
      topics: [
        { name: 'ok', numPartitions: 1, replicationFactor: 1 },
        { name: 'small', numPartitions: 1, replicationFactor: 1, configs: [{ name: 'segment.bytes', value: '1024' }, { name: 'retention.bytes', value: '2048' }] },
      ],
    });
    expect(created.topics!.map((topic) => topic.errorCode)).toEqual([0, 0]);
  });

  afterAll(async () => {
    client?.close();
  });

  it('answers a batch with a bad CRC with CORRUPT_MESSAGE and stores nothing', async () => {
    const records = batch(['a', 'b']);
    records[records.length - 1]! ^= 0xff;
    const response = await produce([{ topic: 'ok', partition: 0, records }]);
    expect(response.partitions![0]!.errorCode).toBe(errorCode('CORRUPT_MESSAGE'));
    expect(response.partitions![0]!.errorMessage).toMatch(/CRC/);
    const garbage = await produce([{ topic: 'ok', partition: 0, records: Buffer.from('definitely not a record batch, but long enough to have a header of sixty-one bytes') }]);
    expect(garbage.partitions![0]!.errorCode).toBe(errorCode('CORRUPT_MESSAGE'));
    const truncated = await produce([{ topic: 'ok', partition: 0, records: batch(['x']).subarray(0, 40) }]);
    expect(truncated.partitions![0]!.errorCode).toBe(errorCode('CORRUPT_MESSAGE'));
    const offsets = await unary(client.ListOffsets.bind(client), { partitions: [{ topic: 'ok', partition: 0, timestamp: -1 }] });
    expect(offsets.partitions![0]!.offset).toBe(0);
    await stillServing();
  });

  it('names unknown topics and partitions, bad acks, and batches over message.max.bytes', async () => {
    const response = await produce([
      { topic: 'nope', partition: 0, records: batch(['a']) },
      { topic: 'ok', partition: 7, records: batch(['a']) },
      { topic: 'ok', partition: -1, records: batch(['a']) },
      { topic: 'ok', partition: 0, records: batch(['x'.repeat(20_000)]) },
      { topic: 'ok', partition: 0, records: Buffer.alloc(0) },
    ]);
    expect(response.partitions!.map((p) => p.errorCode)).toEqual([
      errorCode('UNKNOWN_TOPIC_OR_PARTITION'),
      errorCode('UNKNOWN_TOPIC_OR_PARTITION'),
      errorCode('UNKNOWN_TOPIC_OR_PARTITION'),
      errorCode('MESSAGE_TOO_LARGE'),
      errorCode('INVALID_REQUEST'),
    ]);
    const badAcks = await produce([{ topic: 'ok', partition: 0, records: batch(['a']) }], 5);
    expect(badAcks.partitions![0]!.errorCode).toBe(errorCode('INVALID_REQUIRED_ACKS'));
    await stillServing();
  });

  it('refuses a request over socket.request.max.bytes with RESOURCE_EXHAUSTED', async () => {
    const huge = batch(Array.from({ length: 40 }, () => 'y'.repeat(40_000)));
    await expect(produce([{ topic: 'ok', partition: 0, records: huge }])).rejects.toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED });
    await stillServing();
  });

  it('answers a message that is not protobuf with a gRPC error and keeps serving', async () => {
    const error = await new Promise<grpc.ServiceError | null>((resolve) => {
      client.makeUnaryRequest(
        '/runnel.v1.ClientApi/CreateTopics',
        (bytes: Buffer) => bytes,
        (bytes: Buffer) => bytes,
        // field 1 (a CreatableTopic) claims 100 bytes but only one follows
        Buffer.from([0x0a, 0x64, 0x41]),
        (err) => resolve(err),
      );
    });
    expect(error).not.toBeNull();
    expect(error!.code).toBe(grpc.status.INTERNAL);
    await stillServing();
  });

  it('validates topic names, partition counts and configs on create', async () => {
    const response = await unary(client.CreateTopics.bind(client), {
      topics: [
        { name: 'bad/name', numPartitions: 1, replicationFactor: 1 },
        { name: 'zero', numPartitions: 0, replicationFactor: 1 },
        { name: 'cfg', numPartitions: 1, replicationFactor: 1, configs: [{ name: 'retention.ms', value: 'soon' }] },
        { name: 'ok', numPartitions: 1, replicationFactor: 1 },
      ],
    });
    expect(response.topics!.map((topic) => topic.errorCode)).toEqual([
      errorCode('INVALID_TOPIC_EXCEPTION'),
      errorCode('INVALID_PARTITIONS'),
      errorCode('INVALID_CONFIG'),
      errorCode('TOPIC_ALREADY_EXISTS'),
    ]);
    expect(response.topics![2]!.errorMessage).toMatch(/retention.ms/);
  });

  it('answers fetches out of range with OFFSET_OUT_OF_RANGE', async () => {
    const response = await fetch([{ topic: 'ok', partition: 0, fetchOffset: 1_000_000, partitionMaxBytes: 1 << 20 }]);
    expect(response.partitions![0]!.errorCode).toBe(errorCode('OFFSET_OUT_OF_RANGE'));
  });

  it('long-polls: a waiting fetch answers as soon as data arrives', async () => {
    const end = (await unary(client.ListOffsets.bind(client), { partitions: [{ topic: 'ok', partition: 0, timestamp: -1 }] })).partitions![0]!.offset;
    const started = Date.now();
    const waiting = fetch([{ topic: 'ok', partition: 0, fetchOffset: end, partitionMaxBytes: 1 << 20 }], 20_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await produce([{ topic: 'ok', partition: 0, records: batch(['wake up']) }]);
    const response = await waiting;
    expect(response.partitions![0]!.records!.length).toBeGreaterThan(0);
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it('finds offsets by timestamp, earliest and latest', async () => {
    await unary(client.CreateTopics.bind(client), { topics: [{ name: 'times', numPartitions: 1, replicationFactor: 1 }] });
    const t0 = Date.now() - 60_000;
    const at = (value: string, timestamp: number) => ({ value: Buffer.from(value), timestamp });
    await produce([{ topic: 'times', partition: 0, records: encodeRecordBatch([at('a', t0), at('b', t0 + 10)]) }]);
    await produce([{ topic: 'times', partition: 0, records: encodeRecordBatch([at('c', t0 + 1000), at('d', t0 + 2000)]) }]);
    const response = await unary(client.ListOffsets.bind(client), {
      partitions: [-2, -1, t0 + 5, t0 + 10, t0 + 500, t0 + 2000, Date.now() + 3_600_000].map((timestamp) => ({ topic: 'times', partition: 0, timestamp })),
    });
    expect(response.partitions!.map((p) => p.offset)).toEqual([0, 4, 1, 1, 2, 3, -1]);
    expect(response.partitions!.slice(2, 6).map((p) => p.timestamp)).toEqual([t0 + 10, t0 + 10, t0 + 1000, t0 + 2000]);
  });

  it('applies retention by size from topic configs, deleting whole old segments', async () => {
    for (let i = 0; i < 20; i++) {
      const response = await produce([{ topic: 'small', partition: 0, records: batch([`${i}`.padEnd(300, '.')]) }]);
      expect(response.partitions![0]!.errorCode).toBe(0);
    }
    let earliest = 0;
    for (let attempt = 0; attempt < 100 && earliest === 0; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      earliest = (await unary(client.ListOffsets.bind(client), { partitions: [{ topic: 'small', partition: 0, timestamp: -2 }] })).partitions![0]!.offset;
    }
    expect(earliest).toBeGreaterThan(0);
    const response = await fetch([{ topic: 'small', partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20 }]);
    expect(response.partitions![0]!.errorCode).toBe(errorCode('OFFSET_OUT_OF_RANGE'));
  });

  it('refuses to start with an unknown or bad config key, naming it', () => {
    const unknown = spawnSync(process.execPath, [RUNNEL_BIN, 'node', '--set', 'log.retention.hour=1', '--set', `log.dirs=${single.dir}/other`], { encoding: 'utf8' });
    expect(unknown.status).not.toBe(0);
    expect(unknown.stderr.trim().split('\n')).toHaveLength(1);
    expect(unknown.stderr).toMatch(/unknown config key 'log.retention.hour'/);
    const bad = spawnSync(process.execPath, [RUNNEL_BIN, 'node', '--set', 'num.partitions=many', '--set', `log.dirs=${single.dir}/other`], { encoding: 'utf8' });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/'num.partitions'/);
  });
});
