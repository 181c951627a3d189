// The controller's state machine inside @runnel/raft's deterministic simulator (issue 4). Every
// node applies the committed metadata log to its own MetadataImage; the Raft leader plays the active
// controller: it keeps the image of its whole log (applied + its own pending batches, as KRaft's
// QuorumController does), turns random broker and admin traffic into records with ControllerLogic
// and proposes each decision's records as one Raft entry. After every simulator tick the workload
// checks, across every node's applied image: no (topic, partition, leader epoch) ever names two
// leaders over the run, every leader is in its ISR and the ISR ⊆ replicas, leader and partition
// epochs never go backwards on a node, a topic never loses partitions, and nodes at the same
// applied index hold identical images.
//
// The active controller only starts deciding once it has applied its whole log (which includes the
// empty entry of its term, so every entry of earlier terms that will ever commit is in its image):
// then each batch it appends sits right after the entries its image was built from, and if it
// commits, it is applied to exactly that image. `mode: 'applied-image'` drops that discipline
// (decide from the applied image, whatever is still pending) to show what goes wrong without it.

import type { Entry, LeaderHandle, Random, SimWorkload } from '@runnel/raft/sim';
import { ControllerLogic, type ControllerResult } from '../controllerLogic.js';
import { MetadataImage, NO_LEADER, isMoving, originalReplicas, targetReplicas, type PartitionState } from '../image.js';
import { decodeRecord, encodeRecord, type MetadataRecord } from '../records.js';
import { BrokerSessions } from '../sessions.js';

export class ControllerSimViolation extends Error {
  readonly invariant: string;
  constructor(invariant: string, detail: string) {
    super(`invariant "${invariant}" violated: ${detail}`);
    this.name = 'ControllerSimViolation';
    this.invariant = invariant;
  }
}

export interface ControllerWorkloadOptions {
  /** Simulated brokers, ids 1..brokerCount. */
  readonly brokerCount?: number;
  /** Virtual milliseconds per simulator tick. */
  readonly tickMs?: number;
  readonly sessionTimeoutMs?: number;
  /**
   * 'kraft' (default): the leader decides on the image of its whole log, once it has applied
   * everything up to its term's first entry. 'applied-image': it decides on its applied image at
   * once, even with entries still pending (unsafe: for showing the check fails).
   */
  readonly mode?: 'kraft' | 'applied-image';
}

export interface ControllerWorkloadStats {
  batchesProposed: number;
  batchesDropped: number;
  batchesApplied: number;
  /** Batches first applied after a later term's leader was seen: a deposed leader's entries that still committed. */
  batchesAppliedFromEarlierTerms: number;
  recordsApplied: number;
  leaderWaits: number;
  registrations: number;
  fenced: number;
  topicsCreated: number;
  topicsDeleted: number;
  /** CreatePartitions requests that grew a topic (and the partitions they added). */
  topicsGrown: number;
  partitionsAdded: number;
  alterPartitionsAccepted: number;
  alterPartitionsRejected: number;
  leaderChanges: number;
  /** The most replicas recorded offline at once in a leader's log image (brokers' logs failing for one replica). */
  offlineReplicasMax: number;
  /** Reassignment requests the controller accepted: new targets (starts and replacements) and cancels. */
  reassignmentsStarted: number;
  reassignmentsCancelled: number;
  reassignmentsRejected: number;
  /** Moves seen completing (replicas became the target) in the committed log. */
  reassignmentsCompleted: number;
  /** Broker decommissions and recommissions accepted, and `rebalanceReplicas` runs that started moves. */
  decommissions: number;
  recommissions: number;
  replicaRebalances: number;
}

interface NodeState {
  image: MetadataImage;
  /** Every record applied, encoded (the snapshot is the record log: the image is not serialized yet). */
  records: Uint8Array[];
  appliedIndex: number;
  /** The image the last check saw, for the epoch monotonicity check. */
  checked: MetadataImage;
}

interface LeaderState {
  readonly term: number;
  readonly sessions: BrokerSessions;
  readonly logic: ControllerLogic;
  /** The image of the leader's whole log (null until it has caught up in this term). */
  pending: MetadataImage | null;
}

