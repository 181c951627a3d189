// Kafka record batch v2 (magic 2): the one format for the gRPC API, the Kafka wire protocol,
// replication and disk. Layout from apache/kafka DefaultRecordBatch.java:
//
//   0 baseOffset i64 | 8 batchLength i32 | 12 partitionLeaderEpoch i32 | 16 magic i8 | 17 crc u32
//   21 attributes i16 | 23 lastOffsetDelta i32 | 27 baseTimestamp i64 | 35 maxTimestamp i64
//   43 producerId i64 | 51 producerEpoch i16 | 53 baseSequence i32 | 57 recordCount i32 | 61 records
//
// The CRC-32C covers attributes to the end, so a broker may rewrite baseOffset and the leader
// epoch without recomputing it. A record is: varint length, i8 attributes, varlong
// timestampDelta, varint offsetDelta, varint key length (-1 null) + key, varint value length +
// value, varint header count, then per header a varint key length + key and a value like above.
import { COMPRESSION_CODECS, compressRecords, decompressRecords, type CompressionCodec } from './compression.js';
import { CorruptBatchError } from './corruptBatchError.js';
import { crc32c } from './crc32c.js';
import { readVarint, varintSize, writeVarint } from './varint.js';

export const BATCH_HEADER_BYTES = 61;
/** baseOffset + batchLength: the bytes before what batchLength counts. */
export const LOG_OVERHEAD = 12;
export const MAGIC_V2 = 2;

const BASE_OFFSET = 0;
const BATCH_LENGTH = 8;
const PARTITION_LEADER_EPOCH = 12;
const MAGIC = 16;
const CRC = 17;
const ATTRIBUTES = 21;
const LAST_OFFSET_DELTA = 23;
const BASE_TIMESTAMP = 27;
const MAX_TIMESTAMP = 35;
const PRODUCER_ID = 43;
const PRODUCER_EPOCH = 51;
const BASE_SEQUENCE = 53;
const RECORD_COUNT = 57;

const COMPRESSION_BITS = 0x07;
const TIMESTAMP_TYPE_BIT = 0x08;
const TRANSACTIONAL_BIT = 0x10;
const CONTROL_BIT = 0x20;

export interface RecordHeader {
  key: string;
  value: Buffer | null;
}

export interface RecordInput {
  key?: Buffer | null;
  value: Buffer | null;
  headers?: readonly RecordHeader[];
  /** ms since the epoch; the batch's encode time when absent. */
  timestamp?: number;
}

export interface DecodedRecord {
  offset: number;
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeader[];
}

export interface BatchHeader {
  baseOffset: number;
  /** Bytes after the batchLength field; the whole batch is batchLength + LOG_OVERHEAD. */
  batchLength: number;
  partitionLeaderEpoch: number;
  magic: number;
  crc: number;
  attributes: number;
  lastOffsetDelta: number;
  baseTimestamp: number;
  maxTimestamp: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
}

export function batchSize(header: BatchHeader): number {
  return header.batchLength + LOG_OVERHEAD;
}

export function lastOffsetOf(header: BatchHeader): number {
  return header.baseOffset + header.lastOffsetDelta;
}

/** The codec in a batch's attributes; throws CorruptBatchError for ids 5-7, which Kafka defines no codec for. */
export function compressionOf(attributes: number): CompressionCodec {
  const codec = COMPRESSION_CODECS[attributes & COMPRESSION_BITS];
  if (codec === undefined) throw new CorruptBatchError(`unknown compression codec id ${attributes & COMPRESSION_BITS}`);
  return codec;
}

export function isControlBatch(header: BatchHeader): boolean {
  return (header.attributes & CONTROL_BIT) !== 0;
}

export function isTransactionalBatch(header: BatchHeader): boolean {
  return (header.attributes & TRANSACTIONAL_BIT) !== 0;
}

export function usesLogAppendTime(header: BatchHeader): boolean {
  return (header.attributes & TIMESTAMP_TYPE_BIT) !== 0;
}

