// Broker decommission and recommission (Redpanda's), `cluster rebalance --replicas` and
// auto.replica.rebalance.enable in the controller logic: the BrokerDecommission record, each rule
// and each window (a decommission while a move runs, a partition that cannot move, a controller
// failover replaying the log, a recommission half-way).
import { describe, expect, it } from 'vitest';
import {
  MetadataImage,
  MetadataRecordError,
  decodeRecord,
  encodeRecord,
  INVARIANTS,
  targetReplicas,
  type MetadataRecord,
} from '../src/index.js';
import { decodeImageSnapshot, encodeImageSnapshot } from '../src/quorum/index.js';
import { canonicalImage } from '../src/sim/controllerWorkload.js';
import { Cluster } from './cluster.js';
import { violation } from './violation.js';

/** Brokers `ids` with 12 partitions RF 3 of topic 't'. */
function started(ids: number[] = [1, 2, 3, 4], config = {}): Cluster {
  const cluster = new Cluster(7, config);
  cluster.start(ids);
  expect(cluster.createTopic('t', 12, 3).errorCode).toBe(0);
  return cluster;
}

function replicasOn(cluster: Cluster, brokerId: number): number {
  return cluster.logic.replicasOn(cluster.image, brokerId);
}

function fence(cluster: Cluster, silent: number[]): void {
  cluster.advance(9001);
  cluster.heartbeatAll(silent);
  expect(cluster.commit(cluster.logic.fenceExpiredBrokers(cluster.image, cluster.nowMs)).fenced).toEqual(silent);
}

describe('the BrokerDecommission record', () => {
  it('round-trips canonically and rejects a non-boolean mark', () => {
    const record: MetadataRecord = { type: 'BrokerDecommission', brokerId: 3, decommissioned: true };
    expect(new TextDecoder().decode(encodeRecord(record))).toBe('{"v":1,"type":"BrokerDecommission","brokerId":3,"decommissioned":true}');
    expect(decodeRecord(encodeRecord(record))).toEqual(record);
    expect(() => decodeRecord(new TextEncoder().encode('{"v":1,"type":"BrokerDecommission","brokerId":3,"decommissioned":"yes"}'))).toThrow(MetadataRecordError);
  });

  it('needs a registered broker, survives its re-registration, and is carried by snapshots', () => {
    const cluster = started();
    expect(violation(cluster.image, { type: 'BrokerDecommission', brokerId: 9, decommissioned: true })).toBe(INVARIANTS.knownReference);
    cluster.commit(cluster.logic.decommissionBroker(cluster.image, 2));
    fence(cluster, [2]);
    cluster.register(2); // the broker restarts: a new incarnation
    expect(cluster.image.broker(2)!.decommissioned).toBe(true);
    const restored = decodeImageSnapshot(encodeImageSnapshot(cluster.image));
    expect(restored.broker(2)!.decommissioned).toBe(true);
    expect(canonicalImage(restored)).toBe(canonicalImage(cluster.image));
  });
});

