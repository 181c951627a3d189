// The one codec for every message: it turns a table (schema.ts) and a version into a plan — which
// fields the version carries, where, in which encoding, with which default — and then reads or
// writes a JS object by walking that plan. Plans are built once per (table, version) and cached.
//
// Kafka's semantics followed here (from its message generator):
// - a field the version lacks decodes as its default; on encode it is dropped if it holds its
//   default or is `ignorable`, and is a KafkaEncodeError otherwise (Kafka: UnsupportedVersionException);
// - in flexible versions every struct ends with its tagged fields: a count, then tag, size and
//   value for each; a known tagged field is written only when it differs from its default, in tag
//   order; an unknown one is skipped on decode, or kept (`unknownTaggedFields: 'keep'`) and then
//   written back on encode;
// - nested structs follow the message's flexibility; a field's own `flexibleVersions` overrides
//   only its own encoding (the request header's ClientId, an int16 string in every version).
// Where we are stricter than Kafka's readers: a known tagged field must use exactly the size it
// announces, and bytes left after the message are an error.
import { KafkaEncodeError, KafkaProtocolError } from './errors.js';
import type { FieldSpec, MessageInput, MessageOf, MessageSpec, PrimitiveType, UnknownTaggedField } from './schema.js';
import { inVersions } from './versions.js';
import { KafkaWireReader } from './wireReader.js';
import { KafkaWireWriter } from './wireWriter.js';

export interface DecodeOptions {
  /** What to do with tagged fields the schema does not know: drop them (default) or keep them raw. */
  readonly unknownTaggedFields?: 'skip' | 'keep';
}

