// `runnel consume TOPIC`: prints record values, one per line, like kafka-console-consumer.
import { Consumer, type TopicPartition } from '@runnel/client';

export interface ConsumeCommandOptions {
  fromBeginning: boolean;
  maxMessages?: number;
  partition?: number;
  offset?: string;
  timeoutMs?: number;
  printKey: boolean;
  keySeparator: string;
  format: 'value' | 'json';
}

function parseOffset(text: string): number | 'earliest' | 'latest' {
  if (text === 'earliest' || text === 'beginning') return 'earliest';
  if (text === 'latest' || text === 'end') return 'latest';
  if (!/^\d+$/.test(text)) throw new Error(`--offset must be a non-negative number, 'earliest' or 'latest', got '${text}'`);
  return Number(text);
}

export async function consumeRecords(bootstrap: string, topic: string, options: ConsumeCommandOptions): Promise<number> {
  if (options.offset !== undefined && options.partition === undefined) throw new Error('--offset needs --partition');
  const consumer = new Consumer({ bootstrap, clientId: 'runnel-cli', autoOffsetReset: options.fromBeginning ? 'earliest' : 'latest' });
  let printed = 0;
  let stopped = false;
  const stop = () => (stopped = true);
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
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
        if (options.maxMessages !== undefined && printed >= options.maxMessages) break;
        const value = record.value?.toString('utf8') ?? 'null';
        if (options.format === 'json') {
          out.push(JSON.stringify({ partition: record.partition, offset: record.offset, timestamp: record.timestamp, key: record.key?.toString('utf8') ?? null, value: record.value?.toString('utf8') ?? null }));
        } else {
          out.push(options.printKey ? `${record.key?.toString('utf8') ?? 'null'}${options.keySeparator}${value}` : value);
        }
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
