// QuorumController: ControllerLogic running on a RaftHost (KRaft's QuorumController). Every member
// applies the committed metadata log to its MetadataImage (MetadataStateMachine); the Raft leader is
// the active controller, with the discipline the simulator proved (ControllerWorkload):
//   - it becomes active only once it has applied its whole log, which includes the empty entry of
//     its term, so its image holds every entry of earlier terms that can still commit;
//   - it then decides on the image of its whole log (applied + its own pending batches), each
//     decision's records proposed as one entry, so a batch that commits is applied to exactly the
//     image it was computed from;
//   - when Raft drops a proposal (leadership lost, replaced, timed out) or the term changes, it
//     resigns: sessions and the pending image are dropped, and it starts over (fresh sessions).
// Broker sessions live in memory only; a controller that becomes active starts them fresh.

import { RaftError } from '@runnel/raft';
import { RaftHost, type RaftHostOptions } from '@runnel/raft/host';
import type { PreferredElectionResult } from '../balancer.js';
import {
  ControllerLogic,
  type AlterPartitionRequest,
  type AlterPartitionResponse,
  type AlterPartitionReassignmentsRequest,
  type AlterPartitionReassignmentsResponse,
  type AutoRebalanceDecision,
  type BrokerDecommissionResponse,
  type RebalanceReplicasRequest,
  type RebalanceReplicasResponse,
  type ListPartitionReassignmentsResponse,
  type BrokerHeartbeatRequest,
  type BrokerHeartbeatResponse,
  type ControllerConfig,
  type ControllerResult,
  type CreatePartitionsRequest,
  type CreatePartitionsResult,
  type CreateTopicResult,
  type CreateTopicsRequest,
  type DeleteTopicResult,
  type DeleteTopicsRequest,
  type ElectLeadersRequest,
  type ElectLeadersResponse,
  type FenceExpiredResponse,
  type RegisterBrokerRequest,
  type RegisterBrokerResponse,
} from '../controllerLogic.js';
import type { IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse } from '../dynamicConfig.js';
import { CONTROLLER_ERRORS } from '../errors.js';
import type { MetadataImage } from '../image.js';
import { SeededRandom, type Random } from '../random.js';
import { BrokerSessions, DEFAULT_BROKER_SESSION_TIMEOUT_MS } from '../sessions.js';
import { MetadataStateMachine, encodeRecordBatch } from './stateMachine.js';

export const DEFAULT_SESSION_CHECK_INTERVAL_MS = 1000;
/** leader.imbalance.check.interval.seconds (300) */
export const DEFAULT_LEADER_IMBALANCE_CHECK_INTERVAL_MS = 300_000;

