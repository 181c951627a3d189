// The Raft roles as one deterministic state machine. Inputs: tick(), step(message) and the local
// requests (propose, campaign, readIndex, transferLeadership, proposeConfChange). Outputs: the log's
// unstable tail, the commit index, and `messages`, which RawNode packages into a Ready.
import { applyConfChange, decodeConfChange, encodeConfChange, sameConfState } from './confChange.js';
import { RaftLog } from './log.js';
import { Progress } from './progress.js';
import { majorityIndex, quorumActive, voteResult } from './quorum.js';
import type { Random } from './random.js';
import type { Storage } from './storage.js';
import {
  NONE,
  RaftError,
  assert,
  type AppendRequest,
  type AppendResponse,
  type ConfChange,
  type ConfState,
  type Entry,
  type EntryType,
  type Heartbeat,
  type HeartbeatResponse,
  type InstallSnapshot,
  type Message,
  type ReadState,
  type Role,
  type Snapshot,
  type VoteRequest,
  type VoteResponse,
} from './types.js';

export interface RaftConfig {
  id: number;
  /**
   * Bootstrap configuration, used when the storage holds none (a brand-new cluster). Empty for a
   * member that joins a running group: it has no configuration (and never campaigns) until the
   * leader's log or snapshot gives it one.
   */
  voters: readonly number[];
  learners?: readonly number[];
  /** Followers campaign after a random timeout in [electionTicks, 2 * electionTicks). */
  electionTicks: number;
  heartbeatTicks: number;
  storage: Storage;
  random: Random;
  preVote?: boolean;
  checkQuorum?: boolean;
  maxInflightMessages?: number;
  maxEntriesPerMessage?: number;
  /** Proposals are dropped while this many entries are not committed yet. */
  maxUncommittedEntries?: number;
  /** Bound on queued ReadIndex requests (each queue: awaiting confirmation, awaiting apply). */
  maxPendingReads?: number;
  /** Bound on messages queued between two Ready batches; beyond it messages are dropped (as a network would). */
  maxQueuedMessages?: number;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
type Outgoing = DistributiveOmit<Message, 'from' | 'term'> & { term?: number };

interface ReadRequest {
  readonly id: number;
  readonly index: number;
  readonly from: number;
  readonly context: Uint8Array;
}

type CampaignKind = 'preElection' | 'election' | 'transfer';

const EMPTY = new Uint8Array(0);

export class Raft {
  readonly id: number;
  term = 0;
  vote = NONE;
  lead = NONE;
  role: Role = 'follower';
  readonly log: RaftLog;
  readonly voters = new Set<number>();
  readonly learners = new Set<number>();
  readonly progress = new Map<number, Progress>();
  messages: Message[] = [];
  /** Reads confirmed (and for followers, answered by the leader) that wait for the apply index. */
  readStatesWaiting: ReadState[] = [];

  private readonly votes = new Map<number, boolean>();
  private electionElapsedTicks = 0;
  private heartbeatElapsedTicks = 0;
  private randomizedElectionTicks = 0;
  private leadTransferee = NONE;
  /** Index of the last config entry (or this term's first entry) a leader appended; see proposeConfChange. */
  private pendingConfIndex = 0;
  /** The configuration at the snapshot, then one item per 'config' entry in the log, in index order. */
  private confBase: { index: number; confState: ConfState } = { index: 0, confState: { voters: [], learners: [] } };
  private confHistory: { index: number; confState: ConfState }[] = [];
  private readSequence = 0;
  private reads: ReadRequest[] = [];
  private readAcks = new Map<number, number>();
  private readsBeforeCommit: { from: number; context: Uint8Array }[] = [];

  private readonly electionTicks: number;
  private readonly heartbeatTicks: number;
  private readonly random: Random;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly maxInflightMessages: number;
  private readonly maxEntriesPerMessage: number;
  private readonly maxUncommittedEntries: number;
  private readonly maxPendingReads: number;
  private readonly maxQueuedMessages: number;

