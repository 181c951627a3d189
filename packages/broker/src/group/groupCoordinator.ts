// The group coordinator of one broker: it coordinates the groups of the __consumer_offsets
// partitions this broker leads. A group lives on partition offsetsPartitionFor(groupId); its
// committed offsets and its membership (the assignment of its latest generation) are records of
// that partition, written with acks=all, so a new leader of the partition — the group's next
// coordinator — loads them and the group carries on.
//
// Answers a client acts on: NOT_COORDINATOR (this broker does not lead the group's partition: look
// again), COORDINATOR_LOAD_IN_PROGRESS (it is loading the partition: retry soon),
// COORDINATOR_NOT_AVAILABLE (the partition moved away while the call ran).
import { errorCode, RunnelError, type ErrorName, type Logger } from '@runnel/common';
import {
  ClassicGroup,
  joinError,
  systemClock,
  type GroupRecord,
  type GroupClock,
  type GroupDescription,
  type GroupSettings,
  type JoinRequest,
  type JoinResponse,
  type LeavingMember,
  type SyncRequest,
  type SyncResponse,
} from './classicGroup.js';
import {
  decodeGroupMetadataValue,
  decodeOffsetCommitValue,
  decodeOffsetsKey,
  encodeGroupMetadataValue,
  encodeOffsetCommitValue,
  encodeOffsetsKey,
  offsetsPartitionFor,
  type OffsetCommitValue,
} from './offsetsTopicRecords.js';

export const OFFSETS_TOPIC = '__consumer_offsets';

/** One record of the offsets topic; a null value is a tombstone. */
export interface OffsetsRecord {
  readonly key: Buffer;
  readonly value: Buffer | null;
}

/** What the coordinator needs of the partitions of __consumer_offsets. */
export interface OffsetsLog {
  /** Appends with acks=all; resolves once the records are committed, throws the Kafka error otherwise. */
  append(partition: number, records: readonly OffsetsRecord[]): Promise<void>;
  /** Every record of the partition from its log start up to its high watermark, in offset order. */
  readAll(partition: number): AsyncIterable<OffsetsRecord>;
}

export interface GroupCoordinatorOptions {
  /** Partitions of __consumer_offsets: the topic's own count once it exists, else offsets.topic.num.partitions. */
  readonly offsetsPartitions: () => number;
  readonly group: GroupSettings;
  readonly log: OffsetsLog;
  readonly logger: Logger;
  readonly clock?: GroupClock;
  /** Longest metadata string an offset commit may carry (offset.metadata.max.bytes); Kafka's 4096 when absent. */
  readonly offsetMetadataBytesMax?: number;
}

export interface CommitOffset {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly leaderEpoch: number;
  readonly metadata: string;
}

export interface CommittedOffset extends OffsetCommitValue {
  readonly topic: string;
  readonly partition: number;
}

/** One hosted partition of the offsets topic: loading, or loaded with its groups and offsets. */
interface HostedPartition {
  readonly epoch: number;
  loaded: boolean;
  readonly groups: Map<string, ClassicGroup>;
  /** Per group, `topic\0partition` → the committed value. */
  readonly offsets: Map<string, Map<string, CommittedOffset>>;
}

/** group.id limit, as Kafka's: a group id is a string field of the requests. */
const GROUP_ID_LENGTH_MAX = 32_767;
/** Metadata strings of offset commits: Kafka's default of offset.metadata.max.bytes. */
const OFFSET_METADATA_BYTES_MAX = 4096;

export class GroupCoordinator {
  private readonly hosted = new Map<number, HostedPartition>();
  private readonly clock: GroupClock;

  constructor(private readonly options: GroupCoordinatorOptions) {
    this.clock = options.clock ?? systemClock;
  }

  partitionFor(groupId: string): number {
    return offsetsPartitionFor(groupId, this.options.offsetsPartitions());
  }

  /** The offsets partitions this broker coordinates (loaded or loading). */
  hostedPartitions(): number[] {
    return [...this.hosted.keys()];
  }

