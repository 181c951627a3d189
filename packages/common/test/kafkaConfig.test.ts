// A server.properties written for Apache Kafka: the stock files of Kafka 1.0, 2.8 and 3.8 are
// read as Kafka reads them (broker.id is node.id, Kafka's listener names, KRaft's keys), Kafka's
// other keys are accepted and named with why they do nothing, and values that ask for what Runnel
// does not have are refused.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  BROKER_CONFIG,
  BrokerConfig,
  IGNORED_KAFKA_KEYS,
  KAFKA_ALIASES,
  KAFKA_VALUE_LIMITS,
  environmentVariable,
  ignoredKafkaKey,
  ignoredKafkaKeyNames,
  parseProperties,
} from '../src/index.js';

const FIXTURES = new URL('./fixtures/kafka/', import.meta.url);

function stock(path: string, overrides: Record<string, string> = {}): BrokerConfig {
  const file = new URL(path, FIXTURES);
  return BrokerConfig.from({ file: parseProperties(readFileSync(file, 'utf8'), path), fileName: path, overrides });
}

const ignoredKeys = (config: BrokerConfig) => config.ignoredKafkaSettings().map((setting) => setting.key);

/** The keys every stock file of 1.0 to 3.8 sets that Runnel ignores. */
const STOCK_IGNORED = [
  'num.network.threads',
  'num.io.threads',
  'socket.send.buffer.bytes',
  'socket.receive.buffer.bytes',
  'num.recovery.threads.per.data.dir',
  'transaction.state.log.replication.factor',
  'transaction.state.log.min.isr',
];

describe("Kafka's stock server.properties", () => {
  for (const version of ['1.0.0', '2.8.0', '3.8.0']) {
    it(`reads Kafka ${version}'s ZooKeeper server.properties as a single-node cluster of broker 0`, () => {
      const config = stock(`${version}/server.properties`);
      expect(config.nodeId).toBe(0);
      expect(config.roles()).toEqual({ broker: true, controller: true });
      // No quorum configured: the node is a quorum of its own, at its CONTROLLER listener.
      expect([...config.quorumVoters()]).toEqual([[0, '127.0.0.1:9292']]);
      expect(config.logDir()).toBe('/tmp/kafka-logs');
      expect(config.int('offsets.topic.replication.factor')).toBe(1);
      expect(config.int('group.initial.rebalance.delay.ms')).toBe(0);
      expect(config.logSettings().retentionMs).toBe(168 * 3_600_000);
      expect(ignoredKeys(config).sort()).toEqual([...STOCK_IGNORED, 'zookeeper.connect', 'zookeeper.connection.timeout.ms'].sort());
      const notice = config.ignoredKafkaKeysNotice()!;
      expect(notice).not.toContain('\n');
      expect(notice).toMatch(/^ignoring 9 Kafka settings that have no effect in Runnel: /);
      expect(notice).toContain('zookeeper.connect, zookeeper.connection.timeout.ms (the Raft controller replaces ZooKeeper: set controller.quorum.voters)');
      expect(notice).toContain('num.network.threads, num.io.threads, num.recovery.threads.per.data.dir (a node serves everything on one Node.js event loop');
      // Each reason once.
      expect(notice.match(/thread pools/g)).toHaveLength(1);
      expect(config.derivedListenersNotice()).toBeNull();
    });
  }

  for (const version of ['2.8.0', '3.8.0']) {
    it(`reads Kafka ${version}'s KRaft server.properties: a combined node whose Kafka listener is PLAINTEXT :9092 and gRPC its port + 100`, () => {
      const config = stock(`${version}/kraft/server.properties`);
      expect(config.nodeId).toBe(1);
      expect(config.roles()).toEqual({ broker: true, controller: true });
      expect(config.listeners()).toEqual([
        { name: 'PLAINTEXT', host: '0.0.0.0', port: 9092 },
        { name: 'CONTROLLER', host: '0.0.0.0', port: 9093 },
        { name: 'GRPC', host: '0.0.0.0', port: 9192 },
      ]);
      expect(config.advertisedListener('PLAINTEXT')).toEqual({ name: 'PLAINTEXT', host: 'localhost', port: 9092 });
      expect(config.advertisedListener('GRPC')).toEqual({ name: 'GRPC', host: 'localhost', port: 9192 });
      expect([...config.quorumVoters()]).toEqual([[1, 'localhost:9093']]);
      expect(config.logDir()).toBe('/tmp/kraft-combined-logs');
      expect(ignoredKeys(config).sort()).toEqual([...STOCK_IGNORED, 'inter.broker.listener.name'].sort());
      expect(config.derivedListenersNotice()).toBe(
        "listeners has no GRPC listener: serving gRPC (the runnel CLI, the TypeScript client, followers' fetches) on 0.0.0.0:9192, the Kafka listener's port + 100",
      );
    });

    it(`reads Kafka ${version}'s KRaft controller.properties and broker.properties as a controller-only and a broker-only node`, () => {
      const controller = stock(`${version}/kraft/controller.properties`);
      expect(controller.roles()).toEqual({ broker: false, controller: true });
      // 2.8 names its controller listener PLAINTEXT (controller.listener.names=PLAINTEXT); 3.8 CONTROLLER.
      expect(controller.listeners()).toEqual([{ name: 'CONTROLLER', host: '0.0.0.0', port: 9093 }]);
      expect(controller.listener('PLAINTEXT')).toBeUndefined();
      const broker = stock(`${version}/kraft/broker.properties`);
      expect(broker.roles()).toEqual({ broker: true, controller: false });
      expect(broker.nodeId).toBe(version === '2.8.0' ? 1 : 2);
      expect(broker.listeners()).toEqual([
        { name: 'PLAINTEXT', host: 'localhost', port: 9092 },
        { name: 'GRPC', host: 'localhost', port: 9192 },
      ]);
      expect([...broker.quorumVoters()]).toEqual([[1, 'localhost:9093']]);
    });
  }
});

