// __consumer_offsets records in Kafka's layout, and the placement of a group on a partition.
import { describe, expect, it } from 'vitest';
import {
  OffsetsRecordError,
  decodeGroupMetadataValue,
  decodeOffsetCommitValue,
  decodeOffsetsKey,
  encodeGroupMetadataValue,
  encodeOffsetCommitValue,
  encodeOffsetsKey,
  javaStringHash,
  offsetsPartitionFor,
  type GroupMetadataValue,
} from '../src/group/offsetsTopicRecords.js';

describe('__consumer_offsets records', () => {
  it('lays an offset commit key and value out as Kafka does', () => {
    const key = encodeOffsetsKey({ type: 'offset', group: 'g', topic: 'ab', partition: 7 });
    // int16 key version 1, string "g", string "ab", int32 7
    expect(key.toString('hex')).toBe('0001' + '0001' + '67' + '0002' + '6162' + '00000007');
    expect(decodeOffsetsKey(key)).toEqual({ type: 'offset', group: 'g', topic: 'ab', partition: 7 });
    const value = encodeOffsetCommitValue({ offset: 42, leaderEpoch: 3, metadata: 'm', commitTimestamp: 1_700_000_000_000 });
    // int16 version 3, int64 offset, int32 leader epoch, string metadata, int64 commit timestamp
    expect(value.toString('hex')).toBe('0003' + '000000000000002a' + '00000003' + '0001' + '6d' + (1_700_000_000_000).toString(16).padStart(16, '0'));
    expect(decodeOffsetCommitValue(value)).toEqual({ offset: 42, leaderEpoch: 3, metadata: 'm', commitTimestamp: 1_700_000_000_000 });
  });

  it('reads older offset commit values (v1 with an expire timestamp) and key version 0', () => {
    const v1 = Buffer.from('0001' + '0000000000000005' + '0000' + '0000000000000064' + 'ffffffffffffffff', 'hex');
    expect(decodeOffsetCommitValue(v1)).toEqual({ offset: 5, leaderEpoch: -1, metadata: '', commitTimestamp: 100 });
    expect(decodeOffsetsKey(Buffer.from('0000' + '0001' + '67' + '0001' + '74' + '00000000', 'hex'))).toEqual({ type: 'offset', group: 'g', topic: 't', partition: 0 });
  });

  it('round-trips group metadata, nulls included', () => {
    const value: GroupMetadataValue = {
      protocolType: 'consumer',
      generation: 9,
      protocol: 'range',
      leader: 'a-1',
      currentStateTimestamp: 1234,
      members: [
        { memberId: 'a-1', groupInstanceId: null, clientId: 'a', clientHost: '/127.0.0.1', rebalanceTimeoutMs: 30_000, sessionTimeoutMs: 10_000, subscription: Buffer.from('sub'), assignment: Buffer.from('p0') },
        { memberId: 'b-1', groupInstanceId: 'b', clientId: 'b', clientHost: '/127.0.0.2', rebalanceTimeoutMs: 60_000, sessionTimeoutMs: 45_000, subscription: Buffer.alloc(0), assignment: Buffer.alloc(0) },
      ],
    };
    const encoded = encodeGroupMetadataValue(value);
    expect(encoded.readInt16BE(0)).toBe(3);
    expect(decodeGroupMetadataValue(encoded)).toEqual(value);
    const empty = { ...value, protocol: null, leader: null, members: [] };
    expect(decodeGroupMetadataValue(encodeGroupMetadataValue(empty))).toEqual(empty);
    const key = encodeOffsetsKey({ type: 'group', group: 'billing' });
    expect(key.readInt16BE(0)).toBe(2);
    expect(decodeOffsetsKey(key)).toEqual({ type: 'group', group: 'billing' });
  });

  it('refuses what it cannot read, naming the field', () => {
    expect(() => decodeOffsetsKey(Buffer.from('0009', 'hex'))).toThrow(/unknown key version 9/);
    expect(() => decodeOffsetsKey(Buffer.from('00010005616263', 'hex'))).toThrow(OffsetsRecordError);
    expect(() => decodeOffsetCommitValue(Buffer.from('0003000000', 'hex'))).toThrow(/ends inside offset/);
    const value = encodeOffsetCommitValue({ offset: 1, leaderEpoch: -1, metadata: '', commitTimestamp: 0 });
    expect(() => decodeOffsetCommitValue(Buffer.concat([value, Buffer.from([0])]))).toThrow(/1 bytes after its last field/);
    expect(() => decodeGroupMetadataValue(Buffer.from('0003' + '0001' + '63' + '00000001' + 'ffff' + 'ffff' + '0000000000000000' + '7fffffff', 'hex'))).toThrow(/members has/);
  });
});

describe('the coordinator partition of a group', () => {
  it('hashes as Java\'s String.hashCode', () => {
    expect(javaStringHash('')).toBe(0);
    expect(javaStringHash('hello')).toBe(99162322);
    expect(javaStringHash('polygenelubricants')).toBe(-2147483648);
    expect(javaStringHash('Aa')).toBe(javaStringHash('BB'));
  });

  it('places a group as Kafka does: abs(hash) % partitions, Integer.MIN_VALUE counting as 0', () => {
    expect(offsetsPartitionFor('hello', 50)).toBe(99162322 % 50);
    expect(offsetsPartitionFor('polygenelubricants', 50)).toBe(0);
    // A negative hash: "billing" hashes to -109829509 (as Java computes it), so partition 9 of 50.
    expect(javaStringHash('billing')).toBe(-109829509);
    expect(offsetsPartitionFor('billing', 50)).toBe(9);
    expect(offsetsPartitionFor('my-group', 50)).toBe(12);
    for (let k = 0; k < 200; k++) {
      const partition = offsetsPartitionFor(`group-${k}`, 50);
      expect(partition).toBeGreaterThanOrEqual(0);
      expect(partition).toBeLessThan(50);
    }
    expect(() => offsetsPartitionFor('g', 0)).toThrow(RangeError);
  });
});
