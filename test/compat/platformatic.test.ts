// @platformatic/kafka 1.35 (a pure-TypeScript client on Kafka 3.5+ API versions, mostly flexible
// ones) against a 3-node cluster: admin topic creation and deletion, dynamic broker configs, an acks=-1 gzip producer, a
// consumer group of two members, and a producer that goes on through a SIGKILL of a partition
// leader without losing an acknowledged record.
import { describe, expect, it } from 'vitest';
import {
  Admin,
  ConfigResourceTypes,
  ConfigSources,
  Consumer,
  IncrementalAlterConfigOperationTypes,
  MessagesStreamFallbackModes,
  MessagesStreamModes,
  ProduceAcks,
  Producer,
  stringDeserializers,
  stringSerializers,
  type MessagesStream,
} from '@platformatic/kafka';
import { Admin as RunnelAdmin } from '@runnel/client';
import { waitFor } from '../integration/harness.js';
import { createTopic, grpcBootstrap, kafkaBootstrap, expectRecoveredWithoutLoss, produceAcrossLeaderKill, useKafkaCluster } from './kafkaCluster.js';

/** An error and, one level down each time, the first of the errors it aggregates. */
function causeChain(error: Error & { errors?: Error[] }): string {
  const inner = error.errors?.[0];
  return inner === undefined ? error.message : `${error.message} <- ${causeChain(inner)}`;
}

type StringConsumer = Consumer<string, string, string, string>;
type StringStream = MessagesStream<string, string, string, string>;

