// `runnel cluster rebalance --replicas` (Redpanda's partition balancer, run on demand) and
// `runnel broker decommission|recommission|decommission-status` (rpk's `redpanda admin brokers
// decommission`): the active controller plans and starts the moves; these print the plan and
// follow the moves until no partition is moving.
import type { Admin, BrokerDecommissionOutcome, ClusterStatus, ReplicaRebalance } from '@runnel/client';
import { printJson, printLine, renderTable, type OutputFormat } from '../output.js';
import { leaderCounts, renderElection, replicasPerNode } from './status.js';
import { withAdmin } from './topic.js';

const POLL_INTERVAL_MS = 1000;

export interface RebalanceReplicasOptions {
  dryRun: boolean;
  wait: boolean;
  /** With --wait: give up after this many seconds (default: no limit). */
  timeoutS?: number;
  format: OutputFormat;
}

/** Replicas, and partitions led, per node (every node, 0 when it has none). */
export function replicaCounts(status: ClusterStatus): Map<number, { replicas: number; leaders: number }> {
  const replicas = replicasPerNode(status);
  const leaders = leaderCounts(status);
  const ids = [...new Set([...replicas.keys(), ...leaders.keys()])].sort((a, b) => a - b);
  return new Map(ids.map((id) => [id, { replicas: replicas.get(id) ?? 0, leaders: leaders.get(id) ?? 0 }]));
}

/** The plain-text plan: each move, then each broker's replica and preferred-leader counts before → after. */
export function renderRebalancePlan(plan: ReplicaRebalance): string {
  const lines: string[] = [];
  if (plan.moves.length === 0) lines.push('nothing to move: replicas and preferred leaders are spread evenly');
  else lines.push(renderTable(['TOPIC', 'PARTITION', 'REPLICAS', 'TARGET'], plan.moves.map((move) => [move.topic, move.partition, move.from.join(','), move.to.join(',')])));
  lines.push('');
  lines.push(
    renderTable(
      ['BROKER', 'REPLICAS', 'PREFERRED LEADER OF'],
      plan.brokers.map((broker) => [broker.brokerId, `${broker.replicasBefore} -> ${broker.replicasAfter}`, `${broker.preferredBefore} -> ${broker.preferredAfter}`]),
    ),
  );
  for (const ref of plan.unplaceable) lines.push(`${ref.topic}-${ref.partition}: has a replica on a decommissioned broker that no usable broker can take`);
  return lines.join('\n');
}

