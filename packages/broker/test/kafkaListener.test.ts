// The Kafka door's connection layer and its cluster answers, over real sockets to a KafkaListener
// on real logs: version negotiation (ApiVersions, the v0-format UNSUPPORTED_VERSION answer),
// answers in request order for pipelined requests, bad input closing only its own connection with
// one log line, and Metadata / DescribeCluster / SaslHandshake as clients read them.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { encodeRecordBatch, errorCode } from '@runnel/common';
import { API_KEYS, SUPPORTED_APIS, decodeResponse, encodeRequest } from '@runnel/kafka-protocol';
import type { KafkaWireClient } from '@runnel/testkit';
import { CLUSTER_ID, KafkaDoorFixture, OTHER_BROKER, THIS_BROKER } from './kafkaDoorHarness.js';

/**
 * A request frame by hand: size, api key, version, correlation id, client id, then `body` (which,
 * for a flexible version, starts with the header's tagged fields).
 */
function rawRequest(apiKey: number, apiVersion: number, correlationId: number, body: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(2 + 2 + 4 + 2 + 4);
  header.writeInt16BE(apiKey, 0);
  header.writeInt16BE(apiVersion, 2);
  header.writeInt32BE(correlationId, 4);
  header.writeInt16BE(4, 8);
  header.write('test', 10, 'latin1');
  const size = Buffer.alloc(4);
  size.writeInt32BE(header.length + body.length);
  return Buffer.concat([size, header, body]);
}

