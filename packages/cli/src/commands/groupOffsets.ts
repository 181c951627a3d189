// The arithmetic of `runnel group describe` and `runnel group reset-offsets`, kept apart from the
// calls that gather its inputs: per-partition lag, and the new offsets of a reset as
// kafka-consumer-groups computes them (clamped to the log's start and end).
import type { GroupMemberDescription, GroupOffset } from '@runnel/client';

export type ResetTarget =
  | { readonly kind: 'earliest' }
  | { readonly kind: 'latest' }
  | { readonly kind: 'offset'; readonly offset: number }
  | { readonly kind: 'datetime'; readonly timestamp: number }
  | { readonly kind: 'shift'; readonly by: number };

/** The reset options of `runnel group reset-offsets` as commander parses them. */
export interface ResetTargetOptions {
  toEarliest?: boolean;
  toLatest?: boolean;
  toOffset?: number;
  toDatetime?: string;
  shiftBy?: number;
}

/** What a reset needs to know of one partition. */
export interface PartitionPosition {
  readonly partition: number;
  /** The group's committed offset; null when it has none. */
  readonly committed: number | null;
  readonly logStart: number;
  /** The high watermark. */
  readonly logEnd: number;
  /** For a datetime target: the first offset whose record is at or after the time; null when no record is. */
  readonly offsetForTime?: number | null;
}

export interface PlannedOffset {
  readonly topic: string;
  readonly partition: number;
  readonly currentOffset: number | null;
  readonly newOffset: number;
}

export interface PartitionLag {
  readonly topic: string;
  readonly partition: number;
  readonly committedOffset: number | null;
  readonly logEndOffset: number | null;
  /** Log end minus committed offset; null when either is unknown. */
  readonly lag: number | null;
  /** The member the partition is assigned to; null when none is. */
  readonly owner: string | null;
}

const RESET_OPTIONS = ['--to-earliest', '--to-latest', '--to-offset', '--to-datetime', '--shift-by'] as const;

/** The one reset target the options ask for; none or several is an error naming them. */
export function resetTargetOf(options: ResetTargetOptions): ResetTarget {
  const given: Array<[(typeof RESET_OPTIONS)[number], ResetTarget]> = [];
  if (options.toEarliest === true) given.push(['--to-earliest', { kind: 'earliest' }]);
  if (options.toLatest === true) given.push(['--to-latest', { kind: 'latest' }]);
  if (options.toOffset !== undefined) given.push(['--to-offset', { kind: 'offset', offset: options.toOffset }]);
  if (options.toDatetime !== undefined) given.push(['--to-datetime', { kind: 'datetime', timestamp: parseDatetime(options.toDatetime) }]);
  if (options.shiftBy !== undefined) given.push(['--shift-by', { kind: 'shift', by: options.shiftBy }]);
  if (given.length !== 1) {
    const what = given.length === 0 ? 'none was given' : `got ${given.map(([name]) => name).join(' and ')}`;
    throw new Error(`reset-offsets needs exactly one of ${RESET_OPTIONS.join(', ')}: ${what}`);
  }
  return given[0]![1];
}

const ISO_DATETIME = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?)?(Z|[+-]\d{2}:\d{2})?$/;

/**
 * An ISO-8601 date or date-time as epoch milliseconds. Without a zone it is local time (as
 * kafka-consumer-groups reads it); dates that do not exist (Feb 30, 25:00) are refused rather than
 * rolled over, and so are times before 1970, which ListOffsets cannot look up.
 */