interface SimBroker {
  readonly id: number;
  incarnation: number;
  alive: boolean;
  registered: boolean;
  /** The broker epoch it was told (once its registration committed); -1 before. */
  epoch: number;
  shuttingDown: boolean;
  /** Replicas whose log failed in this incarnation: every heartbeat reports them all. */
  offline: Array<{ topicId: string; partition: number }>;
}

const TOPICS = ['t0', 't1', 't2', 't3', 't4'];

export class ControllerWorkload implements SimWorkload {
  readonly stats: ControllerWorkloadStats = {
    batchesProposed: 0,
    batchesDropped: 0,
    batchesApplied: 0,
    batchesAppliedFromEarlierTerms: 0,
    recordsApplied: 0,
    leaderWaits: 0,
    registrations: 0,
    fenced: 0,
    topicsCreated: 0,
    topicsDeleted: 0,
    topicsGrown: 0,
    partitionsAdded: 0,
    alterPartitionsAccepted: 0,
    alterPartitionsRejected: 0,
    leaderChanges: 0,
    offlineReplicasMax: 0,
    reassignmentsStarted: 0,
    reassignmentsCancelled: 0,
    reassignmentsRejected: 0,
    reassignmentsCompleted: 0,
    decommissions: 0,
    recommissions: 0,
    replicaRebalances: 0,
  };
  /** `${topicId}/${partition}/${partitionEpoch}` of each completion counted (every node applies it). */
  private readonly completions = new Set<string>();
  private readonly tickMs: number;
  private readonly sessionTimeoutMs: number;
  private readonly mode: 'kraft' | 'applied-image';
  private readonly nodes = new Map<number, NodeState>();
  private readonly leaders = new Map<number, LeaderState>();
  private readonly brokers: SimBroker[];
  /** `${topicId}/${partition}/${leaderEpoch}` -> the leader it named, over the whole run. */
  private readonly leaderOfEpoch = new Map<string, number>();
  /** Raft index -> canonical image, from the first node that applied it. */
  private readonly imageAt = new Map<number, string>();
  private readonly canonicalCache = new WeakMap<MetadataImage, string>();
  private random: Random | undefined;
  private nowMs = 0;
  private highestLeaderTerm = 0;

  constructor(options: ControllerWorkloadOptions = {}) {
    this.tickMs = options.tickMs ?? 100;
    this.sessionTimeoutMs = options.sessionTimeoutMs ?? 3000;
    this.mode = options.mode ?? 'kraft';
    this.brokers = Array.from({ length: options.brokerCount ?? 5 }, (_, k) => ({
      id: k + 1,
      incarnation: 0,
      alive: true,
      registered: false,
      epoch: -1,
      shuttingDown: false,
      offline: [],
    }));
  }

  // ---- the replicated state machine ------------------------------------------------------------

  private node(nodeId: number): NodeState {
    const node = this.nodes.get(nodeId);
    if (node === undefined) throw new Error(`node ${nodeId} was never restored`);
    return node;
  }

  restore(nodeId: number, data: Uint8Array, index: number): void {
    const records = decodeBatch(data);
    const image = MetadataImage.empty().applyAll(records.map(decodeRecord), 0);
    this.nodes.set(nodeId, { image, records, appliedIndex: index, checked: MetadataImage.empty() });
    this.sameImageAt(nodeId, index, image);
  }

  snapshot(nodeId: number): Uint8Array {
    return encodeBatch(this.node(nodeId).records);
  }

  apply(nodeId: number, entry: Entry): void {
    const node = this.node(nodeId);
    if (entry.data.length > 0) {
      const encoded = decodeBatch(entry.data);
      const records = encoded.map(decodeRecord);
      this.checkNoReplicasOnDecommissioned(nodeId, entry.index, node.image, records);
      // MetadataImage asserts its invariants here: a record computed from another image fails.
      node.image = node.image.applyAll(records, node.image.highestOffset + 1);
      node.records.push(...encoded);
      this.stats.batchesApplied++;
      if (!this.imageAt.has(entry.index) && entry.term < this.highestLeaderTerm) this.stats.batchesAppliedFromEarlierTerms++;
      this.stats.recordsApplied += records.length;
    }
    node.appliedIndex = entry.index;
    this.sameImageAt(nodeId, entry.index, node.image);
  }

  crash(nodeId: number): void {
    this.leaders.delete(nodeId);
  }

  // ---- checks -----------------------------------------------------------------------------------

