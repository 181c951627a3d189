// Random sequences of controller operations — registrations and restarts, heartbeats, time passing
// and fencing, topic creation and deletion, AlterPartition from current and stale leaders,
// controlled shutdowns, preferred elections, controller failovers — driven through ControllerLogic
// and MetadataImage.apply, with the cluster invariants checked after every step.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  BrokerSessions,
  ControllerLogic,
  MetadataImage,
  SeededRandom,
  decodeRecord,
  diffImages,
  encodeRecord,
  type ControllerResult,
  type MetadataRecord,
} from '../src/index.js';

const BROKERS = [1, 2, 3, 4, 5] as const;
const TOPICS = ['t0', 't1', 't2', 't3'] as const;

type Action =
  | { readonly kind: 'register'; readonly broker: number }
  | { readonly kind: 'heartbeat'; readonly broker: number; readonly lagging: boolean; readonly wantShutDown: boolean }
  | { readonly kind: 'tick'; readonly ms: number; readonly heartbeatLive: boolean }
  | { readonly kind: 'crash'; readonly broker: number }
  | { readonly kind: 'create'; readonly topic: number; readonly partitions: number; readonly rf: number; readonly unclean: boolean }
  | { readonly kind: 'delete'; readonly topic: number }
  | { readonly kind: 'alter'; readonly pick: number; readonly isrMask: number; readonly stale: boolean; readonly dropLeader: boolean }
  | { readonly kind: 'shutdown'; readonly broker: number }
  | { readonly kind: 'preferred'; readonly percentage: number }
  | { readonly kind: 'failover' };

const broker = fc.constantFrom(...BROKERS);
const actionArbitrary: fc.Arbitrary<Action> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('register' as const), broker }) },
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant('heartbeat' as const), broker, lagging: fc.boolean(), wantShutDown: fc.integer({ min: 0, max: 5 }).map((n) => n === 0) }),
  },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 6000 }), heartbeatLive: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('crash' as const), broker }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('create' as const),
      topic: fc.integer({ min: 0, max: TOPICS.length - 1 }),
      partitions: fc.integer({ min: 1, max: 6 }),
      rf: fc.integer({ min: 1, max: 4 }),
      unclean: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), topic: fc.integer({ min: 0, max: TOPICS.length - 1 }) }) },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('alter' as const),
      pick: fc.nat(),
      isrMask: fc.nat({ max: 31 }),
      stale: fc.boolean(),
      dropLeader: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('shutdown' as const), broker }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('preferred' as const), percentage: fc.constantFrom(0, 10, 50) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'failover' as const }) },
);

/** How often the runs reached each interesting state: the test fails if they stop reaching them. */
const reached = {
  fenced: 0,
  registrationRefused: 0,
  alterAccepted: 0,
  staleAlterRejected: 0,
  ineligibleReplica: 0,
  offlinePartition: 0,
  uncleanElection: 0,
  controlledShutdownDone: 0,
  preferredMoves: 0,
  topicsDeleted: 0,
  topicsCreated: 0,
  failovers: 0,
};

interface Snapshot {
  readonly topic: string;
  readonly topicId: string;
  readonly partition: number;
  readonly leader: number;
  readonly leaderEpoch: number;
  readonly partitionEpoch: number;
}

/** The controller and the brokers' processes as the test sees them. */
class World {
  image = MetadataImage.empty();
  sessions = new BrokerSessions();
  logic: ControllerLogic;
  nowMs = 0;
  incarnation = 0;
  /** Broker processes that are down (no heartbeats). */
  readonly down = new Set<number>(BROKERS);
  /** Brokers that asked for a controlled shutdown since they last registered. */
  readonly shuttingDown = new Set<number>();
  /** Every distinct (leader, epochs) state each partition has been in, for stale requests. */
  readonly history: Snapshot[] = [];
  private readonly lastSnapshot = new Map<string, string>();
  // Whole-run observations.
  readonly leaderOfEpoch = new Map<string, number>();
  readonly replicationFactor = new Map<string, number>();
  readonly highestEpochs = new Map<string, { leaderEpoch: number; partitionEpoch: number }>();

  constructor(private readonly seed: number) {
    this.logic = new ControllerLogic({ sessions: this.sessions, random: new SeededRandom(seed) });
  }

