// Consumer group lag from committed offsets and the leaders' high watermarks: this broker's own
// replicas answer for partitions it leads, other leaders are asked once each, and a partition with
// no leader or a leader that does not answer gets no lag rather than a made-up one.
import { describe, expect, it } from 'vitest';
import { groupLags, partitionKey, type GroupLagSources, type PartitionRef } from '../src/group/groupLag.js';

function sources(overrides: Partial<GroupLagSources> = {}): GroupLagSources & { remoteCalls: Array<{ address: string; partitions: PartitionRef[] }> } {
  const remoteCalls: Array<{ address: string; partitions: PartitionRef[] }> = [];
  const leaders: Record<string, 'local' | string | null> = { 'orders-0': 'local', 'orders-1': '10.0.0.2:9192', 'orders-2': '10.0.0.2:9192', 'orders-3': null, 'audit-0': '10.0.0.3:9192' };
  return {
    remoteCalls,
    committedOffsets: () => [
      { group: 'billing', topic: 'orders', partition: 0, offset: 10 },
      { group: 'billing', topic: 'orders', partition: 1, offset: 15 },
      { group: 'shipping', topic: 'orders', partition: 2, offset: 50 },
      { group: 'shipping', topic: 'orders', partition: 3, offset: 0 },
      { group: 'shipping', topic: 'audit', partition: 0, offset: 0 },
    ],
    leaderOf: (topic, partition) => leaders[`${topic}-${partition}`] ?? null,
    localHighWatermarks: (partitions) => new Map(partitions.map(({ topic, partition }) => [partitionKey(topic, partition), 30])),
    remoteHighWatermarks: async (address, partitions) => {
      remoteCalls.push({ address, partitions: [...partitions] });
      if (address === '10.0.0.3:9192') throw new Error('UNAVAILABLE');
      return new Map(partitions.map(({ topic, partition }) => [partitionKey(topic, partition), 20 + partition]));
    },
    ...overrides,
  };
}

describe('groupLags', () => {
  it('subtracts each committed offset from its leader\'s high watermark, asking each other leader once', async () => {
    const given = sources();
    const lags = await groupLags(given);
    expect(lags.map(({ group, topic, partition, highWatermark, lag }) => [group, `${topic}-${partition}`, highWatermark, lag])).toEqual([
      ['billing', 'orders-0', 30, 20],
      ['billing', 'orders-1', 21, 6],
      // Committed past the high watermark (a reset ahead of replication): no negative lag.
      ['shipping', 'orders-2', 22, 0],
    ]);
    expect(given.remoteCalls).toEqual([
      { address: '10.0.0.2:9192', partitions: [{ topic: 'orders', partition: 1 }, { topic: 'orders', partition: 2 }] },
      { address: '10.0.0.3:9192', partitions: [{ topic: 'audit', partition: 0 }] },
    ]);
  });

  it('is empty when nothing is committed here', async () => {
    expect(await groupLags(sources({ committedOffsets: () => [] }))).toEqual([]);
  });
});
