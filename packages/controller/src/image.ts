// MetadataImage: the cluster metadata as of one offset of the metadata log. Immutable: `apply`
// returns a new image and shares everything it did not touch with the old one (copy-on-write per
// topic, and inside a topic per chunk of CHUNK_SIZE partitions, so changing one partition of a
// 10,000-partition topic copies one chunk, not the topic). Invariants are asserted on every apply;
// a failure throws MetadataInvariantError naming the invariant — a bug in whoever wrote the record.

import type { ConfigResourceType, Listener, LogDirState, MetadataRecord, PartitionChangeRecord, PartitionRecord, ReplicaOfflineRecord } from './records.js';

export const NO_LEADER = -1;
const CHUNK_SIZE = 256;

export interface BrokerRegistration {
  readonly id: number;
  readonly incarnationId: string;
  readonly listeners: readonly Listener[];
  readonly rack: string | null;
  readonly fenced: boolean;
  /** The broker epoch: the offset of the broker's latest RegisterBroker record. */
  readonly epoch: number;
  /** Its log directory, as its latest BrokerLogDir record said; `online` at registration. */
  readonly logDir: LogDirState;
  /** Decommissioned (BrokerDecommission): no new replicas, its replicas move off. Kept across registrations. */
  readonly decommissioned: boolean;
}

/**
 * A partition as the image holds it: the fields of its Partition record, with the reassignment
 * sets always present (empty when the partition is not moving).
 */
export type PartitionState = Omit<PartitionRecord, 'type' | 'addingReplicas' | 'removingReplicas'> & {
  /** Replicas a reassignment adds (target − original); empty when not moving. */
  readonly addingReplicas: readonly number[];
  /** Replicas a reassignment removes (original − target); the tail of `replicas`. */
  readonly removingReplicas: readonly number[];
};

const NONE: readonly number[] = Object.freeze([]);

/** Whether a reassignment is in progress for the partition. */
export function isMoving(state: Pick<PartitionState, 'addingReplicas' | 'removingReplicas'>): boolean {
  return state.addingReplicas.length > 0 || state.removingReplicas.length > 0;
}

/** The replicas the partition is moving to (all of them when it is not moving): replicas − removing. */
export function targetReplicas(state: Pick<PartitionState, 'replicas' | 'removingReplicas'>): readonly number[] {
  return state.removingReplicas.length === 0 ? state.replicas : state.replicas.filter((id) => !state.removingReplicas.includes(id));
}

/** The replicas the partition had before its move (all of them when it is not moving): replicas − adding. */
export function originalReplicas(state: Pick<PartitionState, 'replicas' | 'addingReplicas'>): readonly number[] {
  return state.addingReplicas.length === 0 ? state.replicas : state.replicas.filter((id) => !state.addingReplicas.includes(id));
}

export interface PartitionRef {
  readonly topic: string;
  readonly topicId: string;
  readonly partition: number;
}

export class MetadataInvariantError extends Error {
  readonly invariant: string;

  constructor(invariant: string, detail: string) {
    super(`metadata invariant violated: ${invariant}: ${detail}`);
    this.name = 'MetadataInvariantError';
    this.invariant = invariant;
  }
}

export const INVARIANTS = {
  offsetsIncrease: 'offsets increase',
  leaderInIsr: 'leader ∈ ISR',
  isrSubsetOfReplicas: 'ISR ⊆ replicas',
  isrNotEmpty: 'ISR is not empty',
  replicasDistinct: 'replicas are distinct',
  leaderUnfenced: 'a leader is a registered, unfenced broker',
  fencedLeadsNothing: 'a fenced broker leads nothing',
  leaderEpochMonotonic: 'leader epoch never decreases',
  partitionEpochAdvances: 'partition epoch advances by one per change',
  leaderChangeBumpsEpoch: 'a leader change bumps the leader epoch',
  movingReplicasConsistent: 'adding and removing replicas are disjoint subsets of the replicas, the removing ones last',
  replicaSetChange: 'a replica set changes only to start, replace, complete or cancel a move (or reorder)',
  replicationFactorKept: 'a move never leaves fewer replicas than min(original, target)',
  brokerEpochMatches: 'broker epoch matches its registration',
  knownReference: 'records refer to known brokers, topics and partitions',
  uniqueTopics: 'topic names and ids are unique',
  partitionsInOrder: 'partitions are created in order',
  offlineReplicaIsReplica: 'an offline replica is a replica of its partition',
  offlineReplicaLeadsNothing: 'an offline replica leads nothing',
  offlineReplicaOutOfIsr: 'an offline replica is out of the ISR unless it is its last member',
} as const;

