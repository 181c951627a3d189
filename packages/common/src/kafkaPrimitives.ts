// The fixed-width primitives of Kafka's non-flexible message encodings (big-endian int16/32/64,
// strings as an int16 length and UTF-8 with -1 for null, bytes as an int32 length with -1 for null,
// arrays as an int32 count), for the payloads Kafka defines that way: __consumer_offsets records,
// the consumer protocol's subscription and assignment, and the wire protocol to come.

export class KafkaWriter {
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

  /** A string; null writes length -1. Longer than 32767 bytes of UTF-8 is a RangeError. */
  string(value: string | null): this {
    if (value === null) return this.int16(-1);
    const bytes = Buffer.from(value, 'utf8');
    if (bytes.length > 0x7fff) throw new RangeError(`a string of ${bytes.length} bytes is longer than 32767`);
    this.int16(bytes.length);
    this.chunks.push(bytes);
    return this;
  }

  /** Bytes; null writes length -1. */
  bytes(value: Buffer | null): this {
    if (value === null) return this.int32(-1);
    this.int32(value.length);
    this.chunks.push(value);
    return this;
  }

  done(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/**
 * Reads the same primitives, checking every length against what is left; a problem is thrown as
 * `fail(message)` (the caller's error type), the message naming `what` and the field.
 */
export class KafkaReader {
  private position = 0;

  constructor(
    private readonly buffer: Buffer,
    private readonly what: string,
    private readonly fail: (message: string) => Error,
  ) {}

  private need(bytes: number, field: string): void {
    if (this.position + bytes > this.buffer.length) throw this.fail(`${this.what} ends inside ${field} (byte ${this.position} of ${this.buffer.length})`);
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
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) throw this.fail(`${this.what}: ${field} ${value} is out of range`);
    return Number(value);
  }

  nullableString(field: string): string | null {
    const length = this.int16(field);
    if (length === -1) return null;
    if (length < 0) throw this.fail(`${this.what}: ${field} has length ${length}`);
    this.need(length, field);
    const value = this.buffer.toString('utf8', this.position, this.position + length);
    this.position += length;
    return value;
  }

  string(field: string): string {
    const value = this.nullableString(field);
    if (value === null) throw this.fail(`${this.what}: ${field} is null`);
    return value;
  }

  nullableBytes(field: string): Buffer | null {
    const length = this.int32(field);
    if (length === -1) return null;
    if (length < 0) throw this.fail(`${this.what}: ${field} has length ${length}`);
    this.need(length, field);
    const value = Buffer.from(this.buffer.subarray(this.position, this.position + length));
    this.position += length;
    return value;
  }

  bytes(field: string): Buffer {
    const value = this.nullableBytes(field);
    if (value === null) throw this.fail(`${this.what}: ${field} is null`);
    return value;
  }

  /** An array's entry count: never negative, never more than the bytes left could hold. */
  count(field: string): number {
    const count = this.int32(field);
    if (count < 0 || count > this.buffer.length) throw this.fail(`${this.what}: ${field} has ${count} entries`);
    return count;
  }

  /** Fails unless every byte was read. */
  end(): void {
    if (this.position !== this.buffer.length) throw this.fail(`${this.what} has ${this.buffer.length - this.position} bytes after its last field`);
  }
}