function readInt64(buffer: Buffer, offset: number): number {
  const value = buffer.readBigInt64BE(offset);
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new CorruptBatchError(`64-bit field at byte ${offset} is outside the safe integer range: ${value}`);
  }
  return Number(value);
}

/** Reads the fixed 61-byte header of the batch at `position`. Does not check the CRC. */
export function readBatchHeader(buffer: Buffer, position = 0): BatchHeader {
  if (position + BATCH_HEADER_BYTES > buffer.length) {
    throw new CorruptBatchError(`batch header at byte ${position} is truncated (${buffer.length - position} of ${BATCH_HEADER_BYTES} bytes)`);
  }
  return {
    baseOffset: readInt64(buffer, position + BASE_OFFSET),
    batchLength: buffer.readInt32BE(position + BATCH_LENGTH),
    partitionLeaderEpoch: buffer.readInt32BE(position + PARTITION_LEADER_EPOCH),
    magic: buffer.readInt8(position + MAGIC),
    crc: buffer.readUInt32BE(position + CRC),
    attributes: buffer.readInt16BE(position + ATTRIBUTES),
    lastOffsetDelta: buffer.readInt32BE(position + LAST_OFFSET_DELTA),
    baseTimestamp: readInt64(buffer, position + BASE_TIMESTAMP),
    maxTimestamp: readInt64(buffer, position + MAX_TIMESTAMP),
    producerId: readInt64(buffer, position + PRODUCER_ID),
    producerEpoch: buffer.readInt16BE(position + PRODUCER_EPOCH),
    baseSequence: buffer.readInt32BE(position + BASE_SEQUENCE),
    recordCount: buffer.readInt32BE(position + RECORD_COUNT),
  };
}

/**
 * Checks the batch at `position` as far as a broker must before it stores it: the header is
 * whole, batchLength fits inside `buffer`, magic is 2, the CRC-32C matches, and (for a producer's
 * batch) the record count agrees with lastOffsetDelta and compressed records decompress as
 * checkCompressedRecords says. Returns the header; throws CorruptBatchError.
 */
export function validateBatch(buffer: Buffer, position = 0, options: { allowOffsetGaps?: boolean } = {}): BatchHeader {
  const header = readBatchHeader(buffer, position);
  if (header.magic !== MAGIC_V2) throw new CorruptBatchError(`unsupported magic ${header.magic} at byte ${position}: only record batch v2 (magic 2) is accepted`);
  if (header.batchLength < BATCH_HEADER_BYTES - LOG_OVERHEAD) throw new CorruptBatchError(`batchLength ${header.batchLength} at byte ${position} is smaller than a batch header`);
  const end = position + batchSize(header);
  if (end > buffer.length) throw new CorruptBatchError(`batch at byte ${position} is truncated: batchLength says ${batchSize(header)} bytes, ${buffer.length - position} remain`);
  const actual = crc32c(buffer.subarray(position + ATTRIBUTES, end));
  if (actual !== header.crc) throw new CorruptBatchError(`CRC-32C mismatch in batch at byte ${position}: stored ${header.crc}, computed ${actual}`);
  if (header.recordCount < 0 || header.lastOffsetDelta < 0) throw new CorruptBatchError(`negative record count or lastOffsetDelta in batch at byte ${position}`);
  // A batch the log cleaner rewrote keeps its offset range with fewer records (Kafka allows this);
  // a producer's batch must not have gaps.
  if (options.allowOffsetGaps === true && header.recordCount > header.lastOffsetDelta + 1) {
    throw new CorruptBatchError(`batch at byte ${position} has ${header.recordCount} records, more than its ${header.lastOffsetDelta + 1} offsets`);
  }
  if (options.allowOffsetGaps !== true && !isControlBatch(header)) {
    if (header.recordCount !== header.lastOffsetDelta + 1) {
      throw new CorruptBatchError(`batch at byte ${position} has ${header.recordCount} records but lastOffsetDelta ${header.lastOffsetDelta}`);
    }
    if (compressionOf(header.attributes) !== 'none') checkCompressedRecords(buffer.subarray(position, end), position);
  }
  return header;
}

