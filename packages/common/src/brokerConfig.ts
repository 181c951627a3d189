// The keys of server.properties and of per-topic overrides, with Kafka's names and defaults. A
// file written for Apache Kafka is accepted too: Kafka's keys that Runnel has no use for are
// named in one warning (kafkaBrokerKeys.ts), `broker.id` is `node.id`, and Kafka's listener names
// are read through listener.security.protocol.map and controller.listener.names (listeners.ts).
import { join } from 'node:path';
import { ConfigDef, ConfigError, MAX_LONG, environmentOverrides, environmentVariable, suggestion, type ConfigKey, type ConfigValue } from './config.js';
import { KAFKA_ALIASES, checkIgnoredKafkaValue, ignoredKafkaKey, ignoredKafkaKeyNames } from './kafkaBrokerKeys.js';
import { derivedGrpcListener, formatListeners, parseListenerEntries, parseProtocolMap, servedListeners, type Listener, type ListenerName, type ListenerNaming, type ServedListener } from './listeners.js';

const HOUR_MS = 3_600_000;

export const BROKER_CONFIG = new ConfigDef(
  {
    'node.id': { type: 'int', default: 1, min: 0, doc: 'This node\'s id, unique in the cluster.' },
    'process.roles': { type: 'list', default: ['broker', 'controller'], choices: ['broker', 'controller'], doc: 'Roles of this process: broker (serves partitions to clients), controller (a member of the Raft metadata quorum), or both.' },
    'listeners': {
      type: 'string',
      default: 'PLAINTEXT://127.0.0.1:9092,GRPC://127.0.0.1:9192,CONTROLLER://127.0.0.1:9292,HTTP://127.0.0.1:9392',
      doc: 'NAME://host:port for each listener: PLAINTEXT (the Kafka wire protocol, for Kafka clients; optional), GRPC (client API; required for a broker: when only a Kafka listener is given, on its port + 100), REPLICATION (followers\' fetches; optional), CONTROLLER (Raft quorum; required for a controller) and HTTP (/metrics, /health). Kafka\'s listener names work too, through listener.security.protocol.map and controller.listener.names.',
    },
    'advertised.listeners': { type: 'string', default: null, doc: 'Addresses given to clients and other brokers, if they differ from listeners; a listener missing here is advertised as listeners has it.' },
    'listener.security.protocol.map': {
      type: 'string',
      default: 'PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL',
      doc: 'Kafka\'s NAME:PROTOCOL for listener names other than Runnel\'s: a name mapped to PLAINTEXT is a Kafka listener; one that is SSL or SASL is refused (not implemented).',
    },
    'controller.listener.names': { type: 'list', default: ['CONTROLLER'], doc: 'The name of the listener that serves the Raft quorum (Kafka\'s KRaft key; one listener).' },
    'log.dirs': { type: 'string', default: null, doc: 'The directory that holds partition logs (one directory).' },
    'log.dir': { type: 'string', default: './data', doc: 'Used when log.dirs is not set.' },
    'broker.rack': { type: 'string', default: null, doc: 'The rack of this broker, for rack-aware placement.' },
    'num.partitions': { type: 'int', default: 1, min: 1, doc: 'Partitions of a topic created without a count.' },
    'default.replication.factor': { type: 'int', default: 1, min: 1, max: 32767, doc: 'Replication factor of a topic created without one.' },
    'min.insync.replicas': { type: 'int', default: 1, min: 1, doc: 'Replicas that must acknowledge an acks=all write.' },
    'auto.create.topics.enable': { type: 'boolean', default: true, doc: 'Create a topic when a producer asks for its metadata.' },
    'delete.topic.enable': { type: 'boolean', default: true, doc: 'Allow DeleteTopics.' },
    'message.max.bytes': { type: 'int', default: 1048588, min: 0, doc: 'Largest record batch the broker accepts.' },
    'socket.request.max.bytes': { type: 'int', default: 104857600, min: 1, doc: 'Largest request the broker accepts (a larger Kafka frame closes its connection).' },
    'connections.max.idle.ms': { type: 'long', default: 600000, min: -1, doc: 'Close a Kafka connection that has had no request in flight and no traffic for this long; 0 or -1 never closes one.' },
    'queued.max.request.bytes': { type: 'long', default: 268435456, min: -1, doc: 'Bytes of received requests the broker holds before it stops reading more (back-pressure); -1 is unlimited.' },
    'fetch.max.bytes': { type: 'int', default: 57671680, min: 1024, doc: 'Largest fetch response the broker builds.' },
    'log.segment.bytes': { type: 'int', default: 1073741824, min: 128, doc: 'Roll a segment at this size.' },
    'log.roll.ms': { type: 'long', default: null, min: 1, doc: 'Roll a segment this long after its first append (overrides log.roll.hours).' },
    'log.roll.hours': { type: 'int', default: 168, min: 1, doc: 'Roll a segment this many hours after its first append.' },
    'log.retention.ms': { type: 'long', default: null, min: -1, doc: 'Delete segments older than this; -1 keeps them forever (overrides minutes and hours).' },
    'log.retention.minutes': { type: 'int', default: null, min: -1, doc: 'Retention in minutes (overrides hours).' },
    'log.retention.hours': { type: 'int', default: 168, min: -1, doc: 'Retention in hours.' },
    'log.retention.bytes': { type: 'long', default: -1, min: -1, doc: 'Delete the oldest segments while a partition is larger than this; -1 is unlimited.' },
    'log.dir.min.free.bytes': { type: 'long', default: 67108864, min: 0, doc: 'Free bytes under which the log directory counts as full: /readyz fails, `cluster health` says so, and the controller places no new replica on this broker until space is freed (0: never full).' },
    'log.retention.check.interval.ms': { type: 'long', default: 300000, min: 1, doc: 'How often retention runs.' },
    'log.segment.delete.delay.ms': { type: 'long', default: 60000, min: 0, doc: 'How long the files of a segment taken out of the log (by retention) stay on disk, renamed to .deleted, before they are removed in the background.' },
    'log.cleanup.policy': { type: 'list', default: ['delete'], choices: ['compact', 'delete'], doc: 'delete: retention removes old segments; compact: the log cleaner keeps the latest record of each key; compact,delete: both.' },
    'log.cleaner.enable': { type: 'boolean', default: true, doc: 'Run the log cleaner for logs whose cleanup.policy includes compact.' },
    'log.cleaner.backoff.ms': { type: 'long', default: 15000, min: 0, doc: 'How long the log cleaner sleeps between passes over the logs (a pass cleans the logs that are dirty enough).' },
    'log.cleaner.dedupe.buffer.size': { type: 'long', default: 134217728, min: 1024, doc: 'Memory for the cleaner\'s key → offset map; a dirty section with more keys than fit is cleaned a prefix at a time.' },
    'log.cleaner.delete.retention.ms': { type: 'long', default: 86400000, min: 0, doc: 'How long a tombstone (a record with a null value) stays in a compacted log before the cleaner may remove it.' },
    'log.cleaner.min.cleanable.ratio': { type: 'double', default: 0.5, min: 0, max: 1, doc: 'The cleaner cleans a log only when its dirty bytes are more than this fraction of its cleanable bytes.' },
    'log.cleaner.min.compaction.lag.ms': { type: 'long', default: 0, min: 0, doc: 'Records younger than this (by timestamp) are never compacted.' },
    'log.flush.interval.messages': { type: 'long', default: MAX_LONG, min: 1, doc: 'fsync a partition after this many records.' },
    'log.flush.interval.ms': { type: 'long', default: null, min: 0, doc: 'fsync a partition whose oldest unflushed record is older than this.' },
    'log.index.interval.bytes': { type: 'int', default: 4096, min: 0, doc: 'Bytes between offset index entries.' },
    'controller.quorum.voters': { type: 'string', default: null, doc: 'The controller quorum: id@host:port for each voter, comma separated (the host:port of its CONTROLLER listener); by default this node alone, at its CONTROLLER listener.' },
    'controller.quorum.election.timeout.ms': { type: 'int', default: 1000, min: 100, doc: 'How long a controller waits without hearing from a leader before it starts an election.' },
    'controller.quorum.new.member': { type: 'boolean', default: false, doc: 'Let a controller start as a new quorum member although its metadata log directory is empty and the node has run before (meta.properties exists); without it such a node refuses to start, since its Raft votes and log are lost and starting over could vote twice in a term. Set it for one start only.' },
    'metadata.log.dir': { type: 'string', default: null, doc: 'The directory of the metadata (Raft) log; defaults to __cluster_metadata under the log directory.' },
    'cluster.id': { type: 'string', default: null, doc: 'The cluster id written by `runnel cluster up`; a node refuses to start on a log dir formatted for another cluster.' },
    'broker.heartbeat.interval.ms': { type: 'int', default: 2000, min: 1, doc: 'How often a broker heartbeats to the controller.' },
    'broker.session.timeout.ms': { type: 'int', default: 9000, min: 1, doc: 'A broker that has not heartbeated for this long is fenced; must be greater than broker.heartbeat.interval.ms.' },
    'controlled.shutdown.enable': { type: 'boolean', default: true, doc: 'On SIGTERM, ask the controller to move leadership away before stopping.' },
    'controlled.shutdown.timeout.ms': { type: 'long', default: 30000, min: 0, doc: 'How long a SIGTERMed broker waits for the controller to move its leadership away (Runnel\'s own key).' },
    'auto.leader.rebalance.enable': { type: 'boolean', default: true, doc: 'Move leadership back to preferred replicas when the imbalance is too high.' },
    'auto.replica.rebalance.enable': { type: 'boolean', default: false, doc: 'When a broker joins the cluster (registers for the first time), the active controller spreads replicas and preferred leaders onto it by itself (as `runnel cluster rebalance --replicas`), once it is live and no partition is moving.' },
    'leader.imbalance.per.broker.percentage': { type: 'int', default: 10, min: 0, max: 100, doc: 'Percentage of non-preferred leaders per broker that triggers a rebalance.' },
    'leader.imbalance.check.interval.seconds': { type: 'long', default: 300, min: 1, doc: 'How often the controller checks leader imbalance.' },
    'unclean.leader.election.enable': { type: 'boolean', default: false, doc: 'Allow a replica outside the ISR to become leader as a last resort (can lose data).' },
    'offsets.topic.num.partitions': { type: 'int', default: 50, min: 1, doc: 'Partitions of the internal __consumer_offsets topic (fixed once it exists): a group is coordinated by the leader of one of them.' },
    'offsets.topic.replication.factor': { type: 'int', default: 3, min: 1, max: 32767, doc: 'Replication factor of __consumer_offsets; on a smaller cluster it is created with the live brokers there are, and a warning says so.' },
    'offsets.commit.timeout.ms': { type: 'int', default: 5000, min: 1, doc: 'How long an offset commit or a group assignment waits for every in-sync replica of its __consumer_offsets partition.' },
    'offsets.topic.segment.bytes': { type: 'int', default: 104857600, min: 128, doc: 'Segment size of __consumer_offsets (small, so that compaction can clean it often).' },
    'offset.metadata.max.bytes': { type: 'int', default: 4096, min: 0, doc: 'Largest metadata string an offset commit may carry (OFFSET_METADATA_TOO_LARGE beyond it).' },
    'offsets.retention.minutes': { type: 'int', default: 10080, min: 1, doc: 'The committed offsets of a group that has had no members this long expire (and offsets committed from outside a group, this long after their commit).' },
    'offsets.retention.check.interval.ms': { type: 'long', default: 600000, min: 1, doc: 'How often the coordinator looks for expired offsets.' },
    'group.initial.rebalance.delay.ms': { type: 'int', default: 3000, min: 0, doc: 'How long the first rebalance of an empty group waits for more members to join.' },
    'group.min.session.timeout.ms': { type: 'int', default: 6000, min: 1, doc: 'The smallest session timeout a group member may ask for.' },
    'group.max.session.timeout.ms': { type: 'int', default: 1800000, min: 1, doc: 'The largest session timeout a group member may ask for.' },
    'group.max.size': { type: 'int', default: 2147483647, min: 1, doc: 'The most members a group may have.' },
    'replica.lag.time.max.ms': { type: 'long', default: 30000, min: 1, doc: 'A follower that has not caught up for this long is removed from the ISR.' },
    'replica.fetch.max.bytes': { type: 'int', default: 1048576, min: 1, doc: 'Bytes a follower asks for per partition in one fetch (a larger first batch still comes whole).' },
    'replica.fetch.response.max.bytes': { type: 'int', default: 10485760, min: 1, doc: 'Bytes a follower asks for in one fetch over all partitions.' },
    'replica.fetch.wait.max.ms': { type: 'int', default: 500, min: 0, doc: 'How long a leader holds a follower\'s fetch when there is nothing new.' },
    'leader.replication.throttled.rate': { type: 'long', default: 9007199254740991, min: 0, doc: 'Bytes per second a leader sends to replicas a reassignment is adding (until they join the ISR); a cluster- or broker-level dynamic config of the same name overrides it. Unlimited by default.' },
    'follower.replication.throttled.rate': { type: 'long', default: 9007199254740991, min: 0, doc: 'Bytes per second a broker fetches for its replicas a reassignment is adding (until they join the ISR); a cluster- or broker-level dynamic config of the same name overrides it. Unlimited by default.' },
    'replication.quota.window.num': { type: 'int', default: 11, min: 2, doc: 'Samples the replication throttle measures its rate over.' },
    'replication.quota.window.size.seconds': { type: 'int', default: 1, min: 1, doc: 'Length of one replication throttle sample.' },
  },
);