describe('broker decommission', () => {
  it('moves every replica off the broker; once the moves complete it holds none, and it gets nothing new', () => {
    const cluster = started();
    const before = replicasOn(cluster, 1);
    expect(before).toBeGreaterThan(0);
    const response = cluster.commit(cluster.logic.decommissionBroker(cluster.image, 1));
    expect(response).toMatchObject({ errorCode: 0, replicasLeft: before, unplaceable: [] });
    expect(response.moves).toHaveLength(before);
    expect(response.moves.every((move) => move.errorCode === 0)).toBe(true);
    expect(cluster.log.filter((record) => record.type === 'BrokerDecommission')).toEqual([{ type: 'BrokerDecommission', brokerId: 1, decommissioned: true }]);
    for (const { state } of cluster.image.allPartitions()) {
      expect(targetReplicas(state)).not.toContain(1);
      expect(targetReplicas(state)).toHaveLength(3);
    }
    cluster.completeMoves();
    expect(replicasOn(cluster, 1)).toBe(0);
    expect(cluster.image.leaderCount(1)).toBe(0);
    // No new replicas: placement, manual assignments and reassignments leave it out.
    expect(cluster.createTopic('u', 8, 3).errorCode).toBe(0);
    expect(cluster.partitions('u').some((state) => state.replicas.includes(1))).toBe(false);
    const grow = cluster.commit(cluster.logic.createPartitions(cluster.image, { topics: [{ name: 'u', count: 9, assignments: [[1, 2, 3]] }] }));
    expect(grow.topics[0]).toMatchObject({ errorCode: 39, errorMessage: 'partition 8: the assignment includes broker 1, which is decommissioned' });
    const move = cluster.commit(cluster.logic.alterPartitionReassignments(cluster.image, { partitions: [{ topic: 'u', partition: 0, replicas: [1, 2, 3] }] }));
    expect(move.partitions[0]).toMatchObject({ errorCode: 39, errorMessage: 'the target adds broker 1, which is decommissioned (runnel broker recommission 1 first)' });
    // Asking again is harmless: nothing left to start.
    const again = cluster.commit(cluster.logic.decommissionBroker(cluster.image, 1));
    expect(again).toMatchObject({ errorCode: 0, replicasLeft: 0, moves: [] });
  });

  it('is refused when the brokers that would remain cannot hold a partition\'s replicas, writing nothing', () => {
    const cluster = started([1, 2, 3]);
    const result = cluster.logic.decommissionBroker(cluster.image, 2);
    expect(result.records).toEqual([]);
    expect(result.response.errorCode).toBe(38);
    expect(result.response.errorMessage).toMatch(/^cannot decommission broker 2: partition t-0 has 3 replicas \[[123],[123],[123]\] and the usable brokers that would remain \(\[1,3\]\) cannot hold them; add a broker/);
    expect(cluster.logic.decommissionBroker(cluster.image, 9).response).toMatchObject({ errorCode: 102, errorMessage: 'no broker 9 is registered' });
    // With one broker decommissioned of four, a second would leave too few.
    const four = started();
    four.commit(four.logic.decommissionBroker(four.image, 4));
    expect(four.logic.decommissionBroker(four.image, 3).response.errorCode).toBe(38);
  });

  it('prefers a broker on another rack, so the partition keeps its rack spread', () => {
    const cluster = new Cluster(5);
    cluster.start([1, 2, 3, 4, 5, 6], ['a', 'a', 'b', 'b', 'c', 'c']);
    cluster.createTopic('t', 12, 3);
    const rackOf = (id: number): string => cluster.image.broker(id)!.rack!;
    cluster.commit(cluster.logic.decommissionBroker(cluster.image, 1));
    for (const { state } of cluster.image.allPartitions()) expect(new Set(targetReplicas(state).map(rackOf)).size).toBe(3);
  });

  it('while a move is running: a move onto the broker gets a new target, a move off it is left alone', () => {
    const cluster = started([1, 2, 3, 4, 5]);
    const onto = cluster.partitions('t').find((state) => !state.replicas.includes(1))!;
    const off = cluster.partitions('t').find((state) => state.replicas.includes(1) && state.partition !== onto.partition)!;
    const ontoTarget = [1, ...onto.replicas.slice(1)];
    const offTarget = [[1, 2, 3, 4, 5].find((id) => !off.replicas.includes(id))!, ...off.replicas.filter((id) => id !== 1)];
    const started_ = cluster.commit(
      cluster.logic.alterPartitionReassignments(cluster.image, {
        partitions: [
          { topic: 't', partition: onto.partition, replicas: ontoTarget },
          { topic: 't', partition: off.partition, replicas: offTarget },
        ],
      }),
    );
    expect(started_.partitions.map((result) => result.errorCode)).toEqual([0, 0]);
    const offBefore = cluster.image.partition('t', off.partition)!;
    cluster.commit(cluster.logic.decommissionBroker(cluster.image, 1));
    const ontoAfter = cluster.image.partition('t', onto.partition)!;
    expect(targetReplicas(ontoAfter)).not.toContain(1);
    expect(targetReplicas(ontoAfter)).toHaveLength(3);
    expect(cluster.image.partition('t', off.partition)).toEqual(offBefore);
    cluster.completeMoves();
    expect(replicasOn(cluster, 1)).toBe(0);
  });

  it('a partition that cannot move now (a broker down) waits, and moves once a broker can take it', () => {
    const cluster = started();
    fence(cluster, [4]);
    // Three usable brokers remain with 1 decommissioned: two, too few for RF 3.
    expect(cluster.logic.decommissionBroker(cluster.image, 1).response.errorCode).toBe(38);
    cluster.register(4);
    cluster.heartbeat(4);
    cluster.commit(cluster.logic.decommissionBroker(cluster.image, 1));
    // An operator cancels one of the moves, and broker 4 (the only taker) goes down.
    const moving = cluster.logic.listPartitionReassignments(cluster.image).reassignments[0]!;
    cluster.commit(cluster.logic.alterPartitionReassignments(cluster.image, { partitions: [{ topic: moving.topic, partition: moving.partition, replicas: null }] }));
    fence(cluster, [4]);
    const waiting = cluster.logic.continueDecommissions(cluster.image);
    expect(waiting.records).toEqual([]);
    expect(waiting.response.unplaceable).toContainEqual(expect.objectContaining({ topic: moving.topic, partition: moving.partition }));
    cluster.register(4);
    cluster.heartbeat(4);
    const resumed = cluster.commit(cluster.logic.continueDecommissions(cluster.image));
    expect(resumed.moves).toEqual([expect.objectContaining({ topic: moving.topic, partition: moving.partition, errorCode: 0 })]);
    cluster.completeMoves();
    expect(replicasOn(cluster, 1)).toBe(0);
  });

  it('survives a controller failover: a new controller replaying the log carries on and completes it', () => {
    const cluster = started();
    cluster.commit(cluster.logic.decommissionBroker(cluster.image, 1));
    const replayed = MetadataImage.empty().applyAll(cluster.log, 0);
    expect(canonicalImage(replayed)).toBe(canonicalImage(cluster.image));
    const next = new Cluster(99);
    next.image = replayed;
    expect(next.image.broker(1)!.decommissioned).toBe(true);
    expect(next.logic.continueDecommissions(next.image).records).toEqual([]); // every move already started
    next.completeMoves();
    expect(replicasOn(next, 1)).toBe(0);
  });

  it('recommission half-way: clears the mark and cancels the moves still taking replicas off the broker', () => {
    const cluster = started();
    const before = replicasOn(cluster, 1);
    cluster.commit(cluster.logic.decommissionBroker(cluster.image, 1));
    // One move completes before the recommission.
    const first = cluster.logic.listPartitionReassignments(cluster.image).reassignments[0]!;
    const state = cluster.image.partition(first.topic, first.partition)!;
    const leader = cluster.image.broker(state.leader)!;
    const completed = cluster.commit(
      cluster.logic.alterPartition(cluster.image, {
        brokerId: leader.id,
        brokerEpoch: leader.epoch,
        partitions: [{ topic: first.topic, partition: first.partition, leaderEpoch: state.leaderEpoch, partitionEpoch: state.partitionEpoch, newIsr: state.replicas }],
      }),
    );
    expect([0, 108]).toContain(completed.partitions[0]!.errorCode);
    const response = cluster.commit(cluster.logic.recommissionBroker(cluster.image, 1));
    expect(response.errorCode).toBe(0);
    expect(response.moves).toHaveLength(before - 1);
    expect(response.moves.every((move) => move.errorCode === 0)).toBe(true);
    expect(cluster.image.broker(1)!.decommissioned).toBe(false);
    expect(cluster.logic.listPartitionReassignments(cluster.image).reassignments).toEqual([]);
    expect(replicasOn(cluster, 1)).toBe(before - 1);
    expect(cluster.logic.continueDecommissions(cluster.image).records).toEqual([]);
    expect(cluster.logic.recommissionBroker(cluster.image, 1).response).toMatchObject({ errorCode: 42, errorMessage: 'broker 1 is not decommissioned' });
    // It takes replicas again.
    expect(cluster.logic.usableBrokers(cluster.image).map((broker) => broker.id)).toContain(1);
  });
});

