// fast-check arbitraries for any message of any table at any version: every field the version
// carries gets a random value of its type (null too, where the version allows it), and every
// field it lacks holds its default, which is what decoding such a message must give back.
import fc from 'fast-check';
import { inVersions, type FieldSpec, type MessageSpec } from '../src/index.js';

type Value = unknown;

const ZERO_UUID = '00000000-0000-0000-0000-000000000000';

/** The default a table states for a field, or its type's zero. Written apart from the codec's, on purpose. */
export function tableDefault(field: FieldSpec): Value {
  if (field.default !== undefined) return field.default;
  if (field.fields !== undefined) {
    return field.type.startsWith('[]') ? [] : Object.fromEntries(field.fields.map((inner) => [camel(inner.name), tableDefault(inner)]));
  }
  if (field.type.startsWith('[]')) return [];
  switch (field.type) {
    case 'bool': return false;
    case 'int64': return 0n;
    case 'uuid': return ZERO_UUID;
    case 'string': return '';
    case 'bytes': return Buffer.alloc(0);
    case 'records': return null;
    default: return 0;
  }
}

export function camel(name: string): string {
  return name.charAt(0).toLowerCase() + name.slice(1);
}

const bytesArbitrary = fc.uint8Array({ maxLength: 24 }).map((array) => Buffer.from(array));

function primitiveArbitrary(type: string): fc.Arbitrary<Value> {
  switch (type) {
    case 'bool': return fc.boolean();
    case 'int8': return fc.integer({ min: -0x80, max: 0x7f });
    case 'int16': return fc.integer({ min: -0x8000, max: 0x7fff });
    case 'uint16': return fc.integer({ min: 0, max: 0xffff });
    case 'int32': return fc.integer({ min: -0x80000000, max: 0x7fffffff });
    case 'uint32': return fc.integer({ min: 0, max: 0xffffffff });
    case 'int64': return fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
    case 'float64': return fc.double({ noNaN: true });
    case 'uuid': return fc.uuid();
    case 'string': return fc.oneof(fc.string({ maxLength: 12 }), fc.string({ unit: 'grapheme', maxLength: 6 }));
    case 'bytes': case 'records': return bytesArbitrary;
    default: throw new Error(`no arbitrary for type ${type}`);
  }
}

interface Shape {
  readonly version: number;
  readonly flexible: boolean;
  readonly unknownTags: boolean;
}

function valueArbitrary(field: FieldSpec, shape: Shape): fc.Arbitrary<Value> {
  const { version } = shape;
  const isArray = field.type.startsWith('[]');
  const element = field.fields !== undefined ? structArbitrary(field.fields, shape) : primitiveArbitrary(isArray ? field.type.slice(2) : field.type);
  const value = isArray ? fc.array(element, { maxLength: 3 }) : element;
  return inVersions(version, field.nullableVersions) ? fc.option(value, { nil: null, freq: 4 }) : value;
}

/** Tag numbers no known field of the struct uses, for unknown tagged fields. */
function unknownTagsArbitrary(fields: readonly FieldSpec[]): fc.Arbitrary<{ tag: number; data: Buffer }[]> {
  const known = new Set(fields.map((field) => field.tag));
  return fc
    .uniqueArray(fc.integer({ min: 0, max: 300 }).filter((tag) => !known.has(tag)), { maxLength: 2 })
    .chain((tags) => fc.tuple(...tags.map((tag) => bytesArbitrary.map((data) => ({ tag, data })))))
    .map((entries) => entries.sort((a, b) => a.tag - b.tag));
}

function structArbitrary(fields: readonly FieldSpec[], shape: Shape): fc.Arbitrary<Record<string, Value>> {
  const record: Record<string, fc.Arbitrary<Value>> = {};
  for (const field of fields) {
    record[camel(field.name)] = inVersions(shape.version, field.versions) ? valueArbitrary(field, shape) : fc.constant(tableDefault(field));
  }
  const struct = fc.record(record);
  if (!shape.flexible || !shape.unknownTags) return struct;
  return fc.tuple(struct, unknownTagsArbitrary(fields)).map(([value, unknown]) => (unknown.length === 0 ? value : { ...value, unknownTaggedFields: unknown }));
}

/**
 * A random message of `spec` at `version`. With `unknownTaggedFields`, flexible structs may also
 * carry tagged fields the table does not know (to test that they are kept, or skipped).
 */
export function messageArbitrary(spec: MessageSpec, version: number, options: { unknownTaggedFields?: boolean } = {}): fc.Arbitrary<Record<string, Value>> {
  return structArbitrary(spec.fields, { version, flexible: inVersions(version, spec.flexibleVersions), unknownTags: options.unknownTaggedFields === true });
}

/** Removes every `unknownTaggedFields`, at any depth: what decoding that skips them returns. */
export function withoutUnknownTags(value: Value): Value {
  if (Array.isArray(value)) return value.map(withoutUnknownTags);
  if (value === null || typeof value !== 'object' || Buffer.isBuffer(value)) return value;
  return Object.fromEntries(Object.entries(value).filter(([key]) => key !== 'unknownTaggedFields').map(([key, inner]) => [key, withoutUnknownTags(inner)]));
}
