// RawNode: the host's API to the core, in etcd's shape. The host drives it with tick()/step() and
// local requests, then loops: ready() → persist → send → apply → advance(). See README "Host contract".
import { Raft, type RaftConfig } from './raft.js';
import {

  assert,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type ReadState,
  type Role,
  type Snapshot,
  type SoftState,
} from './types.js';

export type RawNodeConfig = RaftConfig & {
  /** Bound on committed entries handed out by one Ready. */
  maxCommittedEntriesPerReady?: number;
};

export interface Ready {
  /** Present when the leader or role changed. Volatile: do not persist. */
  softState?: SoftState;
  /** Present when term, vote or commit changed. Persist (after `entries`) before sending `messages`. */
  hardState?: HardState;
  /** Persist before sending `messages`; an entry replaces any persisted entry at the same index and after. */
  entries: Entry[];
  /** Persist (and restore the state machine from) before anything else in this Ready. */
  snapshot?: Snapshot;
  /** Apply in order, after persisting. Every one is durable here already. */
  committedEntries: Entry[];
  /** Send only after this Ready's snapshot, entries and hard state are durable. */
  messages: Message[];
  /** Serve each read after applying this Ready's committedEntries. */
  readStates: ReadState[];
}

export interface ProgressStatus {
  match: number;
  next: number;
  state: 'probe' | 'replicate' | 'snapshot';
  isLearner: boolean;
  /** Heard from within the current CheckQuorum window (an election timeout). */
  recentActive: boolean;
}

export interface Status {
  id: number;
  term: number;
  vote: number;
  role: Role;
  leader: number;
  commit: number;
  applied: number;
  lastIndex: number;
  firstIndex: number;
  confState: ConfState;
  leadTransferee: number;
  /** Leader only. */
  progress?: Map<number, ProgressStatus>;
}

interface HandedOut {
  lastEntry: { index: number; term: number } | undefined;
  snapshotIndex: number | undefined;
  committedEntries: Entry[];
}

export class RawNode {
  private readonly raft: Raft;
  private readonly maxCommittedEntriesPerReady: number;
  private previousSoftState: SoftState;
  private previousHardState: HardState;
  private handedOut: HandedOut | undefined = undefined;

  constructor(config: RawNodeConfig) {
    this.raft = new Raft(config);
    this.maxCommittedEntriesPerReady = config.maxCommittedEntriesPerReady ?? 1024;
    this.previousSoftState = this.softState();
    this.previousHardState = this.hardState();
  }

  tick(): void {
    this.raft.tick();
  }

  step(message: Message): void {
    this.raft.step(message);
  }

  /** Appends `data` as a new entry. Returns its index. Throws RaftError('ProposalDropped') unless leader. */
  propose(data: Uint8Array): number {
    return this.raft.propose(data);
  }

  /** A single-server change. Throws RaftError('ConfChangeRejected') while another (or this term's first entry) is uncommitted. */
  proposeConfChange(change: ConfChange): number {
    return this.raft.proposeConfChange(change);
  }

  campaign(): void {
    if (this.raft.role !== 'leader') this.raft.campaign();
  }

  transferLeadership(to: number): void {
    this.raft.transferLeadership(to);
  }

  /** A ReadState with this context appears in a later Ready once the read is safe to serve. */
  readIndex(context: Uint8Array): void {
    this.raft.readIndex(context);
  }

  hasReady(): boolean {
    assert(this.handedOut === undefined, 'ready and advance alternate', () => 'hasReady() before advance()');
    const log = this.raft.log;
    return (
      this.raft.messages.length > 0 ||
      log.unstableEntries.length > 0 ||
      log.unstableSnapshot !== undefined ||
      log.hasNextCommittedEntries() ||
      !sameSoftState(this.softState(), this.previousSoftState) ||
      !sameHardState(this.hardState(), this.previousHardState) ||
      this.releasableReadStates(Math.max(log.applied, log.appliableIndex())).length > 0
    );
  }

