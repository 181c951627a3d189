import { describe, expect, it } from 'vitest';
import type { PartitionsToCreate } from '../src/index.js';
import { Cluster } from './cluster.js';

/** Error codes: UNKNOWN_TOPIC_OR_PARTITION 3, INVALID_PARTITIONS 37, INVALID_REPLICATION_FACTOR 38, INVALID_REPLICA_ASSIGNMENT 39, INVALID_REQUEST 42. */
function grow(cluster: Cluster, topics: PartitionsToCreate[], validateOnly = false) {
  return cluster.logic.createPartitions(cluster.image, { topics, validateOnly });
}

describe('createPartitions', () => {
  it('adds partitions current..count-1 with the topic replication factor; ISR = replicas, leader = replicas[0], epochs 0', () => {
    const cluster = new Cluster(3);
    cluster.start([1, 2, 3]);
    cluster.createTopic('orders', 3, 3);
    const before = cluster.partitions('orders');
    const result = grow(cluster, [{ name: 'orders', count: 6 }]);
    expect(result.response.topics).toEqual([{ name: 'orders', errorCode: 0, errorMessage: '' }]);
    expect(result.records.map((record) => record.type)).toEqual(['Partition', 'Partition', 'Partition']);
    cluster.commit(result);
    const after = cluster.partitions('orders');
    expect(after).toHaveLength(6);
    expect(after.slice(0, 3)).toEqual(before);
    for (const state of after.slice(3)) {
      expect(state.replicas).toHaveLength(3);
      expect(new Set(state.replicas).size).toBe(3);
      expect(state).toMatchObject({ isr: state.replicas, leader: state.replicas[0], leaderEpoch: 0, partitionEpoch: 0 });
    }
    // The new leaders go round-robin: one each.
    expect(after.slice(3).map((state) => state.leader).sort()).toEqual([1, 2, 3]);
  });

  it('places new replicas rack-aware: every new partition spans as many racks as it has replicas', () => {
    const cluster = new Cluster(11);
    cluster.start([1, 2, 3, 4, 5, 6], ['a', 'a', 'b', 'b', 'c', 'c']);
    cluster.createTopic('t', 2, 3);
    cluster.commit(grow(cluster, [{ name: 't', count: 14 }]));
    const rackOf = (id: number) => cluster.image.broker(id)!.rack;
    for (const state of cluster.partitions('t').slice(2)) expect(new Set(state.replicas.map(rackOf)).size).toBe(3);
  });

  it('places only on usable brokers; too few of them is INVALID_REPLICATION_FACTOR, naming the count', () => {
    const cluster = new Cluster();
    cluster.start([1, 2, 3, 4]);
    cluster.createTopic('t', 2, 3);
    cluster.advance(9001);
    cluster.heartbeatAll([4]);
    cluster.commit(cluster.logic.fenceExpiredBrokers(cluster.image, cluster.nowMs));
    cluster.commit(grow(cluster, [{ name: 't', count: 8 }]));
    for (const state of cluster.partitions('t').slice(2)) expect(state.replicas).not.toContain(4);
    cluster.advance(9001);
    cluster.heartbeatAll([3, 4]);
    cluster.commit(cluster.logic.fenceExpiredBrokers(cluster.image, cluster.nowMs));
    const refused = grow(cluster, [{ name: 't', count: 9 }]);
    expect(refused.records).toEqual([]);
    expect(refused.response.topics[0]).toMatchObject({ errorCode: 38, errorMessage: expect.stringMatching(/unable to replicate the partition 3 time\(s\).*2 available broker/) });
  });

  it('refuses a missing topic, a count that is not an increase, a topic named twice, and counts over the limits', () => {
    const cluster = new Cluster(1, { partitionsPerRequestMax: 10 });
    cluster.start([1, 2]);
    cluster.createTopic('three', 3, 1);
    cluster.createTopic('small', 1, 1);
    cluster.createTopic('twice', 1, 1);
    const result = grow(cluster, [
      { name: 'missing', count: 4 },
      { name: 'three', count: 3 },
      { name: 'three-less', count: 2 },
      { name: 'twice', count: 2 },
      { name: 'twice', count: 3 },
      { name: 'small', count: 11 },
    ]);
    cluster.createTopic('three-less', 3, 1);
    const again = grow(cluster, [{ name: 'three-less', count: 2 }, { name: 'three', count: 9 }, { name: 'small', count: 6 }, { name: 'two', count: Number.NaN }]);
    expect(result.response.topics.map((topic) => [topic.name, topic.errorCode])).toEqual([
      ['missing', 3],
      ['three', 37],
      ['three-less', 3],
      ['twice', 42],
      ['twice', 42],
      ['small', 37],
    ]);
    expect(result.response.topics[1]!.errorMessage).toBe('the topic already has 3 partition(s)');
    expect(result.response.topics[3]!.errorMessage).toMatch(/appears more than once/);
    expect(result.response.topics[5]!.errorMessage).toMatch(/over the limit of 10 per topic/);
    expect(result.records).toEqual([]);
    expect(again.response.topics.map((topic) => topic.errorCode)).toEqual([37, 0, 37, 3]);
    expect(again.response.topics[0]!.errorMessage).toBe('the topic currently has 3 partition(s); 2 would not be an increase (partitions cannot be removed)');
    // 'three' took 6 of the request's 10; 'small' wants 5 more.
    expect(again.response.topics[2]!.errorMessage).toMatch(/5 new partitions is over the limit of 4 left in this request/);
    cluster.commit(again);
    expect(cluster.image.topic('three')!.partitionCount).toBe(9);
    expect(cluster.image.topic('small')!.partitionCount).toBe(1);
  });

  it('takes manual assignments as given, the first active replica leading', () => {
    const cluster = new Cluster();
    cluster.start([1, 2, 3]);
    cluster.createTopic('t', 1, 2);
    cluster.commit(grow(cluster, [{ name: 't', count: 3, assignments: [[3, 1], [2, 3]] }]));
    expect(cluster.partitions('t').slice(1).map((state) => [state.replicas, state.isr, state.leader])).toEqual([
      [[3, 1], [3, 1], 3],
      [[2, 3], [2, 3], 2],
    ]);
    // A fenced broker is a replica but not in the ISR (KRaft keeps only active brokers there).
    cluster.advance(9001);
    cluster.heartbeatAll([3]);
    cluster.commit(cluster.logic.fenceExpiredBrokers(cluster.image, cluster.nowMs));
    cluster.commit(grow(cluster, [{ name: 't', count: 4, assignments: [[3, 1]] }]));
    expect(cluster.partitions('t')[3]).toMatchObject({ replicas: [3, 1], isr: [1], leader: 1 });
  });

  it('refuses bad manual assignments with INVALID_REPLICA_ASSIGNMENT (39), naming the problem', () => {
    const cluster = new Cluster();
    cluster.start([1, 2, 3]);
    cluster.createTopic('t', 1, 2);
    const cases: Array<[readonly (readonly number[])[], RegExp]> = [
      [[[1, 2]], /attempted to add 2 partition\(s\), but 1 assignment\(s\) were given/],
      [[[1, 2], [1, 9]], /partition 2: .*broker 9, but no such broker is registered/],
      [[[2, 2], [1, 2]], /partition 1: .*broker 2 more than once/],
      [[[1, 2], [1, 2, 3]], /partition 2: the assignment has 3 replica\(s\), but the topic's partitions have 2/],
      [[[1, 2], []], /partition 2: the replica list is empty/],
    ];
    for (const [assignments, message] of cases) {
      const result = grow(cluster, [{ name: 't', count: 3, assignments }]);
      expect(result.records).toEqual([]);
      expect(result.response.topics[0]).toMatchObject({ errorCode: 39, errorMessage: expect.stringMatching(message) });
    }
    cluster.advance(9001);
    cluster.heartbeatAll([2, 3]);
    cluster.commit(cluster.logic.fenceExpiredBrokers(cluster.image, cluster.nowMs));
    const fenced = grow(cluster, [{ name: 't', count: 2, assignments: [[2, 3]] }]);
    expect(fenced.response.topics[0]).toMatchObject({ errorCode: 39, errorMessage: expect.stringMatching(/every broker of \[2,3\] is fenced/) });
  });

  it('validateOnly answers as a real request would and writes nothing', () => {
    const cluster = new Cluster();
    cluster.start([1]);
    cluster.createTopic('t', 1, 1);
    const result = grow(cluster, [{ name: 't', count: 4 }, { name: 'missing', count: 2 }], true);
    expect(result.records).toEqual([]);
    expect(result.response.topics.map((topic) => topic.errorCode)).toEqual([0, 3]);
    expect(cluster.image.topic('t')!.partitionCount).toBe(1);
  });
});
