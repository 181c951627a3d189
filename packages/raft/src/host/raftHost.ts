// The I/O shell around RawNode: a tick timer, LevelDB storage, the gRPC transport and a state
// machine. It keeps the core's contract: a Ready's snapshot, entries and hard state are durable
// (one fsynced batch) before its messages leave, committed entries are applied in order, and
// only then is advance() called. One Ready is handled at a time.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '@runnel/common';
import { decodeConfChange } from '../confChange.js';
import { quorumSize } from '../quorum.js';
import { RawNode, type Ready, type Status } from '../rawNode.js';
import { Xoshiro128 } from '../random.js';
import { RaftError, RaftInvariantError, type ConfChange, type ConfState, type Entry } from '../types.js';
import { LevelRaftStorage } from './levelStorage.js';
import { addressProblem, decodeAddressBook, encodeAddressBook, unwrapSnapshot, wrapSnapshot, type AddressBook } from './membership.js';
import { RaftTransport } from './transport.js';

/** What a Raft group replicates. `apply` must be deterministic: every member applies the same entries. */
export interface StateMachine {
  apply(data: Uint8Array, index: number): unknown;
  snapshot(): Uint8Array;
  restore(data: Uint8Array): void;
}

export interface RaftHostOptions {
  id: number;
  /**
   * Bootstrap only: id → host:port of the group's voters, as configured. A brand-new group whose
   * members all list the same voters starts with them. A node whose id is not listed joins a
   * running group: it starts with no configuration (it never campaigns) and reaches the group
   * through these addresses until the leader adds it (`addVoter`). Once a node has a log, its
   * membership comes from its log and snapshot, and each member's address from the log too (see
   * membership.ts); a configured address is used only for a member the log names none for.
   */
  voters: ReadonlyMap<number, string>;
  /** Names the group on the wire. */
  group: string;
  dataDir: string;
  listenHost: string;
  listenPort: number;
  stateMachine: StateMachine;
  logger: Logger;
  tickMs?: number;
  electionTicks?: number;
  heartbeatTicks?: number;
  /** fsync each Ready's writes (default true). */
  sync?: boolean;
  /**
   * Start a new member with `voters` when `dataDir` holds no Raft log (default true). False when
   * the caller knows this member had a log (it ran before): starting over with none could vote
   * twice in a term, so `start()` fails with RaftLogMissingError instead.
   */
  createIfEmpty?: boolean;
  /** Snapshot the state machine and compact the log after this many applied entries. */
  snapshotEveryEntries?: number;
  /** Entries kept behind a snapshot for followers that are only a little behind. */
  retainEntries?: number;
  proposalTimeoutMs?: number;
  /** Seed of the core's random source (election timeouts); defaults to one derived from the id and time. */
  seed?: number;
  /** More gRPC services on the Raft listener (added before it binds). */
  services?: (server: grpc.Server) => void;
  /**
   * Called once when the node stops for good: a broken invariant (a bug) or a failed write, after
   * which its state can no longer be trusted. It stays stopped; the process should exit non-zero
   * rather than run on without it.
   */
  onFatal?: (error: Error) => void;
  /**
   * Hears, on the leader, how long each proposal took from its append to the leader's log to its
   * commit (observed when it is applied here, in the same round). For a commit latency histogram;
   * the host itself keeps no metrics.
   */
  onCommitLatency?: (seconds: number) => void;
}