  /**
   * A batch (one controller decision) creates no partition on a broker that is decommissioned in
   * the image it was decided on. Checked per batch, not per tick: within one tick a node may apply a
   * recommission, a creation and a new decommission, and only their order tells them apart.
   */
  private checkNoReplicasOnDecommissioned(nodeId: number, index: number, before: MetadataImage, records: readonly MetadataRecord[]): void {
    for (const record of records) {
      if (record.type !== 'Partition') continue;
      const decommissioned = record.replicas.filter((id) => before.broker(id)?.decommissioned === true);
      if (decommissioned.length > 0) {
        throw new ControllerSimViolation(
          'a decommissioned broker gets no new replicas',
          `node ${nodeId} at index ${index}: ${record.topicId}-${record.partition} created on [${record.replicas}], broker(s) ${decommissioned} decommissioned`,
        );
      }
    }
  }

  private canonical(image: MetadataImage): string {
    let text = this.canonicalCache.get(image);
    if (text === undefined) {
      text = canonicalImage(image);
      this.canonicalCache.set(image, text);
    }
    return text;
  }

  private sameImageAt(nodeId: number, index: number, image: MetadataImage): void {
    const text = this.canonical(image);
    const expected = this.imageAt.get(index);
    if (expected === undefined) this.imageAt.set(index, text);
    else if (expected !== text) {
      throw new ControllerSimViolation('images at the same applied index are identical', `node ${nodeId} at index ${index}:\n  ${text}\nexpected\n  ${expected}`);
    }
  }

  check(): void {
    for (const [nodeId, node] of this.nodes) {
      const image = node.image;
      if (image === node.checked) continue;
      for (const { topic, state } of image.allPartitions()) {
        const where = `node ${nodeId} at index ${node.appliedIndex}: ${topic.name}(${topic.id})-${state.partition}`;
        if (state.isr.some((id) => !state.replicas.includes(id))) {
          throw new ControllerSimViolation('ISR ⊆ replicas', `${where} ISR [${state.isr}] replicas [${state.replicas}]`);
        }
        if (state.leader !== NO_LEADER && !state.isr.includes(state.leader)) {
          throw new ControllerSimViolation('every leader is in its ISR', `${where} leader ${state.leader} ISR [${state.isr}]`);
        }
        if (state.leader !== NO_LEADER && image.isReplicaOffline(state.leader, state.topicId, state.partition)) {
          throw new ControllerSimViolation('an offline replica never leads', `${where} leader ${state.leader} reported its replica offline`);
        }
        const key = `${state.topicId}/${state.partition}/${state.leaderEpoch}`;
        const known = this.leaderOfEpoch.get(key);
        if (known === undefined) this.leaderOfEpoch.set(key, state.leader);
        else if (known !== state.leader) {
          throw new ControllerSimViolation('one leader per partition and leader epoch', `${where} leader ${state.leader} at leader epoch ${state.leaderEpoch}, which named ${known} before`);
        }
        const before = node.checked.topicById(state.topicId)?.partition(state.partition);
        this.checkReassignment(where, before, state);
        if (before !== undefined && (state.leaderEpoch < before.leaderEpoch || state.partitionEpoch < before.partitionEpoch)) {
          throw new ControllerSimViolation(
            'epochs never go backwards',
            `${where} epochs (${before.leaderEpoch}, ${before.partitionEpoch}) -> (${state.leaderEpoch}, ${state.partitionEpoch})`,
          );
        }
      }
      for (const topic of image.topics()) {
        const before = node.checked.topicById(topic.id);
        if (before !== undefined && topic.partitionCount < before.partitionCount) {
          throw new ControllerSimViolation('a topic never loses partitions', `node ${nodeId} at index ${node.appliedIndex}: ${topic.name} had ${before.partitionCount}, now ${topic.partitionCount}`);
        }
      }
      node.checked = image;
    }
  }

