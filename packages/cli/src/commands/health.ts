// `runnel cluster health [--watch] [--exit-when-healthy --timeout S]`: one verdict a script can act
// on (as `rpk cluster health`). Healthy = an active controller, every registered broker live
// (not fenced, not shutting down), every partition with a leader, none with fewer in-sync replicas
// than its min.insync.replicas, every broker's log directory online (not full, not failed). A
// decommissioned broker that holds no replica may be down. The
// exit status is 0 when healthy, 1 when not.
import { Admin, type ClusterStatus } from '@runnel/client';
import { printJson, printLine, type OutputFormat } from '../output.js';
import { replicasPerNode } from './status.js';

const POLL_INTERVAL_MS = 2_000;

export interface ClusterHealth {
  healthy: boolean;
  controller: number;
  brokers: { live: number[]; down: number[] };
  /** Brokers whose log directory is full or offline, e.g. "1 (offline)". */
  logDirProblems: string[];
  leaderlessPartitions: string[];
  underMinIsrPartitions: string[];
  /** Why not healthy, one line each; empty when healthy. */
  problems: string[];
}

export function clusterHealthOf(status: ClusterStatus): ClusterHealth {
  // A decommissioned broker that holds no replica is meant to go away: being down is no problem.
  const replicas = replicasPerNode(status);
  const retired = (node: ClusterStatus['nodes'][number]): boolean => node.decommissioned && (replicas.get(node.id) ?? 0) === 0;
  const live = status.nodes.filter((node) => !node.fenced && !node.inControlledShutdown).map((node) => node.id);
  const down = status.nodes.filter((node) => (node.fenced || node.inControlledShutdown) && !retired(node)).map((node) => node.id);
  const leaderless: string[] = [];
  const underMinIsr: string[] = [];
  for (const topic of status.topics) {
    for (const partition of topic.partitions) {
      const name = `${topic.name}-${partition.partition}`;
      if (partition.leader < 0) leaderless.push(name);
      else if (partition.isr.length < partition.minInsyncReplicas) underMinIsr.push(name);
    }
  }
  const logDirProblems = status.nodes.filter((node) => node.logDir !== 'online').map((node) => `${node.id} (${node.logDir})`);
  const problems: string[] = [];
  if (status.controller.id < 0) problems.push('no active controller');
  if (down.length > 0) problems.push(`brokers not live: ${down.join(', ')}`);
  if (logDirProblems.length > 0) problems.push(`log directories not online: ${logDirProblems.join(', ')}; see the broker's /readyz, and restart it once space is freed`);
  if (leaderless.length > 0) problems.push(`partitions without a leader: ${listed(leaderless)}`);
  if (underMinIsr.length > 0) problems.push(`partitions under min.insync.replicas: ${listed(underMinIsr)}`);
  return { healthy: problems.length === 0, controller: status.controller.id, brokers: { live, down }, logDirProblems, leaderlessPartitions: leaderless, underMinIsrPartitions: underMinIsr, problems };
}

function listed(names: string[]): string {
  const shown = 10;
  return names.slice(0, shown).join(' ') + (names.length > shown ? ` (+${names.length - shown} more)` : '');
}

function unreachable(error: unknown): ClusterHealth {
  return { healthy: false, controller: -1, brokers: { live: [], down: [] }, logDirProblems: [], leaderlessPartitions: [], underMinIsrPartitions: [], problems: [`cannot reach the cluster: ${(error as Error).message}`] };
}

function print(health: ClusterHealth, format: OutputFormat): void {
  if (format === 'json') {
    printJson(health);
    return;
  }
  const lines = [
    `Healthy: ${health.healthy ? 'yes' : 'no'}`,
    `Controller: ${health.controller < 0 ? 'none' : `node ${health.controller}`}`,
    `Live brokers: ${health.brokers.live.join(', ') || 'none'}`,
    `Brokers not live: ${health.brokers.down.join(', ') || 'none'}`,
    `Log directories not online: ${health.logDirProblems.join(', ') || 'none'}`,
    `Partitions without a leader: ${listed(health.leaderlessPartitions) || 'none'}`,
    `Partitions under min.insync.replicas: ${listed(health.underMinIsrPartitions) || 'none'}`,
  ];
  printLine(lines.join('\n'));
}

export interface ClusterHealthOptions {
  readonly format: OutputFormat;
  readonly watch: boolean;
  readonly exitWhenHealthy: boolean;
  /** With exitWhenHealthy: give up (exit 1) after this many seconds. */
  readonly timeoutS: number | undefined;
}

/** Prints the verdict (once, or on every change with --watch) and sets the exit status. */
export async function clusterHealth(bootstrap: string, options: ClusterHealthOptions): Promise<void> {
  const admin = new Admin({ bootstrap, requestTimeoutMs: 5_000 });
  const deadline = options.timeoutS === undefined ? Number.POSITIVE_INFINITY : Date.now() + options.timeoutS * 1000;
  let printed = '';
  try {
    for (;;) {
      const health = await admin.clusterStatus().then(clusterHealthOf, unreachable);
      const polling = options.watch || options.exitWhenHealthy;
      const text = JSON.stringify(health);
      // Watching prints each new verdict; waiting prints only the last.
      if (options.watch && text !== printed) print(health, options.format);
      printed = text;
      const done = !polling || (options.exitWhenHealthy && health.healthy) || Date.now() >= deadline;
      if (done) {
        if (!options.watch) print(health, options.format);
        process.exitCode = health.healthy ? 0 : 1;
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(POLL_INTERVAL_MS, Math.max(0, deadline - Date.now()))));
    }
  } finally {
    await admin.close();
  }
}
