// For every API, both directions and every version served: a random valid message encodes,
// decodes back to the same object, and re-encodes to the same bytes.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { KAFKA_APIS, REQUEST_HEADER, RESPONSE_HEADER, decodeMessage, defaultMessage, encodeMessage, parseVersions, type MessageSpec } from '../src/index.js';
import { camel, messageArbitrary, tableDefault, withoutUnknownTags } from './arbitraries.js';

const RUNS = 15;

function everyVersion(spec: MessageSpec): number[] {
  const { min, max } = parseVersions(spec.validVersions);
  return Array.from({ length: max - min + 1 }, (_, i) => min + i);
}

/**
 * Types and shapes the Kafka tables here do not use (uint16, uint32, float64, an inline struct,
 * arrays of every primitive, a tagged string with a non-null default), so the codec's handling
 * of them is exercised too: v0 classic, v1 flexible.
 */
const EVERY_TYPE = {
  name: 'EveryType',
  type: 'response',
  validVersions: '0-1',
  flexibleVersions: '1+',
  fields: [
    { name: 'Small', type: 'uint16', versions: '0+' },
    { name: 'Large', type: 'uint32', versions: '0+', default: 4000000000 },
    { name: 'Ratio', type: 'float64', versions: '0+', default: 0.5 },
    { name: 'Tiny', type: '[]int8', versions: '0+' },
    { name: 'Flags', type: '[]bool', versions: '0+' },
    { name: 'Ids', type: '[]uuid', versions: '0+', nullableVersions: '1+' },
    { name: 'Offsets', type: '[]int64', versions: '0+' },
    { name: 'Blobs', type: '[]bytes', versions: '0+' },
    { name: 'Inline', type: 'Pair', versions: '0+', fields: [{ name: 'Left', type: 'int32', versions: '0+' }, { name: 'Right', type: 'string', versions: '0+', nullableVersions: '0+' }] },
    { name: 'Note', type: 'string', versions: '1+', nullableVersions: '1+', taggedVersions: '1+', tag: 4, default: 'none' },
  ],
} as const satisfies MessageSpec;

const specs: MessageSpec[] = [...Object.values(KAFKA_APIS).flatMap((api) => [api.request, api.response]), REQUEST_HEADER, RESPONSE_HEADER, EVERY_TYPE];

describe.each(specs.map((spec) => [spec.name, spec] as const))('%s', (_name, spec) => {
  it.each(everyVersion(spec))('v%i round-trips random messages', (version) => {
    fc.assert(
      fc.property(messageArbitrary(spec, version), (message) => {
        const bytes = encodeMessage(spec, version, message);
        const decoded = decodeMessage(spec, version, bytes);
        expect(decoded).toEqual(message);
        expect(encodeMessage(spec, version, decoded)).toEqual(bytes);
      }),
      { numRuns: RUNS },
    );
  });

  it.each(everyVersion(spec))('v%i keeps unknown tagged fields when asked, and skips them otherwise', (version) => {
    fc.assert(
      fc.property(messageArbitrary(spec, version, { unknownTaggedFields: true }), (message) => {
        const bytes = encodeMessage(spec, version, message);
        expect(decodeMessage(spec, version, bytes, { unknownTaggedFields: 'keep' })).toEqual(message);
        expect(decodeMessage(spec, version, bytes)).toEqual(withoutUnknownTags(message));
      }),
      { numRuns: 10 },
    );
  });

  it.each(everyVersion(spec))('v%i encodes an empty object as the message of defaults', (version) => {
    const defaults = Object.fromEntries(spec.fields.map((field) => [camel(field.name), tableDefault(field)]));
    expect(defaultMessage(spec, version)).toEqual(defaults);
    expect(decodeMessage(spec, version, encodeMessage(spec, version, {}))).toEqual(defaults);
  });
});

describe('the registry', () => {
  it('serves the same versions for each request and its response', () => {
    for (const [name, api] of Object.entries(KAFKA_APIS)) {
      expect(api.response.validVersions, name).toBe(api.request.validVersions);
      expect(api.request.apiKey, name).toBe(api.apiKey);
      expect(api.response.apiKey, name).toBe(api.apiKey);
    }
  });
});

describe('tagged fields with a non-null default', () => {
  it('writes a null (compact length 0) when the value is null, and nothing when it is the default', () => {
    const none = encodeMessage(EVERY_TYPE, 1, {});
    const nulled = encodeMessage(EVERY_TYPE, 1, { note: null });
    expect(nulled.subarray(none.length - 1).toString('hex')).toBe('01' + '04' + '01' + '00'); // one tag: 4, 1 byte, null
    expect(decodeMessage(EVERY_TYPE, 1, nulled).note).toBeNull();
    expect(decodeMessage(EVERY_TYPE, 1, none).note).toBe('none');
  });
});