  /** Whether this broker coordinates (and has loaded) `groupId`'s partition. */
  isCoordinatorFor(groupId: string): boolean {
    return this.hosted.get(this.partitionFor(groupId))?.loaded === true;
  }

  // ---- leadership of the offsets partitions -----------------------------------------------------

  /**
   * This broker now leads `partition` at `epoch`: load its groups and offsets. Requests for its
   * groups answer COORDINATOR_LOAD_IN_PROGRESS until the load completes.
   */
  async becomeCoordinator(partition: number, epoch: number): Promise<void> {
    const existing = this.hosted.get(partition);
    if (existing !== undefined && existing.epoch === epoch) return;
    if (existing !== undefined) this.resign(partition);
    const hosted: HostedPartition = { epoch, loaded: false, groups: new Map(), offsets: new Map() };
    this.hosted.set(partition, hosted);
    const startedMs = this.clock.now();
    let records = 0;
    const stored = new Map<string, { record: GroupRecord; storedAtMs: number }>();
    try {
      for await (const record of this.options.log.readAll(partition)) {
        if (this.hosted.get(partition) !== hosted) return; // resigned while loading
        records++;
        if (record.key.length === 0) continue;
        const key = decodeOffsetsKey(record.key);
        if (key.type === 'offset') {
          const offsets = this.offsetsOf(hosted, key.group);
          const id = offsetId(key.topic, key.partition);
          if (record.value === null) offsets.delete(id);
          else offsets.set(id, { topic: key.topic, partition: key.partition, ...decodeOffsetCommitValue(record.value) });
          if (offsets.size === 0) hosted.offsets.delete(key.group);
        } else if (record.value === null) {
          stored.delete(key.group);
        } else {
          const value = decodeGroupMetadataValue(record.value);
          stored.set(key.group, { record: groupRecordOf(key.group, value), storedAtMs: value.currentStateTimestamp });
        }
      }
    } catch (error) {
      // A record that does not decode means this partition cannot be trusted here: stay loading
      // (clients retry) and say why; a new leader, or a restart after repair, loads it again.
      this.options.logger.error({ partition, err: error }, 'cannot load the groups of a __consumer_offsets partition');
      return;
    }
    if (this.hosted.get(partition) !== hosted) return;
    for (const [groupId, { record, storedAtMs }] of stored) {
      const group = this.newGroup(hosted, groupId);
      group.restore(record, storedAtMs);
    }
    hosted.loaded = true;
    this.options.logger.info({ partition, epoch, records, groups: stored.size, ms: this.clock.now() - startedMs }, 'loaded the groups of a __consumer_offsets partition');
  }

  /** This broker no longer leads `partition`: its groups end here (members find the new coordinator). */
  resign(partition: number): void {
    const hosted = this.hosted.get(partition);
    if (hosted === undefined) return;
    this.hosted.delete(partition);
    for (const group of hosted.groups.values()) group.markDead();
  }

  // ---- membership -------------------------------------------------------------------------------

  async join(groupId: string, request: JoinRequest): Promise<JoinResponse> {
    const hosted = this.coordinatorOf(groupId);
    if (typeof hosted === 'string') return joinError(hosted, request.memberId);
    let group = hosted.groups.get(groupId);
    if (group === undefined || group.state === 'Dead') {
      if (request.memberId !== '') return joinError('UNKNOWN_MEMBER_ID', request.memberId);
      group = this.newGroup(hosted, groupId);
    }
    return group.join(request);
  }

  async sync(groupId: string, request: SyncRequest): Promise<SyncResponse> {
    const group = this.existingGroup(groupId);
    if (typeof group === 'string') return { errorCode: errorCode(group), protocolType: null, protocolName: null, assignment: Buffer.alloc(0) };
    return group.sync(request);
  }

  /** `groupInstanceId`: a static member's, checked against its member id. */
  heartbeat(groupId: string, memberId: string, generationId: number, groupInstanceId: string | null = null): number {
    const group = this.existingGroup(groupId);
    return typeof group === 'string' ? errorCode(group) : group.heartbeat(memberId, generationId, groupInstanceId);
  }

