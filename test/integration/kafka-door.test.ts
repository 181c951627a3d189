// The Kafka door on a real 3-node cluster, over raw sockets with @runnel/kafka-protocol's client-side
// codec: nothing a client library could hide. Version negotiation, the cluster as Kafka clients see
// it (every broker at its PLAINTEXT port), records through both doors at the same offsets, and bad
// input that costs only its own connection.
import * as grpc from '@grpc/grpc-js';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchSize, decodeRecords, encodeRecordBatch, errorCode, listBatches, loadClientProto, readBatchHeader, type ClientApi } from '@runnel/common';
import { API_KEYS, decodeResponse } from '@runnel/kafka-protocol';
import { KafkaWireClient, type NodeProcess } from '@runnel/testkit';
import { produceOnce, useCluster, waitFor } from './harness.js';

/** From the magic byte on, a stored batch is the bytes its producer sent (the broker set only base offset and leader epoch). */
const MAGIC_OFFSET = 16;

/** Every record of every batch in `records` (fetches return whole batches, one after another). */
function allRecords(records: Buffer) {
  return listBatches(records).flatMap(({ position, header }) => decodeRecords(records.subarray(position, position + batchSize(header))));
}

/** One gRPC fetch of a partition from `offset`, straight from the broker at `address`. */
function grpcFetch(address: string, topic: string, partition: number, offset: number): Promise<ClientApi.PartitionFetchResult__Output> {
  const { ClientApi: Client } = loadClientProto().runnel.v1;
  const client = new Client(address, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    const stream = client.Fetch();
    stream.on('data', (response: ClientApi.FetchResponse__Output) => {
      stream.end();
      client.close();
      resolve(response.partitions[0]!);
    });
    stream.on('error', (error) => {
      client.close();
      reject(error);
    });
    stream.write({ requestId: 1, maxWaitMs: 0, minBytes: 1, maxBytes: 1 << 20, partitions: [{ topic, partition, fetchOffset: offset, partitionMaxBytes: 1 << 20 }] });
  });
}

