// The format of our message tables, and the TypeScript types of decoded messages derived from
// them. A table is written by hand, in TypeScript, from what Kafka's JSON message definitions
// say; it keeps Kafka's names and version notation so each line can be checked against its source.
//
// Naming convention: a table keeps Kafka's PascalCase field names (`ThrottleTimeMs`); a decoded
// object uses them with the first letter lowercased (`throttleTimeMs`), exactly as Kafka's own
// generated Java accessors do, so `IsrNodes` is `isrNodes` and `timeoutMs` stays `timeoutMs`.

/** Kafka's scalar and length-prefixed types. `records` is a record batch blob, kept as raw bytes. */
export type PrimitiveType = 'bool' | 'int8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'float64' | 'uuid' | 'string' | 'bytes' | 'records';

export interface FieldSpec {
  /** Kafka's PascalCase name; the decoded object uses it with its first letter lowercased. */
  readonly name: string;
  /**
   * A PrimitiveType, `[]` and a PrimitiveType for an array of them, or (with `fields`) a struct's
   * name, `[]Name` for an array of structs.
   */
  readonly type: string;
  /** The versions that carry the field, as "0+", "3-7", "5". */
  readonly versions: string;
  /** The versions in which it may be null (strings, bytes, records, arrays). */
  readonly nullableVersions?: string;
  /** The versions in which it travels as a tagged field (with `tag`) rather than in its place. */
  readonly taggedVersions?: string;
  readonly tag?: number;
  /**
   * The value when absent: from a version that lacks the field, or a tagged field not sent.
   * Without it: 0, 0n, false, '', the zero UUID, an empty Buffer or array, a struct of defaults;
   * null for records.
   */
  readonly default?: number | bigint | boolean | string | null;
  /**
   * Kafka's notion: a field that may silently be dropped when writing a version that lacks it.
   * Writing a non-default value for a field that is absent and not ignorable is an error.
   */
  readonly ignorable?: boolean;
  /** Overrides the message's flexible versions for this field (only the request header's ClientId). */
  readonly flexibleVersions?: string;
  /** A struct's (or an array of structs') own fields. */
  readonly fields?: readonly FieldSpec[];
}

export interface MessageSpec {
  /** Kafka's name, e.g. `MetadataRequest`. */
  readonly name: string;
  readonly type: 'request' | 'response' | 'header';
  readonly apiKey?: number;
  /** The versions we implement: a subset of Kafka's validVersions, fields outside it left out. */
  readonly validVersions: string;
  /** From which version on the message uses the compact encodings and tagged fields. */
  readonly flexibleVersions: string;
  readonly fields: readonly FieldSpec[];
}

/** A tagged field the schema does not know, kept as its raw value when decoding asks for it. */
export interface UnknownTaggedField {
  readonly tag: number;
  readonly data: Buffer;
}

interface DecodedPrimitives {
  bool: boolean;
  int8: number;
  int16: number;
  uint16: number;
  int32: number;
  uint32: number;
  int64: bigint;
  float64: number;
  uuid: string;
  string: string;
  bytes: Buffer;
  records: Buffer;
}

/** What encoding accepts: int64 also as a safe-integer number, blobs as any Uint8Array. */
interface InputPrimitives extends Omit<DecodedPrimitives, 'int64' | 'bytes' | 'records'> {
  int64: bigint | number;
  bytes: Uint8Array;
  records: Uint8Array;
}

type Nullable<F, V> = F extends { readonly nullableVersions: string } ? V | null : V;

type DecodedValue<F> = F extends { readonly fields: infer S extends readonly FieldSpec[] }
  ? F extends { readonly type: `[]${string}` }
    ? StructOf<S>[]
    : StructOf<S>
  : F extends { readonly type: `[]${infer E extends keyof DecodedPrimitives}` }
    ? DecodedPrimitives[E][]
    : F extends { readonly type: infer T extends keyof DecodedPrimitives }
      ? DecodedPrimitives[T]
      : unknown;

type InputValue<F> = F extends { readonly fields: infer S extends readonly FieldSpec[] }
  ? F extends { readonly type: `[]${string}` }
    ? StructInput<S>[]
    : StructInput<S>
  : F extends { readonly type: `[]${infer E extends keyof InputPrimitives}` }
    ? readonly InputPrimitives[E][]
    : F extends { readonly type: infer T extends keyof InputPrimitives }
      ? InputPrimitives[T]
      : unknown;

/** A decoded struct: every field of every version, those absent from the version at their default. */
export type StructOf<S extends readonly FieldSpec[]> = {
  [F in S[number] as Uncapitalize<F['name']>]: Nullable<F, DecodedValue<F>>;
} & { unknownTaggedFields?: UnknownTaggedField[] };

/** What encoding takes: any field may be left out and is then written as its default. */
export type StructInput<S extends readonly FieldSpec[]> = {
  [F in S[number] as Uncapitalize<F['name']>]?: Nullable<F, InputValue<F>>;
} & { unknownTaggedFields?: readonly UnknownTaggedField[] };

export type MessageOf<M extends MessageSpec> = StructOf<M['fields']>;
export type MessageInput<M extends MessageSpec> = StructInput<M['fields']>;