interface PendingProposal {
  term: number;
  /** performance.now() when the entry was appended to this leader's log. */
  proposedMs: number;
  resolve: (result: unknown) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/** One member as the leader sees it. */
export interface MemberStatus {
  readonly id: number;
  readonly role: 'voter' | 'learner';
  /** '' when no address is known here. */
  readonly address: string;
  /** Highest log index known to be on the member (the leader's own last index for itself); -1 unknown. */
  readonly matchIndex: number;
  /** How far its log is behind the leader's last index; -1 unknown. */
  readonly lag: number;
  /** Milliseconds since this node last heard from it; -1 never (0 for itself). */
  readonly lastContactMs: number;
}

export interface MembershipStatus {
  readonly confState: ConfState;
  /** Each member's address as this node knows it (the newest config entry in its log wins). */
  readonly addresses: AddressBook;
  /** Leader only: each voter and learner with its progress. */
  readonly members?: readonly MemberStatus[];
  /** The change this node is driving, if any (one at a time). */
  readonly pendingChange?: string;
}

export interface AddVoterOptions {
  /** How long the new member has, as a learner, to catch up with the leader's commit index. */
  catchUpTimeoutMs?: number;
  /** Progress lines for an operator (learner added, catching up, promoted). */
  onProgress?: (line: string) => void;
}

interface PendingRead {
  resolve: () => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
  index: number | undefined;
}

/** Proposals in flight on one node before new ones are refused. */
const PENDING_PROPOSALS_MAX = 100_000;

/**
 * Proposals waiting for their entry, by (index, term). A leader re-elected after its entries were
 * replaced reuses their indexes, so an index alone does not name a proposal: the timer of an old
 * one must never remove a new one at the same index, and the entry committed at (index, term)
 * resolves only the proposal made at that (index, term).
 */
class PendingProposals {
  private readonly byIndex = new Map<number, Map<number, PendingProposal>>();
  size = 0;

  add(index: number, proposal: PendingProposal): void {
    let byTerm = this.byIndex.get(index);
    if (byTerm === undefined) this.byIndex.set(index, (byTerm = new Map()));
    byTerm.set(proposal.term, proposal);
    this.size++;
  }

  /** Removes the proposal made at (index, term); false if it is no longer pending. */
  delete(index: number, term: number): boolean {
    const byTerm = this.byIndex.get(index);
    if (byTerm === undefined || !byTerm.delete(term)) return false;
    if (byTerm.size === 0) this.byIndex.delete(index);
    this.size--;
    return true;
  }

  /** Removes and returns every proposal made at `index`, in any term. */
  takeAt(index: number): PendingProposal[] {
    const byTerm = this.byIndex.get(index);
    if (byTerm === undefined) return [];
    this.byIndex.delete(index);
    this.size -= byTerm.size;
    return [...byTerm.values()];
  }

  takeAll(): PendingProposal[] {
    const all = [...this.byIndex.values()].flatMap((byTerm) => [...byTerm.values()]);
    this.byIndex.clear();
    this.size = 0;
    return all;
  }
}

export class RaftHost {
  private node!: RawNode;
  private storage!: LevelRaftStorage;
  private transport!: RaftTransport;
  private tickTimer: NodeJS.Timeout | undefined;
  private processing = false;
  private processAgain = false;
  private stopped = false;
  private applied = 0;
  private readonly proposals = new PendingProposals();
  private readonly reads = new Map<string, PendingRead>();
  /**
   * Names this run of the node in its ReadIndex contexts. The sequence starts at 0 on every
   * start, so without it an answer the leader sent to an earlier run (still queued, or delayed)
   * could complete a new read with an index from before the read began: a stale read.
   */
  private incarnation = '';
  private readSequence = 0;
  private failure: Error | undefined;
  /**
   * Every member address this node knows, for routing: the configured ones, overlaid by the
   * newest snapshot's and then by each config entry persisted here (so they win over a stale
   * config file). Addresses are only ever added or replaced: a stale extra one is harmless.
   */
  private readonly addresses = new Map<number, string>();
  /** The addresses in force at the applied index, for snapshots; undefined until one is known from the log. */
  private appliedAddresses: AddressBook | undefined;
  /** When this node last heard from each peer (Date.now()). */
  private readonly lastContact = new Map<number, number>();
  /** The membership change this node is driving (one at a time); undefined if none. */
  private membershipChange: string | undefined;
  /** Bound Raft port (the configured one, or the one the OS chose for port 0). */
  port = 0;