  commit<T>(result: ControllerResult<T>): T {
    for (const record of result.records) {
      expect(decodeRecord(encodeRecord(record))).toEqual(record);
      if (record.type === 'PartitionChange' && record.leader !== -1) {
        const previous = this.image.topicById(record.topicId)?.partition(record.partition);
        if (previous !== undefined && !previous.isr.includes(record.leader)) reached.uncleanElection += 1;
      }
    }
    const before = this.image;
    this.image = this.image.applyAll(result.records, this.image.highestOffset + 1);
    this.checkDeltas(before, this.image);
    return result.response;
  }

  heartbeat(id: number, options: { lagging?: boolean; wantShutDown?: boolean } = {}): void {
    const registration = this.image.broker(id);
    if (registration === undefined) return;
    const wantShutDown = options.wantShutDown === true || this.shuttingDown.has(id);
    if (wantShutDown && !registration.fenced) this.shuttingDown.add(id);
    const response = this.commit(
      this.logic.brokerHeartbeat(
        this.image,
        { brokerId: id, brokerEpoch: registration.epoch, currentMetadataOffset: options.lagging === true ? registration.epoch - 1 : this.image.highestOffset, wantShutDown },
        this.nowMs,
      ),
    );
    expect(response.errorCode).toBe(0);
    if (response.shouldShutDown) {
      if (!registration.fenced) reached.controlledShutdownDone += 1;
      expect(this.image.broker(id)!.fenced).toBe(true);
      expect(this.image.leaderCount(id)).toBe(0);
      this.down.add(id);
    }
  }

  step(action: Action): void {
    switch (action.kind) {
      case 'register': {
        const response = this.commit(
          this.logic.registerBroker(
            this.image,
            { brokerId: action.broker, incarnationId: `inc-${++this.incarnation}`, listeners: [{ name: 'PLAINTEXT', host: 'localhost', port: 9000 + action.broker }], rack: `rack-${action.broker % 3}` },
            this.nowMs,
          ),
        );
        if (response.errorCode === 0) {
          this.down.delete(action.broker);
          this.shuttingDown.delete(action.broker);
          expect(this.image.broker(action.broker)!.fenced).toBe(true);
        } else {
          expect(response.errorCode).toBe(101);
          reached.registrationRefused += 1;
        }
        return;
      }
      case 'heartbeat':
        if (!this.down.has(action.broker)) this.heartbeat(action.broker, { lagging: action.lagging, wantShutDown: action.wantShutDown });
        return;
      case 'tick': {
        this.nowMs += action.ms;
        if (action.heartbeatLive) for (const id of BROKERS) if (!this.down.has(id)) this.heartbeat(id);
        const fenced = this.commit(this.logic.fenceExpiredBrokers(this.image, this.nowMs)).fenced;
        for (const id of fenced) expect(this.image.broker(id)!.fenced).toBe(true);
        reached.fenced += fenced.length;
        return;
      }
      case 'crash':
        this.down.add(action.broker);
        return;
      case 'create':
        this.create(action);
        return;
      case 'delete': {
        const name = TOPICS[action.topic]!;
        const existed = this.image.topic(name) !== undefined;
        const response = this.commit(this.logic.deleteTopics(this.image, { topics: [name] }));
        expect(response.topics[0]!.errorCode).toBe(existed ? 0 : 3);
        expect(this.image.topic(name)).toBeUndefined();
        if (existed) reached.topicsDeleted += 1;
        return;
      }
      case 'alter':
        this.alter(action);
        return;
      case 'shutdown':
        if (!this.down.has(action.broker)) this.heartbeat(action.broker, { wantShutDown: true });
        return;
      case 'preferred': {
        const response = this.commit(this.logic.preferredLeaderElection(this.image, { imbalancePercentage: action.percentage }));
        reached.preferredMoves += response.moved.length;
        for (const move of response.moved) expect(this.image.topic(move.topic)!.partition(move.partition)!.leader).toBe(move.to);
        return;
      }
      case 'failover':
        // A new active controller: same committed image, fresh sessions, its own random source.
        reached.failovers += 1;
        this.sessions = new BrokerSessions();
        this.logic = new ControllerLogic({ sessions: this.sessions, random: new SeededRandom(this.seed + this.incarnation + 1) });
        return;
    }
  }