  /**
   * A move's shape, checked apart from the image's own assertions: adding and removing are disjoint
   * subsets of the replicas, and a moving partition has at least min(original, target) replicas.
   */
  private checkReassignment(where: string, before: PartitionState | undefined, state: PartitionState): void {
    const { replicas, addingReplicas: adding, removingReplicas: removing } = state;
    const subset = (ids: readonly number[]): boolean => ids.every((id) => replicas.includes(id));
    if (!subset(adding) || !subset(removing) || adding.some((id) => removing.includes(id))) {
      throw new ControllerSimViolation('adding and removing are disjoint subsets of the replicas', `${where} replicas [${replicas}] adding [${adding}] removing [${removing}]`);
    }
    const original = originalReplicas(state);
    const target = targetReplicas(state);
    if (isMoving(state) && replicas.length < Math.min(original.length, target.length)) {
      throw new ControllerSimViolation('a move keeps at least min(original, target) replicas', `${where} replicas [${replicas}] original [${original}] target [${target}]`);
    }
    // A check sees the effect of every record applied since the previous one, so the per-record
    // steps (start, replace, complete, cancel) are the image's assertions; here, counting only.
    if (before === undefined || !isMoving(before) || isMoving(state)) return;
    const beforeTarget = targetReplicas(before);
    if (replicas.length === beforeTarget.length && replicas.every((id, index) => id === beforeTarget[index])) {
      const key = `${state.topicId}/${state.partition}/${state.partitionEpoch}`;
      if (!this.completions.has(key)) {
        this.completions.add(key);
        this.stats.reassignmentsCompleted++;
      }
    }
  }

  checkConverged(memberIds: readonly number[]): void {
    const images = memberIds.map((id) => ({ id, node: this.node(id) }));
    const first = images[0]!;
    for (const { id, node } of images) {
      if (this.canonical(node.image) !== this.canonical(first.node.image)) {
        throw new ControllerSimViolation('replicas converge', `node ${id} at ${node.appliedIndex} differs from node ${first.id} at ${first.node.appliedIndex}`);
      }
    }
  }

  // ---- the active controller and its clients ----------------------------------------------------

