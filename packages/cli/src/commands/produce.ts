// `runnel produce TOPIC`: one record per line of standard input, like kafka-console-producer.
import { createInterface } from 'node:readline';
import { Producer, type ProducerOptions } from '@runnel/client';
import type { CompressionCodec } from '@runnel/common';

export interface ProduceCommandOptions {
  keySeparator?: string;
  partition?: number;
  acks: ProducerOptions['acks'];
  lingerMs?: number;
  batchSize?: number;
  compression: CompressionCodec;
}

/** Acknowledgements awaited in groups of this many, so memory stays bounded on endless input. */
const PENDING_MAX = 10_000;

export async function produceLines(bootstrap: string, topic: string, options: ProduceCommandOptions): Promise<number> {
  const producer = new Producer({ bootstrap, clientId: 'runnel-cli', acks: options.acks, lingerMs: options.lingerMs, batchSize: options.batchSize, compression: options.compression });
  let pending: Array<Promise<unknown>> = [];
  let count = 0;
  let failure: unknown;
  try {
    const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
    for await (const line of lines) {
      let key: string | null = null;
      let value = line;
      if (options.keySeparator !== undefined) {
        const at = line.indexOf(options.keySeparator);
        if (at < 0) throw new Error(`line ${count + 1} has no key separator '${options.keySeparator}'`);
        key = line.slice(0, at);
        value = line.slice(at + options.keySeparator.length);
      }
      const sent = producer.send({ topic, key, value, partition: options.partition });
      sent.catch((error: unknown) => (failure ??= error));
      pending.push(sent);
      count++;
      if (pending.length >= PENDING_MAX) {
        await Promise.all(pending);
        pending = [];
      }
    }
    await Promise.all(pending);
  } finally {
    await producer.close();
  }
  if (failure !== undefined) throw failure;
  return count;
}
