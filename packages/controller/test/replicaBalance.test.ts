// The replica balancer as `runnel cluster rebalance --replicas` runs it: over many cluster shapes
// (brokers joining after topics were placed, racks, manual assignments that pile preferred
// leadership on one broker, decommissioned brokers), executing the plan and completing every move
// leaves each usable broker within one of the mean replica count and of the mean preferred-leader
// count, never changes a partition's replication factor and never lowers the racks it spans.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { planReassignment, targetReplicas, type MetadataImage } from '../src/index.js';
import { Cluster } from './cluster.js';

interface Shape {
  seed: number;
  initialBrokers: number;
  joiningBrokers: number;
  racks: number;
  topics: { partitions: number; replicationFactor: number }[];
  /** Partitions added with every preferred replica on broker 1 (a manual assignment). */
  skewedPartitions: number;
  decommission: boolean;
}

const shapeArbitrary: fc.Arbitrary<Shape> = fc
  .record({
    seed: fc.integer({ min: 1, max: 1_000_000 }),
    initialBrokers: fc.integer({ min: 1, max: 6 }),
    joiningBrokers: fc.integer({ min: 0, max: 4 }),
    racks: fc.integer({ min: 0, max: 3 }),
    topics: fc.array(fc.record({ partitions: fc.integer({ min: 1, max: 24 }), replicationFactor: fc.integer({ min: 1, max: 3 }) }), { minLength: 1, maxLength: 3 }),
    skewedPartitions: fc.integer({ min: 0, max: 8 }),
    decommission: fc.boolean(),
  })
  .map((shape) => ({
    ...shape,
    topics: shape.topics.map((topic) => ({ ...topic, replicationFactor: Math.min(topic.replicationFactor, shape.initialBrokers) })),
  }));

/** Racks by broker id: none, or ids spread round-robin over `racks` racks. */
function rackOf(shape: Shape, id: number): string | null {
  return shape.racks === 0 ? null : `rack-${id % shape.racks}`;
}

function build(shape: Shape): Cluster {
  const cluster = new Cluster(shape.seed);
  const initial = Array.from({ length: shape.initialBrokers }, (_, index) => index + 1);
  const racks = (ids: number[]): string[] | undefined => (shape.racks === 0 ? undefined : ids.map((id) => rackOf(shape, id)!));
  cluster.start(initial, racks(initial));
  shape.topics.forEach((topic, index) => {
    const created = cluster.createTopic(`t${index}`, topic.partitions, topic.replicationFactor);
    if (created.errorCode !== 0) throw new Error(created.errorMessage);
  });
  if (shape.skewedPartitions > 0) {
    const replicationFactor = Math.min(2, shape.initialBrokers);
    cluster.createTopic('skewed', 1, replicationFactor);
    const others = initial.filter((id) => id !== 1);
    const assignments = Array.from({ length: shape.skewedPartitions }, (_, index) => [1, ...Array.from({ length: replicationFactor - 1 }, (_, position) => others[(index + position) % others.length]!)]);
    const grown = cluster.commit(cluster.logic.createPartitions(cluster.image, { topics: [{ name: 'skewed', count: 1 + shape.skewedPartitions, assignments }] }));
    if (grown.topics[0]!.errorCode !== 0) throw new Error(grown.topics[0]!.errorMessage);
  }
  const joining = Array.from({ length: shape.joiningBrokers }, (_, index) => shape.initialBrokers + index + 1);
  cluster.start(joining, racks(joining));
  return cluster;
}

function counts(image: MetadataImage, brokers: readonly number[]): { replicas: Map<number, number>; preferred: Map<number, number> } {
  const replicas = new Map(brokers.map((id) => [id, 0]));
  const preferred = new Map(brokers.map((id) => [id, 0]));
  for (const { state } of image.allPartitions()) {
    for (const id of state.replicas) replicas.set(id, (replicas.get(id) ?? 0) + 1);
    preferred.set(state.replicas[0]!, (preferred.get(state.replicas[0]!) ?? 0) + 1);
  }
  return { replicas, preferred };
}

function withinOneOfMean(values: readonly number[]): boolean {
  const mean = values.reduce((sum, value) => sum + value, 0) / values.length;
  return values.every((value) => Math.abs(value - mean) <= 1);
}

function rackSpread(shape: Shape, replicas: readonly number[]): number {
  return new Set(replicas.map((id) => rackOf(shape, id))).size;
}

