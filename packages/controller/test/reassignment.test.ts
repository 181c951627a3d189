// Replica reassignment (KIP-455) in the controller: a move adds the target replicas, waits until
// every target replica is in the ISR, moves leadership off a removed leader, then drops the removed
// replicas — each step a PartitionChange in the log, so a new controller (or a broker) replaying
// the log or a snapshot mid-move carries on. Each window of the protocol has a test here.
import { describe, expect, it } from 'vitest';
import {
  ControllerLogic,
  BrokerSessions,
  MetadataImage,
  SeededRandom,
  decodeRecord,
  diffImages,
  encodeRecord,
  MetadataRecordError,
  type MetadataRecord,
  type PartitionState,
  type ReassignablePartition,
} from '../src/index.js';
import { decodeImageSnapshot, encodeImageSnapshot } from '../src/quorum/index.js';
import { canonicalImage } from '../src/sim/controllerWorkload.js';
import { Cluster } from './cluster.js';

const NO_REASSIGNMENT_IN_PROGRESS = 85;
const INVALID_REPLICA_ASSIGNMENT = 39;
const UNKNOWN_TOPIC_OR_PARTITION = 3;
const INVALID_REQUEST = 42;

/** Brokers 1..count unfenced; topic 't' with one partition on `replicas`, led by replicas[0], ISR = replicas. */
function started(replicas: number[] = [1, 2, 3], count = 5, configs?: Record<string, string>): Cluster {
  const cluster = new Cluster(7);
  cluster.start(replicas);
  cluster.createTopic('t', 1, replicas.length, configs);
  // Placement is random: a reorder (a reassignment that completes at once) and a preferred
  // election give every test the same starting point.
  expect(alter(cluster, [{ topic: 't', partition: 0, replicas }])[0]!.errorCode).toBe(0);
  cluster.commit(cluster.logic.preferredLeaderElection(cluster.image, { imbalancePercentage: 0 }));
  for (let id = 1; id <= count; id++) if (!replicas.includes(id)) cluster.start([id]);
  expect(state(cluster)).toMatchObject({ replicas, isr: [...replicas].sort(), leader: replicas[0], addingReplicas: [], removingReplicas: [] });
  return cluster;
}

function state(cluster: Cluster): PartitionState {
  return cluster.image.partition('t', 0)!;
}

function alter(cluster: Cluster, partitions: ReassignablePartition[]) {
  return cluster.commit(cluster.logic.alterPartitionReassignments(cluster.image, { partitions })).partitions;
}

function moveTo(cluster: Cluster, replicas: number[] | null) {
  return alter(cluster, [{ topic: 't', partition: 0, replicas }])[0]!;
}

/** The leader asks the controller for a new ISR (as a leader does when a follower catches up). */
function setIsr(cluster: Cluster, newIsr: number[]) {
  const current = state(cluster);
  const leader = cluster.image.broker(current.leader)!;
  return cluster.commit(
    cluster.logic.alterPartition(cluster.image, {
      brokerId: leader.id,
      brokerEpoch: leader.epoch,
      partitions: [{ topic: 't', partition: 0, leaderEpoch: current.leaderEpoch, partitionEpoch: current.partitionEpoch, newIsr }],
    }),
  ).partitions[0]!;
}

/** `silent` stop heartbeating and are fenced once their sessions expire. */
function fence(cluster: Cluster, silent: number[]): void {
  cluster.advance(9001);
  cluster.heartbeatAll(silent);
  const fenced = cluster.commit(cluster.logic.fenceExpiredBrokers(cluster.image, cluster.nowMs)).fenced;
  expect([...fenced].sort()).toEqual([...silent].sort());
}