/** The key of one partition in a broker's set of offline replicas (the partition first: topic ids are free text). */
function replicaKey(topicId: string, partition: number): string {
  return `${partition}:${topicId}`;
}

function parseReplicaKey(key: string): { topicId: string; partition: number } {
  const colon = key.indexOf(':');
  return { partition: Number(key.slice(0, colon)), topicId: key.slice(colon + 1) };
}

function fail(invariant: string, detail: string): never {
  throw new MetadataInvariantError(invariant, detail);
}

function frozenOrNone(ids: readonly number[] | undefined): readonly number[] {
  return ids === undefined || ids.length === 0 ? NONE : Object.freeze([...ids]);
}

function sameSet(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((id) => b.includes(id));
}

function sameList(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((id, index) => id === b[index]);
}

/**
 * A change of a partition's replica set (KIP-455) is one of: the start of a move or its replacement
 * by another target (the original replicas — replicas − adding — stay the same); its completion
 * (replicas become the target, nothing adding or removing); its cancel (replicas become the
 * original set); or, for a partition not moving, a reorder of the same replicas. In every case the
 * partition keeps at least min(original, target) replicas.
 */
function checkReplicaSetChange(previous: PartitionState, next: PartitionState, context: string): void {
  const describeState = (state: PartitionState): string =>
    `replicas [${state.replicas.join(',')}] adding [${state.addingReplicas.join(',')}] removing [${state.removingReplicas.join(',')}]`;
  const detail = `${context}: ${describeState(previous)} -> ${describeState(next)}`;
  const original = originalReplicas(previous);
  const allowed = isMoving(next)
    ? sameSet(originalReplicas(next), original)
    : sameSet(next.replicas, original) || (isMoving(previous) && sameList(next.replicas, targetReplicas(previous)));
  if (!allowed) fail(INVARIANTS.replicaSetChange, detail);
  const target = isMoving(next) ? targetReplicas(next) : isMoving(previous) ? targetReplicas(previous) : next.replicas;
  if (next.replicas.length < Math.min(original.length, target.length)) fail(INVARIANTS.replicationFactorKept, detail);
}

export class TopicImage {
  /** @internal chunks of CHUNK_SIZE partitions; shared between images until one changes. */
  readonly chunks: readonly (readonly PartitionState[])[];

  /** @internal */
  constructor(
    readonly id: string,
    readonly name: string,
    chunks: readonly (readonly PartitionState[])[],
    readonly partitionCount: number,
  ) {
    this.chunks = chunks;
  }

  partition(index: number): PartitionState | undefined {
    if (!Number.isInteger(index) || index < 0 || index >= this.partitionCount) return undefined;
    return this.chunks[Math.floor(index / CHUNK_SIZE)]![index % CHUNK_SIZE];
  }

  *partitions(): IterableIterator<PartitionState> {
    for (const chunk of this.chunks) yield* chunk;
  }
}

interface ImageState {
  readonly brokers: ReadonlyMap<number, BrokerRegistration>;
  readonly topicsById: ReadonlyMap<string, TopicImage>;
  readonly topicIdsByName: ReadonlyMap<string, string>;
  /** key `${resourceType}:${resourceName}` */
  readonly configs: ReadonlyMap<string, ReadonlyMap<string, string>>;
  /** partitions led per broker; brokers that lead nothing are absent */
  readonly leaderCounts: ReadonlyMap<number, number>;
  /** per broker, the replicas it reported offline (replicaKey); brokers with none are absent */
  readonly offlineReplicas: ReadonlyMap<number, ReadonlySet<string>>;
  readonly highestOffset: number;
}

const EMPTY_CONFIG: ReadonlyMap<string, string> = new Map();

function configKey(resourceType: ConfigResourceType, resourceName: string): string {
  return `${resourceType}:${resourceName}`;
}

export class MetadataImage {
  private constructor(private readonly state: ImageState) {}

  private static readonly EMPTY = new MetadataImage({
    brokers: new Map(),
    topicsById: new Map(),
    topicIdsByName: new Map(),
    configs: new Map(),
    leaderCounts: new Map(),
    offlineReplicas: new Map(),
    highestOffset: -1,
  });

  static empty(): MetadataImage {
    return MetadataImage.EMPTY;
  }