  constructor(private readonly options: RaftHostOptions) {}

  async start(): Promise<void> {
    const options = this.options;
    for (const [id, address] of options.voters) {
      const problem = addressProblem(address);
      if (problem !== undefined) throw new Error(`raft voter ${id}: ${problem}`);
      this.addresses.set(id, address);
    }
    // Not among the configured voters: a new member joining a running group, with no configuration yet.
    const voters = options.voters.has(options.id) ? [...options.voters.keys()].sort((a, b) => a - b) : [];
    this.incarnation = randomBytes(8).toString('hex');
    this.storage = await LevelRaftStorage.open(join(options.dataDir, 'raft'), {
      nodeId: options.id,
      bootstrap: { voters, learners: [] },
      sync: options.sync,
      createIfEmpty: options.createIfEmpty ?? true,
    });
    const snapshot = this.storage.snapshot();
    if (snapshot.metadata.index > 0) this.restoreSnapshot(snapshot.data);
    this.applied = snapshot.metadata.index;
    // Config entries after the snapshot name the newest addresses (applied or not: they are routes).
    const logged = this.storage.entries(this.storage.firstIndex(), this.storage.lastIndex() + 1, Number.MAX_SAFE_INTEGER);
    this.learnAddresses(logged.filter((entry) => entry.index > snapshot.metadata.index));
    this.node = new RawNode({
      id: options.id,
      voters,
      electionTicks: options.electionTicks ?? 10,
      heartbeatTicks: options.heartbeatTicks ?? 1,
      storage: this.storage,
      random: new Xoshiro128(options.seed ?? (options.id * 2_654_435_761 + Date.now()) >>> 0),
    });
    this.transport = new RaftTransport({
      nodeId: options.id,
      group: options.group,
      host: options.listenHost,
      port: options.listenPort,
      peers: this.addresses,
      logger: options.logger,
      ...(options.services === undefined ? {} : { services: options.services }),
      onMessage: (message) => {
        if (this.stopped || this.failure !== undefined) return;
        this.lastContact.set(message.from, Date.now());
        this.input(() => this.node.step(message));
      },
    });
    this.port = await this.transport.start();
    this.tickTimer = setInterval(() => this.input(() => this.node.tick()), options.tickMs ?? 100);
  }

  status(): Status {
    return this.node.status();
  }

  get appliedIndex(): number {
    return this.applied;
  }

  /** Whether start() found no Raft log and started a new one. */
  get createdLog(): boolean {
    return this.storage.created;
  }

  /**
   * Replicates `data`; resolves with the state machine's result once it is committed and applied
   * here. Fails at once with RaftError ProposalDropped when this node is not the leader.
   */
  propose(data: Uint8Array): Promise<unknown> {
    return this.proposeEntry(() => this.node.propose(data));
  }

