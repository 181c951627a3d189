// Writes Kafka's primitive types in both encodings (see wireReader.ts). Values are checked
// against their type's range as they are written; a bad one is a KafkaEncodeError, whose path the
// message codec fills in on the way out.
import { KafkaEncodeError } from './errors.js';
import { MAX_STRING_BYTES } from './wireReader.js';

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
/** Blobs from this size on are kept as their own chunk rather than copied into the scratch buffer. */
const SEPARATE_CHUNK_BYTES = 4096;
const FIRST_SCRATCH_BYTES = 512;
const MAX_SCRATCH_BYTES = 64 * 1024;

function integer(value: unknown, min: number, max: number, type: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new KafkaEncodeError(`${describe(value)} is not a valid ${type}`);
  }
  return value;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'bigint') return `${value}n`;
  if (value === null || value === undefined || typeof value === 'number' || typeof value === 'boolean') return String(value);
  return Buffer.isBuffer(value) ? `a Buffer of ${value.length} bytes` : `a ${typeof value}`;
}

export class KafkaWireWriter {
  private readonly chunks: Buffer[] = [];
  private scratch = Buffer.allocUnsafe(FIRST_SCRATCH_BYTES);
  private position = 0;
  private flushedBytes = 0;

  /** Bytes written so far. */
  get length(): number {
    return this.flushedBytes + this.position;
  }

  private room(bytes: number): void {
    if (this.position + bytes <= this.scratch.length) return;
    this.flush();
    this.scratch = Buffer.allocUnsafe(Math.max(bytes, Math.min(this.scratch.length * 2, MAX_SCRATCH_BYTES)));
  }

  private flush(): void {
    if (this.position === 0) return;
    this.chunks.push(this.scratch.subarray(0, this.position));
    this.flushedBytes += this.position;
    this.scratch = this.scratch.subarray(this.position);
    this.position = 0;
  }

  int8(value: unknown): this {
    this.room(1);
    this.scratch.writeInt8(integer(value, -0x80, 0x7f, 'int8'), this.position++);
    return this;
  }

  bool(value: unknown): this {
    if (typeof value !== 'boolean') throw new KafkaEncodeError(`${describe(value)} is not a boolean`);
    this.room(1);
    this.scratch[this.position++] = value ? 1 : 0;
    return this;
  }

  int16(value: unknown): this {
    this.room(2);
    this.position = this.scratch.writeInt16BE(integer(value, -0x8000, 0x7fff, 'int16'), this.position);
    return this;
  }

  uint16(value: unknown): this {
    this.room(2);
    this.position = this.scratch.writeUInt16BE(integer(value, 0, 0xffff, 'uint16'), this.position);
    return this;
  }

  int32(value: unknown): this {
    this.room(4);
    this.position = this.scratch.writeInt32BE(integer(value, -0x80000000, 0x7fffffff, 'int32'), this.position);
    return this;
  }

  uint32(value: unknown): this {
    this.room(4);
    this.position = this.scratch.writeUInt32BE(integer(value, 0, 0xffffffff, 'uint32'), this.position);
    return this;
  }

  /** An int64 from a bigint, or from a number when it is a safe integer. */
  int64(value: unknown): this {
    this.room(8);
    this.position = this.scratch.writeBigInt64BE(int64Of(value), this.position);
    return this;
  }

  float64(value: unknown): this {
    if (typeof value !== 'number') throw new KafkaEncodeError(`${describe(value)} is not a float64`);
    this.room(8);
    this.position = this.scratch.writeDoubleBE(value, this.position);
    return this;
  }

  /** A UUID given in the 8-4-4-4-12 hex form, written as 16 big-endian bytes. */
  uuid(value: unknown): this {
    if (typeof value !== 'string' || !UUID_PATTERN.test(value)) throw new KafkaEncodeError(`${describe(value)} is not a UUID (8-4-4-4-12 hex digits)`);
    this.room(16);
    this.position += this.scratch.write(value.replaceAll('-', ''), this.position, 16, 'hex');
    return this;
  }

