// `runnel partitions reassign`: Kafka's kafka-reassign-partitions, on the controller's KIP-455
// reassignment. Files use Kafka's reassignment JSON:
//   {"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[2,3,4]}]}
import { readFileSync } from 'node:fs';
import { Admin, type BrokerConfigResource, type OngoingPartitionReassignment } from '@runnel/client';
import { FOLLOWER_REPLICATION_THROTTLED_RATE, LEADER_REPLICATION_THROTTLED_RATE } from '@runnel/common';
import { MetadataImage, planReassignment, type MetadataRecord } from '@runnel/controller';
import { printJson, printLine, renderTable, type OutputFormat } from '../output.js';

export interface ReassignmentEntry {
  topic: string;
  partition: number;
  replicas: number[];
}

export interface ReassignmentFile {
  version: 1;
  partitions: ReassignmentEntry[];
}

/** Reads and validates a reassignment JSON file; every problem is one message naming the entry. */
export function readReassignmentFile(path: string): ReassignmentFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`cannot read reassignment file ${path}: ${(error as Error).message}`);
  }
  const fail = (detail: string): never => {
    throw new Error(`reassignment file ${path}: ${detail}`);
  };
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) fail('must be a JSON object {"version":1,"partitions":[...]}');
  const { version, partitions } = parsed as { version?: unknown; partitions?: unknown };
  if (version !== 1) fail(`version must be 1, got ${JSON.stringify(version)}`);
  if (!Array.isArray(partitions) || partitions.length === 0) fail('"partitions" must be a non-empty array');
  const seen = new Set<string>();
  const entries = (partitions as unknown[]).map((entry, index): ReassignmentEntry => {
    const where = `partitions[${index}]`;
    if (typeof entry !== 'object' || entry === null) fail(`${where} must be an object {"topic","partition","replicas"}`);
    const { topic, partition, replicas } = entry as { topic?: unknown; partition?: unknown; replicas?: unknown };
    if (typeof topic !== 'string' || topic.length === 0) fail(`${where}.topic must be a topic name`);
    if (typeof partition !== 'number' || !Number.isSafeInteger(partition) || partition < 0) fail(`${where}.partition must be an integer >= 0`);
    if (!Array.isArray(replicas) || replicas.length === 0 || replicas.some((id) => typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0)) {
      fail(`${where}.replicas must be a non-empty array of broker ids`);
    }
    if (new Set(replicas as number[]).size !== (replicas as number[]).length) fail(`${where}.replicas names a broker twice: [${(replicas as number[]).join(',')}]`);
    const key = `${topic as string}-${partition as number}`;
    if (seen.has(key)) fail(`${where}: partition ${key} appears twice`);
    seen.add(key);
    return { topic: topic as string, partition: partition as number, replicas: [...(replicas as number[])] };
  });
  return { version: 1, partitions: entries };
}

async function withAdmin<T>(bootstrap: string, run: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = new Admin({ bootstrap: bootstrap.split(',') });
  try {
    return await run(admin);
  } finally {
    await admin.close();
  }
}

/** The current replicas of the file's partitions (what to keep for a rollback). */
async function currentAssignment(admin: Admin, entries: readonly { topic: string; partition: number }[]): Promise<ReassignmentFile> {
  const topics = [...new Set(entries.map((entry) => entry.topic))];
  const described = await admin.describeTopics(topics);
  return {
    version: 1,
    partitions: entries.map((entry) => {
      const partition = described.find((topic) => topic.name === entry.topic)?.partitions.find((candidate) => candidate.partition === entry.partition);
      if (partition === undefined) throw new Error(`UNKNOWN_TOPIC_OR_PARTITION: ${entry.topic}-${entry.partition} does not exist`);
      return { topic: entry.topic, partition: entry.partition, replicas: partition.replicas };
    }),
  };
}

function submitErrors(outcomes: Awaited<ReturnType<Admin['alterPartitionReassignments']>>): string[] {
  return outcomes.filter((outcome) => outcome.error !== null).map((outcome) => `${outcome.topic}-${outcome.partition}: ${outcome.error!.errorName}: ${outcome.error!.detail}`);
}

