import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  COMPRESSION_CODECS,
  CorruptBatchError,
  decodeRecords,
  encodeEmptyBatch,
  rebuildBatch,
  sliceRecords,
  encodeRecordBatch,
  listBatches,
  readBatchHeader,
  setBaseOffset,
  setPartitionLeaderEpoch,
  validateBatch,
  BATCH_HEADER_BYTES,
} from '../src/index.js';
import { readVarint, varintSize, writeVarint } from '../src/varint.js';

describe('varint', () => {
  it('round-trips zig-zag values across the safe integer range', () => {
    fc.assert(
      fc.property(fc.oneof(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.maxSafeInteger().map((n) => Math.trunc(n / 2) + 0 /* no -0 */)), (value) => {
        const buffer = Buffer.alloc(10);
        const end = writeVarint(buffer, 0, value);
        expect(end).toBe(varintSize(value));
        const cursor = { next: 0 };
        expect(readVarint(buffer, 0, cursor)).toBe(value);
        expect(cursor.next).toBe(end);
      }),
    );
  });

  it('matches the protobuf sint32 encoding of known values', () => {
    const encode = (value: number) => {
      const buffer = Buffer.alloc(10);
      return buffer.subarray(0, writeVarint(buffer, 0, value)).toString('hex');
    };
    expect(encode(0)).toBe('00');
    expect(encode(-1)).toBe('01');
    expect(encode(1)).toBe('02');
    expect(encode(63)).toBe('7e');
    expect(encode(-64)).toBe('7f');
    expect(encode(64)).toBe('8001');
    expect(encode(300)).toBe('d804');
  });

  it('rejects a varint that runs off the buffer', () => {
    expect(() => readVarint(Buffer.from([0x80, 0x80]), 0, { next: 0 })).toThrow(/past the end/);
  });
});

describe('record batch v2', () => {
  const records = [
    { key: Buffer.from('k1'), value: Buffer.from('hello'), timestamp: 1_700_000_000_000, headers: [{ key: 'h', value: Buffer.from('v') }] },
    { key: null, value: Buffer.from('world'), timestamp: 1_700_000_000_500 },
    { key: Buffer.from('k3'), value: null, timestamp: 1_699_999_999_000 },
  ];

  it('encodes the fixed header as Kafka lays it out', () => {
    const batch = encodeRecordBatch(records, { baseOffset: 42, partitionLeaderEpoch: 7 });
    const header = validateBatch(batch);
    expect(header.baseOffset).toBe(42);
    expect(header.batchLength).toBe(batch.length - 12);
    expect(header.partitionLeaderEpoch).toBe(7);
    expect(header.magic).toBe(2);
    expect(header.lastOffsetDelta).toBe(2);
    expect(header.recordCount).toBe(3);
    expect(header.baseTimestamp).toBe(1_700_000_000_000);
    expect(header.maxTimestamp).toBe(1_700_000_000_500);
    expect(header.producerId).toBe(-1);
    expect(batch.length).toBeGreaterThan(BATCH_HEADER_BYTES);
  });

  it('decodes what it encodes, including null keys, null values and headers', () => {
    const decoded = decodeRecords(encodeRecordBatch(records, { baseOffset: 10 }));
    expect(decoded.map((r) => r.offset)).toEqual([10, 11, 12]);
    expect(decoded[0]!.key?.toString()).toBe('k1');
    expect(decoded[0]!.headers).toEqual([{ key: 'h', value: Buffer.from('v') }]);
    expect(decoded[1]!.key).toBeNull();
    expect(decoded[2]!.value).toBeNull();
    expect(decoded[2]!.timestamp).toBe(1_699_999_999_000);
  });

  it('round-trips gzip-compressed batches', () => {
    const batch = encodeRecordBatch(records, { compression: 'gzip' });
    validateBatch(batch);
    expect(decodeRecords(batch).map((r) => r.value?.toString() ?? null)).toEqual(['hello', 'world', null]);
  });

  it('keeps the CRC valid when the broker rewrites base offset and leader epoch', () => {
    const batch = encodeRecordBatch(records);
    setBaseOffset(batch, 0, 123_456_789_012);
    setPartitionLeaderEpoch(batch, 0, 99);
    expect(validateBatch(batch).baseOffset).toBe(123_456_789_012);
  });

  it('detects any flipped byte inside the CRC-covered range', () => {
    const batch = encodeRecordBatch(records);
    fc.assert(
      fc.property(fc.integer({ min: 21, max: batch.length - 1 }), fc.integer({ min: 1, max: 255 }), (position, mask) => {
        const copy = Buffer.from(batch);
        copy[position]! ^= mask;
        expect(() => validateBatch(copy)).toThrow(CorruptBatchError);
      }),
    );
  });

  it('rejects truncated batches and wrong magic', () => {
    const batch = encodeRecordBatch(records);
    expect(() => validateBatch(batch.subarray(0, batch.length - 1))).toThrow(/truncated/);
    expect(() => validateBatch(batch.subarray(0, 30))).toThrow(/truncated/);
    const wrongMagic = Buffer.from(batch);
    wrongMagic[16] = 1;
    expect(() => validateBatch(wrongMagic)).toThrow(/magic/);
  });

  it('lists concatenated batches and refuses a partial one', () => {
    const a = encodeRecordBatch(records.slice(0, 1));
    const b = encodeRecordBatch(records);
    const both = Buffer.concat([a, b]);
    expect(listBatches(both).map((entry) => entry.position)).toEqual([0, a.length]);
    expect(readBatchHeader(both, a.length).recordCount).toBe(3);
    expect(() => listBatches(both.subarray(0, both.length - 5))).toThrow(CorruptBatchError);
  });
});