describe('the Kafka door of a 3-node cluster', () => {
  const fixture = useCluster(3, { 'default.replication.factor': '3', 'num.partitions': '3', 'socket.request.max.bytes': '1048576' });
  const clients: KafkaWireClient[] = [];
  let nodes: NodeProcess[];

  const connect = async (node: NodeProcess = nodes[0]!, clientId = 'kafka-door-it') => {
    const client = await KafkaWireClient.connect(node.kafkaBootstrap, clientId);
    clients.push(client);
    return client;
  };

  beforeAll(() => {
    nodes = fixture.cluster.nodes;
  });

  afterAll(() => {
    for (const client of clients) client.close();
  });

  it('negotiates versions: ApiVersions 0-3, and a v0 UNSUPPORTED_VERSION answer to a newer one', async () => {
    const client = await connect();
    const listed = await client.send('ApiVersions', 3, { clientSoftwareName: 'runnel-it', clientSoftwareVersion: '1' });
    expect(listed.errorCode).toBe(0);
    const metadata = listed.apiKeys.find((api) => api.apiKey === API_KEYS.Metadata);
    expect(metadata).toEqual({ apiKey: 3, minVersion: 0, maxVersion: 12 });
    expect(listed.apiKeys.some((api) => api.apiKey === 22)).toBe(false); // InitProducerId: no idempotence yet

    // An ApiVersions v4 (flexible header: tag section after the client id) from a client newer than us.
    const correlationId = 4242;
    const header = Buffer.alloc(2 + 2 + 4 + 2 + 1);
    header.writeInt16BE(API_KEYS.ApiVersions, 0);
    header.writeInt16BE(4, 2);
    header.writeInt32BE(correlationId, 4);
    header.writeInt16BE(-1, 8);
    const body = Buffer.from([0, 0, 0]); // compact empty name and version, no tags
    const size = Buffer.alloc(4);
    size.writeInt32BE(header.length + body.length);
    const answer = client.expect(correlationId);
    client.writeRaw(Buffer.concat([size, header, body]));
    const fallback = decodeResponse('ApiVersions', 0, await answer).body;
    expect(fallback.errorCode).toBe(errorCode('UNSUPPORTED_VERSION'));
    expect(fallback.apiKeys).toEqual(listed.apiKeys);
    expect((await client.send('ApiVersions', 0, {})).errorCode).toBe(0);
  });

  it('lists the 3 brokers at their Kafka ports, the controller and the cluster id, from every node', async () => {
    const expected = nodes.map((node) => ({ nodeId: node.nodeId, host: '127.0.0.1', port: node.kafkaPort, rack: null }));
    for (const node of nodes) {
      const client = await connect(node);
      const response = await waitFor(
        `node ${node.nodeId} to list 3 brokers`,
        async () => {
          const answer = await client.send('Metadata', 12, { topics: null });
          return answer.brokers.length === 3 ? answer : undefined;
        },
        10_000,
      );
      expect(response.brokers).toEqual(expected);
      expect(response.clusterId).toBe(fixture.cluster.clusterId);
      expect(nodes.map((candidate) => candidate.nodeId)).toContain(response.controllerId);
    }
  });

  it('creates a topic on Metadata (auto.create.topics.enable) with the defaults: 3 partitions, 3 replicas, a leader each', async () => {
    const client = await connect(nodes[1]);
    const response = await client.send('Metadata', 9, { topics: [{ name: 'door-auto' }], allowAutoTopicCreation: true });
    const [topic] = response.topics;
    expect(topic).toMatchObject({ errorCode: 0, name: 'door-auto', isInternal: false });
    expect(topic!.partitions).toHaveLength(3);
    for (const partition of topic!.partitions) {
      expect(partition.errorCode).toBe(0);
      expect([...partition.replicaNodes].sort()).toEqual([1, 2, 3]);
      expect(partition.replicaNodes).toContain(partition.leaderId);
      expect(partition.leaderEpoch).toBeGreaterThanOrEqual(0);
    }
  });

  /** A topic of 3 partitions, RF 3 (auto-created), and which node leads partition 0. */
  async function topicWithLeader(name: string): Promise<{ leader: NodeProcess; follower: NodeProcess; epoch: number }> {
    const client = await connect();
    const partition = await waitFor(
      `a leader for ${name}-0 with a full ISR`,
      async () => {
        const [topic] = (await client.send('Metadata', 9, { topics: [{ name }], allowAutoTopicCreation: true })).topics;
        const state = topic?.partitions.find((candidate) => candidate.partitionIndex === 0);
        return state !== undefined && state.leaderId >= 0 && state.isrNodes.length === 3 ? state : undefined;
      },
      15_000,
    );
    const leader = nodes.find((node) => node.nodeId === partition.leaderId)!;
    // The node that created the topic has applied it; the leader may be a moment behind.
    const atLeader = await connect(leader);
    await waitFor(
      `${name}-0 on its leader`,
      async () => {
        const [topic] = (await atLeader.send('Metadata', 9, { topics: [{ name }], allowAutoTopicCreation: false })).topics;
        return topic?.partitions.find((candidate) => candidate.partitionIndex === 0)?.leaderId === leader.nodeId ? true : undefined;
      },
      10_000,
    );
    return { leader, follower: nodes.find((node) => node !== leader)!, epoch: partition.leaderEpoch };
  }

  it('produces with acks=all and fetches back the same bytes at the same offsets; a non-leader says NOT_LEADER_OR_FOLLOWER', async () => {
    const { leader, follower, epoch } = await topicWithLeader('door-records');
    const client = await connect(leader);
    const batches = [0, 1, 2].map((k) => encodeRecordBatch(Array.from({ length: 5 }, (_, r) => ({ key: Buffer.from(`k${r}`), value: Buffer.from(`batch ${k} record ${r}`) }))));
    for (const [k, batch] of batches.entries()) {
      const response = await client.send('Produce', 9, { acks: -1, timeoutMs: 10_000, topicData: [{ name: 'door-records', partitionData: [{ index: 0, records: Buffer.from(batch) }] }] });
      expect(response.responses[0]!.partitionResponses[0]).toMatchObject({ errorCode: 0, baseOffset: BigInt(k * 5) });
    }
    const fetched = (await client.send('Fetch', 12, { maxWaitMs: 0, minBytes: 1, maxBytes: 1 << 20, topics: [{ topic: 'door-records', partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20, currentLeaderEpoch: epoch }] }] })).responses[0]!.partitions[0]!;
    expect(fetched).toMatchObject({ errorCode: 0, highWatermark: 15n, lastStableOffset: 15n });
    let position = 0;
    for (const [k, batch] of batches.entries()) {
      const header = readBatchHeader(fetched.records!, position);
      expect([header.baseOffset, header.partitionLeaderEpoch]).toEqual([k * 5, epoch]);
      expect(fetched.records!.subarray(position + MAGIC_OFFSET, position + batch.length).equals(batch.subarray(MAGIC_OFFSET))).toBe(true);
      position += batch.length;
    }
    expect(position).toBe(fetched.records!.length);

    const elsewhere = await connect(follower);
    const refused = await elsewhere.send('Produce', 7, { acks: -1, timeoutMs: 5_000, topicData: [{ name: 'door-records', partitionData: [{ index: 0, records: encodeRecordBatch([{ value: Buffer.from('x') }]) }] }] });
    expect(refused.responses[0]!.partitionResponses[0]!.errorCode).toBe(errorCode('NOT_LEADER_OR_FOLLOWER'));
    const notHere = await elsewhere.send('Fetch', 11, { maxWaitMs: 0, minBytes: 1, topics: [{ topic: 'door-records', partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1024 }] }] });
    expect(notHere.responses[0]!.partitions[0]!.errorCode).toBe(errorCode('NOT_LEADER_OR_FOLLOWER'));
  });

  it('interoperates with the gRPC door: a record produced through one reads back through the other at the same offset', async () => {
    const { leader } = await topicWithLeader('door-interop');
    const client = await connect(leader);
    const viaGrpc = await produceOnce(leader.bootstrap, 'door-interop', 0);
    expect(viaGrpc.errorCode).toBe(0);
    // acks=1: the followers may not have it yet; the long poll answers once the high watermark passes it.
    const fetched = (await client.send('Fetch', 11, { maxWaitMs: 10_000, minBytes: 1, topics: [{ topic: 'door-interop', partitions: [{ partition: 0, fetchOffset: BigInt(viaGrpc.baseOffset), partitionMaxBytes: 1 << 20 }] }] })).responses[0]!.partitions[0]!;
    const record = allRecords(fetched.records!).find((candidate) => candidate.offset === Number(viaGrpc.baseOffset));
    expect(record?.value?.toString()).toBe('probe');

    const batch = encodeRecordBatch([{ value: Buffer.from('through the Kafka door') }]);
    const produced = await client.send('Produce', 8, { acks: -1, timeoutMs: 10_000, topicData: [{ name: 'door-interop', partitionData: [{ index: 0, records: Buffer.from(batch) }] }] });
    const offset = Number(produced.responses[0]!.partitionResponses[0]!.baseOffset);
    expect(offset).toBe(Number(viaGrpc.baseOffset) + 1);
    const viaGrpcFetch = await grpcFetch(leader.bootstrap, 'door-interop', 0, offset);
    expect(viaGrpcFetch.errorCode).toBe(0);
    const stored = Buffer.from(viaGrpcFetch.records);
    const at = allRecords(stored).find((candidate) => candidate.offset === offset);
    expect(at?.value?.toString()).toBe('through the Kafka door');
  });

  it('answers pipelined requests in the order they were sent', async () => {
    const { leader } = await topicWithLeader('door-pipeline');
    const client = await connect(leader);
    const requests = [
      client.encode('Produce', 9, { acks: -1, timeoutMs: 10_000, topicData: [{ name: 'door-pipeline', partitionData: [{ index: 0, records: encodeRecordBatch([{ value: Buffer.from('1') }]) }] }] }),
      client.encode('Metadata', 1, { topics: [] }),
      client.encode('Produce', 3, { acks: -1, timeoutMs: 10_000, topicData: [{ name: 'door-pipeline', partitionData: [{ index: 0, records: encodeRecordBatch([{ value: Buffer.from('2') }]) }] }] }),
      client.encode('ApiVersions', 2, {}),
      client.encode('Fetch', 4, { maxWaitMs: 500, minBytes: 1, topics: [{ topic: 'door-pipeline', partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }] }] }),
    ];
    const answers = requests.map(({ correlationId }) => client.expect(correlationId));
    client.writeRaw(Buffer.concat(requests.map(({ frame }) => frame)));
    const frames = await Promise.all(answers);
    expect(client.answeredOrder).toEqual(requests.map(({ correlationId }) => correlationId));
    for (const k of [0, 2]) expect(decodeResponse('Produce', k === 0 ? 9 : 3, frames[k]!).body.responses[0]!.partitionResponses[0]!.errorCode).toBe(0);
    const fetched = decodeResponse('Fetch', 4, frames[4]!).body.responses[0]!.partitions[0]!;
    expect(allRecords(fetched.records!).map((record) => record.value!.toString())).toEqual(['1', '2']);
  });

  it('closes a connection sending an oversized frame, garbage or a truncated request (one log line each); other connections and clients go on', async () => {
    const node = nodes[2]!;
    const bystander = await connect(node);
    const closingLines = () => node.logs().split('\n').filter((line) => line.includes('closing Kafka connection from'));
    const before = closingLines().length;

    const oversized = await connect(node);
    const size = Buffer.alloc(4);
    size.writeInt32BE(2 * 1024 * 1024);
    oversized.writeRaw(Buffer.concat([size, Buffer.alloc(1024)]));
    await oversized.closed;

    const garbage = await connect(node);
    // 16 bytes that frame correctly but are no request header (API key -2, a client id longer than the frame).
    garbage.writeRaw(Buffer.concat([Buffer.from([0, 0, 0, 16]), Buffer.from('\u00ff\u00fe garbage \u0001\u0002!!!', 'latin1')]));
    await garbage.closed;

    const truncated = await connect(node);
    const metadata = truncated.encode('Metadata', 9, { topics: [{ name: 'some-topic' }] }).frame;
    const cut = metadata.subarray(0, metadata.length - 6);
    cut.writeInt32BE(cut.length - 4, 0); // a well-framed request whose body stops short
    truncated.writeRaw(cut);
    await truncated.closed;

    await waitFor('three log lines', () => (closingLines().length - before === 3 ? true : undefined), 5_000);
    const lines = closingLines().slice(before);
    expect(lines[0]).toMatch(/frame size 2097152 is larger than the limit of 1048576 bytes/);
    expect(lines[1]).toMatch(/malformed request|not supported/);
    expect(lines[2]).toMatch(/malformed request: .*MetadataRequest v9/);
    for (const line of lines) expect(line).toMatch(/closing Kafka connection from 127\.0\.0\.1:\d+: /);

    expect((await bystander.send('Metadata', 12, { topics: null })).brokers).toHaveLength(3);
    const fresh = await connect(node);
    expect((await fresh.send('ApiVersions', 3, { clientSoftwareName: 'after', clientSoftwareVersion: '1' })).errorCode).toBe(0);
    // A real Kafka client, through the node that just refused bad input.
    const kafka = new Kafka({ clientId: 'kafka-door-it', brokers: [node.kafkaBootstrap], logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    try {
      const sent = await producer.send({ topic: 'door-kafkajs', acks: -1, messages: [{ key: 'k', value: 'after the garbage' }] });
      expect(sent[0]!.errorCode).toBe(0);
    } finally {
      await producer.disconnect();
    }
  });

  it('runs a consumer group member\'s round through the Kafka door: find the coordinator, join, sync, heartbeat, commit, fetch, leave', async () => {
    const groupId = 'door-group';
    const asker = await connect(nodes[0]);
    const found = await waitFor(
      'a coordinator for door-group',
      async () => {
        const answer = await asker.send('FindCoordinator', 2, { key: groupId, keyType: 0 });
        return answer.errorCode === 0 ? answer : undefined;
      },
      20_000,
      250,
    );
    const coordinatorNode = nodes.find((node) => node.nodeId === found.nodeId)!;
    expect([found.host, found.port]).toEqual(['127.0.0.1', coordinatorNode.kafkaPort]);
    const member = await connect(coordinatorNode, 'door-group-member');
    const join = (memberId: string) =>
      waitFor(
        'a JoinGroup the coordinator has loaded for',
        async () => {
          const answer = await member.send('JoinGroup', 5, { groupId, sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, memberId, protocolType: 'consumer', protocols: [{ name: 'range', metadata: Buffer.from('door-records') }] });
          return answer.errorCode === errorCode('COORDINATOR_LOAD_IN_PROGRESS') ? undefined : answer;
        },
        10_000,
      );
    const first = await join('');
    expect(first.errorCode).toBe(errorCode('MEMBER_ID_REQUIRED'));
    const joined = await join(first.memberId);
    expect(joined).toMatchObject({ errorCode: 0, generationId: 1, leader: first.memberId, memberId: first.memberId });
    const synced = await member.send('SyncGroup', 3, { groupId, generationId: 1, memberId: joined.memberId, assignments: [{ memberId: joined.memberId, assignment: Buffer.from('door-records:0') }] });
    expect([synced.errorCode, synced.assignment.toString()]).toEqual([0, 'door-records:0']);
    expect((await member.send('Heartbeat', 3, { groupId, generationId: 1, memberId: joined.memberId })).errorCode).toBe(0);
    const committed = await member.send('OffsetCommit', 7, { groupId, generationIdOrMemberEpoch: 1, memberId: joined.memberId, topics: [{ name: 'door-records', partitions: [{ partitionIndex: 0, committedOffset: 15n, committedLeaderEpoch: 0, committedMetadata: 'done' }] }] });
    expect(committed.topics[0]!.partitions[0]!.errorCode).toBe(0);

    // Another connection (a restarted consumer) reads the commit back.
    const later = await connect(coordinatorNode);
    const fetched = await later.send('OffsetFetch', 5, { groupId, topics: [{ name: 'door-records', partitionIndexes: [0] }] });
    expect(fetched.topics[0]!.partitions[0]).toMatchObject({ committedOffset: 15n, metadata: 'done', errorCode: 0 });
    expect((await member.send('LeaveGroup', 1, { groupId, memberId: joined.memberId })).errorCode).toBe(0);
    const described = await later.send('DescribeGroups', 5, { groups: [groupId] });
    expect(described.groups[0]).toMatchObject({ errorCode: 0, groupState: 'Empty' });
    // Any other broker sends the member back to its coordinator.
    const other = await connect(nodes.find((node) => node !== coordinatorNode)!);
    expect((await other.send('Heartbeat', 3, { groupId, generationId: 1, memberId: joined.memberId })).errorCode).toBe(errorCode('NOT_COORDINATOR'));
  });
});
