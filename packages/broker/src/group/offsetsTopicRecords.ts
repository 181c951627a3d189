// The records of the internal topic __consumer_offsets, in Kafka's own layout (its
// OffsetCommitKey/Value and GroupMetadataKey/Value message schemas, non-flexible versions), so
// that Kafka's tools can read the topic and a group's state means the same on every broker. Keys
// start with an int16 naming the record type (0 or 1: an offset commit, 2: group metadata); values
// start with an int16 schema version. A record with a null value (a tombstone) deletes its key:
// the topic is compacted, so only the latest record per key stays.
//
// The primitives are Kafka's non-flexible ones (@runnel/common's KafkaWriter / KafkaReader).
import { KafkaReader, KafkaWriter } from '@runnel/common';

export const OFFSET_COMMIT_KEY_VERSION = 1;
export const GROUP_METADATA_KEY_VERSION = 2;
/** OffsetCommitValue v3: offset, leader epoch, metadata, commit timestamp. */
export const OFFSET_COMMIT_VALUE_VERSION = 3;
/** GroupMetadataValue v3: with currentStateTimestamp and groupInstanceId. */
export const GROUP_METADATA_VALUE_VERSION = 3;

export class OffsetsRecordError extends Error {
  constructor(message: string) {
    super(`__consumer_offsets record: ${message}`);
    this.name = 'OffsetsRecordError';
  }
}

export interface OffsetCommitKey {
  readonly type: 'offset';
  readonly group: string;
  readonly topic: string;
  readonly partition: number;
}

export interface GroupMetadataKey {
  readonly type: 'group';
  readonly group: string;
}

export type OffsetsTopicKey = OffsetCommitKey | GroupMetadataKey;

export interface OffsetCommitValue {
  readonly offset: number;
  /** -1 when unknown. */
  readonly leaderEpoch: number;
  readonly metadata: string;
  readonly commitTimestamp: number;
}

export interface GroupMemberMetadata {
  readonly memberId: string;
  readonly groupInstanceId: string | null;
  readonly clientId: string;
  readonly clientHost: string;
  readonly rebalanceTimeoutMs: number;
  readonly sessionTimeoutMs: number;
  readonly subscription: Buffer;
  readonly assignment: Buffer;
}

export interface GroupMetadataValue {
  readonly protocolType: string;
  readonly generation: number;
  readonly protocol: string | null;
  readonly leader: string | null;
  /** -1 when unknown. */
  readonly currentStateTimestamp: number;
  readonly members: readonly GroupMemberMetadata[];
}

function recordReader(bytes: Buffer, what: string): KafkaReader {
  return new KafkaReader(bytes, what, (message) => new OffsetsRecordError(message));
}

export function encodeOffsetsKey(key: OffsetsTopicKey): Buffer {
  if (key.type === 'group') return new KafkaWriter().int16(GROUP_METADATA_KEY_VERSION).string(key.group).done();
  return new KafkaWriter().int16(OFFSET_COMMIT_KEY_VERSION).string(key.group).string(key.topic).int32(key.partition).done();
}

export function decodeOffsetsKey(bytes: Buffer): OffsetsTopicKey {
  const reader = recordReader(bytes, 'key');
  const version = reader.int16('key version');
  let key: OffsetsTopicKey;
  if (version === 0 || version === 1) {
    key = { type: 'offset', group: reader.string('group'), topic: reader.string('topic'), partition: reader.int32('partition') };
  } else if (version === 2) {
    key = { type: 'group', group: reader.string('group') };
  } else {
    throw new OffsetsRecordError(`unknown key version ${version}`);
  }
  reader.end();
  return key;
}

export function encodeOffsetCommitValue(value: OffsetCommitValue): Buffer {
  return new KafkaWriter().int16(OFFSET_COMMIT_VALUE_VERSION).int64(value.offset).int32(value.leaderEpoch).string(value.metadata).int64(value.commitTimestamp).done();
}

