// A partition is under-replicated when its ISR is smaller than the replicas it should have; while a
// reassignment adds replicas that is the replicas it had, not the enlarged set (Kafka's
// OngoingReassignmentState), so a healthy move does not raise runnel_under_replicated_partitions.
import { describe, expect, it } from 'vitest';
import { isUnderReplicated } from '../src/partition.js';

const role = { leader: 1, leaderEpoch: 1, partitionEpoch: 1 };

describe('isUnderReplicated', () => {
  it('compares the ISR with the replicas, less those a move is adding', () => {
    expect(isUnderReplicated({ ...role, replicas: [1, 2, 3], isr: [1, 2, 3] })).toBe(false);
    expect(isUnderReplicated({ ...role, replicas: [1, 2, 3], isr: [1, 2] })).toBe(true);
    // Moving [1,2,3] to [1,2,4]: 4 is being added, the three original replicas are in sync.
    expect(isUnderReplicated({ ...role, replicas: [1, 2, 4, 3], isr: [1, 2, 3], addingReplicas: [4] })).toBe(false);
    // ... but one of them dropping out is under-replication, move or not.
    expect(isUnderReplicated({ ...role, replicas: [1, 2, 4, 3], isr: [1, 2], addingReplicas: [4] })).toBe(true);
  });
});
