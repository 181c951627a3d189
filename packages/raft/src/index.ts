// @runnel/raft: a pure Raft core (no I/O, no timers, no clock) in the shape of etcd's RawNode.
export { RawNode, type RawNodeConfig, type Ready, type Status, type ProgressStatus } from './rawNode.js';
export type { RaftConfig } from './raft.js';
export { MemoryStorage, emptySnapshot, type Storage } from './storage.js';
export { Xoshiro128, type Random } from './random.js';
export { encodeConfChange, decodeConfChange, applyConfChange } from './confChange.js';
export { quorumSize, majorityIndex } from './quorum.js';
export {
  NONE,
  RaftError,
  RaftInvariantError,
  type RaftErrorCode,
  type ConfChange,
  type ConfState,
  type Entry,
  type EntryType,
  type HardState,
  type Message,
  type MessageType,
  type ReadState,
  type Role,
  type Snapshot,
  type SnapshotMetadata,
  type SoftState,
} from './types.js';