  constructor(config: RaftConfig) {
    assert(config.id > 0, 'node id is positive', () => `${config.id}`);
    assert(config.heartbeatTicks >= 1 && config.electionTicks > config.heartbeatTicks, 'electionTicks > heartbeatTicks >= 1',
      () => `election ${config.electionTicks}, heartbeat ${config.heartbeatTicks}`);
    this.id = config.id;
    this.electionTicks = config.electionTicks;
    this.heartbeatTicks = config.heartbeatTicks;
    this.random = config.random;
    this.preVote = config.preVote ?? true;
    this.checkQuorum = config.checkQuorum ?? true;
    this.maxInflightMessages = config.maxInflightMessages ?? 64;
    this.maxEntriesPerMessage = config.maxEntriesPerMessage ?? 64;
    this.maxUncommittedEntries = config.maxUncommittedEntries ?? 4096;
    this.maxPendingReads = config.maxPendingReads ?? 1024;
    this.maxQueuedMessages = config.maxQueuedMessages ?? 65_536;

    const { hardState, confState } = config.storage.initialState();
    const snapshotIndex = config.storage.snapshot().metadata.index;
    // A crash between persisting a snapshot and the hard state leaves commit behind the snapshot.
    const committed = Math.max(hardState.commit, snapshotIndex);
    this.log = new RaftLog(config.storage, committed, snapshotIndex);
    const bootstrap = confState.voters.length > 0 ? confState : { voters: config.voters, learners: config.learners ?? [] };
    this.confBase = { index: snapshotIndex, confState: bootstrap };
    this.setConfState(bootstrap);
    // A configuration takes effect as soon as its entry is in the log (Raft thesis §4.1).
    const logged = this.log.entries(snapshotIndex + 1, Infinity, Number.MAX_SAFE_INTEGER) ?? [];
    this.trackConfigEntries(logged);
    this.log.onAppend = (entries) => this.trackConfigEntries(entries);
    this.term = hardState.term;
    this.vote = hardState.vote;
    this.becomeFollower(this.term, NONE);
  }

  // ---- local requests -------------------------------------------------------------------------

  tick(): void {
    if (this.role === 'leader') this.tickLeader();
    else this.tickElection();
  }

  campaign(): void {
    this.startCampaign(this.preVote ? 'preElection' : 'election');
  }

  propose(data: Uint8Array): number {
    this.checkCanPropose();
    const index = this.appendEntry('normal', data);
    this.broadcastAppend();
    return index;
  }

  proposeConfChange(change: ConfChange): number {
    this.checkCanPropose();
    if (this.pendingConfIndex > this.log.committed) {
      throw new RaftError('ConfChangeRejected',
        `entry ${this.pendingConfIndex} (a configuration change, or this term's first entry) is not committed yet`);
    }
    const problem = this.confChangeProblem(change);
    if (problem !== undefined) throw new RaftError('ConfChangeRejected', problem);
    this.pendingConfIndex = this.appendEntry('config', encodeConfChange(change, applyConfChange(this.confState(), change)));
    if (this.role === 'leader') this.broadcastAppend();
    return this.pendingConfIndex;
  }

  transferLeadership(to: number): void {
    if (this.role !== 'leader') throw new RaftError('TransferRejected', `node ${this.id} is not the leader`);
    if (to === this.id || to === this.leadTransferee) return;
    if (!this.voters.has(to)) throw new RaftError('TransferRejected', `node ${to} is not a voter`);
    this.leadTransferee = to;
    this.electionElapsedTicks = 0; // the transfer must finish within one election timeout
    const progress = this.progress.get(to)!;
    if (progress.match === this.log.lastIndex()) this.send({ type: 'timeoutNow', to });
    else this.sendAppend(to);
  }

  readIndex(context: Uint8Array): void {
    if (this.role === 'leader') {
      this.handleReadIndex(this.id, context);
    } else if (this.lead !== NONE) {
      this.send({ type: 'readIndex', to: this.lead, context });
    } else {
      throw new RaftError('ReadIndexDropped', `node ${this.id} knows no leader`);
    }
  }

  // ---- messages from peers --------------------------------------------------------------------