  ready(): Ready {
    assert(this.handedOut === undefined, 'ready and advance alternate', () => 'ready() twice without advance()');
    const log = this.raft.log;
    const snapshot = log.unstableSnapshot;
    const entries = log.unstableEntries.slice();
    const committedEntries = log.nextCommittedEntries(this.maxCommittedEntriesPerReady);
    const appliedAfter = committedEntries.length > 0 ? committedEntries[committedEntries.length - 1]!.index : log.applied;
    const ready: Ready = {
      entries,
      committedEntries,
      messages: this.raft.messages,
      readStates: this.takeReadStates(appliedAfter),
    };
    this.raft.messages = [];
    if (snapshot !== undefined) ready.snapshot = snapshot;
    const softState = this.softState();
    if (!sameSoftState(softState, this.previousSoftState)) ready.softState = this.previousSoftState = softState;
    const hardState = this.hardState();
    if (!sameHardState(hardState, this.previousHardState)) ready.hardState = this.previousHardState = hardState;
    const last = entries[entries.length - 1];
    this.handedOut = {
      lastEntry: last === undefined ? undefined : { index: last.index, term: last.term },
      snapshotIndex: snapshot?.metadata.index,
      committedEntries,
    };
    return ready;
  }

  /** The host persisted, sent and applied everything the last Ready gave. */
  advance(): void {
    const handedOut = this.handedOut;
    assert(handedOut !== undefined, 'ready and advance alternate', () => 'advance() without ready()');
    this.handedOut = undefined;
    const log = this.raft.log;
    if (handedOut.snapshotIndex !== undefined) {
      log.stableSnapshotTo(handedOut.snapshotIndex);
      log.appliedTo(handedOut.snapshotIndex);
    }
    if (handedOut.lastEntry !== undefined) log.stableTo(handedOut.lastEntry.index, handedOut.lastEntry.term);
    const lastCommitted = handedOut.committedEntries[handedOut.committedEntries.length - 1];
    if (lastCommitted !== undefined) log.appliedTo(lastCommitted.index);
    this.raft.onPersisted();
  }

  status(): Status {
    const raft = this.raft;
    const status: Status = {
      id: raft.id,
      term: raft.term,
      vote: raft.vote,
      role: raft.role,
      leader: raft.lead,
      commit: raft.log.committed,
      applied: raft.log.applied,
      lastIndex: raft.log.lastIndex(),
      firstIndex: raft.log.firstIndex(),
      confState: raft.confState(),
      leadTransferee: raft.transferee,
    };
    if (raft.role === 'leader') {
      status.progress = new Map();
      for (const [id, p] of raft.progress) {
        status.progress.set(id, { match: p.match, next: p.next, state: p.state, isLearner: p.isLearner, recentActive: p.recentActive });
      }
    }
    return status;
  }

  // Cheap accessors for hosts and checkers that look after every event.
  get term(): number {
    return this.raft.term;
  }
  get vote(): number {
    return this.raft.vote;
  }
  get role(): Role {
    return this.raft.role;
  }
  get leader(): number {
    return this.raft.lead;
  }
  get commit(): number {
    return this.raft.log.committed;
  }
  get lastIndex(): number {
    return this.raft.log.lastIndex();
  }
  get firstIndex(): number {
    return this.raft.log.firstIndex();
  }
  /** The configuration in force: the newest 'config' entry in the log, committed or not (Raft thesis §4.1). */
  confState(): ConfState {
    return this.raft.confState();
  }
  /** The configuration in force at `index` (for a snapshot at the applied index). */
  confStateAt(index: number): ConfState {
    return this.raft.confStateAt(index);
  }
  /** Term of the entry at `index` in this node's log (unstable tail included); undefined if not held. */
  termAt(index: number): number | undefined {
    return this.raft.log.term(index);
  }
  /** Entries in [lo, hi) of this node's log; undefined if lo was compacted. */
  entriesBetween(lo: number, hi: number): Entry[] | undefined {
    return this.raft.log.entries(lo, hi, Number.MAX_SAFE_INTEGER);
  }

  private softState(): SoftState {
    return { leader: this.raft.lead, role: this.raft.role };
  }

  private hardState(): HardState {
    return { term: this.raft.term, vote: this.raft.vote, commit: this.raft.log.committed };
  }

  private releasableReadStates(appliedIndex: number): ReadState[] {
    return this.raft.readStatesWaiting.filter((read) => read.index <= appliedIndex);
  }

  private takeReadStates(appliedIndex: number): ReadState[] {
    const waiting = this.raft.readStatesWaiting;
    if (waiting.length === 0) return [];
    const released = waiting.filter((read) => read.index <= appliedIndex);
    if (released.length > 0) this.raft.readStatesWaiting = waiting.filter((read) => read.index > appliedIndex);
    return released;
  }
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.leader === b.leader && a.role === b.role;
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}


