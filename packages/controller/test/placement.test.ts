import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PlacementError, SeededRandom, placeTopic, rackAlternatedBrokers, type PlacementBroker, type Random } from '../src/index.js';

const fixed = (value: number): Random => ({ nextInt: (max) => value % max });
const brokers = (ids: readonly number[], rack: (id: number) => string | null = () => null): PlacementBroker[] => ids.map((id) => ({ id, rack: rack(id) }));

function counts(placement: number[][], pick: (replicas: number[]) => number[]): Map<number, number> {
  const result = new Map<number, number>();
  for (const replicas of placement) for (const id of pick(replicas)) result.set(id, (result.get(id) ?? 0) + 1);
  return result;
}

describe('placeTopic', () => {
  it("matches Kafka's AdminUtils for a fixed start index and shift (5 brokers, 10 partitions, RF 3)", () => {
    expect(placeTopic(brokers([0, 1, 2, 3, 4]), 10, 3, fixed(0))).toEqual([
      [0, 1, 2],
      [1, 2, 3],
      [2, 3, 4],
      [3, 4, 0],
      [4, 0, 1],
      [0, 2, 3],
      [1, 3, 4],
      [2, 4, 0],
      [3, 0, 1],
      [4, 1, 2],
    ]);
  });

  it('orders brokers to alternate racks and places rack-aware like Kafka', () => {
    const racks: Record<number, string> = { 0: 'rack1', 1: 'rack3', 2: 'rack3', 3: 'rack2', 4: 'rack2', 5: 'rack1' };
    const six = brokers([0, 1, 2, 3, 4, 5], (id) => racks[id]!);
    expect(rackAlternatedBrokers(six).map((broker) => broker.id)).toEqual([0, 3, 1, 5, 4, 2]);
    expect(placeTopic(six, 7, 3, fixed(0))).toEqual([
      [0, 3, 1],
      [3, 1, 5],
      [1, 5, 4],
      [5, 4, 2],
      [4, 2, 0],
      [2, 0, 3],
      [0, 4, 2],
    ]);
  });

  it('12 partitions with RF 3 on 3 brokers: 4 leaders and 12 replicas on each broker, whatever the seed', () => {
    for (let seed = 0; seed < 50; seed++) {
      const placement = placeTopic(brokers([1, 2, 3]), 12, 3, new SeededRandom(seed));
      expect([...counts(placement, (replicas) => [replicas[0]!]).values()]).toEqual([4, 4, 4]);
      expect([...counts(placement, (replicas) => replicas).values()]).toEqual([12, 12, 12]);
    }
  });

  it('spreads leaders within ±1, never puts two replicas on one broker, and balances replicas per full round', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 12 }), fc.integer(), (brokerCount, partitions, rf, seed) => {
        fc.pre(rf <= brokerCount);
        const ids = Array.from({ length: brokerCount }, (_, index) => index * 3 + 1);
        const placement = placeTopic(brokers(ids), partitions, rf, new SeededRandom(seed));
        expect(placement).toHaveLength(partitions);
        for (const replicas of placement) {
          expect(replicas).toHaveLength(rf);
          expect(new Set(replicas).size).toBe(rf);
          for (const id of replicas) expect(ids).toContain(id);
        }
        const leaders = ids.map((id) => counts(placement, (replicas) => [replicas[0]!]).get(id) ?? 0);
        expect(Math.max(...leaders) - Math.min(...leaders)).toBeLessThanOrEqual(1);
        if (partitions % brokerCount === 0) {
          const replicaCounts = ids.map((id) => counts(placement, (replicas) => replicas).get(id) ?? 0);
          expect(new Set(replicaCounts).size).toBe(1);
        }
      }),
    );
  });

  it('puts the replicas of each partition in distinct racks when there are at least RF racks', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 5 }), fc.integer(), (rackCount, perRack, partitions, rf, seed) => {
        const ids = Array.from({ length: rackCount * perRack }, (_, index) => index + 1);
        fc.pre(rf <= ids.length);
        // Uneven racks too: broker i goes to rack (i * 7) mod rackCount.
        const rackOf = (id: number): string => `rack-${(id * 7) % rackCount}`;
        const placement = placeTopic(brokers(ids, rackOf), partitions, rf, new SeededRandom(seed));
        const racksUsed = new Set(ids.map(rackOf)).size;
        for (const replicas of placement) {
          expect(new Set(replicas).size).toBe(rf);
          expect(new Set(replicas.map(rackOf)).size).toBe(Math.min(rf, racksUsed));
        }
        const leaders = ids.map((id) => counts(placement, (replicas) => [replicas[0]!]).get(id) ?? 0);
        expect(Math.max(...leaders) - Math.min(...leaders)).toBeLessThanOrEqual(1);
      }),
    );
  });

  it('ignores racks unless every broker has one', () => {
    const mixed = brokers([1, 2, 3, 4], (id) => (id === 4 ? null : 'same'));
    const placement = placeTopic(mixed, 8, 2, new SeededRandom(3));
    expect(placement.every((replicas) => new Set(replicas).size === 2)).toBe(true);
  });

  it('is deterministic for a seed and starts elsewhere for another', () => {
    const a = placeTopic(brokers([1, 2, 3, 4, 5]), 5, 2, new SeededRandom(7));
    expect(placeTopic(brokers([5, 4, 3, 2, 1]), 5, 2, new SeededRandom(7))).toEqual(a);
    const starts = new Set(Array.from({ length: 20 }, (_, seed) => placeTopic(brokers([1, 2, 3, 4, 5]), 1, 1, new SeededRandom(seed))[0]![0]));
    expect(starts.size).toBeGreaterThan(1);
  });

  it('rejects a replication factor above the broker count (INVALID_REPLICATION_FACTOR) and bad counts', () => {
    expect(() => placeTopic(brokers([1, 2]), 3, 3, new SeededRandom(1))).toThrow(PlacementError);
    try {
      placeTopic(brokers([1, 2]), 3, 3, new SeededRandom(1));
    } catch (error) {
      expect((error as PlacementError).errorName).toBe('INVALID_REPLICATION_FACTOR');
    }
    expect(() => placeTopic([], 1, 1, new SeededRandom(1))).toThrow(/replication factor 1 is larger than the 0/);
    expect(() => placeTopic(brokers([1]), 0, 1, new SeededRandom(1))).toThrow(/partitions/);
    expect(() => placeTopic(brokers([1]), 1, 0, new SeededRandom(1))).toThrow(/replication factor/);
  });
});
