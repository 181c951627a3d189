// Reads Kafka's primitive types, in both the classic encoding (int16 string lengths, int32 byte
// and array lengths) and the flexible one (KIP-482: unsigned varint lengths stored as N+1, 0 for
// null). Every read is checked against the bytes left before anything is read or allocated, so a
// truncated or garbled message fails with a KafkaProtocolError naming the field and byte offset,
// and a garbage length can never make the reader allocate more than the buffer it was given.
import { KafkaProtocolError } from './errors.js';

/** Kafka's strings are at most 32767 bytes of UTF-8, in both encodings (see the generated readers). */
export const MAX_STRING_BYTES = 0x7fff;

const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'));

export class KafkaWireReader {
  private position: number;
  private end: number;

  /**
   * Reads `buffer` from `start` to `end`. Offsets in errors are counted from `origin`, normally
   * the start of the message, so they match a hex dump of what arrived.
   */
  constructor(
    private readonly buffer: Buffer,
    start = 0,
    end = buffer.length,
    private readonly origin = start,
  ) {
    this.position = start;
    this.end = end;
  }

  /** The offset of the next byte, counted from the origin. */
  get offset(): number {
    return this.position - this.origin;
  }

  get remaining(): number {
    return this.end - this.position;
  }

  fail(problem: string, field: string, at = this.position, truncated = false): KafkaProtocolError {
    return new KafkaProtocolError(problem, field, at - this.origin, truncated);
  }

  private need(bytes: number, field: string): void {
    if (bytes > this.end - this.position) {
      throw this.fail(`needs ${bytes} bytes but only ${this.end - this.position} remain`, field, this.position, true);
    }
  }

  int8(field: string): number {
    this.need(1, field);
    return this.buffer.readInt8(this.position++);
  }

  /** Kafka reads any non-zero byte as true. */
  bool(field: string): boolean {
    this.need(1, field);
    return this.buffer[this.position++] !== 0;
  }

  int16(field: string): number {
    this.need(2, field);
    const value = this.buffer.readInt16BE(this.position);
    this.position += 2;
    return value;
  }

  uint16(field: string): number {
    this.need(2, field);
    const value = this.buffer.readUInt16BE(this.position);
    this.position += 2;
    return value;
  }

  int32(field: string): number {
    this.need(4, field);
    const value = this.buffer.readInt32BE(this.position);
    this.position += 4;
    return value;
  }

  uint32(field: string): number {
    this.need(4, field);
    const value = this.buffer.readUInt32BE(this.position);
    this.position += 4;
    return value;
  }

  int64(field: string): bigint {
    this.need(8, field);
    const value = this.buffer.readBigInt64BE(this.position);
    this.position += 8;
    return value;
  }

  float64(field: string): number {
    this.need(8, field);
    const value = this.buffer.readDoubleBE(this.position);
    this.position += 8;
    return value;
  }

  /** A UUID as 16 big-endian bytes, returned in the canonical lowercase 8-4-4-4-12 form. */
  uuid(field: string): string {
    this.need(16, field);
    const b = this.buffer;
    const p = this.position;
    this.position += 16;
    let text = '';
    for (let i = 0; i < 16; i++) {
      if (i === 4 || i === 6 || i === 8 || i === 10) text += '-';
      text += HEX[b[p + i]!];
    }
    return text;
  }

