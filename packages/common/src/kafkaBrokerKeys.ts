// Apache Kafka's broker configuration keys that Runnel accepts without acting on them, so that a
// server.properties written for Kafka starts a node. The keys are those of the "Broker Configs"
// section of Kafka's documentation, 1.0 to 3.9 (each release's generated kafka_config.html), less
// the ones Runnel implements (brokerConfig.ts). Each is checked against its Kafka type and named,
// with why it has no effect, in one warning at startup; a value that asks for behaviour Runnel
// does not have (an authorizer, LogAppendTime, tiered storage, …) is refused instead.

import { ConfigDef, ConfigError, type ConfigType } from './config.js';

export type KafkaKeyType = 'int' | 'short' | 'long' | 'double' | 'boolean' | 'string' | 'list' | 'class' | 'password';

export interface IgnoredKafkaKeys {
  /** Why these keys have no effect here, as the startup warning puts it. */
  readonly reason: string;
  /** Each key with its type in Kafka. */
  readonly keys: Readonly<Record<string, KafkaKeyType>>;
}

export const IGNORED_KAFKA_KEYS: readonly IgnoredKafkaKeys[] = [
  {
    reason: 'the Raft controller replaces ZooKeeper: set controller.quorum.voters',
    keys: {
      'broker.id.generation.enable': 'boolean', 'control.plane.listener.name': 'string',
      'controlled.shutdown.max.retries': 'int', 'controlled.shutdown.retry.backoff.ms': 'long',
      'controller.socket.timeout.ms': 'int', 'reserved.broker.max.id': 'int', 'zookeeper.clientCnxnSocket': 'string',
      'zookeeper.connect': 'string', 'zookeeper.connection.timeout.ms': 'int',
      'zookeeper.max.in.flight.requests': 'int', 'zookeeper.metadata.migration.enable': 'boolean',
      'zookeeper.session.timeout.ms': 'int', 'zookeeper.set.acl': 'boolean', 'zookeeper.ssl.cipher.suites': 'list',
      'zookeeper.ssl.client.enable': 'boolean', 'zookeeper.ssl.crl.enable': 'boolean',
      'zookeeper.ssl.enabled.protocols': 'list', 'zookeeper.ssl.endpoint.identification.algorithm': 'string',
      'zookeeper.ssl.keystore.location': 'string', 'zookeeper.ssl.keystore.password': 'password',
      'zookeeper.ssl.keystore.type': 'string', 'zookeeper.ssl.ocsp.enable': 'boolean',
      'zookeeper.ssl.protocol': 'string', 'zookeeper.ssl.truststore.location': 'string',
      'zookeeper.ssl.truststore.password': 'password', 'zookeeper.ssl.truststore.type': 'string',
      'zookeeper.sync.time.ms': 'int',
    },
  },
  {
    reason: 'listeners and advertised.listeners replace them, as in Kafka 3.0',
    keys: {
      'advertised.host.name': 'string', 'advertised.port': 'int', 'host.name': 'string', 'port': 'int',
    },
  },
  {
    reason: 'brokers replicate over gRPC, on the REPLICATION or GRPC listener',
    keys: {
      'inter.broker.listener.name': 'string', 'num.replica.fetchers': 'int', 'replica.fetch.backoff.ms': 'int',
      'replica.fetch.min.bytes': 'int', 'replica.high.watermark.checkpoint.interval.ms': 'long',
      'replica.socket.receive.buffer.bytes': 'int', 'replica.socket.timeout.ms': 'int',
      'security.inter.broker.protocol': 'string',
    },
  },
  {
    reason: 'a node serves everything on one Node.js event loop: there are no thread pools to size',
    keys: {
      'background.threads': 'int', 'group.coordinator.threads': 'int', 'log.cleaner.threads': 'int',
      'num.io.threads': 'int', 'num.network.threads': 'int', 'num.recovery.threads.per.data.dir': 'int',
      'num.replica.alter.log.dirs.threads': 'int',
    },
  },
  {
    reason: 'the OS sizes socket buffers and backlogs, and Runnel limits no connections',
    keys: {
      'max.connection.creation.rate': 'int', 'max.connections': 'int',
      'max.connections.per.ip': 'int', 'max.connections.per.ip.overrides': 'string',
      'socket.connection.setup.timeout.max.ms': 'long', 'socket.connection.setup.timeout.ms': 'long',
      'socket.listen.backlog.size': 'int', 'socket.receive.buffer.bytes': 'int', 'socket.send.buffer.bytes': 'int',
    },
  },
  {
    reason: 'TLS, SASL and delegation tokens are not implemented: every listener is plaintext',
    keys: {
      'connection.failed.authentication.delay.ms': 'int', 'connections.max.reauth.ms': 'long',
      'delegation.token.expiry.check.interval.ms': 'long', 'delegation.token.expiry.time.ms': 'long',
      'delegation.token.master.key': 'password', 'delegation.token.max.lifetime.ms': 'long',
      'delegation.token.secret.key': 'password', 'password.encoder.cipher.algorithm': 'string',
      'password.encoder.iterations': 'int', 'password.encoder.key.length': 'int',
      'password.encoder.keyfactory.algorithm': 'string', 'password.encoder.old.secret': 'password',
      'password.encoder.secret': 'password', 'principal.builder.class': 'class',
      'sasl.client.callback.handler.class': 'class', 'sasl.enabled.mechanisms': 'list',
      'sasl.jaas.config': 'password', 'sasl.kerberos.kinit.cmd': 'string',
      'sasl.kerberos.min.time.before.relogin': 'long', 'sasl.kerberos.principal.to.local.rules': 'list',
      'sasl.kerberos.service.name': 'string', 'sasl.kerberos.ticket.renew.jitter': 'double',
      'sasl.kerberos.ticket.renew.window.factor': 'double', 'sasl.login.callback.handler.class': 'class',
      'sasl.login.class': 'class', 'sasl.login.connect.timeout.ms': 'int', 'sasl.login.read.timeout.ms': 'int',
      'sasl.login.refresh.buffer.seconds': 'short', 'sasl.login.refresh.min.period.seconds': 'short',
      'sasl.login.refresh.window.factor': 'double', 'sasl.login.refresh.window.jitter': 'double',
      'sasl.login.retry.backoff.max.ms': 'long', 'sasl.login.retry.backoff.ms': 'long',
      'sasl.mechanism.controller.protocol': 'string', 'sasl.mechanism.inter.broker.protocol': 'string',
      'sasl.oauthbearer.clock.skew.seconds': 'int', 'sasl.oauthbearer.expected.audience': 'list',
      'sasl.oauthbearer.expected.issuer': 'string', 'sasl.oauthbearer.jwks.endpoint.refresh.ms': 'long',
      'sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms': 'long',
      'sasl.oauthbearer.jwks.endpoint.retry.backoff.ms': 'long', 'sasl.oauthbearer.jwks.endpoint.url': 'string',
      'sasl.oauthbearer.scope.claim.name': 'string', 'sasl.oauthbearer.sub.claim.name': 'string',
      'sasl.oauthbearer.token.endpoint.url': 'string', 'sasl.server.callback.handler.class': 'class',
      'sasl.server.max.receive.size': 'int', 'security.providers': 'string', 'ssl.allow.dn.changes': 'boolean',
      'ssl.allow.san.changes': 'boolean', 'ssl.cipher.suites': 'list', 'ssl.client.auth': 'string',
      'ssl.enabled.protocols': 'list', 'ssl.endpoint.identification.algorithm': 'string',
      'ssl.engine.factory.class': 'class', 'ssl.key.password': 'password', 'ssl.keymanager.algorithm': 'string',
      'ssl.keystore.certificate.chain': 'password', 'ssl.keystore.key': 'password', 'ssl.keystore.location': 'string',
      'ssl.keystore.password': 'password', 'ssl.keystore.type': 'string', 'ssl.principal.mapping.rules': 'string',
      'ssl.protocol': 'string', 'ssl.provider': 'string', 'ssl.secure.random.implementation': 'string',
      'ssl.trustmanager.algorithm': 'string', 'ssl.truststore.certificates': 'password',
      'ssl.truststore.location': 'string', 'ssl.truststore.password': 'password', 'ssl.truststore.type': 'string',
    },
  },
  {
    reason: 'authorizer and policy plugins are not implemented',
    keys: {
      'alter.config.policy.class.name': 'class', 'authorizer.class.name': 'string',
      'create.topic.policy.class.name': 'class',
    },
  },
  {
    reason: 'tiered storage is not implemented: every segment stays on local disk',
    keys: {
      'log.local.retention.bytes': 'long', 'log.local.retention.ms': 'long', 'remote.fetch.max.wait.ms': 'int',
      'remote.log.index.file.cache.total.size.bytes': 'long', 'remote.log.manager.copier.thread.pool.size': 'int',
      'remote.log.manager.copy.max.bytes.per.second': 'long', 'remote.log.manager.copy.quota.window.num': 'int',
      'remote.log.manager.copy.quota.window.size.seconds': 'int',
      'remote.log.manager.expiration.thread.pool.size': 'int',
      'remote.log.manager.fetch.max.bytes.per.second': 'long', 'remote.log.manager.fetch.quota.window.num': 'int',
      'remote.log.manager.fetch.quota.window.size.seconds': 'int', 'remote.log.manager.task.interval.ms': 'long',
      'remote.log.manager.thread.pool.size': 'int', 'remote.log.metadata.custom.metadata.max.bytes': 'int',
      'remote.log.metadata.manager.class.name': 'string', 'remote.log.metadata.manager.class.path': 'string',
      'remote.log.metadata.manager.impl.prefix': 'string', 'remote.log.metadata.manager.listener.name': 'string',
      'remote.log.reader.max.pending.tasks': 'int', 'remote.log.reader.threads': 'int',
      'remote.log.storage.manager.class.name': 'string', 'remote.log.storage.manager.class.path': 'string',
      'remote.log.storage.manager.impl.prefix': 'string', 'remote.log.storage.system.enable': 'boolean',
    },
  },
  {
    reason: 'client quotas are not implemented: no client is throttled (only reassignment traffic is)',
    keys: {
      'alter.log.dirs.replication.quota.window.num': 'int',
      'alter.log.dirs.replication.quota.window.size.seconds': 'int', 'client.quota.callback.class': 'class',
      'controller.quota.window.num': 'int', 'controller.quota.window.size.seconds': 'int',
      'quota.consumer.default': 'long', 'quota.producer.default': 'long', 'quota.window.num': 'int',
      'quota.window.size.seconds': 'int',
    },
  },
  {
    reason: 'transactions and idempotent producers are not implemented',
    keys: {
      'producer.id.expiration.ms': 'int', 'transaction.abort.timed.out.transaction.cleanup.interval.ms': 'int',
      'transaction.max.timeout.ms': 'int', 'transaction.partition.verification.enable': 'boolean',
      'transaction.remove.expired.transaction.cleanup.interval.ms': 'int',
      'transaction.state.log.load.buffer.size': 'int', 'transaction.state.log.min.isr': 'int',
      'transaction.state.log.num.partitions': 'int', 'transaction.state.log.replication.factor': 'short',
      'transaction.state.log.segment.bytes': 'int', 'transactional.id.expiration.ms': 'int',
    },
  },
  {
    reason: 'metrics are Prometheus text on the HTTP listener\'s /metrics, not JMX reporters',
    keys: {
      'auto.include.jmx.reporter': 'boolean', 'kafka.metrics.polling.interval.secs': 'int',
      'kafka.metrics.reporters': 'list', 'metric.reporters': 'list', 'metrics.num.samples': 'int',
      'metrics.recording.level': 'string', 'metrics.sample.window.ms': 'long', 'telemetry.max.bytes': 'int',
    },
  },
  {
    reason: 'the consumer group protocol of KIP-848 and share groups are not implemented: groups use the classic protocol',
    keys: {
      'group.consumer.assignors': 'list', 'group.consumer.heartbeat.interval.ms': 'int',
      'group.consumer.max.heartbeat.interval.ms': 'int', 'group.consumer.max.session.timeout.ms': 'int',
      'group.consumer.max.size': 'int', 'group.consumer.migration.policy': 'string',
      'group.consumer.min.heartbeat.interval.ms': 'int', 'group.consumer.min.session.timeout.ms': 'int',
      'group.consumer.session.timeout.ms': 'int', 'group.coordinator.append.linger.ms': 'int',
      'group.coordinator.rebalance.protocols': 'list', 'group.share.delivery.count.limit': 'int',
      'group.share.heartbeat.interval.ms': 'int', 'group.share.max.groups': 'short',
      'group.share.max.heartbeat.interval.ms': 'int', 'group.share.max.record.lock.duration.ms': 'int',
      'group.share.max.session.timeout.ms': 'int', 'group.share.max.size': 'short',
      'group.share.min.heartbeat.interval.ms': 'int', 'group.share.min.record.lock.duration.ms': 'int',
      'group.share.min.session.timeout.ms': 'int', 'group.share.partition.max.record.locks': 'int',
      'group.share.record.lock.duration.ms': 'int', 'group.share.session.timeout.ms': 'int',
    },
  },
  {
    reason: 'batches are stored in record batch v2 and never down-converted',
    keys: {
      'inter.broker.protocol.version': 'string', 'log.message.downconversion.enable': 'boolean',
      'log.message.format.version': 'string',
    },
  },
  {
    reason: 'batches are stored as the producer compressed them, as compression.type=producer does',
    keys: {
      'compression.gzip.level': 'int', 'compression.lz4.level': 'int', 'compression.type': 'string',
      'compression.zstd.level': 'int',
    },
  },
  {
    reason: 'records keep the producer\'s timestamp, CreateTime, unchecked',
    keys: {
      'log.message.timestamp.after.max.ms': 'long', 'log.message.timestamp.before.max.ms': 'long',
      'log.message.timestamp.difference.max.ms': 'long', 'log.message.timestamp.type': 'string',
    },
  },
  {
    reason: 'consumers fetch from leaders: fetching from followers, KIP-392, is not implemented',
    keys: {
      'replica.selector.class': 'string',
    },
  },
  {
    reason: 'eligible leader replicas, KIP-966, are not implemented',
    keys: {
      'eligible.leader.replicas.enable': 'boolean',
    },
  },
  {
    reason: 'Runnel\'s Raft keeps its own timers, set by controller.quorum.election.timeout.ms, and its log in LevelDB',
    keys: {
      'controller.quorum.append.linger.ms': 'int', 'controller.quorum.bootstrap.servers': 'list',
      'controller.quorum.election.backoff.max.ms': 'int', 'controller.quorum.fetch.timeout.ms': 'int',
      'controller.quorum.request.timeout.ms': 'int', 'controller.quorum.retry.backoff.ms': 'int',
      'early.start.listeners': 'string', 'initial.broker.registration.timeout.ms': 'int',
      'metadata.log.max.record.bytes.between.snapshots': 'long', 'metadata.log.max.snapshot.interval.ms': 'long',
      'metadata.log.segment.bytes': 'int', 'metadata.log.segment.ms': 'long', 'metadata.max.idle.interval.ms': 'int',
      'metadata.max.retention.bytes': 'long', 'metadata.max.retention.ms': 'long',
    },
  },
  {
    reason: 'tuning of Kafka internals Runnel does without: purgatories, checkpoints, cleaner buffers, fetch sessions, roll jitter',
    keys: {
      'delete.records.purgatory.purge.interval.requests': 'int', 'fetch.purgatory.purge.interval.requests': 'int',
      'log.cleaner.io.buffer.load.factor': 'double', 'log.cleaner.io.buffer.size': 'int',
      'log.cleaner.io.max.bytes.per.second': 'double', 'log.cleaner.max.compaction.lag.ms': 'long',
      'log.dir.failure.timeout.ms': 'long', 'log.flush.offset.checkpoint.interval.ms': 'int',
      'log.flush.scheduler.interval.ms': 'long', 'log.flush.start.offset.checkpoint.interval.ms': 'int',
      'log.index.size.max.bytes': 'int', 'log.preallocate': 'boolean', 'log.roll.jitter.hours': 'int',
      'log.roll.jitter.ms': 'long', 'max.incremental.fetch.session.cache.slots': 'int',
      'max.request.partition.size.limit': 'int', 'offsets.commit.required.acks': 'short',
      'offsets.load.buffer.size': 'int', 'offsets.topic.compression.codec': 'int',
      'producer.purgatory.purge.interval.requests': 'int', 'queued.max.requests': 'int', 'request.timeout.ms': 'int',
    },
  },
];