/** Time and timers; `systemClock` (monotonic `performance.now()`, real timers) by default. */
export interface QuorumClock {
  now(): number;
  setInterval(callback: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

export const systemClock: QuorumClock = {
  now: () => performance.now(),
  setInterval: (callback, ms) => setInterval(callback, ms),
  clearInterval: (handle) => clearInterval(handle as NodeJS.Timeout),
};

export interface QuorumControllerOptions {
  /** The Raft member this controller runs on (its state machine is the controller's). */
  readonly raft: Omit<RaftHostOptions, 'stateMachine'>;
  /** broker.session.timeout.ms (default 9000). */
  readonly sessionTimeoutMs?: number;
  /** How often the active controller fences brokers whose session expired (default 1000). */
  readonly sessionCheckIntervalMs?: number;
  /** auto.leader.rebalance.enable (default true). */
  readonly autoLeaderRebalanceEnable?: boolean;
  /** leader.imbalance.check.interval (default 300000 ms). */
  readonly leaderImbalanceCheckIntervalMs?: number;
  /** How often to look whether this node became or stopped being the active controller (default: the Raft tick). */
  readonly activationCheckIntervalMs?: number;
  readonly config?: Partial<ControllerConfig>;
  /** Placement and topic ids; seeded from the id and time by default. */
  readonly random?: Random;
  readonly clock?: QuorumClock;
}

/** NOT_CONTROLLER (41): this node is not the active controller; `leaderId` is the Raft leader it knows (-1 if none). */
export class NotControllerError extends Error {
  readonly errorCode = CONTROLLER_ERRORS.NOT_CONTROLLER.code;
  readonly errorName = 'NOT_CONTROLLER';

  /** The message without the code in front (a response's error_message). */
  readonly detail: string;

  constructor(
    readonly leaderId: number,
    detail: string,
  ) {
    const withLeader = `${detail} (leader ${leaderId === -1 ? 'unknown' : leaderId})`;
    super(`NOT_CONTROLLER: ${withLeader}`);
    this.detail = withLeader;
    this.name = 'NotControllerError';
  }
}

/** The metadata offset after which everything a request changed is applied (the broker waits for it). */
export interface MetadataOffset {
  readonly metadataOffset: number;
}

function withOffset<T extends object>(decided: { readonly response: T; readonly image: MetadataImage }): T & MetadataOffset {
  return { ...decided.response, metadataOffset: decided.image.highestOffset };
}

export interface QuorumMemberDescription {
  readonly id: number;
  readonly address: string;
  /** The highest Raft index known to be on it (-1 unknown): its log end. */
  readonly matchIndex: number;
  /** Entries behind the leader's last index (-1 unknown). */
  readonly lag: number;
  /** Milliseconds since the leader last heard from it (-1 never; 0 for the leader). */
  readonly lastContactMs: number;
}

export interface QuorumDescription {
  readonly leaderId: number;
  readonly term: number;
  readonly commitIndex: number;
  readonly voters: readonly QuorumMemberDescription[];
  /** Members that receive the log without a vote (a voter being added, catching up). */
  readonly learners: readonly QuorumMemberDescription[];
}

export interface RegisterBrokerResult extends RegisterBrokerResponse {
  /** The broker epoch (the offset of its RegisterBroker record); -1 on an error. */
  readonly brokerEpoch: number;
}

interface Activation {
  readonly term: number;
  readonly sessions: BrokerSessions;
  readonly logic: ControllerLogic;
  /** The image of the whole log: applied + this controller's own pending batches. */
  logImage: MetadataImage;
  /** Resolves with the applied image once the last batch proposed in this activation is applied. */
  lastProposal: Promise<MetadataImage>;
  /** Brokers that joined (first registration) and may still need their share of replicas (auto.replica.rebalance.enable). */
  readonly joinedBrokers: Set<number>;
}

/**
 * Raft reserves member id 0 for "none" (no leader, no vote), while Kafka numbers brokers from 0
 * (its stock server.properties says broker.id=0). A node's Raft member id is its node id, except
 * node 0's: 2^31, above every node id and still within Raft's uint32 ids. Members 1 and up keep
 * the ids their logs on disk already hold.
 */
const NODE_ZERO_MEMBER_ID = 2 ** 31;

export function raftMemberId(nodeId: number): number {
  return nodeId === 0 ? NODE_ZERO_MEMBER_ID : nodeId;
}

export function nodeIdOfMember(memberId: number): number {
  return memberId === NODE_ZERO_MEMBER_ID ? 0 : memberId;
}

/**
 * A new active controller does not know which brokers joined under its predecessor and still wait
 * for their share: it takes every live broker that is not decommissioned and holds no replica while
 * partitions exist (a rebalance that finds nothing to move costs one plan).
 */
function joinedBeforeActivation(image: MetadataImage): Set<number> {
  const joined = new Set<number>();
  if (image.partitionCount() === 0) return joined;
  const holding = new Set<number>();
  for (const { state } of image.allPartitions()) for (const id of state.replicas) holding.add(id);
  for (const broker of image.brokers()) if (!broker.fenced && !broker.decommissioned && !holding.has(broker.id)) joined.add(broker.id);
  return joined;
}

export class QuorumController {
  readonly stateMachine = new MetadataStateMachine();
  readonly raft: RaftHost;
  private readonly clock: QuorumClock;
  private readonly random: Random;
  private readonly sessionTimeoutMs: number;
  private active: Activation | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private timers: unknown[] = [];
  private running = false;
  /** Number of times this node became the active controller. */
  activations = 0;

  constructor(private readonly options: QuorumControllerOptions) {
    const voters = new Map([...options.raft.voters].map(([nodeId, address]) => [raftMemberId(nodeId), address]));
    this.raft = new RaftHost({ ...options.raft, id: raftMemberId(options.raft.id), voters, stateMachine: this.stateMachine });
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? new SeededRandom((options.raft.id * 2_654_435_761 + Date.now()) >>> 0);
    this.sessionTimeoutMs = options.sessionTimeoutMs ?? DEFAULT_BROKER_SESSION_TIMEOUT_MS;
  }

  async start(): Promise<void> {
    if (this.running) throw new Error('QuorumController already started');
    await this.raft.start();
    this.running = true;
    const options = this.options;
    this.timers.push(this.clock.setInterval(() => this.refresh(), options.activationCheckIntervalMs ?? options.raft.tickMs ?? 100));
    this.timers.push(
      this.clock.setInterval(() => {
        if (!this.refresh()) return;
        this.background(() => this.fenceExpiredBrokers());
        this.background(() => this.maintainReplicas());
      }, options.sessionCheckIntervalMs ?? DEFAULT_SESSION_CHECK_INTERVAL_MS),
    );
    if (options.autoLeaderRebalanceEnable ?? true) {
      this.timers.push(
        this.clock.setInterval(() => {
          if (this.refresh()) this.background(() => this.decide((logic, image) => logic.preferredLeaderElection(image)));
        }, options.leaderImbalanceCheckIntervalMs ?? DEFAULT_LEADER_IMBALANCE_CHECK_INTERVAL_MS),
      );
    }
  }

  /**
   * Stops this member. Graceful (the default): an active controller first hands Raft leadership to
   * the most caught-up follower and waits (up to two election timeouts) for it to go, so the next
   * controller takes over without waiting for an election timeout.
   */
  async stop(options: { readonly graceful?: boolean } = {}): Promise<void> {
    if (!this.running) return;
    this.running = false;
    for (const timer of this.timers.splice(0)) this.clock.clearInterval(timer);
    if (options.graceful ?? true) await this.handOver();
    this.resign();
    await this.raft.stop();
  }

  /** Stop without grace: no leadership transfer, in-flight proposals fail. */
  async kill(): Promise<void> {
    await this.stop({ graceful: false });
  }

  /** Whether this node is the active controller (checked now). */
  get isActive(): boolean {
    return this.refresh();
  }

  /** The applied (committed) image. */
  get image(): MetadataImage {
    return this.stateMachine.image;
  }

  /** The Raft leader this node knows, -1 if none. */
  get leaderId(): number {
    if (!this.running) return -1;
    const leader = this.raft.status().leader;
    return leader > 0 ? nodeIdOfMember(leader) : -1;
  }

  get id(): number {
    return this.options.raft.id;
  }

  // --- requests --------------------------------------------------------------------------------

  async registerBroker(request: RegisterBrokerRequest): Promise<RegisterBrokerResult> {
    const { response, image } = await this.decide((logic, image, now) => {
      const result = logic.registerBroker(image, request, now);
      if (image.broker(request.brokerId) === undefined && result.records.length > 0) this.active!.joinedBrokers.add(request.brokerId);
      return result;
    });
    const brokerEpoch = response.errorCode === 0 ? (image.broker(request.brokerId)?.epoch ?? -1) : -1;
    return { ...response, brokerEpoch };
  }

  async brokerHeartbeat(request: BrokerHeartbeatRequest): Promise<BrokerHeartbeatResponse & MetadataOffset> {
    return withOffset(await this.decide((logic, image, now) => logic.brokerHeartbeat(image, request, now)));
  }

  async controlledShutdown(request: Omit<BrokerHeartbeatRequest, 'wantShutDown' | 'wantFence'>): Promise<BrokerHeartbeatResponse & MetadataOffset> {
    return withOffset(await this.decide((logic, image, now) => logic.controlledShutdown(image, request, now)));
  }

  async createTopics(request: CreateTopicsRequest): Promise<{ readonly topics: readonly CreateTopicResult[] } & MetadataOffset> {
    return withOffset(await this.decide((logic, image) => logic.createTopics(image, request)));
  }

  /** Sets or deletes dynamic broker configs (per broker or the cluster default). */
  async incrementalAlterConfigs(request: IncrementalAlterConfigsRequest): Promise<IncrementalAlterConfigsResponse & MetadataOffset> {
    return withOffset(await this.decide((logic, image) => logic.incrementalAlterConfigs(image, request)));
  }

  async createPartitions(request: CreatePartitionsRequest): Promise<{ readonly topics: readonly CreatePartitionsResult[] } & MetadataOffset> {
    return withOffset(await this.decide((logic, image) => logic.createPartitions(image, request)));
  }

  async deleteTopics(request: DeleteTopicsRequest): Promise<{ readonly topics: readonly DeleteTopicResult[] } & MetadataOffset> {
    return withOffset(await this.decide((logic, image) => logic.deleteTopics(image, request)));
  }

  async alterPartition(request: AlterPartitionRequest): Promise<AlterPartitionResponse & MetadataOffset> {
    return withOffset(await this.decide((logic, image) => logic.alterPartition(image, request)));
  }

  /** "Rebalance now" (imbalancePercentage 0 by default): returns what moved and what could not. */
  async preferredLeaderElection(options: { readonly imbalancePercentage?: number } = {}): Promise<PreferredElectionResult & MetadataOffset> {
    const imbalancePercentage = options.imbalancePercentage ?? 0;
    return withOffset(await this.decide((logic, image) => logic.preferredLeaderElection(image, { imbalancePercentage })));
  }

  /** Kafka's ElectLeaders: a preferred or unclean election of the partitions named (null: all). */
  async electLeaders(request: ElectLeadersRequest): Promise<ElectLeadersResponse & MetadataOffset> {
    return withOffset(await this.decide((logic, image) => logic.electLeaders(image, request)));
  }

  /** Starts, replaces or cancels partition moves (KIP-455). */
  async alterPartitionReassignments(request: AlterPartitionReassignmentsRequest): Promise<AlterPartitionReassignmentsResponse & MetadataOffset> {
    return withOffset(await this.decide((logic, image) => logic.alterPartitionReassignments(image, request)));
  }

  /** The moving partitions on the log image (after every decision queued before this one). */
  async listPartitionReassignments(partitions?: readonly { readonly topic: string; readonly partition: number }[]): Promise<ListPartitionReassignmentsResponse & MetadataOffset> {
    return withOffset(await this.decide((logic, image) => ({ records: [], response: logic.listPartitionReassignments(image, partitions) })));
  }

  /** `runnel cluster rebalance --replicas`: plans on the log image and starts the moves (none on a dry run). */
  async rebalanceReplicas(request: RebalanceReplicasRequest = {}): Promise<RebalanceReplicasResponse & MetadataOffset> {
    return withOffset(await this.decide((logic, image) => logic.rebalanceReplicas(image, request)));
  }

  /** `runnel broker decommission N` / `recommission N`. */
  async decommissionBroker(brokerId: number, decommission: boolean): Promise<BrokerDecommissionResponse & MetadataOffset> {
    return withOffset(await this.decide((logic, image) => (decommission ? logic.decommissionBroker(image, brokerId) : logic.recommissionBroker(image, brokerId))));
  }

  /**
   * What the session-check timer runs after fencing: starts the moves decommissions still need, and
   * (auto.replica.rebalance.enable) the rebalance for brokers that joined. Each runs only when there
   * is something to look at, so an idle cluster's queue stays empty.
   */
  async maintainReplicas(): Promise<AutoRebalanceDecision | null> {
    const activation = this.active;
    if (activation === null) return null;
    if (activation.logImage.brokers().some((broker) => broker.decommissioned)) {
      await this.decide((logic, image) => logic.continueDecommissions(image));
    }
    if (activation.joinedBrokers.size === 0 || this.active !== activation) return null;
    const { response } = await this.decide((logic, image) => logic.autoRebalanceReplicas(image, activation.joinedBrokers));
    if (response.outcome !== 'waiting') {
      if (response.outcome === 'started') this.options.raft.logger.info({ brokers: [...activation.joinedBrokers], moves: response.rebalance?.moves.length }, 'auto.replica.rebalance: moving replicas onto joined brokers');
      activation.joinedBrokers.clear();
    }
    return response;
  }

  /** The quorum as this active controller sees it (NOT_CONTROLLER elsewhere). */
  describeQuorum(): QuorumDescription {
    if (!this.refresh()) throw this.notController();
    const status = this.raft.status();
    const members = (this.raft.membership().members ?? []).map((member) => ({
      id: nodeIdOfMember(member.id),
      role: member.role,
      address: member.address,
      matchIndex: member.matchIndex,
      lag: member.lag,
      lastContactMs: member.lastContactMs,
    })).sort((a, b) => a.id - b.id);
    const pick = (role: 'voter' | 'learner') => members.filter((member) => member.role === role).map(({ role: _role, ...member }) => member);
    return { leaderId: nodeIdOfMember(status.id), term: status.term, commitIndex: status.commit, voters: pick('voter'), learners: pick('learner') };
  }

  /** The controller address of the Raft leader this member knows ('' unknown): where a caller told NOT_CONTROLLER goes. */
  get leaderAddress(): string {
    const leader = this.running ? this.raft.status().leader : 0;
    return leader > 0 ? (this.raft.membership().addresses.get(leader) ?? '') : '';
  }

  /**
   * Adds node `nodeId`, whose controller listens at `address`, to the quorum: a learner first,
   * promoted to voter once it has caught up (RaftHost.addVoter). Active controller only.
   */
  async addVoter(nodeId: number, address: string, options: { readonly catchUpTimeoutMs?: number; readonly onProgress?: (line: string) => void } = {}): Promise<void> {
    if (!this.refresh()) throw this.notController();
    await this.raft.addVoter(raftMemberId(nodeId), address, options);
  }

  /** Removes node `nodeId` from the quorum (RaftHost.removeVoter). Active controller only. */
  async removeVoter(nodeId: number): Promise<void> {
    if (!this.refresh()) throw this.notController();
    await this.raft.removeVoter(raftMemberId(nodeId));
  }

  /** What the session-check timer runs: fences every broker whose session expired. */
  async fenceExpiredBrokers(): Promise<FenceExpiredResponse> {
    return (await this.decide((logic, image, now) => logic.fenceExpiredBrokers(image, now))).response;
  }

  // --- the active controller ------------------------------------------------------------------

  /**
   * Runs one decision in the queue: on the log image, its records proposed as one entry. Resolves
   * once that entry (or, with no records, the last entry this controller proposed) is applied here.
   */
  private async decide<T>(
    decision: (logic: ControllerLogic, image: MetadataImage, nowMs: number) => ControllerResult<T>,
  ): Promise<{ response: T; image: MetadataImage }> {
    const queued = this.queue.then(() => this.propose(decision));
    this.queue = queued.catch(() => undefined);
    const { response, applied, activation } = await queued;
    try {
      const image = await applied;
      // A decision with no records waits for this controller's last proposal, whose image may be
      // older than what is applied by now; callers get the newer one (offsets only grow).
      const current = this.stateMachine.image;
      return { response, image: current.highestOffset > image.highestOffset ? current : image };
    } catch (error) {
      if (this.active === activation) this.resign();
      throw new NotControllerError(this.leaderId, `the metadata entry was not applied: ${(error as Error).message}`);
    }
  }

  private propose<T>(decision: (logic: ControllerLogic, image: MetadataImage, nowMs: number) => ControllerResult<T>): {
    response: T;
    applied: Promise<MetadataImage>;
    activation: Activation;
  } {
    if (!this.refresh()) throw this.notController();
    const activation = this.active!;
    const result = decision(activation.logic, activation.logImage, this.clock.now());
    if (result.records.length === 0) return { response: result.response, applied: activation.lastProposal, activation };
    const next = activation.logImage.applyAll(result.records, activation.logImage.highestOffset + 1);
    let applied: Promise<MetadataImage>;
    try {
      applied = this.raft.propose(encodeRecordBatch(result.records)) as Promise<MetadataImage>;
    } catch (error) {
      this.resign();
      throw new NotControllerError(this.leaderId, `the metadata entry was dropped: ${(error as Error).message}`);
    }
    activation.logImage = next;
    activation.lastProposal = applied;
    // A dropped entry makes this controller start over (fresh sessions, its log image rebuilt).
    applied.catch(() => {
      if (this.active === activation) this.resign();
    });
    return { response: result.response, applied, activation };
  }

  /**
   * Becomes active (Raft leader, whole log applied incl. this term's first entry) or resigns (not
   * leader, or a new term). Returns whether this node is the active controller.
   */
  private refresh(): boolean {
    if (!this.running) return false;
    const status = this.raft.status();
    if (this.active !== null && (status.role !== 'leader' || status.term !== this.active.term)) this.resign();
    if (this.active === null && status.role === 'leader' && status.leadTransferee === 0 && this.raft.appliedIndex >= status.lastIndex) {
      const sessions = new BrokerSessions(this.sessionTimeoutMs);
      const image = this.stateMachine.image;
      this.active = {
        term: status.term,
        sessions,
        logic: new ControllerLogic({ sessions, random: this.random, config: this.options.config }),
        logImage: image,
        lastProposal: Promise.resolve(image),
        joinedBrokers: joinedBeforeActivation(image),
      };
      this.activations++;
      this.options.raft.logger.info({ term: status.term, offset: image.highestOffset }, 'active controller');
    }
    return this.active !== null;
  }

  private resign(): void {
    if (this.active === null) return;
    this.options.raft.logger.info({ term: this.active.term }, 'no longer the active controller');
    this.active = null;
  }

  private notController(): NotControllerError {
    if (!this.running) return new NotControllerError(-1, 'this controller is stopped');
    const status = this.raft.status();
    const detail = status.role === 'leader' ? 'the Raft leader has not applied its log up to its term yet' : `this node is a ${status.role}`;
    return new NotControllerError(this.leaderId, detail);
  }

  private background(task: () => Promise<unknown>): void {
    task().catch((error: unknown) => {
      if (!(error instanceof NotControllerError) && !(error instanceof RaftError)) {
        this.options.raft.logger.error({ err: error }, 'controller background task failed');
      }
    });
  }

  private async handOver(): Promise<void> {
    const status = this.raft.status();
    if (status.role !== 'leader' || status.progress === undefined) return;
    let best = -1;
    let bestMatch = -1;
    for (const [id, progress] of status.progress) {
      if (id !== status.id && progress.match > bestMatch) {
        best = id;
        bestMatch = progress.match;
      }
    }
    if (best === -1) return;
    try {
      this.raft.transferLeadership(best);
    } catch {
      return;
    }
    const tickMs = this.options.raft.tickMs ?? 100;
    const deadline = Date.now() + 2 * (this.options.raft.electionTicks ?? 10) * tickMs;
    while (Date.now() < deadline && this.raft.status().role === 'leader') await new Promise((resolve) => setTimeout(resolve, tickMs / 2));
  }
}
