import { describe, expect, it } from 'vitest';
import { INVARIANTS, MetadataImage, MetadataInvariantError, diffImages, type MetadataRecord } from '../src/index.js';
import { violation } from './violation.js';

const register = (brokerId: number, rack: string | null = null): MetadataRecord => ({
  type: 'RegisterBroker',
  brokerId,
  incarnationId: `i${brokerId}`,
  listeners: [{ name: 'PLAINTEXT', host: 'localhost', port: 9091 + brokerId }],
  rack,
});

/** Three unfenced brokers (epochs 0, 1, 2) and topic 'a' (id 'A') with two partitions. */
function base(): MetadataImage {
  return MetadataImage.empty().applyAll(
    [
      register(1),
      register(2),
      register(3),
      { type: 'UnfenceBroker', brokerId: 1, brokerEpoch: 0 },
      { type: 'UnfenceBroker', brokerId: 2, brokerEpoch: 1 },
      { type: 'UnfenceBroker', brokerId: 3, brokerEpoch: 2 },
      { type: 'Topic', name: 'a', topicId: 'A' },
      { type: 'Config', resourceType: 'topic', resourceName: 'a', name: 'retention.ms', value: '1000' },
      { type: 'Partition', topicId: 'A', partition: 0, replicas: [1, 2, 3], isr: [1, 2, 3], leader: 1, leaderEpoch: 0, partitionEpoch: 0 },
      { type: 'Partition', topicId: 'A', partition: 1, replicas: [2, 3, 1], isr: [2, 3, 1], leader: 2, leaderEpoch: 0, partitionEpoch: 0 },
    ],
    0,
  );
}