/** --generate: the current assignment of `topics` and the balancer's plan over `brokers`. */
export async function reassignGenerate(bootstrap: string, brokers: number[], topics: string[], format: OutputFormat): Promise<void> {
  await withAdmin(bootstrap, async (admin) => {
    const status = await admin.clusterStatus();
    const unknownBrokers = brokers.filter((id) => !status.nodes.some((node) => node.id === id));
    if (unknownBrokers.length > 0) throw new Error(`--brokers: no registered broker ${unknownBrokers.join(', ')}`);
    const unknownTopics = topics.filter((name) => !status.topics.some((topic) => topic.name === name));
    if (unknownTopics.length > 0) throw new Error(`UNKNOWN_TOPIC_OR_PARTITION: no topic ${unknownTopics.map((name) => `'${name}'`).join(', ')}`);
    // An image of just those topics, so that the plan moves nothing else.
    const records: MetadataRecord[] = status.nodes.map((node) => ({ type: 'RegisterBroker', brokerId: node.id, incarnationId: node.incarnationId || `node-${node.id}`, listeners: [], rack: node.rack }));
    for (const topic of status.topics.filter((candidate) => topics.includes(candidate.name))) {
      records.push({ type: 'Topic', name: topic.name, topicId: topic.name });
      for (const partition of topic.partitions) {
        records.push({ type: 'Partition', topicId: topic.name, partition: partition.partition, replicas: partition.replicas, isr: partition.replicas, leader: -1, leaderEpoch: 0, partitionEpoch: 0 });
      }
    }
    const image = MetadataImage.empty().applyAll(records, 0);
    const racks = new Map(status.nodes.map((node) => [node.id, node.rack]));
    const plan = planReassignment(image, brokers.map((id) => ({ id, rack: racks.get(id) ?? null })));
    const current: ReassignmentFile = { version: 1, partitions: [] };
    for (const { topic, state } of image.allPartitions()) current.partitions.push({ topic: topic.name, partition: state.partition, replicas: [...state.replicas] });
    const proposed: ReassignmentFile = { version: 1, partitions: plan.moves.map((move) => ({ topic: move.topic, partition: move.partition, replicas: [...move.to] })) };
    if (format === 'json') {
      printJson({ current, proposed, unplaceable: plan.unplaceable.map((ref) => ({ topic: ref.topic, partition: ref.partition })) });
      return;
    }
    printLine('Current partition replica assignment');
    printLine(JSON.stringify(current));
    printLine('');
    printLine(`Proposed partition reassignment configuration (${proposed.partitions.length} partition(s) move)`);
    printLine(JSON.stringify(proposed));
    for (const ref of plan.unplaceable) printLine(`cannot place every replica of ${ref.topic}-${ref.partition} on brokers ${brokers.join(',')}`);
  });
}

const THROTTLE_KEYS = [LEADER_REPLICATION_THROTTLED_RATE, FOLLOWER_REPLICATION_THROTTLED_RATE] as const;
const CLUSTER: BrokerConfigResource = { type: 'cluster', name: '' };

/** Sets the cluster-level leader and follower throttled rates (every broker's default). */
async function setThrottle(admin: Admin, bytesPerSecond: number): Promise<void> {
  const [outcome] = await admin.incrementalAlterConfigs([{ resource: CLUSTER, ops: THROTTLE_KEYS.map((key) => ({ key, op: 'set' as const, value: String(bytesPerSecond) })) }]);
  if (outcome?.error !== null) throw outcome?.error ?? new Error('the broker gave no result for the throttle');
}

/** Deletes the cluster-level throttled rates; true when there were any. */
async function clearThrottle(admin: Admin): Promise<boolean> {
  const [current] = await admin.describeDynamicConfigs([CLUSTER]);
  if (!THROTTLE_KEYS.some((key) => current?.configs[key] !== undefined)) return false;
  const [outcome] = await admin.incrementalAlterConfigs([{ resource: CLUSTER, ops: THROTTLE_KEYS.map((key) => ({ key, op: 'delete' as const })) }]);
  if (outcome?.error !== null) throw outcome?.error ?? new Error('the broker gave no result for the throttle');
  return true;
}

