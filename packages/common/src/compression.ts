// The compression codecs of record batch v2 (attributes bits 0-2). A compressed batch has its
// whole records section compressed as one payload, framed the way Kafka's producers frame it:
//
//   gzip    RFC 1952, by node:zlib.
//   snappy  raw snappy (what librdkafka writes, and what we write), or snappy-java's stream (what
//           Kafka's JVM producer writes, SnappyOutputStream): an 8-byte magic 0x82 "SNAPPY" 0x00,
//           an i32 version and an i32 compatible version, then chunks of an i32 length and a raw
//           snappy block. A reader must take both, as Kafka's and librdkafka's do.
//   lz4     the LZ4 frame format with independent blocks (Kafka's JVM reader refuses dependent
//           ones). Kafka's old wrong header checksum belongs to magic 0 messages only, which a
//           broker that takes nothing but batch v2 never sees.
//   zstd    standard zstd frames. Kafka's JVM producer streams them, so the frame header often
//           lacks the content size.
//
// Every decompression is bounded: a payload whose records would decompress to more than the
// limit is refused before it is decompressed where its size can be read off it (snappy's length
// preambles, the lengths of an LZ4 frame's sequences, a zstd frame's content size) and at the
// limit otherwise (gzip, zstd frames without a size), so a small batch cannot make a broker or a
// consumer allocate without bound.
import { gunzipSync, gzipSync } from 'node:zlib';
import { compress as zstdCompress, decompress as zstdDecompress, init as loadZstd } from '@bokuweb/zstd-wasm';
import { compressFrameSync as lz4CompressFrame, decompressFrameSync as lz4DecompressFrame } from 'lz4-napi';
import { compressSync as snappyCompress, uncompressSync as snappyUncompress } from 'snappy';
import { CorruptBatchError } from './corruptBatchError.js';

// The zstd codec is WebAssembly, compiled once per process before any batch is read.
await loadZstd();

export const COMPRESSION_CODECS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;
export type CompressionCodec = (typeof COMPRESSION_CODECS)[number];

/**
 * The most bytes a batch's records section may decompress to (64 MiB). Kafka producers keep
 * batches far smaller (batch.size is 16 KiB by default, a request 1 MiB); past this a payload is
 * taken for a decompression bomb and refused as corrupt.
 */
export const MAX_DECOMPRESSED_BATCH_BYTES = 64 * 1024 * 1024;

/** Kafka's default level for zstd (ZstdCompression), also zstd's own default. */
const ZSTD_LEVEL = 3;

function corrupt(codec: CompressionCodec, detail: string): CorruptBatchError {
  return new CorruptBatchError(`${codec}-compressed records do not decompress: ${detail}`);
}

/** `size`: what the payload says, or its blocks add up to; unknown for gzip and size-less zstd, which are stopped at the limit. */
function tooLarge(codec: CompressionCodec, maxBytes: number, size?: string): CorruptBatchError {
  const what = size === undefined ? 'more bytes' : `${size} bytes`;
  return new CorruptBatchError(`${codec}-compressed records would decompress to ${what}, more than the limit of ${maxBytes}`);
}

/** The records section compressed with `codec`, framed as Kafka's readers expect. */
export function compressRecords(codec: Exclude<CompressionCodec, 'none'>, records: Buffer): Buffer {
  switch (codec) {
    case 'gzip':
      return gzipSync(records);
    case 'snappy':
      // The external buffer napi-rs would hand back costs more to collect than the copy.
      return snappyCompress(records, { copyOutputData: true });
    case 'lz4':
      return lz4CompressFrame(records);
    case 'zstd': {
      const compressed = zstdCompress(records, ZSTD_LEVEL);
      return Buffer.from(compressed.buffer, compressed.byteOffset, compressed.byteLength);
    }
  }
}

/**
 * The records section that `payload` holds, compressed with `codec`; throws CorruptBatchError,
 * naming the codec, when it does not decompress or would exceed `maxBytes`.
 */
export function decompressRecords(codec: Exclude<CompressionCodec, 'none'>, payload: Buffer, maxBytes = MAX_DECOMPRESSED_BATCH_BYTES): Buffer {
  switch (codec) {
    case 'gzip':
      return gunzip(payload, maxBytes);
    case 'snappy':
      return payload.length >= XERIAL_HEADER_BYTES && payload.subarray(0, XERIAL_MAGIC.length).equals(XERIAL_MAGIC)
        ? unsnappyXerial(payload, maxBytes)
        : unsnappyBlock(payload, maxBytes);
    case 'lz4':
      return unlz4(payload, maxBytes);
    case 'zstd':
      return unzstd(payload, maxBytes);
  }
}

function gunzip(payload: Buffer, maxBytes: number): Buffer {
  let plain: Buffer;
  try {
    // zlib takes no limit below 1 byte.
    plain = gunzipSync(payload, { maxOutputLength: Math.max(maxBytes, 1) });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge('gzip', maxBytes);
    throw corrupt('gzip', (error as Error).message);
  }
  if (plain.length > maxBytes) throw tooLarge('gzip', maxBytes, String(plain.length));
  return plain;
}

