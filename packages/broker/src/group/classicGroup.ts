// One consumer group under Kafka's classic group protocol: membership, generations and the
// rebalance that hands each member the assignment its leader computed. The coordinator (one per
// group, on the leader of the group's __consumer_offsets partition) drives it; both doors (gRPC and
// the Kafka wire protocol) call the same methods with the fields of Kafka's JoinGroup, SyncGroup,
// Heartbeat and LeaveGroup.
//
// States (Kafka's GroupState): Empty (no members) → PreparingRebalance (members rejoin; the join
// completes when all known members have, or at the rebalance timeout) → CompletingRebalance (the
// join answered: the leader has the member list and computes the assignment) → Stable (the leader's
// SyncGroup delivered every member's assignment). Any membership change in CompletingRebalance or
// Stable goes back to PreparingRebalance. Dead: the group is gone (deleted, or this broker is no
// longer its coordinator); every call answers COORDINATOR_NOT_AVAILABLE.
//
// Time comes from a `GroupClock` (timers included), so tests drive it step by step. Persistence of
// the group (its metadata record in __consumer_offsets) is the `storeGroup` hook: the Stable state
// is entered only once it resolved, so a new coordinator after a failover knows the group; a group
// that becomes Empty is stored too (with no members, as Kafka does), else a new coordinator would
// bring back the members of its last generation.
//
// Static membership (group.instance.id, KIP-345), as Kafka's classic coordinator has it: the group
// maps each instance id to the member id it holds now. A first join naming an unknown instance joins
// at once (no MEMBER_ID_REQUIRED round); one naming a known instance (a restarted consumer) takes
// over the old member's place under a new member id and fences the old id (FENCED_INSTANCE_ID on
// every call that names the instance). In a Stable group whose chosen protocol the rejoin leaves
// as it is, that costs no rebalance: the group is stored with the new id and the member gets the
// current generation and its assignment back. A static member stays through rebalances it misses;
// only its session timeout or a LeaveGroup (by member id, or by instance id alone) removes it.
import { randomUUID } from 'node:crypto';
import { errorCode, type ErrorName } from '@runnel/common';
import { assert } from '../invariant.js';

export type GroupState = 'Empty' | 'PreparingRebalance' | 'CompletingRebalance' | 'Stable' | 'Dead';

/** Timers and the current time; the real one wraps Date.now and setTimeout. */
export interface GroupClock {
  now(): number;
  /** Runs `run` after `delayMs`; returns a function that cancels it. */
  schedule(delayMs: number, run: () => void): () => void;
}

export const systemClock: GroupClock = {
  now: () => Date.now(),
  schedule: (delayMs, run) => {
    const timer = setTimeout(run, delayMs);
    timer.unref();
    return () => clearTimeout(timer);
  },
};

export interface GroupSettings {
  /** group.min.session.timeout.ms / group.max.session.timeout.ms: the session timeouts a member may ask for. */
  readonly minSessionTimeoutMs: number;
  readonly maxSessionTimeoutMs: number;
  /** group.max.size. */
  readonly maxSize: number;
  /** group.initial.rebalance.delay.ms: how long the first rebalance of an empty group waits for more members. */
  readonly initialRebalanceDelayMs: number;
}

export interface JoinProtocol {
  readonly name: string;
  readonly metadata: Buffer;
}

export interface JoinRequest {
  /** '' for a member's first join. */
  readonly memberId: string;
  readonly groupInstanceId: string | null;
  readonly clientId: string;
  readonly clientHost: string;
  readonly protocolType: string;
  /** In the member's order of preference. */
  readonly protocols: readonly JoinProtocol[];
  readonly sessionTimeoutMs: number;
  readonly rebalanceTimeoutMs: number;
  /** JoinGroup v4+: a first join is answered MEMBER_ID_REQUIRED with the id to rejoin with (KIP-394). */
  readonly requireKnownMemberId: boolean;
}

export interface JoinMember {
  readonly memberId: string;
  readonly groupInstanceId: string | null;
  readonly metadata: Buffer;
}

export interface JoinResponse {
  readonly errorCode: number;
  readonly generationId: number;
  readonly protocolType: string | null;
  readonly protocolName: string | null;
  readonly leader: string;
  readonly memberId: string;
  /** Every member with its metadata for the chosen protocol: for the leader only, empty for the others. */
  readonly members: readonly JoinMember[];
}

