// The primitive encodings, against byte values worked out from the protocol guide's type table.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { KafkaEncodeError, KafkaProtocolError, KafkaWireReader, KafkaWireWriter } from '../src/index.js';

const hex = (write: (writer: KafkaWireWriter) => unknown): string => {
  const writer = new KafkaWireWriter();
  write(writer);
  return writer.toBuffer().toString('hex');
};
const reader = (bytes: string): KafkaWireReader => new KafkaWireReader(Buffer.from(bytes, 'hex'));

describe('varints', () => {
  it('writes unsigned varints seven bits at a time, low first', () => {
    expect([0, 1, 127, 128, 300, 16384, 2 ** 32 - 1].map((n) => hex((w) => w.uvarint(n)))).toEqual(['00', '01', '7f', '8001', 'ac02', '808001', 'ffffffff0f']);
  });

  it('zig-zags signed varints and varlongs', () => {
    expect([0, -1, 1, -2, 2147483647, -2147483648].map((n) => hex((w) => w.varint(n)))).toEqual(['00', '01', '02', '03', 'feffffff0f', 'ffffffff0f']);
    expect([0n, -1n, 2n ** 63n - 1n, -(2n ** 63n)].map((n) => hex((w) => w.varlong(n)))).toEqual(['00', '01', 'feffffffffffffffff01', 'ffffffffffffffffff01']);
  });

  it('round-trips every 32-bit varint and 64-bit varlong', () => {
    fc.assert(
      fc.property(fc.integer({ min: -0x80000000, max: 0x7fffffff }), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), fc.integer({ min: 0, max: 0xffffffff }), (int, long, unsigned) => {
        const bytes = new KafkaWireWriter().varint(int).varlong(long).uvarint(unsigned).toBuffer();
        const read = new KafkaWireReader(bytes);
        expect([read.varint('i'), read.varlong('l'), read.uvarint('u')]).toEqual([int, long, unsigned]);
        read.expectEnd('the values');
      }),
    );
  });

  it('refuses varints that are too long, too large, or cut short', () => {
    expect(() => reader('ffffffff10').uvarint('count')).toThrow('count: unsigned varint is larger than 32 bits (at byte 0)');
    expect(() => reader('8080808080').uvarint('count')).toThrow('count: unsigned varint is longer than 5 bytes (at byte 0)');
    expect(() => reader('ffffffffffffffffff7f').varlong('delta')).toThrow('delta: varlong is larger than 64 bits (at byte 0)');
    expect(() => reader('80808080808080808080').varlong('delta')).toThrow('delta: varlong is longer than 10 bytes (at byte 0)');
    expect(() => reader('8080').uvarint('count')).toThrow('count: ends inside an unsigned varint (at byte 0)');
  });
});

describe('fixed-width values', () => {
  it('writes big-endian integers and reads them back', () => {
    expect(hex((w) => w.int8(-2).int16(-2).uint16(65535).int32(-2).uint32(2 ** 32 - 1).int64(-2n).bool(true))).toBe(
      'fe' + 'fffe' + 'ffff' + 'fffffffe' + 'ffffffff' + 'fffffffffffffffe' + '01',
    );
    const read = reader('fe' + 'fffe' + 'ffff' + 'fffffffe' + 'ffffffff' + 'fffffffffffffffe' + '07');
    expect([read.int8(''), read.int16(''), read.uint16(''), read.int32(''), read.uint32(''), read.int64(''), read.bool('')]).toEqual([-2, -2, 65535, -2, 2 ** 32 - 1, -2n, true]);
  });

  it('writes a float64 as IEEE 754, big-endian', () => {
    expect(hex((w) => w.float64(1.5))).toBe('3ff8000000000000');
    expect(reader('3ff8000000000000').float64('ratio')).toBe(1.5);
  });

  it('writes a UUID as its 16 bytes in order and reads it back in lowercase', () => {
    const uuid = '0123456789ABCDEF0123456789abcdef'.replace(/(.{8})(.{4})(.{4})(.{4})(.{12})/, '$1-$2-$3-$4-$5');
    expect(hex((w) => w.uuid(uuid))).toBe('0123456789abcdef0123456789abcdef');
    expect(reader('0123456789abcdef0123456789abcdef').uuid('topicId')).toBe(uuid.toLowerCase());
  });

  it('refuses values outside their type', () => {
    const writer = new KafkaWireWriter();
    for (const write of [() => writer.int8(128), () => writer.int16(-32769), () => writer.uint16(-1), () => writer.int32(1.5), () => writer.uint32(2 ** 32), () => writer.int64(2 ** 53), () => writer.bool(1), () => writer.float64('1')]) {
      expect(write).toThrow(KafkaEncodeError);
    }
    expect(writer.length).toBe(0);
  });

  it('refuses to read past the end, naming the field and offset', () => {
    const read = reader('0001');
    read.int8('first');
    expect(() => read.int32('second')).toThrow(new KafkaProtocolError('needs 4 bytes but only 1 remain', 'second', 1, true));
  });
});

describe('length-prefixed values', () => {
  it('writes classic and compact strings, and their nulls', () => {
    expect(hex((w) => w.string('ab', false).string(null, false).string('ab', true).string(null, true).string('', true))).toBe('0002' + '6162' + 'ffff' + '03' + '6162' + '00' + '01');
    expect(hex((w) => w.bytes(Buffer.from('ab'), false).bytes(null, false).bytes(Buffer.from('ab'), true).bytes(null, true))).toBe('00000002' + '6162' + 'ffffffff' + '03' + '6162' + '00');
    expect(hex((w) => w.string('é', true))).toBe('03' + 'c3a9'); // the length counts UTF-8 bytes, not characters
  });

  it('reads nulls only where allowed, and no other negative length', () => {
    expect(reader('ffff').string('rack', false, true)).toBeNull();
    expect(reader('00').bytes('records', true, true)).toBeNull();
    expect(() => reader('ffff').string('host', false, false)).toThrow('host: is null, which this version does not allow (at byte 0)');
    expect(() => reader('fffe').string('host', false, true)).toThrow('host: length -2 is negative (at byte 0)');
    expect(() => reader('fffffffe').arrayCount('topics', false, true, 1)).toThrow('topics: length -2 is negative (at byte 0)');
  });

  it('refuses a string longer than Kafka allows even when the bytes are there', () => {
    const long = Buffer.concat([Buffer.from('8000', 'hex'), Buffer.alloc(0x8000, 0x61)]);
    expect(() => new KafkaWireReader(long).string('name', false, false)).toThrow('name: length -32768 is negative (at byte 0)');
    const compact = Buffer.concat([Buffer.from('818002', 'hex'), Buffer.alloc(0x8000, 0x61)]); // 32768 + 1
    expect(() => new KafkaWireReader(compact).string('name', true, false)).toThrow('name: string length 32768 is longer than 32767 (at byte 0)');
  });

  it('keeps large blobs as their own chunk and still produces one contiguous buffer', () => {
    const blob = Buffer.alloc(10_000, 7);
    const bytes = new KafkaWireWriter().int16(1).bytes(blob, false).int16(2).toBuffer();
    const read = new KafkaWireReader(bytes);
    expect([read.int16(''), read.bytes('', false, false), read.int16('')]).toEqual([1, blob, 2]);
  });

  it('frames what it wrote behind an int32 size', () => {
    expect(new KafkaWireWriter().int16(5).toFrame().toString('hex')).toBe('00000002' + '0005');
  });
});
