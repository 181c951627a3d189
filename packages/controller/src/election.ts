// Leader, ISR and replica changes for one partition, after KRaft's PartitionChangeBuilder (without
// ELR). Elections pick, in replica order, a replica in the target ISR that the caller accepts as
// leader (alive: registered, unfenced, not shutting down). The target ISR never becomes empty:
// removing the last member keeps the ISR as it was and leaves the partition without a leader, so
// that member can lead again when it comes back (KRaft without ELR does the same).
//
// Reassignment (KIP-455): every change also completes a move in progress once every target replica
// is in the ISR (PartitionChangeBuilder's completeReassignmentIfNeeded, with ZooKeeper-era Kafka's
// stricter "the whole target is in sync" rule): the replicas become the target, the ISR keeps only
// target members, and a leader being removed hands over to the first acceptable target replica.

import { NO_LEADER, isMoving, originalReplicas, targetReplicas, type PartitionState } from './image.js';
import type { PartitionChangeRecord } from './records.js';

/**
 * - `online`: keep the current leader if it is still acceptable and in the target ISR, otherwise
 *   the first acceptable replica in the target ISR, otherwise no leader.
 * - `unclean`: like `online`, but when nobody in the ISR can lead, the first acceptable replica
 *   that is not being added (an added replica may hold nothing yet) becomes leader and the ISR
 *   shrinks to it (data loss is possible: the topic allowed it).
 * - `preferred`: replicas[0] if it is acceptable and in the target ISR; otherwise as `online`.
 */
export type Election = 'online' | 'unclean' | 'preferred';

/** A partition's replica assignment: the replicas and, while it moves, what is added and removed. */
export interface ReplicaAssignment {
  readonly replicas: readonly number[];
  readonly addingReplicas: readonly number[];
  readonly removingReplicas: readonly number[];
}

export interface PartitionChangeOptions {
  /** Default: the current ISR. An empty target keeps the current ISR. */
  readonly targetIsr?: readonly number[];
  /**
   * A new replica assignment (a move starts, is replaced or is cancelled); the target ISR is cut
   * to its replicas. Default: the current one.
   */
  readonly targetAssignment?: ReplicaAssignment;
  readonly election: Election;
  readonly isAcceptableLeader: (brokerId: number) => boolean;
  /**
   * Default true: complete a move whose whole target is in the ISR. A move's start is its own
   * record (false), so that every replica-set change in the log is a start, a completion or a cancel.
   */
  readonly completeReassignment?: boolean;
}

/** The assignment of a move that goes from the partition's original replicas to `target`. */
export function reassignmentTo(state: PartitionState, target: readonly number[]): ReplicaAssignment {
  const original = originalReplicas(state);
  const removingReplicas = original.filter((id) => !target.includes(id));
  return {
    replicas: [...target, ...removingReplicas],
    addingReplicas: target.filter((id) => !original.includes(id)),
    removingReplicas,
  };
}

/** The assignment that cancels a move: back to the original replicas (replicas − adding, in replica order). */
export function revertedAssignment(state: PartitionState): ReplicaAssignment {
  return { replicas: [...originalReplicas(state)], addingReplicas: [], removingReplicas: [] };
}

/** The PartitionChange record that realises the options, or null when nothing would change. */
export function buildPartitionChange(state: PartitionState, options: PartitionChangeOptions): PartitionChangeRecord | null {
  let assignment: ReplicaAssignment = options.targetAssignment ?? state;
  let targetIsr = (options.targetIsr ?? state.isr).filter((id) => assignment.replicas.includes(id));
  if (targetIsr.length === 0 && options.targetAssignment === undefined) targetIsr = [...state.isr];
  const completed = options.completeReassignment === false ? null : completeReassignmentIfPossible(assignment, targetIsr, options.isAcceptableLeader);
  if (completed !== null) {
    assignment = completed;
    targetIsr = targetIsr.filter((id) => completed.replicas.includes(id));
  }
  const replicas = assignment.replicas;
  const valid = (brokerId: number): boolean => targetIsr.includes(brokerId) && options.isAcceptableLeader(brokerId);
  let leader = NO_LEADER;
  let unclean = false;
  if (options.election === 'preferred' && valid(replicas[0]!)) {
    leader = replicas[0]!;
  } else if (state.leader !== NO_LEADER && valid(state.leader)) {
    leader = state.leader;
  } else {
    leader = replicas.find(valid) ?? NO_LEADER;
    if (leader === NO_LEADER && (options.election === 'unclean' || targetIsr.length === 0)) {
      // An empty target ISR only comes with a new assignment that keeps no ISR member (a cancel
      // whose ISR was only added replicas): the caller checked that the topic allows unclean election.
      const candidates = replicas.filter((id) => !assignment.addingReplicas.includes(id));
      leader = candidates.find(options.isAcceptableLeader) ?? NO_LEADER;
      unclean = leader !== NO_LEADER || targetIsr.length === 0;
      if (targetIsr.length === 0 && leader === NO_LEADER) targetIsr = [candidates[0] ?? replicas[0]!];
    }
  }
  const isr = unclean && leader !== NO_LEADER ? [leader] : [...targetIsr];
  const replicasChanged =
    !sameList(replicas, state.replicas) || !sameList(assignment.addingReplicas, state.addingReplicas) || !sameList(assignment.removingReplicas, state.removingReplicas);
  if (leader === state.leader && sameList(isr, state.isr) && !replicasChanged) return null;
  const record: PartitionChangeRecord = {
    type: 'PartitionChange',
    topicId: state.topicId,
    partition: state.partition,
    leader,
    isr,
    leaderEpoch: leader === state.leader ? state.leaderEpoch : state.leaderEpoch + 1,
    partitionEpoch: state.partitionEpoch + 1,
  };
  if (!replicasChanged) return record;
  return {
    ...record,
    replicas: [...replicas],
    ...(assignment.addingReplicas.length > 0 ? { addingReplicas: [...assignment.addingReplicas] } : {}),
    ...(assignment.removingReplicas.length > 0 ? { removingReplicas: [...assignment.removingReplicas] } : {}),
  };
}

/**
 * The completed assignment when the move can finish with `targetIsr`: every target replica is in
 * it, and some target replica in it may lead (so a leader being removed can hand over). Null when
 * the partition is not moving or must wait.
 */
function completeReassignmentIfPossible(
  assignment: ReplicaAssignment,
  targetIsr: readonly number[],
  isAcceptableLeader: (brokerId: number) => boolean,
): ReplicaAssignment | null {
  if (!isMoving(assignment)) return null;
  const target = targetReplicas(assignment);
  if (!target.every((id) => targetIsr.includes(id))) return null;
  if (!target.some(isAcceptableLeader)) return null;
  return { replicas: [...target], addingReplicas: [], removingReplicas: [] };
}

function sameList(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((value, index) => value === b[index]);
}