// ---- snappy -----------------------------------------------------------------------------------

const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
/** Magic, version and compatible version. */
const XERIAL_HEADER_BYTES = 16;

/** The uncompressed length a raw snappy block starts with: a little-endian base-128 varint of at most 32 bits. */
function snappyLength(block: Buffer, where: string): number {
  let length = 0;
  for (let i = 0; i < 5; i++) {
    if (i >= block.length) throw corrupt('snappy', `${where}: the length preamble is truncated`);
    const byte = block[i]!;
    length += (byte & 0x7f) * 2 ** (7 * i);
    if ((byte & 0x80) === 0) {
      if (length > 0xffffffff) break;
      return length;
    }
  }
  throw corrupt('snappy', `${where}: the length preamble is not a 32-bit varint`);
}

function unsnappy(block: Buffer, length: number, where: string): Buffer {
  let plain: Buffer;
  try {
    plain = snappyUncompress(block, { asBuffer: true, copyOutputData: true }) as Buffer;
  } catch (error) {
    throw corrupt('snappy', `${where}: ${(error as Error).message}`);
  }
  if (plain.length !== length) throw corrupt('snappy', `${where}: ${plain.length} bytes where its preamble says ${length}`);
  return plain;
}

function unsnappyBlock(payload: Buffer, maxBytes: number): Buffer {
  const length = snappyLength(payload, 'raw block');
  if (length > maxBytes) throw tooLarge('snappy', maxBytes, String(length));
  return unsnappy(payload, length, 'raw block');
}

/** snappy-java's stream; every chunk's length is summed before anything is decompressed, as librdkafka does. */
function unsnappyXerial(payload: Buffer, maxBytes: number): Buffer {
  const chunks: Array<{ block: Buffer; length: number; at: number }> = [];
  let total = 0;
  let at = XERIAL_HEADER_BYTES;
  while (at < payload.length) {
    if (at + 4 > payload.length) throw corrupt('snappy', `snappy-java chunk length at byte ${at} is truncated`);
    const size = payload.readInt32BE(at);
    if (size < 0 || at + 4 + size > payload.length) throw corrupt('snappy', `snappy-java chunk at byte ${at} says ${size} bytes, ${payload.length - at - 4} remain`);
    const block = payload.subarray(at + 4, at + 4 + size);
    const length = snappyLength(block, `snappy-java chunk at byte ${at}`);
    total += length;
    if (total > maxBytes) throw tooLarge('snappy', maxBytes, `at least ${total}`);
    chunks.push({ block, length, at });
    at += 4 + size;
  }
  const records = Buffer.allocUnsafe(total);
  let written = 0;
  for (const { block, length, at: chunkAt } of chunks) written += unsnappy(block, length, `snappy-java chunk at byte ${chunkAt}`).copy(records, written);
  return records;
}

// ---- lz4 --------------------------------------------------------------------------------------

const LZ4_FRAME_MAGIC = 0x184d2204;
const LZ4_VERSION_MASK = 0xc0;
const LZ4_VERSION_01 = 0x40;
const LZ4_BLOCK_CHECKSUM = 0x10;
const LZ4_CONTENT_SIZE = 0x08;
const LZ4_CONTENT_CHECKSUM = 0x04;
const LZ4_DICTIONARY_ID = 0x01;
const LZ4_UNCOMPRESSED_BLOCK = 0x80000000;

/**
 * The bytes an LZ4 block decompresses to, summed from its sequences' literal and match lengths
 * without decompressing it (LZ4 block format: a token whose high nibble is the literal count and
 * low nibble the match length less 4, each nibble of 15 continued by bytes up to one below 255,
 * the literals, a 2-byte match offset; the last sequence has literals only).
 */
function lz4BlockLength(block: Buffer, where: number): number {
  let length = 0;
  let at = 0;
  const extended = (nibble: number): number => {
    let count = nibble;
    if (nibble < 15) return count;
    for (;;) {
      if (at >= block.length) throw corrupt('lz4', `block at byte ${where} ends inside a length`);
      const byte = block[at++]!;
      count += byte;
      if (byte !== 255) return count;
    }
  };
  while (at < block.length) {
    const token = block[at++]!;
    const literals = extended(token >> 4);
    at += literals;
    length += literals;
    if (at === block.length) return length;
    if (at + 2 > block.length) throw corrupt('lz4', `block at byte ${where} ends inside a sequence`);
    at += 2;
    length += extended(token & 0x0f) + 4;
  }
  throw corrupt('lz4', `block at byte ${where} does not end with literals`);
}

/**
 * The bytes the single LZ4 frame `payload` decompresses to, counted from its blocks without
 * decompressing them. The frame must fill the payload, so the decoder cannot go on into a second.
 */
