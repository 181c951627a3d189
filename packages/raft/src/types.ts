// The vocabulary of the Raft core: log entries, durable state, snapshots and the messages peers
// exchange. Everything here is plain data; nothing does I/O.

/** Node ids are positive integers; 0 means "nobody" (no vote, no known leader). */
export const NONE = 0;

export type EntryType = 'normal' | 'config' | 'empty';

/** One log entry. Entries are immutable once created: the core and hosts share them freely. */
export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** What must be durable before any message of the same Ready is sent. */
export interface HardState {
  readonly term: number;
  readonly vote: number;
  readonly commit: number;
}

export interface ConfState {
  readonly voters: readonly number[];
  readonly learners: readonly number[];
}

export interface SnapshotMetadata {
  /** Index and term of the last entry the snapshot covers. */
  readonly index: number;
  readonly term: number;
  /** The configuration in force at `index`. */
  readonly confState: ConfState;
}

export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  readonly data: Uint8Array;
}

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

export interface SoftState {
  readonly leader: number;
  readonly role: Role;
}

/** A linearizable read: serve it from the state machine once `index` is applied. */
export interface ReadState {
  readonly index: number;
  readonly context: Uint8Array;
}

/** A single-server membership change (carried by an entry of type 'config'). */
export interface ConfChange {
  readonly type: 'addVoter' | 'removeVoter' | 'addLearner';
  readonly nodeId: number;
  /** Opaque bytes that travel with the change (at most 65535); the host's (e.g. the member's address). */
  readonly context?: Uint8Array;
}

interface MessageBase {
  readonly from: number;
  readonly to: number;
  readonly term: number;
}

export interface VoteRequest extends MessageBase {
  readonly type: 'vote' | 'preVote';
  readonly lastIndex: number;
  readonly lastTerm: number;
  /** Set by a leadership transfer (TimeoutNow): voters skip the leader-lease check. */
  readonly transfer: boolean;
}

export interface VoteResponse extends MessageBase {
  readonly type: 'voteResponse' | 'preVoteResponse';
  readonly reject: boolean;
}

export interface AppendRequest extends MessageBase {
  readonly type: 'append';
  readonly prevIndex: number;
  readonly prevTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
}

export interface AppendResponse extends MessageBase {
  readonly type: 'appendResponse';
  /** On success the follower's last index that matches the leader; on reject the rejected prevIndex. */
  readonly index: number;
  readonly reject: boolean;
  /** On reject: an index at or below which the follower's log may match, and its term there. */
  readonly rejectHint: number;
  readonly logTerm: number;
}

export interface Heartbeat extends MessageBase {
  readonly type: 'heartbeat';
  readonly commit: number;
  /** Id of the newest pending ReadIndex round, 0 if none. */
  readonly readId: number;
}

export interface HeartbeatResponse extends MessageBase {
  readonly type: 'heartbeatResponse';
  readonly readId: number;
}

export interface InstallSnapshot extends MessageBase {
  readonly type: 'snapshot';
  readonly snapshot: Snapshot;
}

export interface TimeoutNow extends MessageBase {
  readonly type: 'timeoutNow';
}

/** A follower forwards a ReadIndex request to its leader. */
export interface ReadIndexRequest extends MessageBase {
  readonly type: 'readIndex';
  readonly context: Uint8Array;
}

export interface ReadIndexResponse extends MessageBase {
  readonly type: 'readIndexResponse';
  readonly index: number;
  readonly context: Uint8Array;
}

export type Message =
  | VoteRequest
  | VoteResponse
  | AppendRequest
  | AppendResponse
  | Heartbeat
  | HeartbeatResponse
  | InstallSnapshot
  | TimeoutNow
  | ReadIndexRequest
  | ReadIndexResponse;

export type MessageType = Message['type'];

export type RaftErrorCode = 'ProposalDropped' | 'ReadIndexDropped' | 'ConfChangeRejected' | 'TransferRejected';

/** An operating error the host handles (retry elsewhere, later); not a bug. */
export class RaftError extends Error {
  readonly code: RaftErrorCode;
  constructor(code: RaftErrorCode, message: string) {
    super(`${code}: ${message}`);
    this.name = 'RaftError';
    this.code = code;
  }
}

/** A broken invariant: a programmer error. The message names the invariant. */
export class RaftInvariantError extends Error {
  readonly invariant: string;
  constructor(invariant: string, detail: string) {
    super(`raft invariant "${invariant}" violated: ${detail}`);
    this.name = 'RaftInvariantError';
    this.invariant = invariant;
  }
}

export function assert(condition: boolean, invariant: string, detail: () => string): asserts condition {
  if (!condition) throw new RaftInvariantError(invariant, detail());
}
