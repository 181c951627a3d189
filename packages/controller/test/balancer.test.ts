import { describe, expect, it } from 'vitest';
import { MetadataImage, electPreferredLeaders, planReassignment, type MetadataRecord } from '../src/index.js';
import { Cluster } from './cluster.js';

describe('preferred leader election', () => {
  it('after a fenced broker comes back, restores 4 leaders each for 12 partitions RF 3 on 3 brokers', () => {
    for (let seed = 1; seed <= 10; seed++) {
      const cluster = new Cluster(seed);
      cluster.start([1, 2, 3]);
      cluster.createTopic('t', 12, 3);
      // Broker 2 dies: its four partitions move to 1 and 3.
      cluster.advance(9001);
      cluster.heartbeatAll([2]);
      cluster.commit(cluster.logic.fenceExpiredBrokers(cluster.image, cluster.nowMs));
      expect(cluster.image.leaderCount(2)).toBe(0);
      // Nothing to do while the preferred replica is down.
      const early = cluster.logic.preferredLeaderElection(cluster.image);
      expect(early.records).toEqual([]);
      expect(early.response.notMoved.every((entry) => entry.reason === 'preferred replica is not alive')).toBe(true);
      // It comes back (a new incarnation), catches up, and its leaders add it back to their ISRs.
      cluster.register(2);
      cluster.heartbeat(2);
      expect(cluster.image.broker(2)!.fenced).toBe(false);
      expect(cluster.logic.preferredLeaderElection(cluster.image).response.notMoved.every((entry) => entry.reason === 'preferred replica is not in the ISR')).toBe(true);
      cluster.expandIsrs();
      const before = cluster.image;
      const result = cluster.logic.preferredLeaderElection(cluster.image);
      expect(result.response.moved).toHaveLength(4);
      for (const move of result.response.moved) {
        expect(move.to).toBe(2);
        expect(move.leaderEpoch).toBe(before.partition('t', move.partition)!.leaderEpoch + 1);
      }
      cluster.commit(result);
      expect([...cluster.leaderCounts().values()]).toEqual([4, 4, 4]);
      expect(cluster.logic.preferredLeaderElection(cluster.image).records).toEqual([]);
    }
  });

  it('moves leaders only for brokers over leader.imbalance.per.broker.percentage', () => {
    // 20 partitions whose preferred leader is broker 1; `notLed` of them are led by broker 2.
    const image = (notLed: number): MetadataImage => {
      const records: MetadataRecord[] = [];
      for (const id of [1, 2]) records.push({ type: 'RegisterBroker', brokerId: id, incarnationId: `i${id}`, listeners: [], rack: null });
      records.push({ type: 'UnfenceBroker', brokerId: 1, brokerEpoch: 0 }, { type: 'UnfenceBroker', brokerId: 2, brokerEpoch: 1 });
      records.push({ type: 'Topic', name: 't', topicId: 'T' });
      for (let partition = 0; partition < 20; partition++) {
        records.push({ type: 'Partition', topicId: 'T', partition, replicas: [1, 2], isr: [1, 2], leader: partition < notLed ? 2 : 1, leaderEpoch: 0, partitionEpoch: 0 });
      }
      return MetadataImage.empty().applyAll(records, 0);
    };
    const alive = (): boolean => true;
    expect(electPreferredLeaders(image(2), alive, 10).moved).toEqual([]); // 10 %: not over
    expect(electPreferredLeaders(image(2), alive, 10).brokers[0]).toMatchObject({ brokerId: 1, preferredPartitions: 20, notLedByPreferred: 2, imbalancePercent: 10, triggered: false });
    expect(electPreferredLeaders(image(3), alive, 10).moved).toHaveLength(3); // 15 %
    expect(electPreferredLeaders(image(1), alive, 0).moved).toHaveLength(1); // "run it now"
    expect(electPreferredLeaders(image(0), alive, 0).moved).toEqual([]);
    expect(() => electPreferredLeaders(image(0), alive, 101)).toThrow(RangeError);
  });

  it('does not elect a preferred replica that is shutting down', () => {
    const cluster = new Cluster(3);
    cluster.start([1, 2, 3]);
    cluster.createTopic('t', 6, 3);
    cluster.heartbeat(1, { wantShutDown: true });
    expect(cluster.image.leaderCount(1)).toBe(0);
    const result = cluster.logic.preferredLeaderElection(cluster.image, { imbalancePercentage: 0 });
    expect(result.records).toEqual([]);
    expect(result.response.notMoved.length).toBe(2);
  });
});

describe('planReassignment', () => {
  it('moves replicas onto a new broker, keeping RF and spreading replicas and preferred leaders evenly', () => {
    const cluster = new Cluster(6);
    cluster.start([1, 2, 3]);
    cluster.createTopic('t', 12, 3);
    cluster.start([4]);
    const plan = cluster.logic.planReassignment(cluster.image);
    expect(Object.fromEntries(plan.replicasBefore)).toEqual({ 1: 12, 2: 12, 3: 12, 4: 0 });
    expect(Object.fromEntries(plan.replicasAfter)).toEqual({ 1: 9, 2: 9, 3: 9, 4: 9 });
    expect(Object.fromEntries(plan.preferredAfter)).toEqual({ 1: 3, 2: 3, 3: 3, 4: 3 });
    expect(plan.moves).toHaveLength(9);
    for (const move of plan.moves) {
      expect(move.to).toHaveLength(move.from.length);
      expect(new Set(move.to).size).toBe(move.to.length);
      expect(move.to).toContain(4);
      expect(move.to.filter((id, index) => id !== move.from[index])).toEqual([4]);
    }
    expect(plan.unplaceable).toEqual([]);
    // A plan only: nothing was written.
    expect(cluster.image.partition('t', 0)!.replicas).not.toContain(4);
  });

  it('moves replicas off a broker that leaves, and never lowers the racks a partition spans', () => {
    const cluster = new Cluster(12);
    cluster.start([1, 2, 3, 4, 5, 6], ['a', 'a', 'b', 'b', 'c', 'c']);
    cluster.createTopic('t', 12, 3);
    for (const state of cluster.partitions('t')) expect(new Set(state.replicas.map((id) => Math.ceil(id / 2))).size).toBe(3);
    const rackOf = (id: number): string => ['a', 'b', 'c'][Math.ceil(id / 2) - 1]!;
    const targets = [1, 2, 3, 4, 5].map((id) => ({ id, rack: rackOf(id) }));
    const plan = planReassignment(cluster.image, targets);
    expect(plan.replicasAfter.has(6)).toBe(false);
    const after = [...cluster.image.allPartitions()].map(({ state }) => plan.moves.find((move) => move.partition === state.partition)?.to ?? state.replicas);
    for (const replicas of after) {
      expect(replicas).not.toContain(6);
      expect(new Set(replicas).size).toBe(3);
      expect(new Set(replicas.map(rackOf)).size).toBe(3);
    }
    const counts = [...plan.replicasAfter.values()];
    expect(counts.reduce((sum, count) => sum + count, 0)).toBe(36);
    // Rack c has one broker left that must hold a replica of every partition.
    expect(plan.replicasAfter.get(5)).toBe(12);
  });

  it('reports partitions it cannot place when fewer brokers remain than the replication factor', () => {
    const cluster = new Cluster(2);
    cluster.start([1, 2]);
    cluster.createTopic('t', 2, 2);
    const plan = planReassignment(cluster.image, [{ id: 1, rack: null }]);
    expect(plan.unplaceable.map((ref) => ref.partition)).toEqual([0, 1]);
  });
});
