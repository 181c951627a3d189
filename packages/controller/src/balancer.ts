// The balancer: preferred-leader election (Kafka's auto.leader.rebalance check) and a replica
// reassignment plan for brokers that join or leave. Pure functions of an image.

import { buildPartitionChange } from './election.js';
import { targetReplicas, type MetadataImage, type PartitionRef, type PartitionState } from './image.js';
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
  /** Partitions whose preferred replica (replicas[0]) is each target broker, before and after the plan. */
  readonly preferredBefore: ReadonlyMap<number, number>;
  readonly preferredAfter: ReadonlyMap<number, number>;
  /** Partitions with a replica on a broker being vacated that could not be moved (no broker left to take it). */
  readonly unplaceable: readonly PartitionRef[];
}

export interface PlanOptions {
  /**
   * The brokers whose replicas move off (decommissioned). Default: every broker outside `brokers`.
   * Replicas on other brokers outside `brokers` (a broker that is down but not leaving) stay.
   */
  readonly vacate?: ReadonlySet<number>;
  /** After vacating, even out replica and preferred-leader counts over `brokers` (default true). */
  readonly evenOut?: boolean;
}

/** Upper bound on the moves one plan proposes (a limit on everything). */
export const REASSIGNMENT_MOVES_MAX = 100_000;

interface Slot {
  readonly ref: PartitionRef;
  readonly from: readonly number[];
  replicas: number[];
}

/** The loads a plan keeps while it moves replicas: replicas and preferred replicas per target broker. */
class Loads {
  readonly replicas: Map<number, number>;
  readonly preferred: Map<number, number>;

  constructor(readonly ids: readonly number[]) {
    this.replicas = new Map(ids.map((id) => [id, 0]));
    this.preferred = new Map(ids.map((id) => [id, 0]));
  }

  count(slot: Slot, sign: 1 | -1): void {
    for (const id of slot.replicas) if (this.replicas.has(id)) this.replicas.set(id, this.replicas.get(id)! + sign);
    const first = slot.replicas[0]!;
    if (this.preferred.has(first)) this.preferred.set(first, this.preferred.get(first)! + sign);
  }

  /** Replaces or reorders the replicas of `slot`, keeping the counts. */
  change(slot: Slot, replicas: number[]): void {
    this.count(slot, -1);
    slot.replicas = replicas;
    this.count(slot, 1);
  }
}

/**
 * A plan that spreads replicas and preferred leaders evenly (±1) over `brokers`: replicas on
 * brokers being vacated move onto the set (a broker leaves), then replicas move from the most to
 * the least loaded broker (a broker joins), then replicas of a partition swap places so that each
 * broker is the preferred replica (replicas[0]) of its share. Every move replaces one replica in
 * place, so the replication factor is kept; with racks on every broker a move never lowers the
 * number of racks a partition spans. A partition that is moving is planned from its target. A plan
 * only: each move is executed as a reassignment (`ControllerLogic.rebalanceReplicas`,
 * `runnel partitions reassign --generate`).
 */
export function planReassignment(image: MetadataImage, brokers: readonly PlacementBroker[], options: PlanOptions = {}): ReassignmentPlan {
  const ids = [...new Set(brokers.map((broker) => broker.id))].sort((a, b) => a - b);
  if (ids.length === 0) throw new RangeError('planReassignment needs at least one target broker');
  const rackOf = new Map(brokers.map((broker) => [broker.id, broker.rack]));
  const rackCount = brokers.every((broker) => broker.rack !== null)
    ? (replicas: readonly number[]): number => new Set(replicas.map((id) => rackOf.get(id) ?? `broker-${id}`)).size
    : null;
  const loads = new Loads(ids);
  const slots: Slot[] = [];
  for (const { topic, state } of image.allPartitions()) {
    const replicas = targetReplicas(state);
    const slot = { ref: { topic: topic.name, topicId: topic.id, partition: state.partition }, from: replicas, replicas: [...replicas] };
    slots.push(slot);
    loads.count(slot, 1);
  }
  const replicasBefore = new Map(loads.replicas);
  const preferredBefore = new Map(loads.preferred);
  const vacate = (id: number): boolean => (options.vacate === undefined ? !loads.replicas.has(id) : options.vacate.has(id));
  const unplaceable = vacateBrokers(slots, loads, vacate, rackOf, rackCount);
  if (options.evenOut ?? true) {
    evenOutReplicas(slots, loads, rackCount);
    evenOutPreferred(slots, loads, rackCount);
  }
  const moves: ReplicaMovePlan[] = slots
    .filter((slot) => slot.replicas.some((id, index) => id !== slot.from[index]))
    .map((slot) => ({ ...slot.ref, from: slot.from, to: [...slot.replicas] }));
  return { moves, replicasBefore, replicasAfter: loads.replicas, preferredBefore, preferredAfter: loads.preferred, unplaceable };
}