describe('rebalanceReplicas', () => {
  it('spreads replicas and preferred leaders onto a broker that joined; a dry run writes nothing', () => {
    const cluster = started([1, 2, 3]);
    cluster.start([4]);
    const dry = cluster.logic.rebalanceReplicas(cluster.image, { dryRun: true });
    expect(dry.records).toEqual([]);
    expect(dry.response.brokers).toEqual([
      { brokerId: 1, replicasBefore: 12, replicasAfter: 9, preferredBefore: 4, preferredAfter: 3 },
      { brokerId: 2, replicasBefore: 12, replicasAfter: 9, preferredBefore: 4, preferredAfter: 3 },
      { brokerId: 3, replicasBefore: 12, replicasAfter: 9, preferredBefore: 4, preferredAfter: 3 },
      { brokerId: 4, replicasBefore: 0, replicasAfter: 9, preferredBefore: 0, preferredAfter: 3 },
    ]);
    const response = cluster.commit(cluster.logic.rebalanceReplicas(cluster.image));
    expect(response.started).toHaveLength(dry.response.moves.length);
    expect(response.started.every((result) => result.errorCode === 0)).toBe(true);
    // One at a time: refused while the moves run.
    expect(cluster.logic.rebalanceReplicas(cluster.image).response).toMatchObject({ errorCode: 60 });
    expect(cluster.logic.rebalanceReplicas(cluster.image).response.errorMessage).toMatch(/^9 partition\(s\) are being reassigned \(t-\d+, t-\d+, t-\d+, \.\.\.\); wait for them/);
    cluster.completeMoves();
    expect(replicasOn(cluster, 4)).toBe(9);
  });

  it('is refused while a broker that is not decommissioned is down, and moves a decommissioned one\'s replicas', () => {
    const cluster = started();
    fence(cluster, [3]);
    expect(cluster.logic.rebalanceReplicas(cluster.image).response).toMatchObject({
      errorCode: 8,
      errorMessage: 'broker(s) 3 (fenced) cannot take replicas now; bring them back, or decommission the ones that are gone (runnel broker decommission <id>), before rebalancing',
    });
    // Broker 3 is gone for good: decommission it (it is down; its replicas move anyway).
    const decommission = cluster.commit(cluster.logic.decommissionBroker(cluster.image, 3));
    expect(decommission.errorCode).toBe(0);
    cluster.completeMoves();
    expect(replicasOn(cluster, 3)).toBe(0);
    expect(cluster.logic.rebalanceReplicas(cluster.image).response.errorCode).toBe(0);
  });
});

