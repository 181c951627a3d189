// `runnel cluster status` marks each partition's health from the metadata it is given: a partition
// a reassignment is moving shows MOVING with the replicas added and removed, and is not counted as
// under-replicated while the replicas it had are in sync (as Kafka counts it).
import { describe, expect, it } from 'vitest';
import type { ClusterStatus } from '@runnel/client';
import { partitionHealth, renderClusterStatus } from '../src/commands/status.js';

const node = (id: number) => ({
  id,
  host: '127.0.0.1',
  port: 9190 + id,
  rack: null,
  fenced: false,
  incarnationId: `i${id}`,
  brokerEpoch: id,
  inControlledShutdown: false,
  offlineReplicas: [],
  logDir: 'online' as const,
  decommissioned: false,
});

const partition = (index: number, replicas: number[], isr: number[], addingReplicas: number[] = [], removingReplicas: number[] = []) => ({
  partition: index,
  leader: isr[0]!,
  leaderEpoch: 1,
  partitionEpoch: 2,
  replicas,
  isr,
  addingReplicas,
  removingReplicas,
  offlineReplicas: [],
  minInsyncReplicas: 2,
});

describe('cluster status partition health', () => {
  it('shows a move as MOVING, not as under-replication, while its original replicas are in sync', () => {
    const moving = partition(0, [1, 2, 4, 3], [1, 2, 3], [4], [3]);
    expect(partitionHealth(moving)).toEqual({ underReplicated: false, offline: false, replicaOffline: false, moving: true });
    const movingShort = partition(1, [1, 2, 4, 3], [1, 2], [4], [3]);
    expect(partitionHealth(movingShort).underReplicated).toBe(true);
    const settled = partition(2, [1, 2, 3], [1, 2]);
    expect(partitionHealth(settled)).toEqual({ underReplicated: true, offline: false, replicaOffline: false, moving: false });

    const status = {
      clusterId: 'c',
      controller: { id: 1, term: 3 },
      voters: [],
      servedBy: 1,
      metadataOffset: 10,
      nodes: [1, 2, 3, 4].map(node),
      topics: [{ name: 't', partitions: [moving, movingShort, settled] }],
    } as unknown as ClusterStatus;
    const text = renderClusterStatus(status);
    expect(text).toMatch(/^0 +1 +1 +1,2,4,3 +1,2,3 +MOVING \+4 -3$/m);
    expect(text).toMatch(/^1 +1 +1 +1,2,4,3 +1,2 +UNDER-REPLICATED MOVING \+4 -3$/m);
    expect(text).toContain('3 partitions in 1 topic: 0 offline, 2 under-replicated');
  });
});
