// Kafka's non-flexible primitives (big-endian int16/32/64, strings as an int16 length and UTF-8
// with -1 for null, bytes as an int32 length with -1 for null, arrays as an int32 count), for the
// payloads Kafka defines that way outside the wire protocol: __consumer_offsets records and the
// consumer protocol's subscription and assignment. The encodings themselves live once, in
// @runnel/kafka-protocol; this is the narrower face those payloads use: int64 as a number, errors
// of the caller's own type, and bytes copied out of the record they came from.
import { KafkaProtocolError, KafkaWireReader, KafkaWireWriter } from '@runnel/kafka-protocol';

export class KafkaWriter {
  private readonly writer = new KafkaWireWriter();

  int16(value: number): this {
    this.writer.int16(value);
    return this;
  }

  int32(value: number): this {
    this.writer.int32(value);
    return this;
  }

  int64(value: number): this {
    this.writer.int64(value);
    return this;
  }

  /** A string; null writes length -1. Longer than 32767 bytes of UTF-8 is a KafkaEncodeError. */
  string(value: string | null): this {
    this.writer.string(value, false);
    return this;
  }

  /** Bytes; null writes length -1. */
  bytes(value: Buffer | null): this {
    this.writer.bytes(value, false);
    return this;
  }

  done(): Buffer {
    return this.writer.toBuffer();
  }
}

/**
 * Reads the same primitives, checking every length against what is left; a problem is thrown as
 * `fail(message)` (the caller's error type), the message naming `what` and the field.
 */
export class KafkaReader {
  private readonly reader: KafkaWireReader;

  constructor(
    private readonly buffer: Buffer,
    private readonly what: string,
    private readonly fail: (message: string) => Error,
  ) {
    this.reader = new KafkaWireReader(buffer);
  }

  private read<T>(field: string, read: (reader: KafkaWireReader) => T): T {
    try {
      return read(this.reader);
    } catch (error) {
      if (!(error instanceof KafkaProtocolError)) throw error;
      if (error.truncated) throw this.fail(`${this.what} ends inside ${field} (byte ${error.offset} of ${this.buffer.length})`);
      throw this.fail(`${this.what}: ${field} ${error.problem}`);
    }
  }

  int16(field: string): number {
    return this.read(field, (reader) => reader.int16(field));
  }

  int32(field: string): number {
    return this.read(field, (reader) => reader.int32(field));
  }

  int64(field: string): number {
    const value = this.read(field, (reader) => reader.int64(field));
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) throw this.fail(`${this.what}: ${field} ${value} is out of range`);
    return Number(value);
  }

  nullableString(field: string): string | null {
    return this.read(field, (reader) => reader.string(field, false, true));
  }

  string(field: string): string {
    return this.read(field, (reader) => reader.string(field, false, false)!);
  }

  nullableBytes(field: string): Buffer | null {
    const view = this.read(field, (reader) => reader.bytes(field, false, true));
    return view === null ? null : Buffer.from(view);
  }

  bytes(field: string): Buffer {
    return Buffer.from(this.read(field, (reader) => reader.bytes(field, false, false)!));
  }

  /** An array's entry count: never negative, never more than the bytes left could hold. */
  count(field: string): number {
    const count = this.int32(field);
    if (count < 0 || count > this.reader.remaining) throw this.fail(`${this.what}: ${field} has ${count} entries`);
    return count;
  }

  /** Fails unless every byte was read. */
  end(): void {
    if (this.reader.remaining !== 0) throw this.fail(`${this.what} has ${this.reader.remaining} bytes after its last field`);
  }
}