  /** Appends through `append` (which returns the entry's index) and resolves once the entry is applied here. */
  private proposeEntry(append: () => number): Promise<unknown> {
    this.checkRunning();
    if (this.proposals.size >= PENDING_PROPOSALS_MAX) return Promise.reject(new RaftError('ProposalDropped', `${PENDING_PROPOSALS_MAX} proposals are already in flight`));
    let index: number;
    try {
      index = this.callCore(append);
    } catch (error) {
      return Promise.reject(error);
    }
    const term = this.node.status().term;
    const proposedMs = performance.now();
    this.kick();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (!this.proposals.delete(index, term)) return;
        reject(new RaftError('ProposalDropped', `entry ${index} was not applied within ${this.options.proposalTimeoutMs ?? 10_000} ms (leadership may have moved); its outcome is unknown`));
      }, this.options.proposalTimeoutMs ?? 10_000);
      this.proposals.add(index, { term, proposedMs, resolve, reject, timer });
    });
  }

  /** Resolves when the state machine here reflects every write committed before the call (ReadIndex). */
  linearizableRead(): Promise<void> {
    this.checkRunning();
    const context = `${this.options.id}:${this.incarnation}:${++this.readSequence}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.reads.delete(context);
        reject(new RaftError('ReadIndexDropped', 'no quorum confirmed leadership in time'));
      }, this.options.proposalTimeoutMs ?? 10_000);
      this.reads.set(context, { resolve, reject, timer, index: undefined });
      try {
        this.callCore(() => this.node.readIndex(Buffer.from(context)));
      } catch (error) {
        clearTimeout(timer);
        this.reads.delete(context);
        reject(error as Error);
        return;
      }
      this.kick();
    });
  }

  transferLeadership(to: number): void {
    this.checkRunning();
    this.callCore(() => this.node.transferLeadership(to));
    this.kick();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.tickTimer);
    while (this.processing) await new Promise((resolve) => setTimeout(resolve, 5));
    const stopped = new RaftError('ProposalDropped', 'the node is stopping');
    for (const proposal of this.proposals.takeAll()) {
      clearTimeout(proposal.timer);
      proposal.reject(stopped);
    }
    for (const read of this.reads.values()) {
      clearTimeout(read.timer);
      read.reject(stopped);
    }
    this.reads.clear();
    await this.transport?.stop();
    await this.storage?.close();
  }

  private checkRunning(): void {
    if (this.failure !== undefined) throw new Error(`raft node ${this.options.id} has failed: ${this.failure.message}`);
    if (this.stopped) throw new RaftError('ProposalDropped', 'the node is stopped');
  }

  /** A tick or a peer's message. Neither may throw, not even a RaftError: any error is a bug. */
  private input(call: () => void): void {
    try {
      call();
    } catch (error) {
      this.fail(error as Error);
      return;
    }
    this.kick();
  }

  /**
   * Calls into the core. A RaftError is an operating error, thrown on to the caller; anything else
   * is a bug (a RaftInvariantError names the invariant) and stops this node before it is thrown on.
   */
  private callCore<T>(call: () => T): T {
    try {
      return call();
    } catch (error) {
      if (!(error instanceof RaftError)) this.fail(error as Error);
      throw error;
    }
  }

  /**
   * Stops this node for good: after a broken invariant or a failed write its state can no longer
   * be trusted, so it neither ticks, steps, persists, sends nor applies again (etcd panics; TigerBeetle
   * crashes). Pending callers learn at once; `onFatal` tells the process.
   */
  private fail(error: Error): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    clearInterval(this.tickTimer);
    const invariant = error instanceof RaftInvariantError ? error.invariant : undefined;
    this.options.logger.fatal({ err: error, ...(invariant === undefined ? {} : { invariant }) }, 'raft node failed; stopping it');
    const failed = new Error(`raft node ${this.options.id} has failed: ${error.message}`);
    for (const proposal of this.proposals.takeAll()) {
      clearTimeout(proposal.timer);
      proposal.reject(failed);
    }
    for (const read of this.reads.values()) {
      clearTimeout(read.timer);
      read.reject(failed);
    }
    this.reads.clear();
    this.options.onFatal?.(error);
  }

  /** Handles Ready batches until there are none; calls while one is being handled run it again after. */
  private kick(): void {
    if (this.failure !== undefined) return;
    if (this.processing) {
      this.processAgain = true;
      return;
    }
    this.processing = true;
    void this.process().finally(() => {
      this.processing = false;
    });
  }

  private async process(): Promise<void> {
    try {
      // A message stepped while a Ready is being persisted may fail the node: check each round.
      const running = () => !this.stopped && this.failure === undefined;
      do {
        this.processAgain = false;
        while (running() && this.node.hasReady()) await this.handle(this.node.ready());
      } while (this.processAgain && running());
    } catch (error) {
      // A failed fsync or a broken invariant: this node must not go on as if its log were intact.
      this.fail(error as Error);
    }
  }

  private async handle(ready: Ready): Promise<void> {
    if (ready.softState !== undefined) this.options.logger.info({ role: ready.softState.role, leader: ready.softState.leader, term: ready.hardState?.term ?? this.node.status().term }, 'raft role changed');
    await this.storage.persist({ snapshot: ready.snapshot, entries: ready.entries, hardState: ready.hardState });
    // Routes first: this Ready's messages may go to a member its own entries (or snapshot) add.
    if (ready.snapshot !== undefined) this.restoreSnapshot(ready.snapshot.data);
    this.learnAddresses(ready.entries);
    this.transport.send(ready.messages);
    if (ready.snapshot !== undefined) {
      this.applied = ready.snapshot.metadata.index;
      this.options.logger.info({ index: ready.snapshot.metadata.index, term: ready.snapshot.metadata.term, bytes: ready.snapshot.data.length }, 'installed a snapshot from the leader');
    }
    for (const entry of ready.committedEntries) this.apply(entry);
    for (const readState of ready.readStates) {
      // Only an answer to a read pending here counts. One to a read that timed out, or meant for
      // an earlier run of this node (the context names the run), says nothing about reads now.
      const context = Buffer.from(readState.context).toString();
      const read = this.reads.get(context);
      if (read === undefined) {
        this.options.logger.debug({ context, index: readState.index }, 'dropping an answer to a read that is not pending');
        continue;
      }
      read.index ??= readState.index;
    }
    this.node.advance();
    this.releaseReads();
    await this.maybeCompact();
  }

  private apply(entry: Entry): void {
    let result: unknown;
    if (entry.type === 'normal') result = this.options.stateMachine.apply(entry.data, entry.index);
    else if (entry.type === 'config') this.appliedAddresses = configEntryAddresses(entry) ?? this.appliedAddresses;
    this.applied = entry.index;
    // The proposal made at (index, term) is this entry; one made at this index in another term
    // was replaced (its entry can be nowhere else), so it is settled too, as dropped.
    for (const proposal of this.proposals.takeAt(entry.index)) {
      clearTimeout(proposal.timer);
      if (proposal.term === entry.term) {
        this.options.onCommitLatency?.((performance.now() - proposal.proposedMs) / 1000);
        proposal.resolve(result);
      } else proposal.reject(new RaftError('ProposalDropped', `entry ${entry.index} was replaced by another leader's entry (term ${entry.term}, proposed in ${proposal.term})`));
    }
  }

  private releaseReads(): void {
    for (const [context, read] of this.reads) {
      if (read.index !== undefined && read.index <= this.applied) {
        clearTimeout(read.timer);
        this.reads.delete(context);
        read.resolve();
      }
    }
  }

  private async maybeCompact(): Promise<void> {
    const every = this.options.snapshotEveryEntries ?? 10_000;
    const snapshotIndex = this.storage.snapshot().metadata.index;
    if (this.applied - snapshotIndex < every) return;
    // The configuration in force at the applied index (not the newest one in the log, which may
    // not be committed), and the addresses in force there with it.
    const confState = this.node.confStateAt(this.applied);
    // A joining member may apply entries before the first config entry tells it the configuration.
    if (confState.voters.length === 0) return;
    const book = this.appliedAddresses ?? this.knownAddressesOf(confState);
    const data = wrapSnapshot(book, this.options.stateMachine.snapshot());
    await this.storage.compact(this.applied, confState, data, this.options.retainEntries ?? 1_000);
  }

  /** Restores the state machine from a snapshot's bytes and takes the addresses it carries. */
  private restoreSnapshot(snapshot: Uint8Array): void {
    const { book, data } = unwrapSnapshot(snapshot);
    this.options.stateMachine.restore(data);
    if (book === undefined) return;
    this.appliedAddresses = book;
    for (const [id, address] of book) this.route(id, address);
  }

  /** Takes the addresses that config entries name (their context); later entries win. */
  private learnAddresses(entries: readonly Entry[]): void {
    for (const entry of entries) {
      if (entry.type !== 'config') continue;
      for (const [id, address] of configEntryAddresses(entry) ?? []) this.route(id, address);
    }
  }

  private route(id: number, address: string): void {
    if (this.addresses.get(id) === address) return;
    this.addresses.set(id, address);
    this.transport?.setPeer(id, address);
  }

  private knownAddressesOf(confState: ConfState): Map<number, string> {
    const book = new Map<number, string>();
    for (const id of [...confState.voters, ...confState.learners]) {
      const address = this.addresses.get(id);
      if (address !== undefined) book.set(id, address);
    }
    return book;
  }

  // ---- membership ------------------------------------------------------------------------------

  /** The configuration in force here, every member's address, and (on the leader) each one's progress. */
  membership(): MembershipStatus {
    const status = this.node.status();
    const now = Date.now();
    const addresses = this.knownAddressesOf(status.confState);
    const base = { confState: status.confState, addresses, ...(this.membershipChange === undefined ? {} : { pendingChange: this.membershipChange }) };
    if (status.progress === undefined) return base;
    const members: MemberStatus[] = [];
    for (const id of [...status.confState.voters, ...status.confState.learners]) {
      const progress = status.progress.get(id);
      const self = id === status.id;
      // Still probing with nothing matched: not heard from this term (down, or cut off).
      const unknown = progress === undefined || (progress.state === 'probe' && progress.match === 0);
      const matchIndex = self ? status.lastIndex : unknown ? -1 : progress.match;
      const contact = this.lastContact.get(id);
      members.push({
        id,
        role: status.confState.voters.includes(id) ? 'voter' : 'learner',
        address: addresses.get(id) ?? '',
        matchIndex,
        lag: matchIndex < 0 ? -1 : status.lastIndex - matchIndex,
        lastContactMs: self ? 0 : contact === undefined ? -1 : now - contact,
      });
    }
    return { ...base, members };
  }

  /**
   * Adds member `id` at `address` as a voter, the safe way (Raft thesis §4.2.1, KIP-853): first as
   * a learner, which receives the log but has no vote; once its log has caught up with the
   * leader's commit index it is promoted. Leader only; one change at a time. If the learner does
   * not catch up within `catchUpTimeoutMs` it stays a learner and the call fails; calling again
   * resumes (a learner already there is only promoted).
   */
  async addVoter(id: number, address: string, options: AddVoterOptions = {}): Promise<void> {
    const problem = addressProblem(address);
    if (problem !== undefined) throw new RaftError('ConfChangeRejected', `node ${id}: ${problem}`);
    await this.changeMembership(`adding node ${id} at ${address}`, async () => {
      const progress = options.onProgress ?? (() => undefined);
      const { confState } = this.node.status();
      if (confState.voters.includes(id)) throw new RaftError('ConfChangeRejected', `node ${id} is a voter already`);
      if (!confState.learners.includes(id)) {
        await this.proposeConfChange({ type: 'addLearner', nodeId: id }, address);
        progress(`node ${id} added as a learner at ${address}`);
      } else {
        progress(`node ${id} is a learner already; waiting for it to catch up`);
      }
      await this.waitForCatchUp(id, options.catchUpTimeoutMs ?? 30_000, progress);
      await this.proposeConfChange({ type: 'addVoter', nodeId: id }, address);
      progress(`node ${id} promoted to voter`);
    });
  }

  /**
   * Removes member `id` (voter or learner). Refused for the last voter, and when the voters left
   * would not hold a quorum of members the leader hears from: the group could not commit the
   * removal, nor anything after it. A leader that removes itself steps down once it commits.
   */
  async removeVoter(id: number): Promise<void> {
    await this.changeMembership(`removing node ${id}`, async () => {
      const status = this.node.status();
      const { voters, learners } = status.confState;
      if (!voters.includes(id) && !learners.includes(id)) throw new RaftError('ConfChangeRejected', `node ${id} is not a member (voters ${voters.join(',')}; learners ${learners.join(',') || 'none'})`);
      if (voters.length === 1 && voters[0] === id) throw new RaftError('ConfChangeRejected', `node ${id} is the last voter`);
      const remaining = voters.filter((voter) => voter !== id);
      const reachable = remaining.filter((voter) => voter === status.id || status.progress?.get(voter)?.recentActive === true);
      if (reachable.length < quorumSize(remaining.length)) {
        throw new RaftError('ConfChangeRejected',
          `removing node ${id} would leave voters ${remaining.join(',')}, of which only ${reachable.join(',') || 'none'} answer the leader: ` +
          `fewer than the ${quorumSize(remaining.length)} needed to commit. Bring the others back first`);
      }
      await this.proposeConfChange({ type: 'removeVoter', nodeId: id });
    });
  }

  /** Runs one membership change; refuses a second while one is in progress here. */
  private async changeMembership(description: string, change: () => Promise<void>): Promise<void> {
    this.checkRunning();
    const status = this.node.status();
    if (status.role !== 'leader') throw new RaftError('ProposalDropped', `node ${this.options.id} is not the leader (leader ${status.leader})`);
    if (this.membershipChange !== undefined) {
      throw new RaftError('ConfChangeRejected', `another membership change is in progress (${this.membershipChange}); one change at a time`);
    }
    this.membershipChange = description;
    try {
      await change();
    } finally {
      this.membershipChange = undefined;
    }
  }

  /** Proposes one change with the addresses of every member of the configuration it leads to. */
  private proposeConfChange(change: ConfChange, address?: string): Promise<unknown> {
    const { confState } = this.node.status();
    const members = new Set([...confState.voters, ...confState.learners, change.nodeId]);
    if (change.type === 'removeVoter') members.delete(change.nodeId);
    const book = new Map<number, string>();
    for (const id of members) {
      const known = id === change.nodeId && address !== undefined ? address : this.addresses.get(id);
      if (known !== undefined) book.set(id, known);
    }
    return this.proposeEntry(() => this.node.proposeConfChange({ ...change, context: encodeAddressBook(book) }));
  }

  /** Waits until learner `id` holds every entry the leader had committed when the wait began, or later ones. */
  private async waitForCatchUp(id: number, timeoutMs: number, progress: (line: string) => void): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const target = this.node.status().commit;
    let reportedAtMs = Date.now();
    for (;;) {
      this.checkRunning();
      const status = this.node.status();
      if (status.role !== 'leader') throw new RaftError('ProposalDropped', `node ${this.options.id} lost leadership while node ${id} was catching up; it stays a learner`);
      if (!status.confState.learners.includes(id)) throw new RaftError('ConfChangeRejected', `node ${id} is no longer a learner`);
      const match = status.progress?.get(id)?.match ?? 0;
      if (match >= target) return;
      if (Date.now() >= deadline) {
        throw new RaftError('ConfChangeRejected',
          `node ${id} did not catch up within ${timeoutMs} ms (it holds up to index ${match} of ${target}); it stays a learner: ` +
          'check that it runs and that every member can reach its address, then add it again (or remove it)');
      }
      if (Date.now() - reportedAtMs >= 1_000) {
        reportedAtMs = Date.now();
        progress(`node ${id} is catching up: index ${match} of ${target}`);
      }
      await new Promise((resolve) => setTimeout(resolve, this.options.tickMs ?? 100));
    }
  }
}

/** The addresses a config entry's context names; undefined if it names none (an entry from a core test, say). */
function configEntryAddresses(entry: Entry): Map<number, string> | undefined {
  const context = decodeConfChange(entry.data).change.context;
  return context === undefined ? undefined : decodeAddressBook(context);
}
