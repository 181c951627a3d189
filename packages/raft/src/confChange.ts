// The payload of a 'config' entry: one single-server change, five bytes (kind, node id u32 BE).
import { assert, type ConfChange, type ConfState } from './types.js';

const KINDS = ['addVoter', 'removeVoter', 'addLearner'] as const;

export function encodeConfChange(change: ConfChange): Uint8Array {
  const bytes = new Uint8Array(5);
  bytes[0] = KINDS.indexOf(change.type);
  new DataView(bytes.buffer).setUint32(1, change.nodeId);
  return bytes;
}

/** Whether `data` is a config entry's payload; a transport refuses an entry whose payload is not. */
export function isWellFormedConfChange(data: Uint8Array): boolean {
  return data.length === 5 && data[0]! < KINDS.length;
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  assert(isWellFormedConfChange(data), 'config entry is well formed', () => `${data.length} bytes`);
  const nodeId = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(1);
  return { type: KINDS[data[0]!]!, nodeId };
}

/** The configuration after `change`. Hosts use it to track the configuration at their applied index. */
export function applyConfChange(confState: ConfState, change: ConfChange): ConfState {
  const voters = new Set(confState.voters);
  const learners = new Set(confState.learners);
  if (change.type === 'removeVoter') {
    voters.delete(change.nodeId);
    learners.delete(change.nodeId);
  } else if (change.type === 'addVoter') {
    learners.delete(change.nodeId);
    voters.add(change.nodeId);
  } else if (!voters.has(change.nodeId)) {
    learners.add(change.nodeId);
  }
  const sorted = (ids: Set<number>): number[] => [...ids].sort((x, y) => x - y);
  return { voters: sorted(voters), learners: sorted(learners) };
}