export function decodeOffsetCommitValue(bytes: Buffer): OffsetCommitValue {
  const reader = recordReader(bytes, 'offset commit value');
  const version = reader.int16('version');
  if (version < 0 || version > 3) throw new OffsetsRecordError(`unknown offset commit value version ${version}`);
  const offset = reader.int64('offset');
  const leaderEpoch = version >= 3 ? reader.int32('leaderEpoch') : -1;
  const metadata = reader.string('metadata');
  const commitTimestamp = reader.int64('commitTimestamp');
  if (version === 1) reader.int64('expireTimestamp');
  reader.end();
  return { offset, leaderEpoch, metadata, commitTimestamp };
}

export function encodeGroupMetadataValue(value: GroupMetadataValue): Buffer {
  const writer = new KafkaWriter()
    .int16(GROUP_METADATA_VALUE_VERSION)
    .string(value.protocolType)
    .int32(value.generation)
    .string(value.protocol)
    .string(value.leader)
    .int64(value.currentStateTimestamp)
    .int32(value.members.length);
  for (const member of value.members) {
    writer
      .string(member.memberId)
      .string(member.groupInstanceId)
      .string(member.clientId)
      .string(member.clientHost)
      .int32(member.rebalanceTimeoutMs)
      .int32(member.sessionTimeoutMs)
      .bytes(member.subscription)
      .bytes(member.assignment);
  }
  return writer.done();
}

export function decodeGroupMetadataValue(bytes: Buffer): GroupMetadataValue {
  const reader = recordReader(bytes, 'group metadata value');
  const version = reader.int16('version');
  if (version < 0 || version > 3) throw new OffsetsRecordError(`unknown group metadata value version ${version}`);
  const protocolType = reader.string('protocolType');
  const generation = reader.int32('generation');
  const protocol = reader.nullableString('protocol');
  const leader = reader.nullableString('leader');
  const currentStateTimestamp = version >= 2 ? reader.int64('currentStateTimestamp') : -1;
  const count = reader.count('members');
  const members: GroupMemberMetadata[] = [];
  for (let k = 0; k < count; k++) {
    const memberId = reader.string(`members[${k}].memberId`);
    const groupInstanceId = version >= 3 ? reader.nullableString(`members[${k}].groupInstanceId`) : null;
    const clientId = reader.string(`members[${k}].clientId`);
    const clientHost = reader.string(`members[${k}].clientHost`);
    const sessionTimeoutFirst = version === 0;
    const rebalanceTimeoutMs = sessionTimeoutFirst ? -1 : reader.int32(`members[${k}].rebalanceTimeout`);
    const sessionTimeoutMs = reader.int32(`members[${k}].sessionTimeout`);
    members.push({
      memberId,
      groupInstanceId,
      clientId,
      clientHost,
      rebalanceTimeoutMs: sessionTimeoutFirst ? sessionTimeoutMs : rebalanceTimeoutMs,
      sessionTimeoutMs,
      subscription: reader.bytes(`members[${k}].subscription`),
      assignment: reader.bytes(`members[${k}].assignment`),
    });
  }
  reader.end();
  return { protocolType, generation, protocol, leader, currentStateTimestamp, members };
}

/** Java's String.hashCode: over UTF-16 code units, in 32-bit two's complement. */
export function javaStringHash(value: string): number {
  let hash = 0;
  for (let k = 0; k < value.length; k++) hash = (Math.imul(hash, 31) + value.charCodeAt(k)) | 0;
  return hash;
}

/**
 * The __consumer_offsets partition that holds a group, as Kafka places it
 * (Utils.abs(groupId.hashCode) % partitions, where Utils.abs maps Integer.MIN_VALUE to 0): its
 * leader is the group's coordinator.
 */
export function offsetsPartitionFor(groupId: string, partitions: number): number {
  if (!Number.isInteger(partitions) || partitions <= 0) throw new RangeError(`offsets.topic.num.partitions must be positive, got ${partitions}`);
  const hash = javaStringHash(groupId);
  const abs = hash === -0x80000000 ? 0 : Math.abs(hash);
  return abs % partitions;
}
