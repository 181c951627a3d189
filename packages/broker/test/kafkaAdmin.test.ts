// CreateTopics, DeleteTopics, CreatePartitions and DescribeConfigs through the Kafka door, at every
// version served: topic changes reach the controller (here its stand-in, which publishes the
// records to the broker's real logs), and configs are described as Kafka's admin clients read them.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TOPIC_CONFIG, errorCode } from '@runnel/common';
import type { KafkaWireClient } from '@runnel/testkit';
import { KafkaDoorFixture, OTHER_BROKER, THIS_BROKER } from './kafkaDoorHarness.js';

const uuidOf = (topicId: string) => Buffer.from(topicId, 'base64url').toString('hex').replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-');

describe('the Kafka door\'s admin APIs', () => {
  let fixture: KafkaDoorFixture;
  let client: KafkaWireClient;

  beforeEach(async () => {
    fixture = await KafkaDoorFixture.start({ config: { 'log.retention.hours': '24', 'num.partitions': '1' } });
    client = await fixture.connect();
  });

  afterEach(async () => {
    client.close();
    await fixture.close();
  });

  it('creates topics at CreateTopics 0-7, with the result fields each version has', async () => {
    for (let version = 0; version <= 7; version++) {
      const name = `created-v${version}`;
      const response = await client.send('CreateTopics', version, {
        topics: [{ name, numPartitions: 2, replicationFactor: 1, assignments: [], configs: [{ name: 'retention.ms', value: '1000' }] }],
        timeoutMs: 5_000,
      });
      const [result] = response.topics;
      expect(result).toMatchObject({ name, errorCode: 0 });
      expect(fixture.image.topic(name)?.partitionCount).toBe(2);
      expect(fixture.image.topicConfigs(name).get('retention.ms')).toBe('1000');
      if (version >= 5) {
        expect(result).toMatchObject({ numPartitions: 2, replicationFactor: 1 });
        expect(result!.configs!.find((config) => config.name === 'retention.ms')).toMatchObject({ value: '1000', configSource: 1, readOnly: false });
        expect(result!.configs!.find((config) => config.name === 'segment.bytes')).toMatchObject({ value: '1073741824', configSource: 5 });
      }
      if (version >= 7) expect(result!.topicId).toBe(uuidOf(fixture.image.topic(name)!.id));
    }
  });

  it('refuses what Kafka refuses: duplicates, manual assignments, null configs, an existing name; validate-only creates nothing', async () => {
    await fixture.createTopic('taken', 1);
    const response = await client.send('CreateTopics', 4, {
      topics: [
        { name: 'twice', numPartitions: 1, replicationFactor: 1 },
        { name: 'twice', numPartitions: 1, replicationFactor: 1 },
        { name: 'placed', numPartitions: 1, replicationFactor: 1, assignments: [{ partitionIndex: 0, brokerIds: [1] }] },
        { name: 'nulled', numPartitions: 1, replicationFactor: 1, configs: [{ name: 'retention.ms', value: null }] },
        { name: 'taken', numPartitions: 1, replicationFactor: 1 },
        { name: 'too-wide', numPartitions: 1, replicationFactor: 3 },
        { name: 'defaults', numPartitions: -1, replicationFactor: -1 },
      ],
      timeoutMs: 5_000,
    });
    expect(response.topics.map((topic) => [topic.name, topic.errorCode])).toEqual([
      ['twice', errorCode('INVALID_REQUEST')],
      ['twice', errorCode('INVALID_REQUEST')],
      ['placed', errorCode('INVALID_REQUEST')],
      ['nulled', errorCode('INVALID_CONFIG')],
      ['taken', errorCode('TOPIC_ALREADY_EXISTS')],
      ['too-wide', errorCode('INVALID_REPLICATION_FACTOR')],
      ['defaults', 0],
    ]);
    expect(response.topics[2]!.errorMessage).toMatch(/replica assignments are not supported/);
    const dryRun = await client.send('CreateTopics', 7, { topics: [{ name: 'dry', numPartitions: 3, replicationFactor: 1 }], validateOnly: true });
    expect(dryRun.topics[0]).toMatchObject({ errorCode: 0, numPartitions: 3, topicId: '00000000-0000-0000-0000-000000000000' });
    expect(fixture.image.topic('dry')).toBeUndefined();
  });

  it('deletes topics at DeleteTopics 0-6, by name and (v6) by id', async () => {
    for (let version = 0; version <= 5; version++) {
      await fixture.createTopic(`gone-v${version}`, 1);
      const response = await client.send('DeleteTopics', version, { topicNames: [`gone-v${version}`, 'never-was'], timeoutMs: 5_000 });
      expect(response.responses.map((topic) => [topic.name, topic.errorCode])).toEqual([
        [`gone-v${version}`, 0],
        ['never-was', errorCode('UNKNOWN_TOPIC_OR_PARTITION')],
      ]);
      expect(fixture.image.topic(`gone-v${version}`)).toBeUndefined();
    }
    const topicId = await fixture.createTopic('by-id', 1);
    await fixture.createTopic('by-name', 1);
    const response = await client.send('DeleteTopics', 6, {
      topics: [
        { name: null, topicId: uuidOf(topicId) },
        { name: 'by-name', topicId: '00000000-0000-0000-0000-000000000000' },
        { name: null, topicId: '12345678-1234-1234-1234-123456789012' },
      ],
      timeoutMs: 5_000,
    });
    expect(response.responses.map((topic) => [topic.name, topic.topicId, topic.errorCode])).toEqual([
      ['by-id', uuidOf(topicId), 0],
      ['by-name', expect.stringMatching(/^[0-9a-f-]{36}$/), 0],
      [null, '12345678-1234-1234-1234-123456789012', errorCode('UNKNOWN_TOPIC_ID')],
    ]);
    expect(fixture.image.topics()).toEqual([]);
  });

  it('grows topics at CreatePartitions 0-3, placed by the controller or as assigned; validate-only adds nothing', async () => {
    for (let version = 0; version <= 3; version++) {
      const name = `grown-v${version}`;
      await fixture.createTopic(name, 2);
      const checked = await client.send('CreatePartitions', version, { topics: [{ name, count: 5, assignments: null }], timeoutMs: 5_000, validateOnly: true });
      expect(checked.results).toEqual([{ name, errorCode: 0, errorMessage: null }]);
      expect(fixture.image.topic(name)!.partitionCount).toBe(2);
      const response = await client.send('CreatePartitions', version, { topics: [{ name, count: 4, assignments: null }], timeoutMs: 5_000, validateOnly: false });
      expect(response.results).toEqual([{ name, errorCode: 0, errorMessage: null }]);
      // Answered once this broker has applied the new partitions.
      expect(fixture.image.topic(name)!.partitionCount).toBe(4);
      const assigned = await client.send('CreatePartitions', version, {
        topics: [{ name, count: 6, assignments: [{ brokerIds: [OTHER_BROKER] }, { brokerIds: [THIS_BROKER] }] }],
        timeoutMs: 5_000,
        validateOnly: false,
      });
      expect(assigned.results[0]!.errorCode).toBe(0);
      expect(fixture.image.partition(name, 4)).toMatchObject({ replicas: [OTHER_BROKER], leader: OTHER_BROKER });
      expect(fixture.image.partition(name, 5)).toMatchObject({ replicas: [THIS_BROKER], leader: THIS_BROKER });
    }
  });

  it('refuses shrinking (INVALID_PARTITIONS), unknown topics, duplicates and bad assignments, with messages', async () => {
    await fixture.createTopic('fixed', 3);
    const response = await client.send('CreatePartitions', 2, {
      topics: [
        { name: 'fixed', count: 2, assignments: null },
        { name: 'missing', count: 4, assignments: null },
        { name: 'fixed', count: 3, assignments: null },
        { name: 'fixed', count: 5, assignments: [{ brokerIds: [THIS_BROKER] }] },
      ],
      timeoutMs: 5_000,
      validateOnly: false,
    });
    expect(response.results.map((result) => [result.name, result.errorCode])).toEqual([
      ['fixed', errorCode('INVALID_REQUEST')],
      ['missing', errorCode('UNKNOWN_TOPIC_OR_PARTITION')],
      ['fixed', errorCode('INVALID_REQUEST')],
      ['fixed', errorCode('INVALID_REQUEST')],
    ]);
    const one = async (topic: { name: string; count: number; assignments: Array<{ brokerIds: number[] }> | null }) =>
      (await client.send('CreatePartitions', 3, { topics: [topic], timeoutMs: 5_000, validateOnly: false })).results[0]!;
    expect(await one({ name: 'fixed', count: 2, assignments: null })).toMatchObject({
      errorCode: errorCode('INVALID_PARTITIONS'),
      errorMessage: 'the topic currently has 3 partition(s); 2 would not be an increase (partitions cannot be removed)',
    });
    expect(await one({ name: 'fixed', count: 3, assignments: null })).toMatchObject({ errorCode: errorCode('INVALID_PARTITIONS'), errorMessage: 'the topic already has 3 partition(s)' });
    expect(await one({ name: 'fixed', count: 5, assignments: [{ brokerIds: [THIS_BROKER] }] })).toMatchObject({
      errorCode: errorCode('INVALID_REPLICA_ASSIGNMENT'),
      errorMessage: 'attempted to add 2 partition(s), but 1 assignment(s) were given',
    });
    expect(await one({ name: 'fixed', count: 4, assignments: [] })).toMatchObject({ errorCode: errorCode('INVALID_REPLICA_ASSIGNMENT'), errorMessage: 'attempted to add 1 partition(s), but 0 assignment(s) were given' });
    expect(await one({ name: 'fixed', count: 4, assignments: [{ brokerIds: [7] }] })).toMatchObject({ errorCode: errorCode('INVALID_REPLICA_ASSIGNMENT'), errorMessage: expect.stringMatching(/broker 7, but no such broker/) });
    expect(fixture.image.topic('fixed')!.partitionCount).toBe(3);
  });

  it('describes a topic\'s configs: its overrides, and the broker values it falls back to, with sources and synonyms', async () => {
    await client.send('CreateTopics', 4, { topics: [{ name: 'tuned', numPartitions: 1, replicationFactor: 1, configs: [{ name: 'cleanup.policy', value: 'compact' }] }], timeoutMs: 5_000 });
    for (let version = 0; version <= 4; version++) {
      const response = await client.send('DescribeConfigs', version, {
        resources: [{ resourceType: 2, resourceName: 'tuned', configurationKeys: null }],
        includeSynonyms: version >= 1,
        includeDocumentation: version >= 3,
      });
      const [result] = response.results;
      expect(result).toMatchObject({ errorCode: 0, errorMessage: null, resourceType: 2, resourceName: 'tuned' });
      expect(result!.configs.map((config) => config.name).sort()).toEqual(Object.keys(TOPIC_CONFIG.keys).sort());
      const policy = result!.configs.find((config) => config.name === 'cleanup.policy')!;
      const retention = result!.configs.find((config) => config.name === 'retention.ms')!;
      expect(policy).toMatchObject({ value: 'compact', readOnly: false, isSensitive: false });
      // log.retention.hours=24 is set in the broker's config: retention.ms falls back to it.
      expect(retention.value).toBe(String(24 * 3_600_000));
      if (version === 0) {
        expect([policy.isDefault, retention.isDefault]).toEqual([false, false]);
      } else {
        expect([policy.configSource, retention.configSource]).toEqual([1, 4]);
        expect(policy.synonyms).toEqual([
          { name: 'cleanup.policy', value: 'compact', source: 1 },
          { name: 'log.cleanup.policy', value: 'delete', source: 5 },
        ]);
      }
      if (version >= 3) {
        expect(retention).toMatchObject({ configType: 5 });
        expect(retention.documentation).toContain('log.retention.ms');
      }
    }
  });

  it('describes this broker\'s configs by id, filtered by key, the cluster-wide dynamic defaults by the empty name; another broker\'s is refused', async () => {
    const response = await client.send('DescribeConfigs', 4, {
      resources: [
        { resourceType: 4, resourceName: String(THIS_BROKER), configurationKeys: ['num.partitions', 'log.retention.hours', 'delete.topic.enable'] },
        { resourceType: 4, resourceName: '', configurationKeys: null },
        { resourceType: 4, resourceName: '2', configurationKeys: null },
        { resourceType: 2, resourceName: 'no-such-topic', configurationKeys: null },
        { resourceType: 8, resourceName: '1', configurationKeys: null },
      ],
    });
    const [own, empty, other, missing, loggers] = response.results;
    expect(own!.configs.map((config) => [config.name, config.value, config.configSource, config.readOnly])).toEqual([
      ['num.partitions', '1', 5, true],
      ['delete.topic.enable', 'true', 5, true],
      ['log.retention.hours', '24', 4, true],
    ]);
    // No dynamic default is set yet.
    expect(empty).toMatchObject({ errorCode: 0, configs: [] });
    expect(other).toMatchObject({ errorCode: errorCode('INVALID_REQUEST'), configs: [] });
    expect(missing!.errorCode).toBe(errorCode('UNKNOWN_TOPIC_OR_PARTITION'));
    expect(loggers!.errorCode).toBe(errorCode('INVALID_REQUEST'));
  });

  it('sets and deletes the dynamic throttled rates at IncrementalAlterConfigs 0-1, per broker and as the cluster default, and DescribeConfigs shows them with their sources', async () => {
    const LEADER = 'leader.replication.throttled.rate';
    const FOLLOWER = 'follower.replication.throttled.rate';
    for (let version = 0; version <= 1; version++) {
      const response = await client.send('IncrementalAlterConfigs', version, {
        resources: [
          { resourceType: 4, resourceName: '', configs: [{ name: LEADER, configOperation: 0, value: '1000' }, { name: FOLLOWER, configOperation: 0, value: '2000' }] },
          { resourceType: 4, resourceName: String(THIS_BROKER), configs: [{ name: LEADER, configOperation: 0, value: String(500 + version) }] },
        ],
        validateOnly: false,
      });
      expect(response.responses).toEqual([
        { errorCode: 0, errorMessage: null, resourceType: 4, resourceName: '' },
        { errorCode: 0, errorMessage: null, resourceType: 4, resourceName: String(THIS_BROKER) },
      ]);
    }
    expect(Object.fromEntries(fixture.image.config('cluster', ''))).toEqual({ [LEADER]: '1000', [FOLLOWER]: '2000' });
    expect(Object.fromEntries(fixture.image.config('broker', String(THIS_BROKER)))).toEqual({ [LEADER]: '501' });

    const described = await client.send('DescribeConfigs', 4, {
      resources: [
        { resourceType: 4, resourceName: String(THIS_BROKER), configurationKeys: [LEADER, FOLLOWER, 'num.partitions'] },
        { resourceType: 4, resourceName: '', configurationKeys: null },
      ],
      includeSynonyms: true,
    });
    const [own, defaults] = described.results;
    const leader = own!.configs.find((config) => config.name === LEADER)!;
    expect(leader).toMatchObject({ value: '501', configSource: 2, readOnly: false });
    expect(leader.synonyms).toEqual([
      { name: LEADER, value: '501', source: 2 },
      { name: LEADER, value: '1000', source: 3 },
      { name: LEADER, value: '9007199254740991', source: 5 },
    ]);
    expect(own!.configs.find((config) => config.name === FOLLOWER)).toMatchObject({ value: '2000', configSource: 3, readOnly: false });
    expect(own!.configs.find((config) => config.name === 'num.partitions')).toMatchObject({ configSource: 5, readOnly: true });
    expect(defaults!.configs.map((config) => [config.name, config.value, config.configSource, config.readOnly]).sort()).toEqual([
      [FOLLOWER, '2000', 3, false],
      [LEADER, '1000', 3, false],
    ]);

    // Delete: back to the level below.
    const deleted = await client.send('IncrementalAlterConfigs', 1, {
      resources: [{ resourceType: 4, resourceName: String(THIS_BROKER), configs: [{ name: LEADER, configOperation: 1, value: null }] }],
      validateOnly: false,
    });
    expect(deleted.responses[0]!.errorCode).toBe(0);
    expect(fixture.image.config('broker', String(THIS_BROKER)).size).toBe(0);
  });

  it('refuses at IncrementalAlterConfigs what cannot change at runtime, topic resources, list operations, null values and repeats; validateOnly writes nothing', async () => {
    await fixture.createTopic('fixed', 1);
    const response = await client.send('IncrementalAlterConfigs', 1, {
      resources: [
        { resourceType: 4, resourceName: '', configs: [{ name: 'log.retention.hours', configOperation: 0, value: '1' }] },
        { resourceType: 4, resourceName: '7', configs: [{ name: 'leader.replication.throttled.rate', configOperation: 0, value: '1' }] },
        { resourceType: 2, resourceName: 'fixed', configs: [{ name: 'retention.ms', configOperation: 0, value: '1' }] },
        { resourceType: 4, resourceName: String(THIS_BROKER), configs: [{ name: 'leader.replication.throttled.rate', configOperation: 2, value: '1' }] },
        { resourceType: 4, resourceName: String(OTHER_BROKER), configs: [{ name: 'follower.replication.throttled.rate', configOperation: 0, value: null }] },
        { resourceType: 8, resourceName: '1', configs: [] },
        { resourceType: 4, resourceName: '', configs: [{ name: 'follower.replication.throttled.rate', configOperation: 0, value: '-5' }] },
      ],
      validateOnly: false,
    });
    const codes = response.responses.map((result) => [result.resourceType, result.resourceName, result.errorCode]);
    expect(codes).toEqual([
      [4, '', errorCode('INVALID_REQUEST')], // the empty name twice
      [4, '7', errorCode('INVALID_REQUEST')],
      [2, 'fixed', errorCode('INVALID_REQUEST')],
      [4, String(THIS_BROKER), errorCode('INVALID_CONFIG')],
      [4, String(OTHER_BROKER), errorCode('INVALID_REQUEST')],
      [8, '1', errorCode('INVALID_REQUEST')],
      [4, '', errorCode('INVALID_REQUEST')],
    ]);
    expect(response.responses[1]!.errorMessage).toBe('broker 7 is not registered in the cluster');
    expect(response.responses[2]!.errorMessage).toMatch(/changing topic configs at runtime is not implemented/);
    expect(response.responses[3]!.errorMessage).toMatch(/append is not allowed .*not a list/);
    expect(response.responses[4]!.errorMessage).toMatch(/null value/);

    const single = async (name: string, value: string) =>
      (await client.send('IncrementalAlterConfigs', 0, { resources: [{ resourceType: 4, resourceName: '', configs: [{ name, configOperation: 0, value }] }], validateOnly: false })).responses[0]!;
    expect(await single('log.retention.hours', '1')).toMatchObject({ errorCode: errorCode('INVALID_CONFIG'), errorMessage: expect.stringMatching(/'log\.retention\.hours' is a static broker config.*restart/) });
    expect(await single('no.such.key', '1')).toMatchObject({ errorCode: errorCode('INVALID_CONFIG'), errorMessage: expect.stringContaining("unknown broker config 'no.such.key'") });
    expect(await single('leader.replication.throttled.rate', '-5')).toMatchObject({ errorCode: errorCode('INVALID_CONFIG'), errorMessage: expect.stringContaining("invalid value '-5'") });

    const dryRun = await client.send('IncrementalAlterConfigs', 1, {
      resources: [{ resourceType: 4, resourceName: '', configs: [{ name: 'leader.replication.throttled.rate', configOperation: 0, value: '10' }] }],
      validateOnly: true,
    });
    expect(dryRun.responses[0]!.errorCode).toBe(0);
    expect(fixture.image.config('cluster', '').size).toBe(0);
  });
});
