// The payload of a 'config' entry: one single-server change, the whole configuration it leads to,
// and an opaque context the host attaches (Runnel's host puts the member's address there, as
// etcd's ConfChange.Context carries a member's URLs).
//
//   kind u8 | node id u32 | voter count u16 | voter ids u32… | learner count u16 | learner ids u32…
//   | context length u16 | context bytes
//
// The resulting configuration travels in full (as Kafka's VotersRecord does) so that a member that
// joined with no configuration of its own (it never saw the group's bootstrap) still knows the
// configuration in force from the first config entry it receives; members that know the one
// before check that the entry follows from it.
import { assert, type ConfChange, type ConfState } from './types.js';

const KINDS = ['addVoter', 'removeVoter', 'addLearner'] as const;
/** Bounds on what one config entry may carry. */
const MEMBERS_MAX = 0xffff;
export const CONF_CHANGE_CONTEXT_BYTES_MAX = 0xffff;

/** A decoded config entry: the change and the configuration in force once it is appended. */
export interface ConfigEntry {
  readonly change: ConfChange;
  readonly confState: ConfState;
}

export function encodeConfChange(change: ConfChange, confState: ConfState): Uint8Array {
  const context = change.context ?? new Uint8Array(0);
  assert(context.length <= CONF_CHANGE_CONTEXT_BYTES_MAX, 'config entry context fits', () => `${context.length} bytes`);
  assert(confState.voters.length + confState.learners.length <= MEMBERS_MAX, 'config entry members fit', () => JSON.stringify(confState));
  const bytes = new Uint8Array(5 + 2 + 4 * confState.voters.length + 2 + 4 * confState.learners.length + 2 + context.length);
  const view = new DataView(bytes.buffer);
  bytes[0] = KINDS.indexOf(change.type);
  view.setUint32(1, change.nodeId);
  let offset = 5;
  for (const ids of [confState.voters, confState.learners]) {
    view.setUint16(offset, ids.length);
    offset += 2;
    for (const id of ids) {
      view.setUint32(offset, id);
      offset += 4;
    }
  }
  view.setUint16(offset, context.length);
  bytes.set(context, offset + 2);
  return bytes;
}

/** The entry decoded, or a sentence naming what is wrong with it. */
function parse(data: Uint8Array): ConfigEntry | string {
  if (data.length < 11) return `${data.length} bytes, fewer than a config entry's 11`;
  if (data[0]! >= KINDS.length) return `unknown change kind ${data[0]}`;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const nodeId = view.getUint32(1);
  let offset = 5;
  const lists: number[][] = [];
  for (let list = 0; list < 2; list++) {
    if (offset + 2 > data.length) return 'truncated member list';
    const count = view.getUint16(offset);
    offset += 2;
    if (offset + 4 * count > data.length) return 'truncated member list';
    const ids: number[] = [];
    for (let k = 0; k < count; k++, offset += 4) ids.push(view.getUint32(offset));
    lists.push(ids);
  }
  if (offset + 2 > data.length) return 'no context length';
  const contextLength = view.getUint16(offset);
  if (offset + 2 + contextLength !== data.length) return `context of ${contextLength} bytes does not end the entry (${data.length} bytes)`;
  const [voters, learners] = lists as [number[], number[]];
  if (voters.length === 0) return 'the configuration has no voter';
  if ([...voters, ...learners].some((id) => id === 0)) return 'member id 0';
  const context = data.slice(offset + 2);
  const change: ConfChange = contextLength > 0 ? { type: KINDS[data[0]!]!, nodeId, context } : { type: KINDS[data[0]!]!, nodeId };
  return { change, confState: { voters, learners } };
}

/** Whether `data` is a config entry's payload; a transport refuses an entry whose payload is not. */
export function isWellFormedConfChange(data: Uint8Array): boolean {
  return typeof parse(data) !== 'string';
}

export function decodeConfChange(data: Uint8Array): ConfigEntry {
  const parsed = parse(data);
  assert(typeof parsed !== 'string', 'config entry is well formed', () => parsed as string);
  return parsed;
}

/** The configuration after `change`. */
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

export function sameConfState(a: ConfState, b: ConfState): boolean {
  const same = (x: readonly number[], y: readonly number[]) => x.length === y.length && x.every((id, k) => id === y[k]);
  return same(a.voters, b.voters) && same(a.learners, b.learners);
}