  private create(action: Extract<Action, { kind: 'create' }>): void {
    const name = TOPICS[action.topic]!;
    const existed = this.image.topic(name) !== undefined;
    const active = this.image.brokers().filter((registration) => this.logic.isActive(this.image, registration.id)).length;
    const response = this.commit(
      this.logic.createTopics(this.image, {
        topics: [{ name, numPartitions: action.partitions, replicationFactor: action.rf, configs: action.unclean ? { 'unclean.leader.election.enable': 'true' } : {} }],
      }),
    ).topics[0]!;
    const expected = existed ? 36 : action.rf > active ? 38 : 0;
    expect(response.errorCode).toBe(expected);
    if (expected !== 0) return;
    reached.topicsCreated += 1;
    const topic = this.image.topic(name)!;
    // A topic id is never reused, not even for a re-created topic after a controller failover.
    expect(this.replicationFactor.has(topic.id), `topic id ${topic.id} reused`).toBe(false);
    expect(topic.id).toBe(response.topicId);
    expect(topic.partitionCount).toBe(action.partitions);
    this.replicationFactor.set(topic.id, action.rf);
    // Leaders spread evenly over the brokers that were usable.
    const leaders = new Map<number, number>();
    for (const state of topic.partitions()) leaders.set(state.leader, (leaders.get(state.leader) ?? 0) + 1);
    const counts = [...leaders.values()];
    if (leaders.size === active) expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    else expect(Math.max(...counts)).toBe(1);
  }

  private alter(action: Extract<Action, { kind: 'alter' }>): void {
    let from: Snapshot | undefined;
    if (action.stale && this.history.length > 0) {
      from = this.history[action.pick % this.history.length];
    } else {
      const all = [...this.image.allPartitions()];
      if (all.length === 0) return;
      const { topic, state } = all[action.pick % all.length]!;
      from = { topic: topic.name, topicId: topic.id, partition: state.partition, leader: state.leader, leaderEpoch: state.leaderEpoch, partitionEpoch: state.partitionEpoch };
    }
    if (from === undefined || from.leader < 0) return;
    const sender = this.image.broker(from.leader);
    if (sender === undefined) return;
    const current = this.image.topicById(from.topicId)?.partition(from.partition);
    const replicas = current?.replicas ?? [from.leader];
    const newIsr = replicas.filter((id, index) => id !== from!.leader && (action.isrMask & (1 << index)) !== 0);
    if (!action.dropLeader) newIsr.unshift(from.leader);
    if (newIsr.length === 0) newIsr.push(replicas.find((id) => id !== from!.leader) ?? from.leader);
    const result = this.logic.alterPartition(this.image, {
      brokerId: sender.id,
      brokerEpoch: sender.epoch,
      partitions: [{ topic: from.topic, topicId: from.topicId, partition: from.partition, leaderEpoch: from.leaderEpoch, partitionEpoch: from.partitionEpoch, newIsr }],
    });
    const code = result.response.partitions[0]?.errorCode ?? result.response.errorCode;
    const upToDate =
      current !== undefined && current.leader === from.leader && current.leaderEpoch === from.leaderEpoch && current.partitionEpoch === from.partitionEpoch;
    if (!upToDate) {
      // A request from a stale leader or with stale epochs is always rejected and changes nothing.
      expect(code).not.toBe(0);
      expect(result.records).toEqual([]);
      reached.staleAlterRejected += 1;
    } else {
      const eligible = newIsr.every((id) => this.logic.isActive(this.image, id));
      const expected = action.dropLeader && !newIsr.includes(from.leader) ? 42 : eligible ? 0 : 107;
      expect(code).toBe(expected);
      if (expected !== 0) expect(result.records).toEqual([]);
      if (expected === 107) reached.ineligibleReplica += 1;
    }
    this.commit(result);
    if (code === 0) {
      reached.alterAccepted += 1;
      const after = this.image.topicById(from.topicId)!.partition(from.partition)!;
      expect([...after.isr].sort()).toEqual([...newIsr].sort());
      expect(after.leader).toBe(from.leader);
      expect(after.leaderEpoch).toBe(from.leaderEpoch);
    }
  }

  /** Every broker's delta names exactly the partitions whose state changed for it. */
  private checkDeltas(before: MetadataImage, after: MetadataImage): void {
    if (before === after) return;
    for (const id of BROKERS) {
      const delta = diffImages(before, after, id);
      const expectedLead: string[] = [];
      const expectedFollow: string[] = [];
      for (const { topic, state } of after.allPartitions()) {
        const previous = before.topicById(topic.id)?.partition(state.partition);
        if (!state.replicas.includes(id) || (previous !== undefined && previous.partitionEpoch === state.partitionEpoch)) continue;
        (state.leader === id ? expectedLead : expectedFollow).push(`${topic.id}/${state.partition}`);
      }
      expect(delta.lead.map((entry) => `${entry.topicId}/${entry.partition}`)).toEqual(expectedLead);
      expect(delta.follow.map((entry) => `${entry.topicId}/${entry.partition}`)).toEqual(expectedFollow);
      for (const removed of delta.stopAndDelete) expect(after.topicById(removed.topicId)?.partition(removed.partition)?.replicas ?? []).not.toContain(id);
    }
  }