/** Moves each replica on a vacated broker to the least loaded broker not in its partition (another rack first). */
function vacateBrokers(
  slots: readonly Slot[],
  loads: Loads,
  vacate: (id: number) => boolean,
  rackOf: ReadonlyMap<number, string | null>,
  rackCount: ((replicas: readonly number[]) => number) | null,
): PartitionRef[] {
  const unplaceable: PartitionRef[] = [];
  const byLoad = (a: number, b: number): number => loads.replicas.get(a)! - loads.replicas.get(b)! || a - b;
  for (const slot of slots) {
    for (let position = 0; position < slot.replicas.length; position++) {
      if (!vacate(slot.replicas[position]!)) continue;
      const candidates = loads.ids.filter((id) => !slot.replicas.includes(id)).sort(byLoad);
      if (rackCount !== null) {
        const racksOfOthers = new Set(slot.replicas.filter((_, index) => index !== position).map((id) => rackOf.get(id)));
        candidates.sort((a, b) => Number(racksOfOthers.has(rackOf.get(a))) - Number(racksOfOthers.has(rackOf.get(b))) || byLoad(a, b));
      }
      const to = candidates[0];
      if (to === undefined) {
        unplaceable.push(slot.ref);
        break;
      }
      loads.change(slot, slot.replicas.map((id, index) => (index === position ? to : id)));
    }
  }
  return unplaceable;
}

/** Moves one replica at a time from the most to the least loaded broker until they are within one. */
function evenOutReplicas(slots: readonly Slot[], loads: Loads, rackCount: ((replicas: readonly number[]) => number) | null): void {
  const byLoad = (a: number, b: number): number => loads.replicas.get(a)! - loads.replicas.get(b)! || a - b;
  const total = [...loads.replicas.values()].reduce((sum, count) => sum + count, 0);
  const leaderTarget = Math.floor(slots.length / loads.ids.length);
  for (let moves = 0; moves < Math.min(total, REASSIGNMENT_MOVES_MAX); moves++) {
    const ordered = [...loads.ids].sort(byLoad);
    let moved = false;
    // The least loaded broker first; when no donor can give it a replica (racks), the next one.
    for (const receiver of ordered) {
      for (const donor of ordered.slice(1).reverse()) {
        if (loads.replicas.get(donor)! - loads.replicas.get(receiver)! <= 1) break;
        // Prefer handing over preferred leadership (position 0) while the receiver has less than its share.
        const wantLeader = loads.preferred.get(receiver)! < leaderTarget && loads.preferred.get(donor)! > leaderTarget;
        const choice = chooseMove(slots, donor, receiver, wantLeader, rackCount);
        if (choice !== null) {
          loads.change(choice.slot, choice.slot.replicas.map((id, index) => (index === choice.position ? receiver : id)));
          moved = true;
          break;
        }
      }
      if (moved) break;
    }
    if (!moved) break;
  }
}

/**
 * Evens out preferred leadership by reordering replicas: while the broker with the most preferred
 * partitions has two more than another, find (breadth first) a chain of partitions from it to a
 * broker with at least two fewer — each led by the previous broker of the chain and holding the
 * next as a follower — and promote each next broker. Every broker in between keeps its count.
 */
