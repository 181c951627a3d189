// Offline replicas (KIP-858's offline log directories, per replica): a broker that cannot serve a
// replica (its log failed, or it could not take its new role) reports it in its heartbeat; the
// controller records it in the metadata log (ReplicaOffline), moves leadership away and takes the
// replica out of the ISR, and never elects it or lets it back into an ISR until the broker
// re-registers (a restart retries opening the log) or the topic is deleted.
import { describe, expect, it } from 'vitest';
import { INVARIANTS, MetadataImage, decodeRecord, encodeRecord, MetadataRecordError, type MetadataRecord } from '../src/index.js';
import { decodeImageSnapshot, encodeImageSnapshot } from '../src/quorum/index.js';
import { canonicalImage } from '../src/sim/controllerWorkload.js';
import { Cluster } from './cluster.js';
import { violation } from './violation.js';

const types = (records: readonly MetadataRecord[]): string[] => records.map((record) => record.type);

/** Brokers 1..3 unfenced, topic 't' with one partition on [1, 2, 3] led by 1, every replica in the ISR. */
function started(): { cluster: Cluster; topicId: string } {
  const cluster = new Cluster();
  cluster.start([1, 2, 3]);
  const topicId = cluster.createTopic('t', 1, 3).topicId!;
  return { cluster, topicId };
}

/** A heartbeat from `brokerId` that reports `offline` as the replicas it cannot serve. */
function heartbeatReporting(cluster: Cluster, brokerId: number, offline: { topicId: string; partition: number }[]) {
  const broker = cluster.image.broker(brokerId)!;
  return cluster.logic.brokerHeartbeat(
    cluster.image,
    { brokerId, brokerEpoch: broker.epoch, currentMetadataOffset: cluster.image.highestOffset, offlineReplicas: offline },
    cluster.nowMs,
  );
}

describe('the ReplicaOffline record', () => {
  const record: MetadataRecord = { type: 'ReplicaOffline', brokerId: 2, brokerEpoch: 17, topicId: 'AAAAAAAAAAAAAAAAAAAAAQ', partition: 3 };

  it('round-trips, canonically', () => {
    expect(decodeRecord(encodeRecord(record))).toEqual(record);
    expect(new TextDecoder().decode(encodeRecord(record))).toBe('{"v":1,"type":"ReplicaOffline","brokerId":2,"brokerEpoch":17,"topicId":"AAAAAAAAAAAAAAAAAAAAAQ","partition":3}');
  });

  it.each([
    ['a negative partition', '{"v":1,"type":"ReplicaOffline","brokerId":2,"brokerEpoch":17,"topicId":"t","partition":-1}'],
    ['a missing broker epoch', '{"v":1,"type":"ReplicaOffline","brokerId":2,"topicId":"t","partition":0}'],
    ['an empty topic id', '{"v":1,"type":"ReplicaOffline","brokerId":2,"brokerEpoch":17,"topicId":"","partition":0}'],
    ['an unknown field', '{"v":1,"type":"ReplicaOffline","brokerId":2,"brokerEpoch":17,"topicId":"t","partition":0,"reason":"EIO"}'],
  ])('rejects %s', (_label, json) => {
    expect(() => decodeRecord(new TextEncoder().encode(json))).toThrow(MetadataRecordError);
  });
});