  propose(leader: LeaderHandle, random: Random, tick: number): void {
    this.random = random;
    this.nowMs = Math.max(this.nowMs, tick * this.tickMs);
    let state = this.leaders.get(leader.id);
    if (state === undefined || state.term !== leader.term) {
      // A new active controller: fresh sessions (KRaft keeps heartbeats out of the log).
      const sessions = new BrokerSessions(this.sessionTimeoutMs);
      const logic = new ControllerLogic({ sessions, random: { nextInt: (n) => this.random!.nextInt(n) }, config: { defaultReplicationFactor: 2 } });
      state = { term: leader.term, sessions, logic, pending: null };
      this.leaders.set(leader.id, state);
      this.stats.leaderChanges++;
      this.highestLeaderTerm = Math.max(this.highestLeaderTerm, leader.term);
    }
    const applied = this.node(leader.id);
    if (this.mode === 'kraft' && state.pending === null) {
      // Wait until the log up to this term's first entry is applied: its image then holds every
      // record of earlier terms that can still commit.
      if (leader.appliedIndex < leader.lastIndex) {
        this.stats.leaderWaits++;
        return;
      }
      state.pending = applied.image;
    }
    const current = (): MetadataImage => (this.mode === 'kraft' ? state.pending! : applied.image);
    const submit = <T>(result: ControllerResult<T>): T | null => {
      if (result.records.length === 0) return result.response;
      const index = leader.propose(encodeBatch(result.records.map(encodeRecord)));
      if (index === null) {
        // The core dropped it (not leader any more, transferring): like KRaft's renounce, forget
        // the in-memory state (sessions, pending image) and start over.
        this.stats.batchesDropped++;
        this.leaders.delete(leader.id);
        return null;
      }
      this.stats.batchesProposed++;
      if (this.mode === 'kraft') state.pending = state.pending!.applyAll(result.records, state.pending!.highestOffset + 1);
      return result.response;
    };
    const logic = state.logic;
    const now = this.nowMs;
    const live = (): boolean => this.leaders.get(leader.id) === state;

    // Brokers learn their epoch once their registration is committed (the leader's applied image).
    for (const broker of this.brokers) {
      const registration = applied.image.broker(broker.id);
      if (broker.registered && broker.epoch === -1 && registration?.incarnationId === incarnationId(broker)) broker.epoch = registration.epoch;
    }
    // Heartbeats from the live brokers (some lost).
    for (const broker of this.brokers) {
      if (!live()) return;
      if (!broker.alive || random.nextFloat() < 0.15) continue;
      if (!broker.registered) {
        const response = submit(logic.registerBroker(current(), registrationOf(broker), now));
        broker.registered = response !== null && response.errorCode === 0;
        if (broker.registered) this.stats.registrations++;
        continue;
      }
      if (broker.epoch === -1) continue;
      if (random.nextFloat() < 0.02) this.failReplica(broker, current(), random);
      const lag = random.nextInt(3);
      const response = submit(
        logic.brokerHeartbeat(
          current(),
          {
            brokerId: broker.id,
            brokerEpoch: broker.epoch,
            currentMetadataOffset: Math.max(-1, applied.image.highestOffset - lag),
            wantShutDown: broker.shuttingDown,
            offlineReplicas: broker.offline,
          },
          now,
        ),
      );
      if (response === null) return;
      this.stats.offlineReplicasMax = Math.max(this.stats.offlineReplicasMax, this.offlineCount(current()));
      if (response.errorCode !== 0) {
        // STALE_BROKER_EPOCH: fenced out for good (a newer registration, or none): register again.
        broker.registered = false;
        broker.epoch = -1;
      } else if (response.shouldShutDown) {
        broker.alive = false;
        broker.shuttingDown = false;
      }
    }
    if (!live()) return;
    // Sessions that expired are fenced.
    const fenced = submit(logic.fenceExpiredBrokers(current(), now));
    if (fenced !== null) this.stats.fenced += fenced.fenced.length;
    if (!live()) return;

    const roll = random.nextFloat();
    const image = current();
    const brokerOf = (): SimBroker => this.brokers[random.nextInt(this.brokers.length)]!;
    if (roll < 0.08) {
      // A broker process dies (stops heartbeating) or restarts as a new incarnation.
      const broker = brokerOf();
      if (broker.alive) broker.alive = false;
      else {
        broker.alive = true;
        broker.incarnation++;
        broker.offline = [];
        broker.registered = false;
        broker.epoch = -1;
        broker.shuttingDown = false;
      }
    } else if (roll < 0.1) {
      // A restarted process re-registers at once with a new incarnation while its old session may be live.
      const broker = brokerOf();
      broker.incarnation++;
      broker.offline = [];
      broker.alive = true;
      broker.epoch = -1;
      broker.shuttingDown = false;
      const response = submit(logic.registerBroker(image, registrationOf(broker), now));
      broker.registered = response !== null && response.errorCode === 0;
    } else if (roll < 0.3) {
      const name = TOPICS[random.nextInt(TOPICS.length)]!;
      const configs: Record<string, string> = random.nextFloat() < 0.3 ? { 'unclean.leader.election.enable': 'true' } : {};
      const response = submit(
        logic.createTopics(image, { topics: [{ name, numPartitions: 1 + random.nextInt(3), replicationFactor: 1 + random.nextInt(3), configs }] }),
      );
      if (response !== null && response.topics[0]!.errorCode === 0) this.stats.topicsCreated++;
    } else if (roll < 0.36) {
      const name = TOPICS[random.nextInt(TOPICS.length)]!;
      const response = submit(logic.deleteTopics(image, { topics: [name] }));
      if (response !== null && response.topics[0]!.errorCode === 0) this.stats.topicsDeleted++;
    } else if (roll < 0.42) {
      this.growTopic(logic, image, random, submit);
    } else if (roll < 0.8) {
      this.alterPartition(logic, image, applied.image, random, submit);
    } else if (roll < 0.86) {
      const broker = brokerOf();
      if (broker.alive && broker.epoch !== -1) broker.shuttingDown = true;
    } else if (roll < 0.94) {
      submit(logic.preferredLeaderElection(image, { imbalancePercentage: random.nextFloat() < 0.5 ? 0 : 10 }));
    } else if (roll < 0.97) {
      this.reassign(logic, image, random, submit);
    } else {
      this.balanceReplicas(logic, image, random, submit);
    }
  }

