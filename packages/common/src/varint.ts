// Zig-zag variable-length integers as the Kafka record format uses them (protobuf's sint32/sint64).
// Values are JS numbers: exact up to 2^53, which covers offsets, lengths and timestamp deltas.

/** Bytes that `writeVarint` needs for `value`. */
export function varintSize(value: number): number {
  let unsigned = value >= 0 ? value * 2 : -value * 2 - 1;
  let size = 1;
  while (unsigned >= 128) {
    unsigned = Math.floor(unsigned / 128);
    size++;
  }
  return size;
}

/** Writes `value` zig-zag encoded at `offset`; returns the offset after it. */
export function writeVarint(buffer: Buffer, offset: number, value: number): number {
  let unsigned = value >= 0 ? value * 2 : -value * 2 - 1;
  if (unsigned < 2 ** 31) {
    while (unsigned >= 128) {
      buffer[offset++] = (unsigned & 0x7f) | 0x80;
      unsigned >>>= 7;
    }
    buffer[offset++] = unsigned;
    return offset;
  }
  while (unsigned >= 128) {
    buffer[offset++] = (unsigned % 128) | 0x80;
    unsigned = Math.floor(unsigned / 128);
  }
  buffer[offset++] = unsigned;
  return offset;
}

export class VarintError extends Error {}

/** Reads a zig-zag varint at `offset`; `next` is set to the offset after it. At most 10 bytes, as in Kafka. */
export function readVarint(buffer: Buffer, offset: number, cursor: { next: number }): number {
  let unsigned = 0;
  let multiplier = 1;
  for (let i = 0; i < 10; i++) {
    if (offset >= buffer.length) throw new VarintError('varint runs past the end of the buffer');
    const byte = buffer[offset++]!;
    unsigned += (byte & 0x7f) * multiplier;
    if ((byte & 0x80) === 0) {
      cursor.next = offset;
      // zig-zag decode without 32-bit bitwise operators, which would truncate large values
      return unsigned % 2 === 0 ? unsigned / 2 : -(unsigned + 1) / 2;
    }
    multiplier *= 128;
  }
  throw new VarintError('varint longer than 10 bytes');
}
