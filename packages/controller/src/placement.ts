// Replica placement for new partitions, after Kafka's AdminUtils.assignReplicasToBrokers:
// round-robin over the brokers (ordered to alternate racks when every broker has a rack), a random
// start index for the first replica and a random shift for the others, the shift growing by one
// after each full round so the followers of consecutive rounds differ. Leaders go round-robin, so
// partitions/brokers leaders each (±1). Never two replicas of a partition on one broker; with at
// least RF racks, never two replicas in one rack.

import type { Random } from './random.js';

export interface PlacementBroker {
  readonly id: number;
  readonly rack: string | null;
}

export class PlacementError extends Error {
  /** INVALID_REPLICATION_FACTOR (38) or INVALID_PARTITIONS (37). */
  readonly errorName: 'INVALID_REPLICATION_FACTOR' | 'INVALID_PARTITIONS';

  constructor(errorName: 'INVALID_REPLICATION_FACTOR' | 'INVALID_PARTITIONS', message: string) {
    super(message);
    this.name = 'PlacementError';
    this.errorName = errorName;
  }
}

export interface PlacementOptions {
  /** The id of the first partition placed (for adding partitions to a topic); default 0. */
  readonly startPartition?: number;
}

/**
 * Replica lists for `partitions` new partitions, replicas[0] being the preferred leader. Rack-aware
 * when every broker has a rack (Kafka's "safe" mode: a broker without a rack turns it off).
 */
export function placeTopic(
  brokers: readonly PlacementBroker[],
  partitions: number,
  replicationFactor: number,
  random: Random,
  options: PlacementOptions = {},
): number[][] {
  if (!Number.isSafeInteger(partitions) || partitions < 1) {
    throw new PlacementError('INVALID_PARTITIONS', `number of partitions must be at least 1, got ${partitions}`);
  }
  if (!Number.isSafeInteger(replicationFactor) || replicationFactor < 1) {
    throw new PlacementError('INVALID_REPLICATION_FACTOR', `replication factor must be at least 1, got ${replicationFactor}`);
  }
  if (new Set(brokers.map((broker) => broker.id)).size !== brokers.length) {
    throw new Error(`placeTopic: duplicate broker ids in [${brokers.map((broker) => broker.id).join(',')}]`);
  }
  if (replicationFactor > brokers.length) {
    throw new PlacementError(
      'INVALID_REPLICATION_FACTOR',
      `replication factor ${replicationFactor} is larger than the ${brokers.length} available broker(s)`,
    );
  }
  const startPartition = options.startPartition ?? 0;
  const sorted = [...brokers].sort((a, b) => a.id - b.id);
  const rackAware = sorted.every((broker) => broker.rack !== null);
  const placement = rackAware
    ? placeRackAware(sorted, partitions, replicationFactor, random, startPartition)
    : placeRackUnaware(sorted.map((broker) => broker.id), partitions, replicationFactor, random, startPartition);
  for (const replicas of placement) {
    if (new Set(replicas).size !== replicas.length || replicas.length !== replicationFactor) {
      throw new Error(`placeTopic: produced an invalid replica list [${replicas.join(',')}]`);
    }
  }
  return placement;
}

/** Index of the (j+2)-th replica: 1 + (shift + j) mod (n - 1) places after the first. */
function replicaIndex(firstReplicaIndex: number, shift: number, j: number, brokerCount: number): number {
  const step = 1 + ((shift + j) % (brokerCount - 1));
  return (firstReplicaIndex + step) % brokerCount;
}

function placeRackUnaware(
  brokerIds: readonly number[],
  partitions: number,
  replicationFactor: number,
  random: Random,
  startPartition: number,
): number[][] {
  const count = brokerIds.length;
  const startIndex = random.nextInt(count);
  let shift = random.nextInt(count);
  const result: number[][] = [];
  for (let partition = startPartition; partition < startPartition + partitions; partition++) {
    if (partition > 0 && partition % count === 0) shift += 1;
    const first = (partition + startIndex) % count;
    const replicas = [brokerIds[first]!];
    for (let j = 0; j < replicationFactor - 1; j++) replicas.push(brokerIds[replicaIndex(first, shift, j, count)]!);
    result.push(replicas);
  }
  return result;
}

/** Brokers ordered rack by rack (racks sorted, brokers sorted within a rack): r1b1, r2b1, r1b2, ... */
export function rackAlternatedBrokers(brokers: readonly PlacementBroker[]): PlacementBroker[] {
  const byRack = new Map<string, PlacementBroker[]>();
  for (const broker of [...brokers].sort((a, b) => a.id - b.id)) {
    const rack = broker.rack ?? '';
    const list = byRack.get(rack) ?? [];
    list.push(broker);
    byRack.set(rack, list);
  }
  const racks = [...byRack.keys()].sort();
  const result: PlacementBroker[] = [];
  for (let round = 0; result.length < brokers.length; round++) {
    for (const rack of racks) {
      const broker = byRack.get(rack)![round];
      if (broker !== undefined) result.push(broker);
    }
  }
  return result;
}

function placeRackAware(
  brokers: readonly PlacementBroker[],
  partitions: number,
  replicationFactor: number,
  random: Random,
  startPartition: number,
): number[][] {
  const arranged = rackAlternatedBrokers(brokers);
  const count = arranged.length;
  const rackCount = new Set(arranged.map((broker) => broker.rack)).size;
  const startIndex = random.nextInt(count);
  let shift = random.nextInt(count);
  const result: number[][] = [];
  for (let partition = startPartition; partition < startPartition + partitions; partition++) {
    if (partition > 0 && partition % count === 0) shift += 1;
    const first = (partition + startIndex) % count;
    const leader = arranged[first]!;
    const replicas = [leader.id];
    const racksUsed = new Set([leader.rack]);
    const brokersUsed = new Set([leader.id]);
    let k = 0;
    for (let j = 0; j < replicationFactor - 1; j++) {
      // Take the next broker in the sequence unless its rack already holds a replica while some
      // rack holds none, or it already holds one while some broker holds none. Terminates: once
      // every rack (broker) is used the condition on racks (brokers) no longer skips anything.
      for (let attempts = 0; ; attempts++) {
        if (attempts > count * count + count) throw new Error('placeRackAware: no eligible broker (bug)');
        const candidate = arranged[replicaIndex(first, shift * rackCount, k, count)]!;
        k += 1;
        const rackOk = !racksUsed.has(candidate.rack) || racksUsed.size === rackCount;
        const brokerOk = !brokersUsed.has(candidate.id) || brokersUsed.size === count;
        if (rackOk && brokerOk) {
          replicas.push(candidate.id);
          racksUsed.add(candidate.rack);
          brokersUsed.add(candidate.id);
          break;
        }
      }
    }
    result.push(replicas);
  }
  return result;
}