  /** An operator decommissions or recommissions a broker, rebalances replicas, or the controller's timer continues decommissions. */
  private balanceReplicas(logic: ControllerLogic, image: MetadataImage, random: Random, submit: <T>(result: ControllerResult<T>) => T | null): void {
    const roll = random.nextFloat();
    const brokerId = 1 + random.nextInt(this.brokers.length);
    if (roll < 0.3) {
      const response = submit(logic.decommissionBroker(image, brokerId));
      if (response !== null && response.errorCode === 0) this.stats.decommissions++;
    } else if (roll < 0.55) {
      const response = submit(logic.recommissionBroker(image, brokerId));
      if (response !== null && response.errorCode === 0) this.stats.recommissions++;
    } else if (roll < 0.8) {
      const response = submit(logic.rebalanceReplicas(image));
      if (response !== null && response.errorCode === 0 && response.moves.length > 0) this.stats.replicaRebalances++;
    } else {
      submit(logic.continueDecommissions(image));
    }
  }

  /**
   * A client grows a topic (sometimes to a count that is not an increase, which must be refused),
   * placed by the controller or, now and then, with its own assignment of the live brokers.
   */
  private growTopic(logic: ControllerLogic, image: MetadataImage, random: Random, submit: <T>(result: ControllerResult<T>) => T | null): void {
    const name = TOPICS[random.nextInt(TOPICS.length)]!;
    const current = image.topic(name)?.partitionCount ?? 0;
    const count = current + random.nextInt(4) - 1;
    const replicationFactor = image.topic(name)?.partition(0)?.replicas.length ?? 1;
    let assignments: number[][] | null = null;
    if (random.nextFloat() < 0.3 && count > current) {
      const ids = image.brokers().map((broker) => broker.id);
      assignments = Array.from({ length: count - current }, () => {
        const replicas: number[] = [];
        while (replicas.length < Math.min(replicationFactor, ids.length)) {
          const id = ids[random.nextInt(ids.length)]!;
          if (!replicas.includes(id)) replicas.push(id);
        }
        return replicas;
      });
    }
    const response = submit(logic.createPartitions(image, { topics: [{ name, count, assignments }] }));
    if (response === null) return;
    const accepted = response.topics[0]!.errorCode === 0;
    if (accepted && count <= current) throw new ControllerSimViolation('a topic never shrinks', `${name} from ${current} to ${count} was accepted`);
    if (accepted) {
      this.stats.topicsGrown++;
      this.stats.partitionsAdded += count - current;
    }
  }

  /** A client starts, replaces or cancels the move of a random partition (sometimes an invalid request). */
  private reassign(logic: ControllerLogic, image: MetadataImage, random: Random, submit: <T>(result: ControllerResult<T>) => T | null): void {
    const partitions = [...image.allPartitions()];
    if (partitions.length === 0) return;
    const { topic, state } = partitions[random.nextInt(partitions.length)]!;
    let replicas: number[] | null = null;
    if (!isMoving(state) || random.nextFloat() < 0.6) {
      // A target of 1..3 distinct brokers (ids up to brokerCount + 1: an unregistered one is refused).
      const size = 1 + random.nextInt(3);
      replicas = [];
      while (replicas.length < size) {
        const id = 1 + random.nextInt(this.brokers.length + 1);
        if (!replicas.includes(id)) replicas.push(id);
      }
    }
    const response = submit(logic.alterPartitionReassignments(image, { partitions: [{ topic: topic.name, partition: state.partition, replicas }] }));
    if (response === null) return;
    if (response.partitions[0]!.errorCode !== 0) this.stats.reassignmentsRejected++;
    else if (replicas === null) this.stats.reassignmentsCancelled++;
    else this.stats.reassignmentsStarted++;
  }

  /** One of the broker's replicas fails (its log, or its role change): reported from now on. */
  private failReplica(broker: SimBroker, image: MetadataImage, random: Random): void {
    const hosted = [...image.allPartitions()].filter(({ state }) => state.replicas.includes(broker.id));
    if (hosted.length === 0) return;
    const { state } = hosted[random.nextInt(hosted.length)]!;
    if (!broker.offline.some((replica) => replica.topicId === state.topicId && replica.partition === state.partition)) {
      broker.offline.push({ topicId: state.topicId, partition: state.partition });
    }
  }

  private offlineCount(image: MetadataImage): number {
    return image.brokers().reduce((sum, broker) => sum + image.offlineReplicas(broker.id).length, 0);
  }