describe('the reassignment fields of Partition and PartitionChange records', () => {
  it('round-trip canonically, and are absent when nothing moves', () => {
    const change: MetadataRecord = {
      type: 'PartitionChange',
      topicId: 'T',
      partition: 0,
      leader: 1,
      isr: [1, 2],
      leaderEpoch: 3,
      partitionEpoch: 7,
      replicas: [2, 3, 4, 1],
      addingReplicas: [4],
      removingReplicas: [1],
    };
    expect(decodeRecord(encodeRecord(change))).toEqual(change);
    expect(new TextDecoder().decode(encodeRecord(change))).toBe(
      '{"v":1,"type":"PartitionChange","topicId":"T","partition":0,"leader":1,"isr":[1,2],"leaderEpoch":3,"partitionEpoch":7,"replicas":[2,3,4,1],"addingReplicas":[4],"removingReplicas":[1]}',
    );
    const partition: MetadataRecord = { type: 'Partition', topicId: 'T', partition: 0, replicas: [2, 1], isr: [1], leader: 1, leaderEpoch: 0, partitionEpoch: 0, removingReplicas: [1] };
    expect(decodeRecord(encodeRecord(partition))).toEqual(partition);
  });

  it.each([
    ['adding replicas without replicas', '{"v":1,"type":"PartitionChange","topicId":"T","partition":0,"leader":1,"isr":[1],"leaderEpoch":0,"partitionEpoch":1,"addingReplicas":[4]}'],
    ['an adding replica that is not a replica', '{"v":1,"type":"PartitionChange","topicId":"T","partition":0,"leader":1,"isr":[1],"leaderEpoch":0,"partitionEpoch":1,"replicas":[1,2],"addingReplicas":[4]}'],
    ['an empty removing list', '{"v":1,"type":"PartitionChange","topicId":"T","partition":0,"leader":1,"isr":[1],"leaderEpoch":0,"partitionEpoch":1,"replicas":[1,2],"removingReplicas":[]}'],
    ['a replica both added and removed', '{"v":1,"type":"Partition","topicId":"T","partition":0,"replicas":[1,2],"isr":[1],"leader":1,"leaderEpoch":0,"partitionEpoch":0,"addingReplicas":[2],"removingReplicas":[2]}'],
  ])('rejects %s', (_label, json) => {
    expect(() => decodeRecord(new TextEncoder().encode(json))).toThrow(MetadataRecordError);
  });
});

