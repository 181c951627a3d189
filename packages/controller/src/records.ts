// Metadata records: the entries of the controller's Raft log. Applying them in order yields the
// MetadataImage (image.ts). The encoding is versioned JSON in UTF-8: `{"v":1,"type":...,...}` with
// the fields of each type in a fixed order, so equal records encode to equal bytes. Decoding
// validates every field and throws a MetadataRecordError that names the offending field.

export const METADATA_RECORD_VERSION = 1;

/** Upper bounds that decoding enforces (a limit on everything that arrives from outside). */
export const RECORD_LIMITS = {
  encodedBytesMax: 1024 * 1024,
  replicasMax: 1024,
  listenersMax: 64,
  stringLengthMax: 4096,
  topicNameLengthMax: 249,
} as const;

export interface Listener {
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

/** A broker (re)registers. The broker starts fenced; its epoch is the offset of this record. */
export interface RegisterBrokerRecord {
  readonly type: 'RegisterBroker';
  readonly brokerId: number;
  readonly incarnationId: string;
  readonly listeners: readonly Listener[];
  readonly rack: string | null;
}

export interface FenceBrokerRecord {
  readonly type: 'FenceBroker';
  readonly brokerId: number;
  readonly brokerEpoch: number;
}

export interface UnfenceBrokerRecord {
  readonly type: 'UnfenceBroker';
  readonly brokerId: number;
  readonly brokerEpoch: number;
}

export interface TopicRecord {
  readonly type: 'Topic';
  readonly name: string;
  readonly topicId: string;
}

/** A new partition (at creation). `leader` is -1 when the partition has no leader. */
export interface PartitionRecord {
  readonly type: 'Partition';
  readonly topicId: string;
  readonly partition: number;
  /** replicas[0] is the preferred leader. */
  readonly replicas: readonly number[];
  readonly isr: readonly number[];
  /** NO_LEADER (-1) when the partition is offline. */
  readonly leader: number;
  readonly leaderEpoch: number;
  readonly partitionEpoch: number;
  /**
   * While the partition moves (KIP-455): replicas being added (target − original) and removed
   * (original − target); `replicas` is then the target followed by the removed ones. Absent (never
   * an empty array) when the partition is not moving. Snapshots carry them.
   */
  readonly addingReplicas?: readonly number[];
  readonly removingReplicas?: readonly number[];
}

/**
 * The full new leader and ISR state of an existing partition, with its new epochs: the partition
 * epoch is the previous one plus one; the leader epoch is bumped when the leader changes.
 * `replicas` is present only when the replica set changes (reassignment).
 */
export interface PartitionChangeRecord {
  readonly type: 'PartitionChange';
  readonly topicId: string;
  readonly partition: number;
  readonly leader: number;
  readonly isr: readonly number[];
  readonly leaderEpoch: number;
  readonly partitionEpoch: number;
  readonly replicas?: readonly number[];
  readonly addingReplicas?: readonly number[];
  readonly removingReplicas?: readonly number[];
}

export interface RemoveTopicRecord {
  readonly type: 'RemoveTopic';
  readonly topicId: string;
}

/**
 * Broker `brokerId`, at registration `brokerEpoch`, cannot serve its replica of the partition (its
 * log failed, or it could not take the role the metadata gave it): KIP-858's offline log directory,
 * per replica. While recorded, the replica may not lead or join the ISR; a new registration of the
 * broker (a restart retries the log) or the topic's removal clears it. Written after the
 * PartitionChange that moves leadership and the ISR off the replica.
 */
export interface ReplicaOfflineRecord {
  readonly type: 'ReplicaOffline';
  readonly brokerId: number;
  readonly brokerEpoch: number;
  readonly topicId: string;
  readonly partition: number;
}

/**
 * The state of a broker's log directory: `online`; `full`, its free space under
 * log.dir.min.free.bytes (it clears when space is freed); `offline`, a write to it failed (until
 * the broker restarts, as Kafka's offline log directory).
 */
export type LogDirState = 'online' | 'full' | 'offline';

export const LOG_DIR_STATES: readonly LogDirState[] = ['online', 'full', 'offline'];

/**
 * Broker `brokerId`, at registration `brokerEpoch`, reported a new state of its log directory.
 * While it is not `online`, no new replica is placed on the broker; a new registration starts `online`.
 */
export interface BrokerLogDirRecord {
  readonly type: 'BrokerLogDir';
  readonly brokerId: number;
  readonly brokerEpoch: number;
  readonly state: LogDirState;
}

/**
 * Broker `brokerId` is decommissioned (`decommissioned: true`: it gets no new replicas, and the
 * controller moves every replica off it) or recommissioned (`false`). A property of the broker id,
 * not of one registration: it survives the broker's restarts (Redpanda's decommission).
 */
export interface BrokerDecommissionRecord {
  readonly type: 'BrokerDecommission';
  readonly brokerId: number;
  readonly decommissioned: boolean;
}

export type ConfigResourceType = 'topic' | 'broker' | 'cluster';

/** Sets (value a string) or deletes (value null) one config key of a resource. */
export interface ConfigRecord {
  readonly type: 'Config';
  readonly resourceType: ConfigResourceType;
  /** The topic name, the broker id as a string, or '' for the cluster. */
  readonly resourceName: string;
  readonly name: string;
  readonly value: string | null;
}

export type MetadataRecord =
  | RegisterBrokerRecord
  | FenceBrokerRecord
  | UnfenceBrokerRecord
  | TopicRecord
  | PartitionRecord
  | PartitionChangeRecord
  | RemoveTopicRecord
  | ConfigRecord
  | ReplicaOfflineRecord
  | BrokerLogDirRecord
  | BrokerDecommissionRecord;

export type MetadataRecordType = MetadataRecord['type'];

export const METADATA_RECORD_TYPES: readonly MetadataRecordType[] = [
  'RegisterBroker',
  'FenceBroker',
  'UnfenceBroker',
  'Topic',
  'Partition',
  'PartitionChange',
  'RemoveTopic',
  'Config',
  'ReplicaOffline',
  'BrokerLogDir',
  'BrokerDecommission',
];

export class MetadataRecordError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MetadataRecordError';
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** Encodes a record (validated first: a record that could not be decoded is never written). */
export function encodeRecord(record: MetadataRecord): Uint8Array {
  const canonical = validateRecord(record as unknown as Record<string, unknown>, 'encodeRecord');
  const bytes = encoder.encode(JSON.stringify({ v: METADATA_RECORD_VERSION, ...canonical }));
  if (bytes.length > RECORD_LIMITS.encodedBytesMax) {
    throw new MetadataRecordError(`encodeRecord: ${record.type} record is ${bytes.length} bytes, over ${RECORD_LIMITS.encodedBytesMax}`);
  }
  return bytes;
}

export function decodeRecord(bytes: Uint8Array): MetadataRecord {
  if (bytes.length > RECORD_LIMITS.encodedBytesMax) {
    throw new MetadataRecordError(`decodeRecord: ${bytes.length} bytes, over ${RECORD_LIMITS.encodedBytesMax}`);
  }
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    throw new MetadataRecordError('decodeRecord: not valid UTF-8');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new MetadataRecordError('decodeRecord: not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new MetadataRecordError('decodeRecord: not a JSON object');
  }
  const { v, ...fields } = parsed as Record<string, unknown>;
  if (v !== METADATA_RECORD_VERSION) {
    throw new MetadataRecordError(`decodeRecord: unsupported record version ${JSON.stringify(v)} (this build reads version ${METADATA_RECORD_VERSION})`);
  }
  return validateRecord(fields, 'decodeRecord');
}

// Field readers. Each returns the typed value or throws naming the record type and the field.
class FieldReader {
  constructor(
    private readonly fields: Record<string, unknown>,
    private readonly where: string,
  ) {}