/** Per-topic overrides, with the broker key each one defaults to. */
export const TOPIC_CONFIG = new ConfigDef({
  'retention.ms': { type: 'long', default: null, min: -1, doc: 'log.retention.ms for this topic.' },
  'retention.bytes': { type: 'long', default: null, min: -1, doc: 'log.retention.bytes for this topic.' },
  'segment.bytes': { type: 'int', default: null, min: 128, doc: 'log.segment.bytes for this topic.' },
  'segment.ms': { type: 'long', default: null, min: 1, doc: 'log.roll.ms for this topic.' },
  'flush.messages': { type: 'long', default: null, min: 1, doc: 'log.flush.interval.messages for this topic.' },
  'flush.ms': { type: 'long', default: null, min: 0, doc: 'log.flush.interval.ms for this topic.' },
  'index.interval.bytes': { type: 'int', default: null, min: 0, doc: 'log.index.interval.bytes for this topic.' },
  'max.message.bytes': { type: 'int', default: null, min: 0, doc: 'message.max.bytes for this topic.' },
  'min.insync.replicas': { type: 'int', default: null, min: 1, doc: 'min.insync.replicas for this topic.' },
  'cleanup.policy': { type: 'list', default: null, choices: ['compact', 'delete'], doc: 'log.cleanup.policy for this topic: delete, compact, or compact,delete.' },
  'delete.retention.ms': { type: 'long', default: null, min: 0, doc: 'log.cleaner.delete.retention.ms for this topic.' },
  'min.cleanable.dirty.ratio': { type: 'double', default: null, min: 0, max: 1, doc: 'log.cleaner.min.cleanable.ratio for this topic.' },
  'min.compaction.lag.ms': { type: 'long', default: null, min: 0, doc: 'log.cleaner.min.compaction.lag.ms for this topic.' },
  'unclean.leader.election.enable': { type: 'boolean', default: null, doc: 'unclean.leader.election.enable for this topic' },
  'file.delete.delay.ms': { type: 'long', default: null, min: 0, doc: 'log.segment.delete.delay.ms for this topic.' },
});