/** Polls the moving partitions until none is left (or the deadline), printing how many remain when it changes. */
async function waitForMoves(admin: Admin, deadline: number, report: (line: string) => void): Promise<void> {
  let last = -1;
  for (;;) {
    const moving = await admin.listPartitionReassignments(undefined, { progress: true });
    if (moving.length === 0) return;
    if (moving.length !== last) {
      const behind = moving.map((entry) => {
        const left = entry.progress?.adding.map((replica) => replica.offsetsLeft) ?? [];
        return `${entry.topic}-${entry.partition}${left.length > 0 ? ` (${Math.max(...left)} offsets to copy)` : ''}`;
      });
      report(`${moving.length} partition(s) moving: ${behind.slice(0, 6).join(' ')}${behind.length > 6 ? ' ...' : ''}`);
      last = moving.length;
    }
    if (Date.now() > deadline) throw new Error(`${moving.length} partition(s) still moving after the --timeout; follow them with 'runnel partitions reassign --list'`);
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}

export async function clusterRebalanceReplicas(bootstrap: string, options: RebalanceReplicasOptions): Promise<void> {
  if (options.dryRun && options.wait) throw new Error('--dry-run and --wait do not go together: a dry run starts nothing to wait for');
  const json = options.format === 'json';
  const report = (line: string): void => {
    if (!json) printLine(line);
  };
  await withAdmin(bootstrap, async (admin) => {
    const plan = await admin.rebalanceReplicas({ dryRun: options.dryRun });
    report(renderRebalancePlan(plan));
    const failed = plan.started.filter((outcome) => outcome.error !== null);
    for (const outcome of failed) report(`${outcome.topic}-${outcome.partition}: not started: ${outcome.error!.errorName}: ${outcome.error!.detail}`);
    if (failed.length > 0) process.exitCode = 1;
    const result: Record<string, unknown> = { dryRun: options.dryRun, ...plan, started: plan.started.map((outcome) => ({ topic: outcome.topic, partition: outcome.partition, error: outcome.error?.errorName ?? null, message: outcome.error?.detail ?? null })) };
    if (options.dryRun) {
      report('\nDry run: nothing was moved.');
    } else if (!options.wait) {
      if (plan.moves.length > 0) report(`\nStarted ${plan.started.length - failed.length} move(s). Follow them with 'runnel partitions reassign --list'; then 'runnel cluster rebalance' moves leadership to the new preferred replicas.`);
    } else {
      if (plan.moves.length > 0) report('');
      await waitForMoves(admin, options.timeoutS === undefined ? Infinity : Date.now() + options.timeoutS * 1000, report);
      if (plan.moves.length > 0) report('every move completed');
      // Leaders follow the preferred replicas the plan spread out.
      const election = await admin.electPreferredLeaders();
      report(`\nPreferred-leader election:\n${renderElection(election)}`);
      const counts = replicaCounts(await admin.clusterStatus());
      report(`\n${renderTable(['BROKER', 'REPLICAS', 'LEADERS'], [...counts].map(([id, count]) => [id, count.replicas, count.leaders]))}`);
      result['election'] = election;
      result['after'] = Object.fromEntries([...counts].map(([id, count]) => [String(id), count]));
    }
    if (json) printJson(result);
  });
}

function renderDecommission(brokerId: number, decommission: boolean, outcome: BrokerDecommissionOutcome): string {
  const lines: string[] = [];
  const failed = outcome.moves.filter((move) => move.error !== null);
  if (decommission) {
    lines.push(`Broker ${brokerId} is decommissioned: it gets no new replicas; ${outcome.replicasLeft} partition(s) still have a replica on it.`);
    lines.push(`Started moving ${outcome.moves.length - failed.length} partition(s) off it.`);
    for (const ref of outcome.unplaceable) lines.push(`${ref.topic}-${ref.partition}: no usable broker can take its replica now; the controller retries`);
    lines.push(`Follow it with 'runnel broker decommission-status ${brokerId}'.`);
  } else {
    lines.push(`Broker ${brokerId} is recommissioned: it takes new replicas again; cancelled ${outcome.moves.length - failed.length} move(s) off it; it has ${outcome.replicasLeft} replica(s).`);
  }
  for (const move of failed) lines.push(`${move.topic}-${move.partition}: ${move.error!.errorName}: ${move.error!.detail}`);
  return lines.join('\n');
}

export async function brokerDecommission(bootstrap: string, brokerId: number, decommission: boolean, format: OutputFormat): Promise<void> {
  const outcome = await withAdmin(bootstrap, (admin) => (decommission ? admin.decommissionBroker(brokerId) : admin.recommissionBroker(brokerId)));
  if (outcome.moves.some((move) => move.error !== null)) process.exitCode = 1;
  if (format === 'json') {
    printJson({
      brokerId,
      decommissioned: decommission,
      replicasLeft: outcome.replicasLeft,
      moves: outcome.moves.map((move) => ({ topic: move.topic, partition: move.partition, error: move.error?.errorName ?? null, message: move.error?.detail ?? null })),
      unplaceable: outcome.unplaceable,
    });
  } else {
    printLine(renderDecommission(brokerId, decommission, outcome));
  }
}

export interface DecommissionStatus {
  brokerId: number;
  decommissioned: boolean;
  /** Whether its metadata says it is fenced (down). */
  fenced: boolean;
  /** Partitions with a replica on the broker, and whether each is moving off it. */
  replicas: Array<{ topic: string; partition: number; moving: boolean }>;
  /** Decommissioned and holding no replica: it can be stopped. */
  done: boolean;
}

export async function decommissionStatus(admin: Admin, brokerId: number): Promise<DecommissionStatus> {
  const status = await admin.clusterStatus();
  const node = status.nodes.find((candidate) => candidate.id === brokerId);
  if (node === undefined) throw new Error(`no broker ${brokerId} is registered`);
  const moving = new Set((await admin.listPartitionReassignments()).filter((entry) => entry.removingReplicas.includes(brokerId)).map((entry) => `${entry.partition}:${entry.topic}`));
  const replicas = status.topics.flatMap((topic) =>
    topic.partitions.filter((partition) => partition.replicas.includes(brokerId)).map((partition) => ({ topic: topic.name, partition: partition.partition, moving: moving.has(`${partition.partition}:${topic.name}`) })),
  );
  return { brokerId, decommissioned: node.decommissioned, fenced: node.fenced, replicas, done: node.decommissioned && replicas.length === 0 };
}

export async function brokerDecommissionStatus(bootstrap: string, brokerId: number, options: { wait: boolean; timeoutS?: number; format: OutputFormat }): Promise<void> {
  const deadline = options.timeoutS === undefined ? Infinity : Date.now() + options.timeoutS * 1000;
  const status = await withAdmin(bootstrap, async (admin) => {
    for (;;) {
      const current = await decommissionStatus(admin, brokerId);
      if (!options.wait || current.done || !current.decommissioned || Date.now() > deadline) return current;
      if (options.format !== 'json') printLine(`broker ${brokerId}: ${current.replicas.length} replica(s) left`);
      await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
    }
  });
  if (options.format === 'json') printJson(status);
  else {
    const state = !status.decommissioned ? 'not decommissioned' : status.done ? 'decommissioned, no replicas left: it can be stopped' : 'decommissioning';
    const lines = [`Broker ${brokerId}: ${state}${status.fenced ? ' (fenced)' : ''}; ${status.replicas.length} replica(s) left.`];
    if (status.replicas.length > 0) lines.push(renderTable(['TOPIC', 'PARTITION', 'MOVING OFF'], status.replicas.map((replica) => [replica.topic, replica.partition, replica.moving ? 'yes' : 'no'])));
    printLine(lines.join('\n'));
  }
  // A health check can wait on it: exit 1 until it is done.
  if (status.decommissioned && !status.done) process.exitCode = 1;
}
