// The errors this package throws. Decoding bytes from the network only ever throws
// KafkaProtocolError (or its subclasses), so a listener can catch one type, answer or close the
// connection, and treat anything else as a bug of its own.

/**
 * An error about one field of a message. The path is built from the inside out: the primitive
 * reader or writer knows only what went wrong, and each enclosing structure adds its field name
 * as the error passes through it, so building the path costs nothing unless something fails.
 */
abstract class FieldError extends Error {
  /** Path segments, outermost first, e.g. `['topics', '[3]', 'name']`. */
  readonly path: string[] = [];
  /** The message and version being read or written, e.g. `MetadataResponse v12`. */
  context = '';

  protected constructor(readonly problem: string) {
    super(problem);
  }

  /** The field's path as it appears in the message, e.g. `topics[3].name`. */
  get field(): string {
    let text = '';
    for (const segment of this.path) text += segment.startsWith('[') || text === '' ? segment : `.${segment}`;
    return text;
  }

  /** Puts `segment` in front of the path (called by each enclosing structure on the way out). */
  within(segment: string): this {
    this.path.unshift(segment);
    this.message = this.describe();
    return this;
  }

  inMessage(context: string): this {
    this.context = context;
    this.message = this.describe();
    return this;
  }

  protected describe(): string {
    const where = [this.context, this.field].filter((part) => part !== '').join(' ');
    return where === '' ? this.problem : `${where}: ${this.problem}`;
  }
}

/**
 * Bytes that are not a valid message: truncated, a length or count that does not fit what is
 * left, a null where the version allows none, bytes left over. `offset` is the byte, counted from
 * the start of the buffer handed to the decoder, at which reading the failing field began.
 */
export class KafkaProtocolError extends FieldError {
  override readonly name: string = 'KafkaProtocolError';

  constructor(
    problem: string,
    field: string,
    readonly offset: number,
    /** True when the field runs past the end of its input (as opposed to holding a bad value). */
    readonly truncated = false,
  ) {
    super(problem);
    if (field !== '') this.path.push(field);
    this.message = this.describe();
  }

  protected override describe(): string {
    return `${super.describe()} (at byte ${this.offset})`;
  }
}

/** A size prefix above the listener's limit (`socket.request.max.bytes`) or below zero. */
export class FrameSizeError extends KafkaProtocolError {
  override readonly name = 'FrameSizeError';

  constructor(
    readonly size: number,
    readonly maxFrameBytes: number,
    offset: number,
  ) {
    super(size < 0 ? `frame size ${size} is negative` : `frame size ${size} is larger than the limit of ${maxFrameBytes} bytes`, '', offset);
  }
}

/**
 * A well-formed request header naming an API key or version this package has no schema for. The
 * header fields that could be read are kept so the broker can answer (Kafka answers an
 * ApiVersions request of an unknown version with an ApiVersions v0 response carrying
 * UNSUPPORTED_VERSION, and closes the connection for anything else).
 */
export class UnsupportedApiVersionError extends KafkaProtocolError {
  override readonly name = 'UnsupportedApiVersionError';

  constructor(
    readonly apiKey: number,
    readonly apiVersion: number,
    readonly correlationId: number,
    /** Undefined when the API key is unknown, since then the header's layout is unknown too. */
    readonly clientId: string | null | undefined,
    supported: { readonly minVersion: number; readonly maxVersion: number } | undefined,
  ) {
    super(
      supported === undefined
        ? `API key ${apiKey} is not supported`
        : `version ${apiVersion} of API key ${apiKey} is not supported (supported: ${supported.minVersion}-${supported.maxVersion})`,
      '',
      0,
    );
  }
}

/**
 * A value that cannot be written in the requested version: out of its type's range, the wrong JS
 * type, null where the version allows none, or a non-default value for a field the version lacks
 * and Kafka marks as not ignorable. This is a bug in the caller, not bad input from the network.
 */
export class KafkaEncodeError extends FieldError {
  override readonly name = 'KafkaEncodeError';

  constructor(problem: string) {
    super(problem);
  }
}