function evenOutPreferred(slots: readonly Slot[], loads: Loads, rackCount: ((replicas: readonly number[]) => number) | null): void {
  for (let swaps = 0; swaps < Math.min(slots.length, REASSIGNMENT_MOVES_MAX); swaps++) {
    const byPreferred = [...loads.ids].sort((a, b) => loads.preferred.get(b)! - loads.preferred.get(a)! || a - b);
    const fewest = loads.preferred.get(byPreferred.at(-1)!)!;
    let path: { slot: Slot; to: number }[] | null = null;
    for (const donor of byPreferred) {
      if (loads.preferred.get(donor)! - fewest < 2) break;
      path = chainToLighterBroker(slots, loads, donor, loads.preferred.get(donor)! - 2);
      if (path !== null) break;
    }
    if (path === null) {
      // No chain of reorders (the donor leads only partitions without a lighter follower, e.g.
      // replication factor 1): trade replicas between two partitions instead.
      if (tradeReplicas(slots, loads, byPreferred, rackCount)) continue;
      return;
    }
    for (const { slot, to } of path) {
      const position = slot.replicas.indexOf(to);
      const reordered = [...slot.replicas];
      [reordered[0], reordered[position]] = [to, reordered[0]!];
      loads.change(slot, reordered);
    }
  }
}

/**
 * Moves one unit of preferred leadership from a broker with at least two more than another without
 * changing replica counts: in a partition the donor leads and the receiver is not in, the receiver
 * takes the donor's place; in one the receiver follows and the donor is not in, the donor takes
 * the receiver's. Two real moves, so only when reordering cannot do it.
 */
function tradeReplicas(slots: readonly Slot[], loads: Loads, byPreferred: readonly number[], rackCount: ((replicas: readonly number[]) => number) | null): boolean {
  const keepsRacks = (slot: Slot, replicas: readonly number[]): boolean => rackCount === null || rackCount(replicas) >= rackCount(slot.replicas);
  for (const donor of byPreferred) {
    for (const receiver of [...byPreferred].reverse()) {
      if (loads.preferred.get(donor)! - loads.preferred.get(receiver)! < 2) break;
      const replace = (slot: Slot, from: number, to: number): number[] => slot.replicas.map((id) => (id === from ? to : id));
      const led = slots.find((slot) => slot.replicas[0] === donor && !slot.replicas.includes(receiver) && keepsRacks(slot, replace(slot, donor, receiver)));
      if (led === undefined) continue;
      const followed = slots.find(
        (slot) => slot !== led && slot.replicas.indexOf(receiver) > 0 && !slot.replicas.includes(donor) && keepsRacks(slot, replace(slot, receiver, donor)),
      );
      if (followed === undefined) continue;
      loads.change(led, replace(led, donor, receiver));
      loads.change(followed, replace(followed, receiver, donor));
      return true;
    }
  }
  return false;
}

function chainToLighterBroker(slots: readonly Slot[], loads: Loads, from: number, preferredMax: number): { slot: Slot; to: number }[] | null {
  const ledBy = new Map<number, Slot[]>();
  for (const slot of slots) {
    const first = slot.replicas[0]!;
    if (!loads.preferred.has(first)) continue;
    const led = ledBy.get(first);
    if (led === undefined) ledBy.set(first, [slot]);
    else led.push(slot);
  }
  const reachedBy = new Map<number, { slot: Slot; previous: number } | null>([[from, null]]);
  const queue = [from];
  for (let head = 0; head < queue.length; head++) {
    const broker = queue[head]!;
    for (const slot of ledBy.get(broker) ?? []) {
      for (const next of slot.replicas.slice(1)) {
        if (!loads.preferred.has(next) || reachedBy.has(next)) continue;
        reachedBy.set(next, { slot, previous: broker });
        if (loads.preferred.get(next)! <= preferredMax) {
          const path: { slot: Slot; to: number }[] = [];
          for (let at = next; at !== from; ) {
            const step = reachedBy.get(at)!;
            path.unshift({ slot: step.slot, to: at });
            at = step.previous;
          }
          return path;
        }
        queue.push(next);
      }
    }
  }
  return null;
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
