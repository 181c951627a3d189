import { RunnelError } from '@runnel/common';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Admin, Producer } from '../src/index.js';
import { FakeCluster } from './fakeBroker.js';

describe('Admin against a fake broker', () => {
  let cluster: FakeCluster;
  let admin: Admin;

  beforeEach(async () => {
    cluster = await FakeCluster.start(2);
    admin = new Admin({ bootstrap: cluster.bootstrap, requestTimeoutMs: 5000 });
  });

  afterEach(async () => {
    await admin.close();
    await cluster.stop();
  });

  it('creates, lists, describes and deletes topics', async () => {
    await admin.createTopics([
      { name: 'orders', partitions: 3, configs: { 'retention.ms': '1000' } },
      { name: 'audit', partitions: 1 },
    ]);
    expect(await admin.listTopics()).toEqual(['audit', 'orders']);
    const [orders] = await admin.describeTopics(['orders']);
    expect(orders!.name).toBe('orders');
    expect(orders!.partitions.map((partition) => partition.partition)).toEqual([0, 1, 2]);
    expect(orders!.partitions.map((partition) => partition.leader)).toEqual([1, 2, 1]);
    expect(orders!.configs).toEqual({ 'retention.ms': '1000' });
    expect((await admin.describeTopics()).map((topic) => topic.name)).toEqual(['audit', 'orders']);
    await admin.deleteTopics(['audit']);
    expect(await admin.listTopics()).toEqual(['orders']);
  });

  it('validateOnly creates nothing', async () => {
    await admin.createTopics([{ name: 'dry', partitions: 2 }], { validateOnly: true });
    expect(await admin.listTopics()).toEqual([]);
  });

  it('maps per-topic error codes to RunnelErrors naming the topic', async () => {
    await admin.createTopics([{ name: 'exists', partitions: 1 }]);
    const error = await admin.createTopics([{ name: 'fine', partitions: 1 }, { name: 'exists', partitions: 1 }]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RunnelError);
    expect((error as RunnelError).errorName).toBe('TOPIC_ALREADY_EXISTS');
    expect((error as RunnelError).message).toContain("'exists'");
    await expect(admin.createTopics([{ name: 'zero', partitions: 0 }])).rejects.toMatchObject({ errorName: 'INVALID_PARTITIONS', retriable: false });
    await expect(admin.createTopics([{ name: 'bad name!' }])).rejects.toMatchObject({ errorName: 'INVALID_TOPIC_EXCEPTION' });
    await expect(admin.deleteTopics(['missing'])).rejects.toMatchObject({ errorName: 'UNKNOWN_TOPIC_OR_PARTITION', message: expect.stringContaining("'missing'") });
    cluster.createTopicFaults.push({ topic: 'policy', errorCode: 44, times: 1, message: 'too many partitions' });
    await expect(admin.createTopics([{ name: 'policy' }])).rejects.toMatchObject({ errorName: 'POLICY_VIOLATION', message: expect.stringContaining('too many partitions') });
  });

  it('grows a topic (placed by the controller, or as assigned); a count that is not an increase is INVALID_PARTITIONS naming the topic', async () => {
    await admin.createTopics([{ name: 'orders', partitions: 2 }]);
    await admin.createPartitions([{ topic: 'orders', count: 3 }], { validateOnly: true });
    expect((await admin.describeTopics(['orders']))[0]!.partitions).toHaveLength(2);
    await admin.createPartitions([{ topic: 'orders', count: 4 }]);
    await admin.createPartitions([{ topic: 'orders', count: 5, assignments: [[2, 1]] }]);
    expect((await admin.describeTopics(['orders']))[0]!.partitions).toHaveLength(5);
    expect(cluster.createPartitionsRequests.map((request) => [request.validateOnly, request.topics])).toEqual([
      [true, [{ name: 'orders', count: 3, assignments: [] }]],
      [false, [{ name: 'orders', count: 4, assignments: [] }]],
      [false, [{ name: 'orders', count: 5, assignments: [{ brokerIds: [2, 1] }] }]],
    ]);
    const refused = await admin.createPartitions([{ topic: 'orders', count: 3 }]).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(RunnelError);
    expect(refused).toMatchObject({ errorName: 'INVALID_PARTITIONS', detail: expect.stringMatching(/^cannot grow topic 'orders': the topic currently has 5 partition/) });
  });

  it('describeTopics of an unknown topic throws UNKNOWN_TOPIC_OR_PARTITION naming it', async () => {
    await admin.createTopics([{ name: 'known', partitions: 1 }]);
    const error = (await admin.describeTopics(['known', 'ghost']).catch((e: unknown) => e)) as RunnelError;
    expect(error).toBeInstanceOf(RunnelError);
    expect(error.errorName).toBe('UNKNOWN_TOPIC_OR_PARTITION');
    expect(error.message).toContain("'ghost'");
  });

  it('describes the cluster', async () => {
    const description = await admin.describeCluster();
    expect(description.clusterId).toBe('fake-cluster');
    expect(description.controllerId).toBe(1);
    expect(description.brokers).toEqual([
      { nodeId: 1, host: '127.0.0.1', port: cluster.brokers[0]!.port, rack: null },
      { nodeId: 2, host: '127.0.0.1', port: cluster.brokers[1]!.port, rack: 'rack-b' },
    ]);
  });

  it('reports the cluster status sorted: nodes by id, topics by name, partitions by id', async () => {
    await admin.createTopics([{ name: 'zeta', partitions: 1 }, { name: 'alpha', partitions: 3 }]);
    const status = await admin.clusterStatus();
    expect(status.clusterId).toBe('fake-cluster');
    expect(status.controller).toEqual({ id: 1, term: 3 });
    expect(status.voters.map((voter) => voter.id)).toEqual([1, 2]);
    expect(status.servedBy).toBe(1);
    expect(status.metadataOffset).toBe(10);
    expect(status.nodes).toEqual([
      { id: 1, host: '127.0.0.1', port: cluster.brokers[0]!.port, rack: null, fenced: false, incarnationId: 'incarnation-1', brokerEpoch: 1, inControlledShutdown: false, offlineReplicas: [], logDir: 'online', decommissioned: false },
      {
        id: 2,
        host: '127.0.0.1',
        port: cluster.brokers[1]!.port,
        rack: 'rack-b',
        fenced: false,
        incarnationId: 'incarnation-2',
        brokerEpoch: 2,
        inControlledShutdown: false,
        offlineReplicas: [{ topic: 'alpha', partition: 0 }],
        logDir: 'full',
        decommissioned: false,
      },
    ]);
    expect(status.topics.map((topic) => topic.name)).toEqual(['alpha', 'zeta']);
    expect(status.topics[0]!.partitions).toEqual([
      { partition: 0, leader: 1, leaderEpoch: 1, partitionEpoch: 2, replicas: [1], isr: [1], addingReplicas: [], removingReplicas: [], offlineReplicas: [], minInsyncReplicas: 0 },
      { partition: 1, leader: 2, leaderEpoch: 1, partitionEpoch: 2, replicas: [2], isr: [2], addingReplicas: [], removingReplicas: [], offlineReplicas: [], minInsyncReplicas: 0 },
      { partition: 2, leader: 1, leaderEpoch: 1, partitionEpoch: 2, replicas: [1], isr: [1], addingReplicas: [], removingReplicas: [], offlineReplicas: [], minInsyncReplicas: 0 },
    ]);
  });

  it('retries a retriable DescribeCluster error and throws a fatal one', async () => {
    cluster.describeClusterFault = { errorCode: 41, message: 'no active controller yet', times: 1 };
    expect((await admin.clusterStatus()).clusterId).toBe('fake-cluster');
    cluster.describeClusterFault = { errorCode: 42, message: 'broken', times: 1 };
    await expect(admin.clusterStatus()).rejects.toMatchObject({ errorName: 'INVALID_REQUEST', message: expect.stringContaining('broken') });
  });

  it('elects preferred leaders and reports what moved and what did not', async () => {
    expect(await admin.electPreferredLeaders()).toEqual({ moved: [], notMoved: [] });
    cluster.electPreferredLeadersResponse = {
      errorCode: 0,
      moved: [
        { topic: 'demo', partition: 3, from: 2, to: 1, leaderEpoch: 4 },
        { topic: 'demo', partition: 0, from: 3, to: 1, leaderEpoch: 2 },
      ],
      notMoved: [{ topic: 'demo', partition: 5, preferred: 3, leader: 2, reason: 'preferred replica 3 is not in the ISR' }],
    };
    const result = await admin.electPreferredLeaders();
    expect(result.moved).toEqual([
      { topic: 'demo', partition: 0, from: 3, to: 1, leaderEpoch: 2 },
      { topic: 'demo', partition: 3, from: 2, to: 1, leaderEpoch: 4 },
    ]);
    expect(result.notMoved).toEqual([{ topic: 'demo', partition: 5, preferred: 3, leader: 2, reason: 'preferred replica 3 is not in the ISR' }]);
    cluster.electPreferredLeadersResponse = { errorCode: 19, errorMessage: 'not now', moved: [], notMoved: [] };
    await expect(admin.electPreferredLeaders()).rejects.toMatchObject({ errorName: 'NOT_ENOUGH_REPLICAS' });
  });

  it('lists offsets from each partition leader', async () => {
    await admin.createTopics([{ name: 'offsets', partitions: 2 }]);
    const producer = new Producer({ bootstrap: cluster.bootstrap, lingerMs: 0 });
    const timestamps = [1000, 2000, 3000];
    for (const timestamp of timestamps) await producer.send({ topic: 'offsets', partition: 1, value: `v${timestamp}`, timestamp });
    await producer.close();
    const answers = await admin.listOffsets([
      { topic: 'offsets', partition: 1, timestamp: 'latest' },
      { topic: 'offsets', partition: 1, timestamp: 'earliest' },
      { topic: 'offsets', partition: 1, timestamp: 1500 },
      { topic: 'offsets', partition: 0, timestamp: 'latest' },
    ]);
    expect(answers.map((answer) => answer.offset)).toEqual([3, 0, 1, 0]);
    expect(answers[2]!.timestamp).toBe(2000);
    await expect(admin.listOffsets([{ topic: 'offsets', partition: 9, timestamp: 'latest' }])).rejects.toMatchObject({ errorName: 'UNKNOWN_TOPIC_OR_PARTITION' });
    await expect(admin.listOffsets([{ topic: 'nope', partition: 0, timestamp: 'latest' }])).rejects.toMatchObject({ errorName: 'UNKNOWN_TOPIC_OR_PARTITION' });
  });

  it('lists offsets of topics asked for at once, each first seen while the metadata of the other was being fetched', async () => {
    await admin.createTopics([{ name: 'left', partitions: 1 }, { name: 'right', partitions: 1 }]);
    const [left, right] = await Promise.all([
      admin.listOffsets([{ topic: 'left', partition: 0, timestamp: 'latest' }]),
      admin.listOffsets([{ topic: 'right', partition: 0, timestamp: 'latest' }]),
    ]);
    expect([left![0]!.topic, right![0]!.topic]).toEqual(['left', 'right']);
  });

  it('fails with a retriable NETWORK_EXCEPTION when no broker answers', async () => {
    const lonely = new Admin({ bootstrap: '127.0.0.1:1', requestTimeoutMs: 500 });
    const error = (await lonely.listTopics().catch((e: unknown) => e)) as RunnelError;
    await lonely.close();
    expect(error).toBeInstanceOf(RunnelError);
    expect(error.errorName).toBe('NETWORK_EXCEPTION');
    expect(error.retriable).toBe(true);
  });
});
