// Kafka's consumer protocol: the bytes a consumer puts in JoinGroup (its subscription) and the
// group leader puts in SyncGroup (each member's assignment). The broker never reads them; using
// Kafka's layout (ConsumerProtocolSubscription / ConsumerProtocolAssignment, non-flexible) lets
// Kafka clients and ours share a group through the Kafka door. Each starts with an int16 version;
// a newer version is read as the newest known one (its extra fields are appended), as Kafka does.
import { KafkaReader, KafkaWriter } from '@runnel/common';

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

function writeTopicPartitions(writer: KafkaWriter, list: readonly TopicPartitions[]): KafkaWriter {
  writer.int32(list.length);
  for (const entry of list) {
    writer.string(entry.topic).int32(entry.partitions.length);
    for (const partition of entry.partitions) writer.int32(partition);
  }
  return writer;
}

function readTopicPartitions(reader: KafkaReader, field: string): TopicPartitions[] {
  const list: TopicPartitions[] = [];
  const topics = reader.count(field);
  for (let k = 0; k < topics; k++) {
    const topic = reader.string(`${field}[${k}].topic`);
    const partitions: number[] = [];
    const count = reader.count(`${field}[${k}].partitions`);
    for (let p = 0; p < count; p++) partitions.push(reader.int32(`${field}[${k}].partitions[${p}]`));
    list.push({ topic, partitions });
  }
  return list;
}

function protocolReader(bytes: Buffer, what: string): KafkaReader {
  return new KafkaReader(bytes, what, (message) => new ConsumerProtocolError(message));
}

export function encodeSubscription(subscription: Pick<Subscription, 'topics'> & Partial<Subscription>): Buffer {
  const writer = new KafkaWriter().int16(SUBSCRIPTION_VERSION).int32(subscription.topics.length);
  for (const topic of subscription.topics) writer.string(topic);
  return writeTopicPartitions(writer.bytes(subscription.userData ?? null), subscription.ownedPartitions ?? []).done();
}

export function decodeSubscription(bytes: Buffer): Subscription {
  const reader = protocolReader(bytes, 'subscription');
  const version = reader.int16('version');
  if (version < 0) throw new ConsumerProtocolError(`subscription version ${version}`);
  const topics: string[] = [];
  const count = reader.count('topics');
  for (let k = 0; k < count; k++) topics.push(reader.string(`topics[${k}]`));
  const userData = reader.nullableBytes('userData');
  const ownedPartitions = version >= 1 ? readTopicPartitions(reader, 'ownedPartitions') : [];
  const generationId = version >= 2 ? reader.int32('generationId') : -1;
  return { topics, userData, ownedPartitions, generationId };
}

export function encodeAssignment(assignment: Pick<Assignment, 'partitions'> & Partial<Assignment>): Buffer {
  return writeTopicPartitions(new KafkaWriter().int16(ASSIGNMENT_VERSION), assignment.partitions)
    .bytes(assignment.userData ?? null)
    .done();
}

/** An empty buffer is an empty assignment (what a leader sends a member it gives nothing). */
export function decodeAssignment(bytes: Buffer): Assignment {
  if (bytes.length === 0) return { partitions: [], userData: null };
  const reader = protocolReader(bytes, 'assignment');
  const version = reader.int16('version');
  if (version < 0) throw new ConsumerProtocolError(`assignment version ${version}`);
  const partitions = readTopicPartitions(reader, 'assignedPartitions');
  const userData = reader.nullableBytes('userData');
  return { partitions, userData };
}

/**
 * What a sticky assignor's member remembers of the last assignment it took part in: its
 * partitions and that assignment's generation (-1 when unknown).
 */
export interface StickyMemberData {
  readonly partitions: readonly TopicPartitions[];
  readonly generation: number;
}

/**
 * Kafka's StickyAssignorUserData v1, the eager `sticky` assignor's userData: the member's previous
 * assignment in the topic-partitions layout above, then its generation (int32). It carries no
 * version of its own; v0 is the same without the generation.
 */
export function encodeStickyUserData(data: StickyMemberData): Buffer {
  return writeTopicPartitions(new KafkaWriter(), data.partitions).int32(data.generation).done();
}

/** Reads v1; bytes that end before the generation are v0, generation -1 (Kafka falls back the same way). */
export function decodeStickyUserData(bytes: Buffer): StickyMemberData {
  const reader = protocolReader(bytes, 'sticky assignor user data');
  const partitions = readTopicPartitions(reader, 'previousAssignment');
  try {
    return { partitions, generation: reader.int32('generation') };
  } catch (error) {
    if (error instanceof ConsumerProtocolError) return { partitions, generation: -1 };
    throw error;
  }
}

/**
 * Kafka's CooperativeStickyAssignorUserData v0: the member's generation (int32), so that a leader
 * can tell stale owned partitions apart even in a v0/v1 subscription, which has no generationId.
 */
export function encodeCooperativeStickyUserData(generation: number): Buffer {
  return new KafkaWriter().int32(generation).done();
}

export function decodeCooperativeStickyUserData(bytes: Buffer): number {
  return protocolReader(bytes, 'cooperative-sticky assignor user data').int32('generation');
}