/** The settings a PartitionLog runs with, after topic overrides are applied to the broker defaults. */
export interface LogSettings {
  segmentBytes: number;
  /** Roll the active segment this long after its first append. */
  segmentMs: number;
  /** -1: keep forever. */
  retentionMs: number;
  /** -1: unlimited. */
  retentionBytes: number;
  flushMessages: number;
  /** null: no time-based flush. */
  flushMs: number | null;
  indexIntervalBytes: number;
  maxMessageBytes: number;
  minInsyncReplicas: number;
  /** How long a deleted segment's files wait, renamed to .deleted, before they are removed. */
  fileDeleteDelayMs: number;
  /** cleanup.policy: `delete` runs retention, `compact` the log cleaner; both may be set. */
  cleanupPolicy: { compact: boolean; delete: boolean };
  /** How long a tombstone stays in a compacted log before the cleaner may remove it. */
  deleteRetentionMs: number;
  /** A compacted log is cleaned once dirty bytes / cleanable bytes exceeds this (0..1). */
  minCleanableDirtyRatio: number;
  /** Records younger than this (by their batch's max timestamp) are not compacted. */
  minCompactionLagMs: number;
}

/** `cleanup.policy` as a list (`compact,delete`) → flags; an empty list is refused (nothing would bound the log). */
export function parseCleanupPolicy(policy: readonly string[], key: string): { compact: boolean; delete: boolean } {
  if (policy.length === 0) throw new ConfigError(`${key}: at least one of compact, delete is required`);
  return { compact: policy.includes('compact'), delete: policy.includes('delete') };
}