  fail(field: string, expected: string): never {
    throw new MetadataRecordError(`${this.where}: field '${field}' must be ${expected}, got ${describe(this.fields[field])}`);
  }

  int(field: string, min: number, max = 2 ** 31 - 1): number {
    const value = this.fields[field];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
      this.fail(field, `an integer in [${min}, ${max}]`);
    }
    return value;
  }

  string(field: string, minLength = 0, maxLength: number = RECORD_LIMITS.stringLengthMax): string {
    const value = this.fields[field];
    if (typeof value !== 'string' || value.length < minLength || value.length > maxLength) {
      this.fail(field, `a string of length ${minLength}..${maxLength}`);
    }
    return value;
  }

  nullableString(field: string): string | null {
    if (this.fields[field] === null) return null;
    return this.string(field);
  }

  brokerIds(field: string, minLength: number): number[] {
    const value = this.fields[field];
    if (!Array.isArray(value) || value.length < minLength || value.length > RECORD_LIMITS.replicasMax) {
      this.fail(field, `an array of ${minLength}..${RECORD_LIMITS.replicasMax} broker ids`);
    }
    for (const id of value) {
      if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0 || id > 2 ** 31 - 1) {
        this.fail(field, 'an array of broker ids (integers >= 0)');
      }
    }
    if (new Set(value).size !== value.length) this.fail(field, 'an array of distinct broker ids');
    return [...(value as number[])];
  }

  has(field: string): boolean {
    return Object.prototype.hasOwnProperty.call(this.fields, field) && this.fields[field] !== undefined;
  }

  onlyFields(allowed: readonly string[]): void {
    for (const key of Object.keys(this.fields)) {
      if (this.fields[key] !== undefined && !allowed.includes(key)) {
        throw new MetadataRecordError(`${this.where}: unknown field '${key}'`);
      }
    }
  }
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text === undefined ? typeof value : text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** Validates a record and returns a canonical copy (fields in a fixed order). */
function validateRecord(fields: Record<string, unknown>, context: string): MetadataRecord {
  const type = fields['type'];
  if (typeof type !== 'string' || !(METADATA_RECORD_TYPES as readonly string[]).includes(type)) {
    throw new MetadataRecordError(`${context}: unknown record type ${describe(type)}`);
  }
  const read = new FieldReader(fields, `${context} ${type}`);
  const brokerIdMax = 2 ** 31 - 1;
  switch (type as MetadataRecordType) {
    case 'RegisterBroker': {
      read.onlyFields(['type', 'brokerId', 'incarnationId', 'listeners', 'rack']);
      const listeners = fields['listeners'];
      if (!Array.isArray(listeners) || listeners.length > RECORD_LIMITS.listenersMax) {
        throw new MetadataRecordError(`${context} RegisterBroker: field 'listeners' must be an array of at most ${RECORD_LIMITS.listenersMax} listeners`);
      }
      return {
        type: 'RegisterBroker',
        brokerId: read.int('brokerId', 0, brokerIdMax),
        incarnationId: read.string('incarnationId', 1, 256),
        listeners: listeners.map((listener, index) => readListener(listener, `${context} RegisterBroker listeners[${index}]`)),
        rack: read.nullableString('rack'),
      };
    }
    case 'FenceBroker':
    case 'UnfenceBroker': {
      read.onlyFields(['type', 'brokerId', 'brokerEpoch']);
      return {
        type: type as 'FenceBroker' | 'UnfenceBroker',
        brokerId: read.int('brokerId', 0, brokerIdMax),
        brokerEpoch: read.int('brokerEpoch', 0, Number.MAX_SAFE_INTEGER),
      };
    }
    case 'Topic': {
      read.onlyFields(['type', 'name', 'topicId']);
      return { type: 'Topic', name: read.string('name', 1, RECORD_LIMITS.topicNameLengthMax), topicId: read.string('topicId', 1, 64) };
    }
    case 'Partition': {
      read.onlyFields(['type', 'topicId', 'partition', 'replicas', 'isr', 'leader', 'leaderEpoch', 'partitionEpoch', 'addingReplicas', 'removingReplicas']);
      const record: PartitionRecord = {
        type: 'Partition',
        topicId: read.string('topicId', 1, 64),
        partition: read.int('partition', 0),
        replicas: read.brokerIds('replicas', 1),
        isr: read.brokerIds('isr', 1),
        leader: read.int('leader', -1),
        leaderEpoch: read.int('leaderEpoch', 0),
        partitionEpoch: read.int('partitionEpoch', 0),
      };
      return { ...record, ...readMovingReplicas(read) };
    }
    case 'PartitionChange': {
      read.onlyFields(['type', 'topicId', 'partition', 'leader', 'isr', 'leaderEpoch', 'partitionEpoch', 'replicas', 'addingReplicas', 'removingReplicas']);
      const record = {
        type: 'PartitionChange' as const,
        topicId: read.string('topicId', 1, 64),
        partition: read.int('partition', 0),
        leader: read.int('leader', -1),
        isr: read.brokerIds('isr', 1),
        leaderEpoch: read.int('leaderEpoch', 0),
        partitionEpoch: read.int('partitionEpoch', 0),
      };
      if (!read.has('replicas')) {
        if (read.has('addingReplicas') || read.has('removingReplicas')) {
          throw new MetadataRecordError(`${context} PartitionChange: 'addingReplicas' and 'removingReplicas' come only with 'replicas'`);
        }
        return record;
      }
      return { ...record, replicas: read.brokerIds('replicas', 1), ...readMovingReplicas(read) };
    }
    case 'RemoveTopic': {
      read.onlyFields(['type', 'topicId']);
      return { type: 'RemoveTopic', topicId: read.string('topicId', 1, 64) };
    }
    case 'ReplicaOffline': {
      read.onlyFields(['type', 'brokerId', 'brokerEpoch', 'topicId', 'partition']);
      return {
        type: 'ReplicaOffline',
        brokerId: read.int('brokerId', 0, brokerIdMax),
        brokerEpoch: read.int('brokerEpoch', 0, Number.MAX_SAFE_INTEGER),
        topicId: read.string('topicId', 1, 64),
        partition: read.int('partition', 0),
      };
    }
    case 'BrokerLogDir': {
      read.onlyFields(['type', 'brokerId', 'brokerEpoch', 'state']);
      const state = fields['state'];
      if (!LOG_DIR_STATES.includes(state as LogDirState)) {
        throw new MetadataRecordError(`${context} BrokerLogDir: field 'state' must be one of ${LOG_DIR_STATES.join(', ')}, got ${describe(state)}`);
      }
      return {
        type: 'BrokerLogDir',
        brokerId: read.int('brokerId', 0, brokerIdMax),
        brokerEpoch: read.int('brokerEpoch', 0, Number.MAX_SAFE_INTEGER),
        state: state as LogDirState,
      };
    }
    case 'BrokerDecommission': {
      read.onlyFields(['type', 'brokerId', 'decommissioned']);
      const decommissioned = fields['decommissioned'];
      if (typeof decommissioned !== 'boolean') read.fail('decommissioned', 'true or false');
      return { type: 'BrokerDecommission', brokerId: read.int('brokerId', 0, brokerIdMax), decommissioned: decommissioned as boolean };
    }
    case 'Config': {
      read.onlyFields(['type', 'resourceType', 'resourceName', 'name', 'value']);
      const resourceType = fields['resourceType'];
      if (resourceType !== 'topic' && resourceType !== 'broker' && resourceType !== 'cluster') {
        throw new MetadataRecordError(`${context} Config: field 'resourceType' must be 'topic', 'broker' or 'cluster', got ${describe(resourceType)}`);
      }
      return {
        type: 'Config',
        resourceType,
        resourceName: read.string('resourceName', 0, RECORD_LIMITS.topicNameLengthMax),
        name: read.string('name', 1, 256),
        value: read.nullableString('value'),
      };
    }
  }
}

