// The records of the internal topic __consumer_offsets, in Kafka's own layout (its
// OffsetCommitKey/Value and GroupMetadataKey/Value message schemas, non-flexible versions), so
// that Kafka's tools can read the topic and a group's state means the same on every broker. Keys
// start with an int16 naming the record type (0 or 1: an offset commit, 2: group metadata); values
// start with an int16 schema version. A record with a null value (a tombstone) deletes its key:
// the topic is compacted, so only the latest record per key stays.
//
// Strings are an int16 length and UTF-8 (a nullable string's null is length -1), bytes an int32
// length, arrays an int32 count.

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

class Writer {
  private readonly chunks: Buffer[] = [];

  int16(value: number): this {
    const buffer = Buffer.alloc(2);
    buffer.writeInt16BE(value);
    this.chunks.push(buffer);
    return this;
  }

  int32(value: number): this {
    const buffer = Buffer.alloc(4);
    buffer.writeInt32BE(value);
    this.chunks.push(buffer);
    return this;
  }

  int64(value: number): this {
    const buffer = Buffer.alloc(8);
    buffer.writeBigInt64BE(BigInt(value));
    this.chunks.push(buffer);
    return this;
  }

  string(value: string | null): this {
    if (value === null) return this.int16(-1);
    const bytes = Buffer.from(value, 'utf8');
    if (bytes.length > 0x7fff) throw new OffsetsRecordError(`a string of ${bytes.length} bytes is longer than 32767`);
    this.int16(bytes.length);
    this.chunks.push(bytes);
    return this;
  }

  bytes(value: Buffer): this {
    this.int32(value.length);
    this.chunks.push(value);
    return this;
  }

  done(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

class Reader {
  private position = 0;

  constructor(
    private readonly buffer: Buffer,
    private readonly what: string,
  ) {}

  private need(bytes: number, field: string): void {
    if (this.position + bytes > this.buffer.length) throw new OffsetsRecordError(`${this.what} ends inside ${field} (byte ${this.position} of ${this.buffer.length})`);
  }

  int16(field: string): number {
    this.need(2, field);
    const value = this.buffer.readInt16BE(this.position);
    this.position += 2;
    return value;
  }

  int32(field: string): number {
    this.need(4, field);
    const value = this.buffer.readInt32BE(this.position);
    this.position += 4;
    return value;
  }

  int64(field: string): number {
    this.need(8, field);
    const value = this.buffer.readBigInt64BE(this.position);
    this.position += 8;
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) throw new OffsetsRecordError(`${this.what}: ${field} ${value} is out of range`);
    return Number(value);
  }

  nullableString(field: string): string | null {
    const length = this.int16(field);
    if (length === -1) return null;
    if (length < 0) throw new OffsetsRecordError(`${this.what}: ${field} has length ${length}`);
    this.need(length, field);
    const value = this.buffer.toString('utf8', this.position, this.position + length);
    this.position += length;
    return value;
  }

  string(field: string): string {
    const value = this.nullableString(field);
    if (value === null) throw new OffsetsRecordError(`${this.what}: ${field} is null`);
    return value;
  }

  bytes(field: string): Buffer {
    const length = this.int32(field);
    if (length < 0) throw new OffsetsRecordError(`${this.what}: ${field} has length ${length}`);
    this.need(length, field);
    const value = Buffer.from(this.buffer.subarray(this.position, this.position + length));
    this.position += length;
    return value;
  }

  count(field: string): number {
    const count = this.int32(field);
    if (count < 0 || count > this.buffer.length) throw new OffsetsRecordError(`${this.what}: ${field} has ${count} entries`);
    return count;
  }

  end(): void {
    if (this.position !== this.buffer.length) throw new OffsetsRecordError(`${this.what} has ${this.buffer.length - this.position} bytes after its last field`);
  }
}

export function encodeOffsetsKey(key: OffsetsTopicKey): Buffer {
  if (key.type === 'group') return new Writer().int16(GROUP_METADATA_KEY_VERSION).string(key.group).done();
  return new Writer().int16(OFFSET_COMMIT_KEY_VERSION).string(key.group).string(key.topic).int32(key.partition).done();
}

export function decodeOffsetsKey(bytes: Buffer): OffsetsTopicKey {
  const reader = new Reader(bytes, 'key');
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
  return new Writer().int16(OFFSET_COMMIT_VALUE_VERSION).int64(value.offset).int32(value.leaderEpoch).string(value.metadata).int64(value.commitTimestamp).done();
}

export function decodeOffsetCommitValue(bytes: Buffer): OffsetCommitValue {
  const reader = new Reader(bytes, 'offset commit value');
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
  const writer = new Writer()
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
  const reader = new Reader(bytes, 'group metadata value');
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