export interface SyncRequest {
  readonly memberId: string;
  /** SyncGroup v3+: set by a static member (checked against its member id); absent or null otherwise. */
  readonly groupInstanceId?: string | null;
  readonly generationId: number;
  /** SyncGroup v5+: checked against the group's when present. */
  readonly protocolType: string | null;
  readonly protocolName: string | null;
  /** From the leader: each member's assignment. Others send none. */
  readonly assignments: ReadonlyArray<{ readonly memberId: string; readonly assignment: Buffer }>;
}

export interface SyncResponse {
  readonly errorCode: number;
  readonly protocolType: string | null;
  readonly protocolName: string | null;
  readonly assignment: Buffer;
}

/** One member of a LeaveGroup (v3+ batch): an empty member id with an instance id removes that static member. */
export interface LeavingMember {
  readonly memberId: string;
  readonly groupInstanceId: string | null;
}

export interface MemberDescription {
  readonly memberId: string;
  readonly groupInstanceId: string | null;
  readonly clientId: string;
  readonly clientHost: string;
  readonly metadata: Buffer;
  readonly assignment: Buffer;
  readonly sessionTimeoutMs: number;
  readonly rebalanceTimeoutMs: number;
}

export interface GroupDescription {
  readonly groupId: string;
  readonly state: GroupState;
  readonly generationId: number;
  readonly protocolType: string;
  readonly protocolName: string;
  readonly leader: string;
  readonly members: readonly MemberDescription[];
}

/** What storeGroup stores: enough for a new coordinator to carry the group on. */
export interface GroupRecord {
  readonly groupId: string;
  readonly generationId: number;
  readonly protocolType: string;
  readonly protocolName: string;
  readonly leader: string;
  readonly members: readonly MemberDescription[];
}

interface Member {
  readonly memberId: string;
  readonly groupInstanceId: string | null;
  readonly clientId: string;
  readonly clientHost: string;
  protocols: readonly JoinProtocol[];
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  assignment: Buffer;
  /** Set while the member waits for the join to complete. */
  awaitingJoin: ((response: JoinResponse) => void) | null;
  /** Set while the member waits for the leader's assignment. */
  awaitingSync: ((response: SyncResponse) => void) | null;
  cancelSession: () => void;
}

const EMPTY = Buffer.alloc(0);

/** A JoinGroup answer that carries only an error (and the member id, where one is known). */
export function joinError(name: ErrorName, memberId = ''): JoinResponse {
  return { errorCode: errorCode(name), generationId: -1, protocolType: null, protocolName: null, leader: '', memberId, members: [] };
}

function syncError(name: ErrorName): SyncResponse {
  return { errorCode: errorCode(name), protocolType: null, protocolName: null, assignment: EMPTY };
}

function newMember(memberId: string, request: JoinRequest): Member {
  return {
    memberId,
    groupInstanceId: request.groupInstanceId,
    clientId: request.clientId,
    clientHost: request.clientHost,
    protocols: request.protocols,
    sessionTimeoutMs: request.sessionTimeoutMs,
    rebalanceTimeoutMs: request.rebalanceTimeoutMs,
    assignment: EMPTY,
    awaitingJoin: null,
    awaitingSync: null,
    cancelSession: () => undefined,
  };
}

function sameProtocols(a: readonly JoinProtocol[], b: readonly JoinProtocol[]): boolean {
  return a.length === b.length && a.every((protocol, k) => protocol.name === b[k]!.name && protocol.metadata.equals(b[k]!.metadata));
}

export class ClassicGroup {
  private current: GroupState = 'Empty';
  private generation = 0;
  private protocolTypeName = '';
  private protocolChosen = '';
  private leaderId = '';
  private readonly members = new Map<string, Member>();
  /** Static members: group.instance.id → the member id that holds it now. */
  private readonly staticMembers = new Map<string, string>();
  /** Ids handed out with MEMBER_ID_REQUIRED, waiting for the member's second join (expire with its session). */
  private readonly pendingMembers = new Map<string, () => void>();
  private cancelJoinTimer: (() => void) | null = null;
  /** The initial rebalance of an empty group: when the delayed join may complete at the latest. */
  private initialJoinDeadlineMs = 0;
  /** When the group last became Empty (its committed offsets expire offsets.retention.minutes later). */
  private emptySince: number;

