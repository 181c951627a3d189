// A node killed with SIGKILL in the middle of a produce loop restarts and serves every record it
// acknowledged, at the offset it acknowledged, with nothing invented.
import { describe, expect, it } from 'vitest';
import { useSingleNode } from './harness.js';
import { Admin, Consumer, Producer } from '@runnel/client';

describe('SIGKILL during produce', () => {
  const single = useSingleNode({ 'log.segment.bytes': '65536' });

  it('keeps every acknowledged record across three kill -9 and restart cycles', async () => {
    const admin = new Admin({ bootstrap: single.node.bootstrap });
    await admin.createTopics([{ name: 'crash', partitions: 2, replicationFactor: 1 }]);
    await admin.close();

    const producer = new Producer({ bootstrap: single.node.bootstrap, acks: 1, lingerMs: 1, deliveryTimeoutMs: 60_000, retryBackoffMs: 50 });
    const acknowledged = new Map<string, { partition: number; offset: number }>();
    const sent = new Set<string>();
    let failed = 0;
    let next = 0;
    const sendWindow = async (count: number) => {
      const window: Array<Promise<void>> = [];
      for (let i = 0; i < count; i++) {
        const value = `rec-${next++}`;
        sent.add(value);
        window.push(
          producer.send({ topic: 'crash', value, key: String(next % 7) }).then(
            (metadata) => void acknowledged.set(value, { partition: metadata.partition, offset: metadata.offset }),
            () => void failed++,
          ),
        );
      }
      return Promise.all(window);
    };

    for (let cycle = 0; cycle < 3; cycle++) {
      await sendWindow(3000);
      // Kill while a window is in flight: some sends are acknowledged, some outcomes are unknown.
      const inFlight = sendWindow(3000);
      await new Promise((resolve) => setTimeout(resolve, 20 + cycle * 15));
      await single.node.kill('SIGKILL');
      await single.node.launch();
      await inFlight;
    }
    await sendWindow(1000);
    await producer.close();
    expect(acknowledged.size).toBeGreaterThan(9000);

    const consumer = new Consumer({ bootstrap: single.node.bootstrap, autoOffsetReset: 'earliest' });
    const partitions = [0, 1].map((partition) => ({ topic: 'crash', partition }));
    consumer.assign(partitions);
    await consumer.seekToBeginning(partitions);
    const admin2 = new Admin({ bootstrap: single.node.bootstrap });
    const ends = await admin2.listOffsets(partitions.map((p) => ({ ...p, timestamp: 'latest' as const })));
    await admin2.close();
    const total = ends.reduce((sum, end) => sum + end.offset, 0);
    const stored = new Map<string, string>(); // "partition:offset" -> value
    const occurrences = new Map<string, number>();
    const expectedNext = [0, 0];
    while (stored.size < total) {
      const records = await consumer.poll(2000);
      expect(records.length, 'the log ended before its high watermark').toBeGreaterThan(0);
      for (const record of records) {
        expect(record.offset, 'offsets are dense and in order').toBe(expectedNext[record.partition]);
        expectedNext[record.partition]!++;
        const value = record.value!.toString();
        expect(sent.has(value), `record ${value} was never sent`).toBe(true);
        stored.set(`${record.partition}:${record.offset}`, value);
        occurrences.set(value, (occurrences.get(value) ?? 0) + 1);
      }
    }
    await consumer.close();

    for (const [value, where] of acknowledged) {
      expect(stored.get(`${where.partition}:${where.offset}`), `acknowledged ${value} at ${where.partition}:${where.offset}`).toBe(value);
    }
    // A record appears twice only if a send was retried after its first attempt's outcome was
    // lost in a kill (no idempotence yet): bounded by what was in flight at the three kills.
    const duplicated = [...occurrences.values()].filter((count) => count > 1).length;
    expect(duplicated).toBeLessThanOrEqual(3 * 3000);
    console.log(`crash test: sent ${sent.size}, acknowledged ${acknowledged.size}, failed ${failed}, stored ${stored.size}, duplicated ${duplicated}`);
  });
});