/** Where a value came from: Runnel's default, the config file, an environment variable or `--set`. */
export interface ConfigSource {
  readonly kind: 'default' | 'file' | 'environment' | '--set';
  /** The file, or the environment variable. */
  readonly name?: string;
  /** The key as it was written, when that was Kafka's name for it (`broker.id` for node.id). */
  readonly writtenAs?: string;
}

/** A Kafka key that Runnel accepted and ignores: its value as written, where, and why it has no effect. */
export interface IgnoredKafkaSetting {
  readonly key: string;
  readonly value: string;
  readonly source: ConfigSource;
  readonly reason: string;
}

interface SettingsLayer {
  readonly source: ConfigSource;
  readonly values: Readonly<Record<string, string>>;
}

const DEFAULT_SOURCE: ConfigSource = { kind: 'default' };

/** The keys RUNNEL_* variables set: Runnel's, Kafka's names for them, and the Kafka keys Runnel ignores. */
function environmentKeys(): string[] {
  return [...Object.keys(BROKER_CONFIG.keys), ...Object.keys(KAFKA_ALIASES), ...ignoredKafkaKeyNames()];
}

/** How a source is named in an error: the file, the environment variable, or `--set`. */
function sourceLabel(source: ConfigSource, key: string): string {
  if (source.kind === 'environment') return environmentVariable(key);
  return source.kind === 'file' ? source.name ?? 'server.properties' : source.kind;
}

/** `file`, `environment RUNNEL_X`, `--set` or `default`, with the Kafka name a value was given under. */
export function describeSource(source: ConfigSource): string {
  const where = source.kind === 'environment' ? `environment ${source.name}` : source.kind;
  return source.writtenAs === undefined ? where : `${where} (as ${source.writtenAs})`;
}

/**
 * Layers the settings over the defaults (later wins), each value parsed under its key: Runnel's
 * own, Kafka's name for one of them (`broker.id`), or a Kafka key Runnel ignores. Any other key
 * is an error suggesting the closest known one.
 */
function readLayers(layers: readonly SettingsLayer[]): { values: Map<string, ConfigValue>; sources: Map<string, ConfigSource>; ignored: IgnoredKafkaSetting[] } {
  const values = new Map<string, ConfigValue>();
  const sources = new Map<string, ConfigSource>();
  for (const [key, spec] of Object.entries(BROKER_CONFIG.keys)) {
    values.set(key, spec.default);
    sources.set(key, DEFAULT_SOURCE);
  }
  const ignored = new Map<string, IgnoredKafkaSetting>();
  for (const layer of layers) {
    const writtenHere = new Map<string, string>();
    for (const [written, raw] of Object.entries(layer.values)) {
      const source: ConfigSource = layer.source.kind === 'environment' ? { kind: 'environment', name: environmentVariable(written) } : layer.source;
      const label = sourceLabel(source, written);
      const key = KAFKA_ALIASES[written] ?? written;
      if (BROKER_CONFIG.has(key)) {
        const other = writtenHere.get(key);
        if (other !== undefined && layer.values[other]!.trim() !== raw.trim()) {
          throw new ConfigError(`${label}: ${other}=${layer.values[other]!.trim()} and ${written}=${raw.trim()} disagree; ${written === key ? other : written} is Kafka's name for ${key}: set one of them`);
        }
        writtenHere.set(key, written);
        values.set(key, BROKER_CONFIG.parseValue(key, raw, label));
        sources.set(key, written === key ? source : { ...source, writtenAs: written });
        continue;
      }
      const kafka = ignoredKafkaKey(key);
      if (kafka === undefined) throw new ConfigError(`${label}: unknown config key '${key}'${suggestion(key, environmentKeys())}`);
      checkIgnoredKafkaValue(key, kafka.type, raw, label);
      ignored.set(key, { key, value: raw.trim(), source, reason: kafka.reason });
    }
  }
  return { values, sources, ignored: [...ignored.values()] };
}

/** A validated broker configuration. */
export class BrokerConfig {
  private served!: { listeners: ServedListener[]; advertised: ServedListener[] };

  private constructor(
    private readonly values: Map<string, ConfigValue>,
    private readonly sources: Map<string, ConfigSource>,
    private readonly ignoredKafka: readonly IgnoredKafkaSetting[],
  ) {}

  /**
   * Builds the configuration from a server.properties map, environment variables (RUNNEL_*) and
   * `--set` overrides, in that order of precedence (last wins).
   */
  static from(options: { file?: Record<string, string>; fileName?: string; env?: NodeJS.ProcessEnv; overrides?: Record<string, string> } = {}): BrokerConfig {
    const layers: SettingsLayer[] = [
      { source: { kind: 'file', name: options.fileName ?? 'server.properties' }, values: options.file ?? {} },
      { source: { kind: 'environment' }, values: options.env === undefined ? {} : environmentOverrides(environmentKeys(), options.env) },
      { source: { kind: '--set' }, values: options.overrides ?? {} },
    ];
    const { values, sources, ignored } = readLayers(layers);
    const config = new BrokerConfig(values, sources, ignored);
    config.validate();
    return config;
  }

