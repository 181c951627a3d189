// Leader and ISR changes for one partition, after KRaft's PartitionChangeBuilder (without ELR and
// reassignment). Elections pick, in replica order, a replica in the target ISR that the caller
// accepts as leader (alive: registered, unfenced, not shutting down). The target ISR never becomes
// empty: removing the last member keeps the ISR as it was and leaves the partition without a
// leader, so that member can lead again when it comes back (KRaft without ELR does the same).

import { NO_LEADER, type PartitionState } from './image.js';
import type { PartitionChangeRecord } from './records.js';

/**
 * - `online`: keep the current leader if it is still acceptable and in the target ISR, otherwise
 *   the first acceptable replica in the target ISR, otherwise no leader.
 * - `unclean`: like `online`, but when nobody in the ISR can lead, the first acceptable replica
 *   becomes leader and the ISR shrinks to it (data loss is possible: the topic allowed it).
 * - `preferred`: replicas[0] if it is acceptable and in the target ISR; otherwise as `online`.
 */
export type Election = 'online' | 'unclean' | 'preferred';

export interface PartitionChangeOptions {
  /** Default: the current ISR. An empty target keeps the current ISR. */
  readonly targetIsr?: readonly number[];
  readonly election: Election;
  readonly isAcceptableLeader: (brokerId: number) => boolean;
}

/** The PartitionChange record that realises the options, or null when nothing would change. */
export function buildPartitionChange(state: PartitionState, options: PartitionChangeOptions): PartitionChangeRecord | null {
  const targetIsr = options.targetIsr ?? state.isr;
  const valid = (brokerId: number): boolean => targetIsr.includes(brokerId) && options.isAcceptableLeader(brokerId);
  let leader = NO_LEADER;
  let unclean = false;
  if (options.election === 'preferred' && valid(state.replicas[0]!)) {
    leader = state.replicas[0]!;
  } else if (state.leader !== NO_LEADER && valid(state.leader)) {
    leader = state.leader;
  } else {
    leader = state.replicas.find(valid) ?? NO_LEADER;
    if (leader === NO_LEADER && options.election === 'unclean') {
      leader = state.replicas.find(options.isAcceptableLeader) ?? NO_LEADER;
      unclean = leader !== NO_LEADER;
    }
  }
  const isr = unclean ? [leader] : targetIsr.length > 0 ? [...targetIsr] : [...state.isr];
  if (leader === state.leader && sameList(isr, state.isr)) return null;
  return {
    type: 'PartitionChange',
    topicId: state.topicId,
    partition: state.partition,
    leader,
    isr,
    leaderEpoch: leader === state.leader ? state.leaderEpoch : state.leaderEpoch + 1,
    partitionEpoch: state.partitionEpoch + 1,
  };
}

function sameList(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((value, index) => value === b[index]);
}