function lz4FrameLength(payload: Buffer): number {
  if (payload.length < 7 || payload.readUInt32LE(0) !== LZ4_FRAME_MAGIC) throw corrupt('lz4', 'the payload does not start with an LZ4 frame');
  const flags = payload[4]!;
  if ((flags & LZ4_VERSION_MASK) !== LZ4_VERSION_01) throw corrupt('lz4', `frame version bits ${(flags & LZ4_VERSION_MASK) >> 6}, expected 1`);
  const blockSizeId = (payload[5]! >> 4) & 0x07;
  if (blockSizeId < 4) throw corrupt('lz4', `block maximum size id ${blockSizeId}, expected 4-7`);
  const maxBlockBytes = 1 << (2 * blockSizeId + 8);
  const blockChecksumBytes = (flags & LZ4_BLOCK_CHECKSUM) !== 0 ? 4 : 0;
  let at = 6 + ((flags & LZ4_CONTENT_SIZE) !== 0 ? 8 : 0) + ((flags & LZ4_DICTIONARY_ID) !== 0 ? 4 : 0) + 1;
  let length = 0;
  for (;;) {
    if (at + 4 > payload.length) throw corrupt('lz4', `block header at byte ${at} is truncated`);
    const word = payload.readUInt32LE(at);
    if (word === 0) break;
    const size = word & ~LZ4_UNCOMPRESSED_BLOCK;
    if (size > maxBlockBytes || at + 4 + size > payload.length) throw corrupt('lz4', `block at byte ${at} says ${size} bytes, the frame's blocks hold ${maxBlockBytes} and ${payload.length - at - 4} remain`);
    length += (word & LZ4_UNCOMPRESSED_BLOCK) !== 0 ? size : lz4BlockLength(payload.subarray(at + 4, at + 4 + size), at);
    at += 4 + size + blockChecksumBytes;
  }
  at += 4 + ((flags & LZ4_CONTENT_CHECKSUM) !== 0 ? 4 : 0);
  if (at !== payload.length) throw corrupt('lz4', `the frame ends at byte ${at} of a ${payload.length}-byte payload`);
  return length;
}

function unlz4(payload: Buffer, maxBytes: number): Buffer {
  const length = lz4FrameLength(payload);
  if (length > maxBytes) throw tooLarge('lz4', maxBytes, String(length));
  try {
    return lz4DecompressFrame(payload);
  } catch (error) {
    throw corrupt('lz4', (error as Error).message);
  }
}

// ---- zstd -------------------------------------------------------------------------------------

const ZSTD_FRAME_MAGIC = 0xfd2fb528;
const ZSTD_SINGLE_SEGMENT = 0x20;
/** zstd's ZSTD_error_dstSize_tooSmall, as the WebAssembly build reports it. */
const ZSTD_DESTINATION_TOO_SMALL = -70;

/** The content size the first frame's header states, or null when it states none (RFC 8878, 3.1.1.1). */
function zstdContentSize(payload: Buffer): number | null {
  if (payload.length < 5 || payload.readUInt32LE(0) !== ZSTD_FRAME_MAGIC) throw corrupt('zstd', 'the payload does not start with a zstd frame');
  const descriptor = payload[4]!;
  const sizeFlag = descriptor >> 6;
  const singleSegment = (descriptor & ZSTD_SINGLE_SEGMENT) !== 0;
  if (sizeFlag === 0 && !singleSegment) return null;
  const at = 5 + (singleSegment ? 0 : 1) + [0, 1, 2, 4][descriptor & 0x03]!;
  const sizeBytes = [1, 2, 4, 8][sizeFlag]!;
  if (at + sizeBytes > payload.length) throw corrupt('zstd', 'the frame header is truncated');
  switch (sizeBytes) {
    case 1:
      return payload[at]!;
    case 2:
      return payload.readUInt16LE(at) + 256;
    case 4:
      return payload.readUInt32LE(at);
    default:
      return Number(payload.readBigUInt64LE(at));
  }
}

function unzstd(payload: Buffer, maxBytes: number): Buffer {
  const stated = zstdContentSize(payload);
  if (stated !== null && stated > maxBytes) throw tooLarge('zstd', maxBytes, String(stated));
  let plain: Uint8Array;
  try {
    // A frame that states no size is decompressed into a maxBytes buffer, which bounds it.
    plain = zstdDecompress(payload, { defaultHeapSize: maxBytes });
  } catch (error) {
    const code = Number(/code (-?\d+)/.exec((error as Error).message)?.[1]);
    if (code === ZSTD_DESTINATION_TOO_SMALL && stated === null) throw tooLarge('zstd', maxBytes);
    if (code === ZSTD_DESTINATION_TOO_SMALL) throw corrupt('zstd', `more bytes than the ${stated} its frame header states`);
    throw corrupt('zstd', Number.isNaN(code) ? (error as Error).message : `zstd error ${-code}`);
  }
  return Buffer.from(plain.buffer, plain.byteOffset, plain.byteLength);
}