describe('the Kafka listener', () => {
  let fixture: KafkaDoorFixture;
  const clients: KafkaWireClient[] = [];
  const connect = async () => {
    const client = await fixture.connect();
    clients.push(client);
    return client;
  };

  beforeEach(async () => {
    fixture = await KafkaDoorFixture.start({ maxRequestBytes: 64 * 1024 });
  });

  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    await fixture.close();
  });

  /** The connection still answers, and so does a new one. */
  async function stillServing(): Promise<void> {
    const fresh = await connect();
    expect((await fresh.send('ApiVersions', 0, {})).errorCode).toBe(0);
  }

  it('lists what it serves in ApiVersions at every version, from the codec\'s ranges', async () => {
    const client = await connect();
    for (const version of [0, 1, 2, 3]) {
      const response = await client.send('ApiVersions', version, { clientSoftwareName: 'test', clientSoftwareVersion: '1.0' });
      expect(response.errorCode).toBe(0);
      for (const listed of response.apiKeys) {
        const supported = SUPPORTED_APIS.find((api) => api.apiKey === listed.apiKey)!;
        expect(listed).toEqual({ apiKey: supported.apiKey, minVersion: supported.minVersion, maxVersion: supported.maxVersion });
      }
      expect(response.apiKeys.map((api) => api.apiKey)).toEqual(expect.arrayContaining([API_KEYS.ApiVersions, API_KEYS.Metadata, API_KEYS.SaslHandshake]));
    }
    // No idempotence or transactions yet: a client configured for them must fail clearly, not silently.
    const listed = (await client.send('ApiVersions', 3, { clientSoftwareName: 'test', clientSoftwareVersion: '1.0' })).apiKeys.map((api) => api.apiKey);
    for (const transactional of [22 /* InitProducerId */, 24, 25, 26, 28 /* AddPartitionsToTxn .. TxnOffsetCommit */]) expect(listed).not.toContain(transactional);
  });

  it('refuses an ApiVersions v3 whose client software name breaks Kafka\'s rule', async () => {
    const client = await connect();
    const response = await client.send('ApiVersions', 3, { clientSoftwareName: 'bad name!', clientSoftwareVersion: '1.0' });
    expect(response).toMatchObject({ errorCode: errorCode('INVALID_REQUEST'), apiKeys: [] });
  });

  it('answers an ApiVersions newer than its own, or an unknown API, with a v0 UNSUPPORTED_VERSION body listing its APIs, and stays open', async () => {
    const client = await connect();
    const served = (await client.send('ApiVersions', 3, { clientSoftwareName: 'test', clientSoftwareVersion: '1.0' })).apiKeys;
    const noTags = Buffer.from([0]);
    for (const [apiKey, apiVersion, correlationId, request] of [
      [API_KEYS.ApiVersions, 9, 901, noTags],
      [API_KEYS.ApiVersions, 4, 902, Buffer.from([0, 5, 0x6a, 0x61, 0x76, 0x61, 4, 0x34, 0x2e, 0x30, 0])],
      [999, 0, 903, Buffer.alloc(0)],
    ] as const) {
      const answer = client.expect(correlationId);
      client.writeRaw(rawRequest(apiKey, apiVersion, correlationId, request));
      const { correlationId: answered, body } = decodeResponse('ApiVersions', 0, await answer);
      expect(answered).toBe(correlationId);
      expect(body.errorCode).toBe(errorCode('UNSUPPORTED_VERSION'));
      expect(body.apiKeys).toEqual(served.map(({ apiKey: key, minVersion, maxVersion }) => ({ apiKey: key, minVersion, maxVersion })));
    }
    expect((await client.send('ApiVersions', 2, {})).errorCode).toBe(0);
  });

  it('answers pipelined requests one by one, in the order they were sent', async () => {
    const client = await connect();
    const requests = [
      client.encode('Metadata', 1, { topics: null }),
      client.encode('ApiVersions', 0, {}),
      client.encode('DescribeCluster', 0, {}),
      client.encode('Metadata', 12, { topics: null }),
      client.encode('ApiVersions', 3, { clientSoftwareName: 'a', clientSoftwareVersion: 'b' }),
    ];
    const answers = requests.map(({ correlationId }) => client.expect(correlationId));
    client.writeRaw(Buffer.concat(requests.map(({ frame }) => frame)));
    await Promise.all(answers);
    expect(client.answeredOrder).toEqual(requests.map(({ correlationId }) => correlationId));
  });

  it('keeps answering in order past its queue bound (reading pauses and resumes)', async () => {
    const client = await connect();
    const requests = Array.from({ length: 300 }, (_, k) => (k % 3 === 0 ? client.encode('Metadata', 9, { topics: null }) : client.encode('ApiVersions', k % 4, {})));
    const answers = requests.map(({ correlationId }) => client.expect(correlationId));
    client.writeRaw(Buffer.concat(requests.map(({ frame }) => frame)));
    await Promise.all(answers);
    expect(client.answeredOrder).toEqual(requests.map(({ correlationId }) => correlationId));
  });

  describe('pipelined produce requests', () => {
    const batchOf = (...values: string[]) => encodeRecordBatch(values.map((value) => ({ value: Buffer.from(value), timestamp: 1_700_000_000_000 })));
    const produceTo = (client: KafkaWireClient, topic: string, acks: number, values: string[], timeoutMs = 5_000) =>
      client.encode('Produce', 9, { acks, timeoutMs, topicData: [{ name: topic, partitionData: [{ index: 0, records: batchOf(...values) }] }] });
    const logEnd = (topic: string) => fixture.logs.partition(topic, 0)!.log.logEndOffset;

    /** 'waiting': replicas [this broker, the other], both in the ISR; the other never fetches, so acks=all waits for its timeout. */
    async function createWaitingTopic(): Promise<void> {
      const topicId = Buffer.alloc(16, 0xee).toString('base64url');
      await fixture.apply([
        { type: 'Topic', name: 'waiting', topicId },
        { type: 'Partition', topicId, partition: 0, replicas: [THIS_BROKER, OTHER_BROKER], isr: [THIS_BROKER, OTHER_BROKER], leader: THIS_BROKER, leaderEpoch: 0, partitionEpoch: 0 },
      ]);
    }

    it('run side by side: one waiting for acks=all does not hold back the appends of those after it, and answers keep request order', async () => {
      await createWaitingTopic();
      await fixture.createTopic('quick', 1);
      const client = await connect();
      const requests = [produceTo(client, 'waiting', -1, ['w'], 1_500), produceTo(client, 'quick', 1, ['a', 'b']), produceTo(client, 'quick', 1, ['c'])];
      const answers = requests.map(({ correlationId }) => client.expect(correlationId));
      client.writeRaw(Buffer.concat(requests.map(({ frame }) => frame)));
      // Both later requests are appended while the first still waits for the other replica.
      await vi.waitFor(() => expect(logEnd('quick')).toBe(3), { timeout: 1_000 });
      expect(logEnd('waiting')).toBe(1);
      expect(client.answeredOrder).toEqual([]);
      const [waited, first, second] = (await Promise.all(answers)).map((frame) => decodeResponse('Produce', 9, frame).body.responses[0]!.partitionResponses[0]!);
      expect(client.answeredOrder).toEqual(requests.map(({ correlationId }) => correlationId));
      expect(waited!.errorCode).toBe(errorCode('REQUEST_TIMED_OUT'));
      expect([first!.errorCode, first!.baseOffset, second!.errorCode, second!.baseOffset]).toEqual([0, 0n, 0, 2n]);
    });

    it('append in the order they were sent, however many are in flight', async () => {
      await fixture.createTopic('ordered', 1);
      const client = await connect();
      const requests = Array.from({ length: 150 }, (_, k) => produceTo(client, 'ordered', k % 3 === 0 ? -1 : 1, Array.from({ length: 1 + (k % 4) }, (_, j) => `${k}.${j}`)));
      const answers = requests.map(({ correlationId }) => client.expect(correlationId));
      client.writeRaw(Buffer.concat(requests.map(({ frame }) => frame)));
      const baseOffsets = (await Promise.all(answers)).map((frame) => decodeResponse('Produce', 9, frame).body.responses[0]!.partitionResponses[0]!.baseOffset);
      let expected = 0n;
      for (const [k, baseOffset] of baseOffsets.entries()) {
        expect(baseOffset).toBe(expected);
        expected += BigInt(1 + (k % 4));
      }
      expect(client.answeredOrder).toEqual(requests.map(({ correlationId }) => correlationId));
    });

    it('any other request waits for the produce requests before it, and the ones after it wait for it', async () => {
      await createWaitingTopic();
      await fixture.createTopic('quick', 1);
      const client = await connect();
      const requests = [
        produceTo(client, 'waiting', -1, ['w'], 1_000),
        client.encode('Metadata', 9, { topics: [{ name: 'created-on-demand' }], allowAutoTopicCreation: true }),
        produceTo(client, 'quick', 1, ['after the metadata request']),
      ];
      const answers = requests.map(({ correlationId }) => client.expect(correlationId));
      client.writeRaw(Buffer.concat(requests.map(({ frame }) => frame)));
      await new Promise((resolve) => setTimeout(resolve, 300));
      // The produce request is still waiting: the metadata request has not run, nor the produce after it.
      expect(fixture.created).not.toContain('created-on-demand');
      expect(logEnd('quick')).toBe(0);
      await Promise.all(answers);
      expect(fixture.created).toContain('created-on-demand');
      expect(logEnd('quick')).toBe(1);
      expect(client.answeredOrder).toEqual(requests.map(({ correlationId }) => correlationId));
    });

    it('wait for queued.max.request.bytes in arrival order, and give back every byte, also when the client goes away', async () => {
      const frameBytes = (values: string[]) => encodeRequest('Produce', { apiVersion: 9, correlationId: 1, clientId: 'kafka-door-test' }, { acks: 1, timeoutMs: 1, topicData: [{ name: 'waiting', partitionData: [{ index: 0, records: batchOf(...values) }] }] }).length;
      // Room for one of these requests at a time.
      await fixture.close();
      fixture = await KafkaDoorFixture.start({ queuedMaxRequestBytes: frameBytes(['second']) + 8 });
      await createWaitingTopic();
      await fixture.createTopic('quick', 1);
      const client = await connect();
      const requests = [produceTo(client, 'waiting', -1, ['w'], 800), produceTo(client, 'quick', 1, ['first']), produceTo(client, 'quick', 1, ['second'])];
      const answers = requests.map(({ correlationId }) => client.expect(correlationId));
      client.writeRaw(Buffer.concat(requests.map(({ frame }) => frame)));
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(logEnd('quick')).toBe(0);
      expect(fixture.memory.waitingRequests).toBe(1);
      const offsets = (await Promise.all(answers)).map((frame) => decodeResponse('Produce', 9, frame).body.responses[0]!.partitionResponses[0]!.baseOffset);
      expect(offsets.slice(1)).toEqual([0n, 1n]);
      expect(fixture.memory.usedBytes).toBe(0);

      const leaving = await connect();
      leaving.writeRaw(Buffer.concat([produceTo(leaving, 'waiting', -1, ['w'], 300).frame, produceTo(leaving, 'quick', 1, ['never answered']).frame]));
      await vi.waitFor(() => expect(fixture.memory.waitingRequests).toBe(1));
      leaving.close();
      await vi.waitFor(() => expect([fixture.memory.usedBytes, fixture.memory.waitingRequests]).toEqual([0, 0]), { timeout: 2_000 });
      await stillServing();
    });
  });

  it('closes a connection idle for connections.max.idle.ms, but not one with a request in flight', async () => {
    await fixture.close();
    fixture = await KafkaDoorFixture.start({ config: { 'connections.max.idle.ms': '300' } });
    await fixture.createTopic('orders', 1);
    const idle = await connect();
    const polling = await connect();
    const started = Date.now();
    // A long poll that outlasts the idle time: its connection stays until it is answered, and after.
    const poll = polling.send('Fetch', 11, { maxWaitMs: 800, minBytes: 1, topics: [{ topic: 'orders', partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1024 }] }] });
    await idle.closed;
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect((await poll).responses[0]!.partitions[0]!.errorCode).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(750);
    expect((await polling.send('ApiVersions', 0, {})).errorCode).toBe(0);
    await polling.closed;
  });

  it('closes every connection on shutdown: a long poll in flight is answered first, idle ones just close', async () => {
    await fixture.createTopic('orders', 1);
    const idle = await connect();
    const polling = await connect();
    const poll = polling.send('Fetch', 11, { maxWaitMs: 30_000, minBytes: 1, topics: [{ topic: 'orders', partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1024 }] }] });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = Date.now();
    await fixture.listener.close(2_000);
    expect((await poll).responses[0]!.partitions[0]!.errorCode).toBe(0);
    await Promise.all([idle.closed, polling.closed]);
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(fixture.listener.connectionCount).toBe(0);
    await expect(fixture.connect()).rejects.toThrow(/ECONNREFUSED/);
  });

  it('closes a connection whose frame is larger than socket.request.max.bytes, with one log line naming the peer; others keep working', async () => {
    const bystander = await connect();
    const offender = await connect();
    const size = Buffer.alloc(4);
    size.writeInt32BE(64 * 1024 + 1);
    offender.writeRaw(size);
    await offender.closed;
    const lines = fixture.logged('closing Kafka connection');
    expect(lines).toHaveLength(1);
    expect(lines[0]!.msg).toMatch(/frame size 65537 is larger than the limit of 65536 bytes/);
    expect(lines[0]!.msg).toContain(lines[0]!.peer!);
    expect((await bystander.send('ApiVersions', 1, {})).errorCode).toBe(0);
    await stillServing();
  });

  it('closes a connection that sends garbage, or a truncated body, with one log line each', async () => {
    const garbage = await connect();
    garbage.writeRaw(Buffer.concat([Buffer.from([0, 0, 0, 12]), Buffer.from('not a kafka!', 'latin1')]));
    await garbage.closed;
    expect(fixture.logged('closing Kafka connection')).toHaveLength(1);
    expect(fixture.logged('malformed request')[0]!.msg).toMatch(/not supported|malformed/);

    // A Metadata v1 request whose topic array claims two names but carries one.
    const truncated = await connect();
    const body = Buffer.concat([Buffer.from([0, 0, 0, 2, 0, 3]), Buffer.from('abc', 'latin1')]);
    truncated.writeRaw(rawRequest(API_KEYS.Metadata, 1, 7, body));
    await truncated.closed;
    const lines = fixture.logged('closing Kafka connection');
    expect(lines).toHaveLength(2);
    expect(lines[1]!.msg).toMatch(/malformed request: .*MetadataRequest v1/);

    // A connection that ends inside a request.
    const cut = await connect();
    cut.writeRaw(rawRequest(API_KEYS.ApiVersions, 0, 8).subarray(0, 9));
    cut.end();
    await cut.closed;
    expect(fixture.logged('closing Kafka connection')).toHaveLength(3);
    expect(fixture.logged('ended inside a request')).toHaveLength(1);
    await stillServing();
  });

  it('closes a connection that asks for a version of an API it does not serve (other than ApiVersions)', async () => {
    const client = await connect();
    client.writeRaw(rawRequest(API_KEYS.Metadata, 13, 5, Buffer.from([0, 1, 0, 0, 0])));
    await client.closed;
    const lines = fixture.logged('closing Kafka connection');
    expect(lines).toHaveLength(1);
    expect(lines[0]!.msg).toMatch(/version 13 of API key 3 is not supported \(supported: 0-12\)/);
    await stillServing();
  });

  it('refuses SASL with UNSUPPORTED_SASL_MECHANISM and no mechanisms', async () => {
    const client = await connect();
    for (const version of [0, 1]) {
      expect(await client.send('SaslHandshake', version, { mechanism: 'PLAIN' })).toEqual({ errorCode: errorCode('UNSUPPORTED_SASL_MECHANISM'), mechanisms: [] });
    }
  });

  it('describes the cluster: every live broker at its PLAINTEXT address, the controller, the cluster id', async () => {
    const client = await connect();
    const brokers = [
      { nodeId: THIS_BROKER, host: '127.0.0.1', port: fixture.port, rack: null },
      { nodeId: OTHER_BROKER, host: '127.0.0.1', port: 2, rack: null },
    ];
    const described = await client.send('DescribeCluster', 1, { endpointType: 1 });
    expect(described).toMatchObject({ errorCode: 0, clusterId: CLUSTER_ID, controllerId: THIS_BROKER, brokers: brokers.map(({ nodeId, ...rest }) => ({ brokerId: nodeId, ...rest })) });
    expect((await client.send('DescribeCluster', 1, { endpointType: 2 })).errorCode).toBe(errorCode('MISMATCHED_ENDPOINT_TYPE'));

    // A fenced broker is gone from the list.
    await fixture.apply([{ type: 'FenceBroker', brokerId: OTHER_BROKER, brokerEpoch: 1 }]);
    expect((await client.send('Metadata', 1, { topics: [] })).brokers).toEqual([brokers[0]]);
  });

  describe('Metadata', () => {
    it('describes topics at every version: leader, epoch, replicas, ISR, topic id from v10', async () => {
      const topicId = await fixture.createTopic('orders', 2);
      await fixture.createTopic('elsewhere', 1, OTHER_BROKER);
      const client = await connect();
      for (let version = 0; version <= 12; version++) {
        const response = await client.send('Metadata', version, { topics: [{ name: 'orders' }, { name: 'elsewhere' }], ...(version >= 4 ? { allowAutoTopicCreation: false } : {}) });
        expect(response.brokers.map((broker) => [broker.nodeId, broker.port])).toEqual([
          [THIS_BROKER, fixture.port],
          [OTHER_BROKER, 2],
        ]);
        if (version >= 1) expect(response.controllerId).toBe(THIS_BROKER);
        if (version >= 2) expect(response.clusterId).toBe(CLUSTER_ID);
        const [orders, elsewhere] = response.topics;
        expect(orders).toMatchObject({ errorCode: 0, name: 'orders', isInternal: false });
        expect(orders!.partitions).toEqual([0, 1].map((partitionIndex) => ({ errorCode: 0, partitionIndex, leaderId: THIS_BROKER, leaderEpoch: version >= 7 ? 0 : -1, replicaNodes: [THIS_BROKER], isrNodes: [THIS_BROKER], offlineReplicas: [] })));
        expect(elsewhere!.partitions[0]).toMatchObject({ leaderId: OTHER_BROKER });
        if (version >= 10) expect(orders!.topicId.replaceAll('-', '')).toBe(Buffer.from(topicId, 'base64url').toString('hex'));
      }
    });

    it('names a topic by id (v10+) and answers UNKNOWN_TOPIC_ID for an id it does not know', async () => {
      const topicId = await fixture.createTopic('orders', 1);
      const uuid = Buffer.from(topicId, 'base64url').toString('hex').replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-');
      const client = await connect();
      const response = await client.send('Metadata', 12, { topics: [{ name: null, topicId: uuid }, { name: null, topicId: '11111111-2222-3333-4444-555555555555' }] });
      expect(response.topics.map((topic) => [topic.name, topic.errorCode])).toEqual([
        ['orders', 0],
        [null, errorCode('UNKNOWN_TOPIC_ID')],
      ]);
    });

    it('creates unknown topics when the client allows it and auto.create.topics.enable does; v0 empty and v1+ null mean every topic', async () => {
      const client = await connect();
      const refused = await client.send('Metadata', 4, { topics: [{ name: 'quiet' }], allowAutoTopicCreation: false });
      expect(refused.topics[0]).toMatchObject({ name: 'quiet', errorCode: errorCode('UNKNOWN_TOPIC_OR_PARTITION') });
      const created = await client.send('Metadata', 9, { topics: [{ name: 'fresh' }], allowAutoTopicCreation: true });
      expect(created.topics[0]).toMatchObject({ name: 'fresh', errorCode: 0 });
      expect(created.topics[0]!.partitions).toHaveLength(1);
      // Before v4 the client cannot say, and Kafka creates.
      expect((await client.send('Metadata', 1, { topics: [{ name: 'older' }] })).topics[0]!.errorCode).toBe(0);
      const invalid = await client.send('Metadata', 9, { topics: [{ name: 'no spaces' }], allowAutoTopicCreation: true });
      expect(invalid.topics[0]).toMatchObject({ errorCode: errorCode('INVALID_TOPIC_EXCEPTION') });
      expect(fixture.created).toEqual(['fresh', 'older']);

      expect((await client.send('Metadata', 0, { topics: [] })).topics.map((topic) => topic.name)).toEqual(['fresh', 'older']);
      expect((await client.send('Metadata', 1, { topics: null })).topics.map((topic) => topic.name)).toEqual(['fresh', 'older']);
      expect((await client.send('Metadata', 1, { topics: [] })).topics).toEqual([]);
    });

    it('never auto-creates __consumer_offsets with the defaults (FindCoordinator creates it with its own settings)', async () => {
      const client = await connect();
      const response = await client.send('Metadata', 9, { topics: [{ name: '__consumer_offsets' }], allowAutoTopicCreation: true });
      expect(response.topics[0]!.errorCode).toBe(errorCode('UNKNOWN_TOPIC_OR_PARTITION'));
      expect(fixture.created).toEqual([]);
    });

    it('says LEADER_NOT_AVAILABLE, leader -1, for a partition whose leader has no PLAINTEXT listener', async () => {
      await fixture.apply([
        { type: 'RegisterBroker', brokerId: 3, incarnationId: 'grpc-only', listeners: [{ name: 'GRPC', host: '127.0.0.1', port: 3 }], rack: null },
        { type: 'UnfenceBroker', brokerId: 3, brokerEpoch: fixture.image.highestOffset + 1 },
      ]);
      await fixture.createTopic('unreachable', 1, 3);
      const client = await connect();
      const response = await client.send('Metadata', 9, { topics: [{ name: 'unreachable' }] });
      expect(response.brokers.map((broker) => broker.nodeId)).toEqual([THIS_BROKER, OTHER_BROKER]);
      expect(response.topics[0]!.partitions[0]).toMatchObject({ errorCode: errorCode('LEADER_NOT_AVAILABLE'), leaderId: -1, replicaNodes: [3] });
    });
  });
});
