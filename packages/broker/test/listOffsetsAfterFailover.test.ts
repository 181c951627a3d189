// KIP-207: a new leader starts from its follower high watermark, which can be below what the
// previous leader answered. Until its watermark reaches the start of its epoch it answers
// ListOffsets with OFFSET_NOT_AVAILABLE (retriable), so `latest` never goes backwards.
import { errorCode, encodeRecordBatch } from '@runnel/common';
import { afterEach, describe, expect, it } from 'vitest';
import { LATEST_TIMESTAMP } from '../src/replicaManager.js';
import { followerFetch, leaderFixture, TOPIC, type LeaderFixture } from './leaderHarness.js';

describe('ListOffsets after a leader change', () => {
  let fixture: LeaderFixture | undefined;
  afterEach(async () => {
    await fixture?.close();
    fixture = undefined;
  });

  it('answers OFFSET_NOT_AVAILABLE until the new leader\'s high watermark reaches its epoch start', async () => {
    // Broker 1 follows 2 and has fetched a burst of ten records that 2 acknowledged (2 answered
    // latest = 10), but 1 has heard only of a watermark of 4 so far.
    fixture = await leaderFixture({ brokerId: 1, role: { leader: 2, leaderEpoch: 1, partitionEpoch: 1, replicas: [2, 1], isr: [2, 1] } });
    const { partition, replicas } = fixture;
    const burst = encodeRecordBatch(Array.from({ length: 10 }, (_, k) => ({ value: Buffer.from(`v${k}`) })), { baseOffset: 0, partitionLeaderEpoch: 1 });
    await partition.log.append(burst, { assignOffsets: false });
    partition.updateFollowerHighWatermark(4);
    const answeredByOldLeader = 10;

    // 2 fails; 1 leads at epoch 2.
    fixture.applyRole({ leader: 1, leaderEpoch: 2, partitionEpoch: 2, replicas: [2, 1], isr: [1, 2] });
    const latest = () => replicas.listOffsets([{ topic: TOPIC, partition: 0, timestamp: LATEST_TIMESTAMP }])[0]!;
    const early = latest();
    expect(early.errorCode).toBe(errorCode('OFFSET_NOT_AVAILABLE'));

    // 2 comes back as a follower and catches up: the watermark reaches the epoch start.
    await followerFetch(replicas, partition, 2, 10);
    const later = latest();
    expect(later.errorCode).toBe(0);
    expect(later.offset).toBeGreaterThanOrEqual(answeredByOldLeader);
  });
});