  step(message: Message): void {
    assert(message.to === this.id, 'message routed to its destination', () => `to ${message.to} at ${this.id}`);
    if (message.term > this.term) {
      if (!this.adoptHigherTerm(message)) return;
    } else if (message.term < this.term) {
      this.answerStaleTerm(message);
      return;
    }
    if (message.type === 'vote' || message.type === 'preVote') {
      this.handleVoteRequest(message);
      return;
    }
    if (this.role === 'leader') this.stepLeader(message);
    else if (this.role === 'follower') this.stepFollower(message);
    else this.stepCandidate(message);
  }

  /** Returns false if the message must be ignored (a vote request during a leader lease). */
  private adoptHigherTerm(message: Message): boolean {
    if (message.type === 'vote' || message.type === 'preVote') {
      const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsedTicks < this.electionTicks;
      if (inLease && !message.transfer) return false;
    }
    if (message.type === 'preVote') return true; // a pre-vote never changes our term
    if (message.type === 'preVoteResponse' && !message.reject) return true; // the term we would campaign at
    const fromLeader = message.type === 'append' || message.type === 'heartbeat' || message.type === 'snapshot';
    this.becomeFollower(message.term, fromLeader ? message.from : NONE);
    return true;
  }

  private answerStaleTerm(message: Message): void {
    if ((this.checkQuorum || this.preVote) && (message.type === 'append' || message.type === 'heartbeat')) {
      // A deposed leader (or a partitioned node's old leader) learns our term and steps down.
      this.send({ type: 'appendResponse', to: message.from, index: 0, reject: false, rejectHint: 0, logTerm: 0 });
    } else if (message.type === 'preVote') {
      this.send({ type: 'preVoteResponse', to: message.from, reject: true });
    }
  }

  private handleVoteRequest(request: VoteRequest): void {
    const responseType = request.type === 'vote' ? 'voteResponse' : 'preVoteResponse';
    const canVote =
      this.vote === request.from ||
      (this.vote === NONE && this.lead === NONE) ||
      (request.type === 'preVote' && request.term > this.term);
    if (canVote && this.log.isUpToDate(request.lastIndex, request.lastTerm)) {
      this.send({ type: responseType, to: request.from, term: request.term, reject: false });
      if (request.type === 'vote') {
        this.electionElapsedTicks = 0;
        this.vote = request.from;
      }
    } else {
      this.send({ type: responseType, to: request.from, reject: true });
    }
  }

  private stepLeader(message: Message): void {
    switch (message.type) {
      case 'appendResponse':
        this.handleAppendResponse(message);
        return;
      case 'heartbeatResponse':
        this.handleHeartbeatResponse(message);
        return;
      case 'readIndex':
        this.handleReadIndex(message.from, message.context);
        return;
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        assert(false, 'election safety', () => `leader ${this.id} of term ${this.term} got ${message.type} from ${message.from}`);
        return;
      default:
        return; // late vote responses, timeoutNow for an older campaign, …
    }
  }

  private stepCandidate(message: Message): void {
    const expected = this.role === 'preCandidate' ? 'preVoteResponse' : 'voteResponse';
    switch (message.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        this.becomeFollower(message.term, message.from);
        this.stepFollower(message);
        return;
      case 'voteResponse':
      case 'preVoteResponse':
        if (message.type === expected) this.handleVoteResponse(message);
        return;
      default:
        return;
    }
  }

  private stepFollower(message: Message): void {
    switch (message.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        this.electionElapsedTicks = 0;
        this.lead = message.from;
        if (message.type === 'append') this.handleAppend(message);
        else if (message.type === 'heartbeat') this.handleHeartbeat(message);
        else this.handleSnapshot(message);
        return;
      case 'timeoutNow':
        this.startCampaign('transfer');
        return;
      case 'readIndexResponse':
        this.queueReadState({ index: message.index, context: message.context });
        return;
      default:
        return;
    }
  }

  // ---- elections ------------------------------------------------------------------------------