export function parseDatetime(text: string): number {
  const match = ISO_DATETIME.exec(text);
  const refuse = (why: string) => new Error(`--to-datetime: '${text}' ${why}; use e.g. 2024-05-01T12:00:00Z, 2024-05-01T14:00:00.000+02:00 or 2024-05-01 (local time without a zone)`);
  if (match === null) throw refuse('is not an ISO-8601 date-time');
  const [year, month, day, hour, minute, second, millis] = match.slice(1, 8).map((field, k) => (field === undefined ? 0 : k === 6 ? Number(field.padEnd(3, '0')) : Number(field))) as [number, number, number, number, number, number, number];
  const zone = match[8];
  if (year < 1970) throw refuse('is before 1970');
  const asUtc = new Date(Date.UTC(year, month - 1, day, hour, minute, second, millis));
  const exists =
    asUtc.getUTCFullYear() === year && asUtc.getUTCMonth() === month - 1 && asUtc.getUTCDate() === day && asUtc.getUTCHours() === hour && asUtc.getUTCMinutes() === minute && asUtc.getUTCSeconds() === second;
  if (!exists) throw refuse('is not a time that exists');
  let timestamp: number;
  if (zone === undefined) {
    timestamp = new Date(year, month - 1, day, hour, minute, second, millis).getTime();
  } else if (zone === 'Z') {
    timestamp = asUtc.getTime();
  } else {
    const zoneHours = Number(zone.slice(1, 3));
    const zoneMinutes = Number(zone.slice(4, 6));
    if (zoneHours > 23 || zoneMinutes > 59) throw refuse('has a zone offset that does not exist');
    timestamp = asUtc.getTime() - (zone.startsWith('-') ? -1 : 1) * (zoneHours * 60 + zoneMinutes) * 60_000;
  }
  if (timestamp < 0) throw refuse('is before 1970');
  return timestamp;
}

function clamp(offset: number, position: PartitionPosition): number {
  return Math.min(Math.max(offset, position.logStart), position.logEnd);
}

/**
 * The new offset of every partition, as kafka-consumer-groups computes it: a datetime with no
 * record at or after it goes to the log end; an offset or a shift is clamped to the log's start
 * and end; a shift needs a committed offset to shift.
 */
export function planReset(topic: string, target: ResetTarget, positions: readonly PartitionPosition[]): PlannedOffset[] {
  return positions.map((position) => {
    const plan = (newOffset: number): PlannedOffset => ({ topic, partition: position.partition, currentOffset: position.committed, newOffset });
    switch (target.kind) {
      case 'earliest':
        return plan(position.logStart);
      case 'latest':
        return plan(position.logEnd);
      case 'offset':
        return plan(clamp(target.offset, position));
      case 'datetime':
        if (position.offsetForTime === undefined) throw new Error(`no offset was looked up for ${topic}-${position.partition} at time ${target.timestamp}`);
        return plan(position.offsetForTime === null ? position.logEnd : clamp(position.offsetForTime, position));
      case 'shift':
        if (position.committed === null) throw new Error(`cannot shift the offset of ${topic}-${position.partition}: the group has no committed offset for it`);
        return plan(clamp(position.committed + target.by, position));
    }
  });
}

export function partitionKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

/**
 * One row per partition the group has committed or a member is assigned, sorted by topic and
 * partition, with its lag; and the total of the lags that are known.
 */
export function partitionLags(
  members: readonly GroupMemberDescription[],
  committed: readonly GroupOffset[],
  logEndOffsets: ReadonlyMap<string, number>,
): { partitions: PartitionLag[]; totalLag: number } {
  const rows = new Map<string, { topic: string; partition: number; committedOffset: number | null; owner: string | null }>();
  for (const member of members) {
    for (const { topic, partitions } of member.assignment) {
      for (const partition of partitions) rows.set(partitionKey(topic, partition), { topic, partition, committedOffset: null, owner: member.memberId });
    }
  }
  for (const { topic, partition, offset } of committed) {
    const key = partitionKey(topic, partition);
    rows.set(key, { topic, partition, committedOffset: offset, owner: rows.get(key)?.owner ?? null });
  }
  const partitions = [...rows.entries()]
    .map(([key, row]): PartitionLag => {
      const logEndOffset = logEndOffsets.get(key) ?? null;
      const lag = row.committedOffset === null || logEndOffset === null ? null : logEndOffset - row.committedOffset;
      return { topic: row.topic, partition: row.partition, committedOffset: row.committedOffset, logEndOffset, lag, owner: row.owner };
    })
    .sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
  const totalLag = partitions.reduce((sum, row) => sum + (row.lag ?? 0), 0);
  return { partitions, totalLag };
}
