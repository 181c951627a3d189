// Topic-level configs accepted by CreateTopics, validated like Kafka's LogConfig: an unknown key or
// a value out of range is INVALID_CONFIG (40) naming the key.

export const UNCLEAN_LEADER_ELECTION_ENABLE = 'unclean.leader.election.enable';

type Validator = (value: string) => string | null;

const LONG_MAX = 9223372036854775807n;
const INT_MAX = 2147483647n;

function integer(min: bigint, max: bigint): Validator {
  return (value) => {
    if (!/^-?\d+$/.test(value)) return `must be an integer, got '${value}'`;
    const parsed = BigInt(value);
    return parsed < min || parsed > max ? `must be in [${min}, ${max}], got ${value}` : null;
  };
}

function oneOf(...allowed: string[]): Validator {
  return (value) => (allowed.includes(value) ? null : `must be one of ${allowed.join(', ')}, got '${value}'`);
}

const cleanupPolicy: Validator = (value) => {
  const parts = value.split(',').map((part) => part.trim());
  if (parts.length === 0 || parts.length > 2 || new Set(parts).size !== parts.length) return `must be delete, compact or both, got '${value}'`;
  return parts.every((part) => part === 'delete' || part === 'compact') ? null : `must be delete, compact or both, got '${value}'`;
};

export const TOPIC_CONFIGS: Readonly<Record<string, Validator>> = {
  'cleanup.policy': cleanupPolicy,
  'compression.type': oneOf('uncompressed', 'zstd', 'lz4', 'snappy', 'gzip', 'producer'),
  'delete.retention.ms': integer(0n, LONG_MAX),
  'flush.messages': integer(1n, LONG_MAX),
  'flush.ms': integer(0n, LONG_MAX),
  'max.message.bytes': integer(0n, INT_MAX),
  'message.timestamp.type': oneOf('CreateTime', 'LogAppendTime'),
  'min.cleanable.dirty.ratio': (value) => {
    const parsed = Number(value);
    return value.trim() !== '' && Number.isFinite(parsed) && parsed >= 0 && parsed <= 1 ? null : `must be a number in [0, 1], got '${value}'`;
  },
  'min.insync.replicas': integer(1n, INT_MAX),
  'retention.bytes': integer(-1n, LONG_MAX),
  'retention.ms': integer(-1n, LONG_MAX),
  'segment.bytes': integer(14n, INT_MAX),
  'segment.ms': integer(1n, LONG_MAX),
  [UNCLEAN_LEADER_ELECTION_ENABLE]: oneOf('true', 'false'),
};

/** null when every key is known and every value valid; otherwise the first problem found. */
export function validateTopicConfigs(configs: Readonly<Record<string, string>>): string | null {
  for (const key of Object.keys(configs).sort()) {
    const validator = TOPIC_CONFIGS[key];
    if (validator === undefined) return `unknown topic config '${key}'`;
    const value = configs[key];
    if (typeof value !== 'string') return `topic config '${key}' must be a string`;
    const problem = validator(value);
    if (problem !== null) return `topic config '${key}' ${problem}`;
  }
  return null;
}

/** Kafka's legal topic names: 1..249 of [a-zA-Z0-9._-], not '.' or '..'. null when valid. */
export function validateTopicName(name: string): string | null {
  if (name.length === 0) return 'topic name is empty';
  if (name === '.' || name === '..') return `topic name cannot be '${name}'`;
  if (name.length > 249) return `topic name is ${name.length} characters, over the limit of 249`;
  if (!/^[a-zA-Z0-9._-]+$/.test(name)) return `topic name '${name}' contains characters other than ASCII alphanumerics, '.', '_' and '-'`;
  return null;
}

/** Names that differ only by '.' versus '_' collide in metric names; Kafka rejects the second. */
export function collisionKey(name: string): string {
  return name.replaceAll('.', '_');
}