describe('auto.replica.rebalance.enable', () => {
  it('is off by default', () => {
    const cluster = started([1, 2, 3]);
    cluster.start([4]);
    expect(cluster.logic.autoRebalanceReplicas(cluster.image, new Set([4])).response.outcome).toBe('disabled');
  });

  it('waits until the joined broker is unfenced and no move is running, then rebalances once', () => {
    const cluster = started([1, 2, 3], { autoReplicaRebalanceEnable: true });
    cluster.register(4);
    const fenced = cluster.logic.autoRebalanceReplicas(cluster.image, new Set([4]));
    expect(fenced.response).toMatchObject({ outcome: 'waiting', reason: 'broker(s) 4 cannot take replicas yet' });
    expect(fenced.records).toEqual([]);
    cluster.heartbeat(4);
    const moving = cluster.partitions('t')[0]!;
    cluster.commit(cluster.logic.alterPartitionReassignments(cluster.image, { partitions: [{ topic: 't', partition: 0, replicas: [4, ...moving.replicas.slice(1)] }] }));
    expect(cluster.logic.autoRebalanceReplicas(cluster.image, new Set([4])).response.outcome).toBe('waiting');
    cluster.completeMoves();
    const started_ = cluster.commit(cluster.logic.autoRebalanceReplicas(cluster.image, new Set([4])));
    expect(started_.outcome).toBe('started');
    cluster.completeMoves();
    expect(replicasOn(cluster, 4)).toBe(9);
    expect(cluster.logic.autoRebalanceReplicas(cluster.image, new Set([4])).response.outcome).toBe('balanced');
  });
});