  /** Checks what single keys cannot: listeners per role, the voter list, timeouts against each other. */
  private validate(): void {
    const roles = this.roles();
    if (!roles.broker && !roles.controller) throw new ConfigError(`process.roles: at least one of broker, controller is required`);
    this.served = this.serveListeners(roles.broker);
    const listeners = this.served.listeners;
    this.logDir();
    if (roles.broker && !listeners.some((listener) => listener.name === 'GRPC')) {
      throw new ConfigError(`listeners: a GRPC listener is required when process.roles includes broker (or a Kafka listener, whose port + 100 it then takes)`);
    }
    if (roles.controller && !listeners.some((listener) => listener.name === 'CONTROLLER')) {
      throw new ConfigError(
        `listeners: a CONTROLLER listener is required when process.roles includes controller (the listener named in controller.listener.names: ${this.controllerListenerNames().join(', ')})`,
      );
    }
    for (const advertised of this.served.advertised) {
      if (!listeners.some((listener) => listener.name === advertised.name)) {
        throw new ConfigError(`advertised.listeners: '${advertised.writtenAs}' is advertised but listeners has no ${advertised.writtenAs} listener`);
      }
    }
    // Kafka clients connect to exactly the host the metadata names, and 0.0.0.0 names no host.
    const kafka = this.advertisedListener('PLAINTEXT');
    if (kafka !== undefined && (kafka.host === '0.0.0.0' || kafka.host === '[::]')) {
      throw new ConfigError(
        `advertised.listeners: PLAINTEXT would advertise ${kafka.host}, which Kafka clients cannot connect to; set advertised.listeners=PLAINTEXT://<host clients reach>:${kafka.port}`,
      );
    }
    this.validateKafkaListenerKeys(roles.broker);
    if (this.boolean('controller.quorum.new.member') && !roles.controller) {
      throw new ConfigError(`controller.quorum.new.member: only a controller joins the quorum, and process.roles has no controller`);
    }
    // A controller not among the voters joins the running quorum without a vote until an operator
    // adds it (`runnel quorum add-voter`); the node says so when it starts.
    this.quorumVoters();
    const heartbeat = this.int('broker.heartbeat.interval.ms');
    const session = this.int('broker.session.timeout.ms');
    if (session <= heartbeat) {
      throw new ConfigError(`broker.session.timeout.ms: ${session} must be greater than broker.heartbeat.interval.ms (${heartbeat})`);
    }
    if (this.int('group.min.session.timeout.ms') > this.int('group.max.session.timeout.ms')) {
      throw new ConfigError(`group.min.session.timeout.ms: ${this.int('group.min.session.timeout.ms')} is above group.max.session.timeout.ms (${this.int('group.max.session.timeout.ms')})`);
    }
    parseCleanupPolicy(this.values.get('log.cleanup.policy') as string[], 'log.cleanup.policy');
    if (this.int('queued.max.request.bytes') === 0) {
      throw new ConfigError('queued.max.request.bytes: 0 would hold no request; use a positive number of bytes, or -1 for unlimited');
    }
  }

  int(key: string): number {
    return this.typed(key, 'number') as number;
  }

  string(key: string): string | null {
    return this.typed(key, 'string') as string | null;
  }

  boolean(key: string): boolean {
    return this.typed(key, 'boolean') as boolean;
  }

  get nodeId(): number {
    return this.int('node.id');
  }

  logDir(): string {
    const dirs = this.string('log.dirs') ?? this.string('log.dir') ?? './data';
    const list = dirs.split(',').map((dir) => dir.trim()).filter((dir) => dir !== '');
    if (list.length !== 1) throw new ConfigError(`log.dirs: exactly one directory is supported, got '${dirs}'`);
    return list[0]!;
  }

  /** Which roles this process runs (`process.roles`). */
  roles(): { broker: boolean; controller: boolean } {
    const roles = this.values.get('process.roles') as string[];
    return { broker: roles.includes('broker'), controller: roles.includes('controller') };
  }

  /**
   * `controller.quorum.voters` as id → "host:port", in the order written. Not set, a controller is
   * a quorum of its own (a file written for a single Kafka broker starts a single-node cluster).
   */
  quorumVoters(): Map<number, string> {
    const voters = this.string('controller.quorum.voters');
    if (voters !== null) return parseQuorumVoters(voters, 'controller.quorum.voters');
    const own = this.ownVoterAddress();
    if (own === undefined) {
      throw new ConfigError('controller.quorum.voters: a node without the controller role must be given the quorum to join, as id@host:port of each controller');
    }
    return new Map([[this.nodeId, own]]);
  }

  /** host:port at which this node's controller is reached from this host (a wildcard bind means loopback). */
  private ownVoterAddress(): string | undefined {
    if (!this.roles().controller) return undefined;
    const listener = this.advertisedListener('CONTROLLER')!;
    const host = listener.host === '0.0.0.0' ? '127.0.0.1' : listener.host === '[::]' ? '[::1]' : listener.host;
    return `${host}:${listener.port}`;
  }

  /** The metadata (Raft) log directory: metadata.log.dir, or __cluster_metadata under the log directory. */
  metadataLogDir(): string {
    return this.string('metadata.log.dir') ?? join(this.logDir(), '__cluster_metadata');
  }

  /** The listeners this node serves, in Runnel's names (a GRPC listener derived from the Kafka one when not given). */
  listeners(): Listener[] {
    return this.served.listeners.map(plainListener);
  }

  advertisedListeners(): Listener[] {
    return this.served.advertised.map(plainListener);
  }

  listener(name: ListenerName): Listener | undefined {
    const found = this.served.listeners.find((listener) => listener.name === name);
    return found === undefined ? undefined : plainListener(found);
  }

  /**
   * The address other nodes and clients are given for listener `name`: its advertised.listeners
   * entry, or, when that key leaves it out, the listener itself (so advertising one listener does
   * not mean restating them all).
   */
  advertisedListener(name: ListenerName): Listener | undefined {
    const found = this.served.advertised.find((listener) => listener.name === name);
    return found === undefined ? this.listener(name) : plainListener(found);
  }

