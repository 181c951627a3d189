// Background clients for the group suites: a producer sending keyed acks=all records in rounds,
// and consumer group members polling until stopped, each keeping what it was told.
import { Consumer, Producer, type ConsumerOptions, type ConsumerRecord, type ProducerOptions, type RebalanceListener } from '@runnel/client';

/** Produces keyed records in rounds until stopped (bounded by `roundsMax`), keeping what was acknowledged. */
export function startProducing(
  bootstrap: string[],
  topic: string,
  perRound: number,
  roundsMax: number,
  options: Partial<ProducerOptions> = {},
): { acked: Array<{ partition: number; offset: number }>; stop(): Promise<void> } {
  const producer = new Producer({ bootstrap, acks: 'all', lingerMs: 5, ...options });
  const acked: Array<{ partition: number; offset: number }> = [];
  let stopped = false;
  const loop = (async () => {
    for (let round = 0; round < roundsMax && !stopped; round++) {
      const sent = await Promise.all(Array.from({ length: perRound }, (_, i) => producer.send({ topic, key: `k${round}-${i}`, value: `r${round}-${i}` })));
      for (const metadata of sent) acked.push({ partition: metadata.partition, offset: metadata.offset });
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  return {
    acked,
    async stop() {
      stopped = true;
      await loop;
      await producer.close();
    },
  };
}

export interface Member {
  readonly consumer: Consumer;
  readonly records: ConsumerRecord[];
  stop(): Promise<void>;
}

/** Polls in the background until stopped, keeping every record it got; a poll that throws fails stop(). */
export function startMember(options: ConsumerOptions, topics: string[], listener: RebalanceListener = {}): Member {
  const consumer = new Consumer(options);
  const records: ConsumerRecord[] = [];
  let stopped = false;
  consumer.subscribe(topics, listener);
  const loop = (async (): Promise<unknown> => {
    try {
      while (!stopped) records.push(...(await consumer.poll(200)));
      return undefined;
    } catch (error) {
      return error;
    }
  })();
  return {
    consumer,
    records,
    async stop() {
      stopped = true;
      const error = await loop;
      await consumer.close();
      if (error !== undefined) throw error;
    },
  };
}