  uvarint(value: number): this {
    integer(value, 0, 0xffffffff, 'unsigned varint');
    this.room(5);
    let rest = value;
    while (rest >= 0x80) {
      this.scratch[this.position++] = (rest & 0x7f) | 0x80;
      rest = Math.floor(rest / 0x80);
    }
    this.scratch[this.position++] = rest;
    return this;
  }

  varint(value: unknown): this {
    const signed = integer(value, -0x80000000, 0x7fffffff, 'varint');
    return this.uvarint(signed >= 0 ? signed * 2 : -signed * 2 - 1);
  }

  varlong(value: unknown): this {
    const signed = int64Of(value);
    let rest = signed >= 0n ? signed << 1n : (-signed << 1n) - 1n;
    this.room(10);
    while (rest >= 0x80n) {
      this.scratch[this.position++] = Number(rest & 0x7fn) | 0x80;
      rest >>= 7n;
    }
    this.scratch[this.position++] = Number(rest);
    return this;
  }

  /** A length prefix (string, bytes, array): the classic int16/int32, or N+1 as an unsigned varint. */
  private lengthPrefix(length: number, prefix: 'int16' | 'int32' | 'compact'): this {
    if (prefix === 'compact') return this.uvarint(length + 1);
    return prefix === 'int16' ? this.int16(length) : this.int32(length);
  }

  /** A string, or null written as length -1 (classic) or 0 (compact). */
  string(value: string | null, compact: boolean): this {
    if (value === null) return this.lengthPrefix(-1, compact ? 'compact' : 'int16');
    if (typeof value !== 'string') throw new KafkaEncodeError(`${describe(value)} is not a string`);
    const byteLength = Buffer.byteLength(value, 'utf8');
    if (byteLength > MAX_STRING_BYTES) throw new KafkaEncodeError(`a string of ${byteLength} bytes is longer than ${MAX_STRING_BYTES}`);
    this.lengthPrefix(byteLength, compact ? 'compact' : 'int16');
    this.room(byteLength);
    this.position += this.scratch.write(value, this.position, byteLength, 'utf8');
    return this;
  }

  /** Bytes (or records), or null written as length -1 (classic) or 0 (compact). */
  bytes(value: Uint8Array | null, compact: boolean): this {
    if (value === null) return this.lengthPrefix(-1, compact ? 'compact' : 'int32');
    if (!(value instanceof Uint8Array)) throw new KafkaEncodeError(`${describe(value)} is not a Buffer`);
    this.lengthPrefix(value.length, compact ? 'compact' : 'int32');
    return this.raw(value);
  }

  /** An array's element count, or null written as -1 (classic) or 0 (compact). */
  arrayLength(count: number | null, compact: boolean): this {
    return this.lengthPrefix(count ?? -1, compact ? 'compact' : 'int32');
  }

  /** Bytes as they are, without a length. Large ones are referenced, not copied, until `toBuffer`. */
  raw(bytes: Uint8Array): this {
    if (bytes.length >= SEPARATE_CHUNK_BYTES) {
      this.flush();
      this.chunks.push(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
      this.flushedBytes += bytes.length;
      return this;
    }
    this.room(bytes.length);
    this.scratch.set(bytes, this.position);
    this.position += bytes.length;
    return this;
  }

  /** Everything written, as one buffer. */
  toBuffer(): Buffer {
    this.flush();
    return this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.flushedBytes);
  }

  /** Everything written, behind Kafka's 4-byte size prefix: a frame ready for the socket. */
  toFrame(): Buffer {
    this.flush();
    if (this.flushedBytes > 0x7fffffff) throw new KafkaEncodeError(`a frame of ${this.flushedBytes} bytes does not fit Kafka's int32 size prefix`);
    const prefix = Buffer.allocUnsafe(4);
    prefix.writeInt32BE(this.flushedBytes);
    return Buffer.concat([prefix, ...this.chunks], 4 + this.flushedBytes);
  }
}

function int64Of(value: unknown): bigint {
  if (typeof value === 'bigint') {
    if (value < INT64_MIN || value > INT64_MAX) throw new KafkaEncodeError(`${value}n is not a valid int64`);
    return value;
  }
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  throw new KafkaEncodeError(`${describe(value)} is not a valid int64 (a bigint, or a number that is a safe integer)`);
}