  constructor(
    readonly groupId: string,
    private readonly settings: GroupSettings,
    private readonly clock: GroupClock = systemClock,
    private readonly storeGroup: (record: GroupRecord) => Promise<void> = async () => undefined,
    /** Told of every rebalance the group starts, with why: the coordinator logs it, as Kafka does. */
    private readonly onRebalance: (event: { from: GroupState; generation: number; reason: string }) => void = () => undefined,
  ) {
    this.emptySince = clock.now();
  }

  /** Since when the group has had no members (meaningful while it is Empty). */
  get emptySinceMs(): number {
    return this.emptySince;
  }

  get state(): GroupState {
    return this.current;
  }

  get generationId(): number {
    return this.generation;
  }

  get size(): number {
    return this.members.size;
  }

  /**
   * Kafka's check of who a call comes from: a named instance must be held by the member id sent
   * (FENCED_INSTANCE_ID: a newer instance of it has joined since), and the member id must belong to
   * the group.
   */
  memberRefusal(memberId: string, groupInstanceId: string | null): 'FENCED_INSTANCE_ID' | 'UNKNOWN_MEMBER_ID' | null {
    if (groupInstanceId !== null) {
      const holder = this.staticMembers.get(groupInstanceId);
      if (holder === undefined) return 'UNKNOWN_MEMBER_ID';
      if (holder !== memberId) return 'FENCED_INSTANCE_ID';
    }
    return this.members.has(memberId) ? null : 'UNKNOWN_MEMBER_ID';
  }

  describe(): GroupDescription {
    return {
      groupId: this.groupId,
      state: this.current,
      generationId: this.generation,
      protocolType: this.protocolTypeName,
      protocolName: this.protocolChosen,
      leader: this.leaderId,
      members: [...this.members.values()].map((member) => this.memberDescription(member)),
    };
  }

  /**
   * A new coordinator takes the group over as the stored record left it (after a failover or a
   * restart): the members keep their generation and assignment and must heartbeat within their
   * session timeout, as Kafka does when it loads a group.
   */
  restore(record: GroupRecord, storedAtMs = -1): void {
    assert(this.current === 'Empty' && this.members.size === 0 && this.generation === 0, `group ${this.groupId}: only a new group is restored`);
    this.generation = record.generationId;
    this.protocolTypeName = record.protocolType;
    this.protocolChosen = record.protocolName;
    this.leaderId = record.leader;
    for (const stored of record.members) {
      const member: Member = {
        memberId: stored.memberId,
        groupInstanceId: stored.groupInstanceId,
        clientId: stored.clientId,
        clientHost: stored.clientHost,
        protocols: [{ name: record.protocolName, metadata: stored.metadata }],
        sessionTimeoutMs: stored.sessionTimeoutMs,
        rebalanceTimeoutMs: stored.rebalanceTimeoutMs,
        assignment: stored.assignment,
        awaitingJoin: null,
        awaitingSync: null,
        cancelSession: () => undefined,
      };
      this.addMember(member);
      this.touchSession(member);
    }
    this.current = this.members.size > 0 ? 'Stable' : 'Empty';
    if (this.current === 'Empty' && storedAtMs >= 0) this.emptySince = storedAtMs;
  }

  // ---- JoinGroup --------------------------------------------------------------------------------

