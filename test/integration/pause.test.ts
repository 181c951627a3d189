// A node stopped with SIGSTOP answers nothing (clients time out with a retriable error) and,
// after SIGCONT, serves again with its data intact.
import { describe, expect, it } from 'vitest';
import { useSingleNode } from './harness.js';
import { Admin, Consumer, Producer } from '@runnel/client';
import { RunnelError } from '@runnel/common';

describe('SIGSTOP and SIGCONT', () => {
  const single = useSingleNode();

  it('times out while paused and serves every acknowledged record after resuming', async () => {
    const admin = new Admin({ bootstrap: single.node.bootstrap, requestTimeoutMs: 1000 });
    await admin.createTopics([{ name: 'paused', partitions: 1, replicationFactor: 1 }]);
    const producer = new Producer({ bootstrap: single.node.bootstrap, acks: 1, lingerMs: 0, requestTimeoutMs: 1000, deliveryTimeoutMs: 60_000 });
    for (let i = 0; i < 100; i++) await producer.send({ topic: 'paused', value: `before-${i}` });

    single.node.pause();
    const failure = await admin.listTopics().then(
      () => null,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(RunnelError);
    expect((failure as RunnelError).retriable).toBe(true);
    // A send issued while paused is retried by the producer and lands after the resume.
    const during = producer.send({ topic: 'paused', value: 'during' });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    single.node.resume();
    const landed = await during;
    expect(landed.offset).toBe(100);
    await producer.close();

    expect(await admin.listTopics()).toEqual(['paused']);
    await admin.close();
    const consumer = new Consumer({ bootstrap: single.node.bootstrap, autoOffsetReset: 'earliest' });
    consumer.assign([{ topic: 'paused', partition: 0 }]);
    const values: string[] = [];
    while (values.length < 101) {
      const records = await consumer.poll(2000);
      expect(records.length).toBeGreaterThan(0);
      values.push(...records.map((record) => record.value!.toString()));
    }
    await consumer.close();
    expect(values).toEqual([...Array.from({ length: 100 }, (_, i) => `before-${i}`), 'during']);
  });
});
