import { describe, expect, it } from 'vitest';
import { defaultPartition, murmur2, toPositive } from '../src/index.js';

// Kafka's UtilsTest.testMurmur2 (clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java).
const KAFKA_VECTORS: Array<[string, number]> = [
  ['21', -973932308],
  ['foobar', -790332482],
  ['a-little-bit-long-string', -985981536],
  ['a-little-bit-longer-string', -1486304829],
  ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
  ['abc', 479470107],
];

describe('murmur2', () => {
  it.each(KAFKA_VECTORS)('murmur2(%j) is %d as in Kafka', (input, expected) => {
    expect(murmur2(Buffer.from(input, 'utf8'))).toBe(expected);
  });

  it('covers every tail length and the empty key', () => {
    // Tail lengths 0..3 take different branches; the empty key is Kafka's seed mixed with 0.
    expect(murmur2(Buffer.alloc(0))).toBe(275646681);
    const hashes = new Set(['a', 'ab', 'abc', 'abcd', 'abcde'].map((input) => murmur2(Buffer.from(input))));
    expect(hashes.size).toBe(5);
    for (const hash of hashes) expect(Number.isInteger(hash) && hash >= -(2 ** 31) && hash < 2 ** 31).toBe(true);
  });

  it('toPositive clears the sign bit (MIN_VALUE becomes 0, unlike Math.abs)', () => {
    expect(toPositive(-2147483648)).toBe(0);
    expect(toPositive(-1)).toBe(2147483647);
    expect(toPositive(12345)).toBe(12345);
  });

  it('defaultPartition is toPositive(murmur2(key)) % n', () => {
    // foobar: -790332482 & 0x7fffffff = 1357151166; % 50 = 16 (the value kafka-python pins too).
    expect(defaultPartition(Buffer.from('foobar'), 50)).toBe(16);
    expect(defaultPartition(Buffer.from('21'), 7)).toBe((-973932308 & 0x7fffffff) % 7);
    expect(() => defaultPartition(Buffer.from('x'), 0)).toThrow(RangeError);
  });
});