/**
 * What Kafka's LogValidator checks of a producer's compressed batch, which its CRC cannot vouch
 * for (the producer computed it over whatever it compressed): the records decompress, within
 * MAX_DECOMPRESSED_BATCH_BYTES, into exactly recordCount records with offset deltas 0, 1, 2, …
 * and nothing after them.
 */
function checkCompressedRecords(batch: Buffer, position: number): void {
  let sliced: ReturnType<typeof sliceRecords>;
  try {
    sliced = sliceRecords(batch);
  } catch (error) {
    if (error instanceof CorruptBatchError) throw new CorruptBatchError(`batch at byte ${position}: ${error.message}`);
    throw error;
  }
  const { header, section, records } = sliced;
  for (const [index, record] of records.entries()) {
    if (record.offset !== header.baseOffset + index) {
      throw new CorruptBatchError(`batch at byte ${position}: record ${index} has offset delta ${record.offset - header.baseOffset}, expected ${index}`);
    }
  }
  const recordsEnd = records.at(-1)?.end ?? 0;
  if (recordsEnd !== section.length) throw new CorruptBatchError(`batch at byte ${position}: ${section.length - recordsEnd} bytes follow its ${records.length} records`);
}

/** Positions and headers of the whole batches in `buffer`, in order; throws on a partial batch. */
export function listBatches(buffer: Buffer): Array<{ position: number; header: BatchHeader }> {
  const batches: Array<{ position: number; header: BatchHeader }> = [];
  let position = 0;
  while (position < buffer.length) {
    const header = readBatchHeader(buffer, position);
    const size = batchSize(header);
    if (header.batchLength < BATCH_HEADER_BYTES - LOG_OVERHEAD || position + size > buffer.length) {
      throw new CorruptBatchError(`batch at byte ${position} is truncated or has a bad length (${header.batchLength})`);
    }
    batches.push({ position, header });
    position += size;
  }
  return batches;
}

export function setBaseOffset(buffer: Buffer, position: number, baseOffset: number): void {
  buffer.writeBigInt64BE(BigInt(baseOffset), position + BASE_OFFSET);
}

export function setPartitionLeaderEpoch(buffer: Buffer, position: number, epoch: number): void {
  buffer.writeInt32BE(epoch, position + PARTITION_LEADER_EPOCH);
}

export interface EncodeOptions {
  baseOffset?: number;
  partitionLeaderEpoch?: number;
  producerId?: number;
  producerEpoch?: number;
  baseSequence?: number;
  compression?: CompressionCodec;
  /** Timestamp for records that carry none; defaults to Date.now(). */
  now?: number;
}

function recordBodySize(record: RecordInput, timestampDelta: number, offsetDelta: number): number {
  let size = 1 + varintSize(timestampDelta) + varintSize(offsetDelta);
  const key = record.key ?? null;
  size += key === null ? 1 : varintSize(key.length) + key.length;
  size += record.value === null ? 1 : varintSize(record.value.length) + record.value.length;
  const headers = record.headers ?? [];
  size += varintSize(headers.length);
  for (const header of headers) {
    const keyBytes = Buffer.byteLength(header.key);
    size += varintSize(keyBytes) + keyBytes;
    size += header.value === null ? 1 : varintSize(header.value.length) + header.value.length;
  }
  return size;
}

function writeBytes(buffer: Buffer, offset: number, bytes: Buffer | null): number {
  if (bytes === null) return writeVarint(buffer, offset, -1);
  offset = writeVarint(buffer, offset, bytes.length);
  return offset + bytes.copy(buffer, offset);
}

