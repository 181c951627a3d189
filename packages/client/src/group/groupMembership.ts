// A consumer's membership in its group, as Kafka's AbstractCoordinator and ConsumerCoordinator run
// it: find the coordinator, join (JoinGroup, then SyncGroup with the leader's assignment),
// heartbeat while the generation lasts, rejoin when the coordinator says the group rebalances, and
// leave. The consumer drives it from poll(): steps that run the user's rebalance listener (revoking
// before a join, assigning after it) happen only inside poll, as in Kafka; the JoinGroup/SyncGroup
// round trips and heartbeats run in the background, so a poll never waits for a whole rebalance.
import { RunnelError, errorCode, errorName, type GroupApi, type Logger } from '@runnel/common';
import { backoffMs, sleep } from '../backoff.js';
import type { Cluster } from '../cluster.js';
import type { BrokerConnection, GroupCalls } from '../connection.js';
import { commonRebalanceProtocol, type PartitionAssignor, type RebalanceProtocol } from './assignors.js';
import { findCoordinator } from './coordinator.js';
import { CONSUMER_PROTOCOL_TYPE, decodeAssignment, decodeSubscription, encodeAssignment, encodeSubscription, type Subscription, type TopicPartitions } from './consumerProtocol.js';

export interface GroupMembershipOptions {
  groupId: string;
  /** Static membership (KIP-345): '' for a dynamic member. */
  groupInstanceId: string;
  clientId: string;
  sessionTimeoutMs: number;
  /** Kafka's max.poll.interval.ms: also the rebalance timeout the member asks for. */
  maxPollIntervalMs: number;
  heartbeatIntervalMs: number;
  retryBackoffMs: number;
  requestTimeoutMs: number;
  assignors: readonly PartitionAssignor[];
  logger: Logger | undefined;
}

/** What the membership needs from its consumer. */
export interface GroupMemberHooks {
  /** The topics the consumer subscribes to now. */
  subscribedTopics(): readonly string[];
  /** The partitions the consumer owns now. */
  ownedPartitions(): TopicPartitions[];
  /** Wakes a poll waiting for fetches: the membership moved on. */
  wake(): void;
}

/** A generation's outcome for this member: what poll() hands to the consumer. */
export interface JoinedGeneration {
  readonly generationId: number;
  readonly memberId: string;
  readonly protocol: RebalanceProtocol;
  readonly assignment: TopicPartitions[];
}

export interface CommitEntry {
  topic: string;
  partition: number;
  offset: number;
  metadata?: string;
  leaderEpoch?: number;
}

const NO_GENERATION = -1;
/** JoinGroup and SyncGroup wait for the rebalance; Kafka gives them the rebalance timeout plus this. */
const REBALANCE_REQUEST_GRACE_MS = 5000;
const COORDINATOR_BACKOFF_MAX_MS = 1000;

const COORDINATOR_MOVED = new Set([errorCode('NOT_COORDINATOR'), errorCode('COORDINATOR_NOT_AVAILABLE')]);
const LOAD_IN_PROGRESS = errorCode('COORDINATOR_LOAD_IN_PROGRESS');

export class GroupMembership {
  readonly protocol: RebalanceProtocol;
  private memberIdValue = '';
  private generationIdValue = NO_GENERATION;
  private coordinator: { nodeId: number; connection: BrokerConnection } | null = null;
  /** The assignment of the last generation joined, and its id: what the sticky assignors keep where they can. */
  private lastAssignment: TopicPartitions[] = [];
  private lastGenerationId = NO_GENERATION;
  private findingCoordinator: Promise<BrokerConnection> | null = null;
  /** A rejoin is needed before the member owns a valid assignment again; the reason is logged. */
  private rejoinReason: string | null = 'first join';
  /** The generation ended without a clean revoke (fenced, expired): poll reports the partitions lost. */
  private lost = false;
  private joining: Promise<void> | null = null;
  private joined: JoinedGeneration | null = null;
  private fatal: Error | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private lastPollMs = Date.now();
  private pollsInProgress = 0;
  private closed = false;
  /** leave() calls so far: a join in flight across one is dropped. */
  private leaves = 0;
  /**
   * What the leader assigned from: every member's topics (not only this member's) and their
   * partition counts, absent while not in the metadata. A change means a new assignment is due.
   */
  private assignedFrom: { topics: readonly string[]; counts: ReadonlyMap<string, number> } | null = null;

