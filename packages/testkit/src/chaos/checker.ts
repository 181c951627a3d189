// The history checker: given what the producers were told (History), what every partition holds
// after the run (`final`, read from the start) and what a live consumer saw during the run
// (`observed`), find every violation of the log's promises:
// - lost: an acknowledged value that is absent, or present at another offset than acknowledged;
// - inconsistent: an offset whose value differs between `final` and `observed`, or between the
//   acknowledgement and `final` (one offset, one record, forever);
// - duplicates: a value at two or more offsets; explained when the value had an unknown attempt
//   that was retried (and appears no more often than its attempts that may have written it);
// - gaps: offsets missing from `final` above the log start (a partition's offsets are dense);
// - backwards: the live consumer's offsets went back (or repeated) within a partition.
// ok = nothing lost, nothing inconsistent, no unexplained duplicate, nothing backwards.
// Gaps and phantoms (values in the log that were never sent, or whose every attempt failed
// definitely) are reported beside; they do not clear `ok` on their own.
import { countHistory, History, type HistoryCounts, type SendEntry } from './history.js';

export interface LogRecord {
  offset: number;
  /** The record's value as a string; null for a null value. */
  value: string | null;
}

/** Per partition id, records. */
export type PartitionRecords = Record<number, readonly LogRecord[]> | ReadonlyMap<number, readonly LogRecord[]>;

export interface CheckInput {
  history: History | readonly SendEntry[];
  /** Per partition, every record read from the start after the run, in offset order. */
  final: PartitionRecords;
  /** Per partition, what a live consumer saw during the run, in the order seen. Optional. */
  observed?: PartitionRecords;
  /** Per partition, the log start offset when `final` was read (default 0: nothing deleted). */
  logStartOffsets?: Record<number, number> | ReadonlyMap<number, number>;
  /** At most this many entries in each list of the report (the counts are always exact). Default 1000. */
  maxListed?: number;
}

export interface LostRecord {
  value: string;
  partition: number;
  /** The acknowledged offset. */
  offset: number;
  /** Where the value is instead (empty: nowhere). */
  foundAt: Array<{ partition: number; offset: number }>;
}

export interface InconsistentOffset {
  partition: number;
  offset: number;
  /** What `final` holds there; undefined when `final` has no record at that offset. */
  final: string | null | undefined;
  /** What the acknowledgement or the live consumer said is there. */
  other: string | null;
  source: 'ack' | 'observed' | 'final';
}

export interface Duplicate {
  value: string;
  at: Array<{ partition: number; offset: number }>;
  /** Attempts of the value with an unknown (or pending) outcome, and acknowledged attempts. */
  unknownAttempts: number;
  ackedAttempts: number;
}

export interface Gap {
  partition: number;
  /** Missing offsets [from, to). */
  from: number;
  to: number;
}

export interface Backwards {
  partition: number;
  /** Index in the partition's observed list where the offset went back. */
  index: number;
  from: number;
  to: number;
}

export interface Phantom {
  value: string | null;
  partition: number;
  offset: number;
  reason: 'never-sent' | 'failed';
}

export interface CheckCounts extends HistoryCounts {
  finalRecords: number;
  observedRecords: number;
  lost: number;
  inconsistent: number;
  duplicates: number;
  explainedDuplicates: number;
  unexplainedDuplicates: number;
  gaps: number;
  missingOffsets: number;
  backwards: number;
  phantoms: number;
  /** Acknowledged offsets below the log start: retention removed them, nothing to check. */
  belowLogStart: number;
}

export interface CheckReport {
  ok: boolean;
  counts: CheckCounts;
  lost: LostRecord[];
  inconsistent: InconsistentOffset[];
  duplicates: { explained: Duplicate[]; unexplained: Duplicate[] };
  gaps: Gap[];
  backwards: Backwards[];
  phantoms: Phantom[];
  /** True when some list was cut at maxListed. */
  truncated: boolean;
}