/** Bytes of each record's body, and the total size of the records section. */
function measureRecords(records: readonly RecordInput[], baseTimestamp: number, now: number): { sizes: number[]; total: number } {
  const sizes = new Array<number>(records.length);
  let total = 0;
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    const body = recordBodySize(record, (record.timestamp ?? now) - baseTimestamp, i);
    sizes[i] = body;
    total += varintSize(body) + body;
  }
  return { sizes, total };
}

/** Writes the records section at `offset`; returns the offset after it. */
function writeRecords(buffer: Buffer, offset: number, records: readonly RecordInput[], sizes: readonly number[], baseTimestamp: number, now: number): number {
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    offset = writeVarint(buffer, offset, sizes[i]!);
    buffer[offset++] = 0; // record attributes: unused in v2
    offset = writeVarint(buffer, offset, (record.timestamp ?? now) - baseTimestamp);
    offset = writeVarint(buffer, offset, i);
    offset = writeBytes(buffer, offset, record.key ?? null);
    offset = writeBytes(buffer, offset, record.value);
    const headers = record.headers ?? [];
    offset = writeVarint(buffer, offset, headers.length);
    for (const header of headers) {
      offset = writeBytes(buffer, offset, Buffer.from(header.key, 'utf8'));
      offset = writeBytes(buffer, offset, header.value);
    }
  }
  return offset;
}

/** Encodes records as one batch v2 with offset deltas 0..n-1. */
export function encodeRecordBatch(records: readonly RecordInput[], options: EncodeOptions = {}): Buffer {
  if (records.length === 0) throw new RangeError('a record batch needs at least one record');
  const now = options.now ?? Date.now();
  const baseTimestamp = records[0]!.timestamp ?? now;
  let maxTimestamp = baseTimestamp;
  for (const record of records) maxTimestamp = Math.max(maxTimestamp, record.timestamp ?? now);
  const codec = options.compression ?? 'none';
  const { sizes, total } = measureRecords(records, baseTimestamp, now);

  let batch: Buffer;
  if (codec === 'none') {
    // The hot path: records are written straight into the batch, one allocation and one copy.
    batch = Buffer.allocUnsafe(BATCH_HEADER_BYTES + total);
    writeRecords(batch, BATCH_HEADER_BYTES, records, sizes, baseTimestamp, now);
  } else {
    const plain = Buffer.allocUnsafe(total);
    writeRecords(plain, 0, records, sizes, baseTimestamp, now);
    const body = compressRecords(codec, plain);
    batch = Buffer.allocUnsafe(BATCH_HEADER_BYTES + body.length);
    body.copy(batch, BATCH_HEADER_BYTES);
  }
  batch.writeBigInt64BE(BigInt(options.baseOffset ?? 0), BASE_OFFSET);
  batch.writeInt32BE(batch.length - LOG_OVERHEAD, BATCH_LENGTH);
  batch.writeInt32BE(options.partitionLeaderEpoch ?? -1, PARTITION_LEADER_EPOCH);
  batch.writeInt8(MAGIC_V2, MAGIC);
  batch.writeInt16BE(COMPRESSION_CODECS.indexOf(codec), ATTRIBUTES);
  batch.writeInt32BE(records.length - 1, LAST_OFFSET_DELTA);
  batch.writeBigInt64BE(BigInt(baseTimestamp), BASE_TIMESTAMP);
  batch.writeBigInt64BE(BigInt(maxTimestamp), MAX_TIMESTAMP);
  batch.writeBigInt64BE(BigInt(options.producerId ?? -1), PRODUCER_ID);
  batch.writeInt16BE(options.producerEpoch ?? -1, PRODUCER_EPOCH);
  batch.writeInt32BE(options.baseSequence ?? -1, BASE_SEQUENCE);
  batch.writeInt32BE(records.length, RECORD_COUNT);
  batch.writeUInt32BE(crc32c(batch.subarray(ATTRIBUTES)), CRC);
  return batch;
}