  /** An unsigned varint of at most 32 bits (5 bytes), as Kafka uses for lengths, counts and tags. */
  uvarint(field: string): number {
    const start = this.position;
    let value = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (this.position >= this.end) throw this.fail('ends inside an unsigned varint', field, start, true);
      const byte = this.buffer[this.position++]!;
      value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) {
        if (value > 0xffffffff) throw this.fail('unsigned varint is larger than 32 bits', field, start);
        return value;
      }
    }
    throw this.fail('unsigned varint is longer than 5 bytes', field, start);
  }

  /** A zig-zag varint of at most 32 bits. */
  varint(field: string): number {
    const unsigned = this.uvarint(field);
    return unsigned % 2 === 0 ? unsigned / 2 : -(unsigned + 1) / 2;
  }

  /** A zig-zag varlong of at most 64 bits (10 bytes). */
  varlong(field: string): bigint {
    const start = this.position;
    let unsigned = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.position >= this.end) throw this.fail('ends inside a varlong', field, start, true);
      const byte = this.buffer[this.position++]!;
      unsigned |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) {
        if (unsigned > 0xffffffffffffffffn) throw this.fail('varlong is larger than 64 bits', field, start);
        return (unsigned >> 1n) ^ -(unsigned & 1n);
      }
    }
    throw this.fail('varlong is longer than 10 bytes', field, start);
  }

  /**
   * The length prefix of a string, bytes, records or array: int16 or int32 in the classic
   * encoding, N+1 as an unsigned varint in the compact one. -1 means null.
   */
  private length(field: string, prefix: 'int16' | 'int32' | 'compact'): number {
    if (prefix === 'compact') return this.uvarint(field) - 1;
    return prefix === 'int16' ? this.int16(field) : this.int32(field);
  }

  /** A nullable string; `compact` chooses the flexible encoding. Null only where `nullable`. */
  string(field: string, compact: boolean, nullable: boolean): string | null {
    const start = this.position;
    const length = this.length(field, compact ? 'compact' : 'int16');
    if (length < 0) return this.nullOrFail(length, field, nullable, start);
    if (length > MAX_STRING_BYTES) throw this.fail(`string length ${length} is longer than ${MAX_STRING_BYTES}`, field, start);
    this.need(length, field);
    const value = this.buffer.toString('utf8', this.position, this.position + length);
    this.position += length;
    return value;
  }

  /**
   * Nullable bytes (also the `records` type, whose classic length is an int32 as for bytes). The
   * result is a view of the input buffer, not a copy: Produce's record batches are passed on
   * without copying them.
   */
  bytes(field: string, compact: boolean, nullable: boolean): Buffer | null {
    const start = this.position;
    const length = this.length(field, compact ? 'compact' : 'int32');
    if (length < 0) return this.nullOrFail(length, field, nullable, start);
    return this.take(length, field);
  }

  /**
   * An array's element count (null for a null array), checked against the bytes left: each element
   * takes at least `minElementBytes`, so a count that could not fit fails before any element is read.
   */
  arrayCount(field: string, compact: boolean, nullable: boolean, minElementBytes: number): number | null {
    const start = this.position;
    const count = this.length(field, compact ? 'compact' : 'int32');
    if (count < 0) return this.nullOrFail(count, field, nullable, start);
    if (count * minElementBytes > this.end - this.position) {
      throw this.fail(`array of ${count} entries cannot fit in the ${this.end - this.position} bytes that remain`, field, start);
    }
    return count;
  }

  private nullOrFail(length: number, field: string, nullable: boolean, start: number): null {
    if (length !== -1) throw this.fail(`length ${length} is negative`, field, start);
    if (!nullable) throw this.fail('is null, which this version does not allow', field, start);
    return null;
  }

  /** The next `length` bytes, as a view of the input buffer. */
  take(length: number, field: string): Buffer {
    this.need(length, field);
    const value = this.buffer.subarray(this.position, this.position + length);
    this.position += length;
    return value;
  }

  /**
   * Runs `read` over exactly the next `length` bytes (a tagged field's value) and fails if it reads
   * less; it cannot read more, since the reader's end is moved to the value's end meanwhile.
   */
  within<T>(length: number, field: string, read: () => T): T {
    this.need(length, field);
    const outerEnd = this.end;
    const valueEnd = this.position + length;
    this.end = valueEnd;
    try {
      const value = read();
      if (this.position !== valueEnd) throw this.fail(`leaves ${valueEnd - this.position} of its ${length} bytes unread`, field);
      return value;
    } finally {
      this.end = outerEnd;
    }
  }

  /** Fails unless every byte was read: trailing bytes mean the sender used another layout. */
  expectEnd(what: string): void {
    if (this.position !== this.end) throw this.fail(`${this.end - this.position} bytes follow the end of ${what}`, '');
  }
}