/** The throttled rates set dynamically (cluster default, then per broker), for --list. */
async function throttlesInForce(admin: Admin): Promise<Array<{ resource: string; leaderBytesPerSecond: number | null; followerBytesPerSecond: number | null }>> {
  const described = await admin.describeDynamicConfigs();
  const rate = (value: string | undefined): number | null => (value === undefined ? null : Number(value));
  return described
    .filter((entry) => THROTTLE_KEYS.some((key) => entry.configs[key] !== undefined))
    .map((entry) => ({
      resource: entry.resource.type === 'cluster' ? 'cluster' : `broker ${entry.resource.name}`,
      leaderBytesPerSecond: rate(entry.configs[LEADER_REPLICATION_THROTTLED_RATE]),
      followerBytesPerSecond: rate(entry.configs[FOLLOWER_REPLICATION_THROTTLED_RATE]),
    }));
}

/**
 * --plan (dryRun) and --execute: prints the current assignment, then (unless dry) submits the file.
 * With `throttleBytesPerSecond`, the cluster-level leader and follower throttled rates are set
 * first (as Kafka's tool sets them on the brokers involved): they bind replicas being added only.
 */
export async function reassignExecute(bootstrap: string, path: string, dryRun: boolean, throttleBytesPerSecond?: number, additional = false): Promise<void> {
  const file = readReassignmentFile(path);
  await withAdmin(bootstrap, async (admin) => {
    const current = await currentAssignment(admin, file.partitions);
    printLine('Current partition replica assignment (save it to roll back with --execute):');
    printLine(JSON.stringify(current));
    const nodes = new Set((await admin.clusterStatus()).nodes.map((node) => node.id));
    const problems: string[] = [];
    for (const entry of file.partitions) {
      const missing = entry.replicas.filter((id) => !nodes.has(id));
      if (missing.length > 0) problems.push(`${entry.topic}-${entry.partition}: INVALID_REPLICA_ASSIGNMENT: no registered broker ${missing.join(', ')}`);
    }
    if (problems.length > 0) throw new Error(problems.join('; '));
    if (dryRun) {
      printLine('Would move:');
      for (const [index, entry] of file.partitions.entries()) {
        const from = current.partitions[index]!.replicas;
        printLine(`  ${entry.topic}-${entry.partition}: [${from.join(',')}] -> [${entry.replicas.join(',')}]`);
      }
      if (throttleBytesPerSecond !== undefined) printLine(`Would throttle the copy to ${throttleBytesPerSecond} B/s (cluster-level ${THROTTLE_KEYS.join(' and ')}).`);
      return;
    }
    // As Kafka's tool: a second reassignment beside one still running is asked for explicitly
    // (its --verify and --throttle bookkeeping would otherwise mix with the first one's).
    if (!additional) {
      const moving = await admin.listPartitionReassignments();
      if (moving.length > 0) {
        const names = moving.slice(0, 5).map((entry) => `${entry.topic}-${entry.partition}`).join(', ');
        throw new Error(
          `cannot execute: ${moving.length} partition(s) are still moving (${names}${moving.length > 5 ? ', ...' : ''}); wait for them (--verify, --list), cancel them (--cancel), or give --additional to start this one beside them`,
        );
      }
    }
    // Before the move starts, so that its first fetches are already held to the rate.
    if (throttleBytesPerSecond !== undefined) {
      await setThrottle(admin, throttleBytesPerSecond);
      printLine('Warning: run --verify until the reassignment completes: it removes the throttle.');
      printLine(`The inter-broker throttle limit was set to ${throttleBytesPerSecond} B/s (cluster-level ${THROTTLE_KEYS.join(' and ')}).`);
    }
    const errors = submitErrors(await admin.alterPartitionReassignments(file.partitions));
    if (errors.length > 0) throw new Error(`reassignment refused for ${errors.join('; ')}`);
    printLine(`Started the reassignment of ${file.partitions.length} partition(s).`);
  });
}

/**
 * --verify: each partition of the file is complete (replicas = target, not moving) or not; exit 1
 * while any is not. Once all are complete, the cluster-level throttled rates are removed (as
 * Kafka's tool clears the throttles it set), unless `preserveThrottles`.
 */
