// `runnel produce TOPIC`: one record per line of standard input, like kafka-console-producer.
import { createInterface } from 'node:readline';
import { Producer, type ProducerOptions } from '@runnel/client';
import type { CompressionCodec, RunnelError } from '@runnel/common';

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
/** The default delivery timeout of the producer: how long a record is retried before it fails. */
const DELIVERY_TIMEOUT_MS = 120_000;

/**
 * Retriable errors that rarely fix themselves: Kafka retries them (a new leader may take over),
 * and so does the producer, but a user staring at a silent terminal for the whole delivery
 * timeout should hear at once what is wrong and where to look.
 */
const OPERATOR_ERRORS: Readonly<Record<string, string>> = {
  KAFKA_STORAGE_ERROR: "the broker's log directory failed (a full disk?); see `runnel cluster health`",
};

/**
 * Prints one warning line per partition, to stderr, the first time a produce to it fails with an
 * error in OPERATOR_ERRORS; later failures of that partition stay quiet (retries can be many per second).
 */
export function operatorErrorWarner(write: (line: string) => void): (error: RunnelError, topic: string, partition: number) => void {
  const warned = new Set<string>();
  return (error, topic, partition) => {
    const hint = OPERATOR_ERRORS[error.errorName];
    const name = `${topic}-${partition}`;
    if (hint === undefined || warned.has(name)) return;
    warned.add(name);
    // The sender's detail starts by naming the partition again.
    const detail = error.detail.startsWith(`produce to ${name}: `) ? error.detail.slice(`produce to ${name}: `.length) : error.detail;
    write(`warning: produce to ${name} failed with ${error.errorName}: ${detail}. ${hint[0]!.toUpperCase()}${hint.slice(1)}. Retrying for up to ${DELIVERY_TIMEOUT_MS / 1000} s.\n`);
  };
}

export async function produceLines(bootstrap: string, topic: string, options: ProduceCommandOptions): Promise<number> {
  const producer = new Producer({ bootstrap, clientId: 'runnel-cli', acks: options.acks, lingerMs: options.lingerMs, batchSize: options.batchSize, compression: options.compression,
    deliveryTimeoutMs: DELIVERY_TIMEOUT_MS,
    onRetriableError: operatorErrorWarner((line) => process.stderr.write(line)),
  });
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