describe('alterPartitionReassignments', () => {
  it('starts a move: replicas = target then the removed originals; adding and removing; leader and ISR unchanged', () => {
    const cluster = started();
    const before = cluster.image;
    expect(moveTo(cluster, [2, 3, 4])).toMatchObject({ errorCode: 0 });
    expect(state(cluster)).toMatchObject({ replicas: [2, 3, 4, 1], addingReplicas: [4], removingReplicas: [1], isr: [1, 2, 3], leader: 1, leaderEpoch: before.partition('t', 0)!.leaderEpoch });
    // The new replica's broker starts following; the leader learns its new follower.
    expect(diffImages(before, cluster.image, 4).follow).toMatchObject([{ topic: 't', partition: 0, leader: 1 }]);
    expect(diffImages(before, cluster.image, 1).lead).toMatchObject([{ replicas: [2, 3, 4, 1], isr: [1, 2, 3] }]);
    expect(cluster.logic.listPartitionReassignments(cluster.image).reassignments).toEqual([
      { topic: 't', partition: 0, replicas: [2, 3, 4, 1], addingReplicas: [4], removingReplicas: [1], targetReplicas: [2, 3, 4], originalReplicas: [2, 3, 1], isr: [1, 2, 3], leader: 1 },
    ]);
    expect(cluster.logic.listPartitionReassignments(cluster.image, [{ topic: 't', partition: 1 }, { topic: 'nope', partition: 0 }]).reassignments).toEqual([]);
  });

  it('waits while only part of the target is in the ISR, then completes: the removed leader hands over to the first target replica in the ISR', () => {
    const cluster = started();
    moveTo(cluster, [4, 5, 2]);
    expect(state(cluster)).toMatchObject({ replicas: [4, 5, 2, 1, 3], addingReplicas: [4, 5], removingReplicas: [1, 3] });
    expect(setIsr(cluster, [1, 2, 3, 4])).toMatchObject({ errorCode: 0, isr: [1, 2, 3, 4] });
    expect(state(cluster)).toMatchObject({ replicas: [4, 5, 2, 1, 3], addingReplicas: [4, 5], leader: 1 });
    const beforeCompletion = cluster.image;
    const leaderEpoch = state(cluster).leaderEpoch;
    // 5 catches up: the whole target is in sync, the move completes in the same change.
    expect(setIsr(cluster, [1, 2, 3, 4, 5])).toMatchObject({ errorCode: 108 /* NEW_LEADER_ELECTED */ });
    expect(state(cluster)).toMatchObject({ replicas: [4, 5, 2], addingReplicas: [], removingReplicas: [], isr: [2, 4, 5], leader: 4, leaderEpoch: leaderEpoch + 1 });
    expect(cluster.logic.listPartitionReassignments(cluster.image).reassignments).toEqual([]);
    for (const removed of [1, 3]) {
      expect(diffImages(beforeCompletion, cluster.image, removed).stopAndDelete).toEqual([{ topic: 't', topicId: state(cluster).topicId, partition: 0, reason: 'replica-reassigned' }]);
    }
    expect(diffImages(beforeCompletion, cluster.image, 4).lead).toMatchObject([{ replicas: [4, 5, 2], isr: [2, 4, 5] }]);
  });

  it('completes keeping a leader that stays, without a leader epoch bump', () => {
    const cluster = started();
    moveTo(cluster, [1, 2, 4]);
    const leaderEpoch = state(cluster).leaderEpoch;
    expect(setIsr(cluster, [1, 2, 3, 4])).toMatchObject({ errorCode: 0, leader: 1, isr: [1, 2, 4] });
    expect(state(cluster)).toMatchObject({ replicas: [1, 2, 4], isr: [1, 2, 4], leader: 1, leaderEpoch, addingReplicas: [], removingReplicas: [] });
  });

  it('a target made of current in-sync replicas (a shrink or a reorder) completes at once', () => {
    const cluster = started();
    moveTo(cluster, [3, 2]);
    expect(state(cluster)).toMatchObject({ replicas: [3, 2], isr: [2, 3], leader: 3, addingReplicas: [], removingReplicas: [] });
  });

  it('a move needs the whole target in the ISR: a target replica fenced mid-move holds it until it is back in sync', () => {
    const cluster = started();
    moveTo(cluster, [2, 3, 4]);
    fence(cluster, [2]);
    expect(state(cluster)).toMatchObject({ isr: [1, 3], replicas: [2, 3, 4, 1] });
    expect(setIsr(cluster, [1, 3, 4])).toMatchObject({ errorCode: 0 });
    expect(state(cluster)).toMatchObject({ replicas: [2, 3, 4, 1], addingReplicas: [4], removingReplicas: [1], leader: 1 });
    // Broker 2 restarts (a new incarnation), catches up and rejoins the ISR: the move completes.
    cluster.register(2);
    cluster.heartbeat(2);
    expect(setIsr(cluster, [1, 2, 3, 4])).toMatchObject({ errorCode: 108 });
    expect(state(cluster)).toMatchObject({ replicas: [2, 3, 4], isr: [2, 3, 4], leader: 2, addingReplicas: [], removingReplicas: [] });
  });

  it('an added replica fenced before it caught up is not elected, and the move completes after it returns', () => {
    const cluster = started();
    moveTo(cluster, [2, 3, 4]);
    fence(cluster, [4, 1]); // the leader dies too: leadership goes to an in-sync target replica
    expect(state(cluster)).toMatchObject({ leader: 2, isr: [2, 3], replicas: [2, 3, 4, 1] });
    cluster.register(4);
    cluster.heartbeat(4);
    expect(setIsr(cluster, [2, 3, 4])).toMatchObject({ errorCode: 0 });
    expect(state(cluster)).toMatchObject({ replicas: [2, 3, 4], isr: [2, 3, 4], leader: 2, addingReplicas: [], removingReplicas: [] });
  });

  it('cancel before a target replica joined the ISR: back to the original replicas, the added replica is deleted', () => {
    const cluster = started();
    moveTo(cluster, [2, 3, 4]);
    const moving = cluster.image;
    expect(moveTo(cluster, null)).toMatchObject({ errorCode: 0 });
    // The original set, in the order replicas − adding (as KRaft's revert: the target's order first).
    expect(state(cluster)).toMatchObject({ replicas: [2, 3, 1], isr: [1, 2, 3], leader: 1, addingReplicas: [], removingReplicas: [] });
    expect(diffImages(moving, cluster.image, 4).stopAndDelete).toMatchObject([{ partition: 0, reason: 'replica-reassigned' }]);
    expect(moveTo(cluster, null)).toMatchObject({ errorCode: NO_REASSIGNMENT_IN_PROGRESS });
  });

  it('cancel after an added replica joined the ISR and leads: it leaves the ISR and leadership returns to an original replica', () => {
    const cluster = started();
    moveTo(cluster, [4, 5, 2]);
    setIsr(cluster, [1, 2, 3, 4]);
    fence(cluster, [1]);
    expect(state(cluster)).toMatchObject({ leader: 4, isr: [2, 3, 4] });
    const leaderEpoch = state(cluster).leaderEpoch;
    expect(moveTo(cluster, null)).toMatchObject({ errorCode: 0 });
    expect(state(cluster)).toMatchObject({ replicas: [2, 1, 3], isr: [2, 3], leader: 2, leaderEpoch: leaderEpoch + 1, addingReplicas: [], removingReplicas: [] });
  });

  it('refuses a cancel that would need an unclean election, unless the topic allows one', () => {
    for (const unclean of [false, true]) {
      const cluster = started([1, 2, 3], 5, { 'unclean.leader.election.enable': String(unclean) });
      moveTo(cluster, [4, 5, 2]);
      setIsr(cluster, [1, 2, 3, 4]);
      fence(cluster, [1, 2, 3]);
      expect(state(cluster)).toMatchObject({ leader: 4, isr: [4] });
      // Broker 3 comes back: the only original replica that can lead, though out of sync.
      cluster.register(3);
      cluster.heartbeat(3);
      const before = cluster.image;
      const result = moveTo(cluster, null);
      if (!unclean) {
        expect(result).toMatchObject({ errorCode: INVALID_REPLICA_ASSIGNMENT });
        expect(result.errorMessage).toContain('unclean leader election');
        expect(cluster.image).toBe(before);
      } else {
        expect(result).toMatchObject({ errorCode: 0 });
        expect(state(cluster)).toMatchObject({ replicas: [2, 1, 3], isr: [3], leader: 3, addingReplicas: [], removingReplicas: [] });
      }
    }
  });

  it('a second target replaces the first, computed from the original replicas', () => {
    const cluster = started();
    moveTo(cluster, [2, 3, 4]);
    setIsr(cluster, [1, 2, 3]); // nothing new
    const first = cluster.image;
    expect(moveTo(cluster, [2, 3, 5])).toMatchObject({ errorCode: 0 });
    expect(state(cluster)).toMatchObject({ replicas: [2, 3, 5, 1], addingReplicas: [5], removingReplicas: [1], isr: [1, 2, 3] });
    expect(diffImages(first, cluster.image, 4).stopAndDelete).toMatchObject([{ reason: 'replica-reassigned' }]);
    expect(diffImages(first, cluster.image, 5).follow).toMatchObject([{ leader: 1 }]);
    // A replacement that drops an added replica already in the ISR takes it out of the ISR.
    expect(setIsr(cluster, [1, 2, 3, 5])).toMatchObject({ errorCode: 108 });
    expect(state(cluster)).toMatchObject({ replicas: [2, 3, 5], isr: [2, 3, 5], addingReplicas: [] });
    moveTo(cluster, [4, 5, 1]);
    setIsr(cluster, [2, 3, 5, 4]);
    expect(state(cluster)).toMatchObject({ replicas: [4, 5, 1, 2, 3], isr: [2, 3, 5, 4], addingReplicas: [4, 1] });
    moveTo(cluster, [1, 5, 2]);
    expect(state(cluster)).toMatchObject({ replicas: [1, 5, 2, 3], isr: [2, 3, 5], addingReplicas: [1], removingReplicas: [3] });
  });

  it('validates each partition with Kafka codes; the valid ones are applied together', () => {
    const cluster = started();
    const before = cluster.image;
    const results = alter(cluster, [
      { topic: 'nope', partition: 0, replicas: [1] },
      { topic: 't', partition: 1, replicas: [1] },
      { topic: 't', partition: 0, replicas: [] },
    ]);
    expect(results.map((result) => result.errorCode)).toEqual([UNKNOWN_TOPIC_OR_PARTITION, UNKNOWN_TOPIC_OR_PARTITION, INVALID_REPLICA_ASSIGNMENT]);
    expect(results[2]!.errorMessage).toBe('the target replica list is empty');
    expect(moveTo(cluster, [1, 2, 2])).toMatchObject({ errorCode: INVALID_REPLICA_ASSIGNMENT, errorMessage: 'the target includes broker 2 more than once' });
    expect(moveTo(cluster, [1, 2, 9])).toMatchObject({ errorCode: INVALID_REPLICA_ASSIGNMENT, errorMessage: 'the target includes broker 9, but no such broker is registered' });
    expect(moveTo(cluster, [1, -2])).toMatchObject({ errorCode: INVALID_REPLICA_ASSIGNMENT });
    expect(moveTo(cluster, null)).toMatchObject({ errorCode: NO_REASSIGNMENT_IN_PROGRESS });
    expect(cluster.image).toBe(before);
    const twice = alter(cluster, [
      { topic: 't', partition: 0, replicas: [2, 3, 4] },
      { topic: 't', partition: 0, replicas: null },
    ]);
    expect(twice.map((result) => result.errorCode)).toEqual([INVALID_REQUEST, INVALID_REQUEST]);
    cluster.createTopic('u', 1, 1);
    const mixed = alter(cluster, [
      { topic: 't', partition: 0, replicas: [2, 3, 4] },
      { topic: 'u', partition: 0, replicas: [9] },
    ]);
    expect(mixed.map((result) => result.errorCode)).toEqual([0, INVALID_REPLICA_ASSIGNMENT]);
    expect(state(cluster).addingReplicas).toEqual([4]);
  });
});