  join(request: JoinRequest): Promise<JoinResponse> {
    if (this.current === 'Dead') return Promise.resolve(joinError('COORDINATOR_NOT_AVAILABLE', request.memberId));
    if (request.sessionTimeoutMs < this.settings.minSessionTimeoutMs || request.sessionTimeoutMs > this.settings.maxSessionTimeoutMs) {
      return Promise.resolve(joinError('INVALID_SESSION_TIMEOUT', request.memberId));
    }
    if (request.memberId === '') {
      const staticHolder = this.staticHolder(request.groupInstanceId);
      // A restarted static member replaces its predecessor, whose protocols therefore do not count.
      if (!this.supportsProtocols(request, staticHolder?.memberId ?? '')) return Promise.resolve(joinError('INCONSISTENT_GROUP_PROTOCOL'));
      return staticHolder === undefined ? this.joinNewMember(request) : this.replaceStaticMember(staticHolder, request);
    }
    if (!this.supportsProtocols(request, request.memberId)) return Promise.resolve(joinError('INCONSISTENT_GROUP_PROTOCOL', request.memberId));
    const pending = request.groupInstanceId === null ? this.pendingMembers.get(request.memberId) : undefined;
    if (pending !== undefined) {
      pending();
      this.pendingMembers.delete(request.memberId);
      return this.addMemberAndRebalance(request.memberId, request);
    }
    const refusal = this.memberRefusal(request.memberId, request.groupInstanceId);
    if (refusal !== null || this.current === 'Empty') return Promise.resolve(joinError(refusal ?? 'UNKNOWN_MEMBER_ID', request.memberId));
    return this.joinKnownMember(this.members.get(request.memberId)!, request);
  }

  private joinNewMember(request: JoinRequest): Promise<JoinResponse> {
    if (this.members.size + this.pendingMembers.size >= this.settings.maxSize) return Promise.resolve(joinError('GROUP_MAX_SIZE_REACHED'));
    // Kafka's member ids: a static member's start with its instance id, a dynamic one's with its client id.
    const memberId = `${request.groupInstanceId ?? request.clientId}-${randomUUID()}`;
    // A static member is known by its instance id already, so it joins at once (Kafka skips KIP-394 for it).
    if (request.requireKnownMemberId && request.groupInstanceId === null) {
      // KIP-394: the member gets its id first, and joins with it; an id never used expires.
      this.pendingMembers.set(
        memberId,
        this.clock.schedule(request.sessionTimeoutMs, () => {
          this.pendingMembers.delete(memberId);
          this.maybeCompleteJoin();
        }),
      );
      return Promise.resolve(joinError('MEMBER_ID_REQUIRED', memberId));
    }
    return this.addMemberAndRebalance(memberId, request);
  }

  private joinKnownMember(member: Member, request: JoinRequest): Promise<JoinResponse> {
    const unchanged = sameProtocols(member.protocols, request.protocols);
    member.sessionTimeoutMs = request.sessionTimeoutMs;
    member.rebalanceTimeoutMs = request.rebalanceTimeoutMs;
    if (this.current === 'PreparingRebalance') {
      member.protocols = request.protocols;
      return this.awaitJoin(member);
    }
    // A follower rejoining with what it had gets the current generation back; a leader rejoining, or
    // anyone with new metadata (e.g. a new subscription), starts a rebalance.
    if (unchanged && (this.current === 'CompletingRebalance' || member.memberId !== this.leaderId)) {
      this.touchSession(member);
      return Promise.resolve(this.joinResponseFor(member));
    }
    member.protocols = request.protocols;
    const joined = this.awaitJoin(member);
    this.prepareRebalance(`member ${member.memberId} rejoined${unchanged ? ' as leader' : ' with new metadata'}`);
    return joined;
  }

  private addMemberAndRebalance(memberId: string, request: JoinRequest): Promise<JoinResponse> {
    const member = newMember(memberId, request);
    if (this.members.size === 0) this.protocolTypeName = request.protocolType;
    this.addMember(member);
    const joined = this.awaitJoin(member);
    if (this.current === 'PreparingRebalance') this.extendInitialJoin();
    else this.prepareRebalance(`member ${memberId} joined`);
    return joined;
  }

  /**
   * A known instance joins without a member id: it restarted, or another process took its
   * group.instance.id. Either way the newest one wins (Kafka's updateStaticMemberAndRebalance).
   */
  private replaceStaticMember(previous: Member, request: JoinRequest): Promise<JoinResponse> {
    const previousLeader = this.leaderId;
    const member = newMember(`${request.groupInstanceId}-${randomUUID()}`, request);
    member.assignment = previous.assignment;
    this.swapMember(previous, member);
    if (this.current === 'Stable' && this.selectProtocol() === this.protocolChosen) return this.rejoinStable(previous, member, previousLeader);
    const joined = this.awaitJoin(member);
    // In CompletingRebalance the leader may be assigning to the old member id: that generation is
    // void. A rebalance already under way just counts the new member id as joined.
    if (this.current !== 'PreparingRebalance') this.prepareRebalance(`static member ${request.groupInstanceId} rejoined as ${member.memberId}`);
    return joined;
  }

