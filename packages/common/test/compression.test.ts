import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  COMPRESSION_CODECS,
  CorruptBatchError,
  MAX_DECOMPRESSED_BATCH_BYTES,
  compressRecords,
  compressionOf,
  crc32c,
  decodeRecords,
  decompressRecords,
  encodeRecordBatch,
  readBatchHeader,
  rebuildBatch,
  sliceRecords,
  validateBatch,
  BATCH_HEADER_BYTES,
  type CompressionCodec,
  type DecodedRecord,
} from '../src/index.js';

type Codec = Exclude<CompressionCodec, 'none'>;
const CODECS = COMPRESSION_CODECS.filter((codec): codec is Codec => codec !== 'none');

const fixture = (name: string): Buffer => readFileSync(new URL(`./fixtures/compression/${name}`, import.meta.url));

/** `batch` with its records section replaced by `payload` (batchLength and CRC made to match), as a producer could send it. */
function withPayload(batch: Buffer, payload: Buffer, codecId = batch.readInt16BE(21) & 0x07): Buffer {
  const rebuilt = Buffer.concat([batch.subarray(0, BATCH_HEADER_BYTES), payload]);
  rebuilt.writeInt32BE(rebuilt.length - 12, 8);
  rebuilt.writeInt16BE((rebuilt.readInt16BE(21) & ~0x07) | codecId, 21);
  rebuilt.writeUInt32BE(crc32c(rebuilt.subarray(21)), 17);
  return rebuilt;
}

const payloadOf = (batch: Buffer): Buffer => batch.subarray(BATCH_HEADER_BYTES);

const simple = (records: DecodedRecord[]) => records.map((record) => ({
  offset: record.offset,
  key: record.key?.toString() ?? null,
  value: record.value?.toString() ?? null,
  headers: record.headers.map((header) => `${header.key}=${header.value?.toString() ?? 'null'}`),
}));