describe("Kafka's keys", () => {
  it('takes broker.id as node.id, from a file, the environment or --set, the later winning', () => {
    expect(BrokerConfig.from({ file: { 'broker.id': '7', 'controller.quorum.voters': '7@h:1' } }).nodeId).toBe(7);
    expect(BrokerConfig.from({ env: { RUNNEL_BROKER_ID: '3' }, file: { 'node.id': '2', 'controller.quorum.voters': '3@h:1' } }).nodeId).toBe(3);
    expect(BrokerConfig.from({ file: { 'broker.id': '2' }, overrides: { 'node.id': '4' }, env: {} }).nodeId).toBe(4);
    // Both names in one place must agree, as Kafka requires.
    expect(BrokerConfig.from({ file: { 'broker.id': '5', 'node.id': '5', 'controller.quorum.voters': '5@h:1' } }).nodeId).toBe(5);
    expect(() => BrokerConfig.from({ file: { 'node.id': '1', 'broker.id': '2' }, fileName: 'a.properties' })).toThrow(
      "a.properties: node.id=1 and broker.id=2 disagree; broker.id is Kafka's name for node.id: set one of them",
    );
    expect(() => BrokerConfig.from({ file: { 'broker.id': 'x' } })).toThrow(/invalid value 'x' for 'node.id'/);
  });

  it('sets every key, Kafka\'s too, from RUNNEL_* variables, each key its own variable', () => {
    const config = BrokerConfig.from({
      env: { RUNNEL_ADVERTISED_LISTENERS: 'PLAINTEXT://kafka-1:9092', RUNNEL_NUM_IO_THREADS: '16', RUNNEL_LOG_RETENTION_HOURS: '1', RUNNEL_ZOOKEEPER_CONNECT: 'zk:2181' },
    });
    expect(config.advertisedListener('PLAINTEXT')).toEqual({ name: 'PLAINTEXT', host: 'kafka-1', port: 9092 });
    expect(config.logSettings().retentionMs).toBe(3_600_000);
    expect([...config.ignoredKafkaSettings()].sort((a, b) => a.key.localeCompare(b.key))).toEqual([
      { key: 'num.io.threads', value: '16', source: { kind: 'environment', name: 'RUNNEL_NUM_IO_THREADS' }, reason: expect.stringMatching(/event loop/) },
      { key: 'zookeeper.connect', value: 'zk:2181', source: { kind: 'environment', name: 'RUNNEL_ZOOKEEPER_CONNECT' }, reason: expect.stringMatching(/ZooKeeper/) },
    ]);
    expect(() => BrokerConfig.from({ env: { RUNNEL_NUM_IO_THREADS: 'many' } })).toThrow("RUNNEL_NUM_IO_THREADS: invalid value 'many' for 'num.io.threads': expected an integer");
    const keys = [...Object.keys(BROKER_CONFIG.keys), ...Object.keys(KAFKA_ALIASES), ...ignoredKafkaKeyNames()];
    expect(new Set(keys.map(environmentVariable)).size).toBe(keys.length);
  });

  it('keeps the keys Runnel implements out of the ignored list, and limits only ignored keys', () => {
    for (const group of IGNORED_KAFKA_KEYS) for (const key of Object.keys(group.keys)) expect(BROKER_CONFIG.has(key), key).toBe(false);
    for (const key of Object.keys(KAFKA_VALUE_LIMITS)) expect(ignoredKafkaKey(key), key).toBeDefined();
    expect(ignoredKafkaKey('listener.name.internal.ssl.keystore.location')?.reason).toMatch(/per-listener/);
    expect(ignoredKafkaKey('listener.name.')).toBeUndefined();
  });

  it('still refuses a key that is neither Kafka\'s nor Runnel\'s, suggesting the closest of either', () => {
    expect(() => BrokerConfig.from({ file: { 'num.io.thread': '8' } })).toThrow("server.properties: unknown config key 'num.io.thread' (did you mean 'num.io.threads'?)");
    expect(() => BrokerConfig.from({ overrides: { 'brokr.id': '1' } })).toThrow("--set: unknown config key 'brokr.id' (did you mean 'broker.id'?)");
    expect(() => BrokerConfig.from({ file: { 'confluent.license': 'x' } })).toThrow(/^server.properties: unknown config key 'confluent.license'$/);
  });

  it('refuses values that ask for what Runnel does not have', () => {
    const refused = (file: Record<string, string>) => () => BrokerConfig.from({ file });
    expect(refused({ 'security.inter.broker.protocol': 'SSL' })).toThrow('server.properties: security.inter.broker.protocol=SSL is refused: brokers replicate over plaintext gRPC; TLS and SASL are not implemented');
    expect(refused({ 'authorizer.class.name': 'kafka.security.authorizer.AclAuthorizer' })).toThrow(/authorizer.class.name=kafka.security.authorizer.AclAuthorizer is refused: ACLs are not implemented/);
    expect(refused({ 'log.message.timestamp.type': 'LogAppendTime' })).toThrow(/LogAppendTime is refused: LogAppendTime is not implemented/);
    expect(refused({ 'compression.type': 'gzip' })).toThrow(/compression.type=gzip is refused: batches are stored as the producer compressed them/);
    expect(refused({ 'remote.log.storage.system.enable': 'true' })).toThrow(/tiered storage is not implemented/);
    expect(refused({ 'zookeeper.metadata.migration.enable': 'true' })).toThrow(/no ZooKeeper metadata to migrate/);
    expect(refused({ 'log.cleaner.max.compaction.lag.ms': '60000' })).toThrow(/no maximum compaction lag/);
    // The values that ask for nothing Runnel lacks are accepted (booleans in any case, as Kafka reads them).
    expect(() => BrokerConfig.from({ file: { 'security.inter.broker.protocol': 'PLAINTEXT', 'compression.type': 'producer', 'eligible.leader.replicas.enable': 'False', 'authorizer.class.name': '' } })).not.toThrow();
    expect(refused({ 'num.io.threads': 'eight' })).toThrow("server.properties: invalid value 'eight' for 'num.io.threads': expected an integer");
    expect(refused({ 'log.preallocate': 'yes' })).toThrow(/'log.preallocate': expected true or false/);
  });

  it('refuses TLS and SASL listeners rather than serving them in plaintext', () => {
    const listeners = (file: Record<string, string>) => () => BrokerConfig.from({ file: { 'controller.quorum.voters': '1@127.0.0.1:9093', ...file } });
    expect(listeners({ listeners: 'SASL_SSL://:9092,CONTROLLER://:9093' })).toThrow(
      "listeners: 'SASL_SSL://:9092' is a SASL_SSL listener: Runnel serves plaintext listeners only (TLS and SASL are not implemented)",
    );
    expect(listeners({ listeners: 'PLAINTEXT://:9092,CONTROLLER://:9093', 'advertised.listeners': 'SSL://kafka:9094' })).toThrow(/^advertised.listeners: 'SSL:\/\/kafka:9094' is a SSL listener/);
    expect(listeners({ listeners: 'INTERNAL://:9092,CONTROLLER://:9093', 'listener.security.protocol.map': 'INTERNAL:SSL,CONTROLLER:PLAINTEXT' })).toThrow(/'INTERNAL:\/\/:9092' is a SSL listener/);
    expect(listeners({ listeners: 'PLAINTEXT://:9092,CONTROLLER://:9093', 'controller.listener.names': 'CONTROLLER', 'listener.security.protocol.map': 'CONTROLLER:SASL_PLAINTEXT,PLAINTEXT:PLAINTEXT' })).toThrow(
      /'CONTROLLER:\/\/:9093' is a SASL_PLAINTEXT listener/,
    );
    expect(listeners({ 'listener.security.protocol.map': 'PLAINTEXT:TLS' })).toThrow(/^listener.security.protocol.map: unknown security protocol 'TLS'/);
    expect(listeners({ listeners: 'PLAINTEXT://:9092,CONTROLLER://:9093', 'controller.listener.names': 'RAFT' })).toThrow(
      "listeners: 'CONTROLLER://:9093' is not the controller's listener: controller.listener.names names RAFT",
    );
  });

  it('reads Kafka listener names through listener.security.protocol.map and controller.listener.names', () => {
    const config = BrokerConfig.from({
      file: {
        listeners: 'internal://0.0.0.0:19092,RAFT://0.0.0.0:19093,GRPC://0.0.0.0:19192',
        'advertised.listeners': 'INTERNAL://kafka-1.example:19092',
        'listener.security.protocol.map': 'INTERNAL:PLAINTEXT,RAFT:PLAINTEXT',
        'controller.listener.names': 'RAFT',
        'inter.broker.listener.name': 'INTERNAL',
        'controller.quorum.voters': '1@kafka-1.example:19093',
      },
    });
    expect(config.listeners()).toEqual([
      { name: 'PLAINTEXT', host: '0.0.0.0', port: 19092 },
      { name: 'CONTROLLER', host: '0.0.0.0', port: 19093 },
      { name: 'GRPC', host: '0.0.0.0', port: 19192 },
    ]);
    expect(config.advertisedListener('PLAINTEXT')).toEqual({ name: 'PLAINTEXT', host: 'kafka-1.example', port: 19092 });
    // Given explicitly, GRPC is not derived and is advertised as listeners has it.
    expect(config.advertisedListener('GRPC')).toEqual({ name: 'GRPC', host: '0.0.0.0', port: 19192 });
    expect(config.derivedListenersNotice()).toBeNull();
    const listeners = config.effectiveSettings().find((setting) => setting.key === 'listeners')!;
    expect(listeners).toMatchObject({ value: 'PLAINTEXT://0.0.0.0:19092,CONTROLLER://0.0.0.0:19093,GRPC://0.0.0.0:19192', derived: 'INTERNAL read as PLAINTEXT; RAFT read as CONTROLLER' });
  });

  it('serves one Kafka listener, and checks the inter-broker listener is one of them', () => {
    const voters = { 'controller.quorum.voters': '1@127.0.0.1:9093' };
    expect(() =>
      BrokerConfig.from({ file: { ...voters, listeners: 'INTERNAL://:9092,EXTERNAL://:9094,CONTROLLER://:9093', 'listener.security.protocol.map': 'INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT', 'advertised.listeners': 'INTERNAL://a:9092' } }),
    ).toThrow("listeners: 'INTERNAL' and 'EXTERNAL' would both be the PLAINTEXT listener; Runnel serves one of each kind");
    expect(() => BrokerConfig.from({ file: { ...voters, listeners: 'PLAINTEXT://h:9092,CONTROLLER://:9093', 'inter.broker.listener.name': 'INTERNAL' } })).toThrow(
      "inter.broker.listener.name: 'INTERNAL' is not one of the listeners (PLAINTEXT, CONTROLLER)",
    );
    expect(() => BrokerConfig.from({ file: { ...voters, listeners: 'PLAINTEXT://h:65500,CONTROLLER://:9093' } })).toThrow(
      "listeners: no GRPC listener, and the Kafka listener's port 65500 + 100 is out of range; add GRPC://host:port to listeners",
    );
  });

  it('ignores the legacy port and host.name where Kafka did, and refuses them where they would move the listener', () => {
    expect(ignoredKeys(BrokerConfig.from({ file: { port: '9092', 'host.name': '' } }))).toEqual(['port', 'host.name']);
    expect(ignoredKeys(BrokerConfig.from({ file: { port: '9093', listeners: 'PLAINTEXT://127.0.0.1:9093,GRPC://127.0.0.1:9193,CONTROLLER://127.0.0.1:9293' } }))).toEqual(['port']);
    expect(() => BrokerConfig.from({ file: { port: '9093' } })).toThrow(
      'port: Kafka before 3.0 listened where port says when listeners is not set; Runnel reads listeners only: set listeners=PLAINTEXT://<host.name>:<port>',
    );
    expect(() => BrokerConfig.from({ file: { 'advertised.host.name': 'kafka-1' } })).toThrow(/^advertised.host.name: .*set advertised.listeners=PLAINTEXT:\/\/<advertised.host.name>:<advertised.port>$/);
  });

  it('needs the quorum of a broker-only node, and refuses a dynamic quorum', () => {
    expect(() => BrokerConfig.from({ file: { 'process.roles': 'broker', listeners: 'GRPC://127.0.0.1:9192' } })).toThrow(
      'controller.quorum.voters: a node without the controller role must be given the quorum to join, as id@host:port of each controller',
    );
    expect(() => BrokerConfig.from({ file: { 'controller.quorum.bootstrap.servers': 'localhost:9093' } })).toThrow(
      'controller.quorum.bootstrap.servers: dynamic controller quorums (KIP-853) are not implemented; set controller.quorum.voters',
    );
    expect(ignoredKeys(BrokerConfig.from({ file: { 'controller.quorum.bootstrap.servers': 'localhost:9292', 'controller.quorum.voters': '1@localhost:9292' } }))).toEqual([
      'controller.quorum.bootstrap.servers',
    ]);
  });

  it('tells where each value came from', () => {
    const config = BrokerConfig.from({
      file: { 'broker.id': '0', 'num.partitions': '2', 'num.io.threads': '8' },
      fileName: 'server.properties',
      env: { RUNNEL_LOG_RETENTION_HOURS: '1', RUNNEL_NUM_PARTITIONS: '3' },
      overrides: { 'num.partitions': '4' },
    });
    const sources = new Map(config.effectiveSettings().map((setting) => [setting.key, setting]));
    expect(sources.get('node.id')).toMatchObject({ value: '0', source: { kind: 'file', name: 'server.properties', writtenAs: 'broker.id' } });
    expect(sources.get('num.partitions')).toMatchObject({ value: '4', source: { kind: '--set' } });
    expect(sources.get('log.retention.hours')).toMatchObject({ value: '1', source: { kind: 'environment', name: 'RUNNEL_LOG_RETENTION_HOURS' } });
    expect(sources.get('min.insync.replicas')).toMatchObject({ value: '1', source: { kind: 'default' } });
    expect(sources.get('controller.quorum.voters')).toMatchObject({ value: '0@127.0.0.1:9292', source: { kind: 'default' }, derived: 'this node alone' });
    expect(config.ignoredKafkaSettings()).toEqual([{ key: 'num.io.threads', value: '8', source: { kind: 'file', name: 'server.properties' }, reason: expect.any(String) }]);
  });
});