describe('rewriting batches for the log cleaner', () => {
  const records = [0, 1, 2, 3].map((i) => ({ key: Buffer.from(`k${i}`), value: i === 2 ? null : Buffer.from(`v${i}`), timestamp: 10_000 + i * 7 }));

  for (const compression of COMPRESSION_CODECS) {
    it(`keeps chosen records with their offsets, timestamps and the header's producer fields and epoch (${compression})`, () => {
      const batch = encodeRecordBatch(records, { baseOffset: 100, partitionLeaderEpoch: 7, producerId: 42, producerEpoch: 3, baseSequence: 9, compression, now: 10_000 });
      const sliced = sliceRecords(batch);
      expect(sliced.records.map((record) => [record.offset, record.timestamp, record.valueIsNull])).toEqual([[100, 10_000, false], [101, 10_007, false], [102, 10_014, true], [103, 10_021, false]]);
      const rebuilt = rebuildBatch(batch, sliced.section, [sliced.records[1]!, sliced.records[2]!]);
      const header = validateBatch(rebuilt, 0, { allowOffsetGaps: true });
      expect(header).toMatchObject({ baseOffset: 100, lastOffsetDelta: 3, recordCount: 2, partitionLeaderEpoch: 7, producerId: 42, producerEpoch: 3, baseSequence: 9, baseTimestamp: 10_000, maxTimestamp: 10_021 });
      expect(decodeRecords(rebuilt).map((record) => [record.offset, record.timestamp, record.key!.toString(), record.value?.toString() ?? null])).toEqual([[101, 10_007, 'k1', 'v1'], [102, 10_014, 'k2', null]]);
      expect(() => validateBatch(rebuilt)).toThrow(CorruptBatchError); // a producer's batch may not have gaps
    });
  }

  it('an empty batch holds a range of offsets and passes validation', () => {
    const empty = encodeEmptyBatch({ baseOffset: 50, lastOffset: 59, baseTimestamp: 1, maxTimestamp: 9, partitionLeaderEpoch: 4 });
    expect(validateBatch(empty, 0, { allowOffsetGaps: true })).toMatchObject({ baseOffset: 50, lastOffsetDelta: 9, recordCount: 0, maxTimestamp: 9, partitionLeaderEpoch: 4 });
    expect(decodeRecords(empty)).toEqual([]);
  });
});