function readBytes(buffer: Buffer, cursor: { next: number }): Buffer | null {
  const length = readVarint(buffer, cursor.next, cursor);
  if (length < 0) return null;
  const start = cursor.next;
  if (start + length > buffer.length) throw new CorruptBatchError(`record field of ${length} bytes runs past the end of the batch`);
  cursor.next = start + length;
  return buffer.subarray(start, start + length);
}

/** Decodes the records of the whole batch at the start of `batch`, decompressing them if they are. */
export function decodeRecords(batch: Buffer): DecodedRecord[] {
  const header = readBatchHeader(batch, 0);
  if (batchSize(header) > batch.length) throw new CorruptBatchError('batch is truncated');
  const body = recordsSection(batch, header);
  const logAppendTime = usesLogAppendTime(header);
  const records: DecodedRecord[] = new Array(header.recordCount);
  const cursor = { next: 0 };
  try {
    for (let i = 0; i < header.recordCount; i++) {
      const length = readVarint(body, cursor.next, cursor);
      const recordEnd = cursor.next + length;
      if (length < 0 || recordEnd > body.length) throw new CorruptBatchError(`record ${i} of ${length} bytes runs past the end of the batch`);
      cursor.next += 1; // attributes
      const timestampDelta = readVarint(body, cursor.next, cursor);
      const offsetDelta = readVarint(body, cursor.next, cursor);
      const key = readBytes(body, cursor);
      const value = readBytes(body, cursor);
      const headerCount = readVarint(body, cursor.next, cursor);
      if (headerCount < 0 || headerCount > length) throw new CorruptBatchError(`record ${i} has an invalid header count ${headerCount}`);
      const headers: RecordHeader[] = [];
      for (let h = 0; h < headerCount; h++) {
        const headerKey = readBytes(body, cursor);
        if (headerKey === null) throw new CorruptBatchError(`record ${i} has a header with a null key`);
        headers.push({ key: headerKey.toString('utf8'), value: readBytes(body, cursor) });
      }
      if (cursor.next !== recordEnd) throw new CorruptBatchError(`record ${i} length ${length} does not match its fields`);
      records[i] = {
        offset: header.baseOffset + offsetDelta,
        timestamp: logAppendTime ? header.maxTimestamp : header.baseTimestamp + timestampDelta,
        key,
        value,
        headers,
      };
    }
  } catch (error) {
    if (error instanceof CorruptBatchError) throw error;
    throw new CorruptBatchError(`cannot decode records: ${(error as Error).message}`);
  }
  return records;
}

/** Where one record sits in a batch's (uncompressed) records section, and what compaction needs of it. */
export interface RecordSlice {
  offset: number;
  /** Record timestamp (CreateTime); the batch's maxTimestamp under LogAppendTime. */
  timestamp: number;
  key: Buffer | null;
  valueIsNull: boolean;
  start: number;
  end: number;
}

/** The records section of a batch, decompressed if it is; throws CorruptBatchError when it does not decompress. */
function recordsSection(batch: Buffer, header: BatchHeader): Buffer {
  const codec = compressionOf(header.attributes);
  const body = batch.subarray(BATCH_HEADER_BYTES, batchSize(header));
  return codec === 'none' ? body : decompressRecords(codec, body);
}

/** Slices of every record of the whole batch at the start of `batch`, with the section they index. */
export function sliceRecords(batch: Buffer): { header: BatchHeader; section: Buffer; records: RecordSlice[] } {
  const header = readBatchHeader(batch, 0);
  if (batchSize(header) > batch.length) throw new CorruptBatchError('batch is truncated');
  const section = recordsSection(batch, header);
  const logAppendTime = usesLogAppendTime(header);
  const records: RecordSlice[] = [];
  const cursor = { next: 0 };
  try {
    for (let i = 0; i < header.recordCount; i++) {
      const start = cursor.next;
      const length = readVarint(section, cursor.next, cursor);
      const end = cursor.next + length;
      if (length < 0 || end > section.length) throw new CorruptBatchError(`record ${i} of ${length} bytes runs past the end of the batch`);
      cursor.next += 1; // attributes
      const timestampDelta = readVarint(section, cursor.next, cursor);
      const offsetDelta = readVarint(section, cursor.next, cursor);
      const key = readBytes(section, cursor);
      const valueLength = readVarint(section, cursor.next, cursor);
      records.push({
        offset: header.baseOffset + offsetDelta,
        timestamp: logAppendTime ? header.maxTimestamp : header.baseTimestamp + timestampDelta,
        key,
        valueIsNull: valueLength < 0,
        start,
        end,
      });
      cursor.next = end;
    }
  } catch (error) {
    if (error instanceof CorruptBatchError) throw error;
    throw new CorruptBatchError(`cannot slice records: ${(error as Error).message}`);
  }
  return { header, section, records };
}

