// `runnel cluster status` and `runnel cluster rebalance`: the cluster as one node's metadata image
// has it, and preferred-leader election on demand.
import type { ClusterNodeStatus, ClusterPartitionStatus, ClusterStatus, PreferredLeaderElection } from '@runnel/client';
import { printJson, printLine, renderTable, type OutputFormat } from '../output.js';
import { withAdmin } from './topic.js';

/**
 * An offline partition has no leader; an under-replicated one has fewer in-sync replicas than
 * replicas (while it moves, than the replicas it had: those being added do not count, as in
 * Kafka); one with a replica offline has a broker whose log failed for it.
 */
export function partitionHealth(partition: ClusterPartitionStatus): { underReplicated: boolean; offline: boolean; replicaOffline: boolean; moving: boolean } {
  const adding = partition.addingReplicas ?? [];
  return {
    underReplicated: partition.isr.length < partition.replicas.length - adding.length,
    offline: partition.leader < 0,
    replicaOffline: partition.offlineReplicas.length > 0,
    moving: adding.length > 0 || (partition.removingReplicas ?? []).length > 0,
  };
}

/** Partitions led per node: every node (0 when it leads none), then any other leader id seen. */
export function leaderCounts(status: ClusterStatus): Map<number, number> {
  const counts = new Map<number, number>(status.nodes.map((node) => [node.id, 0]));
  for (const topic of status.topics) {
    for (const partition of topic.partitions) {
      if (partition.leader >= 0) counts.set(partition.leader, (counts.get(partition.leader) ?? 0) + 1);
    }
  }
  return new Map([...counts].sort((a, b) => a[0] - b[0]));
}

/** The JSON of `cluster status --format json`: DESIGN.md's shape plus voters, epochs, health flags and leader counts. */
export function clusterStatusJson(status: ClusterStatus): object {
  return {
    clusterId: status.clusterId,
    controller: { id: status.controller.id, term: status.controller.term },
    voters: status.voters.map((voter) => ({ id: voter.id, address: voter.address, logEndOffset: voter.logEndOffset })),
    nodes: status.nodes.map((node) => ({
      id: node.id,
      host: node.host,
      port: node.port,
      rack: node.rack,
      fenced: node.fenced,
      incarnationId: node.incarnationId,
      inControlledShutdown: node.inControlledShutdown,
      offlineReplicas: node.offlineReplicas,
      logDir: node.logDir,
      decommissioned: node.decommissioned,
      replicas: replicasPerNode(status).get(node.id) ?? 0,
    })),
    topics: status.topics.map((topic) => ({
      name: topic.name,
      partitions: topic.partitions.map((partition) => ({
        partition: partition.partition,
        leader: partition.leader,
        leaderEpoch: partition.leaderEpoch,
        partitionEpoch: partition.partitionEpoch,
        replicas: partition.replicas,
        isr: partition.isr,
        addingReplicas: partition.addingReplicas,
        removingReplicas: partition.removingReplicas,
        offlineReplicas: partition.offlineReplicas,
        ...partitionHealth(partition),
      })),
    })),
    leaders: Object.fromEntries([...leaderCounts(status)].map(([id, count]) => [String(id), count])),
  };
}

/** Partitions with a replica on each node (0 when it has none). */
export function replicasPerNode(status: ClusterStatus): Map<number, number> {
  const counts = new Map<number, number>(status.nodes.map((node) => [node.id, 0]));
  for (const topic of status.topics) for (const partition of topic.partitions) for (const id of partition.replicas) counts.set(id, (counts.get(id) ?? 0) + 1);
  return counts;
}

function nodeState(node: ClusterNodeStatus): string {
  if (node.decommissioned) return node.fenced ? 'decommissioned, FENCED' : 'decommissioned';
  if (node.fenced) return 'FENCED';
  if (node.inControlledShutdown) return 'shutting down';
  if (node.logDir !== 'online') return `live, log dir ${node.logDir}`;
  return 'live';
}

/** A node's offline replicas as `topic-partition` names, the first few of them. */
function offlineReplicaNames(node: ClusterNodeStatus): string {
  const shown = 3;
  const names = node.offlineReplicas.slice(0, shown).map((replica) => `${replica.topic}-${replica.partition}`);
  if (node.offlineReplicas.length > shown) names.push(`+${node.offlineReplicas.length - shown} more`);
  return names.join(' ') || '-';
}