const ZERO_UUID = '00000000-0000-0000-0000-000000000000';
/** The default of an array, bytes or struct: an empty one, made afresh each time it is needed. */
const FRESH_EMPTY = Symbol('fresh empty value');
const PRIMITIVE_TYPES = new Set<string>(['bool', 'int8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'float64', 'uuid', 'string', 'bytes', 'records']);
const FIXED_BYTES: Partial<Record<PrimitiveType, number>> = { bool: 1, int8: 1, int16: 2, uint16: 2, int32: 4, uint32: 4, int64: 8, float64: 8, uuid: 16 };

/** How one value (a field, or an array's element) is laid out in a given version. */
interface ValuePlan {
  readonly kind: PrimitiveType | 'array' | 'struct';
  readonly compact: boolean;
  readonly element?: ValuePlan;
  readonly struct?: StructPlan;
  /** The fewest bytes the value can take: bounds an array's count before it is believed. */
  readonly minBytes: number;
}

interface FieldPlan extends ValuePlan {
  readonly key: string;
  readonly placement: 'absent' | 'inline' | 'tagged';
  readonly tag: number;
  readonly nullable: boolean;
  readonly ignorable: boolean;
  /** The default as a value, or FRESH_EMPTY for `defaultOf` to make one. */
  readonly defaultValue: unknown;
}

interface StructPlan {
  readonly version: number;
  readonly flexible: boolean;
  /** Every field of the table, in its order, including those this version lacks. */
  readonly fields: readonly FieldPlan[];
  readonly taggedByTag: ReadonlyMap<number, FieldPlan>;
  readonly minBytes: number;
}

const plans = new WeakMap<MessageSpec, Map<number, StructPlan>>();

function planFor(spec: MessageSpec, version: number): StructPlan {
  let byVersion = plans.get(spec);
  if (byVersion === undefined) plans.set(spec, (byVersion = new Map()));
  let plan = byVersion.get(version);
  if (plan === undefined) {
    if (!Number.isInteger(version) || !inVersions(version, spec.validVersions)) {
      throw new RangeError(`${spec.name} has no version ${version} (this package implements ${spec.validVersions})`);
    }
    plan = planStruct(spec.fields, version, inVersions(version, spec.flexibleVersions), spec.name);
    byVersion.set(version, plan);
  }
  return plan;
}

/** Throws a plain Error: a table that breaks these rules is a bug in this package, not bad input. */
function planStruct(fields: readonly FieldSpec[], version: number, flexible: boolean, where: string): StructPlan {
  const planned = fields.map((field) => planField(field, version, flexible, `${where}.${field.name}`));
  const taggedByTag = new Map<number, FieldPlan>();
  let minBytes = flexible ? 1 : 0;
  for (const field of planned) {
    if (field.placement === 'inline') minBytes += field.minBytes;
    if (field.placement !== 'tagged') continue;
    if (taggedByTag.has(field.tag)) throw new Error(`${where}: tag ${field.tag} is used twice in version ${version}`);
    taggedByTag.set(field.tag, field);
  }
  return { version, flexible, fields: planned, taggedByTag, minBytes };
}

function planField(spec: FieldSpec, version: number, messageFlexible: boolean, where: string): FieldPlan {
  const present = inVersions(version, spec.versions);
  const tagged = present && inVersions(version, spec.taggedVersions);
  const compact = spec.flexibleVersions === undefined ? messageFlexible : inVersions(version, spec.flexibleVersions);
  const nullable = present && inVersions(version, spec.nullableVersions);
  if (tagged && (spec.tag === undefined || !messageFlexible)) throw new Error(`${where}: tagged in version ${version}, which is not flexible or has no tag`);
  const value = planValue(spec, version, messageFlexible, compact, where);
  if (present && value.element?.minBytes === 0) throw new Error(`${where}: an array whose entries may take no bytes could not bound its count`);
  if (nullable && !['string', 'bytes', 'records', 'array'].includes(value.kind)) throw new Error(`${where}: a ${value.kind} cannot be nullable here`);
  const defaultValue = defaultFor(spec, value.kind, where);
  if (present && defaultValue === null && !nullable) throw new Error(`${where}: defaults to null but is not nullable in version ${version}`);
  return {
    ...value,
    key: spec.name.charAt(0).toLowerCase() + spec.name.slice(1),
    placement: !present ? 'absent' : tagged ? 'tagged' : 'inline',
    tag: spec.tag ?? -1,
    nullable,
    ignorable: spec.ignorable === true,
    defaultValue,
  };
}

function planValue(spec: FieldSpec, version: number, messageFlexible: boolean, compact: boolean, where: string): ValuePlan {
  const isArray = spec.type.startsWith('[]');
  const lengthBytes = compact ? 1 : 4;
  if (spec.fields !== undefined) {
    const struct = planStruct(spec.fields, version, messageFlexible, where);
    if (!isArray) return { kind: 'struct', compact, struct, minBytes: struct.minBytes };
    return { kind: 'array', compact, element: { kind: 'struct', compact, struct, minBytes: struct.minBytes }, minBytes: lengthBytes };
  }
  const type = isArray ? spec.type.slice(2) : spec.type;
  if (!PRIMITIVE_TYPES.has(type) || (isArray && type === 'records')) throw new Error(`${where}: unknown type ${spec.type}`);
  if (spec.flexibleVersions !== undefined && type !== 'string' && type !== 'bytes') throw new Error(`${where}: only strings and bytes may override flexibleVersions`);
  const primitive: ValuePlan = { kind: type as PrimitiveType, compact, minBytes: FIXED_BYTES[type as PrimitiveType] ?? (type === 'string' && !compact ? 2 : lengthBytes) };
  return isArray ? { kind: 'array', compact, element: primitive, minBytes: lengthBytes } : primitive;
}

function defaultFor(spec: FieldSpec, kind: ValuePlan['kind'], where: string): unknown {
  const given = spec.default;
  if (given === undefined) {
    switch (kind) {
      case 'bool': return false;
      case 'int64': return 0n;
      case 'uuid': return ZERO_UUID;
      case 'string': return '';
      case 'records': return null;
      case 'bytes': case 'array': case 'struct': return FRESH_EMPTY;
      default: return 0;
    }
  }
  if (given === null) return null;
  const ok =
    kind === 'int64' ? typeof given === 'bigint' :
    kind === 'bool' ? typeof given === 'boolean' :
    kind === 'string' || kind === 'uuid' ? typeof given === 'string' :
    typeof given === 'number' && FIXED_BYTES[kind as PrimitiveType] !== undefined;
  if (!ok) throw new Error(`${where}: default ${String(given)} does not fit a ${kind}`);
  return given;
}

/** A field's default; containers are made afresh, so callers may fill them in. */
function defaultOf(field: FieldPlan): unknown {
  if (field.defaultValue !== FRESH_EMPTY) return field.defaultValue;
  if (field.kind === 'array') return [];
  return field.kind === 'struct' ? structDefaults(field.struct!) : Buffer.alloc(0);
}

function structDefaults(plan: StructPlan): Record<string, unknown> {
  const value: Record<string, unknown> = {};
  for (const field of plan.fields) value[field.key] = defaultOf(field);
  return value;
}

function isDefault(field: FieldPlan, value: unknown): boolean {
  switch (field.kind) {
    case 'array': return field.defaultValue === null ? value === null : Array.isArray(value) && value.length === 0;
    case 'bytes': return field.defaultValue === null ? value === null : value instanceof Uint8Array && value.length === 0;
    case 'struct': return isStructDefault(field.struct!, value);
    case 'int64': return (typeof value === 'bigint' || (typeof value === 'number' && Number.isSafeInteger(value))) && BigInt(value) === field.defaultValue;
    case 'uuid': return typeof value === 'string' && value.toLowerCase() === field.defaultValue;
    default: return value === field.defaultValue;
  }
}

function isStructDefault(plan: StructPlan, value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const struct = value as Record<string, unknown>;
  const unknown = struct.unknownTaggedFields as readonly unknown[] | undefined;
  if (unknown !== undefined && unknown.length > 0) return false;
  return plan.fields.every((field) => struct[field.key] === undefined || isDefault(field, struct[field.key]));
}

function inField<E>(error: E, segment: string): E {
  if (error instanceof KafkaProtocolError || error instanceof KafkaEncodeError) error.within(segment);
  return error;
}

// ---- decoding ----

function readStruct(reader: KafkaWireReader, plan: StructPlan, keepUnknown: boolean): Record<string, unknown> {
  const value: Record<string, unknown> = {};
  for (const field of plan.fields) {
    if (field.placement !== 'inline') {
      value[field.key] = defaultOf(field);
      continue;
    }
    try {
      value[field.key] = readValue(reader, field, field.nullable, keepUnknown);
    } catch (error) {
      throw inField(error, field.key);
    }
  }
  if (plan.flexible) readTaggedFields(reader, plan, value, keepUnknown);
  return value;
}

function readTaggedFields(reader: KafkaWireReader, plan: StructPlan, value: Record<string, unknown>, keepUnknown: boolean): void {
  const count = reader.uvarint('taggedFields');
  const unknown: UnknownTaggedField[] = [];
  for (let i = 0; i < count; i++) {
    const tag = reader.uvarint(`taggedFields[${i}].tag`);
    const size = reader.uvarint(`taggedFields[${i}].size`);
    const field = plan.taggedByTag.get(tag);
    if (field === undefined) {
      const data = reader.take(size, `taggedFields[${i}] (tag ${tag})`);
      if (keepUnknown) unknown.push({ tag, data });
      continue;
    }
    try {
      value[field.key] = reader.within(size, '', () => readValue(reader, field, field.nullable, keepUnknown));
    } catch (error) {
      throw inField(error, field.key);
    }
  }
  if (unknown.length > 0) value.unknownTaggedFields = unknown;
}

function readValue(reader: KafkaWireReader, plan: ValuePlan, nullable: boolean, keepUnknown: boolean): unknown {
  switch (plan.kind) {
    case 'bool': return reader.bool('');
    case 'int8': return reader.int8('');
    case 'int16': return reader.int16('');
    case 'uint16': return reader.uint16('');
    case 'int32': return reader.int32('');
    case 'uint32': return reader.uint32('');
    case 'int64': return reader.int64('');
    case 'float64': return reader.float64('');
    case 'uuid': return reader.uuid('');
    case 'string': return reader.string('', plan.compact, nullable);
    case 'bytes': case 'records': return reader.bytes('', plan.compact, nullable);
    case 'struct': return readStruct(reader, plan.struct!, keepUnknown);
    case 'array': {
      const element = plan.element!;
      const count = reader.arrayCount('', plan.compact, nullable, element.minBytes);
      if (count === null) return null;
      const items: unknown[] = [];
      for (let i = 0; i < count; i++) {
        try {
          items.push(readValue(reader, element, false, keepUnknown));
        } catch (error) {
          throw inField(error, `[${i}]`);
        }
      }
      return items;
    }
  }
}

// ---- encoding ----

function writeStruct(writer: KafkaWireWriter, plan: StructPlan, value: unknown): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new KafkaEncodeError(`expected an object, got ${Array.isArray(value) ? 'an array' : String(value)}`);
  const struct = value as Record<string, unknown>;
  for (const field of plan.fields) {
    const fieldValue = struct[field.key];
    try {
      if (field.placement === 'inline') {
        writeValue(writer, field, field.nullable, fieldValue === undefined ? defaultOf(field) : fieldValue);
      } else if (field.placement === 'absent' && fieldValue !== undefined && !field.ignorable && !isDefault(field, fieldValue)) {
        throw new KafkaEncodeError(`version ${plan.version} lacks this field and Kafka does not let it be ignored, so it must be left at its default`);
      }
    } catch (error) {
      throw inField(error, field.key);
    }
  }
  const unknown = (struct.unknownTaggedFields ?? []) as readonly UnknownTaggedField[];
  if (plan.flexible) writeTaggedFields(writer, plan, struct, unknown);
  else if (unknown.length > 0) throw new KafkaEncodeError(`version ${plan.version} is not flexible and cannot carry tagged fields`);
}

function writeTaggedFields(writer: KafkaWireWriter, plan: StructPlan, struct: Record<string, unknown>, unknown: readonly UnknownTaggedField[]): void {
  const entries: { tag: number; data: Uint8Array }[] = [];
  for (const field of plan.taggedByTag.values()) {
    const fieldValue = struct[field.key];
    if (fieldValue === undefined || isDefault(field, fieldValue)) continue;
    const valueWriter = new KafkaWireWriter();
    try {
      writeValue(valueWriter, field, field.nullable, fieldValue);
    } catch (error) {
      throw inField(error, field.key);
    }
    entries.push({ tag: field.tag, data: valueWriter.toBuffer() });
  }
  if (!Array.isArray(unknown)) throw new KafkaEncodeError('unknownTaggedFields must be an array').within('unknownTaggedFields');
  for (const entry of unknown) {
    if (plan.taggedByTag.has(entry?.tag) || !(entry?.data instanceof Uint8Array)) {
      throw new KafkaEncodeError(`an unknown tagged field needs a tag no field of this version uses and a Buffer, got tag ${entry?.tag}`).within('unknownTaggedFields');
    }
    entries.push(entry);
  }
  entries.sort((a, b) => a.tag - b.tag);
  writer.uvarint(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    if (i > 0 && entries[i - 1]!.tag === entry.tag) throw new KafkaEncodeError(`tag ${entry.tag} appears twice`).within('unknownTaggedFields');
    writer.uvarint(entry.tag).uvarint(entry.data.length).raw(entry.data);
  }
}

function writeValue(writer: KafkaWireWriter, plan: ValuePlan, nullable: boolean, value: unknown): void {
  if (value === null || value === undefined) {
    if (!nullable || value === undefined) throw new KafkaEncodeError(`is ${String(value)}, which this version does not allow`);
    if (plan.kind === 'string') writer.string(null, plan.compact);
    else if (plan.kind === 'array') writer.arrayLength(null, plan.compact);
    else writer.bytes(null, plan.compact);
    return;
  }
  switch (plan.kind) {
    case 'bool': writer.bool(value); return;
    case 'int8': writer.int8(value); return;
    case 'int16': writer.int16(value); return;
    case 'uint16': writer.uint16(value); return;
    case 'int32': writer.int32(value); return;
    case 'uint32': writer.uint32(value); return;
    case 'int64': writer.int64(value); return;
    case 'float64': writer.float64(value); return;
    case 'uuid': writer.uuid(value); return;
    case 'string': writer.string(value as string, plan.compact); return;
    case 'bytes': case 'records': writer.bytes(value as Uint8Array, plan.compact); return;
    case 'struct': writeStruct(writer, plan.struct!, value); return;
    case 'array': {
      if (!Array.isArray(value)) throw new KafkaEncodeError(`expected an array, got ${typeof value}`);
      writer.arrayLength(value.length, plan.compact);
      for (let i = 0; i < value.length; i++) {
        try {
          writeValue(writer, plan.element!, false, value[i]);
        } catch (error) {
          throw inField(error, `[${i}]`);
        }
      }
    }
  }
}

// ---- entry points ----

/** Reads one message of `spec` at `version` from the reader's position; bytes may follow. */
export function readMessage<M extends MessageSpec>(reader: KafkaWireReader, spec: M, version: number, options?: DecodeOptions): MessageOf<M> {
  const plan = planFor(spec, version);
  try {
    return readStruct(reader, plan, options?.unknownTaggedFields === 'keep') as MessageOf<M>;
  } catch (error) {
    if (error instanceof KafkaProtocolError && error.context === '') error.inMessage(`${spec.name} v${version}`);
    throw error;
  }
}

/** Writes one message of `spec` at `version`; fields left out are written as their defaults. */
export function writeMessage<M extends MessageSpec>(writer: KafkaWireWriter, spec: M, version: number, value: MessageInput<M>): void {
  const plan = planFor(spec, version);
  try {
    writeStruct(writer, plan, value);
  } catch (error) {
    if (error instanceof KafkaEncodeError && error.context === '') error.inMessage(`${spec.name} v${version}`);
    throw error;
  }
}

/** Decodes `bytes`, which must hold exactly one message of `spec` at `version`. */
export function decodeMessage<M extends MessageSpec>(spec: M, version: number, bytes: Buffer, options?: DecodeOptions): MessageOf<M> {
  const reader = new KafkaWireReader(bytes);
  const message = readMessage(reader, spec, version, options);
  reader.expectEnd(`${spec.name} v${version}`);
  return message;
}

export function encodeMessage<M extends MessageSpec>(spec: M, version: number, value: MessageInput<M>): Buffer {
  const writer = new KafkaWireWriter();
  writeMessage(writer, spec, version, value);
  return writer.toBuffer();
}

/** The message `spec` decodes to at `version` when every field holds its default. */
export function defaultMessage<M extends MessageSpec>(spec: M, version: number): MessageOf<M> {
  return structDefaults(planFor(spec, version)) as MessageOf<M>;
}