  private alterPartition(
    logic: ControllerLogic,
    image: MetadataImage,
    appliedImage: MetadataImage,
    random: Random,
    submit: <T>(result: ControllerResult<T>) => T | null,
  ): void {
    const partitions = [...image.allPartitions()];
    if (partitions.length === 0) return;
    const { topic, state: latest } = partitions[random.nextInt(partitions.length)]!;
    // The partition leader's view: the latest state, or an older one (the committed state, or a
    // stale leader that has not heard of the newer epochs).
    const stale = random.nextFloat() < 0.35;
    const view = stale ? (appliedImage.topicById(topic.id)?.partition(latest.partition) ?? latest) : latest;
    const sender = stale && random.nextFloat() < 0.5 ? view.replicas[random.nextInt(view.replicas.length)]! : view.leader;
    if (sender === NO_LEADER) return;
    const senderBroker = this.brokers[sender - 1];
    const senderEpoch = senderBroker !== undefined && senderBroker.epoch !== -1 ? senderBroker.epoch : (image.broker(sender)?.epoch ?? -1);
    const newIsr = view.replicas
      .filter((id) => id === sender || random.nextFloat() < 0.6)
      .map((id) => ({ brokerId: id, brokerEpoch: random.nextFloat() < 0.9 ? (image.broker(id)?.epoch ?? -1) : -1 }));
    const response = submit(
      logic.alterPartition(image, {
        brokerId: sender,
        brokerEpoch: senderEpoch,
        partitions: [
          {
            topic: topic.name,
            topicId: topic.id,
            partition: view.partition,
            leaderEpoch: view.leaderEpoch,
            partitionEpoch: view.partitionEpoch,
            newIsr,
          },
        ],
      }),
    );
    if (response === null) return;
    if (response.errorCode === 0 && response.partitions[0]?.errorCode === 0) this.stats.alterPartitionsAccepted++;
    else this.stats.alterPartitionsRejected++;
  }
}

function incarnationId(broker: SimBroker): string {
  return `b${broker.id}-i${broker.incarnation}`;
}

function registrationOf(broker: SimBroker): { brokerId: number; incarnationId: string; listeners: { name: string; host: string; port: number }[]; rack: string } {
  broker.registered = true;
  broker.epoch = -1;
  return {
    brokerId: broker.id,
    incarnationId: incarnationId(broker),
    listeners: [{ name: 'PLAINTEXT', host: `broker-${broker.id}`, port: 9092 }],
    rack: `r${broker.id % 2}`,
  };
}

/** One Raft entry: records framed as a 4-byte big-endian length and the encoded record. */
export function encodeBatch(records: readonly Uint8Array[]): Uint8Array {
  const total = records.reduce((sum, record) => sum + 4 + record.length, 0);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const record of records) {
    view.setUint32(at, record.length);
    out.set(record, at + 4);
    at += 4 + record.length;
  }
  return out;
}

export function decodeBatch(data: Uint8Array): Uint8Array[] {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const records: Uint8Array[] = [];
  for (let at = 0; at < data.length; ) {
    if (at + 4 > data.length) throw new Error(`batch: truncated length at ${at}`);
    const length = view.getUint32(at);
    if (at + 4 + length > data.length) throw new Error(`batch: record at ${at} overruns the entry`);
    records.push(data.subarray(at + 4, at + 4 + length));
    at += 4 + length;
  }
  return records;
}

/** A canonical text of everything the image holds (for comparing nodes). */
export function canonicalImage(image: MetadataImage): string {
  const configs: [string, string, [string, string][]][] = [];
  const config = (type: 'topic' | 'broker' | 'cluster', name: string): void => {
    const entries = [...image.config(type, name)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    if (entries.length > 0) configs.push([type, name, entries]);
  };
  config('cluster', '');
  for (const broker of image.brokers()) config('broker', String(broker.id));
  for (const topic of image.topics()) config('topic', topic.name);
  return JSON.stringify({
    offset: image.highestOffset,
    brokers: image
      .brokers()
      .map((b) => [b.id, b.incarnationId, b.epoch, b.fenced, b.logDir, b.decommissioned, b.rack, b.listeners.map((l) => [l.name, l.host, l.port]), image.leaderCount(b.id), image.offlineReplicas(b.id).map((r) => [r.topicId, r.partition])]),
    topics: image.topics().map((t) => [t.name, t.id, [...t.partitions()].map((p) => [p.partition, p.replicas, p.isr, p.leader, p.leaderEpoch, p.partitionEpoch, p.addingReplicas, p.removingReplicas])]),
    configs,
  });
}

export type { MetadataRecord };
