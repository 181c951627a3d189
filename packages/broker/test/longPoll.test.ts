// Waiting requests answer promptly and cheaply: a long poll re-reads only the partitions that had
// news, and a partition that is deleted or loses its leader completes its waiting acks=all
// produces and long polls at once, not at their timeout.
import { errorCode } from '@runnel/common';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { batchOf, followerFetch, leaderFixture, settle, TOPIC, TOPIC_ID, type LeaderFixture } from './leaderHarness.js';

const SOLO = { leader: 1, leaderEpoch: 1, partitionEpoch: 1, replicas: [1], isr: [1] };
const WITH_FOLLOWER = { leader: 1, leaderEpoch: 1, partitionEpoch: 1, replicas: [1, 2], isr: [1, 2] };
const WITH_FOLLOWERS = { leader: 1, leaderEpoch: 1, partitionEpoch: 1, replicas: [1, 2, 3], isr: [1, 2, 3] };

describe('long polls and waiting produces', () => {
  let fixture: LeaderFixture | undefined;
  afterEach(async () => {
    await fixture?.close();
    fixture = undefined;
  });

  it('re-reads only the partition that had news while a fetch waits', async () => {
    fixture = await leaderFixture({ brokerId: 1, role: SOLO });
    const { logs, replicas } = fixture;
    const quiet = await logs.openPartition(TOPIC, TOPIC_ID, 1, {}, 1);
    quiet.applyRole(SOLO, Date.now());
    const quietReads = vi.spyOn(quiet.log, 'read');
    const waiting = replicas.fetch({
      maxWaitMs: 5_000,
      minBytes: 2_000,
      maxBytes: 10_000_000,
      partitions: [0, 1].map((partition) => ({ topic: TOPIC, partition, fetchOffset: 0, partitionMaxBytes: 1_000_000 })),
    });
    await settle();
    const readsBefore = quietReads.mock.calls.length;
    for (let k = 0; k < 5; k++) {
      await replicas.produce(1, [{ topic: TOPIC, partition: 0, records: batchOf(3, `b${k}`) }]);
      await settle();
    }
    expect(quietReads.mock.calls.length).toBe(readsBefore);
    // A big enough append satisfies it; the answer is read whole, once.
    await replicas.produce(1, [{ topic: TOPIC, partition: 0, records: batchOf(40, 'y'.repeat(60)) }]);
    const results = await waiting;
    expect(results[0]!.records.length).toBeGreaterThan(2_000);
    expect(quietReads.mock.calls.length).toBe(readsBefore + 1);
  });

  it('answers a waiting acks=all produce and a long poll at once when the partition is deleted', async () => {
    fixture = await leaderFixture({ brokerId: 1, role: WITH_FOLLOWER });
    const { logs, replicas, controller } = fixture;
    const produce = replicas.produce(-1, [{ topic: TOPIC, partition: 0, records: batchOf(2) }], 20_000);
    const poll = replicas.fetch({ maxWaitMs: 20_000, minBytes: 1, maxBytes: 1_000_000, partitions: [{ topic: TOPIC, partition: 0, fetchOffset: 0, partitionMaxBytes: 1_000_000 }] });
    await settle();
    const started = Date.now();
    controller.exists = false; // the topic is gone from the metadata
    await logs.removePartition(TOPIC, 0);
    const [produced] = await produce;
    const [polled] = await poll;
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(produced!.errorCode).toBe(errorCode('UNKNOWN_TOPIC_OR_PARTITION'));
    expect(polled!.errorCode).toBe(errorCode('UNKNOWN_TOPIC_OR_PARTITION'));
  });

  it('answers a waiting acks=all produce and a follower\'s long poll at once when leadership moves', async () => {
    fixture = await leaderFixture({ brokerId: 1, role: WITH_FOLLOWERS });
    const { replicas, partition } = fixture;
    await followerFetch(replicas, partition, 2, 0);
    const produce = replicas.produce(-1, [{ topic: TOPIC, partition: 0, records: batchOf(2) }], 20_000);
    await settle();
    // 3 has the records and waits for more; 2 has not fetched them, so the produce waits too.
    const followerPoll = replicas.replicaFetch({
      replicaId: 3,
      brokerEpoch: 1,
      maxWaitMs: 20_000,
      minBytes: 1,
      maxBytes: 1_000_000,
      partitions: [{ topic: TOPIC, partition: 0, currentLeaderEpoch: 1, fetchOffset: 2, lastFetchedEpoch: -1, partitionMaxBytes: 1_000_000 }],
    });
    await settle();
    const started = Date.now();
    expect(partition.highWatermark).toBe(0);
    fixture.applyRole({ leader: 2, leaderEpoch: 2, partitionEpoch: 2, replicas: [1, 2, 3], isr: [1, 2, 3] });
    const [produced] = await produce;
    const [polled] = await followerPoll;
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(produced!.errorCode).toBe(errorCode('NOT_LEADER_OR_FOLLOWER'));
    expect(polled!.errorCode).toBe(errorCode('NOT_LEADER_OR_FOLLOWER'));
  });
});