  /**
   * A static member rejoins a Stable group and the protocol the group would choose stays: it takes
   * over its predecessor's assignment in the current generation. The new member id is stored
   * before the member hears it, so that a coordinator after a failover fences the old id too; if
   * that write fails the old member is put back and the new one told to retry.
   */
  private rejoinStable(previous: Member, member: Member, previousLeader: string): Promise<JoinResponse> {
    const generation = this.generation;
    const joined = new Promise<JoinResponse>((resolve) => {
      member.awaitingJoin = resolve;
    });
    this.touchSession(member);
    // A rebalance that begins during the write counts the member as joined and answers it itself.
    const undisturbed = () => this.current === 'Stable' && this.generation === generation && this.members.get(member.memberId) === member;
    void this.storeGroup(this.record()).then(
      () => {
        if (!undisturbed()) return;
        const answer = member.awaitingJoin;
        member.awaitingJoin = null;
        // The leader id as it was: a former leader must not run its assignor, since a Stable group
        // hands no new assignment out; seeing another id it syncs as a follower (Kafka's answer
        // before JoinGroup v9's skip_assignment).
        answer?.({ ...this.joinResponseFor(member), leader: previousLeader, members: [] });
      },
      () => {
        if (!undisturbed()) return;
        const answer = member.awaitingJoin;
        member.awaitingJoin = null;
        this.swapMember(member, previous);
        this.touchSession(previous);
        answer?.(joinError('COORDINATOR_NOT_AVAILABLE'));
      },
    );
    return joined;
  }

  /** `next` takes `previous`'s place (its instance id, and the lead if it had it); `previous`'s waiting calls are fenced. */
  private swapMember(previous: Member, next: Member): void {
    previous.awaitingJoin?.(joinError('FENCED_INSTANCE_ID', previous.memberId));
    previous.awaitingJoin = null;
    this.answerSync(previous, syncError('FENCED_INSTANCE_ID'));
    previous.cancelSession();
    this.members.delete(previous.memberId);
    this.addMember(next);
    if (this.leaderId === previous.memberId) this.leaderId = next.memberId;
  }

  private staticHolder(groupInstanceId: string | null): Member | undefined {
    const memberId = groupInstanceId === null ? undefined : this.staticMembers.get(groupInstanceId);
    return memberId === undefined ? undefined : this.members.get(memberId);
  }

  private addMember(member: Member): void {
    this.members.set(member.memberId, member);
    if (member.groupInstanceId !== null) this.staticMembers.set(member.groupInstanceId, member.memberId);
  }

  private awaitJoin(member: Member): Promise<JoinResponse> {
    // A second join from the same member replaces the first, which is answered as superseded.
    member.awaitingJoin?.(joinError('UNKNOWN_MEMBER_ID', member.memberId));
    const joined = new Promise<JoinResponse>((resolve) => {
      member.awaitingJoin = resolve;
    });
    this.touchSession(member);
    this.maybeCompleteJoin();
    return joined;
  }

  /** Whether the joining member (`selfId` in the group, if it is there) shares a protocol with every other member. */
  private supportsProtocols(request: JoinRequest, selfId: string): boolean {
    if (request.protocolType === '' || request.protocols.length === 0) return false;
    if (this.members.size === 0) return true;
    if (request.protocolType !== this.protocolTypeName) return false;
    const others = [...this.members.values()].filter((member) => member.memberId !== selfId);
    return request.protocols.some((protocol) => others.every((member) => member.protocols.some((candidate) => candidate.name === protocol.name)));
  }

  // ---- rebalancing ------------------------------------------------------------------------------

