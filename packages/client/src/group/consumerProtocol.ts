// Kafka's consumer protocol: the bytes a consumer puts in JoinGroup (its subscription) and the
// group leader puts in SyncGroup (each member's assignment). The broker never reads them; using
// Kafka's layout (ConsumerProtocolSubscription / ConsumerProtocolAssignment, non-flexible) lets
// Kafka clients and ours share a group through the Kafka door. Each starts with an int16 version;
// a newer version is read as the newest known one (its extra fields are appended), as Kafka does.

export const CONSUMER_PROTOCOL_TYPE = 'consumer';
/** Subscription v1 (with owned partitions, for cooperative rebalancing later). */
const SUBSCRIPTION_VERSION = 1;
const ASSIGNMENT_VERSION = 0;

export interface TopicPartitions {
  readonly topic: string;
  readonly partitions: readonly number[];
}

export interface Subscription {
  readonly topics: readonly string[];
  readonly userData: Buffer | null;
  /** v1+: what the member owns now (empty for an eager member). */
  readonly ownedPartitions: readonly TopicPartitions[];
  /** v2+: the generation the owned partitions are from (-1 unknown). */
  readonly generationId: number;
}

export interface Assignment {
  readonly partitions: readonly TopicPartitions[];
  readonly userData: Buffer | null;
}

export class ConsumerProtocolError extends Error {
  constructor(message: string) {
    super(`consumer protocol: ${message}`);
    this.name = 'ConsumerProtocolError';
  }
}

class Writer {
  private readonly chunks: Buffer[] = [];

  int16(value: number): this {
    const buffer = Buffer.alloc(2);
    buffer.writeInt16BE(value);
    this.chunks.push(buffer);
    return this;
  }

  int32(value: number): this {
    const buffer = Buffer.alloc(4);
    buffer.writeInt32BE(value);
    this.chunks.push(buffer);
    return this;
  }

  string(value: string): this {
    const bytes = Buffer.from(value, 'utf8');
    this.int16(bytes.length);
    this.chunks.push(bytes);
    return this;
  }

  nullableBytes(value: Buffer | null): this {
    if (value === null) return this.int32(-1);
    this.int32(value.length);
    this.chunks.push(value);
    return this;
  }

  topicPartitions(list: readonly TopicPartitions[]): this {
    this.int32(list.length);
    for (const entry of list) {
      this.string(entry.topic).int32(entry.partitions.length);
      for (const partition of entry.partitions) this.int32(partition);
    }
    return this;
  }

  done(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

class Reader {
  private position = 0;

  constructor(private readonly buffer: Buffer) {}

  get remaining(): number {
    return this.buffer.length - this.position;
  }

  private need(bytes: number, field: string): void {
    if (this.position + bytes > this.buffer.length) throw new ConsumerProtocolError(`truncated in ${field}`);
  }

  int16(field: string): number {
    this.need(2, field);
    const value = this.buffer.readInt16BE(this.position);
    this.position += 2;
    return value;
  }

  int32(field: string): number {
    this.need(4, field);
    const value = this.buffer.readInt32BE(this.position);
    this.position += 4;
    return value;
  }

  string(field: string): string {
    const length = this.int16(field);
    if (length < 0) throw new ConsumerProtocolError(`${field} is null`);
    this.need(length, field);
    const value = this.buffer.toString('utf8', this.position, this.position + length);
    this.position += length;
    return value;
  }

  nullableBytes(field: string): Buffer | null {
    const length = this.int32(field);
    if (length === -1) return null;
    if (length < 0) throw new ConsumerProtocolError(`${field} has length ${length}`);
    this.need(length, field);
    const value = Buffer.from(this.buffer.subarray(this.position, this.position + length));
    this.position += length;
    return value;
  }

  count(field: string): number {
    const count = this.int32(field);
    if (count < 0 || count > this.buffer.length) throw new ConsumerProtocolError(`${field} has ${count} entries`);
    return count;
  }

  topicPartitions(field: string): TopicPartitions[] {
    const list: TopicPartitions[] = [];
    const topics = this.count(field);
    for (let k = 0; k < topics; k++) {
      const topic = this.string(`${field}[${k}].topic`);
      const partitions: number[] = [];
      const count = this.count(`${field}[${k}].partitions`);
      for (let p = 0; p < count; p++) partitions.push(this.int32(`${field}[${k}].partitions[${p}]`));
      list.push({ topic, partitions });
    }
    return list;
  }
}

export function encodeSubscription(subscription: Pick<Subscription, 'topics'> & Partial<Subscription>): Buffer {
  const writer = new Writer().int16(SUBSCRIPTION_VERSION).int32(subscription.topics.length);
  for (const topic of subscription.topics) writer.string(topic);
  return writer
    .nullableBytes(subscription.userData ?? null)
    .topicPartitions(subscription.ownedPartitions ?? [])
    .done();
}

export function decodeSubscription(bytes: Buffer): Subscription {
  const reader = new Reader(bytes);
  const version = reader.int16('version');
  if (version < 0) throw new ConsumerProtocolError(`subscription version ${version}`);
  const topics: string[] = [];
  const count = reader.count('topics');
  for (let k = 0; k < count; k++) topics.push(reader.string(`topics[${k}]`));
  const userData = reader.nullableBytes('userData');
  const ownedPartitions = version >= 1 ? reader.topicPartitions('ownedPartitions') : [];
  const generationId = version >= 2 ? reader.int32('generationId') : -1;
  return { topics, userData, ownedPartitions, generationId };
}

export function encodeAssignment(assignment: Pick<Assignment, 'partitions'> & Partial<Assignment>): Buffer {
  return new Writer()
    .int16(ASSIGNMENT_VERSION)
    .topicPartitions(assignment.partitions)
    .nullableBytes(assignment.userData ?? null)
    .done();
}

/** An empty buffer is an empty assignment (what a leader sends a member it gives nothing). */
export function decodeAssignment(bytes: Buffer): Assignment {
  if (bytes.length === 0) return { partitions: [], userData: null };
  const reader = new Reader(bytes);
  const version = reader.int16('version');
  if (version < 0) throw new ConsumerProtocolError(`assignment version ${version}`);
  const partitions = reader.topicPartitions('assignedPartitions');
  const userData = reader.nullableBytes('userData');
  return { partitions, userData };
}