  /** controller.listener.names, upper-cased as Kafka normalises listener names. */
  private controllerListenerNames(): string[] {
    return (this.values.get('controller.listener.names') as string[]).map((name) => name.toUpperCase());
  }

  /**
   * Reads listeners and advertised.listeners in Runnel's names or Kafka's. A broker given only a
   * Kafka listener (a server.properties written for Kafka) serves gRPC on its port + 100, and
   * advertises that port at the host its Kafka listener advertises.
   */
  private serveListeners(broker: boolean): { listeners: ServedListener[]; advertised: ServedListener[] } {
    const naming: ListenerNaming = {
      protocols: parseProtocolMap(this.string('listener.security.protocol.map') ?? '', 'listener.security.protocol.map'),
      controllerNames: this.controllerListenerNames(),
    };
    const listeners = servedListeners(this.string('listeners') ?? '', naming, 'listeners');
    const advertisedText = this.string('advertised.listeners');
    const advertised = advertisedText === null ? [] : servedListeners(advertisedText, naming, 'advertised.listeners');
    const kafka = listeners.find((listener) => listener.name === 'PLAINTEXT');
    if (!broker || kafka === undefined || listeners.some((listener) => listener.name === 'GRPC')) return { listeners, advertised };
    const grpc = derivedGrpcListener(kafka, 'listeners');
    const advertisedKafka = advertised.find((listener) => listener.name === 'PLAINTEXT');
    const advertisedGrpc = advertisedKafka === undefined ? [] : [{ ...grpc, host: advertisedKafka.host }];
    return { listeners: [...listeners, grpc], advertised: [...advertised, ...advertisedGrpc] };
  }

  /**
   * Kafka's listener keys that Runnel reads but does not act on still have to make sense: the
   * inter-broker listener must be one of this broker's, and the legacy port/host.name keys may be
   * ignored only where Kafka ignored them too (listeners set) or where they say what Runnel does.
   */
  private validateKafkaListenerKeys(broker: boolean): void {
    const ignored = new Map(this.ignoredKafka.map((setting) => [setting.key, setting.value]));
    const interBroker = ignored.get('inter.broker.listener.name');
    if (broker && interBroker !== undefined) {
      const written = parseListenerEntries(this.string('listeners') ?? '', 'listeners').map((entry) => entry.name);
      if (!written.includes(interBroker.toUpperCase())) {
        throw new ConfigError(`inter.broker.listener.name: '${interBroker}' is not one of the listeners (${written.join(', ')})`);
      }
    }
    const listenersSet = this.sources.get('listeners') !== DEFAULT_SOURCE;
    const advertisedSet = listenersSet || this.string('advertised.listeners') !== null;
    const legacy: Array<[string, boolean, string]> = [
      ['port', listenersSet || ignored.get('port') === '9092', 'listeners=PLAINTEXT://<host.name>:<port>'],
      ['host.name', listenersSet || ignored.get('host.name') === '', 'listeners=PLAINTEXT://<host.name>:<port>'],
      ['advertised.host.name', advertisedSet, 'advertised.listeners=PLAINTEXT://<advertised.host.name>:<advertised.port>'],
      ['advertised.port', advertisedSet, 'advertised.listeners=PLAINTEXT://<advertised.host.name>:<advertised.port>'],
    ];
    for (const [key, ignorable, instead] of legacy) {
      if (ignored.has(key) && !ignorable) {
        throw new ConfigError(`${key}: Kafka before 3.0 listened where ${key} says when listeners is not set; Runnel reads listeners only: set ${instead}`);
      }
    }
    if (ignored.has('controller.quorum.bootstrap.servers') && this.string('controller.quorum.voters') === null) {
      throw new ConfigError('controller.quorum.bootstrap.servers: dynamic controller quorums (KIP-853) are not implemented; set controller.quorum.voters');
    }
  }

  /** listeners or advertised.listeners as served, with a note on each name read as another and on a derived GRPC listener. */
  private servedListenersSetting(key: 'listeners' | 'advertised.listeners'): { value: string; derived?: string } {
    const served = key === 'listeners' ? this.served.listeners : this.served.advertised;
    const renamed = served.filter((listener) => listener.derived !== true && listener.writtenAs !== listener.name);
    const notes = renamed.map((listener) => `${listener.writtenAs} read as ${listener.name}`);
    if (served.some((listener) => listener.derived === true)) notes.push(key === 'listeners' ? 'GRPC on the Kafka listener\'s port + 100' : 'GRPC at the Kafka listener\'s advertised host');
    const value = formatListeners(served);
    return notes.length === 0 ? { value } : { value, derived: notes.join('; ') };
  }

  /** The Kafka keys this configuration sets that Runnel ignores, with why. */
  ignoredKafkaSettings(): readonly IgnoredKafkaSetting[] {
    return this.ignoredKafka;
  }

  /**
   * The one line a node logs at startup about the Kafka keys it ignores: each reason once, after
   * the keys it covers; null when there are none.
   */
  ignoredKafkaKeysNotice(): string | null {
    if (this.ignoredKafka.length === 0) return null;
    const byReason = new Map<string, string[]>();
    for (const setting of this.ignoredKafka) byReason.set(setting.reason, [...(byReason.get(setting.reason) ?? []), setting.key]);
    const groups = [...byReason].map(([reason, keys]) => `${keys.join(', ')} (${reason})`);
    const count = this.ignoredKafka.length === 1 ? '1 Kafka setting that has' : `${this.ignoredKafka.length} Kafka settings that have`;
    return `ignoring ${count} no effect in Runnel: ${groups.join('; ')}`;
  }

  /** The line a broker logs when it serves gRPC on a listener derived from its Kafka listener; null otherwise. */
  derivedListenersNotice(): string | null {
    const grpc = this.served.listeners.find((listener) => listener.derived === true);
    if (grpc === undefined) return null;
    return `listeners has no GRPC listener: serving gRPC (the runnel CLI, the TypeScript client, followers' fetches) on ${grpc.host}:${grpc.port}, the Kafka listener's port + 100`;
  }

