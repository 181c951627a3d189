// The Kafka door on a real 3-node cluster, over raw sockets with @runnel/kafka-protocol's client-side
// codec: nothing a client library could hide. Version negotiation, the cluster as Kafka clients see
// it (every broker at its PLAINTEXT port), and bad input that costs only its own connection.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode } from '@runnel/common';
import { API_KEYS, decodeResponse } from '@runnel/kafka-protocol';
import { KafkaWireClient, type NodeProcess } from '@runnel/testkit';
import { useCluster, waitFor } from './harness.js';

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
});