function entriesOf<V>(input: Record<number, V> | ReadonlyMap<number, V> | undefined): Array<[number, V]> {
  if (input === undefined) return [];
  if (input instanceof Map) return [...(input as ReadonlyMap<number, V>).entries()];
  return Object.entries(input as Record<number, V>).map(([key, value]) => [Number(key), value]);
}

const sameValue = (a: string | null | undefined, b: string | null | undefined) => a === b;

export function checkHistory(input: CheckInput): CheckReport {
  const maxListed = input.maxListed ?? 1000;
  const sends: readonly SendEntry[] = input.history instanceof History ? input.history.list() : input.history;
  const logStart = new Map(entriesOf(input.logStartOffsets));
  let truncated = false;
  const lists = {
    lost: [] as LostRecord[],
    inconsistent: [] as InconsistentOffset[],
    explained: [] as Duplicate[],
    unexplained: [] as Duplicate[],
    gaps: [] as Gap[],
    backwards: [] as Backwards[],
    phantoms: [] as Phantom[],
  };
  const push = <T>(list: T[], item: T): void => {
    if (list.length < maxListed) list.push(item);
    else truncated = true;
  };
  const counts: CheckCounts = {
    ...countHistory(sends),
    finalRecords: 0,
    observedRecords: 0,
    lost: 0,
    inconsistent: 0,
    duplicates: 0,
    explainedDuplicates: 0,
    unexplainedDuplicates: 0,
    gaps: 0,
    missingOffsets: 0,
    backwards: 0,
    phantoms: 0,
    belowLogStart: 0,
  };
  const inconsistentSeen = new Set<string>();
  const addInconsistent = (item: InconsistentOffset): void => {
    const key = `${item.partition}:${item.offset}:${item.source}`;
    if (inconsistentSeen.has(key)) return;
    inconsistentSeen.add(key);
    counts.inconsistent++;
    push(lists.inconsistent, item);
  };

  // The final logs: offset → value per partition, and value → where it is.
  const finalByOffset = new Map<number, Map<number, string | null>>();
  const locations = new Map<string | null, Array<{ partition: number; offset: number }>>();
  const partitionsFinal = entriesOf(input.final);
  for (const [partition, records] of partitionsFinal) {
    const byOffset = new Map<number, string | null>();
    finalByOffset.set(partition, byOffset);
    for (const record of records) {
      counts.finalRecords++;
      if (byOffset.has(record.offset)) {
        // The same offset twice in one read: only a problem if the two disagree.
        if (!sameValue(byOffset.get(record.offset), record.value)) addInconsistent({ partition, offset: record.offset, final: byOffset.get(record.offset), other: record.value, source: 'final' });
        continue;
      }
      byOffset.set(record.offset, record.value);
      let at = locations.get(record.value);
      if (at === undefined) locations.set(record.value, (at = []));
      at.push({ partition, offset: record.offset });
    }
    // Gaps: offsets must be dense from the log start up to the last record.
    const offsets = [...byOffset.keys()].sort((a, b) => a - b);
    let expected = logStart.get(partition) ?? 0;
    for (const offset of offsets) {
      if (offset < expected) continue;
      if (offset > expected) {
        counts.gaps++;
        counts.missingOffsets += offset - expected;
        push(lists.gaps, { partition, from: expected, to: offset });
      }
      expected = offset + 1;
    }
  }

  // Acknowledgements against the final logs.
  const sendsByValue = new Map<string, SendEntry>();
  for (const entry of sends) {
    sendsByValue.set(entry.value, entry);
    for (const attempt of entry.attempts) {
      if (attempt.outcome !== 'acked' || attempt.offset === undefined) continue;
      const offset = attempt.offset;
      if (offset < (logStart.get(entry.partition) ?? 0)) {
        counts.belowLogStart++;
        continue;
      }
      const byOffset = finalByOffset.get(entry.partition);
      const there = byOffset?.get(offset);
      if (byOffset !== undefined && byOffset.has(offset) && sameValue(there, entry.value)) continue;
      counts.lost++;
      push(lists.lost, { value: entry.value, partition: entry.partition, offset, foundAt: [...(locations.get(entry.value) ?? [])] });
      if (byOffset !== undefined && byOffset.has(offset)) addInconsistent({ partition: entry.partition, offset, final: there, other: entry.value, source: 'ack' });
    }
  }

  // Values at two or more offsets; values in the log nobody sent (or whose sends all failed).
  for (const [value, at] of locations) {
    const entry = value === null ? undefined : sendsByValue.get(value);
    if (entry === undefined || entry.attempts.every((attempt) => attempt.outcome === 'failed')) {
      for (const where of at) {
        counts.phantoms++;
        push(lists.phantoms, { value, partition: where.partition, offset: where.offset, reason: entry === undefined ? 'never-sent' : 'failed' });
      }
    }
    if (at.length < 2) continue;
    counts.duplicates++;
    const attempts = entry?.attempts ?? [];
    const unknownAttempts = attempts.filter((attempt) => attempt.outcome === 'unknown' || attempt.outcome === 'pending').length;
    const ackedAttempts = attempts.filter((attempt) => attempt.outcome === 'acked').length;
    // Retried after an unknown outcome: an unknown attempt with a later attempt behind it.
    const retriedAfterUnknown = attempts.some((attempt, i) => (attempt.outcome === 'unknown' || attempt.outcome === 'pending') && i < attempts.length - 1);
    const duplicate: Duplicate = { value: value ?? '<null>', at: [...at], unknownAttempts, ackedAttempts };
    if (retriedAfterUnknown && at.length <= unknownAttempts + ackedAttempts) {
      counts.explainedDuplicates++;
      push(lists.explained, duplicate);
    } else {
      counts.unexplainedDuplicates++;
      push(lists.unexplained, duplicate);
    }
  }

  // The live consumer: offsets only go forward, and each offset holds what `final` holds.
  for (const [partition, records] of entriesOf(input.observed)) {
    const byOffset = finalByOffset.get(partition);
    let previous: number | undefined;
    records.forEach((record, index) => {
      counts.observedRecords++;
      if (previous !== undefined && record.offset <= previous) {
        counts.backwards++;
        push(lists.backwards, { partition, index, from: previous, to: record.offset });
      }
      previous = record.offset;
      if (record.offset < (logStart.get(partition) ?? 0)) return;
      const there = byOffset?.get(record.offset);
      const present = byOffset !== undefined && byOffset.has(record.offset);
      if (!present || !sameValue(there, record.value)) addInconsistent({ partition, offset: record.offset, final: present ? there : undefined, other: record.value, source: 'observed' });
    });
  }

  const ok = counts.lost === 0 && counts.inconsistent === 0 && counts.unexplainedDuplicates === 0 && counts.backwards === 0;
  return {
    ok,
    counts,
    lost: lists.lost,
    inconsistent: lists.inconsistent,
    duplicates: { explained: lists.explained, unexplained: lists.unexplained },
    gaps: lists.gaps,
    backwards: lists.backwards,
    phantoms: lists.phantoms,
    truncated,
  };
}

/** One line with the checker's figures, for logs. */
export function summarizeCheck(report: CheckReport): string {
  const c = report.counts;
  return (
    `${report.ok ? 'OK' : 'FAILED'}: sent ${c.sent} (attempts ${c.attempts}), acknowledged ${c.acknowledged}, failed ${c.failed}, unknown ${c.unknown}, exhausted ${c.exhausted}; ` +
    `final ${c.finalRecords} records, observed ${c.observedRecords}; lost ${c.lost}, inconsistent ${c.inconsistent}, ` +
    `duplicates ${c.duplicates} (explained ${c.explainedDuplicates}, unexplained ${c.unexplainedDuplicates}), gaps ${c.gaps}, backwards ${c.backwards}, phantoms ${c.phantoms}`
  );
}
