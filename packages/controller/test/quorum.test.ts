// QuorumController on three real RaftHosts in this process, over loopback gRPC, with LevelDB in temp
// dirs and short ticks: election, standby answers, broker registration and heartbeats, topic
// creation, failover (graceful stop and kill), fencing an expired broker, restart from the data dir
// (through a snapshot), rebalance. Everything waits by polling with deadlines.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createLogger } from '@runnel/common';
import { MetadataImage, SeededRandom, type MetadataRecord } from '../src/index.js';
import { MetadataStateMachine, NotControllerError, QuorumController, decodeImageSnapshot, encodeImageSnapshot, encodeRecordBatch } from '../src/quorum/index.js';
import { canonicalImage } from '../src/sim/index.js';
import { freePort, sleep, until } from './async.js';

const logger = createLogger({ name: 'quorum-test', level: 'silent' });
const TICK_MS = 20;
const SESSION_TIMEOUT_MS = 600;
const SESSION_CHECK_MS = 100;
const HEARTBEAT_MS = 100;


class Cluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'quorum-controller-'));
  readonly members = new Map<number, QuorumController>();
  voters = new Map<number, string>();

  async start(ids: readonly number[] = [1, 2, 3]): Promise<void> {
    const ports = await Promise.all(ids.map(() => freePort()));
    this.voters = new Map(ids.map((id, k) => [id, `127.0.0.1:${ports[k]!}`]));
    await Promise.all(ids.map((id) => this.startMember(id)));
  }

  async startMember(id: number): Promise<QuorumController> {
    const port = Number(this.voters.get(id)!.split(':')[1]);
    const controller = new QuorumController({
      raft: {
        id,
        voters: this.voters,
        group: 'metadata',
        dataDir: join(this.dir, `node-${id}`),
        listenHost: '127.0.0.1',
        listenPort: port,
        logger,
        tickMs: TICK_MS,
        // Small so that the members snapshot and compact, and a restarted one may need a snapshot.
        snapshotEveryEntries: 4,
        retainEntries: 2,
      },
      sessionTimeoutMs: SESSION_TIMEOUT_MS,
      sessionCheckIntervalMs: SESSION_CHECK_MS,
      random: new SeededRandom(id),
      config: { defaultReplicationFactor: 3 },
    });
    await controller.start();
    this.members.set(id, controller);
    return controller;
  }

  running(): QuorumController[] {
    return [...this.members.values()];
  }

  active(): QuorumController | undefined {
    const active = this.running().filter((member) => member.isActive);
    return active.length === 1 ? active[0] : undefined;
  }

  async waitActive(timeoutMs = 5000): Promise<QuorumController> {
    return until('an active controller', () => this.active(), timeoutMs);
  }

  async stopMember(id: number, how: 'stop' | 'kill'): Promise<void> {
    const member = this.members.get(id)!;
    this.members.delete(id);
    if (how === 'kill') await member.kill();
    else await member.stop();
  }

  /** Every running member has applied the same image as `reference`. */
  async converged(reference: () => MetadataImage, timeoutMs = 5000): Promise<void> {
    await until('every member holds the same image', () => {
      const expected = canonicalImage(reference());
      return this.running().every((member) => canonicalImage(member.image) === expected);
    }, timeoutMs);
  }

  async close(): Promise<void> {
    await Promise.all(this.running().map((member) => member.kill()));
    this.members.clear();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A broker that registers and heartbeats to whichever member is the active controller. */
class TestBroker {
  epoch = -1;
  heartbeating = true;
  lastAcknowledgedMs = 0;
  readonly unexpected: unknown[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly id: number,
    private readonly cluster: Cluster,
  ) {}

  async register(): Promise<void> {
    const active = await this.cluster.waitActive();
    const response = await active.registerBroker({
      brokerId: this.id,
      incarnationId: `broker-${this.id}-a`,
      listeners: [{ name: 'PLAINTEXT', host: '127.0.0.1', port: 9090 + this.id }],
      rack: null,
    });
    expect(response.errorCode).toBe(0);
    this.epoch = response.brokerEpoch;
    this.timer = setInterval(() => void this.beat(), HEARTBEAT_MS);
  }

  private async beat(): Promise<void> {
    if (!this.heartbeating) return;
    const active = this.cluster.active();
    if (active === undefined) return;
    try {
      const response = await active.brokerHeartbeat({ brokerId: this.id, brokerEpoch: this.epoch, currentMetadataOffset: active.image.highestOffset });
      if (response.errorCode === 0) this.lastAcknowledgedMs = Date.now();
    } catch (error) {
      // NOT_CONTROLLER during a failover: the next beat goes to the new active controller.
      if (!(error instanceof NotControllerError)) this.unexpected.push(error);
    }
  }

  close(): void {
    clearInterval(this.timer);
  }
}

function leadersPerBroker(image: MetadataImage): number[] {
  return [1, 2, 3].map((id) => image.leaderCount(id));
}

describe('QuorumController on three RaftHosts (loopback gRPC)', () => {
  const cluster = new Cluster();
  const brokers = [1, 2, 3].map((id) => new TestBroker(id, cluster));
  const observed: Record<string, number> = {};

  beforeAll(async () => {
    await cluster.start();
  });

  afterAll(async () => {
    for (const broker of brokers) broker.close();
    expect(brokers.flatMap((broker) => broker.unexpected)).toEqual([]);
    await cluster.close();
    console.log(`quorum test timings (ms): ${JSON.stringify(observed)}`);
  });

  it('elects one active controller; standbys answer NOT_CONTROLLER with the leader id', async () => {
    const active = await cluster.waitActive();
    const standbys = cluster.running().filter((member) => member !== active);
    expect(standbys).toHaveLength(2);
    await until('standbys know the leader', () => standbys.every((member) => member.leaderId === active.id));
    for (const standby of standbys) {
      const error = await standby.createTopics({ topics: [{ name: 'nope', numPartitions: 1, replicationFactor: 1 }] }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(NotControllerError);
      expect((error as NotControllerError).errorCode).toBe(41);
      expect((error as NotControllerError).leaderId).toBe(active.id);
      const heartbeat = await standby.brokerHeartbeat({ brokerId: 1, brokerEpoch: 0, currentMetadataOffset: 0 }).catch((caught: unknown) => caught);
      expect(heartbeat).toBeInstanceOf(NotControllerError);
    }
  });

  it('registers and unfences three brokers, and places 12 partitions x RF 3 with 4 leaders per broker on every member', async () => {
    for (const broker of brokers) await broker.register();
    expect(new Set(brokers.map((broker) => broker.epoch)).size).toBe(3);
    await until('brokers unfenced', () => cluster.active()?.image.brokers().filter((broker) => !broker.fenced).length === 3);
    const active = await cluster.waitActive();
    const created = await active.createTopics({ topics: [{ name: 'orders', numPartitions: 12, replicationFactor: 3 }] });
    expect(created.topics[0]!.errorCode).toBe(0);
    // Answered once applied here: the applied image holds the topic.
    expect(active.image.topic('orders')?.partitionCount).toBe(12);
    const again = await active.createTopics({ topics: [{ name: 'orders', numPartitions: 1, replicationFactor: 1 }] });
    expect(again.topics[0]!.errorCode).toBe(36);
    await cluster.converged(() => active.image);
    for (const member of cluster.running()) expect(leadersPerBroker(member.image)).toEqual([4, 4, 4]);
  });

  it('fails over on a graceful stop within 3 s with all the metadata, and the stopped member catches up on restart', async () => {
    const before = await cluster.waitActive();
    const image = canonicalImage(before.image);
    const started = Date.now();
    await cluster.stopMember(before.id, 'stop');
    const next = await cluster.waitActive(3000);
    observed['failoverAfterStop'] = Date.now() - started;
    expect(next.id).not.toBe(before.id);
    expect(canonicalImage(next.image)).toBe(image);
    // The new controller works: a topic created on it.
    const created = await next.createTopics({ topics: [{ name: 'after-stop', numPartitions: 3, replicationFactor: 3 }] });
    expect(created.topics[0]!.errorCode).toBe(0);
    const restarted = await cluster.startMember(before.id);
    await cluster.converged(() => next.image);
    expect(restarted.image.topic('after-stop')?.partitionCount).toBe(3);
    expect(restarted.isActive).toBe(false);
  });

  it('fails over on a kill within 3 s with all the metadata, and the killed member catches up on restart', async () => {
    const before = await cluster.waitActive();
    const image = canonicalImage(before.image);
    const started = Date.now();
    await cluster.stopMember(before.id, 'kill');
    const next = await cluster.waitActive(3000);
    observed['failoverAfterKill'] = Date.now() - started;
    expect(next.id).not.toBe(before.id);
    expect(canonicalImage(next.image)).toBe(image);
    expect(next.image.topic('orders')?.partitionCount).toBe(12);
    const restores = vi.spyOn(MetadataStateMachine.prototype, 'restore');
    const restarted = await cluster.startMember(before.id);
    await cluster.converged(() => next.image);
    expect(canonicalImage(restarted.image)).toBe(canonicalImage(next.image));
    // It came back through a snapshot (its own, or the leader's): the image snapshot is in use.
    expect(restores).toHaveBeenCalled();
    restores.mockRestore();
  });

  it('fences a broker that stops heartbeating within session timeout + check interval; its partitions get new leaders', async () => {
    const active = await cluster.waitActive();
    // The members are converged and every broker has heartbeated this controller recently.
    await until('brokers heartbeating', () => brokers.every((broker) => Date.now() - broker.lastAcknowledgedMs < HEARTBEAT_MS * 2));
    const victim = brokers[2]!;
    const ledBefore = active.image.partitionsLedBy(victim.id).map((ref) => ({ ...ref, leaderEpoch: active.image.partition(ref.topic, ref.partition)!.leaderEpoch }));
    expect(ledBefore.length).toBeGreaterThan(0);
    victim.heartbeating = false;
    await sleep(HEARTBEAT_MS); // a heartbeat already in flight lands
    const lastContact = victim.lastAcknowledgedMs;
    const fenced = await until('the silent broker fenced', () => cluster.active()?.image.broker(victim.id)?.fenced, SESSION_TIMEOUT_MS + SESSION_CHECK_MS + 2000);
    expect(fenced).toBe(true);
    observed['fencedAfterLastHeartbeat'] = Date.now() - lastContact;
    expect(observed['fencedAfterLastHeartbeat']).toBeLessThan(SESSION_TIMEOUT_MS + SESSION_CHECK_MS + 400);
    const image = cluster.active()!.image;
    expect(image.leaderCount(victim.id)).toBe(0);
    for (const ref of ledBefore) {
      const state = image.partition(ref.topic, ref.partition)!;
      expect(state.leader).not.toBe(victim.id);
      expect(state.leader).not.toBe(-1);
      expect(state.leaderEpoch).toBeGreaterThan(ref.leaderEpoch);
      expect(state.isr).not.toContain(victim.id);
    }
    await cluster.converged(() => cluster.active()!.image);
  });

  it('unfences the broker when it heartbeats again, and "rebalance now" moves leadership back to it', async () => {
    const victim = brokers[2]!;
    victim.heartbeating = true;
    await until('the broker unfenced', () => cluster.active()?.image.broker(victim.id)?.fenced === false, 3000);
    const active = await cluster.waitActive();
    // Back in the ISRs (as its leader would tell the controller with AlterPartition).
    for (const topic of active.image.topics()) {
      for (const state of topic.partitions()) {
        if (state.isr.includes(victim.id)) continue;
        const response = await active.alterPartition({
          brokerId: state.leader,
          brokerEpoch: active.image.broker(state.leader)!.epoch,
          partitions: [{ topic: topic.name, topicId: topic.id, partition: state.partition, leaderEpoch: state.leaderEpoch, partitionEpoch: state.partitionEpoch, newIsr: [...state.isr, victim.id] }],
        });
        expect(response.partitions[0]!.errorCode).toBe(0);
      }
    }
    const result = await active.preferredLeaderElection();
    expect(result.moved.length).toBeGreaterThan(0);
    expect(result.notMoved).toHaveLength(0);
    expect(active.image.leaderCount(victim.id)).toBe(active.image.partitionsLedBy(victim.id).length);
    expect(leadersPerBroker(active.image)).toEqual([5, 5, 5]);
    await cluster.converged(() => active.image);
  });
});

/** Time and intervals that move only when the test says so. */
class ManualClock {
  nowMs = 0;
  private readonly intervals = new Map<number, { callback: () => void; everyMs: number; nextMs: number }>();
  private nextHandle = 1;

  now = (): number => this.nowMs;

  setInterval = (callback: () => void, everyMs: number): unknown => {
    const handle = this.nextHandle++;
    this.intervals.set(handle, { callback, everyMs, nextMs: this.nowMs + everyMs });
    return handle;
  };

  clearInterval = (handle: unknown): void => {
    this.intervals.delete(handle as number);
  };

  advance(ms: number): void {
    const target = this.nowMs + ms;
    for (;;) {
      const due = [...this.intervals.values()].filter((interval) => interval.nextMs <= target).sort((a, b) => a.nextMs - b.nextMs)[0];
      if (due === undefined) break;
      this.nowMs = due.nextMs;
      due.nextMs += due.everyMs;
      due.callback();
    }
    this.nowMs = target;
  }
}

describe('QuorumController with a node 0 (Kafka numbers brokers from 0; Raft reserves member id 0)', () => {
  it('elects and reports node 0 as it does any other node', async () => {
    const alone = new Cluster();
    try {
      await alone.start([0]);
      const active = await alone.waitActive();
      expect(active.id).toBe(0);
      expect(active.leaderId).toBe(0);
      expect(active.describeQuorum()).toMatchObject({ leaderId: 0, voters: [{ id: 0, matchIndex: expect.any(Number) }] });
      expect((await active.registerBroker({ brokerId: 0, incarnationId: 'i0', listeners: [] })).errorCode).toBe(0);
    } finally {
      await alone.close();
    }
    const three = new Cluster();
    try {
      await three.start([0, 1, 2]);
      const active = await three.waitActive();
      await until('every member knows the leader', () => three.running().every((member) => member.leaderId === active.id));
      const quorum = active.describeQuorum();
      expect(quorum.leaderId).toBe(active.id);
      expect(quorum.voters.map((voter) => voter.id)).toEqual([0, 1, 2]);
      await until('every voter caught up', () => active.describeQuorum().voters.every((voter) => voter.matchIndex > 0));
    } finally {
      await three.close();
    }
  });
});

describe('QuorumController timers (one member, manual clock)', () => {
  it('fences on the session check and rebalances on the leader imbalance check', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'quorum-clock-'));
    const port = await freePort();
    const clock = new ManualClock();
    const controller = new QuorumController({
      raft: { id: 1, voters: new Map([[1, `127.0.0.1:${port}`]]), group: 'metadata', dataDir: dir, listenHost: '127.0.0.1', listenPort: port, logger, tickMs: TICK_MS },
      sessionTimeoutMs: 1000,
      sessionCheckIntervalMs: 500,
      leaderImbalanceCheckIntervalMs: 3000,
      random: new SeededRandom(7),
      clock,
    });
    await controller.start();
    try {
      await until('active', () => controller.isActive);
      const epochs = new Map<number, number>();
      for (const id of [1, 2]) {
        const registered = await controller.registerBroker({ brokerId: id, incarnationId: `i${id}`, listeners: [] });
        epochs.set(id, registered.brokerEpoch);
      }
      const beat = (id: number) => controller.brokerHeartbeat({ brokerId: id, brokerEpoch: epochs.get(id)!, currentMetadataOffset: controller.image.highestOffset });
      await beat(1);
      await beat(2);
      expect(controller.image.brokers().map((broker) => broker.fenced)).toEqual([false, false]);
      const created = await controller.createTopics({ topics: [{ name: 't', numPartitions: 4, replicationFactor: 2 }] });
      expect(created.topics[0]!.errorCode).toBe(0);
      expect([controller.image.leaderCount(1), controller.image.leaderCount(2)]).toEqual([2, 2]);

      // Broker 2 goes silent: fenced by the session check once its session (1000 ms) expired.
      clock.advance(600);
      await beat(1);
      clock.advance(400); // t=1000: broker 2 last seen at 0, not expired yet
      await sleep(50);
      expect(controller.image.broker(2)!.fenced).toBe(false);
      await beat(1);
      clock.advance(500); // t=1500: expired
      await until('broker 2 fenced', () => controller.image.broker(2)!.fenced);
      expect(controller.image.leaderCount(1)).toBe(4);

      // It comes back and rejoins the ISRs; the periodic check moves its preferred leadership back.
      await beat(2);
      expect(controller.image.broker(2)!.fenced).toBe(false);
      for (const state of controller.image.topic('t')!.partitions()) {
        const response = await controller.alterPartition({
          brokerId: 1,
          brokerEpoch: epochs.get(1)!,
          partitions: [{ topic: 't', partition: state.partition, leaderEpoch: state.leaderEpoch, partitionEpoch: state.partitionEpoch, newIsr: [1, 2] }],
        });
        expect(response.partitions[0]!.errorCode).toBe(0);
      }
      expect(controller.image.leaderCount(1)).toBe(4);
      // t=1500 -> 3000 (the first imbalance check), both brokers heartbeating every 500 ms.
      for (let step = 0; step < 3; step++) {
        await beat(1);
        await beat(2);
        clock.advance(500);
      }
      await until('leadership rebalanced', () => controller.image.leaderCount(2) === 2);
      expect(controller.image.leaderCount(1)).toBe(2);
    } finally {
      await controller.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('MetadataStateMachine', () => {
  function sampleLog(): MetadataRecord[][] {
    const topicId = 'AAAAAAAAAAAAAAAAAAAAAA';
    const other = 'AAAAAAAAAAAAAAAAAAAAAB';
    const listeners = [{ name: 'PLAINTEXT', host: 'h', port: 1 }];
    return [
      [{ type: 'RegisterBroker', brokerId: 2, incarnationId: 'b2', listeners, rack: 'r1' }],
      [{ type: 'RegisterBroker', brokerId: 1, incarnationId: 'b1', listeners, rack: null }],
      [{ type: 'UnfenceBroker', brokerId: 2, brokerEpoch: 0 }, { type: 'UnfenceBroker', brokerId: 1, brokerEpoch: 1 }],
      [{ type: 'Config', resourceType: 'cluster', resourceName: '', name: 'unclean.leader.election.enable', value: 'false' }],
      [
        { type: 'Topic', name: 'zeta', topicId },
        { type: 'Config', resourceType: 'topic', resourceName: 'zeta', name: 'retention.ms', value: '1000' },
        { type: 'Partition', topicId, partition: 0, replicas: [1, 2], isr: [1, 2], leader: 1, leaderEpoch: 0, partitionEpoch: 0 },
        { type: 'Partition', topicId, partition: 1, replicas: [2, 1], isr: [2, 1], leader: 2, leaderEpoch: 0, partitionEpoch: 0 },
      ],
      [{ type: 'Topic', name: 'alpha', topicId: other }, { type: 'Partition', topicId: other, partition: 0, replicas: [2], isr: [2], leader: 2, leaderEpoch: 0, partitionEpoch: 0 }],
      [
        { type: 'PartitionChange', topicId, partition: 0, leader: 2, isr: [2], leaderEpoch: 1, partitionEpoch: 1 },
        { type: 'FenceBroker', brokerId: 1, brokerEpoch: 1 },
      ],
      [{ type: 'RegisterBroker', brokerId: 3, incarnationId: 'b3', listeners: [], rack: 'r2' }],
      [{ type: 'RemoveTopic', topicId: other }],
    ];
  }

  it('applies batches, notifies listeners, and round-trips its image through snapshot/restore', () => {
    const machine = new MetadataStateMachine();
    const seen: number[] = [];
    machine.onImage((image, _previous, index) => seen.push(index, image.highestOffset));
    sampleLog().forEach((batch, k) => machine.apply(encodeRecordBatch(batch), k + 1));
    machine.apply(new Uint8Array(0), 100); // an empty entry (a new leader's) changes nothing
    expect(seen.slice(-2)).toEqual([9, machine.image.highestOffset]);
    const original = machine.image;
    expect(original.broker(3)?.epoch).toBe(13);

    const snapshot = machine.snapshot();
    const restored = new MetadataStateMachine();
    restored.restore(snapshot);
    expect(canonicalImage(restored.image)).toBe(canonicalImage(original));
    expect(restored.image.highestOffset).toBe(original.highestOffset);
    expect(restored.image.topicConfigs('zeta').get('retention.ms')).toBe('1000');
    // Canonical: the same image gives the same bytes, and the restored image snapshots identically.
    expect(Buffer.from(restored.snapshot()).equals(Buffer.from(snapshot))).toBe(true);
    expect(canonicalImage(decodeImageSnapshot(encodeImageSnapshot(MetadataImage.empty())))).toBe(canonicalImage(MetadataImage.empty()));

    // The restored image goes on exactly like the original.
    const next: MetadataRecord[] = [{ type: 'UnfenceBroker', brokerId: 3, brokerEpoch: 13 }];
    machine.apply(encodeRecordBatch(next), 101);
    restored.apply(encodeRecordBatch(next), 101);
    expect(canonicalImage(restored.image)).toBe(canonicalImage(machine.image));
  });

  it('rejects a damaged snapshot', () => {
    const machine = new MetadataStateMachine();
    sampleLog().forEach((batch, k) => machine.apply(encodeRecordBatch(batch), k + 1));
    const snapshot = machine.snapshot();
    expect(() => new MetadataStateMachine().restore(snapshot.subarray(0, snapshot.length - 3))).toThrow();
  });
});
