// `runnel consume TOPIC`: prints records, one per line, like kafka-console-consumer. With --group
// the partitions come from the group (shared with its other members) and positions are committed as
// it goes (auto-commit, and on exit).
import { Consumer, type ConsumerOptions, type ConsumerRecord, type TopicPartition } from '@runnel/client';

export interface ConsumeCommandOptions {
  fromBeginning: boolean;
  maxMessages?: number;
  partition?: number;
  offset?: string;
  timeoutMs?: number;
  printKey: boolean;
  keySeparator: string;
  format: 'value' | 'json';
  group?: string;
  consumerProperty: string[];
}

function parseOffset(text: string): number | 'earliest' | 'latest' {
  if (text === 'earliest' || text === 'beginning') return 'earliest';
  if (text === 'latest' || text === 'end') return 'latest';
  if (!/^\d+$/.test(text)) throw new Error(`--offset must be a non-negative number, 'earliest' or 'latest', got '${text}'`);
  return Number(text);
}

function positiveInteger(key: string, text: string): number {
  if (!/^\d+$/.test(text) || Number(text) <= 0) throw new Error(`--consumer-property ${key} must be a positive integer, got '${text}'`);
  return Number(text);
}

/** Kafka's consumer property names, as kafka-console-consumer takes them, onto ConsumerOptions. */
const CONSUMER_PROPERTIES: Record<string, (options: ConsumerOptions, value: string, key: string) => void> = {
  'session.timeout.ms': (options, value, key) => (options.sessionTimeoutMs = positiveInteger(key, value)),
  'heartbeat.interval.ms': (options, value, key) => (options.heartbeatIntervalMs = positiveInteger(key, value)),
  'max.poll.interval.ms': (options, value, key) => (options.maxPollIntervalMs = positiveInteger(key, value)),
  'max.poll.records': (options, value, key) => (options.maxPollRecords = positiveInteger(key, value)),
  'auto.commit.interval.ms': (options, value, key) => (options.autoCommitIntervalMs = positiveInteger(key, value)),
  'fetch.max.wait.ms': (options, value, key) => (options.maxWaitMs = positiveInteger(key, value)),
  'request.timeout.ms': (options, value, key) => (options.requestTimeoutMs = positiveInteger(key, value)),
  'metadata.max.age.ms': (options, value, key) => (options.metadataMaxAgeMs = positiveInteger(key, value)),
  'client.id': (options, value) => (options.clientId = value),
  'group.instance.id': (options, value) => (options.groupInstanceId = value),
  'enable.auto.commit': (options, value, key) => {
    if (value !== 'true' && value !== 'false') throw new Error(`--consumer-property ${key} must be true or false, got '${value}'`);
    options.enableAutoCommit = value === 'true';
  },
  'auto.offset.reset': (options, value, key) => {
    if (value !== 'earliest' && value !== 'latest' && value !== 'none') throw new Error(`--consumer-property ${key} must be earliest, latest or none, got '${value}'`);
    options.autoOffsetReset = value;
  },
  // Kafka's class names or our short names, comma-separated, in order of preference.
  'partition.assignment.strategy': (options, value) => {
    const byKafkaClass: Record<string, string> = { RangeAssignor: 'range', RoundRobinAssignor: 'roundrobin', StickyAssignor: 'sticky', CooperativeStickyAssignor: 'cooperative-sticky' };
    options.partitionAssignors = value.split(',').map((name) => {
      const short = name.trim().split('.').pop()!;
      return byKafkaClass[short] ?? short;
    });
  },
};

export function consumerOptionsFrom(bootstrap: string, options: ConsumeCommandOptions): ConsumerOptions {
  const consumer: ConsumerOptions = { bootstrap, clientId: 'runnel-cli', autoOffsetReset: options.fromBeginning ? 'earliest' : 'latest' };
  if (options.group !== undefined) consumer.groupId = options.group;
  for (const property of options.consumerProperty) {
    const equals = property.indexOf('=');
    if (equals <= 0) throw new Error(`--consumer-property wants key=value, got '${property}'`);
    const key = property.slice(0, equals).trim();
    const apply = CONSUMER_PROPERTIES[key];
    if (apply === undefined) throw new Error(`--consumer-property: unknown key '${key}'; known: ${Object.keys(CONSUMER_PROPERTIES).join(', ')}`);
    apply(consumer, property.slice(equals + 1).trim(), key);
  }
  return consumer;
}

function formatRecord(record: ConsumerRecord, options: ConsumeCommandOptions): string {
  if (options.format === 'json') {
    return JSON.stringify({ partition: record.partition, offset: record.offset, timestamp: record.timestamp, key: record.key?.toString('utf8') ?? null, value: record.value?.toString('utf8') ?? null });
  }
  const value = record.value?.toString('utf8') ?? 'null';
  return options.printKey ? `${record.key?.toString('utf8') ?? 'null'}${options.keySeparator}${value}` : value;
}

async function startAssigned(consumer: Consumer, topic: string, options: ConsumeCommandOptions): Promise<void> {
  let partitions: TopicPartition[];
  if (options.partition !== undefined) {
    partitions = [{ topic, partition: options.partition }];
  } else {
    partitions = (await consumer.partitionsFor(topic)).map((partition) => ({ topic, partition }));
  }
  consumer.assign(partitions);
  const offset = options.offset === undefined ? undefined : parseOffset(options.offset);
  if (offset === 'earliest' || (offset === undefined && options.fromBeginning)) await consumer.seekToBeginning(partitions);
  else if (offset === 'latest' || offset === undefined) await consumer.seekToEnd(partitions);
  else consumer.seek(partitions[0]!, offset);
}

export async function consumeRecords(bootstrap: string, topic: string, options: ConsumeCommandOptions): Promise<number> {
  if (options.offset !== undefined && options.partition === undefined) throw new Error('--offset needs --partition');
  if (options.group !== undefined && options.partition !== undefined) throw new Error('--group and --partition cannot be used together: the group assigns the partitions');
  const consumer = new Consumer(consumerOptionsFrom(bootstrap, options));
  let printed = 0;
  let stopped = false;
  const stop = () => (stopped = true);
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    // With a group, a member without committed offsets starts where --from-beginning says (auto.offset.reset).
    if (options.group !== undefined) {
      await consumer.partitionsFor(topic); // a clear error for a topic that does not exist
      consumer.subscribe([topic]);
    } else {
      await startAssigned(consumer, topic, options);
    }
    let idleSince = Date.now();
    const out: string[] = [];
    while (!stopped && (options.maxMessages === undefined || printed < options.maxMessages)) {
      const records = await consumer.poll(500);
      if (records.length === 0) {
        if (options.timeoutMs !== undefined && Date.now() - idleSince >= options.timeoutMs) break;
        continue;
      }
      idleSince = Date.now();
      for (const record of records) {
        if (options.maxMessages !== undefined && printed >= options.maxMessages) {
          // What was not printed is not consumed: the group resumes from the first record left out.
          if (options.group !== undefined) consumer.seek({ topic: record.topic, partition: record.partition }, Math.min(record.offset, consumer.position(record) ?? record.offset));
          continue;
        }
        out.push(formatRecord(record, options));
        printed++;
      }
      if (!process.stdout.write(out.join('\n') + '\n')) await new Promise((resolve) => process.stdout.once('drain', resolve));
      out.length = 0;
    }
  } finally {
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
    await consumer.close();
  }
  return printed;
}