/**
 * The batch with only `kept` of its records (slices from sliceRecords over `section`), for the log
 * cleaner. The records' bytes are copied unchanged (their offset and timestamp deltas are relative
 * to the header, which keeps its base offset, lastOffsetDelta, timestamps, producer fields,
 * attributes and partition leader epoch), so every kept record keeps its offset and timestamp;
 * recordCount, batchLength and the CRC are recomputed. A compressed batch is recompressed with its codec.
 */
export function rebuildBatch(batch: Buffer, section: Buffer, kept: readonly RecordSlice[]): Buffer {
  const header = readBatchHeader(batch, 0);
  const plain = Buffer.concat(kept.map((record) => section.subarray(record.start, record.end)));
  const codec = compressionOf(header.attributes);
  const records = codec === 'none' ? plain : compressRecords(codec, plain);
  const rebuilt = Buffer.allocUnsafe(BATCH_HEADER_BYTES + records.length);
  batch.copy(rebuilt, 0, 0, BATCH_HEADER_BYTES);
  records.copy(rebuilt, BATCH_HEADER_BYTES);
  rebuilt.writeInt32BE(rebuilt.length - LOG_OVERHEAD, BATCH_LENGTH);
  rebuilt.writeInt32BE(kept.length, RECORD_COUNT);
  rebuilt.writeUInt32BE(crc32c(rebuilt.subarray(ATTRIBUTES)), CRC);
  return rebuilt;
}

/**
 * A batch with no records that holds the offsets [baseOffset, lastOffset]: what the log cleaner
 * leaves where it removed whole batches, so that batches keep following each other without gaps
 * (segments, recovery and followers check that) and a reader moves past the removed offsets.
 */
export function encodeEmptyBatch(options: { baseOffset: number; lastOffset: number; baseTimestamp: number; maxTimestamp: number; partitionLeaderEpoch: number }): Buffer {
  const batch = Buffer.alloc(BATCH_HEADER_BYTES);
  batch.writeBigInt64BE(BigInt(options.baseOffset), BASE_OFFSET);
  batch.writeInt32BE(BATCH_HEADER_BYTES - LOG_OVERHEAD, BATCH_LENGTH);
  batch.writeInt32BE(options.partitionLeaderEpoch, PARTITION_LEADER_EPOCH);
  batch.writeInt8(MAGIC_V2, MAGIC);
  batch.writeInt16BE(0, ATTRIBUTES);
  batch.writeInt32BE(options.lastOffset - options.baseOffset, LAST_OFFSET_DELTA);
  batch.writeBigInt64BE(BigInt(options.baseTimestamp), BASE_TIMESTAMP);
  batch.writeBigInt64BE(BigInt(options.maxTimestamp), MAX_TIMESTAMP);
  batch.writeBigInt64BE(-1n, PRODUCER_ID);
  batch.writeInt16BE(-1, PRODUCER_EPOCH);
  batch.writeInt32BE(-1, BASE_SEQUENCE);
  batch.writeInt32BE(0, RECORD_COUNT);
  batch.writeUInt32BE(crc32c(batch.subarray(ATTRIBUTES)), CRC);
  return batch;
}