  /**
   * Every Runnel key with its effective value as text and where it came from: listeners as served
   * (Runnel's names, any derived GRPC listener) and controller.quorum.voters as the node takes it.
   */
  effectiveSettings(): Array<{ key: string; value: string | null; source: ConfigSource; derived?: string }> {
    return [...this.values].map(([key, value]) => {
      const source = this.sources.get(key)!;
      if ((key === 'listeners' || key === 'advertised.listeners') && value !== null) return { key, source, ...this.servedListenersSetting(key) };
      if (key === 'controller.quorum.voters' && value === null) {
        return { key, value: [...this.quorumVoters()].map(([id, address]) => `${id}@${address}`).join(','), source, derived: 'this node alone' };
      }
      return { key, value: value === null ? null : formatConfigValue(value), source };
    });
  }

  /** The broker-wide log settings; a topic's overrides are applied by `withTopicOverrides`. */
  logSettings(): LogSettings {
    const retentionMs =
      this.values.get('log.retention.ms') ??
      (this.values.get('log.retention.minutes') !== null ? (this.int('log.retention.minutes') === -1 ? -1 : this.int('log.retention.minutes') * 60_000) : null) ??
      (this.int('log.retention.hours') === -1 ? -1 : this.int('log.retention.hours') * HOUR_MS);
    return {
      segmentBytes: this.int('log.segment.bytes'),
      segmentMs: (this.values.get('log.roll.ms') as number | null) ?? this.int('log.roll.hours') * HOUR_MS,
      retentionMs: retentionMs as number,
      retentionBytes: this.int('log.retention.bytes'),
      flushMessages: this.int('log.flush.interval.messages'),
      flushMs: this.values.get('log.flush.interval.ms') as number | null,
      indexIntervalBytes: this.int('log.index.interval.bytes'),
      maxMessageBytes: this.int('message.max.bytes'),
      minInsyncReplicas: this.int('min.insync.replicas'),
      fileDeleteDelayMs: this.int('log.segment.delete.delay.ms'),
      cleanupPolicy: parseCleanupPolicy(this.values.get('log.cleanup.policy') as string[], 'log.cleanup.policy'),
      deleteRetentionMs: this.int('log.cleaner.delete.retention.ms'),
      minCleanableDirtyRatio: this.values.get('log.cleaner.min.cleanable.ratio') as number,
      minCompactionLagMs: this.int('log.cleaner.min.compaction.lag.ms'),
    };
  }

  /** Every key with its effective value, as server.properties lines (for `runnel cluster up` and logs). */
  toProperties(): string {
    const lines: string[] = [];
    for (const [key, value] of this.values) {
      if (value === null) continue;
      lines.push(`${key}=${formatConfigValue(value)}`);
    }
    return lines.join('\n') + '\n';
  }

  /**
   * Every key as Kafka's DescribeConfigs shows a broker's: its value as text (null: not set), and
   * whether it is the default (a value equal to the default counts as one).
   */
  describe(): ConfigDescription[] {
    return [...this.values].map(([key, value]) => {
      const spec = BROKER_CONFIG.keys[key]!;
      return { name: key, value: value === null ? null : formatConfigValue(value), isDefault: sameValue(value, spec.default), type: spec.type, doc: spec.doc };
    });
  }

  /**
   * What a topic without an override of `topicKey` (a TOPIC_CONFIG key) runs with: the broker key
   * it falls back to (Kafka's synonym) and its effective value, derived as the log does (so
   * retention.ms from log.retention.hours when only that is set).
   */
  topicDefault(topicKey: string): { brokerKey: string; value: string | null; isDefault: boolean } {
    const fallback = TOPIC_CONFIG_FALLBACKS[topicKey];
    if (fallback === undefined) throw new Error(`BrokerConfig: '${topicKey}' is not a topic config`);
    const value = fallback.value(this.logSettings(), this);
    const isDefault = fallback.sources.every((key) => sameValue(this.values.get(key) ?? null, BROKER_CONFIG.keys[key]!.default));
    return { brokerKey: fallback.sources[0]!, value: value === null ? null : formatConfigValue(value), isDefault };
  }

  private typed(key: string, kind: 'number' | 'string' | 'boolean'): ConfigValue {
    if (!this.values.has(key)) throw new Error(`BrokerConfig: no such key '${key}'`);
    const value = this.values.get(key)!;
    if (value !== null && typeof value !== kind) throw new Error(`BrokerConfig: '${key}' is not a ${kind}`);
    return value;
  }
}

/** One key as DescribeConfigs shows it. */
export interface ConfigDescription {
  readonly name: string;
  readonly value: string | null;
  readonly isDefault: boolean;
  readonly type: ConfigKey['type'];
  readonly doc: string;
}

/**
 * For each topic config, the broker keys it falls back to (the first is Kafka's synonym; the
 * others feed it, as log.retention.hours feeds log.retention.ms) and how its value is derived.
 */
