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

  it('fails with a retriable NETWORK_EXCEPTION when no broker answers', async () => {
    const lonely = new Admin({ bootstrap: '127.0.0.1:1', requestTimeoutMs: 500 });
    const error = (await lonely.listTopics().catch((e: unknown) => e)) as RunnelError;
    await lonely.close();
    expect(error).toBeInstanceOf(RunnelError);
    expect(error.errorName).toBe('NETWORK_EXCEPTION');
    expect(error.retriable).toBe(true);
  });
});