describe('MetadataImage', () => {
  it('builds brokers, topics, configs and partitions from records', () => {
    const image = base();
    expect(image.highestOffset).toBe(9);
    expect(image.brokers().map((broker) => [broker.id, broker.epoch, broker.fenced])).toEqual([
      [1, 0, false],
      [2, 1, false],
      [3, 2, false],
    ]);
    expect(image.broker(2)!.listeners).toEqual([{ name: 'PLAINTEXT', host: 'localhost', port: 9093 }]);
    expect(image.topic('a')!.id).toBe('A');
    expect(image.topicById('A')!.name).toBe('a');
    expect(image.topicConfigs('a').get('retention.ms')).toBe('1000');
    expect(image.partition('a', 1)).toMatchObject({ replicas: [2, 3, 1], isr: [2, 3, 1], leader: 2, leaderEpoch: 0, partitionEpoch: 0 });
    expect(image.partitionsLedBy(2)).toEqual([{ topic: 'a', topicId: 'A', partition: 1 }]);
    expect(image.leaderCount(1)).toBe(1);
    expect(image.partitionCount()).toBe(2);
  });

  it('is immutable: apply returns a new image and leaves the old one as it was', () => {
    const before = base();
    const after = before.apply({ type: 'PartitionChange', topicId: 'A', partition: 0, leader: 2, isr: [2, 3], leaderEpoch: 1, partitionEpoch: 1 }, 10);
    expect(before.partition('a', 0)).toMatchObject({ leader: 1, isr: [1, 2, 3] });
    expect(after.partition('a', 0)).toMatchObject({ leader: 2, isr: [2, 3], leaderEpoch: 1, partitionEpoch: 1 });
    expect(before.leaderCount(2)).toBe(1);
    expect(after.leaderCount(2)).toBe(2);
    expect(Object.isFrozen(after.partition('a', 0))).toBe(true);
    expect(() => (after.partition('a', 0)!.isr as number[]).push(1)).toThrow();
  });

  it('shares what a record did not touch', () => {
    const before = base().applyAll(
      [
        { type: 'Topic', name: 'b', topicId: 'B' },
        { type: 'Partition', topicId: 'B', partition: 0, replicas: [3], isr: [3], leader: 3, leaderEpoch: 0, partitionEpoch: 0 },
      ],
      10,
    );
    const after = before.apply({ type: 'PartitionChange', topicId: 'A', partition: 1, leader: 3, isr: [3, 1], leaderEpoch: 1, partitionEpoch: 1 }, 12);
    expect(after.topic('b')).toBe(before.topic('b'));
    expect(after.topic('a')).not.toBe(before.topic('a'));
    expect(after.partition('a', 0)).toBe(before.partition('a', 0));
  });

  it('fences and unfences brokers, and a re-registration starts fenced with a new epoch', () => {
    let image = base();
    image = image.applyAll(
      [
        { type: 'PartitionChange', topicId: 'A', partition: 0, leader: 2, isr: [2, 3], leaderEpoch: 1, partitionEpoch: 1 },
        { type: 'FenceBroker', brokerId: 1, brokerEpoch: 0 },
      ],
      10,
    );
    expect(image.broker(1)!.fenced).toBe(true);
    image = image.apply(register(1, 'r9'), 12);
    expect(image.broker(1)).toMatchObject({ fenced: true, epoch: 12, rack: 'r9' });
    expect(violation(image, { type: 'UnfenceBroker', brokerId: 1, brokerEpoch: 0 })).toBe(INVARIANTS.brokerEpochMatches);
    image = image.apply({ type: 'UnfenceBroker', brokerId: 1, brokerEpoch: 12 }, 13);
    expect(image.broker(1)!.fenced).toBe(false);
  });

  it('removes a topic with its configs, and the name can be reused with a new id', () => {
    let image = base().apply({ type: 'RemoveTopic', topicId: 'A' }, 10);
    expect(image.topic('a')).toBeUndefined();
    expect(image.topicById('A')).toBeUndefined();
    expect(image.topicConfigs('a').size).toBe(0);
    expect(image.leaderCount(1)).toBe(0);
    image = image.applyAll(
      [
        { type: 'Topic', name: 'a', topicId: 'A2' },
        { type: 'Partition', topicId: 'A2', partition: 0, replicas: [3], isr: [3], leader: 3, leaderEpoch: 0, partitionEpoch: 0 },
      ],
      11,
    );
    expect(image.topic('a')!.id).toBe('A2');
  });

  it('sets and deletes config keys', () => {
    let image = base().apply({ type: 'Config', resourceType: 'cluster', resourceName: '', name: 'unclean.leader.election.enable', value: 'true' }, 10);
    expect(image.config('cluster', '').get('unclean.leader.election.enable')).toBe('true');
    image = image.apply({ type: 'Config', resourceType: 'cluster', resourceName: '', name: 'unclean.leader.election.enable', value: null }, 11);
    expect(image.config('cluster', '').size).toBe(0);
  });

  it.each<[string, MetadataRecord]>([
    [INVARIANTS.leaderInIsr, { type: 'PartitionChange', topicId: 'A', partition: 0, leader: 1, isr: [2, 3], leaderEpoch: 0, partitionEpoch: 1 }],
    [INVARIANTS.isrSubsetOfReplicas, { type: 'PartitionChange', topicId: 'A', partition: 0, leader: 1, isr: [1, 4], leaderEpoch: 0, partitionEpoch: 1 }],
    [INVARIANTS.partitionEpochAdvances, { type: 'PartitionChange', topicId: 'A', partition: 0, leader: 1, isr: [1, 2], leaderEpoch: 0, partitionEpoch: 0 }],
    [INVARIANTS.partitionEpochAdvances, { type: 'PartitionChange', topicId: 'A', partition: 0, leader: 1, isr: [1, 2], leaderEpoch: 0, partitionEpoch: 2 }],
    [INVARIANTS.leaderChangeBumpsEpoch, { type: 'PartitionChange', topicId: 'A', partition: 0, leader: 2, isr: [1, 2], leaderEpoch: 0, partitionEpoch: 1 }],
    [INVARIANTS.leaderChangeBumpsEpoch, { type: 'PartitionChange', topicId: 'A', partition: 0, leader: -1, isr: [1], leaderEpoch: 0, partitionEpoch: 1 }],
    [INVARIANTS.replicaSetChange, { type: 'PartitionChange', topicId: 'A', partition: 0, leader: 1, isr: [1], leaderEpoch: 0, partitionEpoch: 1, replicas: [1, 2] }],
    [INVARIANTS.replicaSetChange, { type: 'PartitionChange', topicId: 'A', partition: 0, leader: 1, isr: [1], leaderEpoch: 0, partitionEpoch: 1, replicas: [1, 2, 4] }],
    [INVARIANTS.replicaSetChange, { type: 'PartitionChange', topicId: 'A', partition: 0, leader: 1, isr: [1], leaderEpoch: 0, partitionEpoch: 1, replicas: [1, 4], addingReplicas: [4] }],
    [INVARIANTS.movingReplicasConsistent, { type: 'PartitionChange', topicId: 'A', partition: 0, leader: 1, isr: [1], leaderEpoch: 0, partitionEpoch: 1, replicas: [2, 3, 4, 1], addingReplicas: [4], removingReplicas: [2] }],
    [INVARIANTS.movingReplicasConsistent, { type: 'PartitionChange', topicId: 'A', partition: 0, leader: 1, isr: [1], leaderEpoch: 0, partitionEpoch: 1, replicas: [2, 3, 4, 1], addingReplicas: [4, 5], removingReplicas: [1] }],
    [INVARIANTS.movingReplicasConsistent, { type: 'PartitionChange', topicId: 'A', partition: 0, leader: 1, isr: [1], leaderEpoch: 0, partitionEpoch: 1, replicas: [1, 2, 3], removingReplicas: [1, 2, 3] }],
    [INVARIANTS.isrNotEmpty, { type: 'PartitionChange', topicId: 'A', partition: 0, leader: -1, isr: [], leaderEpoch: 1, partitionEpoch: 1 }],
    [INVARIANTS.fencedLeadsNothing, { type: 'FenceBroker', brokerId: 1, brokerEpoch: 0 }],
    [INVARIANTS.fencedLeadsNothing, register(2)],
    [INVARIANTS.knownReference, { type: 'PartitionChange', topicId: 'Z', partition: 0, leader: 1, isr: [1], leaderEpoch: 0, partitionEpoch: 1 }],
    [INVARIANTS.knownReference, { type: 'PartitionChange', topicId: 'A', partition: 7, leader: 1, isr: [1], leaderEpoch: 0, partitionEpoch: 1 }],
    [INVARIANTS.knownReference, { type: 'FenceBroker', brokerId: 9, brokerEpoch: 0 }],
    [INVARIANTS.uniqueTopics, { type: 'Topic', name: 'a', topicId: 'other' }],
    [INVARIANTS.uniqueTopics, { type: 'Topic', name: 'other', topicId: 'A' }],
    [INVARIANTS.partitionsInOrder, { type: 'Partition', topicId: 'A', partition: 5, replicas: [1], isr: [1], leader: 1, leaderEpoch: 0, partitionEpoch: 0 }],
    [INVARIANTS.replicasDistinct, { type: 'Partition', topicId: 'A', partition: 2, replicas: [1, 1], isr: [1], leader: 1, leaderEpoch: 0, partitionEpoch: 0 }],
  ])('asserts %s', (invariant, record) => {
    expect(violation(base(), record)).toBe(invariant);
  });

  it('asserts that the leader epoch never decreases', () => {
    const image = base().apply({ type: 'PartitionChange', topicId: 'A', partition: 0, leader: 2, isr: [1, 2], leaderEpoch: 1, partitionEpoch: 1 }, 10);
    expect(violation(image, { type: 'PartitionChange', topicId: 'A', partition: 0, leader: 2, isr: [2], leaderEpoch: 0, partitionEpoch: 2 })).toBe(INVARIANTS.leaderEpochMonotonic);
  });

  it('asserts that a leader is an unfenced broker', () => {
    const image = base().applyAll(
      [
        { type: 'PartitionChange', topicId: 'A', partition: 0, leader: 2, isr: [2, 3], leaderEpoch: 1, partitionEpoch: 1 },
        { type: 'FenceBroker', brokerId: 1, brokerEpoch: 0 },
      ],
      10,
    );
    expect(violation(image, { type: 'PartitionChange', topicId: 'A', partition: 1, leader: 1, isr: [2, 3, 1], leaderEpoch: 1, partitionEpoch: 1 })).toBe(INVARIANTS.leaderUnfenced);
  });

  it('asserts that offsets increase, and a failed batch leaves nothing behind', () => {
    const image = base();
    expect(() => image.apply({ type: 'RemoveTopic', topicId: 'A' }, 9)).toThrow(/offsets increase/);
    expect(() =>
      image.applyAll(
        [
          { type: 'RemoveTopic', topicId: 'A' },
          { type: 'FenceBroker', brokerId: 9, brokerEpoch: 0 },
        ],
        10,
      ),
    ).toThrow(MetadataInvariantError);
    expect(image.topic('a')).toBeDefined();
  });

  it('applies metadata for 10,000 partitions quickly, one change at a time', () => {
    const started = performance.now();
    const partitions = 10_000;
    const records: MetadataRecord[] = [register(1), register(2), register(3)];
    for (const id of [1, 2, 3]) records.push({ type: 'UnfenceBroker', brokerId: id, brokerEpoch: id - 1 });
    records.push({ type: 'Topic', name: 'big', topicId: 'BIG' });
    for (let partition = 0; partition < partitions; partition++) {
      const replicas = [1 + (partition % 3), 1 + ((partition + 1) % 3), 1 + ((partition + 2) % 3)];
      records.push({ type: 'Partition', topicId: 'BIG', partition, replicas, isr: replicas, leader: replicas[0]!, leaderEpoch: 0, partitionEpoch: 0 });
    }
    let image = MetadataImage.empty().applyAll(records, 0);
    const created = image;
    for (let partition = 0; partition < partitions; partition++) {
      const state = image.partition('big', partition)!;
      const isr = state.isr.filter((id) => id !== 3);
      const leader = state.leader === 3 ? isr[0]! : state.leader;
      image = image.apply(
        { type: 'PartitionChange', topicId: 'BIG', partition, leader, isr, leaderEpoch: state.leaderEpoch + (leader === state.leader ? 0 : 1), partitionEpoch: state.partitionEpoch + 1 },
        image.highestOffset + 1,
      );
    }
    image = image.apply({ type: 'FenceBroker', brokerId: 3, brokerEpoch: 2 }, image.highestOffset + 1);
    const elapsedMs = performance.now() - started;
    expect(image.leaderCount(3)).toBe(0);
    expect(image.leaderCount(1) + image.leaderCount(2)).toBe(partitions);
    expect(created.partition('big', 9_999)!.isr).toHaveLength(3);
    expect(elapsedMs).toBeLessThan(3000);
  });
});