  /** The invariants, checked after every step. */
  check(): void {
    for (const { topic, state } of this.image.allPartitions()) {
      const where = `${topic.name}-${state.partition}`;
      const key = `${topic.id}/${state.partition}`;
      expect(new Set(state.replicas).size, `${where}: distinct replicas`).toBe(state.replicas.length);
      expect(state.replicas.length, `${where}: replication factor preserved`).toBe(this.replicationFactor.get(topic.id));
      expect(state.isr.length, `${where}: ISR not empty`).toBeGreaterThan(0);
      for (const id of state.isr) expect(state.replicas, `${where}: ISR ⊆ replicas`).toContain(id);
      if (state.leader !== -1) expect(state.isr, `${where}: leader ∈ ISR`).toContain(state.leader);
      // At most one leader per partition per leader epoch, across the whole run.
      const epochKey = `${key}/${state.leaderEpoch}`;
      const seen = this.leaderOfEpoch.get(epochKey);
      if (seen === undefined) this.leaderOfEpoch.set(epochKey, state.leader);
      else expect(state.leader, `${where}: two leaders in leader epoch ${state.leaderEpoch}`).toBe(seen);
      // Epochs only grow.
      const highest = this.highestEpochs.get(key);
      if (highest !== undefined) {
        expect(state.leaderEpoch, `${where}: leader epoch went back`).toBeGreaterThanOrEqual(highest.leaderEpoch);
        expect(state.partitionEpoch, `${where}: partition epoch went back`).toBeGreaterThanOrEqual(highest.partitionEpoch);
      }
      this.highestEpochs.set(key, { leaderEpoch: state.leaderEpoch, partitionEpoch: state.partitionEpoch });
      // A fenced broker leads nothing while any unfenced ISR member exists (here: leads nothing at all).
      if (state.leader !== -1) {
        const leader = this.image.broker(state.leader)!;
        const unfencedIsr = state.isr.filter((id) => this.image.broker(id)?.fenced === false);
        if (leader.fenced) expect(unfencedIsr, `${where}: fenced leader ${leader.id} while ISR members are unfenced`).toEqual([]);
        expect(leader.fenced, `${where}: leader ${leader.id} is fenced`).toBe(false);
      } else {
        // An offline partition has no ISR member that could lead it (brokers shutting down aside).
        reached.offlinePartition += 1;
        const couldLead = state.isr.filter((id) => this.logic.isActive(this.image, id) && !this.shuttingDown.has(id));
        expect(couldLead, `${where}: offline although ISR members are alive`).toEqual([]);
      }
      const signature = `${state.leader}/${state.leaderEpoch}/${state.partitionEpoch}`;
      if (this.lastSnapshot.get(key) !== signature) {
        this.lastSnapshot.set(key, signature);
        this.history.push({ topic: topic.name, topicId: topic.id, partition: state.partition, leader: state.leader, leaderEpoch: state.leaderEpoch, partitionEpoch: state.partitionEpoch });
      }
    }
    if (this.history.length > 1000) this.history.splice(0, this.history.length - 1000);
  }
}

describe('controller properties', () => {
  it('random operation sequences keep every cluster invariant', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.array(actionArbitrary, { minLength: 1, maxLength: 150, size: 'max' }), (seed, actions) => {
        const world = new World(seed);
        // Start with three live brokers most of the time; the actions do the rest.
        for (const id of [1, 2, 3]) world.step({ kind: 'register', broker: id });
        for (const id of [1, 2, 3]) world.heartbeat(id);
        world.check();
        for (const action of actions) {
          world.step(action);
          world.check();
        }
      }),
      { numRuns: 200 },
    );
    // The runs must keep reaching the states the invariants are about.
    console.log(`controller properties reached: ${JSON.stringify(reached)}`);
    for (const [name, count] of Object.entries(reached)) expect(count, `runs never reached: ${name}`).toBeGreaterThan(0);
    console.log(`controller properties reached: ${JSON.stringify(reached)}`);
  });
});