  /** The offset of the last record applied; -1 for the empty image. */
  get highestOffset(): number {
    return this.state.highestOffset;
  }

  /** Applies one record at `offset` (greater than highestOffset) and returns the new image. */
  apply(record: MetadataRecord, offset: number): MetadataImage {
    return this.applyAll([record], offset);
  }

  /**
   * Applies records at consecutive offsets starting at `firstOffset`. Cheaper than applying them
   * one by one: each touched map, topic and chunk is copied once per call. All or nothing: if a
   * record breaks an invariant, this throws and `this` is unchanged (it always is).
   */
  applyAll(records: readonly MetadataRecord[], firstOffset: number): MetadataImage {
    if (records.length === 0) return this;
    if (!Number.isSafeInteger(firstOffset) || firstOffset <= this.state.highestOffset) {
      fail(INVARIANTS.offsetsIncrease, `offset ${firstOffset} after highest offset ${this.state.highestOffset}`);
    }
    const draft = new ImageDraft(this.state);
    records.forEach((record, index) => draft.apply(record, firstOffset + index));
    return new MetadataImage(draft.finish(firstOffset + records.length - 1));
  }

  /**
   * Rebuilds an image from a snapshot's records rather than a log: each RegisterBroker record lands
   * at the offset given with it (its broker epoch), the offsets of the others do not matter, and the
   * image ends at `highestOffset`. Invariants are asserted as on every apply. See
   * `@runnel/controller/quorum`'s `imageToSnapshotRecords` for the order that rebuilds an image.
   */
  static fromSnapshotRecords(entries: readonly { readonly record: MetadataRecord; readonly offset: number }[], highestOffset: number): MetadataImage {
    if (!Number.isSafeInteger(highestOffset) || highestOffset < -1) fail(INVARIANTS.offsetsIncrease, `snapshot highest offset ${highestOffset}`);
    const draft = new ImageDraft(MetadataImage.EMPTY.state);
    for (const { record, offset } of entries) {
      if (record.type === 'RegisterBroker' && (!Number.isSafeInteger(offset) || offset < 0 || offset > highestOffset)) {
        fail(INVARIANTS.offsetsIncrease, `snapshot registers broker ${record.brokerId} at offset ${offset}, highest offset ${highestOffset}`);
      }
      draft.apply(record, offset);
    }
    return new MetadataImage(draft.finish(highestOffset));
  }

  brokers(): BrokerRegistration[] {
    return [...this.state.brokers.values()].sort((a, b) => a.id - b.id);
  }

  broker(id: number): BrokerRegistration | undefined {
    return this.state.brokers.get(id);
  }