/**
 * The optional adding/removing sets of a Partition or PartitionChange record: absent or non-empty
 * (so one state has one encoding), each a subset of `replicas`, disjoint.
 */
function readMovingReplicas(read: FieldReader): { addingReplicas?: number[]; removingReplicas?: number[] } {
  const replicas = read.brokerIds('replicas', 1);
  const result: { addingReplicas?: number[]; removingReplicas?: number[] } = {};
  for (const field of ['addingReplicas', 'removingReplicas'] as const) {
    if (!read.has(field)) continue;
    const ids = read.brokerIds(field, 1);
    if (ids.some((id) => !replicas.includes(id))) read.fail(field, `a subset of replicas [${replicas.join(',')}]`);
    result[field] = ids;
  }
  if (result.addingReplicas?.some((id) => result.removingReplicas?.includes(id))) read.fail('removingReplicas', 'disjoint from addingReplicas');
  return result;
}

function readListener(value: unknown, where: string): Listener {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new MetadataRecordError(`${where}: must be an object {name, host, port}`);
  }
  const read = new FieldReader(value as Record<string, unknown>, where);
  read.onlyFields(['name', 'host', 'port']);
  return { name: read.string('name', 1, 256), host: read.string('host', 1, 1024), port: read.int('port', 0, 65535) };
}