/** Kafka's per-listener overrides (`listener.name.internal.ssl.keystore.location`, …), any key under the prefix. */
export const IGNORED_KAFKA_PREFIXES: readonly { readonly prefix: string; readonly reason: string }[] = [
  { prefix: 'listener.name.', reason: 'per-listener overrides: every listener takes the broker-wide settings' },
];

const LONG_MAX = '9223372036854775807';

/**
 * Ignored keys whose other values ask for something Runnel does not do: only these values
 * (compared case-insensitively, as Kafka reads booleans) are accepted, anything else is refused
 * with `why`. Ignoring them would weaken security or change what is stored without a word.
 */
export const KAFKA_VALUE_LIMITS: Readonly<Record<string, { readonly accepted: readonly string[]; readonly why: string }>> = {
  'authorizer.class.name': { accepted: [''], why: 'ACLs are not implemented, and a node that ignored the authorizer would let every client do everything' },
  'create.topic.policy.class.name': { accepted: [''], why: 'topic policy plugins are not implemented' },
  'alter.config.policy.class.name': { accepted: [''], why: 'config policy plugins are not implemented' },
  'security.inter.broker.protocol': { accepted: ['PLAINTEXT'], why: 'brokers replicate over plaintext gRPC; TLS and SASL are not implemented' },
  'compression.type': { accepted: ['producer'], why: 'batches are stored as the producer compressed them; recompression on the broker is not implemented' },
  'log.message.timestamp.type': { accepted: ['CreateTime'], why: 'LogAppendTime is not implemented: records keep the producer\'s timestamp' },
  'log.message.timestamp.difference.max.ms': { accepted: [LONG_MAX], why: 'record timestamps are not checked against the broker\'s clock' },
  'log.message.timestamp.before.max.ms': { accepted: [LONG_MAX], why: 'record timestamps are not checked against the broker\'s clock' },
  'log.message.timestamp.after.max.ms': { accepted: [LONG_MAX], why: 'record timestamps are not checked against the broker\'s clock' },
  'log.cleaner.max.compaction.lag.ms': { accepted: [LONG_MAX], why: 'the log cleaner has no maximum compaction lag: a log is compacted when its dirty ratio says so' },
  'eligible.leader.replicas.enable': { accepted: ['false'], why: 'eligible leader replicas (KIP-966) are not implemented' },
  'remote.log.storage.system.enable': { accepted: ['false'], why: 'tiered storage is not implemented' },
  'zookeeper.metadata.migration.enable': { accepted: ['false'], why: 'there is no ZooKeeper metadata to migrate: Runnel keeps metadata in its own Raft log' },
};

