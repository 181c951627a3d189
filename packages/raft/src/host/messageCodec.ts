// Raft messages to and from their protobuf form (proto/runnel/v1/raft.proto). A message that
// does not make sense is refused here, before it reaches the core.
import type { RaftApi } from '@runnel/common';
import { isWellFormedConfChange } from '../confChange.js';
import type { Entry, EntryType, Message, Snapshot } from '../types.js';

const ENTRY_TYPES: readonly EntryType[] = ['normal', 'config', 'empty'];
const MESSAGE_TYPES: ReadonlySet<Message['type']> = new Set([
  'vote', 'preVote', 'voteResponse', 'preVoteResponse', 'append', 'appendResponse',
  'heartbeat', 'heartbeatResponse', 'snapshot', 'timeoutNow', 'readIndex', 'readIndexResponse',
]);
const EMPTY = new Uint8Array(0);

export class MalformedMessageError extends Error {}

function entryToWire(entry: Entry): RaftApi.RaftEntry {
  return { index: entry.index, term: entry.term, type: entry.type, data: entry.data };
}

function entryFromWire(entry: RaftApi.RaftEntry__Output): Entry {
  if (!ENTRY_TYPES.includes(entry.type as EntryType)) throw new MalformedMessageError(`unknown entry type '${entry.type}'`);
  const data = entry.data ?? EMPTY;
  if (entry.type === 'config' && !isWellFormedConfChange(data)) throw new MalformedMessageError(`config entry ${entry.index} has a malformed payload`);
  return { index: entry.index, term: entry.term, type: entry.type as EntryType, data };
}

/**
 * An append's entries follow prevIndex one by one, with terms from prevTerm up to the message's
 * term. The core asserts the same (a broken invariant stops the node); bytes off the wire that
 * break it are a malformed message, refused here.
 */
function appendEntriesFromWire(wire: RaftApi.RaftMessage__Output): Entry[] {
  const entries = wire.entries.map(entryFromWire);
  let previousTerm = wire.prevTerm;
  for (let k = 0; k < entries.length; k++) {
    const { index, term } = entries[k]!;
    if (index !== wire.prevIndex + 1 + k) throw new MalformedMessageError(`append entry ${k} has index ${index} after prevIndex ${wire.prevIndex}`);
    if (term < previousTerm || term > wire.term) throw new MalformedMessageError(`append entry ${index} has term ${term} (previous ${previousTerm}, message term ${wire.term})`);
    previousTerm = term;
  }
  return entries;
}

function snapshotToWire(snapshot: Snapshot): RaftApi.RaftSnapshot {
  const { index, term, confState } = snapshot.metadata;
  return { index, term, voters: [...confState.voters], learners: [...confState.learners], data: snapshot.data };
}

function snapshotFromWire(snapshot: RaftApi.RaftSnapshot__Output | null): Snapshot {
  if (snapshot === null) throw new MalformedMessageError('snapshot message without a snapshot');
  if (snapshot.voters.length === 0) throw new MalformedMessageError(`snapshot at ${snapshot.index} has no voter`);
  return {
    metadata: { index: snapshot.index, term: snapshot.term, confState: { voters: snapshot.voters, learners: snapshot.learners } },
    data: snapshot.data ?? EMPTY,
  };
}

export function messageToWire(message: Message): RaftApi.RaftMessage {
  const wire: RaftApi.RaftMessage = { type: message.type, from: message.from, to: message.to, term: message.term };
  switch (message.type) {
    case 'vote':
    case 'preVote':
      return { ...wire, lastIndex: message.lastIndex, lastTerm: message.lastTerm, transfer: message.transfer };
    case 'voteResponse':
    case 'preVoteResponse':
      return { ...wire, reject: message.reject };
    case 'append':
      return { ...wire, prevIndex: message.prevIndex, prevTerm: message.prevTerm, entries: message.entries.map(entryToWire), commit: message.commit };
    case 'appendResponse':
      return { ...wire, index: message.index, reject: message.reject, rejectHint: message.rejectHint, logTerm: message.logTerm };
    case 'heartbeat':
      return { ...wire, commit: message.commit, readId: message.readId };
    case 'heartbeatResponse':
      return { ...wire, readId: message.readId };
    case 'snapshot':
      return { ...wire, snapshot: snapshotToWire(message.snapshot) };
    case 'timeoutNow':
      return wire;
    case 'readIndex':
      return { ...wire, context: message.context };
    case 'readIndexResponse':
      return { ...wire, index: message.index, context: message.context };
  }
}

export function messageFromWire(wire: RaftApi.RaftMessage__Output): Message {
  const type = wire.type as Message['type'];
  if (!MESSAGE_TYPES.has(type)) throw new MalformedMessageError(`unknown message type '${wire.type}'`);
  if (wire.from <= 0 || wire.to <= 0) throw new MalformedMessageError(`message ${wire.type} with from=${wire.from} to=${wire.to}`);
  const base = { from: wire.from, to: wire.to, term: wire.term };
  switch (type) {
    case 'vote':
    case 'preVote':
      return { ...base, type, lastIndex: wire.lastIndex, lastTerm: wire.lastTerm, transfer: wire.transfer };
    case 'voteResponse':
    case 'preVoteResponse':
      return { ...base, type, reject: wire.reject };
    case 'append':
      return { ...base, type, prevIndex: wire.prevIndex, prevTerm: wire.prevTerm, entries: appendEntriesFromWire(wire), commit: wire.commit };
    case 'appendResponse':
      return { ...base, type, index: wire.index, reject: wire.reject, rejectHint: wire.rejectHint, logTerm: wire.logTerm };
    case 'heartbeat':
      return { ...base, type, commit: wire.commit, readId: wire.readId };
    case 'heartbeatResponse':
      return { ...base, type, readId: wire.readId };
    case 'snapshot':
      return { ...base, type, snapshot: snapshotFromWire(wire.snapshot) };
    case 'timeoutNow':
      return { ...base, type };
    case 'readIndex':
      return { ...base, type, context: wire.context ?? EMPTY };
    case 'readIndexResponse':
      return { ...base, type, index: wire.index, context: wire.context ?? EMPTY };
  }
}