  private prepareRebalance(reason: string): void {
    assert(this.current !== 'Dead', `group ${this.groupId}: a dead group does not rebalance (${reason})`);
    if (this.current === 'CompletingRebalance') {
      // Members waiting for an assignment of the generation being replaced must rejoin.
      for (const member of this.members.values()) this.answerSync(member, syncError('REBALANCE_IN_PROGRESS'));
    }
    if (this.current === 'PreparingRebalance') return;
    this.onRebalance({ from: this.current, generation: this.generation, reason });
    const wasEmpty = this.current === 'Empty';
    this.current = 'PreparingRebalance';
    this.cancelJoinTimer?.();
    const rebalanceTimeoutMs = this.rebalanceTimeoutMs();
    if (wasEmpty && this.settings.initialRebalanceDelayMs > 0) {
      // Kafka's InitialDelayedJoin: wait for more members, each join extending the wait by the
      // delay, never past the rebalance timeout.
      this.initialJoinDeadlineMs = this.clock.now() + rebalanceTimeoutMs;
      this.scheduleJoinCompletion(Math.min(this.settings.initialRebalanceDelayMs, rebalanceTimeoutMs), true);
    } else {
      this.initialJoinDeadlineMs = 0;
      this.scheduleJoinCompletion(rebalanceTimeoutMs, false);
      this.maybeCompleteJoin();
    }
  }

  private rebalanceTimeoutMs(): number {
    return Math.max(0, ...[...this.members.values()].map((member) => member.rebalanceTimeoutMs));
  }

  private extendInitialJoin(): void {
    if (this.initialJoinDeadlineMs === 0) return;
    // The wait restarts with each new member, but never runs past the rebalance timeout that held
    // when the rebalance began.
    const remainingMs = Math.max(0, this.initialJoinDeadlineMs - this.clock.now());
    this.scheduleJoinCompletion(Math.min(this.settings.initialRebalanceDelayMs, remainingMs), true);
  }

  private scheduleJoinCompletion(delayMs: number, initial: boolean): void {
    this.cancelJoinTimer?.();
    this.cancelJoinTimer = this.clock.schedule(delayMs, () => {
      this.cancelJoinTimer = null;
      if (this.current !== 'PreparingRebalance') return;
      if (initial) this.initialJoinDeadlineMs = 0;
      this.completeJoin();
    });
  }

  /** Completes the join at once when every known member has rejoined (not during the initial delay). */
  private maybeCompleteJoin(): void {
    if (this.current !== 'PreparingRebalance' || this.initialJoinDeadlineMs !== 0) return;
    if (this.pendingMembers.size > 0) return;
    for (const member of this.members.values()) if (member.awaitingJoin === null) return;
    this.cancelJoinTimer?.();
    this.cancelJoinTimer = null;
    this.completeJoin();
  }

  private completeJoin(): void {
    // Dynamic members that did not rejoin in time leave the group. Static ones stay until their
    // session expires (KIP-345): the leader assigns to them too, and a restarted instance finds
    // its share waiting.
    for (const member of [...this.members.values()]) if (member.awaitingJoin === null && member.groupInstanceId === null) this.removeMember(member);
    const joined = [...this.members.values()].filter((member) => member.awaitingJoin !== null);
    if (joined.length === 0 && this.members.size > 0) {
      // Only absent static members are left, and none of them can lead: wait for one to rejoin or
      // for their sessions to end, a rebalance timeout at a time, as Kafka does.
      this.scheduleJoinCompletion(this.rebalanceTimeoutMs(), false);
      return;
    }
    this.generation++;
    if (this.members.size === 0) {
      this.current = 'Empty';
      this.emptySince = this.clock.now();
      this.protocolChosen = '';
      this.leaderId = '';
      // Nobody waits on this write. If it fails, the log keeps the last generation: a new
      // coordinator restores its members, whose sessions then expire (Kafka only warns, too).
      this.storeGroup(this.record()).catch(() => undefined);
      return;
    }
    this.protocolChosen = this.selectProtocol();
    if (!joined.some((member) => member.memberId === this.leaderId)) this.leaderId = joined[0]!.memberId;
    this.current = 'CompletingRebalance';
    for (const member of this.members.values()) member.assignment = EMPTY;
    for (const member of joined) {
      const answer = member.awaitingJoin!;
      member.awaitingJoin = null;
      this.touchSession(member);
      answer(this.joinResponseFor(member));
    }
  }