const TOPIC_CONFIG_FALLBACKS: Readonly<Record<string, { sources: readonly string[]; value: (settings: LogSettings, config: BrokerConfig) => ConfigValue }>> = {
  'retention.ms': { sources: ['log.retention.ms', 'log.retention.minutes', 'log.retention.hours'], value: (settings) => settings.retentionMs },
  'retention.bytes': { sources: ['log.retention.bytes'], value: (settings) => settings.retentionBytes },
  'segment.bytes': { sources: ['log.segment.bytes'], value: (settings) => settings.segmentBytes },
  'segment.ms': { sources: ['log.roll.ms', 'log.roll.hours'], value: (settings) => settings.segmentMs },
  'flush.messages': { sources: ['log.flush.interval.messages'], value: (settings) => settings.flushMessages },
  'flush.ms': { sources: ['log.flush.interval.ms'], value: (settings) => settings.flushMs },
  'index.interval.bytes': { sources: ['log.index.interval.bytes'], value: (settings) => settings.indexIntervalBytes },
  'max.message.bytes': { sources: ['message.max.bytes'], value: (settings) => settings.maxMessageBytes },
  'min.insync.replicas': { sources: ['min.insync.replicas'], value: (settings) => settings.minInsyncReplicas },
  'cleanup.policy': { sources: ['log.cleanup.policy'], value: (settings) => [settings.cleanupPolicy.compact ? 'compact' : '', settings.cleanupPolicy.delete ? 'delete' : ''].filter((policy) => policy !== '') },
  'delete.retention.ms': { sources: ['log.cleaner.delete.retention.ms'], value: (settings) => settings.deleteRetentionMs },
  'min.cleanable.dirty.ratio': { sources: ['log.cleaner.min.cleanable.ratio'], value: (settings) => settings.minCleanableDirtyRatio },
  'min.compaction.lag.ms': { sources: ['log.cleaner.min.compaction.lag.ms'], value: (settings) => settings.minCompactionLagMs },
  'unclean.leader.election.enable': { sources: ['unclean.leader.election.enable'], value: (_settings, config) => config.boolean('unclean.leader.election.enable') },
  'file.delete.delay.ms': { sources: ['log.segment.delete.delay.ms'], value: (settings) => settings.fileDeleteDelayMs },
};

function plainListener(listener: Listener): Listener {
  return { name: listener.name, host: listener.host, port: listener.port };
}

function formatConfigValue(value: Exclude<ConfigValue, null>): string {
  return Array.isArray(value) ? value.join(',') : String(value);
}

function sameValue(a: ConfigValue, b: ConfigValue): boolean {
  return Array.isArray(a) && Array.isArray(b) ? a.join(',') === b.join(',') : a === b;
}

/** Validates topic overrides (`{ "retention.ms": "1000" }`) and returns them parsed. */
export function parseTopicConfigs(configs: Readonly<Record<string, string>>): Map<string, ConfigValue> {
  const parsed = new Map<string, ConfigValue>();
  for (const [key, raw] of Object.entries(configs)) parsed.set(key, TOPIC_CONFIG.parseValue(key, raw, 'topic config'));
  if (parsed.has('cleanup.policy')) parseCleanupPolicy(parsed.get('cleanup.policy') as string[], 'topic config: cleanup.policy');
  return parsed;
}

export function withTopicOverrides(defaults: LogSettings, configs: Readonly<Record<string, string>>): LogSettings {
  const parsed = parseTopicConfigs(configs);
  const pick = (key: string, fallback: number): number => (parsed.get(key) as number | undefined) ?? fallback;
  return {
    segmentBytes: pick('segment.bytes', defaults.segmentBytes),
    segmentMs: pick('segment.ms', defaults.segmentMs),
    retentionMs: pick('retention.ms', defaults.retentionMs),
    retentionBytes: pick('retention.bytes', defaults.retentionBytes),
    flushMessages: pick('flush.messages', defaults.flushMessages),
    flushMs: parsed.has('flush.ms') ? (parsed.get('flush.ms') as number) : defaults.flushMs,
    indexIntervalBytes: pick('index.interval.bytes', defaults.indexIntervalBytes),
    maxMessageBytes: pick('max.message.bytes', defaults.maxMessageBytes),
    minInsyncReplicas: pick('min.insync.replicas', defaults.minInsyncReplicas),
    fileDeleteDelayMs: pick('file.delete.delay.ms', defaults.fileDeleteDelayMs),
    cleanupPolicy: parsed.has('cleanup.policy') ? parseCleanupPolicy(parsed.get('cleanup.policy') as string[], 'cleanup.policy') : { ...defaults.cleanupPolicy },
    deleteRetentionMs: pick('delete.retention.ms', defaults.deleteRetentionMs),
    minCleanableDirtyRatio: pick('min.cleanable.dirty.ratio', defaults.minCleanableDirtyRatio),
    minCompactionLagMs: pick('min.compaction.lag.ms', defaults.minCompactionLagMs),
  };
}

/** Parses Kafka's `id@host:port,id@host:port` voter list into id → "host:port", in the order written. */
export function parseQuorumVoters(text: string, key: string): Map<number, string> {
  const voters = new Map<number, string>();
  const entries = text.split(',').map((part) => part.trim()).filter((part) => part !== '');
  if (entries.length === 0) throw new ConfigError(`${key}: at least one voter is required, as id@host:port`);
  for (const entry of entries) {
    const match = /^(\d+)@(\[[^\]]+\]|[^:@\s\[\]]+):(\d+)$/.exec(entry);
    if (match === null) throw new ConfigError(`${key}: cannot parse '${entry}': expected id@host:port`);
    const [, id, host, port] = match as unknown as [string, string, string, string];
    const idNumber = Number(id);
    if (!Number.isSafeInteger(idNumber) || idNumber > 2 ** 31 - 1) throw new ConfigError(`${key}: voter id ${id} in '${entry}' is out of range`);
    const portNumber = Number(port);
    if (portNumber < 1 || portNumber > 65535) throw new ConfigError(`${key}: port ${port} in '${entry}' is out of range (1..65535)`);
    if (voters.has(idNumber)) throw new ConfigError(`${key}: voter id ${idNumber} is given twice`);
    voters.set(idNumber, `${host}:${portNumber}`);
  }
  return voters;
}

/** host:port as grpc-js dials it (an IPv6 host in brackets). */
export function brokerAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
