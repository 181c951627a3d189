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

const specs: MessageSpec[] = [...Object.values(KAFKA_APIS).flatMap((api) => [api.request, api.response]), REQUEST_HEADER, RESPONSE_HEADER];

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