describe('diffImages', () => {
  it('tells a broker which partitions to lead, follow, and stop and delete', () => {
    const before = base();
    const after = before.applyAll(
      [
        { type: 'PartitionChange', topicId: 'A', partition: 0, leader: 2, isr: [2, 3], leaderEpoch: 1, partitionEpoch: 1 },
        { type: 'Topic', name: 'b', topicId: 'B' },
        { type: 'Partition', topicId: 'B', partition: 0, replicas: [1, 3], isr: [1, 3], leader: 1, leaderEpoch: 0, partitionEpoch: 0 },
        { type: 'Partition', topicId: 'B', partition: 1, replicas: [3], isr: [3], leader: 3, leaderEpoch: 0, partitionEpoch: 0 },
      ],
      10,
    );
    expect(diffImages(before, after, 2)).toEqual({
      brokerId: 2,
      lead: [{ topic: 'a', topicId: 'A', partition: 0, leaderEpoch: 1, partitionEpoch: 1, replicas: [1, 2, 3], isr: [2, 3] }],
      follow: [],
      stopAndDelete: [],
    });
    const forOne = diffImages(before, after, 1);
    expect(forOne.lead).toEqual([{ topic: 'b', topicId: 'B', partition: 0, leaderEpoch: 0, partitionEpoch: 0, replicas: [1, 3], isr: [1, 3] }]);
    expect(forOne.follow).toEqual([{ topic: 'a', topicId: 'A', partition: 0, leader: 2, leaderEpoch: 1, partitionEpoch: 1 }]);
    const forThree = diffImages(before, after, 3);
    expect(forThree.lead.map((entry) => `${entry.topic}-${entry.partition}`)).toEqual(['b-1']);
    expect(forThree.follow.map((entry) => `${entry.topic}-${entry.partition}`)).toEqual(['a-0', 'b-0']);

    const deleted = after.applyAll(
      [
        { type: 'RemoveTopic', topicId: 'B' },
        // A move of A-1 from [2,3,1] to [2,3,4]: started, then completed.
        { type: 'PartitionChange', topicId: 'A', partition: 1, leader: 2, isr: [2, 3], leaderEpoch: 0, partitionEpoch: 1, replicas: [2, 3, 4, 1], addingReplicas: [4], removingReplicas: [1] },
        { type: 'PartitionChange', topicId: 'A', partition: 1, leader: 2, isr: [2, 3], leaderEpoch: 0, partitionEpoch: 2, replicas: [2, 3, 4] },
      ],
      14,
    );
    expect(diffImages(after, deleted, 1).stopAndDelete).toEqual([
      { topic: 'a', topicId: 'A', partition: 1, reason: 'replica-reassigned' },
      { topic: 'b', topicId: 'B', partition: 0, reason: 'topic-deleted' },
    ]);
    expect(diffImages(after, deleted, 9)).toEqual({ brokerId: 9, lead: [], follow: [], stopAndDelete: [] });
    expect(diffImages(after, after, 1)).toEqual({ brokerId: 1, lead: [], follow: [], stopAndDelete: [] });
  });

  it('reports an offline partition to its followers with leader -1', () => {
    const before = base().apply({ type: 'PartitionChange', topicId: 'A', partition: 0, leader: 1, isr: [1], leaderEpoch: 0, partitionEpoch: 1 }, 10);
    const after = before.applyAll(
      [
        { type: 'PartitionChange', topicId: 'A', partition: 0, leader: -1, isr: [1], leaderEpoch: 1, partitionEpoch: 2 },
        { type: 'PartitionChange', topicId: 'A', partition: 1, leader: 2, isr: [2, 3], leaderEpoch: 0, partitionEpoch: 1 },
        { type: 'FenceBroker', brokerId: 1, brokerEpoch: 0 },
      ],
      11,
    );
    expect(diffImages(before, after, 2).follow).toEqual([{ topic: 'a', topicId: 'A', partition: 0, leader: -1, leaderEpoch: 1, partitionEpoch: 2 }]);
    expect(diffImages(before, after, 2).lead.map((entry) => entry.partition)).toEqual([1]);
  });
});
