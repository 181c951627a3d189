import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { BrokerConfig, ConfigError, LISTENER_NAMES, TOPIC_CONFIG, errorCode, errorName, isRetriable, parseProperties, parseTopicConfigs, withTopicOverrides, RunnelError } from '../src/index.js';

describe('server.properties', () => {
  it('parses key=value, key: value, comments and continuations', () => {
    const values = parseProperties('# comment\n! also\nnode.id=3\nlog.dirs : /tmp/a\nlisteners=GRPC://127.0.0.1:1,\\\n  HTTP://127.0.0.1:2\n\n');
    expect(values).toEqual({ 'node.id': '3', 'log.dirs': '/tmp/a', 'listeners': 'GRPC://127.0.0.1:1,HTTP://127.0.0.1:2' });
  });

  it('refuses a key set twice', () => {
    expect(() => parseProperties('a=1\na=2', 'x.properties')).toThrow(/x.properties:2: 'a' is set twice/);
  });

  it('names an unknown key and suggests the close one', () => {
    expect(() => BrokerConfig.from({ file: { 'num.partition': '3' } })).toThrow(/unknown config key 'num.partition' \(did you mean 'num.partitions'\?\)/);
  });

  it('names a bad value and what was expected', () => {
    expect(() => BrokerConfig.from({ file: { 'num.partitions': 'three' } })).toThrow(/invalid value 'three' for 'num.partitions': expected an integer/);
    expect(() => BrokerConfig.from({ file: { 'num.partitions': '0' } })).toThrow(/at least 1/);
    expect(() => BrokerConfig.from({ file: { 'delete.topic.enable': 'yes' } })).toThrow(/true or false/);
    expect(() => BrokerConfig.from({ file: { listeners: 'GRPC://127.0.0.1' } })).toThrow(ConfigError);
    expect(() => BrokerConfig.from({ file: { listeners: 'HTTP://127.0.0.1:1' } })).toThrow(/GRPC listener is required/);
  });

  it('accepts ZooKeeper keys and says the Raft controller replaces ZooKeeper', () => {
    const config = BrokerConfig.from({ file: { 'zookeeper.connect': 'localhost:2181' } });
    expect(config.ignoredKafkaKeysNotice()).toMatch(/: zookeeper.connect \(the Raft controller replaces ZooKeeper: set controller.quorum.voters\)$/);
  });

  it('layers file < environment < --set', () => {
    const config = BrokerConfig.from({
      file: { 'num.partitions': '2', 'log.retention.hours': '1' },
      env: { RUNNEL_NUM_PARTITIONS: '3', RUNNEL_LOG_RETENTION_BYTES: '1000' },
      overrides: { 'num.partitions': '4' },
    });
    expect(config.int('num.partitions')).toBe(4);
    expect(config.logSettings().retentionBytes).toBe(1000);
    expect(config.logSettings().retentionMs).toBe(3_600_000);
  });

  it('resolves retention from ms over minutes over hours, -1 meaning forever', () => {
    expect(BrokerConfig.from({ file: { 'log.retention.minutes': '2' } }).logSettings().retentionMs).toBe(120_000);
    expect(BrokerConfig.from({ file: { 'log.retention.ms': '5', 'log.retention.minutes': '2' } }).logSettings().retentionMs).toBe(5);
    expect(BrokerConfig.from({ file: { 'log.retention.hours': '-1' } }).logSettings().retentionMs).toBe(-1);
    expect(BrokerConfig.from({ file: { 'log.flush.interval.messages': '9223372036854775807' } }).logSettings().flushMessages).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('applies topic overrides and rejects unknown topic keys', () => {
    const defaults = BrokerConfig.from().logSettings();
    const settings = withTopicOverrides(defaults, { 'retention.ms': '1000', 'segment.bytes': '4096' });
    expect(settings.retentionMs).toBe(1000);
    expect(settings.segmentBytes).toBe(4096);
    expect(settings.flushMessages).toBe(defaults.flushMessages);
    expect(() => withTopicOverrides(defaults, { 'retention.msec': '1' })).toThrow(/unknown config key 'retention.msec'/);
    expect(() => withTopicOverrides(defaults, { 'cleanup.policy': 'compaction' })).toThrow(/expected a list of compact, delete/);
  });
});

describe('log compaction settings', () => {
  it('takes Kafka\'s cleaner keys and defaults, and the topic overrides', () => {
    const defaults = BrokerConfig.from().logSettings();
    expect(defaults.cleanupPolicy).toEqual({ compact: false, delete: true });
    expect(defaults.deleteRetentionMs).toBe(86_400_000);
    expect(defaults.minCleanableDirtyRatio).toBe(0.5);
    expect(defaults.minCompactionLagMs).toBe(0);
    const broker = BrokerConfig.from();
    expect(broker.int('log.cleaner.dedupe.buffer.size')).toBe(134_217_728);
    expect(broker.boolean('log.cleaner.enable')).toBe(true);
    expect(broker.int('log.cleaner.backoff.ms')).toBe(15_000);
    expect(withTopicOverrides(defaults, { 'cleanup.policy': 'compact' }).cleanupPolicy).toEqual({ compact: true, delete: false });
    expect(withTopicOverrides(defaults, { 'cleanup.policy': 'compact,delete' }).cleanupPolicy).toEqual({ compact: true, delete: true });
    const overridden = withTopicOverrides(defaults, { 'delete.retention.ms': '1000', 'min.cleanable.dirty.ratio': '0.25', 'min.compaction.lag.ms': '5000' });
    expect([overridden.deleteRetentionMs, overridden.minCleanableDirtyRatio, overridden.minCompactionLagMs]).toEqual([1000, 0.25, 5000]);
    expect(BrokerConfig.from({ file: { 'log.cleanup.policy': 'compact', 'log.cleaner.min.cleanable.ratio': '0.1' } }).logSettings()).toMatchObject({ cleanupPolicy: { compact: true, delete: false }, minCleanableDirtyRatio: 0.1 });
  });

  it('refuses bad values, naming the key', () => {
    expect(() => parseTopicConfigs({ 'cleanup.policy': '' })).toThrow(/cleanup.policy: at least one of compact, delete/);
    expect(() => parseTopicConfigs({ 'min.cleanable.dirty.ratio': '1.5' })).toThrow(/'min.cleanable.dirty.ratio': expected at most 1/);
    expect(() => parseTopicConfigs({ 'min.cleanable.dirty.ratio': 'half' })).toThrow(/'min.cleanable.dirty.ratio': expected a number/);
    expect(() => parseTopicConfigs({ 'delete.retention.ms': '-1' })).toThrow(/'delete.retention.ms': expected at least 0/);
    expect(() => BrokerConfig.from({ file: { 'log.cleanup.policy': 'shrink' } })).toThrow(/'log.cleanup.policy'/);
    expect(() => BrokerConfig.from({ file: { 'log.cleaner.dedupe.buffer.size': '10' } })).toThrow(/'log.cleaner.dedupe.buffer.size': expected at least 1024/);
  });
});

describe('delayed file deletion', () => {
  it('takes Kafka\'s log.segment.delete.delay.ms (60 s) and the topic\'s file.delete.delay.ms', () => {
    expect(BrokerConfig.from().logSettings().fileDeleteDelayMs).toBe(60_000);
    const defaults = BrokerConfig.from({ file: { 'log.segment.delete.delay.ms': '5000' } }).logSettings();
    expect(defaults.fileDeleteDelayMs).toBe(5000);
    expect(withTopicOverrides(defaults, { 'file.delete.delay.ms': '0' }).fileDeleteDelayMs).toBe(0);
    expect(() => BrokerConfig.from({ file: { 'log.segment.delete.delay.ms': '-1' } })).toThrow(/'log.segment.delete.delay.ms': expected at least 0/);
    expect(() => parseTopicConfigs({ 'file.delete.delay.ms': '-1' })).toThrow(/'file.delete.delay.ms': expected at least 0/);
  });
});

describe('cluster configuration', () => {
  const controllerOnly = { 'process.roles': 'controller', listeners: 'CONTROLLER://127.0.0.1:9292' };

  it('defaults to a one-node broker+controller cluster', () => {
    const config = BrokerConfig.from();
    expect(config.roles()).toEqual({ broker: true, controller: true });
    expect(LISTENER_NAMES).toEqual(['PLAINTEXT', 'GRPC', 'REPLICATION', 'CONTROLLER', 'HTTP']);
    expect(config.listeners()).toEqual([
      { name: 'PLAINTEXT', host: '127.0.0.1', port: 9092 },
      { name: 'GRPC', host: '127.0.0.1', port: 9192 },
      { name: 'CONTROLLER', host: '127.0.0.1', port: 9292 },
      { name: 'HTTP', host: '127.0.0.1', port: 9392 },
    ]);
    expect(config.listener('CONTROLLER')).toEqual({ name: 'CONTROLLER', host: '127.0.0.1', port: 9292 });
    expect([...config.quorumVoters()]).toEqual([[1, '127.0.0.1:9292']]);
    expect(config.metadataLogDir()).toBe(join('./data', '__cluster_metadata'));
    expect(config.int('controller.quorum.election.timeout.ms')).toBe(1000);
    expect(config.string('cluster.id')).toBeNull();
    expect(config.int('broker.heartbeat.interval.ms')).toBe(2000);
    expect(config.int('broker.session.timeout.ms')).toBe(9000);
    expect(config.boolean('controlled.shutdown.enable')).toBe(true);
    expect(config.int('controlled.shutdown.timeout.ms')).toBe(30000);
    expect(config.boolean('auto.leader.rebalance.enable')).toBe(true);
    expect(config.int('leader.imbalance.per.broker.percentage')).toBe(10);
    expect(config.int('leader.imbalance.check.interval.seconds')).toBe(300);
    expect(config.boolean('unclean.leader.election.enable')).toBe(false);
    expect(config.int('replica.lag.time.max.ms')).toBe(30000);
  });

  it('puts the metadata log under log.dirs unless metadata.log.dir is set', () => {
    expect(BrokerConfig.from({ file: { 'log.dirs': '/var/runnel/node-2' } }).metadataLogDir()).toBe(join('/var/runnel/node-2', '__cluster_metadata'));
    expect(BrokerConfig.from({ file: { 'metadata.log.dir': '/var/meta' } }).metadataLogDir()).toBe('/var/meta');
  });

  it('reads the voters in the order written', () => {
    const config = BrokerConfig.from({
      file: { 'node.id': '2', 'controller.quorum.voters': '3@h3:9295, 1@h1:9293,2@[::1]:9294' },
    });
    expect([...config.quorumVoters()]).toEqual([
      [3, 'h3:9295'],
      [1, 'h1:9293'],
      [2, '[::1]:9294'],
    ]);
  });

  it('writes the roles back as a list', () => {
    expect(BrokerConfig.from().toProperties()).toMatch(/^process\.roles=broker,controller$/m);
    expect(BrokerConfig.from({ file: controllerOnly }).toProperties()).toMatch(/^process\.roles=controller$/m);
  });

  it('allows a broker-only node without a CONTROLLER listener', () => {
    const config = BrokerConfig.from({ file: { 'node.id': '4', 'process.roles': 'broker', listeners: 'GRPC://127.0.0.1:9196', 'controller.quorum.voters': '1@h1:9293,2@h2:9294,3@h3:9295' } });
    expect(config.roles()).toEqual({ broker: true, controller: false });
    expect(config.listener('CONTROLLER')).toBeUndefined();
  });

  it('allows a controller-only node without a GRPC listener', () => {
    const config = BrokerConfig.from({ file: controllerOnly });
    expect(config.roles()).toEqual({ broker: false, controller: true });
    expect(config.listener('GRPC')).toBeUndefined();
  });

  it('accepts an optional REPLICATION listener for followers\' fetches', () => {
    const config = BrokerConfig.from({
      file: {
        listeners: 'GRPC://127.0.0.1:9192,REPLICATION://127.0.0.1:9492,CONTROLLER://127.0.0.1:9292',
        'advertised.listeners': 'GRPC://127.0.0.1:9192,REPLICATION://127.0.0.1:19492,CONTROLLER://127.0.0.1:9292',
      },
    });
    expect(config.listener('REPLICATION')).toEqual({ name: 'REPLICATION', host: '127.0.0.1', port: 9492 });
    expect(config.advertisedListeners().find((listener) => listener.name === 'REPLICATION')?.port).toBe(19492);
  });

  it('takes a Kafka PLAINTEXT listener in Kafka\'s syntax, advertised as listeners has it unless advertised.listeners names it', () => {
    const config = BrokerConfig.from({ file: { listeners: 'PLAINTEXT://127.0.0.1:9093,GRPC://127.0.0.1:9193,CONTROLLER://127.0.0.1:9293' } });
    expect(config.listener('PLAINTEXT')).toEqual({ name: 'PLAINTEXT', host: '127.0.0.1', port: 9093 });
    expect(config.advertisedListener('PLAINTEXT')).toEqual({ name: 'PLAINTEXT', host: '127.0.0.1', port: 9093 });
    const advertised = BrokerConfig.from({
      file: { listeners: 'PLAINTEXT://0.0.0.0:9092,GRPC://127.0.0.1:9192,CONTROLLER://127.0.0.1:9292', 'advertised.listeners': 'PLAINTEXT://kafka-1.example:9092' },
    });
    expect(advertised.advertisedListener('PLAINTEXT')).toEqual({ name: 'PLAINTEXT', host: 'kafka-1.example', port: 9092 });
    // Not named in advertised.listeners: advertised as listeners has it.
    expect(advertised.advertisedListener('GRPC')).toEqual({ name: 'GRPC', host: '127.0.0.1', port: 9192 });
    expect(config.int('socket.request.max.bytes')).toBe(104_857_600);
    expect(config.boolean('auto.create.topics.enable')).toBe(true);
  });

  it('tells for every topic config the broker key it falls back to and its value (DescribeConfigs)', () => {
    const config = BrokerConfig.from({ file: { 'log.retention.hours': '2', 'log.cleanup.policy': 'compact,delete' } });
    for (const key of Object.keys(TOPIC_CONFIG.keys)) expect(() => config.topicDefault(key)).not.toThrow();
    expect(config.topicDefault('retention.ms')).toEqual({ brokerKey: 'log.retention.ms', value: String(2 * 3_600_000), isDefault: false });
    expect(config.topicDefault('cleanup.policy')).toEqual({ brokerKey: 'log.cleanup.policy', value: 'compact,delete', isDefault: false });
    expect(config.topicDefault('segment.bytes')).toEqual({ brokerKey: 'log.segment.bytes', value: '1073741824', isDefault: true });
    expect(config.topicDefault('flush.ms')).toEqual({ brokerKey: 'log.flush.interval.ms', value: null, isDefault: true });
    const described = new Map(config.describe().map((entry) => [entry.name, entry]));
    expect(described.get('log.retention.hours')).toMatchObject({ value: '2', isDefault: false, type: 'int' });
    expect(described.get('num.partitions')).toMatchObject({ value: '1', isDefault: true });
    expect(described.get('cluster.id')).toMatchObject({ value: null, isDefault: true });
  });

  it('refuses to advertise a Kafka listener on 0.0.0.0, or a listener that does not exist', () => {
    expect(() => BrokerConfig.from({ file: { listeners: 'PLAINTEXT://:9092,GRPC://127.0.0.1:9192,CONTROLLER://127.0.0.1:9292' } })).toThrow(
      /^advertised.listeners: PLAINTEXT would advertise 0.0.0.0.*advertised.listeners=PLAINTEXT:\/\/<host clients reach>:9092$/,
    );
    expect(() => BrokerConfig.from({ file: { listeners: 'GRPC://127.0.0.1:9192,CONTROLLER://127.0.0.1:9292', 'advertised.listeners': 'PLAINTEXT://h:9092' } })).toThrow(
      /^advertised.listeners: 'PLAINTEXT' is advertised but listeners has no PLAINTEXT listener$/,
    );
  });

  it('requires the listener of each role', () => {
    expect(() => BrokerConfig.from({ file: { listeners: 'CONTROLLER://127.0.0.1:9292' } })).toThrow(
      /^listeners: a GRPC listener is required when process.roles includes broker \(or a Kafka listener, whose port \+ 100 it then takes\)$/,
    );
    expect(() => BrokerConfig.from({ file: { listeners: 'GRPC://127.0.0.1:9192' } })).toThrow(
      /^listeners: a CONTROLLER listener is required when process.roles includes controller \(the listener named in controller.listener.names: CONTROLLER\)$/,
    );
    expect(() => BrokerConfig.from({ file: { 'process.roles': 'controller', listeners: 'GRPC://127.0.0.1:9192' } })).toThrow(/^listeners: a CONTROLLER listener/);
    expect(() => BrokerConfig.from({ file: { listeners: 'RAFT://127.0.0.1:9292' } })).toThrow(
      /^listeners: listener 'RAFT' in 'RAFT:\/\/127.0.0.1:9292' is none of Runnel's \(PLAINTEXT, GRPC, REPLICATION, CONTROLLER, HTTP\) and listener.security.protocol.map does not map it/,
    );
  });

  it('rejects unknown or missing roles', () => {
    expect(() => BrokerConfig.from({ file: { 'process.roles': 'broker,zookeeper' } })).toThrow(/'process.roles': expected a list of broker, controller/);
    expect(() => BrokerConfig.from({ file: { 'process.roles': '' } })).toThrow(/^process.roles: /);
  });

  it('validates controller.quorum.voters', () => {
    const voters = (value: string) => () => BrokerConfig.from({ file: { 'controller.quorum.voters': value } });
    expect(voters('')).toThrow(/^controller.quorum.voters: at least one voter is required/);
    expect(voters(' , ')).toThrow(/^controller.quorum.voters: at least one voter/);
    expect(voters('127.0.0.1:9292')).toThrow(/^controller.quorum.voters: cannot parse '127.0.0.1:9292': expected id@host:port/);
    expect(voters('1@127.0.0.1')).toThrow(/^controller.quorum.voters: cannot parse/);
    expect(voters('-1@127.0.0.1:9292')).toThrow(/^controller.quorum.voters: cannot parse/);
    expect(voters('x@127.0.0.1:9292')).toThrow(/^controller.quorum.voters: cannot parse/);
    expect(voters('1.5@127.0.0.1:9292')).toThrow(/^controller.quorum.voters: cannot parse/);
    expect(voters('1@:9292')).toThrow(/^controller.quorum.voters: cannot parse/);
    expect(voters('1@127.0.0.1:0')).toThrow(/^controller.quorum.voters: port 0 .* out of range/);
    expect(voters('1@127.0.0.1:65536')).toThrow(/^controller.quorum.voters: port 65536 .* out of range/);
    expect(voters('1@h1:9293,1@h2:9294')).toThrow(/^controller.quorum.voters: voter id 1 is given twice/);
    expect(voters('0@h0:1,1@h1:65535')).not.toThrow();
  });

  it('accepts a controller that is not among the voters: it joins the running quorum (runnel quorum add-voter)', () => {
    expect(BrokerConfig.from({ file: { 'node.id': '4', 'controller.quorum.voters': '1@h1:9293,2@h2:9294,3@h3:9295' } }).nodeId).toBe(4);
    expect(BrokerConfig.from({ file: { 'node.id': '2', 'controller.quorum.voters': '1@h1:9293,2@h2:9294' } }).nodeId).toBe(2);
  });

  it('takes controller.quorum.new.member only on a controller', () => {
    expect(BrokerConfig.from().boolean('controller.quorum.new.member')).toBe(false);
    expect(BrokerConfig.from({ env: { RUNNEL_CONTROLLER_QUORUM_NEW_MEMBER: 'true' } }).boolean('controller.quorum.new.member')).toBe(true);
    expect(() => BrokerConfig.from({ file: { 'controller.quorum.new.member': 'yes' } })).toThrow(/'controller.quorum.new.member': expected true or false/);
    expect(() => BrokerConfig.from({ file: { 'process.roles': 'broker', 'controller.quorum.new.member': 'true' } })).toThrow(
      'controller.quorum.new.member: only a controller joins the quorum, and process.roles has no controller',
    );
  });

  it('requires the session timeout to exceed the heartbeat interval', () => {
    expect(() => BrokerConfig.from({ file: { 'broker.session.timeout.ms': '2000' } })).toThrow(
      /^broker.session.timeout.ms: 2000 must be greater than broker.heartbeat.interval.ms \(2000\)$/,
    );
    expect(() => BrokerConfig.from({ file: { 'broker.heartbeat.interval.ms': '10000' } })).toThrow(/broker.session.timeout.ms.*broker.heartbeat.interval.ms/);
    expect(BrokerConfig.from({ file: { 'broker.heartbeat.interval.ms': '100', 'broker.session.timeout.ms': '101' } }).int('broker.session.timeout.ms')).toBe(101);
  });

  it('takes queued.max.request.bytes as -1 (unlimited) or a positive size', () => {
    expect(BrokerConfig.from({}).int('queued.max.request.bytes')).toBe(268435456);
    expect(BrokerConfig.from({ file: { 'queued.max.request.bytes': '-1' } }).int('queued.max.request.bytes')).toBe(-1);
    expect(() => BrokerConfig.from({ file: { 'queued.max.request.bytes': '0' } })).toThrow(/^queued.max.request.bytes: 0 would hold no request/);
    expect(() => BrokerConfig.from({ file: { 'queued.max.request.bytes': '-2' } })).toThrow(/queued.max.request.bytes/);
  });

  it('checks the ranges of the new keys', () => {
    const bad = (key: string, value: string) => () => BrokerConfig.from({ file: { [key]: value } });
    expect(bad('controller.quorum.election.timeout.ms', '99')).toThrow(/'controller.quorum.election.timeout.ms': expected at least 100/);
    expect(bad('broker.heartbeat.interval.ms', '0')).toThrow(/'broker.heartbeat.interval.ms': expected at least 1/);
    expect(bad('broker.session.timeout.ms', '0')).toThrow(/'broker.session.timeout.ms': expected at least 1/);
    expect(bad('controlled.shutdown.timeout.ms', '-1')).toThrow(/'controlled.shutdown.timeout.ms': expected at least 0/);
    expect(bad('leader.imbalance.per.broker.percentage', '101')).toThrow(/'leader.imbalance.per.broker.percentage': expected at most 100/);
    expect(bad('leader.imbalance.check.interval.seconds', '0')).toThrow(/'leader.imbalance.check.interval.seconds': expected at least 1/);
    expect(bad('replica.lag.time.max.ms', '0')).toThrow(/'replica.lag.time.max.ms': expected at least 1/);
    expect(bad('unclean.leader.election.enable', 'maybe')).toThrow(/'unclean.leader.election.enable': expected true or false/);
    expect(bad('controlled.shutdown.enable', '1')).toThrow(/true or false/);
    expect(BrokerConfig.from({ env: { RUNNEL_CLUSTER_ID: 'abc' } }).string('cluster.id')).toBe('abc');
  });

  it('accepts unclean.leader.election.enable as a topic config', () => {
    expect(parseTopicConfigs({ 'unclean.leader.election.enable': 'true' }).get('unclean.leader.election.enable')).toBe(true);
    const defaults = BrokerConfig.from().logSettings();
    expect(withTopicOverrides(defaults, { 'unclean.leader.election.enable': 'false' })).toEqual(defaults);
    expect(() => parseTopicConfigs({ 'unclean.leader.election.enable': 'yes' })).toThrow(/'unclean.leader.election.enable': expected true or false/);
  });
});

describe('error codes', () => {
  it('uses Kafka numbers and retriability', () => {
    expect(errorCode('NOT_LEADER_OR_FOLLOWER')).toBe(6);
    expect(errorCode('CORRUPT_MESSAGE')).toBe(2);
    expect(errorName(36)).toBe('TOPIC_ALREADY_EXISTS');
    expect(errorName(9999)).toBe('UNKNOWN_ERROR_9999');
    expect(isRetriable(6)).toBe(true);
    expect(isRetriable(10)).toBe(false);
    const error = RunnelError.fromCode(3, 'topic x');
    expect(error.errorName).toBe('UNKNOWN_TOPIC_OR_PARTITION');
    expect(error.message).toBe('UNKNOWN_TOPIC_OR_PARTITION: topic x');
  });
});