function address(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** The plain-text report of `cluster status`. */
export function renderClusterStatus(status: ClusterStatus): string {
  const controller = status.controller.id < 0 ? 'controller: none active' : `controller: node ${status.controller.id} (term ${status.controller.term})`;
  const blocks: string[] = [];
  const replicas = replicasPerNode(status);
  blocks.push(
    [
      `Cluster ${status.clusterId}  ${controller}  (as node ${status.servedBy} sees it at metadata offset ${status.metadataOffset})`,
      status.voters.length === 0
        ? 'voters: unknown'
        : `voters: ${status.voters.map((voter) => `${voter.id}@${voter.address}${voter.logEndOffset >= 0 ? ` (log end ${voter.logEndOffset})` : ' (not heard from)'}`).join('  ')}`,
    ].join('\n'),
  );
  blocks.push(
    status.nodes.length === 0
      ? 'No nodes registered.'
      : renderTable(
          ['NODE', 'ADDRESS', 'RACK', 'STATE', 'REPLICAS', 'INCARNATION', 'OFFLINE REPLICAS'],
          status.nodes.map((node) => [node.id, address(node.host, node.port), node.rack ?? '-', nodeState(node), replicas.get(node.id) ?? 0, node.incarnationId || '-', offlineReplicaNames(node)]),
        ),
  );
  const counts = leaderCounts(status);
  blocks.push(`leaders: ${[...counts].map(([id, count]) => `node ${id}: ${count}`).join('  ') || 'none'}`);

  let partitions = 0;
  let offline = 0;
  let underReplicated = 0;
  let offlineReplicas = 0;
  for (const topic of status.topics) {
    const rows = topic.partitions.map((partition) => {
      const health = partitionHealth(partition);
      partitions++;
      if (health.offline) offline++;
      if (health.underReplicated) underReplicated++;
      offlineReplicas += partition.offlineReplicas.length;
      const flags = [
        health.offline ? 'OFFLINE' : '',
        health.underReplicated ? 'UNDER-REPLICATED' : '',
        health.replicaOffline ? `REPLICA-OFFLINE ${partition.offlineReplicas.join(',')}` : '',
        health.moving ? `MOVING +${partition.addingReplicas.join(',') || '-'} -${partition.removingReplicas.join(',') || '-'}` : '',
      ]
        .filter((flag) => flag !== '')
        .join(' ');
      return [partition.partition, health.offline ? 'none' : partition.leader, partition.leaderEpoch, partition.replicas.join(','), partition.isr.join(',') || '-', flags];
    });
    const table = renderTable(['PARTITION', 'LEADER', 'EPOCH', 'REPLICAS', 'ISR', 'STATUS'], rows)
      .split('\n')
      .map((line) => line.trimEnd())
      .join('\n');
    blocks.push(`Topic: ${topic.name}  Partitions: ${topic.partitions.length}\n${table}`);
  }
  if (status.topics.length === 0) blocks.push('No topics.');
  blocks.push(
    `${plural(partitions, 'partition')} in ${plural(status.topics.length, 'topic')}: ${offline} offline, ${underReplicated} under-replicated, ${plural(offlineReplicas, 'offline replica')}.`,
  );
  return blocks.join('\n\n');
}

export async function clusterStatus(bootstrap: string, format: OutputFormat): Promise<void> {
  const status = await withAdmin(bootstrap, (admin) => admin.clusterStatus());
  if (format === 'json') printJson(clusterStatusJson(status));
  else printLine(renderClusterStatus(status));
}

/** The plain-text report of `cluster rebalance`. */
export function renderElection(result: PreferredLeaderElection): string {
  if (result.moved.length === 0 && result.notMoved.length === 0) return 'nothing to move: every partition is led by its preferred replica';
  const lines = [
    ...result.moved.map((move) => `${move.topic}-${move.partition}: leader ${move.from} -> ${move.to} (epoch ${move.leaderEpoch})`),
    ...result.notMoved.map(
      (entry) => `${entry.topic}-${entry.partition}: not moved, leader ${entry.leader < 0 ? 'none' : entry.leader}, preferred ${entry.preferred}: ${entry.reason}`,
    ),
  ];
  lines.push(`${plural(result.moved.length, 'leader')} moved, ${result.notMoved.length} not moved.`);
  return lines.join('\n');
}

export async function clusterRebalance(bootstrap: string, format: OutputFormat): Promise<void> {
  const result = await withAdmin(bootstrap, (admin) => admin.electPreferredLeaders());
  if (format === 'json') printJson(result);
  else printLine(renderElection(result));
}