  leave(groupId: string, members: readonly LeavingMember[]): { errorCode: number; members: number[] } {
    const group = this.existingGroup(groupId);
    if (typeof group === 'string') return { errorCode: errorCode(group), members: [] };
    return { errorCode: 0, members: group.leave(members) };
  }

  describe(groupId: string): { errorCode: number; group: GroupDescription | null } {
    const hosted = this.coordinatorOf(groupId);
    if (typeof hosted === 'string') return { errorCode: errorCode(hosted), group: null };
    const group = hosted.groups.get(groupId);
    if (group !== undefined) return { errorCode: 0, group: group.describe() };
    // A group known only by offsets committed from outside it (tools, manual assignment) is Empty,
    // as Kafka describes it and as listGroups lists it.
    if (hosted.offsets.has(groupId)) return { errorCode: 0, group: { groupId, state: 'Empty', generationId: 0, protocolType: '', protocolName: '', leader: '', members: [] } };
    return { errorCode: 0, group: null };
  }

  /**
   * DeleteGroups: a group with no members goes with its committed offsets (tombstones for its
   * records, so the compacted partition forgets them too). NON_EMPTY_GROUP while it has members,
   * GROUP_ID_NOT_FOUND when neither a group nor offsets are known.
   */
  async deleteGroup(groupId: string): Promise<number> {
    const hosted = this.coordinatorOf(groupId);
    if (typeof hosted === 'string') return errorCode(hosted);
    const group = hosted.groups.get(groupId);
    const offsets = hosted.offsets.get(groupId);
    if ((group === undefined || group.state === 'Dead') && offsets === undefined) return errorCode('GROUP_ID_NOT_FOUND');
    if (group !== undefined && group.state !== 'Empty' && group.state !== 'Dead') return errorCode('NON_EMPTY_GROUP');
    const tombstones: OffsetsRecord[] = [{ key: encodeOffsetsKey({ type: 'group', group: groupId }), value: null }];
    for (const committed of offsets?.values() ?? []) tombstones.push({ key: encodeOffsetsKey({ type: 'offset', group: groupId, topic: committed.topic, partition: committed.partition }), value: null });
    try {
      await this.options.log.append(this.partitionFor(groupId), tombstones);
    } catch (error) {
      return appendErrorCode(error);
    }
    if (this.hosted.get(this.partitionFor(groupId)) === hosted) {
      hosted.offsets.delete(groupId);
      const current = hosted.groups.get(groupId);
      // A member may have joined while the tombstones were written: that group stays.
      if (current !== undefined && current.state === 'Empty') {
        current.markDead();
        hosted.groups.delete(groupId);
      }
    }
    return 0;
  }

  /**
   * offsets.retention.minutes (KIP-211): the committed offsets of a group that has had no members
   * for `retentionMs` expire, and so does the group; offsets committed from outside any group
   * (generation -1) expire `retentionMs` after their commit. Expiry is written as tombstones, so
   * a later coordinator forgets them too. Returns how many offsets expired.
   */
  async expireOffsets(retentionMs: number): Promise<number> {
    const nowMs = this.clock.now();
    let expired = 0;
    for (const [partition, hosted] of [...this.hosted]) {
      if (!hosted.loaded) continue;
      for (const [groupId, offsets] of [...hosted.offsets]) {
        const group = hosted.groups.get(groupId);
        if (group !== undefined && group.state !== 'Empty') continue;
        const due = [...offsets.values()].filter((committed) => (group === undefined ? committed.commitTimestamp + retentionMs <= nowMs : group.emptySinceMs + retentionMs <= nowMs));
        if (due.length === 0) continue;
        const removesGroup = group !== undefined && due.length === offsets.size;
        const tombstones: OffsetsRecord[] = due.map((committed) => ({ key: encodeOffsetsKey({ type: 'offset', group: groupId, topic: committed.topic, partition: committed.partition }), value: null }));
        if (removesGroup) tombstones.push({ key: encodeOffsetsKey({ type: 'group', group: groupId }), value: null });
        try {
          await this.options.log.append(partition, tombstones);
        } catch (error) {
          this.options.logger.warn({ group: groupId, err: (error as Error).message }, 'cannot expire offsets now; next check');
          continue;
        }
        if (this.hosted.get(partition) !== hosted) break;
        for (const committed of due) offsets.delete(offsetId(committed.topic, committed.partition));
        if (offsets.size === 0) hosted.offsets.delete(groupId);
        expired += due.length;
        const current = hosted.groups.get(groupId);
        if (removesGroup && current === group && current.state === 'Empty') {
          current.markDead();
          hosted.groups.delete(groupId);
        }
        this.options.logger.info({ group: groupId, offsets: due.length }, 'committed offsets expired (offsets.retention.minutes)');
      }
    }
    return expired;
  }