/** Kafka's names for keys Runnel has under another name. */
export const KAFKA_ALIASES: Readonly<Record<string, string>> = {
  'broker.id': 'node.id',
};

const IGNORED_BY_KEY: ReadonlyMap<string, { readonly reason: string; readonly type: KafkaKeyType }> = new Map(
  IGNORED_KAFKA_KEYS.flatMap((group) => Object.entries(group.keys).map(([key, type]) => [key, { reason: group.reason, type }] as const)),
);

/** Why Runnel ignores a Kafka key, and its Kafka type; undefined for a key that is not one of these. */
export function ignoredKafkaKey(key: string): { readonly reason: string; readonly type: KafkaKeyType } | undefined {
  const listed = IGNORED_BY_KEY.get(key);
  if (listed !== undefined) return listed;
  const prefixed = IGNORED_KAFKA_PREFIXES.find((entry) => key.startsWith(entry.prefix) && key.length > entry.prefix.length);
  return prefixed === undefined ? undefined : { reason: prefixed.reason, type: 'string' };
}

/** Every key listed in IGNORED_KAFKA_KEYS (not the prefixes). */
export function ignoredKafkaKeyNames(): IterableIterator<string> {
  return IGNORED_BY_KEY.keys();
}

/** How Runnel's ConfigDef reads a value of each Kafka type (a short as an int, a class or password as text). */
const AS_CONFIG_TYPE: Readonly<Record<KafkaKeyType, ConfigType>> = {
  int: 'int', short: 'int', long: 'long', double: 'double', boolean: 'boolean', string: 'string', list: 'string', class: 'string', password: 'string',
};

/**
 * Checks the value of a key Runnel ignores as Kafka would read it (its type), and refuses a value
 * that asks for behaviour Runnel does not have (KAFKA_VALUE_LIMITS). `source` names where it was set.
 */
export function checkIgnoredKafkaValue(key: string, type: KafkaKeyType, raw: string, source: string): void {
  const value = raw.trim();
  // Kafka reads booleans in any case (`False`).
  const asRunnelReads = type === 'boolean' ? value.toLowerCase() : raw;
  new ConfigDef({ [key]: { type: AS_CONFIG_TYPE[type], default: null, doc: '' } }).parseValue(key, asRunnelReads, source);
  const limit = KAFKA_VALUE_LIMITS[key];
  if (limit !== undefined && !limit.accepted.some((accepted) => accepted.toLowerCase() === value.toLowerCase())) {
    throw new ConfigError(`${source}: ${key}=${value} is refused: ${limit.why}`);
  }
}
