// The history of a chaos run: every value a producer sent, the partition it went to, and each
// attempt's outcome. The checker compares it with what the partitions hold afterwards.
//
// An attempt ends in one of three ways:
// - `acked`: the broker acknowledged it at (partition, offset);
// - `failed`: a definite failure before anything was appended (NOT_ENOUGH_REPLICAS, INVALID_*,
//   MESSAGE_TOO_LARGE, …): the value is not in the log because of this attempt;
// - `unknown`: a timeout, a network error, NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS_AFTER_APPEND,
//   REQUEST_TIMED_OUT, …: it may or may not have been written.
// An attempt that has not ended yet is `pending` (the checker treats it as `unknown`).

export type AttemptOutcome = 'pending' | 'acked' | 'failed' | 'unknown';

export interface Attempt {
  outcome: AttemptOutcome;
  /** Offset of an `acked` attempt. */
  offset?: number;
  /** Error name (or message) of a `failed` or `unknown` attempt. */
  error?: string;
  /** The error's message, shortened (which broker said what, for diagnosis). */
  detail?: string;
  startedMs: number;
  endedMs?: number;
}

/** One value and everything that happened to it. Plain JSON. */
export interface SendEntry {
  value: string;
  partition: number;
  attempts: Attempt[];
  /** The sender stopped trying before any attempt was acknowledged (attempts or time ran out). */
  gaveUp?: boolean;
}

/** Error names after which nothing of the request was appended: retrying cannot make a duplicate. */
const DEFINITE_FAILURES = new Set([
  'NOT_ENOUGH_REPLICAS',
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'CORRUPT_MESSAGE',
  'UNKNOWN_TOPIC_OR_PARTITION',
  'LEADER_NOT_AVAILABLE',
  'UNSUPPORTED_VERSION',
  'UNSUPPORTED_COMPRESSION_TYPE',
  'TOPIC_AUTHORIZATION_FAILED',
  'POLICY_VIOLATION',
]);

/**
 * 'failed' when the error says nothing was appended (the request was refused, or never left the
 * client: a bad record, a closed producer); 'unknown' for everything else (timeouts, network
 * errors, NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS_AFTER_APPEND, REQUEST_TIMED_OUT, errors of
 * unknown shape): the record may have been written. When in doubt, 'unknown' — it can only make
 * the checker more forgiving of duplicates, never hide a lost record.
 */
export function classifyError(error: unknown): 'failed' | 'unknown' {
  const name = errorNameOf(error);
  if (name !== undefined) {
    if (DEFINITE_FAILURES.has(name) || name.startsWith('INVALID_')) return 'failed';
    return 'unknown';
  }
  // Thrown by the client before anything was sent: bad arguments, a closed producer.
  if (error instanceof TypeError || error instanceof RangeError) return 'failed';
  if (error instanceof Error && /producer is closed/.test(error.message)) return 'failed';
  return 'unknown';
}

/** The Kafka error name of a RunnelError-like error (`errorName`), or the name in front of its message. */
export function errorNameOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const named = (error as { errorName?: unknown }).errorName;
  if (typeof named === 'string' && named !== '') return named;
  const message = (error as { message?: unknown }).message;
  if (typeof message === 'string') {
    const match = /^([A-Z][A-Z0-9_]+):/.exec(message);
    if (match !== null) return match[1];
  }
  return undefined;
}

/** A handle on one attempt: settle it once with ack(offset) or fail(error). */
export interface AttemptHandle {
  ack(offset: number): void;
  /** Records the error's outcome (classifyError unless `outcome` is given); returns it. */
  fail(error: unknown, outcome?: 'failed' | 'unknown'): 'failed' | 'unknown';
}

export interface HistoryCounts {
  /** Distinct values sent. */
  sent: number;
  attempts: number;
  /** Values with at least one acknowledged attempt. */
  acknowledged: number;
  /** Values never acknowledged whose every attempt failed definitely. */
  failed: number;
  /** Values never acknowledged with at least one unknown (or still pending) attempt. */
  unknown: number;
  /** Values the sender gave up on without an acknowledgement. */
  exhausted: number;
  /** Attempts by outcome. */
  attemptOutcomes: Record<AttemptOutcome, number>;
}

export class History {
  private readonly entries = new Map<string, SendEntry>();

  /** Starts an attempt to send `value` to `partition` (the first one creates the entry). */
  attempt(value: string, partition: number, nowMs = Date.now()): AttemptHandle {
    let entry = this.entries.get(value);
    if (entry === undefined) {
      entry = { value, partition, attempts: [] };
      this.entries.set(value, entry);
    } else if (entry.partition !== partition) {
      throw new Error(`value ${value} was sent to partition ${entry.partition} before, now to ${partition}: values must be unique per run`);
    }
    const attempt: Attempt = { outcome: 'pending', startedMs: nowMs };
    entry.attempts.push(attempt);
    const settle = (): void => {
      if (attempt.outcome !== 'pending') throw new Error(`attempt ${entry!.attempts.indexOf(attempt) + 1} of ${value} is already ${attempt.outcome}`);
      attempt.endedMs = Date.now();
    };
    return {
      ack(offset: number): void {
        settle();
        attempt.outcome = 'acked';
        attempt.offset = offset;
      },
      fail(error: unknown, outcome?: 'failed' | 'unknown'): 'failed' | 'unknown' {
        settle();
        const result = outcome ?? classifyError(error);
        attempt.outcome = result;
        const message = String((error as Error)?.message ?? error);
        attempt.error = errorNameOf(error) ?? message.slice(0, 200);
        if (attempt.error !== message) attempt.detail = message.slice(0, 300);
        return result;
      },
    };
  }

  /** Marks that the sender will not try `value` again although it was never acknowledged. */
  giveUp(value: string): void {
    const entry = this.entries.get(value);
    if (entry !== undefined && !entry.attempts.some((attempt) => attempt.outcome === 'acked')) entry.gaveUp = true;
  }

  get size(): number {
    return this.entries.size;
  }

  get(value: string): SendEntry | undefined {
    return this.entries.get(value);
  }

  /** Every entry, in the order values were first sent. */
  list(): SendEntry[] {
    return [...this.entries.values()];
  }

  toJSON(): SendEntry[] {
    return this.list();
  }

  counts(): HistoryCounts {
    return countHistory(this.list());
  }
}

export function countHistory(entries: readonly SendEntry[]): HistoryCounts {
  const counts: HistoryCounts = { sent: 0, attempts: 0, acknowledged: 0, failed: 0, unknown: 0, exhausted: 0, attemptOutcomes: { pending: 0, acked: 0, failed: 0, unknown: 0 } };
  for (const entry of entries) {
    counts.sent++;
    counts.attempts += entry.attempts.length;
    for (const attempt of entry.attempts) counts.attemptOutcomes[attempt.outcome]++;
    if (entry.attempts.some((attempt) => attempt.outcome === 'acked')) counts.acknowledged++;
    else {
      if (entry.attempts.length > 0 && entry.attempts.every((attempt) => attempt.outcome === 'failed')) counts.failed++;
      else counts.unknown++;
      if (entry.gaveUp === true) counts.exhausted++;
    }
  }
  return counts;
}
