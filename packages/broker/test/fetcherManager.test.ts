// One fetcher per leader broker: a leader that comes back on another address takes every
// partition followed there along, and a fetcher left with nothing to follow is closed.
import { createLogger } from '@runnel/common';
import { afterEach, describe, expect, it } from 'vitest';
import { ReplicaFetcherManager } from '../src/followerFetcher.js';
import { BrokerMetrics } from '../src/metrics.js';
import { leaderFixture, TOPIC, TOPIC_ID, type LeaderFixture } from './leaderHarness.js';

const FOLLOWING_2 = { leader: 2, leaderEpoch: 1, partitionEpoch: 1, replicas: [2, 1], isr: [2, 1] };

describe('ReplicaFetcherManager', () => {
  let fixture: LeaderFixture | undefined;
  let fetchers: ReplicaFetcherManager | undefined;
  afterEach(async () => {
    await fetchers?.stop();
    await fixture?.close();
    fixture = undefined;
  });

  it('moves every partition to a leader\'s new address and closes fetchers that follow nothing', async () => {
    fixture = await leaderFixture({ brokerId: 1, role: FOLLOWING_2 });
    const first = fixture.partition;
    const second = await fixture.logs.openPartition(TOPIC, TOPIC_ID, 1, {}, 1);
    second.applyRole(FOLLOWING_2, Date.now());
    fetchers = new ReplicaFetcherManager({
      brokerId: 1,
      brokerEpoch: () => 1,
      partitionMaxBytes: 1024 * 1024,
      responseMaxBytes: 10 * 1024 * 1024,
      maxWaitMs: 500,
      logger: createLogger({ name: 'test', level: 'silent' }),
      metrics: new BrokerMetrics(),
    });
    // Nothing listens on these ports: the fetchers only retry; what matters is where they point.
    fetchers.follow(first, 2, '127.0.0.1:1');
    fetchers.follow(second, 2, '127.0.0.1:1');
    expect(fetchers.fetcherCount).toBe(1);

    // Broker 2 restarted on another address; the metadata names it for `first` first.
    fetchers.follow(first, 2, '127.0.0.1:2');
    expect(fetchers.fetchedFrom(first)).toBe('127.0.0.1:2');
    expect(fetchers.fetchedFrom(second)).toBe('127.0.0.1:2');
    expect(fetchers.fetcherCount).toBe(1);

    fetchers.stopFollowing(first);
    expect(fetchers.fetcherCount).toBe(1);
    fetchers.stopFollowing(second);
    expect(fetchers.fetcherCount).toBe(0);
  });
});