  /** The protocol every member supports with the most members preferring it (Kafka's vote). */
  private selectProtocol(): string {
    const members = [...this.members.values()];
    const candidates = members[0]!.protocols.map((protocol) => protocol.name).filter((name) => members.every((member) => member.protocols.some((protocol) => protocol.name === name)));
    assert(candidates.length > 0, `group ${this.groupId}: members share a protocol`);
    const votes = new Map<string, number>(candidates.map((name) => [name, 0]));
    for (const member of members) {
      const choice = member.protocols.find((protocol) => votes.has(protocol.name))!.name;
      votes.set(choice, votes.get(choice)! + 1);
    }
    return [...votes.entries()].reduce((best, entry) => (entry[1] > best[1] ? entry : best))[0];
  }

  private joinResponseFor(member: Member): JoinResponse {
    const isLeader = member.memberId === this.leaderId;
    return {
      errorCode: 0,
      generationId: this.generation,
      protocolType: this.protocolTypeName,
      protocolName: this.protocolChosen,
      leader: this.leaderId,
      memberId: member.memberId,
      members: isLeader ? [...this.members.values()].map((other) => ({ memberId: other.memberId, groupInstanceId: other.groupInstanceId, metadata: this.metadataOf(other) })) : [],
    };
  }

  private metadataOf(member: Member): Buffer {
    return member.protocols.find((protocol) => protocol.name === this.protocolChosen)?.metadata ?? EMPTY;
  }

  // ---- SyncGroup --------------------------------------------------------------------------------

  sync(request: SyncRequest): Promise<SyncResponse> {
    if (this.current === 'Dead') return Promise.resolve(syncError('COORDINATOR_NOT_AVAILABLE'));
    const refusal = this.memberRefusal(request.memberId, request.groupInstanceId ?? null);
    if (refusal !== null || this.current === 'Empty') return Promise.resolve(syncError(refusal ?? 'UNKNOWN_MEMBER_ID'));
    const member = this.members.get(request.memberId)!;
    if (request.generationId !== this.generation) return Promise.resolve(syncError('ILLEGAL_GENERATION'));
    if ((request.protocolType !== null && request.protocolType !== this.protocolTypeName) || (request.protocolName !== null && request.protocolName !== this.protocolChosen)) {
      return Promise.resolve(syncError('INCONSISTENT_GROUP_PROTOCOL'));
    }
    this.touchSession(member);
    if (this.current === 'PreparingRebalance') return Promise.resolve(syncError('REBALANCE_IN_PROGRESS'));
    if (this.current === 'Stable') return Promise.resolve(this.syncResponseFor(member));
    member.awaitingSync?.(syncError('REBALANCE_IN_PROGRESS'));
    const synced = new Promise<SyncResponse>((resolve) => {
      member.awaitingSync = resolve;
    });
    if (member.memberId === this.leaderId) void this.completeSync(request.assignments);
    return synced;
  }

  private async completeSync(assignments: SyncRequest['assignments']): Promise<void> {
    const generation = this.generation;
    const given = new Map(assignments.map((entry) => [entry.memberId, entry.assignment]));
    for (const member of this.members.values()) member.assignment = given.get(member.memberId) ?? EMPTY;
    let stored = true;
    try {
      await this.storeGroup(this.record());
    } catch {
      stored = false;
    }
    // A rebalance (or the group's end) that came meanwhile has answered the waiting members already.
    if (this.current !== 'CompletingRebalance' || this.generation !== generation) return;
    if (!stored) {
      for (const member of this.members.values()) this.answerSync(member, syncError('COORDINATOR_NOT_AVAILABLE'));
      this.prepareRebalance('the assignment could not be stored');
      return;
    }
    this.current = 'Stable';
    for (const member of this.members.values()) this.answerSync(member, this.syncResponseFor(member));
  }

  private syncResponseFor(member: Member): SyncResponse {
    return { errorCode: 0, protocolType: this.protocolTypeName, protocolName: this.protocolChosen, assignment: member.assignment };
  }

  private answerSync(member: Member, response: SyncResponse): void {
    const answer = member.awaitingSync;
    member.awaitingSync = null;
    answer?.(response);
  }

  // ---- Heartbeat and LeaveGroup -----------------------------------------------------------------

  heartbeat(memberId: string, generationId: number, groupInstanceId: string | null = null): number {
    if (this.current === 'Dead') return errorCode('COORDINATOR_NOT_AVAILABLE');
    const refusal = this.memberRefusal(memberId, groupInstanceId);
    if (refusal !== null || this.current === 'Empty') return errorCode(refusal ?? 'UNKNOWN_MEMBER_ID');
    const member = this.members.get(memberId)!;
    if (generationId !== this.generation) return errorCode('ILLEGAL_GENERATION');
    this.touchSession(member);
    return this.current === 'PreparingRebalance' ? errorCode('REBALANCE_IN_PROGRESS') : 0;
  }