describe('offline replicas in the image', () => {
  it('asserts that the record names a current registration and a replica of a known partition', () => {
    const { cluster, topicId } = started();
    const epoch = cluster.image.broker(2)!.epoch;
    expect(violation(cluster.image, { type: 'ReplicaOffline', brokerId: 2, brokerEpoch: epoch + 1, topicId, partition: 0 })).toBe(INVARIANTS.brokerEpochMatches);
    expect(violation(cluster.image, { type: 'ReplicaOffline', brokerId: 2, brokerEpoch: epoch, topicId: 'nope', partition: 0 })).toBe(INVARIANTS.knownReference);
    expect(violation(cluster.image, { type: 'ReplicaOffline', brokerId: 2, brokerEpoch: epoch, topicId, partition: 1 })).toBe(INVARIANTS.knownReference);
    cluster.register(4);
    const four = cluster.image.broker(4)!.epoch;
    expect(violation(cluster.image, { type: 'ReplicaOffline', brokerId: 4, brokerEpoch: four, topicId, partition: 0 })).toBe(INVARIANTS.offlineReplicaIsReplica);
  });

  it('asserts that an offline replica neither leads nor stays in the ISR (unless it is its last member)', () => {
    const { cluster, topicId } = started();
    const leader = cluster.image.partition('t', 0)!.leader;
    const follower = cluster.image.partition('t', 0)!.replicas.find((id) => id !== leader)!;
    expect(violation(cluster.image, { type: 'ReplicaOffline', brokerId: leader, brokerEpoch: cluster.image.broker(leader)!.epoch, topicId, partition: 0 })).toBe(INVARIANTS.offlineReplicaLeadsNothing);
    expect(violation(cluster.image, { type: 'ReplicaOffline', brokerId: follower, brokerEpoch: cluster.image.broker(follower)!.epoch, topicId, partition: 0 })).toBe(INVARIANTS.offlineReplicaOutOfIsr);
    // Recorded properly (out of the ISR first), a later change may not bring it back.
    const state = cluster.image.partition('t', 0)!;
    const image = cluster.image.applyAll(
      [
        { type: 'PartitionChange', topicId, partition: 0, leader, isr: state.isr.filter((id) => id !== follower), leaderEpoch: state.leaderEpoch, partitionEpoch: state.partitionEpoch + 1 },
        { type: 'ReplicaOffline', brokerId: follower, brokerEpoch: cluster.image.broker(follower)!.epoch, topicId, partition: 0 },
      ],
      cluster.image.highestOffset + 1,
    );
    expect(image.isReplicaOffline(follower, topicId, 0)).toBe(true);
    expect(image.offlineReplicas(follower)).toEqual([{ topic: 't', topicId, partition: 0 }]);
    expect(image.offlineBrokersOf(topicId, 0)).toEqual([follower]);
    expect(violation(image, { type: 'PartitionChange', topicId, partition: 0, leader, isr: state.isr, leaderEpoch: state.leaderEpoch, partitionEpoch: state.partitionEpoch + 2 })).toBe(
      INVARIANTS.offlineReplicaOutOfIsr,
    );
    expect(violation(image, { type: 'PartitionChange', topicId, partition: 0, leader: follower, isr: [follower], leaderEpoch: state.leaderEpoch + 1, partitionEpoch: state.partitionEpoch + 2 })).toBe(
      INVARIANTS.offlineReplicaLeadsNothing,
    );
  });
});