  constructor(
    private readonly cluster: Cluster,
    private readonly options: GroupMembershipOptions,
    private readonly hooks: GroupMemberHooks,
  ) {
    this.protocol = commonRebalanceProtocol(options.assignors);
  }

  get memberId(): string {
    return this.memberIdValue;
  }

  get generationId(): number {
    return this.generationIdValue;
  }

  /**
   * True while the member holds a generation it has not been told it lost: its commits count (also
   * while a rebalance is prepared, as Kafka's coordinator accepts them then).
   */
  get generationValid(): boolean {
    return this.generationIdValue !== NO_GENERATION && !this.lost;
  }

  get rejoinNeeded(): boolean {
    return this.rejoinReason !== null;
  }

  /**
   * Called as each poll starts and ends; a member that has not polled for max.poll.interval.ms
   * leaves the group. A poll that is waiting counts as polling (Kafka's poll loop resets its poll
   * timer while it waits): the interval bounds the application's time between polls.
   */
  pollStarted(): void {
    this.lastPollMs = Date.now();
    this.pollsInProgress++;
  }

  pollEnded(): void {
    this.lastPollMs = Date.now();
    this.pollsInProgress--;
  }

  requestRejoin(reason: string): void {
    if (this.rejoinReason === null) {
      this.rejoinReason = reason;
      this.options.logger?.info({ group: this.options.groupId, reason }, 'rejoining the group');
    }
    this.hooks.wake();
  }

  /** Throws, once, a membership error no retry fixes (an invalid group id, a fenced instance id, ...). */
  throwIfFatal(): void {
    const fatal = this.fatal;
    // A fenced static member stays fenced: another process holds its instance id, and rejoining
    // would fence that one in turn (Kafka's FencedInstanceIdException is fatal too). Close it.
    if (fatal instanceof RunnelError && fatal.errorName === 'FENCED_INSTANCE_ID') throw fatal;
    this.fatal = null;
    if (fatal !== null) throw fatal;
  }

  /**
   * Did the member lose its generation (fenced, expired) since the last call? Such partitions are
   * reported lost, not revoked: another member may already own them.
   */
  takeLost(): boolean {
    const lost = this.lost;
    this.lost = false;
    return lost;
  }

  /** Starts the background join (after the consumer ran its pre-join step) unless one runs. */
  startJoin(): void {
    if (this.joining !== null || this.closed || this.rejoinReason === null) return;
    this.stopHeartbeats();
    this.joining = this.joinLoop()
      .catch((error: unknown) => {
        this.fatal = error instanceof Error ? error : new Error(String(error));
      })
      .finally(() => {
        this.joining = null;
        this.hooks.wake();
      });
  }

  get joinInFlight(): boolean {
    return this.joining !== null;
  }

  /** The generation a finished join produced, once; the consumer applies it inside poll. */
  takeJoined(): JoinedGeneration | null {
    const joined = this.joined;
    this.joined = null;
    return joined;
  }