describe('rebalanceReplicas over many cluster shapes', () => {
  it('ends with every usable broker within one of the mean replica and preferred-leader counts, RF kept (no racks)', () => {
    fc.assert(
      fc.property(shapeArbitrary.map((shape) => ({ ...shape, racks: 0 })), (shape) => {
        const cluster = build(shape);
        if (shape.decommission && shape.initialBrokers + shape.joiningBrokers > Math.max(...shape.topics.map((topic) => topic.replicationFactor), 2)) {
          const response = cluster.commit(cluster.logic.decommissionBroker(cluster.image, 1));
          expect(response.errorMessage).toBe('');
          cluster.completeMoves();
        }
        const rfBefore = new Map([...cluster.image.allPartitions()].map(({ topic, state }) => [`${topic.name}-${state.partition}`, state.replicas.length]));
        const response = cluster.commit(cluster.logic.rebalanceReplicas(cluster.image));
        expect(response.errorMessage).toBe('');
        expect(response.unplaceable).toEqual([]);
        expect(response.started.filter((result) => result.errorCode !== 0)).toEqual([]);
        cluster.completeMoves();
        const usable = cluster.logic.usableBrokers(cluster.image).map((broker) => broker.id);
        const after = counts(cluster.image, usable);
        for (const [id, count] of after.replicas) if (!usable.includes(id)) expect(count, `decommissioned broker ${id} keeps replicas`).toBe(0);
        expect(withinOneOfMean(usable.map((id) => after.replicas.get(id)!)), `replicas ${JSON.stringify([...after.replicas])}`).toBe(true);
        expect(withinOneOfMean(usable.map((id) => after.preferred.get(id)!)), `preferred ${JSON.stringify([...after.preferred])}`).toBe(true);
        for (const { topic, state } of cluster.image.allPartitions()) expect(state.replicas.length).toBe(rfBefore.get(`${topic.name}-${state.partition}`));
        // Balanced now: a second rebalance has nothing to move.
        expect(cluster.logic.rebalanceReplicas(cluster.image, { dryRun: true }).response.moves).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });

  it('with racks on every broker, never lowers the racks a partition spans and keeps RF', () => {
    fc.assert(
      fc.property(shapeArbitrary.map((shape) => ({ ...shape, racks: Math.max(shape.racks, 1) })), (shape) => {
        const cluster = build(shape);
        const before = new Map([...cluster.image.allPartitions()].map(({ topic, state }) => [`${topic.name}-${state.partition}`, state.replicas]));
        const plan = planReassignment(cluster.image, cluster.logic.usableBrokers(cluster.image));
        for (const move of plan.moves) {
          expect(move.to).toHaveLength(move.from.length);
          expect(new Set(move.to).size).toBe(move.to.length);
          expect(rackSpread(shape, move.to)).toBeGreaterThanOrEqual(rackSpread(shape, move.from));
        }
        cluster.commit(cluster.logic.rebalanceReplicas(cluster.image));
        cluster.completeMoves();
        for (const { topic, state } of cluster.image.allPartitions()) {
          const original = before.get(`${topic.name}-${state.partition}`)!;
          expect(state.replicas.length).toBe(original.length);
          expect(rackSpread(shape, state.replicas)).toBeGreaterThanOrEqual(rackSpread(shape, original));
        }
        // With as many brokers in each rack, the rack constraint costs no balance.
        const total = shape.initialBrokers + shape.joiningBrokers;
        if (total % shape.racks === 0 && shape.skewedPartitions === 0) {
          const usable = cluster.logic.usableBrokers(cluster.image).map((broker) => broker.id);
          const after = counts(cluster.image, usable);
          expect(withinOneOfMean(usable.map((id) => after.replicas.get(id)!)), `replicas ${JSON.stringify([...after.replicas])}`).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('planReassignment balances preferred leaders', () => {
  it('reorders replicas when replica counts are even but every partition prefers broker 1', () => {
    const cluster = new Cluster(3);
    cluster.start([1, 2, 3]);
    cluster.createTopic('t', 1, 3);
    cluster.commit(cluster.logic.createPartitions(cluster.image, { topics: [{ name: 't', count: 6, assignments: Array.from({ length: 5 }, () => [1, 2, 3]) }] }));
    const plan = cluster.logic.planReassignment(cluster.image);
    expect(Object.fromEntries(plan.replicasAfter)).toEqual({ 1: 6, 2: 6, 3: 6 });
    expect(Object.fromEntries(plan.preferredAfter)).toEqual({ 1: 2, 2: 2, 3: 2 });
    // Reorders only: every move keeps the same replica set.
    for (const move of plan.moves) expect([...move.to].sort()).toEqual([...move.from].sort());
  });

  it('plans a moving partition from its target, not from its replicas during the move', () => {
    const cluster = new Cluster(4);
    cluster.start([1, 2, 3, 4]);
    cluster.createTopic('t', 1, 2);
    const state = cluster.image.partition('t', 0)!;
    const outside = [1, 2, 3, 4].filter((id) => !state.replicas.includes(id));
    cluster.commit(cluster.logic.alterPartitionReassignments(cluster.image, { partitions: [{ topic: 't', partition: 0, replicas: outside }] }));
    expect(cluster.image.partition('t', 0)!.replicas).toHaveLength(4);
    const plan = planReassignment(cluster.image, cluster.logic.usableBrokers(cluster.image));
    expect(plan.moves).toEqual([]);
    expect([...plan.replicasBefore.values()].reduce((sum, count) => sum + count, 0)).toBe(2);
    expect(targetReplicas(cluster.image.partition('t', 0)!)).toEqual(outside);
  });
});
