// Every decoder against random and damaged input: it must return a message or throw a
// KafkaProtocolError, never another exception, never loop without consuming input, and never
// allocate more than the input it was given however large a garbage length claims to be.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  KAFKA_APIS,
  KafkaProtocolError,
  REQUEST_HEADER,
  RESPONSE_HEADER,
  decodeMessage,
  decodeRequest,
  decodeResponse,
  encodeMessage,
  encodeRequest,
  parseVersions,
  type ApiName,
  type MessageSpec,
} from '../src/index.js';
import { messageArbitrary } from './arbitraries.js';

const specs: MessageSpec[] = [...Object.values(KAFKA_APIS).flatMap((api) => [api.request, api.response]), REQUEST_HEADER, RESPONSE_HEADER];
const cases = specs.flatMap((spec) => {
  const { min, max } = parseVersions(spec.validVersions);
  return Array.from({ length: max - min + 1 }, (_, i) => [`${spec.name} v${min + i}`, spec, min + i] as const);
});

/** The largest Buffer any decoder asked for since the last reset: the allocation guard. */
let largestAllocation = 0;
const originals = { alloc: Buffer.alloc, allocUnsafe: Buffer.allocUnsafe, allocUnsafeSlow: Buffer.allocUnsafeSlow };

beforeEach(() => {
  for (const name of ['alloc', 'allocUnsafe', 'allocUnsafeSlow'] as const) {
    const original = originals[name] as (size: number, ...rest: unknown[]) => Buffer;
    (Buffer as unknown as Record<string, unknown>)[name] = (size: number, ...rest: unknown[]) => {
      largestAllocation = Math.max(largestAllocation, size);
      return original.call(Buffer, size, ...rest);
    };
  }
});

afterEach(() => {
  Object.assign(Buffer, originals);
});

/** Decodes and checks the outcome: a result, or a KafkaProtocolError, with no allocation beyond the input. */
function survives(decode: () => unknown, input: Buffer): void {
  largestAllocation = 0;
  try {
    decode();
  } catch (error) {
    if (!(error instanceof KafkaProtocolError)) throw error;
    expect(error.offset).toBeGreaterThanOrEqual(0);
    expect(error.offset).toBeLessThanOrEqual(input.length);
  }
  expect(largestAllocation).toBeLessThanOrEqual(input.length);
}

/** Ways to damage a valid encoding, each aimed at a class of bug: truncation, bit rot, huge lengths. */
const damage = (bytes: Buffer): fc.Arbitrary<Buffer> => {
  const at = fc.integer({ min: 0, max: Math.max(0, bytes.length - 1) });
  const splice = (position: number, remove: number, insert: Buffer): Buffer =>
    Buffer.concat([bytes.subarray(0, position), insert, bytes.subarray(Math.min(bytes.length, position + remove))]);
  return fc.oneof(
    fc.integer({ min: 0, max: bytes.length }).map((end) => bytes.subarray(0, end)),
    fc.tuple(at, fc.integer({ min: 1, max: 255 })).map(([position, mask]) => {
      const copy = Buffer.from(bytes);
      if (copy.length > 0) copy[position] = copy[position]! ^ mask;
      return copy;
    }),
    fc.tuple(at, fc.constantFrom('7fffffff', 'ffffffff', '7fff', 'fffe', 'ffffffff0f', 'ffffffffff', '80808080808080808080'), fc.boolean()).map(([position, hex, replace]) =>
      splice(position, replace ? hex.length / 2 : 0, Buffer.from(hex, 'hex')),
    ),
    fc.tuple(at, fc.uint8Array({ minLength: 1, maxLength: 8 })).map(([position, extra]) => splice(position, 0, Buffer.from(extra))),
  );
};

describe('decoders fed garbage', () => {
  it.each(cases)('%s: random bytes', (_name, spec, version) => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (array) => {
        const input = Buffer.from(array);
        survives(() => decodeMessage(spec, version, input, { unknownTaggedFields: 'keep' }), input);
      }),
      { numRuns: 40 },
    );
  });

  it.each(cases)('%s: damaged valid messages', (_name, spec, version) => {
    const damaged = messageArbitrary(spec, version, { unknownTaggedFields: true }).chain((message) => damage(encodeMessage(spec, version, message)));
    fc.assert(
      fc.property(damaged, (input) => {
        survives(() => decodeMessage(spec, version, input, { unknownTaggedFields: 'keep' }), input);
      }),
      { numRuns: 25 },
    );
  });
});

const apiNames = Object.keys(KAFKA_APIS) as ApiName[];

describe('whole frames fed garbage', () => {
  it('decodeRequest: damaged requests of every API, including unknown keys and versions', () => {
    const request = fc
      .constantFrom(...apiNames)
      .chain((apiName) => {
        const spec = KAFKA_APIS[apiName].request;
        const { min, max } = parseVersions(spec.validVersions);
        return fc.integer({ min, max }).chain((apiVersion) =>
          messageArbitrary(spec, apiVersion).map((body) => encodeRequest(apiName, { apiVersion, correlationId: 1, clientId: 'fuzz' }, body as never).subarray(4)),
        );
      })
      .chain(damage);
    fc.assert(fc.property(fc.oneof(request, fc.uint8Array({ maxLength: 60 }).map((array) => Buffer.from(array))), (input) => survives(() => decodeRequest(input), input)), {
      numRuns: 1000,
    });
  });

  it('decodeResponse: random bytes as any response', () => {
    const response = fc.tuple(fc.constantFrom(...apiNames), fc.uint8Array({ maxLength: 60 })).chain(([apiName, array]) => {
      const { min, max } = parseVersions(KAFKA_APIS[apiName].response.validVersions);
      return fc.integer({ min, max }).map((apiVersion) => [apiName, apiVersion, Buffer.from(array)] as const);
    });
    fc.assert(fc.property(response, ([apiName, apiVersion, input]) => survives(() => decodeResponse(apiName, apiVersion, input), input)), { numRuns: 1000 });
  });
});

describe('garbage lengths', () => {
  it('refuses an array count that cannot fit before reading any entry', () => {
    const input = Buffer.from('7fffffff' + '00'.repeat(10), 'hex'); // Metadata v1 response: 2^31-1 brokers
    survives(() => decodeMessage(KAFKA_APIS.Metadata.response, 1, input), input);
    expect(() => decodeMessage(KAFKA_APIS.Metadata.response, 1, input)).toThrow(
      'MetadataResponse v1 brokers: array of 2147483647 entries cannot fit in the 10 bytes that remain (at byte 0)',
    );
  });

  it('refuses a bytes length beyond the input, naming the field and its offset', () => {
    // SyncGroup v0 response: error_code 0, then assignment claiming 2^31-1 bytes.
    const input = Buffer.from('0000' + '7fffffff' + 'abcd', 'hex');
    expect(() => decodeMessage(KAFKA_APIS.SyncGroup.response, 0, input)).toThrow('SyncGroupResponse v0 assignment: needs 2147483647 bytes but only 2 remain (at byte 6)');
  });

  it('refuses a compact length whose varint runs past 32 bits', () => {
    // DescribeCluster v0 request is flexible: bool, then the tagged-field count as a varint.
    const input = Buffer.from('00' + 'ffffffffff', 'hex');
    expect(() => decodeMessage(KAFKA_APIS.DescribeCluster.request, 0, input)).toThrow(/taggedFields: unsigned varint is longer than 5 bytes \(at byte 1\)/);
  });
});