describe('compression codecs', () => {
  const records = [
    { key: Buffer.from('k1'), value: Buffer.from('hello'), timestamp: 1_700_000_000_000, headers: [{ key: 'h', value: Buffer.from('v') }, { key: 'empty', value: null }] },
    { key: null, value: Buffer.from('world '.repeat(200)), timestamp: 1_700_000_000_500 },
    { key: Buffer.from('k3'), value: null, timestamp: 1_699_999_999_000 },
  ];

  for (const codec of CODECS) {
    it(`round-trips a batch through ${codec}, marking the codec in the attributes`, () => {
      const batch = encodeRecordBatch(records, { compression: codec, baseOffset: 7 });
      expect(compressionOf(readBatchHeader(batch).attributes)).toBe(codec);
      expect(validateBatch(batch).recordCount).toBe(3);
      expect(batch.length).toBeLessThan(encodeRecordBatch(records, { baseOffset: 7 }).length);
      expect(simple(decodeRecords(batch))).toEqual(simple(decodeRecords(encodeRecordBatch(records, { baseOffset: 7 }))));
    });

    it(`round-trips ${codec} records sections of 0 bytes to several MiB, with a limit that is exact`, () => {
      const text = Buffer.from(Array.from({ length: 120_000 }, (_, i) => `line ${i * 7919 % 100_003}`).join('\n'));
      for (const plain of [Buffer.alloc(0), Buffer.from('x'), randomBytes(300_000), text, Buffer.concat([text, text, text, text, text, text])]) {
        const compressed = compressRecords(codec, plain);
        expect(decompressRecords(codec, compressed).equals(plain)).toBe(true);
        expect(decompressRecords(codec, compressed, plain.length).equals(plain)).toBe(true);
        if (plain.length > 0) expect(() => decompressRecords(codec, compressed, plain.length - 1)).toThrow(CorruptBatchError);
      }
    });
  }

  describe('batches written by Kafka clients (fixtures/compression/README.md)', () => {
    const lines = readFileSync(new URL('./fixtures/compression/librdkafka-input.txt', import.meta.url), 'utf8').trim().split('\n');
    const fromKcat = lines.map((line, offset) => {
      const [key, value] = line.split(/:(.*)/s);
      return { offset, key: key!, value: value!, headers: ['trace=abc'] };
    });

    for (const codec of CODECS) {
      it(`reads librdkafka's ${codec} batch`, () => {
        const batch = fixture(`librdkafka-${codec}.bin`);
        expect(compressionOf(readBatchHeader(batch).attributes)).toBe(codec);
        expect(validateBatch(batch).recordCount).toBe(3);
        expect(simple(decodeRecords(batch))).toEqual(fromKcat);
      });
    }

    const fromJvm = Array.from({ length: 200 }, (_, i) => ({ offset: i, key: `key-${i}`, value: `value ${i}: ${'abc'.repeat(i % 7)}`, headers: i % 10 === 0 ? [`n=${i}`] : [] }));

    it("reads snappy-java's framed stream (Kafka's Java producer) as well as raw snappy", () => {
      const batch = fixture('jvm-snappy.bin');
      expect(payloadOf(batch).subarray(0, 8).toString('hex')).toBe('82534e4150505900');
      expect(validateBatch(batch).recordCount).toBe(200);
      expect(simple(decodeRecords(batch))).toEqual(fromJvm);
      expect(payloadOf(fixture('librdkafka-snappy.bin'))[0]).not.toBe(0x82);
    });

    it("reads zstd-jni's streamed frame, which states no content size (Kafka's Java producer)", () => {
      const batch = fixture('jvm-zstd.bin');
      expect(payloadOf(batch)[4]! >> 6).toBe(0); // Frame_Content_Size_flag: absent
      expect(simple(decodeRecords(batch))).toEqual(fromJvm);
    });

    it('writes lz4 frames with independent blocks, which Kafka\'s Java reader requires, and zstd frames that state their size', () => {
      const lz4 = payloadOf(encodeRecordBatch(records, { compression: 'lz4' }));
      expect(lz4.readUInt32LE(0)).toBe(0x184d2204);
      expect(lz4[4]! & 0x20).toBe(0x20);
      const zstd = payloadOf(encodeRecordBatch(records, { compression: 'zstd' }));
      expect(zstd.readUInt32LE(0)).toBe(0xfd2fb528);
      expect(zstd[4]! >> 6 !== 0 || (zstd[4]! & 0x20) !== 0).toBe(true);
    });
  });

  describe('payloads that do not decompress', () => {
    for (const codec of CODECS) {
      it(`refuses a truncated or garbled ${codec} payload with an error that names the codec`, () => {
        const batch = fixture(`librdkafka-${codec}.bin`);
        const payload = payloadOf(batch);
        const broken = [
          payload.subarray(0, payload.length - 3),
          payload.subarray(0, 2),
          Buffer.from('these bytes were never compressed by anything'),
          Buffer.alloc(0),
        ];
        for (const bad of broken) {
          const corrupt = withPayload(batch, bad);
          const message = new RegExp(`^(batch at byte 0: )?${codec}-compressed records`);
          expect(() => decodeRecords(corrupt)).toThrow(CorruptBatchError);
          expect(() => decodeRecords(corrupt)).toThrow(message);
          expect(() => sliceRecords(corrupt)).toThrow(message);
          expect(() => validateBatch(corrupt)).toThrow(message);
        }
      });
    }

    it('refuses snappy-java chunks whose length runs past the payload, and lz4 frames followed by anything', () => {
      const xerial = Buffer.from(payloadOf(fixture('jvm-snappy.bin')));
      xerial.writeInt32BE(1 << 30, 16);
      expect(() => decompressRecords('snappy', xerial)).toThrow(/snappy-java chunk at byte 16 says 1073741824 bytes/);
      const lz4 = payloadOf(fixture('librdkafka-lz4.bin'));
      expect(() => decompressRecords('lz4', Buffer.concat([lz4, lz4]))).toThrow(/lz4-compressed records do not decompress: the frame ends at byte/);
    });

    it('refuses codec ids 5 to 7, for which Kafka defines no codec', () => {
      const batch = encodeRecordBatch(records);
      for (const id of [5, 6, 7]) {
        const unknown = withPayload(batch, payloadOf(batch), id);
        expect(() => compressionOf(readBatchHeader(unknown).attributes)).toThrow(/unknown compression codec id/);
        expect(() => decodeRecords(unknown)).toThrow(CorruptBatchError);
        expect(() => validateBatch(unknown)).toThrow(`unknown compression codec id ${id}`);
        // Recovery (a batch already in the log) does not look at the codec.
        expect(validateBatch(unknown, 0, { allowOffsetGaps: true }).recordCount).toBe(3);
      }
    });
  });

  describe("a producer's compressed batch, checked as Kafka's LogValidator checks it", () => {
    const four = [0, 1, 2, 3].map((i) => ({ key: Buffer.from(`k${i}`), value: Buffer.from(`v${i}`), timestamp: 10_000 + i }));

    for (const codec of CODECS) {
      it(`needs exactly recordCount ${codec} records at offset deltas 0, 1, 2, … and nothing after them`, () => {
        const batch = encodeRecordBatch(four, { compression: codec, now: 10_000 });
        const sliced = sliceRecords(batch);
        const section = sliced.section;
        const plain = (kept: number[]) => Buffer.concat(kept.map((i) => section.subarray(sliced.records[i]!.start, sliced.records[i]!.end)));

        const trailing = withPayload(batch, compressRecords(codec, Buffer.concat([section, Buffer.from([0, 0])])));
        expect(() => validateBatch(trailing)).toThrow(/2 bytes follow its 4 records/);

        // Records 0, 1, 3 under a header that says 0..2: the last has offset delta 3.
        const gap = withPayload(batch, compressRecords(codec, plain([0, 1, 3])));
        gap.writeInt32BE(2, 23); // lastOffsetDelta
        gap.writeInt32BE(3, 57); // recordCount
        gap.writeUInt32BE(crc32c(gap.subarray(21)), 17);
        expect(() => validateBatch(gap)).toThrow(/record 2 has offset delta 3, expected 2/);
        expect(validateBatch(gap, 0, { allowOffsetGaps: true }).recordCount).toBe(3); // a follower's copy is not checked again

        const thinned = rebuildBatch(batch, section, [sliced.records[1]!, sliced.records[3]!]);
        expect(() => validateBatch(thinned)).toThrow(/has 2 records but lastOffsetDelta 3/);
      });
    }
  });

  describe('decompression bombs', () => {
    const zeros = Buffer.alloc(1024 * 1024);
    const limit = 64 * 1024;

    for (const codec of CODECS) {
      it(`refuses ${codec} records that would decompress past the limit, and takes them at the limit`, () => {
        const bomb = compressRecords(codec, zeros);
        expect(bomb.length).toBeLessThan(zeros.length / 20);
        expect(() => decompressRecords(codec, bomb, limit)).toThrow(new RegExp(`^${codec}-compressed records would decompress to .*more than the limit of ${limit}`));
        expect(decompressRecords(codec, bomb, zeros.length).length).toBe(zeros.length);
      });
    }

    it("bounds streams that state no size (snappy-java's, zstd without a content size) while decompressing them", () => {
      const xerial = payloadOf(fixture('jvm-snappy.bin'));
      const streamed = payloadOf(fixture('jvm-zstd.bin'));
      const size = decompressRecords('zstd', streamed).length;
      expect(decompressRecords('snappy', xerial).length).toBe(size);
      expect(() => decompressRecords('snappy', xerial, size - 1)).toThrow(/snappy-compressed records would decompress to at least \d+ bytes, more than the limit/);
      expect(() => decompressRecords('zstd', streamed, size - 1)).toThrow(`zstd-compressed records would decompress to more bytes, more than the limit of ${size - 1}`);
      expect(decompressRecords('zstd', streamed, size).length).toBe(size);
    });

    it(`refuses, in every batch reader, a batch whose records decompress past ${MAX_DECOMPRESSED_BATCH_BYTES} bytes`, () => {
      const batch = encodeRecordBatch([{ value: Buffer.from('x') }], { compression: 'gzip' });
      const overLimit = Buffer.alloc(MAX_DECOMPRESSED_BATCH_BYTES + 1);
      // What a payload says of its size is refused before anything is decompressed...
      const snappyClaim = Buffer.from([0x80, 0x80, 0x80, 0x80, 0x08, 0x00]); // a 2 GiB preamble
      const zstdClaim = Buffer.from('28b52ffde0' + '0000004000000000' + '010000', 'hex'); // single segment, 8-byte content size: 1 GiB
      const lz4Bomb = compressRecords('lz4', overLimit); // its blocks' sequences add up past the limit
      // ...and a gzip bomb is stopped at the limit.
      const gzipBomb = gzipSync(overLimit);
      for (const [codec, payload] of [['snappy', snappyClaim], ['zstd', zstdClaim], ['lz4', lz4Bomb], ['gzip', gzipBomb]] as const) {
        const bomb = withPayload(batch, payload, COMPRESSION_CODECS.indexOf(codec));
        const refusal = new RegExp(`${codec}-compressed records would decompress to .*more than the limit of ${MAX_DECOMPRESSED_BATCH_BYTES}`);
        expect(() => decodeRecords(bomb)).toThrow(refusal);
        expect(() => sliceRecords(bomb)).toThrow(refusal);
        expect(() => validateBatch(bomb)).toThrow(refusal);
      }
    });
  });
});