  /** LeaveGroup: each member's error code, in order. */
  leave(leaving: readonly LeavingMember[]): number[] {
    if (this.current === 'Dead') return leaving.map(() => errorCode('COORDINATOR_NOT_AVAILABLE'));
    return leaving.map(({ memberId, groupInstanceId }) => {
      if (memberId === '') {
        // By instance id alone: an admin's removal of a static member (removeMembersFromConsumerGroup),
        // the way to end one before its session does, as a static consumer sends no LeaveGroup on close.
        const holder = this.staticHolder(groupInstanceId);
        if (holder === undefined) return errorCode('UNKNOWN_MEMBER_ID');
        this.memberGone(holder, `static member ${groupInstanceId} removed`);
        return 0;
      }
      const pending = groupInstanceId === null ? this.pendingMembers.get(memberId) : undefined;
      if (pending !== undefined) {
        pending();
        this.pendingMembers.delete(memberId);
        this.maybeCompleteJoin();
        return 0;
      }
      const refusal = this.memberRefusal(memberId, groupInstanceId);
      if (refusal !== null) return errorCode(refusal);
      this.memberGone(this.members.get(memberId)!, `member ${memberId} left`);
      return 0;
    });
  }

  /** The group is deleted or no longer coordinated here: every waiting member hears it. */
  markDead(): void {
    this.cancelJoinTimer?.();
    for (const cancel of this.pendingMembers.values()) cancel();
    this.pendingMembers.clear();
    for (const member of [...this.members.values()]) {
      member.awaitingJoin?.(joinError('COORDINATOR_NOT_AVAILABLE', member.memberId));
      member.awaitingJoin = null;
      this.answerSync(member, syncError('COORDINATOR_NOT_AVAILABLE'));
      member.cancelSession();
    }
    this.members.clear();
    this.staticMembers.clear();
    this.current = 'Dead';
  }

  private memberGone(member: Member, reason: string): void {
    member.awaitingJoin?.(joinError('UNKNOWN_MEMBER_ID', member.memberId));
    member.awaitingJoin = null;
    this.answerSync(member, syncError('UNKNOWN_MEMBER_ID'));
    this.removeMember(member);
    if (this.current === 'Stable' || this.current === 'CompletingRebalance') this.prepareRebalance(reason);
    else if (this.current === 'PreparingRebalance') this.maybeCompleteJoin();
  }

  private removeMember(member: Member): void {
    member.cancelSession();
    this.members.delete(member.memberId);
    if (member.groupInstanceId !== null) this.staticMembers.delete(member.groupInstanceId);
    if (this.leaderId === member.memberId) this.leaderId = '';
  }

  /**
   * Restarts the member's session. A member waiting for a join or sync answer is alive by
   * definition (Kafka's shouldKeepAlive): its session is checked again when the wait ends.
   */
  private touchSession(member: Member): void {
    member.cancelSession();
    member.cancelSession = this.clock.schedule(member.sessionTimeoutMs, () => {
      if (this.members.get(member.memberId) !== member) return;
      if (member.awaitingJoin !== null || member.awaitingSync !== null) {
        this.touchSession(member);
        return;
      }
      this.memberGone(member, `member ${member.memberId}'s session expired`);
    });
  }

  private record(): GroupRecord {
    return {
      groupId: this.groupId,
      generationId: this.generation,
      protocolType: this.protocolTypeName,
      protocolName: this.protocolChosen,
      leader: this.leaderId,
      members: [...this.members.values()].map((member) => this.memberDescription(member)),
    };
  }

  private memberDescription(member: Member): MemberDescription {
    return {
      memberId: member.memberId,
      groupInstanceId: member.groupInstanceId,
      clientId: member.clientId,
      clientHost: member.clientHost,
      metadata: this.metadataOf(member),
      assignment: member.assignment,
      sessionTimeoutMs: member.sessionTimeoutMs,
      rebalanceTimeoutMs: member.rebalanceTimeoutMs,
    };
  }
}