describe('the controller and offline replicas', () => {
  it('a reported offline leader loses leadership and its ISR place in the same batch; the report is idempotent', () => {
    const { cluster, topicId } = started();
    const before = cluster.image.partition('t', 0)!;
    const leader = before.leader;
    const result = heartbeatReporting(cluster, leader, [{ topicId, partition: 0 }]);
    expect(types(result.records)).toEqual(['PartitionChange', 'ReplicaOffline']);
    cluster.commit(result);
    const after = cluster.image.partition('t', 0)!;
    expect(after.leader).not.toBe(leader);
    expect(after.leader).not.toBe(-1);
    expect(after.isr).not.toContain(leader);
    expect(after.leaderEpoch).toBe(before.leaderEpoch + 1);
    expect(cluster.image.isReplicaOffline(leader, topicId, 0)).toBe(true);
    // The broker keeps reporting it (every heartbeat carries the whole set): nothing new is written.
    expect(heartbeatReporting(cluster, leader, [{ topicId, partition: 0 }]).records).toEqual([]);
    // A replica of a topic this broker does not host, or of a deleted topic, is not recorded.
    expect(heartbeatReporting(cluster, leader, [{ topicId: 'deleted-long-ago', partition: 0 }]).records).toEqual([]);
  });

  it('an offline replica is INELIGIBLE_REPLICA for the ISR and is never elected, by failover, unfencing or preferred election', () => {
    const { cluster, topicId } = started();
    const state = cluster.image.partition('t', 0)!;
    const [preferred, second, third] = state.replicas as [number, number, number];
    cluster.commit(heartbeatReporting(cluster, second, [{ topicId, partition: 0 }]));
    expect(cluster.image.partition('t', 0)!.isr).toEqual([preferred, third]);

    // The leader's follower-caught-up path: AlterPartition adding it back is refused.
    const current = cluster.image.partition('t', 0)!;
    const alter = cluster.commit(
      cluster.logic.alterPartition(cluster.image, {
        brokerId: preferred,
        brokerEpoch: cluster.image.broker(preferred)!.epoch,
        partitions: [{ topic: 't', topicId, partition: 0, leaderEpoch: current.leaderEpoch, partitionEpoch: current.partitionEpoch, newIsr: [preferred, second, third] }],
      }),
    );
    expect(alter.partitions[0]).toMatchObject({ errorCode: 107 });
    expect(alter.partitions[0]!.errorMessage).toMatch(/offline/);

    // The leader dies: the next leader is the third replica, never the offline second.
    cluster.advance(9001);
    cluster.heartbeatAll([preferred]);
    cluster.commit(cluster.logic.fenceExpiredBrokers(cluster.image, cluster.nowMs));
    expect(cluster.image.partition('t', 0)).toMatchObject({ leader: third, isr: [third] });
    // The third dies too: the partition goes offline rather than to the offline replica, even with
    // unclean election allowed.
    cluster.commit({ records: [{ type: 'Config', resourceType: 'topic', resourceName: 't', name: 'unclean.leader.election.enable', value: 'true' }], response: null });
    cluster.advance(9001);
    cluster.heartbeatAll([preferred, third]);
    cluster.commit(cluster.logic.fenceExpiredBrokers(cluster.image, cluster.nowMs));
    expect(cluster.image.partition('t', 0)).toMatchObject({ leader: -1, isr: [third] });
    // Still no election for it when another broker is unfenced.
    cluster.register(preferred);
    cluster.heartbeat(preferred);
    expect(cluster.image.partition('t', 0)!.leader).toBe(preferred); // unclean: the live, online replica
    expect(cluster.image.partition('t', 0)!.leader).not.toBe(second);
  });

  it('the last ISR member going offline leaves the partition without a leader, and the ISR as it is', () => {
    const { cluster, topicId } = started();
    const leader = cluster.image.partition('t', 0)!.leader;
    const others = cluster.image.partition('t', 0)!.replicas.filter((id) => id !== leader);
    cluster.advance(9001);
    cluster.heartbeatAll(others);
    cluster.commit(cluster.logic.fenceExpiredBrokers(cluster.image, cluster.nowMs));
    expect(cluster.image.partition('t', 0)).toMatchObject({ leader, isr: [leader] });
    const result = heartbeatReporting(cluster, leader, [{ topicId, partition: 0 }]);
    cluster.commit(result);
    expect(cluster.image.partition('t', 0)).toMatchObject({ leader: -1, isr: [leader] });
    expect(cluster.image.isReplicaOffline(leader, topicId, 0)).toBe(true);
  });

  it('a new incarnation (a restart retries the log) clears the broker\'s offline replicas; deleting the topic does too', () => {
    const { cluster, topicId } = started();
    const follower = cluster.image.partition('t', 0)!.replicas.find((id) => id !== cluster.image.partition('t', 0)!.leader)!;
    cluster.commit(heartbeatReporting(cluster, follower, [{ topicId, partition: 0 }]));
    expect(cluster.image.offlineReplicas(follower)).toHaveLength(1);
    cluster.advance(9001);
    cluster.heartbeatAll([follower]);
    cluster.commit(cluster.logic.fenceExpiredBrokers(cluster.image, cluster.nowMs));
    cluster.register(follower);
    expect(cluster.image.offlineReplicas(follower)).toEqual([]);
    cluster.heartbeat(follower);
    cluster.expandIsrs();
    expect(cluster.image.partition('t', 0)!.isr).toContain(follower);

    cluster.commit(heartbeatReporting(cluster, follower, [{ topicId, partition: 0 }]));
    expect(cluster.image.offlineBrokersOf(topicId, 0)).toEqual([follower]);
    cluster.commit(cluster.logic.deleteTopics(cluster.image, { topics: ['t'] }));
    expect(cluster.image.offlineReplicas(follower)).toEqual([]);
  });

  it('offline replicas are in the snapshot: a new controller (or a broker) rebuilding the image knows them', () => {
    const { cluster, topicId } = started();
    const leader = cluster.image.partition('t', 0)!.leader;
    cluster.commit(heartbeatReporting(cluster, leader, [{ topicId, partition: 0 }]));
    const restored = decodeImageSnapshot(encodeImageSnapshot(cluster.image));
    expect(canonicalImage(restored)).toBe(canonicalImage(cluster.image));
    expect(restored.isReplicaOffline(leader, topicId, 0)).toBe(true);
    // And a controller deciding on the restored image does not elect it.
    expect(restored.partition('t', 0)!.leader).not.toBe(leader);
  });
});