  /**
   * The groups this broker coordinates, with their protocol type and state; with `statesFilter`
   * (ListGroups v4+), only those in one of its states (compared without case, as Kafka does).
   */
  listGroups(statesFilter: readonly string[] = []): Array<{ groupId: string; protocolType: string; state: string }> {
    const states = new Set(statesFilter.map((state) => state.toLowerCase()));
    return this.allGroups().filter((group) => states.size === 0 || states.has(group.state.toLowerCase()));
  }

  private allGroups(): Array<{ groupId: string; protocolType: string; state: string }> {
    const groups: Array<{ groupId: string; protocolType: string; state: string }> = [];
    for (const hosted of this.hosted.values()) {
      if (!hosted.loaded) continue;
      for (const [groupId, group] of hosted.groups) if (group.state !== 'Dead') groups.push({ groupId, protocolType: group.describe().protocolType, state: group.state });
      for (const groupId of hosted.offsets.keys()) if (!hosted.groups.has(groupId)) groups.push({ groupId, protocolType: '', state: 'Empty' });
    }
    return groups.sort((a, b) => a.groupId.localeCompare(b.groupId));
  }

  // ---- offsets ----------------------------------------------------------------------------------

  /**
   * OffsetCommit. A member commits with its member id and generation (checked against the group),
   * a static member with its instance id too (FENCED_INSTANCE_ID once a newer instance holds it);
   * a commit with generation -1 and no member id is allowed only while the group has no members
   * (tools resetting offsets, consumers with manual assignment).
   */
  async commitOffsets(groupId: string, memberId: string, generationId: number, offsets: readonly CommitOffset[], groupInstanceId: string | null = null): Promise<number[]> {
    const hosted = this.coordinatorOf(groupId);
    if (typeof hosted === 'string') return offsets.map(() => errorCode(hosted));
    const refusal = this.commitRefusal(hosted.groups.get(groupId), memberId, groupInstanceId, generationId);
    if (refusal !== null) return offsets.map(() => errorCode(refusal));
    const nowMs = this.clock.now();
    const results = offsets.map((entry) => (Buffer.byteLength(entry.metadata) > (this.options.offsetMetadataBytesMax ?? OFFSET_METADATA_BYTES_MAX) ? errorCode('OFFSET_METADATA_TOO_LARGE') : entry.offset < 0 ? errorCode('INVALID_COMMIT_OFFSET_SIZE') : 0));
    const accepted = offsets.filter((_, k) => results[k] === 0);
    if (accepted.length === 0) return results;
    const values = accepted.map((entry) => ({ entry, value: { offset: entry.offset, leaderEpoch: entry.leaderEpoch, metadata: entry.metadata, commitTimestamp: nowMs } }));
    try {
      await this.options.log.append(
        this.partitionFor(groupId),
        values.map(({ entry, value }) => ({ key: encodeOffsetsKey({ type: 'offset', group: groupId, topic: entry.topic, partition: entry.partition }), value: encodeOffsetCommitValue(value) })),
      );
    } catch (error) {
      const code = appendErrorCode(error);
      return results.map((result) => (result === 0 ? code : result));
    }
    // Applied only once committed, and only if this broker still coordinates the partition.
    if (this.hosted.get(this.partitionFor(groupId)) === hosted) {
      const committed = this.offsetsOf(hosted, groupId);
      for (const { entry, value } of values) committed.set(offsetId(entry.topic, entry.partition), { topic: entry.topic, partition: entry.partition, ...value });
    }
    return results;
  }