  private tickElection(): void {
    this.electionElapsedTicks++;
    if (this.electionElapsedTicks >= this.randomizedElectionTicks && this.promotable()) {
      this.electionElapsedTicks = 0;
      this.campaign();
    }
  }

  private promotable(): boolean {
    if (this.log.unstableSnapshot !== undefined) return false;
    if (this.voters.has(this.id)) return true;
    // A voter whose removal is in its log but not committed may be needed to commit it: it may
    // hold the newest log, so nobody else can win (Raft thesis §4.2.2). It campaigns, not
    // counting itself, and steps down once the removal commits.
    const last = this.confHistory[this.confHistory.length - 1];
    return last !== undefined && last.index > this.log.committed && this.confStateAt(last.index - 1).voters.includes(this.id);
  }

  private startCampaign(kind: CampaignKind): void {
    if (!this.promotable()) return;
    let requestType: 'vote' | 'preVote';
    let requestTerm: number;
    if (kind === 'preElection') {
      this.becomePreCandidate();
      requestType = 'preVote';
      requestTerm = this.term + 1;
    } else {
      this.becomeCandidate();
      requestType = 'vote';
      requestTerm = this.term;
    }
    if (this.voters.has(this.id)) this.votes.set(this.id, true);
    if (voteResult(this.voters, this.votes) === 'won') {
      this.onVoteWon();
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const id of this.voters) {
      if (id === this.id) continue;
      this.send({ type: requestType, to: id, term: requestTerm, lastIndex, lastTerm, transfer: kind === 'transfer' });
    }
  }

  private handleVoteResponse(response: VoteResponse): void {
    if (!this.votes.has(response.from)) this.votes.set(response.from, !response.reject);
    const result = voteResult(this.voters, this.votes);
    if (result === 'won') this.onVoteWon();
    else if (result === 'lost') this.becomeFollower(this.term, NONE);
  }

  private onVoteWon(): void {
    if (this.role === 'preCandidate') {
      this.startCampaign('election');
    } else {
      this.becomeLeader();
      this.broadcastAppend();
    }
  }

  // ---- role transitions -----------------------------------------------------------------------

  becomeFollower(term: number, lead: number): void {
    this.reset(term);
    this.role = 'follower';
    this.lead = lead;
  }

  private becomePreCandidate(): void {
    assert(this.role !== 'leader', 'a leader does not campaign', () => `node ${this.id}`);
    // Neither the term nor the vote changes: a pre-election is a dry run.
    this.votes.clear();
    this.role = 'preCandidate';
    this.lead = NONE;
  }

