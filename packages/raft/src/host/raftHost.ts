// The I/O shell around RawNode: a tick timer, LevelDB storage, the gRPC transport and a state
// machine. It keeps the core's contract: a Ready's snapshot, entries and hard state are durable
// (one fsynced batch) before its messages leave, committed entries are applied in order, and
// only then is advance() called. One Ready is handled at a time.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '@runnel/common';
import { RawNode, type Ready, type Status } from '../rawNode.js';
import { Xoshiro128 } from '../random.js';
import { RaftError, RaftInvariantError, type Entry } from '../types.js';
import { LevelRaftStorage } from './levelStorage.js';
import { RaftTransport } from './transport.js';

/** What a Raft group replicates. `apply` must be deterministic: every member applies the same entries. */
export interface StateMachine {
  apply(data: Uint8Array, index: number): unknown;
  snapshot(): Uint8Array;
  restore(data: Uint8Array): void;
}

export interface RaftHostOptions {
  id: number;
  /** Every voter's Raft address, this node's included: id → host:port. */
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
  /** Bound Raft port (the configured one, or the one the OS chose for port 0). */
  port = 0;

  constructor(private readonly options: RaftHostOptions) {}

  async start(): Promise<void> {
    const options = this.options;
    const voters = [...options.voters.keys()].sort((a, b) => a - b);
    this.incarnation = randomBytes(8).toString('hex');
    this.storage = await LevelRaftStorage.open(join(options.dataDir, 'raft'), {
      nodeId: options.id,
      bootstrap: { voters, learners: [] },
      sync: options.sync,
      createIfEmpty: options.createIfEmpty ?? true,
    });
    const snapshot = this.storage.snapshot();
    if (snapshot.metadata.index > 0) options.stateMachine.restore(snapshot.data);
    this.applied = snapshot.metadata.index;
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
      peers: options.voters,
      logger: options.logger,
      ...(options.services === undefined ? {} : { services: options.services }),
      onMessage: (message) => {
        if (this.stopped || this.failure !== undefined) return;
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
    this.checkRunning();
    if (this.proposals.size >= PENDING_PROPOSALS_MAX) return Promise.reject(new RaftError('ProposalDropped', `${PENDING_PROPOSALS_MAX} proposals are already in flight`));
    let index: number;
    try {
      index = this.callCore(() => this.node.propose(data));
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
    this.transport.send(ready.messages);
    if (ready.snapshot !== undefined) {
      this.options.stateMachine.restore(ready.snapshot.data);
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
    await this.storage.compact(this.applied, this.node.confStateAt(this.applied), this.options.stateMachine.snapshot(), this.options.retainEntries ?? 1_000);
  }
}
