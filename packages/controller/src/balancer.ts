// The balancer: preferred-leader election (Kafka's auto.leader.rebalance check) and a replica
// reassignment plan for brokers that join or leave. Pure functions of an image.

import { buildPartitionChange } from './election.js';
import type { MetadataImage, PartitionRef, PartitionState } from './image.js';
import type { PlacementBroker } from './placement.js';
import type { PartitionChangeRecord } from './records.js';

export const DEFAULT_LEADER_IMBALANCE_PER_BROKER_PERCENTAGE = 10;

export interface LeaderMove extends PartitionRef {
  readonly from: number;
  readonly to: number;
  readonly leaderEpoch: number;
}

export interface LeaderNotMoved extends PartitionRef {
  readonly preferred: number;
  readonly leader: number;
  readonly reason: 'preferred replica is not in the ISR' | 'preferred replica is not alive' | 'preferred replica is offline';
}

export interface BrokerLeaderBalance {
  readonly brokerId: number;
  /** Partitions whose preferred replica (replicas[0]) is this broker. */
  readonly preferredPartitions: number;
  /** Of those, how many another broker (or nobody) leads. */
  readonly notLedByPreferred: number;
  readonly imbalancePercent: number;
  /** Whether the imbalance was over the threshold, so this broker's partitions were elected. */
  readonly triggered: boolean;
}

export interface PreferredElectionResult {
  readonly records: readonly PartitionChangeRecord[];
  readonly moved: readonly LeaderMove[];
  readonly notMoved: readonly LeaderNotMoved[];
  readonly brokers: readonly BrokerLeaderBalance[];
}

/**
 * For every broker that is the preferred replica of some partitions, if more than
 * `imbalancePercentage` percent of those are led by someone else, move leadership of each back to
 * it when it is alive and in the ISR (Kafka's checkAndTriggerAutoLeaderRebalance). With 0, every
 * partition not led by its preferred replica is elected ("run it now"). `canLead(id, state)` says
 * whether a broker may lead that partition (alive, and its replica not offline).
 */
export function electPreferredLeaders(
  image: MetadataImage,
  canLead: (brokerId: number, state: PartitionState) => boolean,
  imbalancePercentage: number,
): PreferredElectionResult {
  if (!Number.isFinite(imbalancePercentage) || imbalancePercentage < 0 || imbalancePercentage > 100) {
    throw new RangeError(`imbalancePercentage must be in [0, 100], got ${imbalancePercentage}`);
  }
  const byPreferred = new Map<number, { topic: string; topicId: string; partition: number; leader: number }[]>();
  for (const { topic, state } of image.allPartitions()) {
    const preferred = state.replicas[0]!;
    const list = byPreferred.get(preferred) ?? [];
    list.push({ topic: topic.name, topicId: topic.id, partition: state.partition, leader: state.leader });
    byPreferred.set(preferred, list);
  }
  const records: PartitionChangeRecord[] = [];
  const moved: LeaderMove[] = [];
  const notMoved: LeaderNotMoved[] = [];
  const brokers: BrokerLeaderBalance[] = [];
  for (const preferred of [...byPreferred.keys()].sort((a, b) => a - b)) {
    const partitions = byPreferred.get(preferred)!;
    const notLed = partitions.filter((entry) => entry.leader !== preferred);
    const imbalancePercent = (notLed.length * 100) / partitions.length;
    const triggered = notLed.length > 0 && imbalancePercent > imbalancePercentage;
    brokers.push({ brokerId: preferred, preferredPartitions: partitions.length, notLedByPreferred: notLed.length, imbalancePercent, triggered });
    if (!triggered) continue;
    for (const entry of notLed) {
      const state = image.topicById(entry.topicId)!.partition(entry.partition)!;
      const ref = { topic: entry.topic, topicId: entry.topicId, partition: entry.partition };
      if (image.isReplicaOffline(preferred, state.topicId, state.partition)) {
        notMoved.push({ ...ref, preferred, leader: state.leader, reason: 'preferred replica is offline' });
        continue;
      }
      if (!canLead(preferred, state)) {
        notMoved.push({ ...ref, preferred, leader: state.leader, reason: 'preferred replica is not alive' });
        continue;
      }
      if (!state.isr.includes(preferred)) {
        notMoved.push({ ...ref, preferred, leader: state.leader, reason: 'preferred replica is not in the ISR' });
        continue;
      }
      const record = buildPartitionChange(state, { election: 'preferred', isAcceptableLeader: (id) => canLead(id, state) });
      if (record === null || record.leader !== preferred) throw new Error(`preferred election of ${entry.topic}-${entry.partition} did not elect ${preferred}`);
      records.push(record);
      moved.push({ ...ref, from: state.leader, to: preferred, leaderEpoch: record.leaderEpoch });
    }
  }
  return { records, moved, notMoved, brokers };
}

// ---------------------------------------------------------------------------------------------

export interface ReplicaMovePlan extends PartitionRef {
  readonly from: readonly number[];
  readonly to: readonly number[];
}

export interface ReassignmentPlan {
  readonly moves: readonly ReplicaMovePlan[];
  /** Replicas per target broker before and after the plan. */
  readonly replicasBefore: ReadonlyMap<number, number>;
  readonly replicasAfter: ReadonlyMap<number, number>;
  /** Partitions whose preferred replica (replicas[0]) is each target broker, after the plan. */
  readonly preferredAfter: ReadonlyMap<number, number>;
  /** Partitions with a replica on a broker outside the target set that could not be moved. */
  readonly unplaceable: readonly PartitionRef[];
}

/** Upper bound on the moves one plan proposes (a limit on everything). */
export const REASSIGNMENT_MOVES_MAX = 100_000;