  /** Every committed offset of the groups whose offsets partitions are loaded here (for the lag metrics). */
  allCommittedOffsets(): Array<{ group: string; topic: string; partition: number; offset: number }> {
    const all: Array<{ group: string; topic: string; partition: number; offset: number }> = [];
    for (const hosted of this.hosted.values()) {
      if (!hosted.loaded) continue;
      for (const [group, offsets] of hosted.offsets) {
        for (const committed of offsets.values()) all.push({ group, topic: committed.topic, partition: committed.partition, offset: committed.offset });
      }
    }
    return all;
  }

  /** OffsetFetch: the committed offsets of `partitions`, or of every partition the group committed (null). */
  fetchOffsets(groupId: string, partitions: ReadonlyArray<{ topic: string; partition: number }> | null): { errorCode: number; offsets: CommittedOffset[] } {
    const hosted = this.coordinatorOf(groupId);
    if (typeof hosted === 'string') return { errorCode: errorCode(hosted), offsets: [] };
    const committed = hosted.offsets.get(groupId) ?? new Map<string, CommittedOffset>();
    if (partitions === null) return { errorCode: 0, offsets: [...committed.values()] };
    return {
      errorCode: 0,
      offsets: partitions.map((wanted) => committed.get(offsetId(wanted.topic, wanted.partition)) ?? { topic: wanted.topic, partition: wanted.partition, offset: -1, leaderEpoch: -1, metadata: '', commitTimestamp: -1 }),
    };
  }

  // ---- internals --------------------------------------------------------------------------------

  private newGroup(hosted: HostedPartition, groupId: string): ClassicGroup {
    const partition = this.partitionFor(groupId);
    const group = new ClassicGroup(groupId, this.options.group, this.clock, async (record) => {
      // The group's new generation is stored before its members hear their assignment.
      if (this.hosted.get(partition) !== hosted) throw new RunnelError('NOT_COORDINATOR', `${OFFSETS_TOPIC}-${partition} moved away`);
      try {
        await this.options.log.append(partition, [{ key: encodeOffsetsKey({ type: 'group', group: groupId }), value: encodeGroupMetadataValue(groupMetadataOf(record, this.clock.now())) }]);
      } catch (error) {
        // Members hear only an error code; the operator needs the cause.
        this.options.logger.warn({ group: groupId, generation: record.generationId, err: (error as Error).message }, 'cannot store the group metadata');
        throw error;
      }
    }, ({ from, generation, reason }) => {
      // Kafka's "Preparing to rebalance group ... (reason: ...)": why members were asked to rejoin.
      this.options.logger.info({ group: groupId, state: from, generation, reason }, `preparing to rebalance group ${groupId} (reason: ${reason})`);
    });
    hosted.groups.set(groupId, group);
    return group;
  }

  private coordinatorOf(groupId: string): HostedPartition | ErrorName {
    if (groupId.length === 0 || groupId.length > GROUP_ID_LENGTH_MAX) return 'INVALID_GROUP_ID';
    const hosted = this.hosted.get(this.partitionFor(groupId));
    if (hosted === undefined) return 'NOT_COORDINATOR';
    if (!hosted.loaded) return 'COORDINATOR_LOAD_IN_PROGRESS';
    return hosted;
  }

  private existingGroup(groupId: string): ClassicGroup | ErrorName {
    const hosted = this.coordinatorOf(groupId);
    if (typeof hosted === 'string') return hosted;
    return hosted.groups.get(groupId) ?? 'UNKNOWN_MEMBER_ID';
  }