  topics(): TopicImage[] {
    return [...this.state.topicsById.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  topic(name: string): TopicImage | undefined {
    const id = this.state.topicIdsByName.get(name);
    return id === undefined ? undefined : this.state.topicsById.get(id);
  }

  topicById(topicId: string): TopicImage | undefined {
    return this.state.topicsById.get(topicId);
  }

  partition(topicName: string, partition: number): PartitionState | undefined {
    return this.topic(topicName)?.partition(partition);
  }

  /** Every config key set on a resource (topic name, broker id as a string, or '' for the cluster). */
  config(resourceType: ConfigResourceType, resourceName: string): ReadonlyMap<string, string> {
    return this.state.configs.get(configKey(resourceType, resourceName)) ?? EMPTY_CONFIG;
  }

  topicConfigs(topicName: string): ReadonlyMap<string, string> {
    return this.config('topic', topicName);
  }

  leaderCount(brokerId: number): number {
    return this.state.leaderCounts.get(brokerId) ?? 0;
  }

  partitionsLedBy(brokerId: number): PartitionRef[] {
    const result: PartitionRef[] = [];
    if (this.leaderCount(brokerId) === 0) return result;
    for (const topic of this.topics()) {
      for (const state of topic.partitions()) {
        if (state.leader === brokerId) result.push({ topic: topic.name, topicId: topic.id, partition: state.partition });
      }
    }
    return result;
  }

  /** Whether broker `brokerId` reported its replica of the partition offline (ReplicaOffline) since it registered. */
  isReplicaOffline(brokerId: number, topicId: string, partition: number): boolean {
    return this.state.offlineReplicas.get(brokerId)?.has(replicaKey(topicId, partition)) ?? false;
  }

  /** The replicas broker `brokerId` reported offline, by topic name and partition. */
  offlineReplicas(brokerId: number): PartitionRef[] {
    const keys = this.state.offlineReplicas.get(brokerId);
    if (keys === undefined) return [];
    const refs: PartitionRef[] = [];
    for (const key of keys) {
      const { topicId, partition } = parseReplicaKey(key);
      const topic = this.state.topicsById.get(topicId)!;
      refs.push({ topic: topic.name, topicId, partition });
    }
    return refs.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
  }

  /** The brokers whose replica of the partition is offline, in id order. */
  offlineBrokersOf(topicId: string, partition: number): number[] {
    const brokers: number[] = [];
    for (const [brokerId, keys] of this.state.offlineReplicas) if (keys.has(replicaKey(topicId, partition))) brokers.push(brokerId);
    return brokers.sort((a, b) => a - b);
  }

  /** Every partition, topics in name order, partitions in index order. */
  *allPartitions(): IterableIterator<{ readonly topic: TopicImage; readonly state: PartitionState }> {
    for (const topic of this.topics()) {
      for (const state of topic.partitions()) yield { topic, state };
    }
  }

  partitionCount(): number {
    let count = 0;
    for (const topic of this.state.topicsById.values()) count += topic.partitionCount;
    return count;
  }
}

/** A topic being changed inside one applyAll: copies each chunk the first time it changes. */
class TopicDraft {
  private readonly chunks: (readonly PartitionState[])[];
  private readonly owned = new Set<number>();
  private count: number;

  constructor(
    readonly id: string,
    readonly name: string,
    base: TopicImage | undefined,
  ) {
    this.chunks = base === undefined ? [] : [...base.chunks];
    this.count = base === undefined ? 0 : base.partitionCount;
  }

  get partitionCount(): number {
    return this.count;
  }

  get(index: number): PartitionState | undefined {
    if (index < 0 || index >= this.count) return undefined;
    return this.chunks[Math.floor(index / CHUNK_SIZE)]![index % CHUNK_SIZE];
  }

  private writableChunk(chunkIndex: number): PartitionState[] {
    if (chunkIndex === this.chunks.length) {
      this.chunks.push([]);
      this.owned.add(chunkIndex);
    } else if (!this.owned.has(chunkIndex)) {
      this.chunks[chunkIndex] = [...this.chunks[chunkIndex]!];
      this.owned.add(chunkIndex);
    }
    return this.chunks[chunkIndex] as PartitionState[];
  }

  set(index: number, state: PartitionState): void {
    this.writableChunk(Math.floor(index / CHUNK_SIZE))[index % CHUNK_SIZE] = state;
  }

  append(state: PartitionState): void {
    this.writableChunk(Math.floor(this.count / CHUNK_SIZE)).push(state);
    this.count += 1;
  }

  finish(): TopicImage {
    for (const index of this.owned) Object.freeze(this.chunks[index]);
    return new TopicImage(this.id, this.name, Object.freeze(this.chunks), this.count);
  }
}

class ImageDraft {
  private brokers: Map<number, BrokerRegistration> | undefined;
  private topicsById: Map<string, TopicImage> | undefined;
  private topicIdsByName: Map<string, string> | undefined;
  private configs: Map<string, ReadonlyMap<string, string>> | undefined;
  private leaderCounts: Map<number, number> | undefined;
  private offlineReplicas: Map<number, ReadonlySet<string>> | undefined;
  private readonly topicDrafts = new Map<string, TopicDraft>();
  private readonly removedTopics = new Set<string>();

  constructor(private readonly base: ImageState) {}

  private readBroker(id: number): BrokerRegistration | undefined {
    return (this.brokers ?? this.base.brokers).get(id);
  }

  private writeBroker(registration: BrokerRegistration): void {
    this.brokers ??= new Map(this.base.brokers);
    this.brokers.set(registration.id, Object.freeze(registration));
  }

  private topicIdOf(name: string): string | undefined {
    return (this.topicIdsByName ?? this.base.topicIdsByName).get(name);
  }

  private topicExists(topicId: string): boolean {
    return this.topicDrafts.has(topicId) || (!this.removedTopics.has(topicId) && this.base.topicsById.has(topicId));
  }

  private topicDraft(topicId: string, context: string): TopicDraft {
    const existing = this.topicDrafts.get(topicId);
    if (existing !== undefined) return existing;
    const base = this.removedTopics.has(topicId) ? undefined : this.base.topicsById.get(topicId);
    if (base === undefined) fail(INVARIANTS.knownReference, `${context} refers to unknown topic id ${topicId}`);
    const draft = new TopicDraft(base.id, base.name, base);
    this.topicDrafts.set(topicId, draft);
    return draft;
  }

  leaderCount(brokerId: number): number {
    return (this.leaderCounts ?? this.base.leaderCounts).get(brokerId) ?? 0;
  }

  private adjustLeaderCount(brokerId: number, delta: number): void {
    if (brokerId === NO_LEADER) return;
    this.leaderCounts ??= new Map(this.base.leaderCounts);
    const next = (this.leaderCounts.get(brokerId) ?? 0) + delta;
    if (next < 0) throw new Error(`leader count of broker ${brokerId} went negative`);
    if (next === 0) this.leaderCounts.delete(brokerId);
    else this.leaderCounts.set(brokerId, next);
  }

  private readOffline(brokerId: number): ReadonlySet<string> | undefined {
    return (this.offlineReplicas ?? this.base.offlineReplicas).get(brokerId);
  }

  private writeOffline(brokerId: number, keys: ReadonlySet<string>): void {
    this.offlineReplicas ??= new Map(this.base.offlineReplicas);
    if (keys.size === 0) this.offlineReplicas.delete(brokerId);
    else this.offlineReplicas.set(brokerId, keys);
  }

  /** The brokers whose replica of the partition is offline. */
  private offlineBrokersOf(topicId: string, partition: number): number[] {
    const key = replicaKey(topicId, partition);
    const brokers: number[] = [];
    for (const [brokerId, keys] of this.offlineReplicas ?? this.base.offlineReplicas) if (keys.has(key)) brokers.push(brokerId);
    return brokers;
  }

  apply(record: MetadataRecord, offset: number): void {
    switch (record.type) {
      case 'RegisterBroker': {
        const existing = this.readBroker(record.brokerId);
        if (existing !== undefined && this.leaderCount(record.brokerId) > 0) {
          fail(INVARIANTS.fencedLeadsNothing, `broker ${record.brokerId} re-registers (and is fenced) while it leads ${this.leaderCount(record.brokerId)} partition(s)`);
        }
        this.writeBroker({
          id: record.brokerId,
          incarnationId: record.incarnationId,
          listeners: Object.freeze(record.listeners.map((listener) => Object.freeze({ ...listener }))),
          rack: record.rack,
          fenced: true,
          epoch: offset,
          logDir: 'online',
          // A restart does not undo a decommission: only a recommission does.
          decommissioned: existing?.decommissioned ?? false,
        });
        // A new registration is a new process: it opens its logs afresh, so nothing is offline yet.
        if (this.readOffline(record.brokerId) !== undefined) this.writeOffline(record.brokerId, new Set());
        return;
      }
      case 'FenceBroker':
      case 'UnfenceBroker': {
        const existing = this.readBroker(record.brokerId);
        if (existing === undefined) fail(INVARIANTS.knownReference, `${record.type} of unregistered broker ${record.brokerId}`);
        if (existing.epoch !== record.brokerEpoch) {
          fail(INVARIANTS.brokerEpochMatches, `${record.type} of broker ${record.brokerId} at epoch ${record.brokerEpoch}, registered at epoch ${existing.epoch}`);
        }
        const fenced = record.type === 'FenceBroker';
        if (fenced && this.leaderCount(record.brokerId) > 0) {
          fail(INVARIANTS.fencedLeadsNothing, `broker ${record.brokerId} is fenced while it leads ${this.leaderCount(record.brokerId)} partition(s)`);
        }
        this.writeBroker({ ...existing, fenced });
        return;
      }
      case 'Topic': {
        if (this.topicIdOf(record.name) !== undefined) fail(INVARIANTS.uniqueTopics, `topic name '${record.name}' already exists`);
        if (this.topicExists(record.topicId)) fail(INVARIANTS.uniqueTopics, `topic id ${record.topicId} already exists`);
        this.topicIdsByName ??= new Map(this.base.topicIdsByName);
        this.topicIdsByName.set(record.name, record.topicId);
        this.removedTopics.delete(record.topicId);
        this.topicDrafts.set(record.topicId, new TopicDraft(record.topicId, record.name, undefined));
        return;
      }
      case 'Partition':
        this.applyPartition(record);
        return;
      case 'PartitionChange':
        this.applyPartitionChange(record);
        return;
      case 'RemoveTopic': {
        const draft = this.topicDraft(record.topicId, 'RemoveTopic');
        for (let index = 0; index < draft.partitionCount; index++) this.adjustLeaderCount(draft.get(index)!.leader, -1);
        this.topicDrafts.delete(record.topicId);
        this.removedTopics.add(record.topicId);
        this.topicIdsByName ??= new Map(this.base.topicIdsByName);
        this.topicIdsByName.delete(draft.name);
        this.configs ??= new Map(this.base.configs);
        this.configs.delete(configKey('topic', draft.name));
        for (const [brokerId, keys] of [...(this.offlineReplicas ?? this.base.offlineReplicas)]) {
          const kept = [...keys].filter((key) => parseReplicaKey(key).topicId !== record.topicId);
          if (kept.length !== keys.size) this.writeOffline(brokerId, new Set(kept));
        }
        return;
      }
      case 'ReplicaOffline':
        this.applyReplicaOffline(record);
        return;
      case 'BrokerLogDir': {
        const existing = this.readBroker(record.brokerId);
        if (existing === undefined) fail(INVARIANTS.knownReference, `BrokerLogDir of unregistered broker ${record.brokerId}`);
        if (existing.epoch !== record.brokerEpoch) {
          fail(INVARIANTS.brokerEpochMatches, `BrokerLogDir of broker ${record.brokerId} at epoch ${record.brokerEpoch}, registered at epoch ${existing.epoch}`);
        }
        this.writeBroker({ ...existing, logDir: record.state });
        return;
      }
      case 'BrokerDecommission': {
        const existing = this.readBroker(record.brokerId);
        if (existing === undefined) fail(INVARIANTS.knownReference, `BrokerDecommission of unregistered broker ${record.brokerId}`);
        this.writeBroker({ ...existing, decommissioned: record.decommissioned });
        return;
      }
      case 'Config': {
        this.configs ??= new Map(this.base.configs);
        const key = configKey(record.resourceType, record.resourceName);
        const next = new Map(this.configs.get(key) ?? EMPTY_CONFIG);
        if (record.value === null) next.delete(record.name);
        else next.set(record.name, record.value);
        if (next.size === 0) this.configs.delete(key);
        else this.configs.set(key, next);
        return;
      }
    }
  }

  private checkState(state: PartitionState, context: string): void {
    const { replicas, isr, leader } = state;
    if (replicas.length === 0 || new Set(replicas).size !== replicas.length) {
      fail(INVARIANTS.replicasDistinct, `${context}: replicas [${replicas.join(',')}]`);
    }
    if (isr.length === 0) fail(INVARIANTS.isrNotEmpty, `${context}: empty ISR`);
    if (new Set(isr).size !== isr.length || isr.some((id) => !replicas.includes(id))) {
      fail(INVARIANTS.isrSubsetOfReplicas, `${context}: ISR [${isr.join(',')}], replicas [${replicas.join(',')}]`);
    }
    if (leader !== NO_LEADER && !isr.includes(leader)) {
      fail(INVARIANTS.leaderInIsr, `${context}: leader ${leader}, ISR [${isr.join(',')}]`);
    }
    const { addingReplicas: adding, removingReplicas: removing } = state;
    if (
      new Set(adding).size !== adding.length ||
      new Set(removing).size !== removing.length ||
      adding.some((id) => !replicas.includes(id) || removing.includes(id)) ||
      removing.some((id) => !replicas.includes(id)) ||
      removing.length >= replicas.length ||
      !replicas.slice(replicas.length - removing.length).every((id) => removing.includes(id))
    ) {
      fail(INVARIANTS.movingReplicasConsistent, `${context}: replicas [${replicas.join(',')}], adding [${adding.join(',')}], removing [${removing.join(',')}]`);
    }
    if (leader !== NO_LEADER) {
      const broker = this.readBroker(leader);
      if (broker === undefined || broker.fenced) {
        fail(INVARIANTS.leaderUnfenced, `${context}: leader ${leader} is ${broker === undefined ? 'not registered' : 'fenced'}`);
      }
    }
  }

  private applyPartition(record: PartitionRecord): void {
    const context = `Partition ${record.topicId}-${record.partition}`;
    const draft = this.topicDraft(record.topicId, context);
    if (record.partition !== draft.partitionCount) {
      fail(INVARIANTS.partitionsInOrder, `${context}: topic has ${draft.partitionCount} partition(s)`);
    }
    const state: PartitionState = Object.freeze({
      topicId: record.topicId,
      partition: record.partition,
      replicas: Object.freeze([...record.replicas]),
      isr: Object.freeze([...record.isr]),
      leader: record.leader,
      leaderEpoch: record.leaderEpoch,
      partitionEpoch: record.partitionEpoch,
      addingReplicas: frozenOrNone(record.addingReplicas),
      removingReplicas: frozenOrNone(record.removingReplicas),
    });
    this.checkState(state, context);
    draft.append(state);
    this.adjustLeaderCount(state.leader, 1);
  }

  private applyPartitionChange(record: PartitionChangeRecord): void {
    const context = `PartitionChange ${record.topicId}-${record.partition}`;
    const draft = this.topicDraft(record.topicId, context);
    const previous = draft.get(record.partition);
    if (previous === undefined) fail(INVARIANTS.knownReference, `${context}: no such partition`);
    const replicasChange = record.replicas !== undefined;
    const next: PartitionState = Object.freeze({
      topicId: record.topicId,
      partition: record.partition,
      replicas: replicasChange ? Object.freeze([...record.replicas!]) : previous.replicas,
      isr: Object.freeze([...record.isr]),
      leader: record.leader,
      leaderEpoch: record.leaderEpoch,
      partitionEpoch: record.partitionEpoch,
      addingReplicas: replicasChange ? frozenOrNone(record.addingReplicas) : previous.addingReplicas,
      removingReplicas: replicasChange ? frozenOrNone(record.removingReplicas) : previous.removingReplicas,
    });
    this.checkState(next, context);
    if (next.partitionEpoch !== previous.partitionEpoch + 1) {
      fail(INVARIANTS.partitionEpochAdvances, `${context}: partition epoch ${previous.partitionEpoch} -> ${next.partitionEpoch}`);
    }
    if (next.leaderEpoch < previous.leaderEpoch) {
      fail(INVARIANTS.leaderEpochMonotonic, `${context}: leader epoch ${previous.leaderEpoch} -> ${next.leaderEpoch}`);
    }
    if (next.leader !== previous.leader && next.leaderEpoch <= previous.leaderEpoch) {
      fail(INVARIANTS.leaderChangeBumpsEpoch, `${context}: leader ${previous.leader} -> ${next.leader} at leader epoch ${next.leaderEpoch}`);
    }
    if (replicasChange) checkReplicaSetChange(previous, next, context);
    draft.set(record.partition, next);
    this.adjustLeaderCount(previous.leader, -1);
    this.adjustLeaderCount(next.leader, 1);
    for (const brokerId of this.offlineBrokersOf(record.topicId, record.partition)) {
      if (next.replicas.includes(brokerId)) this.checkOfflineReplica(brokerId, next, context);
      else {
        // Reassigned away: the broker deletes that replica, so there is nothing offline to remember.
        const kept = new Set(this.readOffline(brokerId));
        kept.delete(replicaKey(record.topicId, record.partition));
        this.writeOffline(brokerId, kept);
      }
    }
  }

  private checkOfflineReplica(brokerId: number, state: PartitionState, context: string): void {
    if (!state.replicas.includes(brokerId)) fail(INVARIANTS.offlineReplicaIsReplica, `${context}: broker ${brokerId}, replicas [${state.replicas.join(',')}]`);
    if (state.leader === brokerId) fail(INVARIANTS.offlineReplicaLeadsNothing, `${context}: the replica on broker ${brokerId} is offline and leads`);
    if (state.isr.includes(brokerId) && state.isr.length > 1) {
      fail(INVARIANTS.offlineReplicaOutOfIsr, `${context}: the replica on broker ${brokerId} is offline and in the ISR [${state.isr.join(',')}]`);
    }
  }

  private applyReplicaOffline(record: ReplicaOfflineRecord): void {
    const context = `ReplicaOffline ${record.topicId}-${record.partition} on broker ${record.brokerId}`;
    const broker = this.readBroker(record.brokerId);
    if (broker === undefined) fail(INVARIANTS.knownReference, `${context}: unregistered broker`);
    if (broker.epoch !== record.brokerEpoch) fail(INVARIANTS.brokerEpochMatches, `${context}: at epoch ${record.brokerEpoch}, registered at epoch ${broker.epoch}`);
    // Read without copying the topic: the record changes no partition state.
    const topic = this.topicDrafts.get(record.topicId) ?? (this.removedTopics.has(record.topicId) ? undefined : this.base.topicsById.get(record.topicId));
    if (topic === undefined) fail(INVARIANTS.knownReference, `${context}: unknown topic id`);
    const state = topic instanceof TopicDraft ? topic.get(record.partition) : topic.partition(record.partition);
    if (state === undefined) fail(INVARIANTS.knownReference, `${context}: no such partition`);
    this.checkOfflineReplica(record.brokerId, state, context);
    const keys = new Set(this.readOffline(record.brokerId));
    keys.add(replicaKey(record.topicId, record.partition));
    this.writeOffline(record.brokerId, keys);
  }

  finish(highestOffset: number): ImageState {
    let topicsById: ReadonlyMap<string, TopicImage> = this.base.topicsById;
    if (this.topicDrafts.size > 0 || this.removedTopics.size > 0) {
      const next = new Map(this.base.topicsById);
      for (const id of this.removedTopics) next.delete(id);
      for (const [id, draft] of this.topicDrafts) next.set(id, draft.finish());
      topicsById = next;
    }
    return {
      brokers: this.brokers ?? this.base.brokers,
      topicsById,
      topicIdsByName: this.topicIdsByName ?? this.base.topicIdsByName,
      configs: this.configs ?? this.base.configs,
      leaderCounts: this.leaderCounts ?? this.base.leaderCounts,
      offlineReplicas: this.offlineReplicas ?? this.base.offlineReplicas,
      highestOffset,
    };
  }
}

// ---------------------------------------------------------------------------------------------
// What one broker must do when the image moves from `before` to `after`.

export interface LeadReplica extends PartitionRef {
  readonly leaderEpoch: number;
  readonly partitionEpoch: number;
  readonly replicas: readonly number[];
  readonly isr: readonly number[];
}

export interface FollowReplica extends PartitionRef {
  /** NO_LEADER when the partition is offline: stop fetching until a leader is elected. */
  readonly leader: number;
  readonly leaderEpoch: number;
  readonly partitionEpoch: number;
}

export interface RemoveReplica extends PartitionRef {
  readonly reason: 'topic-deleted' | 'replica-reassigned';
}

/**
 * For one broker: the partitions whose state changed between two images and what the broker does
 * about each. `lead` and `follow` include every partition of this broker whose partition epoch
 * changed (a leader also needs ISR-only changes); `stopAndDelete` lists replicas to stop and delete.
 */
export interface MetadataDelta {
  readonly brokerId: number;
  readonly lead: readonly LeadReplica[];
  readonly follow: readonly FollowReplica[];
  readonly stopAndDelete: readonly RemoveReplica[];
}

export function diffImages(before: MetadataImage, after: MetadataImage, brokerId: number): MetadataDelta {
  const lead: LeadReplica[] = [];
  const follow: FollowReplica[] = [];
  const stopAndDelete: RemoveReplica[] = [];
  for (const topic of after.topics()) {
    const previousTopic = before.topicById(topic.id);
    if (previousTopic === topic) continue;
    topic.chunks.forEach((chunk, chunkIndex) => {
      if (previousTopic !== undefined && previousTopic.chunks[chunkIndex] === chunk) return;
      for (const state of chunk) {
        const previous = previousTopic?.partition(state.partition);
        if (previous === state) continue;
        const ref = { topic: topic.name, topicId: topic.id, partition: state.partition };
        if (state.replicas.includes(brokerId)) {
          if (previous !== undefined && previous.partitionEpoch === state.partitionEpoch) continue;
          if (state.leader === brokerId) {
            lead.push({ ...ref, leaderEpoch: state.leaderEpoch, partitionEpoch: state.partitionEpoch, replicas: state.replicas, isr: state.isr });
          } else {
            follow.push({ ...ref, leader: state.leader, leaderEpoch: state.leaderEpoch, partitionEpoch: state.partitionEpoch });
          }
        } else if (previous !== undefined && previous.replicas.includes(brokerId)) {
          stopAndDelete.push({ ...ref, reason: 'replica-reassigned' });
        }
      }
    });
  }
  for (const topic of before.topics()) {
    if (after.topicById(topic.id) !== undefined) continue;
    for (const state of topic.partitions()) {
      if (state.replicas.includes(brokerId)) {
        stopAndDelete.push({ topic: topic.name, topicId: topic.id, partition: state.partition, reason: 'topic-deleted' });
      }
    }
  }
  return { brokerId, lead, follow, stopAndDelete };
}
