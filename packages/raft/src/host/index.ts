// @runnel/raft/host: the I/O shell around the pure core — LevelDB storage, the gRPC transport,
// RaftHost (tick timer, Ready loop, proposals and linearizable reads) and the example key-value
// state machine. Kept apart so that importing the core loads no I/O at all.
export { RaftHost, type RaftHostOptions, type StateMachine, type MemberStatus, type MembershipStatus, type AddVoterOptions } from './raftHost.js';
export { addressProblem, type AddressBook } from './membership.js';
export { LevelRaftStorage, RaftStorageError, RaftLogMissingError, type LevelRaftStorageOptions } from './levelStorage.js';
export { RaftTransport, PEER_QUEUE_MESSAGES_MAX, type RaftTransportOptions } from './transport.js';
export { messageToWire, messageFromWire, MalformedMessageError } from './messageCodec.js';
export { KvStateMachine, encodeKvCommand, type KvCommand } from '../example/kvStateMachine.js';