describe('@platformatic/kafka against a 3-node cluster', () => {
  const fixture = useKafkaCluster({ 'min.insync.replicas': '2' });
  const base = (clientId: string) => ({
    clientId,
    bootstrapBrokers: kafkaBootstrap(fixture.cluster),
    // Rides out a leader election (a dead broker is fenced after 3 s here) on the client's own retries.
    retries: 20,
    retryDelay: 300,
    timeout: 10_000,
  });
  const producer = () => new Producer({ ...base('compat-producer'), serializers: stringSerializers, compression: 'gzip' as const, autocreateTopics: false });
  // 1.35's send() defaults acks to 1 whatever the constructor was given: every send names it.
  const send = (sender: ReturnType<typeof producer>, messages: Array<{ topic: string; key?: string; value: string }>) => sender.send({ acks: ProduceAcks.ALL, messages });
  const consumer = (groupId: string): StringConsumer =>
    new Consumer({ ...base(`compat-${groupId}`), groupId, deserializers: stringDeserializers, sessionTimeout: 6000, heartbeatInterval: 500, maxWaitTime: 500 });
  const consume = (member: StringConsumer, topic: string): Promise<StringStream> =>
    member.consume({ topics: [topic], mode: MessagesStreamModes.COMMITTED, fallbackMode: MessagesStreamFallbackModes.EARLIEST, autocommit: 500 });

  it('admin creates a topic (3 partitions, RF 3) and deletes it', async () => {
    const admin = new Admin(base('compat-admin'));
    const runnel = new RunnelAdmin({ bootstrap: grpcBootstrap(fixture.cluster) });
    try {
      const [created] = await admin.createTopics({ topics: ['platformatic-admin'], partitions: 3, replicas: 3 });
      expect(created).toMatchObject({ name: 'platformatic-admin', partitions: 3, replicas: 3 });
      expect(await admin.listTopics()).toContain('platformatic-admin');
      const [stored] = await runnel.describeTopics(['platformatic-admin']);
      expect(stored!.partitions.map((partition) => partition.replicas.length)).toEqual([3, 3, 3]);

      await admin.deleteTopics({ topics: ['platformatic-admin'] });
      await waitFor('platformatic-admin to be gone', async () => (!(await admin.listTopics()).includes('platformatic-admin') ? true : undefined), 10_000, 200);
      expect(await runnel.listTopics()).not.toContain('platformatic-admin');
    } finally {
      await admin.close();
      await runnel.close();
    }
  });

  it('admin sets the replication throttle as a dynamic broker config (IncrementalAlterConfigs), sees it in DescribeConfigs, and is refused a static key', async () => {
    const admin = new Admin(base('compat-configs'));
    const runnel = new RunnelAdmin({ bootstrap: grpcBootstrap(fixture.cluster) });
    const LEADER = 'leader.replication.throttled.rate';
    try {
      // kafka-configs.sh --alter --entity-type brokers --entity-name 1. (@platformatic/kafka 1.35
      // sends a BROKER resource to the broker of that id, and the empty name, --entity-default, to
      // a "broker 0" that does not exist here: the cluster default is set through Runnel's admin.)
      await admin.incrementalAlterConfigs({
        resources: [{ resourceType: ConfigResourceTypes.BROKER, resourceName: '1', configs: [{ name: LEADER, configOperation: IncrementalAlterConfigOperationTypes.SET, value: '2097152' }] }],
      });
      const [outcome] = await runnel.incrementalAlterConfigs([{ resource: { type: 'cluster', name: '' }, ops: [{ key: LEADER, op: 'set', value: '1048576' }] }]);
      expect(outcome!.error).toBeNull();
      expect(await runnel.describeDynamicConfigs()).toEqual([
        { resource: { type: 'cluster', name: '' }, configs: { [LEADER]: '1048576' } },
        { resource: { type: 'broker', name: '1' }, configs: { [LEADER]: '2097152' } },
      ]);
      const describe = async (broker: string) =>
        (await admin.describeConfigs({ resources: [{ resourceType: ConfigResourceTypes.BROKER, resourceName: broker, configurationKeys: [LEADER] }], includeSynonyms: true }))[0]!.configs[0];
      // Broker 1 has its own value (DYNAMIC_BROKER_CONFIG); broker 2 inherits the cluster default
      // (DYNAMIC_DEFAULT_BROKER_CONFIG); both writable.
      expect(await describe('1')).toMatchObject({ name: LEADER, value: '2097152', configSource: ConfigSources.DYNAMIC_BROKER_CONFIG, readOnly: false });
      expect(await describe('2')).toMatchObject({ name: LEADER, value: '1048576', configSource: ConfigSources.DYNAMIC_DEFAULT_BROKER_CONFIG, readOnly: false });

      const refused = await admin
        .incrementalAlterConfigs({ resources: [{ resourceType: ConfigResourceTypes.BROKER, resourceName: '2', configs: [{ name: 'log.retention.hours', configOperation: IncrementalAlterConfigOperationTypes.SET, value: '1' }] }] })
        .then(() => null, (error: Error & { errors?: Error[] }) => causeChain(error));
      // INVALID_CONFIG (40): the client names the code by Kafka's text, not the broker's message.
      expect(refused).toMatch(/IncrementalAlterConfigs.*Configuration is invalid/);

      await admin.incrementalAlterConfigs({
        resources: [{ resourceType: ConfigResourceTypes.BROKER, resourceName: '1', configs: [{ name: LEADER, configOperation: IncrementalAlterConfigOperationTypes.DELETE }] }],
      });
      await runnel.incrementalAlterConfigs([{ resource: { type: 'cluster', name: '' }, ops: [{ key: LEADER, op: 'delete' }] }]);
      expect(await runnel.describeDynamicConfigs()).toEqual([]);
    } finally {
      await admin.close();
      await runnel.close();
    }
  });

  it('two group members split the partitions and read every record of an acks=-1 gzip producer', async () => {
    const topic = 'platformatic-group';
    await createTopic(fixture.cluster, topic, 4);
    const members = [consumer('platformatic-group'), consumer('platformatic-group')];
    const received = new Map<StringConsumer, Array<{ partition: number; value: string }>>(members.map((member) => [member, []]));
    const streams: StringStream[] = [];
    const streamErrors: Error[] = [];
    const sender = producer();
    const assigned = (member: StringConsumer) => (member.assignments ?? []).filter((assignment) => assignment.topic === topic).flatMap((assignment) => assignment.partitions);
    // Every partition each member was assigned at any time: a further rebalance while the records
    // flow (seen on a loaded machine; the group protocol allows it) moves partitions between members.
    const everAssigned = new Map<StringConsumer, Set<number>>(members.map((member) => [member, new Set<number>()]));
    const tracker = setInterval(() => {
      for (const member of members) for (const partition of assigned(member)) everAssigned.get(member)!.add(partition);
    }, 20);
    try {
      for (const member of members) {
        const stream = await consume(member, topic);
        stream.on('data', (message) => received.get(member)!.push({ partition: message.partition, value: message.value }));
        stream.on('error', (error: Error) => streamErrors.push(error));
        streams.push(stream);
      }
      await waitFor(
        'both members to be assigned two partitions each',
        () => (members.every((member) => assigned(member).length === 2) && new Set(members.flatMap(assigned)).size === 4 ? true : undefined),
        30_000,
        200,
      );

      const values = Array.from({ length: 2000 }, (_, i) => `platformatic-${i}`);
      for (let start = 0; start < values.length; start += 200) {
        const result = await send(sender, values.slice(start, start + 200).map((value, i) => ({ topic, key: `key-${start + i}`, value })));
        expect(result.offsets?.length).toBeGreaterThan(0);
      }

      // Distinct values, not a count: without idempotence a send the client retried (a timeout on
      // this loaded machine) may be stored twice, and duplicates must not stand in for records not yet read.
      const distinct = () => new Set(members.flatMap((member) => received.get(member)!.map((record) => record.value))).size;
      await waitFor('every record to be consumed', () => (distinct() >= values.length ? true : undefined), 30_000, 200).catch((error: Error) => {
        // What the client's fetches met says more than the timeout does.
        throw new Error(`${error.message}; ${streamErrors.length} stream errors, the first: ${streamErrors[0] === undefined ? '-' : causeChain(streamErrors[0])}`);
      });
      expect(new Set(members.flatMap((member) => received.get(member)!.map((record) => record.value)))).toEqual(new Set(values));
      for (const member of members) {
        const records = received.get(member)!;
        expect(records.length).toBeGreaterThan(0);
        for (const partition of new Set(records.map((record) => record.partition))) expect(everAssigned.get(member)!.has(partition)).toBe(true);
      }
    } finally {
      clearInterval(tracker);
      await sender.close();
      for (const stream of streams) await stream.close();
      for (const member of members) await member.close(true);
    }
  });

  it('SIGKILL of a partition leader mid-produce: the producer recovers and no acknowledged record is lost', async () => {
    const topic = 'platformatic-failover';
    await createTopic(fixture.cluster, topic, 3);
    const sender = producer();
    const run = await produceAcrossLeaderKill(fixture.cluster, topic, (values) => send(sender, values.map((value) => ({ topic, value })))).finally(() => sender.close());
    await expectRecoveredWithoutLoss(fixture.cluster, topic, run);
  });
});