  /** Waits (up to `timeoutMs`) for the background join to finish. */
  async waitForJoin(timeoutMs: number): Promise<void> {
    const joining = this.joining;
    if (joining === null || timeoutMs <= 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([joining, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  /**
   * OffsetCommit for `entries` as this member (or from outside the group with generation -1 when
   * it holds no generation and is not `subscribed`), retrying coordinator moves until `deadlineMs`
   * (one attempt without `retry`).
   */
  async commit(entries: readonly CommitEntry[], deadlineMs: number, { retry = true, subscribed = false } = {}): Promise<void> {
    if (entries.length === 0) return;
    if (subscribed && this.generationIdValue === NO_GENERATION) {
      // Kafka's CommitFailedException, without a call: sent from outside the group, the commit of a
      // fenced or expired member would be refused with UNKNOWN_MEMBER_ID (costing the member id it
      // keeps after ILLEGAL_GENERATION), or accepted by an empty group for partitions it lost.
      throw new RunnelError('ILLEGAL_GENERATION', `commit for group '${this.options.groupId}' refused: the member holds no generation (fenced, expired or not joined yet); its partitions may be assigned to another member (poll again to rejoin)`);
    }
    const inGeneration = this.generationIdValue !== NO_GENERATION;
    const request: GroupApi.OffsetCommitRequest = {
      groupId: this.options.groupId,
      generationId: inGeneration ? this.generationIdValue : NO_GENERATION,
      memberId: inGeneration ? this.memberIdValue : '',
      groupInstanceId: this.options.groupInstanceId,
      partitions: entries.map((entry) => ({ topic: entry.topic, partition: entry.partition, offset: entry.offset, leaderEpoch: entry.leaderEpoch ?? -1, metadata: entry.metadata ?? '' })),
    };
    const response = await this.callCoordinator('OffsetCommit', request, deadlineMs, (answer) => answer.partitions.map((partition) => partition.errorCode), retry);
    const failed = response.partitions.find((partition) => partition.errorCode !== 0);
    if (failed === undefined) return;
    const code = failed.errorCode;
    const what = `commit of ${failed.topic}-${failed.partition} for group '${this.options.groupId}'`;
    if (code === errorCode('UNKNOWN_MEMBER_ID') || code === errorCode('ILLEGAL_GENERATION')) {
      // Kafka's CommitFailedException: the group moved on; these partitions may be another member's now.
      this.onGenerationLost(code === errorCode('UNKNOWN_MEMBER_ID'), `${errorName(code)} on commit`);
      throw RunnelError.fromCode(code, `${what} failed: the member is no longer in generation ${request.generationId}; its partitions may be assigned to another member (poll again to rejoin)`);
    }
    if (code === errorCode('REBALANCE_IN_PROGRESS')) {
      this.requestRejoin('commit answered REBALANCE_IN_PROGRESS');
      throw RunnelError.fromCode(code, `${what}: the group is rebalancing; commit again after the next poll`);
    }
    if (code === errorCode('FENCED_INSTANCE_ID')) this.fatal = RunnelError.fromCode(code, `group '${this.options.groupId}': instance '${this.options.groupInstanceId}' was fenced by another member with the same group.instance.id`);
    throw RunnelError.fromCode(code, what);
  }

  /** OffsetFetch: the committed offset per partition (-1 when none). */
  async committed(partitions: ReadonlyArray<{ topic: string; partition: number }>, deadlineMs: number): Promise<GroupApi.OffsetFetchPartitionResult__Output[]> {
    const response = await this.callCoordinator(
      'OffsetFetch',
      { groupId: this.options.groupId, partitions: partitions.map(({ topic, partition }) => ({ topic, partition })), allPartitions: false },
      deadlineMs,
      (answer) => [answer.errorCode],
    );
    if (response.errorCode !== 0) throw RunnelError.fromCode(response.errorCode, `offset fetch for group '${this.options.groupId}': ${response.errorMessage}`);
    const failed = response.partitions.find((partition) => partition.errorCode !== 0);
    if (failed !== undefined) throw RunnelError.fromCode(failed.errorCode, `offset fetch of ${failed.topic}-${failed.partition} for group '${this.options.groupId}'`);
    return response.partitions;
  }

  /** The topics the leader assigned from: its metadata checks must cover them all. */
  get assignedTopics(): readonly string[] {
    return this.assignedFrom?.topics ?? [];
  }

  /**
   * The leader checks whether the partition counts it assigned from still hold (a topic was
   * created, grew, or was deleted): if not, the group needs a new assignment.
   */
  checkAssignedMetadata(partitionCounts: ReadonlyMap<string, number>): void {
    const assignedFrom = this.assignedFrom;
    if (assignedFrom === null) return;
    for (const topic of assignedFrom.topics) {
      const count = assignedFrom.counts.get(topic) ?? 0;
      if ((partitionCounts.get(topic) ?? 0) !== count) {
        this.assignedFrom = null;
        this.requestRejoin(`partitions of '${topic}' changed from ${count} to ${partitionCounts.get(topic) ?? 0}`);
        return;
      }
    }
  }

  /**
   * LeaveGroup (a dynamic member; a static member stays until its session times out, as in Kafka),
   * then forgets the member id and generation.
   */
  async leave(reason: string): Promise<void> {
    this.leaves++;
    this.stopHeartbeats();
    const memberId = this.memberIdValue;
    const wasMember = memberId !== '' && this.options.groupInstanceId === '';
    this.resetMember();
    this.rejoinReason ??= reason;
    if (!wasMember || this.coordinator === null) return;
    this.options.logger?.info({ group: this.options.groupId, memberId, reason }, 'leaving the group');
    try {
      const response = await this.coordinator.connection.group('LeaveGroup', { groupId: this.options.groupId, members: [{ memberId, groupInstanceId: '' }] });
      if (response.errorCode !== 0) this.options.logger?.debug({ group: this.options.groupId, error: errorName(response.errorCode) }, 'LeaveGroup refused');
    } catch (error) {
      this.options.logger?.debug({ group: this.options.groupId, err: (error as Error).message }, 'LeaveGroup failed');
    }
  }

  async close(reason: string): Promise<void> {
    if (this.closed) return;
    await this.leave(reason);
    this.closed = true;
    this.stopHeartbeats();
  }

  // ---- joining ----------------------------------------------------------------------------------

  private async joinLoop(): Promise<void> {
    let attempt = 0;
    while (this.rejoinReason !== null && !this.closed) {
      if (attempt > 0) await sleep(backoffMs(attempt, this.options.retryBackoffMs, Math.max(this.options.retryBackoffMs, COORDINATOR_BACKOFF_MAX_MS)));
      attempt++;
      if (this.closed) return;
      let connection: BrokerConnection;
      try {
        connection = await this.coordinatorConnection(Date.now() + this.options.requestTimeoutMs);
      } catch (error) {
        this.retriableOrThrow(error, 'FindCoordinator');
        continue;
      }
      const outcome = await this.joinOnce(connection).catch((error: unknown) => {
        this.retriableOrThrow(error, 'join');
        this.markCoordinatorUnknown();
        return 'retry' as const;
      });
      if (outcome === 'again') attempt = 0;
      if (outcome === 'joined' || outcome === 'left') return;
    }
  }

  /** One JoinGroup + SyncGroup round. */
  private async joinOnce(connection: BrokerConnection): Promise<'joined' | 'again' | 'retry' | 'left'> {
    // The member may leave (close, unsubscribe) while a call waits: as Kafka, the join then stops
    // there, not taking back the member id it left with nor syncing a generation it gave up.
    const leaves = this.leaves;
    const left = (): boolean => this.leaves !== leaves;
    const topics = [...this.hooks.subscribedTopics()].sort();
    const owned = this.protocol === 'COOPERATIVE' ? this.hooks.ownedPartitions() : [];
    const rebalanceWaitMs = this.options.maxPollIntervalMs + REBALANCE_REQUEST_GRACE_MS;
    const join = await connection.group(
      'JoinGroup',
      {
        groupId: this.options.groupId,
        sessionTimeoutMs: this.options.sessionTimeoutMs,
        rebalanceTimeoutMs: this.options.maxPollIntervalMs,
        memberId: this.memberIdValue,
        groupInstanceId: this.options.groupInstanceId,
        protocolType: CONSUMER_PROTOCOL_TYPE,
        protocols: this.options.assignors.map((assignor) => ({
          name: assignor.name,
          // The eager sticky assignor learns what each member had from its userData (the members revoked everything before joining).
          metadata: encodeSubscription({ topics, ownedPartitions: owned, generationId: this.generationIdValue, userData: assignor.subscriptionUserData?.(this.lastAssignment, this.lastGenerationId) ?? null }),
        })),
        clientId: this.options.clientId,
        requireKnownMemberId: true,
      },
      rebalanceWaitMs,
    );
    if (left()) return 'left';
    if (join.errorCode !== 0) return this.onJoinError(join.errorCode, join.memberId, join.errorMessage, 'JoinGroup');
    this.memberIdValue = join.memberId;
    this.generationIdValue = join.generationId;
    const isLeader = join.leader === join.memberId;
    const assignments = isLeader ? await this.leaderAssignment(join.protocolName, join.members) : [];
    const sync = await connection.group(
      'SyncGroup',
      {
        groupId: this.options.groupId,
        generationId: join.generationId,
        memberId: join.memberId,
        groupInstanceId: this.options.groupInstanceId,
        protocolType: CONSUMER_PROTOCOL_TYPE,
        protocolName: join.protocolName,
        assignments,
      },
      rebalanceWaitMs,
    );
    if (left()) return 'left';
    if (sync.errorCode !== 0) return this.onJoinError(sync.errorCode, this.memberIdValue, sync.errorMessage, 'SyncGroup');
    const assignment = decodeAssignment(sync.assignment).partitions.map(({ topic, partitions }) => ({ topic, partitions: [...partitions] }));
    this.rejoinReason = null;
    this.lost = false;
    this.joined = { generationId: join.generationId, memberId: join.memberId, protocol: this.protocol, assignment };
    this.lastAssignment = assignment;
    this.lastGenerationId = join.generationId;
    // A subscription that changed during the join (a pattern matched a new topic) asked for a
    // rejoin while one was pending, which was a no-op: compare, as Kafka's joinedSubscription check.
    if ([...this.hooks.subscribedTopics()].sort().join('\u0000') !== topics.join('\u0000')) this.requestRejoin('the subscription changed during the join');
    // Heartbeats start now, not at the next poll: the session must not lapse before the application polls.
    this.startHeartbeats();
    this.options.logger?.info({ group: this.options.groupId, memberId: join.memberId, generation: join.generationId, leader: isLeader, assignment }, 'joined the group');
    return 'joined';
  }

  /** The join step's answer to an error: try again at once, after a backoff, or give up (throws). */
  private onJoinError(code: number, memberId: string, message: string, call: string): 'again' | 'retry' {
    const name = errorName(code);
    this.options.logger?.debug({ group: this.options.groupId, call, error: name, message }, 'join attempt refused');
    if (code === errorCode('MEMBER_ID_REQUIRED')) {
      this.memberIdValue = memberId; // KIP-394: join again with the id the coordinator minted
      return 'again';
    }
    if (code === errorCode('UNKNOWN_MEMBER_ID')) {
      this.resetMember();
      return 'again';
    }
    if (code === errorCode('ILLEGAL_GENERATION')) {
      this.generationIdValue = NO_GENERATION;
      return 'again';
    }
    if (code === errorCode('REBALANCE_IN_PROGRESS')) return 'again';
    if (COORDINATOR_MOVED.has(code)) {
      this.markCoordinatorUnknown();
      return 'retry';
    }
    if (code === LOAD_IN_PROGRESS || code === errorCode('REQUEST_TIMED_OUT') || code === errorCode('NETWORK_EXCEPTION')) return 'retry';
    // INVALID_GROUP_ID, INCONSISTENT_GROUP_PROTOCOL, INVALID_SESSION_TIMEOUT, GROUP_MAX_SIZE_REACHED, FENCED_INSTANCE_ID, ...
    throw RunnelError.fromCode(code, `${call} for group '${this.options.groupId}': ${message || name}`);
  }

  /** The leader runs the chosen assignor over every member's subscription. */
  private async leaderAssignment(protocolName: string, members: GroupApi.JoinGroupMember__Output[]): Promise<GroupApi.SyncGroupAssignment[]> {
    const assignor = this.options.assignors.find((candidate) => candidate.name === protocolName);
    if (assignor === undefined) throw new RunnelError('INCONSISTENT_GROUP_PROTOCOL', `the group chose assignor '${protocolName}', which this member does not have`);
    const subscriptions = members.map((member) => ({ memberId: member.memberId, groupInstanceId: member.groupInstanceId, ...this.subscriptionOf(member) }));
    const topics = [...new Set(subscriptions.flatMap((subscription) => subscription.topics))].sort();
    const partitionCounts = await this.partitionCounts(topics);
    const result = assignor.assign(subscriptions, partitionCounts);
    this.assignedFrom = { topics, counts: partitionCounts };
    this.options.logger?.debug({ group: this.options.groupId, assignor: protocolName, members: members.length, topics }, 'computed the assignment as leader');
    return members.map((member) => ({ memberId: member.memberId, assignment: encodeAssignment({ partitions: result.get(member.memberId) ?? [] }) }));
  }

  /** A member whose subscription does not decode (another client's bug) subscribes to nothing: it gets no partitions, the group goes on. */
  private subscriptionOf(member: GroupApi.JoinGroupMember__Output): Subscription {
    try {
      return decodeSubscription(member.metadata);
    } catch (error) {
      this.options.logger?.warn({ group: this.options.groupId, memberId: member.memberId, err: (error as Error).message }, 'a member sent a subscription that does not decode: it gets no partitions');
      return { topics: [], userData: null, ownedPartitions: [], generationId: NO_GENERATION };
    }
  }

  private async partitionCounts(topics: readonly string[]): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    if (topics.length === 0) return counts;
    const response = await this.cluster.metadata({ topics: [...topics], allowAutoTopicCreation: false });
    for (const topic of response.topics) if (topic.errorCode === 0 && topic.partitions.length > 0) counts.set(topic.name, topic.partitions.length);
    return counts;
  }

  // ---- heartbeats -------------------------------------------------------------------------------

  private startHeartbeats(): void {
    this.stopHeartbeats();
    if (this.closed) return;
    this.heartbeatTimer = setTimeout(() => void this.heartbeat(), this.options.heartbeatIntervalMs);
  }

  private stopHeartbeats(): void {
    if (this.heartbeatTimer !== null) clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  private async heartbeat(): Promise<void> {
    this.heartbeatTimer = null;
    // A pending rejoin does not stop them: until a poll starts the join (JoinGroup keeps the member
    // alive), heartbeats keep the session while the application finishes its records, as in Kafka.
    if (this.closed || this.joining !== null || this.generationIdValue === NO_GENERATION) return;
    const sincePollMs = this.pollsInProgress > 0 ? 0 : Date.now() - this.lastPollMs;
    if (sincePollMs > this.options.maxPollIntervalMs) {
      // Kafka: the application stopped polling, so it cannot be processing its partitions in time.
      this.options.logger?.warn({ group: this.options.groupId, sincePollMs, maxPollIntervalMs: this.options.maxPollIntervalMs }, 'no poll within max.poll.interval.ms: leaving the group');
      this.lost = true;
      this.rejoinReason = 'max.poll.interval.ms expired';
      await this.leave('max.poll.interval.ms expired');
      return;
    }
    const generationId = this.generationIdValue;
    try {
      const connection = await this.coordinatorConnection(Date.now() + this.options.requestTimeoutMs);
      const response = await connection.group('Heartbeat', { groupId: this.options.groupId, generationId, memberId: this.memberIdValue, groupInstanceId: this.options.groupInstanceId });
      if (generationId === this.generationIdValue) this.onHeartbeatAnswer(response.errorCode);
    } catch (error) {
      this.options.logger?.debug({ group: this.options.groupId, err: (error as Error).message }, 'heartbeat failed');
      this.markCoordinatorUnknown();
    }
    if (this.heartbeatTimer === null && this.joining === null && this.generationIdValue !== NO_GENERATION && !this.closed) this.startHeartbeats();
  }

  private onHeartbeatAnswer(code: number): void {
    if (code === 0) return;
    const name = errorName(code);
    if (code === errorCode('REBALANCE_IN_PROGRESS')) this.requestRejoin('the coordinator started a rebalance');
    else if (code === errorCode('ILLEGAL_GENERATION') || code === errorCode('UNKNOWN_MEMBER_ID')) this.onGenerationLost(code === errorCode('UNKNOWN_MEMBER_ID'), `heartbeat answered ${name}`);
    else if (COORDINATOR_MOVED.has(code)) this.markCoordinatorUnknown();
    else if (code !== LOAD_IN_PROGRESS) {
      this.fatal = RunnelError.fromCode(code, `heartbeat for group '${this.options.groupId}'`);
      // Heartbeats end with the generation: the same refusal every interval would only repeat the error.
      this.onGenerationLost(true, `heartbeat answered ${name}`);
    }
  }

  /** The coordinator no longer knows this member's generation: its partitions are lost. */
  private onGenerationLost(memberUnknown: boolean, reason: string): void {
    if (memberUnknown) this.resetMember();
    else this.generationIdValue = NO_GENERATION;
    this.lost = true;
    this.stopHeartbeats();
    this.requestRejoin(reason);
  }

  private resetMember(): void {
    this.memberIdValue = '';
    this.generationIdValue = NO_GENERATION;
  }

  // ---- the coordinator --------------------------------------------------------------------------

  private markCoordinatorUnknown(): void {
    if (this.coordinator !== null) this.options.logger?.debug({ group: this.options.groupId, coordinator: this.coordinator.nodeId }, 'coordinator unknown, looking it up again');
    this.coordinator = null;
  }

  /** The coordinator's connection, looked up with FindCoordinator when unknown. */
  private coordinatorConnection(deadlineMs: number): Promise<BrokerConnection> {
    if (this.coordinator !== null) return Promise.resolve(this.coordinator.connection);
    this.findingCoordinator ??= this.findCoordinator(deadlineMs).finally(() => (this.findingCoordinator = null));
    return this.findingCoordinator;
  }

  private async findCoordinator(deadlineMs: number): Promise<BrokerConnection> {
    this.coordinator = await findCoordinator(this.cluster, this.options.groupId, Math.max(1, deadlineMs - Date.now()));
    return this.coordinator.connection;
  }

  /**
   * A call to the coordinator, looked up again and retried (if `retry`) after NOT_COORDINATOR,
   * COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS or a network error until `deadlineMs`.
   */
  private async callCoordinator<M extends keyof GroupCalls>(method: M, request: GroupCalls[M][0], deadlineMs: number, codesOf: (response: GroupCalls[M][1]) => number[], retry = true): Promise<GroupCalls[M][1]> {
    for (let attempt = 1; ; attempt++) {
      let retryError: RunnelError;
      try {
        const connection = await this.coordinatorConnection(deadlineMs);
        const response = await connection.group(method, request, Math.max(1, Math.min(this.options.requestTimeoutMs, deadlineMs - Date.now())));
        const codes = codesOf(response);
        const moved = codes.find((code) => COORDINATOR_MOVED.has(code) || code === LOAD_IN_PROGRESS);
        if (moved === undefined) return response;
        if (moved !== LOAD_IN_PROGRESS) this.markCoordinatorUnknown();
        retryError = RunnelError.fromCode(moved, `${method} for group '${this.options.groupId}'`);
      } catch (error) {
        if (!(error instanceof RunnelError) || !error.retriable) throw error;
        this.markCoordinatorUnknown();
        retryError = error;
      }
      if (!retry || Date.now() >= deadlineMs || this.closed) throw retryError;
      await sleep(Math.min(backoffMs(attempt, this.options.retryBackoffMs, COORDINATOR_BACKOFF_MAX_MS), Math.max(0, deadlineMs - Date.now())));
    }
  }

  private retriableOrThrow(error: unknown, what: string): void {
    if (error instanceof RunnelError && error.retriable) {
      this.options.logger?.debug({ group: this.options.groupId, what, err: error.message }, 'group call failed, retrying');
      return;
    }
    throw error;
  }
}
