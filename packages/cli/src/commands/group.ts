// `runnel group list | describe | reset-offsets | delete`: consumer groups as kafka-consumer-groups
// shows and changes them, through the Admin's group calls.
import type { Admin, GroupDescription, GroupOffset, TopicPartitions } from '@runnel/client';
import { RunnelError } from '@runnel/common';
import { printJson, printLine, renderTable, type OutputFormat } from '../output.js';
import { partitionKey, partitionLags, planReset, resetTargetOf, type PartitionLag, type PartitionPosition, type PlannedOffset, type ResetTarget, type ResetTargetOptions } from './groupOffsets.js';
import { withAdmin } from './topic.js';

export interface ResetOffsetsOptions extends ResetTargetOptions {
  topic: string;
  partitions?: number[];
  execute: boolean;
  format: OutputFormat;
}

/** A group that can be changed from outside: Kafka's tools require it to have no members. */
function isInactive(description: GroupDescription): boolean {
  return description.state === 'Empty' || description.state === 'Dead';
}

function membersOf(description: GroupDescription): string {
  return `${plural(description.members.length, 'active member')} (state ${description.state})`;
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

export async function groupList(bootstrap: string, format: OutputFormat): Promise<void> {
  const groups = await withAdmin(bootstrap, (admin) => admin.listGroups());
  if (format === 'json') {
    printJson(groups.map((group) => ({ group: group.groupId, state: group.state, protocolType: group.protocolType })));
    return;
  }
  if (groups.length === 0) {
    printLine('No groups.');
    return;
  }
  printLine(renderTable(['GROUP', 'STATE', 'PROTOCOL-TYPE'], groups.map((group) => [group.groupId, group.state, group.protocolType || '-'])));
}

/** The high watermark of each partition, by partitionKey; a topic whose offsets cannot be listed (deleted, say) is left out. */
async function logEndOffsets(admin: Admin, partitions: ReadonlyArray<{ topic: string; partition: number }>): Promise<Map<string, number>> {
  const byTopic = new Map<string, number[]>();
  for (const { topic, partition } of partitions) byTopic.set(topic, [...(byTopic.get(topic) ?? []), partition]);
  const listed = await Promise.all(
    [...byTopic].map(([topic, ids]) => admin.listOffsets(ids.map((partition) => ({ topic, partition, timestamp: 'latest' as const }))).catch(() => [])),
  );
  return new Map(listed.flat().map((entry) => [partitionKey(entry.topic, entry.partition), entry.offset]));
}

export interface GroupReport {
  description: GroupDescription;
  partitions: PartitionLag[];
  totalLag: number;
}

function assignmentText(assignment: readonly TopicPartitions[]): string {
  return assignment.map(({ topic, partitions }) => `${topic}:${partitions.join(',')}`).join(' ') || '-';
}

/** The plain-text report of `group describe`: the group, its members, then per partition offsets and lag. */
export function renderGroupReport({ description, partitions, totalLag }: GroupReport): string {
  const protocol = description.protocol === '' ? description.protocolType || '-' : `${description.protocolType || '-'} (${description.protocol})`;
  const blocks = [
    `Group: ${description.groupId}  State: ${description.state}  Protocol: ${protocol}  Generation: ${description.generationId < 0 ? '-' : description.generationId}  Coordinator: node ${description.coordinator}`,
    description.members.length === 0
      ? 'No active members.'
      : renderTable(
          ['MEMBER-ID', 'CLIENT-ID', 'HOST', 'PARTITIONS'],
          description.members.map((member) => [member.memberId, member.clientId || '-', member.clientHost || '-', assignmentText(member.assignment)]),
        ),
  ];
  if (partitions.length === 0) {
    blocks.push('No committed offsets and no assigned partitions.');
  } else {
    const dash = (value: number | string | null) => (value === null ? '-' : value);
    blocks.push(
      renderTable(
        ['TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'LOG-END-OFFSET', 'LAG', 'OWNER'],
        partitions.map((row) => [row.topic, row.partition, dash(row.committedOffset), dash(row.logEndOffset), dash(row.lag), dash(row.owner)]),
      ),
      `Total lag: ${totalLag}`,
    );
  }
  return blocks.join('\n\n');
}

export async function groupDescribe(bootstrap: string, groupId: string, format: OutputFormat): Promise<void> {
  const report = await withAdmin(bootstrap, async (admin): Promise<GroupReport> => {
    const [[described], committed] = await Promise.all([admin.describeGroups([groupId]), admin.listGroupOffsets(groupId)]);
    const description = described!;
    if (description.state === 'Dead') throw new RunnelError('GROUP_ID_NOT_FOUND', `group '${groupId}' does not exist`);
    const wanted: Array<{ topic: string; partition: number }> = [...committed];
    for (const member of description.members) for (const { topic, partitions } of member.assignment) for (const partition of partitions) wanted.push({ topic, partition });
    return { description, ...partitionLags(description.members, committed, await logEndOffsets(admin, wanted)) };
  });
  if (format === 'json') {
    const { description } = report;
    printJson({
      group: description.groupId,
      state: description.state,
      protocolType: description.protocolType,
      protocol: description.protocol,
      generationId: description.generationId,
      coordinator: description.coordinator,
      members: description.members,
      offsets: report.partitions,
      totalLag: report.totalLag,
    });
    return;
  }
  printLine(renderGroupReport(report));
}

/** Committed offset, log start and end (and, for a datetime, the offset at that time) of each partition. */
async function partitionPositions(admin: Admin, groupId: string, topic: string, partitions: readonly number[], target: ResetTarget): Promise<PartitionPosition[]> {
  const committed = new Map<number, GroupOffset>(
    (await admin.listGroupOffsets(groupId, partitions.map((partition) => ({ topic, partition })))).map((entry) => [entry.partition, entry]),
  );
  const query = (timestamp: 'earliest' | 'latest' | number) => partitions.map((partition) => ({ topic, partition, timestamp }));
  const timestamps = target.kind === 'datetime' ? query(target.timestamp) : [];
  const listed = await admin.listOffsets([...query('earliest'), ...query('latest'), ...timestamps]);
  const count = partitions.length;
  return partitions.map((partition, k) => ({
    partition,
    committed: committed.get(partition)?.offset ?? null,
    logStart: listed[k]!.offset,
    logEnd: listed[count + k]!.offset,
    ...(target.kind === 'datetime' ? { offsetForTime: listed[2 * count + k]!.offset < 0 ? null : listed[2 * count + k]!.offset } : {}),
  }));
}

/** `partitions` of the topic, all of them when none are named; a partition the topic lacks is an error. */
function selectPartitions(topic: string, existing: readonly number[], wanted: readonly number[] | undefined): number[] {
  if (wanted === undefined) return [...existing];
  const known = new Set(existing);
  const missing = wanted.filter((partition) => !known.has(partition));
  if (missing.length > 0) throw new Error(`topic '${topic}' has no partition ${missing.join(', ')} (it has ${plural(existing.length, 'partition')}: 0 to ${existing.length - 1})`);
  return [...new Set(wanted)].sort((a, b) => a - b);
}

export async function groupResetOffsets(bootstrap: string, groupId: string, options: ResetOffsetsOptions): Promise<void> {
  const target = resetTargetOf(options);
  const { plan, description } = await withAdmin(bootstrap, async (admin): Promise<{ plan: PlannedOffset[]; description: GroupDescription }> => {
    const [[topic], [description]] = await Promise.all([admin.describeTopics([options.topic]), admin.describeGroups([groupId])]);
    if (options.execute && !isInactive(description!)) throw new Error(`cannot reset the offsets of group '${groupId}': it has ${membersOf(description!)}; stop its consumers first`);
    const partitions = selectPartitions(options.topic, topic!.partitions.map((partition) => partition.partition), options.partitions);
    const plan = planReset(options.topic, target, await partitionPositions(admin, groupId, options.topic, partitions, target));
    if (options.execute) await admin.alterGroupOffsets(groupId, plan.map(({ topic, partition, newOffset }) => ({ topic, partition, offset: newOffset })));
    return { plan, description: description! };
  });
  if (options.format === 'json') {
    printJson({ group: groupId, executed: options.execute, offsets: plan });
    return;
  }
  const table = renderTable(['TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'NEW-OFFSET'], plan.map((row) => [row.topic, row.partition, row.currentOffset ?? '-', row.newOffset]));
  let outcome: string;
  if (options.execute) outcome = `Committed the new offsets of group '${groupId}' for ${plural(plan.length, 'partition')}.`;
  else if (isInactive(description)) outcome = 'Dry run: nothing changed. Add --execute to commit these offsets.';
  else outcome = `Dry run: nothing changed. --execute is refused while group '${groupId}' has ${membersOf(description)}.`;
  printLine(`${table}\n\n${outcome}`);
}

export async function groupDelete(bootstrap: string, groupIds: string[], format: OutputFormat): Promise<void> {
  await withAdmin(bootstrap, (admin) => admin.deleteGroups(groupIds));
  if (format === 'json') printJson({ deleted: groupIds });
  else printLine(`Deleted group${groupIds.length > 1 ? 's' : ''} ${groupIds.join(', ')}.`);
}