export async function reassignVerify(bootstrap: string, path: string, format: OutputFormat, preserveThrottles = false): Promise<void> {
  const file = readReassignmentFile(path);
  await withAdmin(bootstrap, async (admin) => {
    const moving = await admin.listPartitionReassignments(file.partitions.map(({ topic, partition }) => ({ topic, partition })));
    const current = await currentAssignment(admin, file.partitions);
    const rows = file.partitions.map((entry, index) => {
      const replicas = current.partitions[index]!.replicas;
      const inProgress = moving.some((candidate) => candidate.topic === entry.topic && candidate.partition === entry.partition);
      const state = inProgress ? 'in progress' : replicas.join(',') === entry.replicas.join(',') ? 'complete' : 'not started or cancelled';
      return { topic: entry.topic, partition: entry.partition, target: entry.replicas, replicas, state };
    });
    const complete = rows.every((row) => row.state === 'complete');
    const throttleCleared = complete && !preserveThrottles ? await clearThrottle(admin) : false;
    if (format === 'json') printJson({ partitions: rows, throttleCleared });
    else {
      printLine(renderTable(['TOPIC', 'PARTITION', 'TARGET', 'REPLICAS', 'STATE'], rows.map((row) => [row.topic, row.partition, row.target.join(','), row.replicas.join(','), row.state])));
      if (throttleCleared) printLine(`Clearing the cluster-level replication throttle (${THROTTLE_KEYS.join(', ')}).`);
    }
    if (!complete) process.exitCode = 1;
  });
}

/** --cancel [FILE]: cancels the file's partitions that are moving, or every move. */
export async function reassignCancel(bootstrap: string, path: string | undefined): Promise<void> {
  await withAdmin(bootstrap, async (admin) => {
    const refs = path === undefined ? undefined : readReassignmentFile(path).partitions.map(({ topic, partition }) => ({ topic, partition }));
    const moving = await admin.listPartitionReassignments(refs);
    if (moving.length === 0) {
      printLine('No reassignment in progress.');
      return;
    }
    const errors = submitErrors(await admin.alterPartitionReassignments(moving.map(({ topic, partition }) => ({ topic, partition, replicas: null }))));
    if (errors.length > 0) throw new Error(`cancel refused for ${errors.join('; ')}`);
    printLine(`Cancelled the reassignment of ${moving.length} partition(s): ${moving.map((entry) => `${entry.topic}-${entry.partition}`).join(', ')}`);
  });
}

function progressBar(entry: OngoingPartitionReassignment): string {
  const progress = entry.progress;
  if (progress === null || progress === undefined) return 'unknown (no leader answer)';
  const held = Math.max(1, progress.logEndOffset - progress.logStartOffset);
  return progress.adding
    .map((replica) => {
      const done = 1 - replica.offsetsLeft / held;
      const filled = Math.round(Math.max(0, Math.min(1, done)) * 20);
      return `${replica.brokerId} [${'#'.repeat(filled)}${'.'.repeat(20 - filled)}] ${replica.offsetsLeft} offsets, ~${replica.bytesLeft} bytes left`;
    })
    .join('; ');
}

/** --list: every moving partition with its adding and removing replicas and the progress of each added one. */
export async function reassignList(bootstrap: string, format: OutputFormat): Promise<void> {
  await withAdmin(bootstrap, async (admin) => {
    const moving = await admin.listPartitionReassignments(undefined, { progress: true });
    const throttles = await throttlesInForce(admin);
    if (format === 'json') {
      printJson({ reassignments: moving, throttles });
      return;
    }
    const rate = (value: number | null): string => (value === null ? 'not set' : `${value} B/s`);
    printLine(
      throttles.length === 0
        ? 'Replication throttle: none (moves copy at full speed).'
        : `Replication throttle: ${throttles.map((entry) => `${entry.resource}: leader ${rate(entry.leaderBytesPerSecond)}, follower ${rate(entry.followerBytesPerSecond)}`).join('; ')}`,
    );
    if (moving.length === 0) {
      printLine('No reassignment in progress.');
      return;
    }
    printLine(
      renderTable(
        ['TOPIC', 'PARTITION', 'REPLICAS', 'ADDING', 'REMOVING', 'ISR', 'LEADER', 'PROGRESS'],
        moving.map((entry) => [entry.topic, entry.partition, entry.replicas.join(','), entry.addingReplicas.join(','), entry.removingReplicas.join(','), entry.isr.join(','), entry.leader, progressBar(entry)]),
      ),
    );
  });
}