  private becomeCandidate(): void {
    assert(this.role !== 'leader', 'a leader does not campaign', () => `node ${this.id}`);
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomeLeader(): void {
    assert(this.role === 'candidate', 'only a candidate becomes leader', () => `node ${this.id} is ${this.role}`);
    this.reset(this.term);
    this.role = 'leader';
    this.lead = this.id;
    const self = this.progress.get(this.id); // absent while finishing our own removal
    if (self !== undefined) {
      self.becomeReplicate();
      self.maybeUpdate(this.log.persistedLastIndex());
      self.recentActive = true;
    }
    // Raft §5.4.2 / §8: an entry of this term, so earlier entries can commit and reads can be served.
    // No configuration change until it is applied (Ongaro's single-server fix).
    this.pendingConfIndex = this.appendEntry('empty', EMPTY);
  }

  private reset(term: number): void {
    if (term !== this.term) {
      assert(term > this.term, 'term never goes backwards', () => `${this.term} -> ${term}`);
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsedTicks = 0;
    this.heartbeatElapsedTicks = 0;
    this.randomizedElectionTicks = this.electionTicks + this.random.nextInt(this.electionTicks);
    this.leadTransferee = NONE;
    this.votes.clear();
    this.pendingConfIndex = 0;
    this.reads = [];
    this.readAcks.clear();
    this.readsBeforeCommit = [];
    this.resetProgress();
  }

  private resetProgress(): void {
    this.progress.clear();
    const next = this.log.lastIndex() + 1;
    for (const id of this.voters) this.progress.set(id, new Progress(next, this.maxInflightMessages, false));
    for (const id of this.learners) this.progress.set(id, new Progress(next, this.maxInflightMessages, true));
  }

  // ---- the leader -----------------------------------------------------------------------------

  private tickLeader(): void {
    this.heartbeatElapsedTicks++;
    this.electionElapsedTicks++;
    if (this.electionElapsedTicks >= this.electionTicks) {
      this.electionElapsedTicks = 0;
      if (this.checkQuorum) {
        const active = quorumActive(this.voters, (id) => id === this.id || this.progress.get(id)?.recentActive === true);
        if (!active) {
          this.becomeFollower(this.term, NONE); // CheckQuorum: no majority heard from us lately
          return;
        }
        for (const [id, progress] of this.progress) progress.recentActive = id === this.id;
      }
      this.leadTransferee = NONE; // a transfer that did not finish in one election timeout is abandoned
    }
    for (const progress of this.progress.values()) {
      if (progress.state === 'snapshot' && ++progress.snapshotElapsedTicks >= this.electionTicks) {
        progress.becomeProbe(); // the snapshot or its acknowledgement was lost: try again
      }
    }
    if (this.heartbeatElapsedTicks >= this.heartbeatTicks) {
      this.heartbeatElapsedTicks = 0;
      this.broadcastHeartbeat();
    }
  }

  private checkCanPropose(): void {
    if (this.role !== 'leader') throw new RaftError('ProposalDropped', `node ${this.id} is not the leader (leader ${this.lead})`);
    if (this.leadTransferee !== NONE) {
      throw new RaftError('ProposalDropped', `leadership is being transferred to ${this.leadTransferee}`);
    }
    if (!this.voters.has(this.id)) throw new RaftError('ProposalDropped', `leader ${this.id} is removing itself`);
    if (this.log.lastIndex() - this.log.committed >= this.maxUncommittedEntries) {
      throw new RaftError('ProposalDropped', `${this.maxUncommittedEntries} entries are not committed yet`);
    }
  }

  private appendEntry(type: EntryType, data: Uint8Array): number {
    const index = this.log.lastIndex() + 1;
    this.log.append([{ index, term: this.term, type, data }]);
    return index;
  }

  /** The host persisted the log up to persistedLastIndex(): the leader counts its own copy now. */
  onPersisted(): void {
    if (this.role !== 'leader') return;
    const self = this.progress.get(this.id);
    if (self !== undefined && self.maybeUpdate(this.log.persistedLastIndex()) && this.maybeCommit()) {
      this.broadcastAppend();
    }
  }

  private maybeCommit(): boolean {
    const index = majorityIndex(this.voters, (id) => this.progress.get(id)?.match ?? 0);
    // Raft §5.4.2: only an entry of the current term is committed by counting replicas.
    if (index <= this.log.committed || this.log.term(index) !== this.term) return false;
    this.log.commitTo(index);
    const lastConfIndex = this.confHistory[this.confHistory.length - 1]?.index ?? 0;
    if (!this.voters.has(this.id) && index >= lastConfIndex) {
      // Our removal is committed (it was the last entry we took): tell the others, then step down.
      this.broadcastAppend();
      this.becomeFollower(this.term, NONE);
      return false;
    }
    this.releaseReadsBeforeCommit();
    return true;
  }

  private broadcastAppend(): void {
    for (const id of this.progress.keys()) if (id !== this.id) this.sendAppend(id);
  }

  private broadcastHeartbeat(): void {
    const readId = this.reads.length > 0 ? this.reads[this.reads.length - 1]!.id : 0;
    for (const [id, progress] of this.progress) {
      if (id === this.id) continue;
      this.send({ type: 'heartbeat', to: id, commit: Math.min(progress.match, this.log.committed), readId });
    }
  }

  /** Returns whether a message was sent. */
  private sendAppend(to: number, sendIfEmpty = true): boolean {
    const progress = this.progress.get(to);
    if (progress === undefined || progress.isPaused()) return false;
    const prevIndex = progress.next - 1;
    const prevTerm = this.log.term(prevIndex);
    const entries = prevTerm === undefined ? undefined : this.log.entries(progress.next, Infinity, this.maxEntriesPerMessage);
    if (prevTerm === undefined || entries === undefined) return this.sendSnapshot(to, progress);
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send({ type: 'append', to, prevIndex, prevTerm, entries, commit: this.log.committed });
    if (progress.state === 'replicate') {
      if (entries.length > 0) {
        const lastIndex = entries[entries.length - 1]!.index;
        progress.next = lastIndex + 1;
        progress.inflights.add(lastIndex);
      }
    } else {
      progress.probeSent = true;
    }
    return true;
  }

  private sendSnapshot(to: number, progress: Progress): boolean {
    if (!progress.recentActive) return false; // no snapshot to a follower that may be down
    const snapshot: Snapshot = this.log.snapshot();
    assert(snapshot.metadata.index >= this.log.firstIndex() - 1, 'a snapshot covers the compacted log', () =>
      `snapshot ${snapshot.metadata.index}, first index ${this.log.firstIndex()}`);
    progress.becomeSnapshot(snapshot.metadata.index);
    this.send({ type: 'snapshot', to, snapshot });
    return true;
  }

  private handleAppendResponse(response: AppendResponse): void {
    const progress = this.progress.get(response.from);
    if (progress === undefined) return;
    progress.recentActive = true;
    if (response.reject) {
      const hint = response.logTerm > 0 ? this.log.findConflictByTerm(response.rejectHint, response.logTerm) : response.rejectHint;
      if (progress.maybeDecreaseTo(response.index, hint)) {
        if (progress.state === 'replicate') progress.becomeProbe();
        this.sendAppend(response.from);
      }
      return;
    }
    const wasPaused = progress.isPaused();
    if (!progress.maybeUpdate(response.index)) return;
    if (progress.state === 'probe') {
      progress.becomeReplicate();
    } else if (progress.state === 'snapshot' && progress.match + 1 >= this.log.firstIndex()) {
      progress.becomeProbe();
      progress.becomeReplicate();
    } else if (progress.state === 'replicate') {
      progress.inflights.freeTo(response.index);
    }
    if (this.maybeCommit()) this.broadcastAppend();
    else if (wasPaused) this.sendAppend(response.from);
    for (let sent = 0; sent < this.maxInflightMessages && this.sendAppend(response.from, false); sent++);
    if (response.from === this.leadTransferee && progress.match === this.log.lastIndex()) {
      this.send({ type: 'timeoutNow', to: response.from });
    }
  }

  private handleHeartbeatResponse(response: HeartbeatResponse): void {
    const progress = this.progress.get(response.from);
    if (progress === undefined) return;
    progress.recentActive = true;
    progress.probeSent = false;
    // A full window may mean lost messages: free a slot so the pipeline probes again.
    if (progress.state === 'replicate' && progress.inflights.full()) progress.inflights.freeFirstOne();
    if (progress.match < this.log.lastIndex()) this.sendAppend(response.from);
    if (response.readId > 0 && this.voters.has(response.from)) {
      this.readAcks.set(response.from, Math.max(this.readAcks.get(response.from) ?? 0, response.readId));
      this.releaseConfirmedReads();
    }
  }

  // ---- ReadIndex ------------------------------------------------------------------------------

  private handleReadIndex(from: number, context: Uint8Array): void {
    if (this.log.term(this.log.committed) !== this.term) {
      // A new leader does not know the commit index until an entry of its term commits — even as
      // the only voter: its predecessor may have committed entries with its acknowledgement alone.
      if (this.readsBeforeCommit.length >= this.maxPendingReads) return this.dropRead(from);
      this.readsBeforeCommit.push({ from, context });
      return;
    }
    if (this.voters.size === 1 && this.voters.has(this.id)) {
      this.answerRead(from, this.log.committed, context);
      return;
    }
    if (this.reads.length >= this.maxPendingReads) return this.dropRead(from);
    this.reads.push({ id: ++this.readSequence, index: this.log.committed, from, context });
    this.broadcastHeartbeat();
  }

  private dropRead(from: number): void {
    if (from === this.id) throw new RaftError('ReadIndexDropped', `${this.maxPendingReads} reads are pending`);
  }

  private releaseReadsBeforeCommit(): void {
    const waiting = this.readsBeforeCommit;
    this.readsBeforeCommit = [];
    for (const read of waiting) {
      if (read.from !== this.id || this.reads.length < this.maxPendingReads) this.handleReadIndex(read.from, read.context);
    }
  }

  /** Release, in order, every read whose heartbeat round a quorum has acknowledged. */
  private releaseConfirmedReads(): void {
    let released = 0;
    while (released < this.reads.length) {
      const read = this.reads[released]!;
      const confirmed = quorumActive(this.voters, (id) => id === this.id || (this.readAcks.get(id) ?? 0) >= read.id);
      if (!confirmed) break;
      this.answerRead(read.from, read.index, read.context);
      released++;
    }
    if (released > 0) this.reads.splice(0, released);
  }

  private answerRead(from: number, index: number, context: Uint8Array): void {
    if (from === this.id) this.queueReadState({ index, context });
    else this.send({ type: 'readIndexResponse', to: from, index, context });
  }

  private queueReadState(readState: ReadState): void {
    if (this.readStatesWaiting.length >= this.maxPendingReads) return; // the host times the read out
    this.readStatesWaiting.push(readState);
  }

  // ---- the follower ---------------------------------------------------------------------------

  private handleAppend(request: AppendRequest): void {
    if (request.prevIndex < this.log.committed) {
      this.send({ type: 'appendResponse', to: request.from, index: this.log.committed, reject: false, rejectHint: 0, logTerm: 0 });
      return;
    }
    const lastNewIndex = this.log.maybeAppend(request.prevIndex, request.prevTerm, request.commit, request.entries);
    if (lastNewIndex !== undefined) {
      this.send({ type: 'appendResponse', to: request.from, index: lastNewIndex, reject: false, rejectHint: 0, logTerm: 0 });
      return;
    }
    const hintIndex = this.log.findConflictByTerm(Math.min(request.prevIndex, this.log.lastIndex()), request.prevTerm);
    const hintTerm = this.log.term(hintIndex) ?? 0;
    this.send({ type: 'appendResponse', to: request.from, index: request.prevIndex, reject: true, rejectHint: hintIndex, logTerm: hintTerm });
  }

  private handleHeartbeat(heartbeat: Heartbeat): void {
    this.log.commitTo(heartbeat.commit);
    this.send({ type: 'heartbeatResponse', to: heartbeat.from, readId: heartbeat.readId });
  }

  private handleSnapshot(message: InstallSnapshot): void {
    const restored = this.restore(message.snapshot);
    const index = restored ? this.log.lastIndex() : this.log.committed;
    this.send({ type: 'appendResponse', to: message.from, index, reject: false, rejectHint: 0, logTerm: 0 });
  }

  private restore(snapshot: Snapshot): boolean {
    const { index, term, confState } = snapshot.metadata;
    if (index <= this.log.committed) return false;
    if (this.log.matchTerm(index, term)) {
      this.log.commitTo(index); // we hold the entries already: fast-forward
      return false;
    }
    assert(confState.voters.length > 0, 'a configuration has a voter', () => `snapshot ${index}`);
    this.log.restore(snapshot);
    this.confBase = { index, confState };
    this.confHistory = [];
    this.setConfState(confState);
    this.resetProgress();
    return true;
  }

  // ---- membership -----------------------------------------------------------------------------

  confState(): ConfState {
    return { voters: [...this.voters].sort((x, y) => x - y), learners: [...this.learners].sort((x, y) => x - y) };
  }

  /** Only a member that has not joined yet has a configuration with no voter (see RaftConfig.voters). */
  private setConfState(confState: ConfState): void {
    this.voters.clear();
    this.learners.clear();
    for (const id of confState.voters) this.voters.add(id);
    for (const id of confState.learners) this.learners.add(id);
  }

  private confChangeProblem(change: ConfChange): string | undefined {
    const { type, nodeId } = change;
    if (!(nodeId > 0)) return `bad node id ${nodeId}`;
    if (type === 'addVoter' && this.voters.has(nodeId)) return `node ${nodeId} is a voter already`;
    if (type === 'addLearner' && (this.voters.has(nodeId) || this.learners.has(nodeId))) {
      return `node ${nodeId} is a member already (demotion is not supported)`;
    }
    if (type === 'removeVoter') {
      if (!this.voters.has(nodeId) && !this.learners.has(nodeId)) return `node ${nodeId} is not a member`;
      if (this.voters.has(nodeId) && this.voters.size === 1) return 'cannot remove the last voter';
    }
    return undefined;
  }

  /** The configuration in force at `index` (index >= the snapshot index). */
  confStateAt(index: number): ConfState {
    for (let k = this.confHistory.length - 1; k >= 0; k--) {
      if (this.confHistory[k]!.index <= index) return this.confHistory[k]!.confState;
    }
    return this.confBase.confState;
  }

  /**
   * Entries are about to be appended at entries[0].index: drop configs of replaced entries, add
   * new ones. The new history is worked out (every config entry decoded and checked) before it
   * replaces the old one, so a malformed entry leaves the configuration in force as it was.
   */
  private trackConfigEntries(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    let kept = this.confHistory.length;
    while (kept > 0 && this.confHistory[kept - 1]!.index >= first) kept--;
    let confState = kept > 0 ? this.confHistory[kept - 1]!.confState : this.confBase.confState;
    const added: { index: number; confState: ConfState }[] = [];
    for (const entry of entries) {
      if (entry.type !== 'config') continue;
      const decoded = decodeConfChange(entry.data);
      // A member that joined with no configuration takes the first one it sees; any other checks
      // that the entry's configuration follows from the one before it (Log Matching says it must).
      if (confState.voters.length > 0) {
        const expected = applyConfChange(confState, decoded.change);
        assert(sameConfState(expected, decoded.confState), 'a config entry follows from the configuration before it',
          () => `entry ${entry.index}: ${JSON.stringify(decoded.confState)}, expected ${JSON.stringify(expected)}`);
      }
      confState = decoded.confState;
      added.push({ index: entry.index, confState });
    }
    if (kept === this.confHistory.length && added.length === 0) return;
    this.confHistory.splice(kept, this.confHistory.length - kept, ...added);
    this.switchConfig(this.confStateAt(Infinity));
  }

  private switchConfig(confState: ConfState): void {
    this.setConfState(confState);
    for (const id of [...this.progress.keys()]) {
      if (!this.voters.has(id) && !this.learners.has(id)) {
        this.progress.delete(id);
        this.readAcks.delete(id);
      }
    }
    for (const id of [...confState.voters, ...confState.learners]) {
      const isLearner = this.learners.has(id);
      let progress = this.progress.get(id);
      if (progress === undefined) {
        progress = new Progress(this.log.lastIndex() + 1, this.maxInflightMessages, isLearner);
        progress.recentActive = true; // do not let CheckQuorum count a new member as silent at once
        this.progress.set(id, progress);
      }
      progress.isLearner = isLearner;
    }
    if (this.role !== 'leader') return;
    if (this.leadTransferee !== NONE && !this.voters.has(this.leadTransferee)) this.leadTransferee = NONE;
    // The quorum changed: a removal can commit entries, and settle pending reads, at once.
    if (this.maybeCommit()) this.broadcastAppend();
    if (this.role === 'leader') this.releaseConfirmedReads();
  }

  // ---- plumbing -------------------------------------------------------------------------------

  private send(message: Outgoing): void {
    if (this.messages.length >= this.maxQueuedMessages) return; // as if the network lost it
    this.messages.push({ ...message, from: this.id, term: message.term ?? this.term } as Message);
  }

  get electionElapsed(): number {
    return this.electionElapsedTicks;
  }

  get transferee(): number {
    return this.leadTransferee;
  }
}