describe('a move survives a controller failover', () => {
  it('a new controller replaying the log (or restoring a snapshot) mid-move completes it', () => {
    const cluster = started();
    moveTo(cluster, [4, 5, 2]);
    setIsr(cluster, [1, 2, 3, 4]);
    const replayed = MetadataImage.empty().applyAll(cluster.log, 0);
    expect(canonicalImage(replayed)).toBe(canonicalImage(cluster.image));
    const restored = decodeImageSnapshot(encodeImageSnapshot(cluster.image));
    expect(canonicalImage(restored)).toBe(canonicalImage(cluster.image));
    for (const image of [replayed, restored]) {
      const logic = new ControllerLogic({ sessions: new BrokerSessions(9000), random: new SeededRandom(3) });
      for (const broker of image.brokers()) logic.sessions.touch(broker.id, 0, image.highestOffset);
      expect(logic.listPartitionReassignments(image).reassignments).toMatchObject([{ topic: 't', addingReplicas: [4, 5], removingReplicas: [1, 3] }]);
      const current = image.partition('t', 0)!;
      const leader = image.broker(current.leader)!;
      const result = logic.alterPartition(image, {
        brokerId: leader.id,
        brokerEpoch: leader.epoch,
        partitions: [{ topic: 't', partition: 0, leaderEpoch: current.leaderEpoch, partitionEpoch: current.partitionEpoch, newIsr: [1, 2, 3, 4, 5] }],
      });
      const after = image.applyAll(result.records, image.highestOffset + 1);
      expect(after.partition('t', 0)).toMatchObject({ replicas: [4, 5, 2], isr: [2, 4, 5], leader: 4, addingReplicas: [], removingReplicas: [] });
    }
  });
});