interface Slot {
  readonly ref: PartitionRef;
  readonly from: readonly number[];
  replicas: number[];
}

/**
 * A plan that spreads replicas evenly (±1) over `brokers`: replicas on brokers outside the set move
 * onto it (a broker leaves), then replicas move from the most to the least loaded broker (a broker
 * joins). Every move replaces one replica in place, so the replication factor is kept and a moved
 * replicas[0] hands the new broker its share of preferred leadership. With racks on every broker a
 * move never lowers the number of racks a partition spans. A plan only: each move is executed as a
 * reassignment (`ControllerLogic.alterPartitionReassignments`; `runnel partitions reassign --generate`).
 */
export function planReassignment(image: MetadataImage, brokers: readonly PlacementBroker[]): ReassignmentPlan {
  const ids = [...new Set(brokers.map((broker) => broker.id))].sort((a, b) => a - b);
  if (ids.length === 0) throw new RangeError('planReassignment needs at least one target broker');
  const rackOf = new Map(brokers.map((broker) => [broker.id, broker.rack]));
  const rackAware = brokers.every((broker) => broker.rack !== null);
  const load = new Map<number, number>(ids.map((id) => [id, 0]));
  const leaderLoad = new Map<number, number>(ids.map((id) => [id, 0]));
  const slots: Slot[] = [];
  for (const { topic, state } of image.allPartitions()) {
    slots.push({ ref: { topic: topic.name, topicId: topic.id, partition: state.partition }, from: state.replicas, replicas: [...state.replicas] });
    for (const replica of state.replicas) if (load.has(replica)) load.set(replica, load.get(replica)! + 1);
    if (leaderLoad.has(state.replicas[0]!)) leaderLoad.set(state.replicas[0]!, leaderLoad.get(state.replicas[0]!)! + 1);
  }
  const replicasBefore = new Map(load);
  const rackCount = (replicas: readonly number[]): number => new Set(replicas.map((id) => rackOf.get(id) ?? `broker-${id}`)).size;
  const move = (slot: Slot, position: number, to: number): void => {
    const from = slot.replicas[position]!;
    slot.replicas[position] = to;
    if (load.has(from)) load.set(from, load.get(from)! - 1);
    load.set(to, load.get(to)! + 1);
    if (position === 0) {
      if (leaderLoad.has(from)) leaderLoad.set(from, leaderLoad.get(from)! - 1);
      leaderLoad.set(to, leaderLoad.get(to)! + 1);
    }
  };
  const byLoad = (a: number, b: number): number => load.get(a)! - load.get(b)! || a - b;

  // 1. Replicas on brokers outside the target set move to the least loaded eligible broker.
  const unplaceable: PartitionRef[] = [];
  for (const slot of slots) {
    for (let position = 0; position < slot.replicas.length; position++) {
      if (load.has(slot.replicas[position]!)) continue;
      const candidates = ids.filter((id) => !slot.replicas.includes(id)).sort(byLoad);
      if (rackAware) {
        const others = slot.replicas.filter((_, index) => index !== position);
        const racksOfOthers = new Set(others.map((id) => rackOf.get(id)));
        candidates.sort((a, b) => Number(racksOfOthers.has(rackOf.get(a))) - Number(racksOfOthers.has(rackOf.get(b))) || byLoad(a, b));
      }
      const to = candidates[0];
      if (to === undefined) {
        unplaceable.push(slot.ref);
        break;
      }
      move(slot, position, to);
    }
  }

  // 2. Even out: move one replica at a time from the most to the least loaded broker.
  const total = [...load.values()].reduce((sum, count) => sum + count, 0);
  const leaderTarget = Math.floor(slots.length / ids.length);
  for (let moves = 0; moves < Math.min(total, REASSIGNMENT_MOVES_MAX); moves++) {
    const ordered = [...ids].sort(byLoad);
    const receiver = ordered[0]!;
    let moved = false;
    for (const donor of ordered.slice(1).reverse()) {
      if (load.get(donor)! - load.get(receiver)! <= 1) break;
      // Prefer handing over preferred leadership (position 0) while the receiver has less than its share.
      const wantLeader = leaderLoad.get(receiver)! < leaderTarget && leaderLoad.get(donor)! > leaderTarget;
      const choice = chooseMove(slots, donor, receiver, wantLeader, rackAware ? rackCount : null);
      if (choice !== null) {
        move(choice.slot, choice.position, receiver);
        moved = true;
        break;
      }
    }
    if (!moved) break;
  }

  const moves: ReplicaMovePlan[] = slots
    .filter((slot) => slot.replicas.some((id, index) => id !== slot.from[index]))
    .map((slot) => ({ ...slot.ref, from: slot.from, to: [...slot.replicas] }));
  return { moves, replicasBefore, replicasAfter: load, preferredAfter: leaderLoad, unplaceable };
}

function chooseMove(
  slots: readonly Slot[],
  donor: number,
  receiver: number,
  wantLeader: boolean,
  rackCount: ((replicas: readonly number[]) => number) | null,
): { slot: Slot; position: number } | null {
  let fallback: { slot: Slot; position: number } | null = null;
  for (const slot of slots) {
    const position = slot.replicas.indexOf(donor);
    if (position < 0 || slot.replicas.includes(receiver)) continue;
    if (rackCount !== null) {
      const after = slot.replicas.map((id, index) => (index === position ? receiver : id));
      if (rackCount(after) < rackCount(slot.replicas)) continue;
    }
    if ((position === 0) === wantLeader) return { slot, position };
    fallback ??= { slot, position };
  }
  return fallback;
}