describe('an offline report that completes a move', () => {
  // Simulator seed 3925 (5000-seed sweep): a partition moving from [3,5] to [3] had its whole
  // target in the ISR, but the move waited for 3 to be able to lead. When 5 reported its replica
  // offline, the ISR change also completed the move, so 5 was no longer a replica: writing
  // ReplicaOffline for it broke "an offline replica is a replica of its partition" inside the
  // controller, and every later heartbeat of broker 5 failed the same way.
  it('writes no ReplicaOffline for a replica the completed move removed', () => {
    const topicId = 'AAAAAAAAAAAAAAAAAAAAAw';
    const records: MetadataRecord[] = [
      { type: 'RegisterBroker', brokerId: 3, incarnationId: 'i3', listeners: [], rack: null },
      { type: 'RegisterBroker', brokerId: 5, incarnationId: 'i5', listeners: [], rack: null },
      { type: 'UnfenceBroker', brokerId: 3, brokerEpoch: 0 },
      { type: 'UnfenceBroker', brokerId: 5, brokerEpoch: 1 },
      { type: 'Topic', name: 'm', topicId },
      { type: 'Partition', topicId, partition: 0, replicas: [5, 3], isr: [5, 3], leader: 5, leaderEpoch: 0, partitionEpoch: 0 },
      // The move to [3] starts (its completion did not happen in the same batch).
      { type: 'PartitionChange', topicId, partition: 0, leader: 5, isr: [5, 3], leaderEpoch: 0, partitionEpoch: 1, replicas: [3, 5], removingReplicas: [5] },
    ];
    const cluster = new Cluster();
    cluster.image = MetadataImage.empty().applyAll(records, 0);
    cluster.sessions.register(3, cluster.nowMs);
    cluster.sessions.register(5, cluster.nowMs);

    const result = heartbeatReporting(cluster, 5, [{ topicId, partition: 0 }]);
    expect(types(result.records)).toEqual(['PartitionChange']);
    cluster.commit(result);
    expect(cluster.image.partition('m', 0)).toMatchObject({ replicas: [3], isr: [3], leader: 3, addingReplicas: [], removingReplicas: [] });
    expect(cluster.image.isReplicaOffline(5, topicId, 0)).toBe(false);
  });
});