  private commitRefusal(group: ClassicGroup | undefined, memberId: string, groupInstanceId: string | null, generationId: number): ErrorName | null {
    const fromOutside = generationId < 0 && memberId === '' && groupInstanceId === null;
    // As Kafka: a generation for a group this coordinator never heard of is an old one; a member
    // id for an Empty group is no member.
    if (group === undefined) return fromOutside ? null : 'ILLEGAL_GENERATION';
    if (group.state === 'Empty') return fromOutside ? null : 'UNKNOWN_MEMBER_ID';
    if (group.state === 'Dead') return fromOutside ? null : 'COORDINATOR_NOT_AVAILABLE';
    if (fromOutside) return 'UNKNOWN_MEMBER_ID';
    const memberRefusal = group.memberRefusal(memberId, groupInstanceId);
    if (memberRefusal !== null) return memberRefusal;
    if (generationId !== group.generationId) return 'ILLEGAL_GENERATION';
    if (group.state === 'CompletingRebalance') return 'REBALANCE_IN_PROGRESS';
    return null;
  }

  private offsetsOf(hosted: HostedPartition, groupId: string): Map<string, CommittedOffset> {
    let offsets = hosted.offsets.get(groupId);
    if (offsets === undefined) hosted.offsets.set(groupId, (offsets = new Map()));
    return offsets;
  }
}

/**
 * What DescribeGroups answers for one group: its description; a group nobody here knows is Dead
 * with no members (Kafka's answer, not an error); an error (not the coordinator, loading) has an
 * empty description beside its code.
 */
export function describeGroupOrDead(groupId: string, coordinator: GroupCoordinator): { errorCode: number; group: Omit<GroupDescription, 'state'> & { readonly state: GroupDescription['state'] | '' } } {
  const { errorCode: code, group } = coordinator.describe(groupId);
  if (group !== null) return { errorCode: code, group };
  return { errorCode: code, group: { groupId, state: code === 0 ? 'Dead' : '', generationId: -1, protocolType: '', protocolName: '', leader: '', members: [] } };
}

function offsetId(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

/** The Kafka error an append failure means to a group's client. */
function appendErrorCode(error: unknown): number {
  if (!(error instanceof RunnelError)) return errorCode('UNKNOWN_SERVER_ERROR');
  // Kafka's mapping for the coordinator's writes: the partition moved or lacks replicas.
  if (error.errorName === 'NOT_LEADER_OR_FOLLOWER' || error.errorName === 'UNKNOWN_TOPIC_OR_PARTITION' || error.errorName === 'NOT_COORDINATOR') return errorCode('NOT_COORDINATOR');
  if (error.errorName === 'NOT_ENOUGH_REPLICAS' || error.errorName === 'NOT_ENOUGH_REPLICAS_AFTER_APPEND' || error.errorName === 'REQUEST_TIMED_OUT') return errorCode('COORDINATOR_NOT_AVAILABLE');
  return error.code;
}

function groupMetadataOf(record: GroupRecord, nowMs: number) {
  return {
    protocolType: record.protocolType,
    generation: record.generationId,
    protocol: record.protocolName === '' ? null : record.protocolName,
    leader: record.leader === '' ? null : record.leader,
    currentStateTimestamp: nowMs,
    members: record.members.map((member) => ({
      memberId: member.memberId,
      groupInstanceId: member.groupInstanceId,
      clientId: member.clientId,
      clientHost: member.clientHost,
      rebalanceTimeoutMs: member.rebalanceTimeoutMs,
      sessionTimeoutMs: member.sessionTimeoutMs,
      subscription: member.metadata,
      assignment: member.assignment,
    })),
  };
}

function groupRecordOf(groupId: string, value: ReturnType<typeof decodeGroupMetadataValue>): GroupRecord {
  return {
    groupId,
    generationId: value.generation,
    protocolType: value.protocolType,
    protocolName: value.protocol ?? '',
    leader: value.leader ?? '',
    members: value.members.map((member) => ({
      memberId: member.memberId,
      groupInstanceId: member.groupInstanceId,
      clientId: member.clientId,
      clientHost: member.clientHost,
      metadata: member.subscription,
      assignment: member.assignment,
      sessionTimeoutMs: member.sessionTimeoutMs,
      rebalanceTimeoutMs: member.rebalanceTimeoutMs,
    })),
  };
}
