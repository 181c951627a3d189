// The history checker on hand-made histories: a clean run, and each kind of violation on its own.
import { describe, expect, it } from 'vitest';
import { RunnelError } from '@runnel/common';
import { History, checkHistory, classifyError, type LogRecord, type SendEntry } from '../src/index.js';

const acked = (value: string, partition: number, offset: number): SendEntry => ({ value, partition, attempts: [{ outcome: 'acked', offset, startedMs: 0, endedMs: 1 }] });
const log = (...values: string[]): LogRecord[] => values.map((value, offset) => ({ offset, value }));

describe('classifyError', () => {
  it('definite failures before any append are failed; everything that may have been written is unknown', () => {
    for (const name of ['NOT_ENOUGH_REPLICAS', 'MESSAGE_TOO_LARGE', 'INVALID_REQUEST', 'INVALID_RECORD', 'CORRUPT_MESSAGE'] as const) {
      expect(classifyError(new RunnelError(name, 'x')), name).toBe('failed');
    }
    for (const name of ['NOT_LEADER_OR_FOLLOWER', 'NOT_ENOUGH_REPLICAS_AFTER_APPEND', 'REQUEST_TIMED_OUT', 'NETWORK_EXCEPTION', 'FENCED_LEADER_EPOCH', 'UNKNOWN_SERVER_ERROR'] as const) {
      expect(classifyError(new RunnelError(name, 'x')), name).toBe('unknown');
    }
    expect(classifyError(new Error('socket hang up'))).toBe('unknown');
    expect(classifyError(new TypeError('a record needs a topic'))).toBe('failed');
    expect(classifyError(new Error('the producer is closed'))).toBe('failed');
    expect(classifyError('weird')).toBe('unknown');
    // An error that only carries the name in its message (e.g. after JSON).
    expect(classifyError({ message: 'NOT_ENOUGH_REPLICAS: only 1 in sync' })).toBe('failed');
  });
});

describe('History', () => {
  it('records attempts with their outcomes and counts values by their fate', () => {
    const history = new History();
    history.attempt('a', 0).ack(0);
    const b = history.attempt('b', 1);
    expect(b.fail(new RunnelError('REQUEST_TIMED_OUT', 'slow'))).toBe('unknown');
    history.attempt('b', 1).ack(0);
    history.attempt('c', 0).fail(new RunnelError('NOT_ENOUGH_REPLICAS', 'isr 1'));
    history.attempt('c', 0).fail(new RunnelError('NOT_ENOUGH_REPLICAS', 'isr 1'));
    history.giveUp('c');
    history.attempt('d', 2).fail(new RunnelError('NETWORK_EXCEPTION', 'reset'));
    history.giveUp('d');
    history.attempt('e', 2); // still pending
    expect(history.counts()).toEqual({
      sent: 5,
      attempts: 7,
      acknowledged: 2,
      failed: 1,
      unknown: 2,
      exhausted: 2,
      attemptOutcomes: { pending: 1, acked: 2, failed: 2, unknown: 2 },
    });
    expect(history.get('b')!.attempts.map((attempt) => attempt.outcome)).toEqual(['unknown', 'acked']);
    expect(history.get('b')!.attempts[0]!.error).toBe('REQUEST_TIMED_OUT');
    expect(JSON.parse(JSON.stringify(history))).toHaveLength(5);
  });

  it('refuses to settle an attempt twice, or to move a value to another partition', () => {
    const history = new History();
    const handle = history.attempt('a', 0);
    handle.ack(3);
    expect(() => handle.ack(4)).toThrow(/already acked/);
    expect(() => history.attempt('a', 1)).toThrow(/partition/);
  });
});

describe('checkHistory', () => {
  it('a clean run is ok, with exact counts', () => {
    const history = [acked('a', 0, 0), acked('b', 0, 1), acked('c', 1, 0)];
    const report = checkHistory({ history, final: { 0: log('a', 'b'), 1: log('c') }, observed: { 0: log('a', 'b'), 1: log('c') } });
    expect(report.ok).toBe(true);
    expect(report.counts).toMatchObject({ sent: 3, acknowledged: 3, finalRecords: 3, observedRecords: 3, lost: 0, inconsistent: 0, duplicates: 0, gaps: 0, backwards: 0, phantoms: 0 });
    expect(JSON.parse(JSON.stringify(report))).toEqual(report);
  });

  it('accepts a History and Maps as well as plain objects', () => {
    const history = new History();
    history.attempt('a', 0).ack(0);
    const report = checkHistory({ history, final: new Map([[0, log('a')]]), observed: new Map([[0, log('a')]]) });
    expect(report.ok).toBe(true);
  });

  it('lost: an acknowledged value missing from the log', () => {
    const report = checkHistory({ history: [acked('a', 0, 0), acked('b', 0, 1)], final: { 0: log('a') } });
    expect(report.ok).toBe(false);
    expect(report.counts.lost).toBe(1);
    expect(report.lost).toEqual([{ value: 'b', partition: 0, offset: 1, foundAt: [] }]);
    expect(report.counts.inconsistent).toBe(0);
  });

  it('lost and inconsistent: an acknowledged value present at another offset than acknowledged', () => {
    const report = checkHistory({ history: [acked('a', 0, 0), acked('b', 0, 1), acked('x', 0, 2)], final: { 0: log('a', 'x', 'b') } });
    expect(report.ok).toBe(false);
    expect(report.lost).toEqual([
      { value: 'b', partition: 0, offset: 1, foundAt: [{ partition: 0, offset: 2 }] },
      { value: 'x', partition: 0, offset: 2, foundAt: [{ partition: 0, offset: 1 }] },
    ]);
    expect(report.inconsistent).toEqual([
      { partition: 0, offset: 1, final: 'x', other: 'b', source: 'ack' },
      { partition: 0, offset: 2, final: 'b', other: 'x', source: 'ack' },
    ]);
  });

  it('lost: acknowledged in one partition, found only in another', () => {
    const report = checkHistory({ history: [acked('a', 0, 0)], final: { 0: [], 1: log('a') } });
    expect(report.lost[0]!.foundAt).toEqual([{ partition: 1, offset: 0 }]);
    expect(report.ok).toBe(false);
  });

  it('inconsistent: the live consumer saw another value at an offset than the final log holds, or an offset the log no longer has', () => {
    const history = [acked('a', 0, 0)];
    const unknownB: SendEntry = { value: 'b', partition: 0, attempts: [{ outcome: 'unknown', error: 'REQUEST_TIMED_OUT', startedMs: 0 }] };
    const unknownC: SendEntry = { value: 'c', partition: 0, attempts: [{ outcome: 'unknown', error: 'REQUEST_TIMED_OUT', startedMs: 0 }] };
    const report = checkHistory({
      history: [...history, unknownB, unknownC],
      final: { 0: log('a', 'c') },
      observed: { 0: [{ offset: 0, value: 'a' }, { offset: 1, value: 'b' }, { offset: 2, value: 'c' }] },
    });
    expect(report.ok).toBe(false);
    expect(report.inconsistent).toEqual([
      { partition: 0, offset: 1, final: 'c', other: 'b', source: 'observed' },
      { partition: 0, offset: 2, final: undefined, other: 'c', source: 'observed' },
    ]);
    expect(report.counts.lost).toBe(0); // nothing of it was acknowledged
  });

  it('duplicates after an unknown attempt that was retried are explained', () => {
    const retried: SendEntry = {
      value: 'b',
      partition: 0,
      attempts: [
        { outcome: 'unknown', error: 'REQUEST_TIMED_OUT', startedMs: 0, endedMs: 5 },
        { outcome: 'acked', offset: 2, startedMs: 6, endedMs: 7 },
      ],
    };
    const report = checkHistory({ history: [acked('a', 0, 0), retried], final: { 0: log('a', 'b', 'b') } });
    expect(report.ok).toBe(true);
    expect(report.counts).toMatchObject({ duplicates: 1, explainedDuplicates: 1, unexplainedDuplicates: 0 });
    expect(report.duplicates.explained[0]).toEqual({ value: 'b', at: [{ partition: 0, offset: 1 }, { partition: 0, offset: 2 }], unknownAttempts: 1, ackedAttempts: 1 });
  });

  it('duplicates without an unknown attempt, or more copies than attempts that could have written them, are unexplained', () => {
    const once = acked('a', 0, 0);
    const report = checkHistory({ history: [once], final: { 0: log('a', 'a') } });
    expect(report.ok).toBe(false);
    expect(report.counts.unexplainedDuplicates).toBe(1);

    const retriedOnce: SendEntry = {
      value: 'b',
      partition: 0,
      attempts: [
        { outcome: 'unknown', error: 'NETWORK_EXCEPTION', startedMs: 0 },
        { outcome: 'acked', offset: 0, startedMs: 1 },
      ],
    };
    const thrice = checkHistory({ history: [retriedOnce], final: { 0: log('b', 'b', 'b') } });
    expect(thrice.ok).toBe(false);
    expect(thrice.duplicates.unexplained[0]!.at).toHaveLength(3);

    // A failed (definitely not appended) first attempt does not explain a second copy.
    const failedThenAcked: SendEntry = {
      value: 'c',
      partition: 0,
      attempts: [
        { outcome: 'failed', error: 'NOT_ENOUGH_REPLICAS', startedMs: 0 },
        { outcome: 'acked', offset: 1, startedMs: 1 },
      ],
    };
    const afterFailure = checkHistory({ history: [failedThenAcked], final: { 0: log('c', 'c') } });
    expect(afterFailure.counts.unexplainedDuplicates).toBe(1);
    expect(afterFailure.ok).toBe(false);
  });

  it('gaps: missing offsets above the log start are reported (and do not clear ok on their own)', () => {
    const history = [acked('a', 0, 0), acked('b', 0, 3)];
    const report = checkHistory({ history, final: { 0: [{ offset: 0, value: 'a' }, { offset: 3, value: 'b' }] } });
    expect(report.gaps).toEqual([{ partition: 0, from: 1, to: 3 }]);
    expect(report.counts.missingOffsets).toBe(2);
    expect(report.ok).toBe(true);
    // Below the log start is not a gap, and acknowledgements there are not checked.
    const trimmed = checkHistory({ history, final: { 0: [{ offset: 3, value: 'b' }] }, logStartOffsets: { 0: 3 } });
    expect(trimmed.gaps).toEqual([]);
    expect(trimmed.counts.belowLogStart).toBe(1);
    expect(trimmed.ok).toBe(true);
    // A log start above 0 given as 0 shows the missing prefix.
    expect(checkHistory({ history: [], final: { 0: [{ offset: 2, value: 'z' }] } }).gaps).toEqual([{ partition: 0, from: 0, to: 2 }]);
  });

  it('backwards: the live consumer went back (or repeated an offset) within a partition', () => {
    const history = [acked('a', 0, 0), acked('b', 0, 1), acked('c', 1, 0)];
    const report = checkHistory({
      history,
      final: { 0: log('a', 'b'), 1: log('c') },
      observed: { 0: [{ offset: 0, value: 'a' }, { offset: 1, value: 'b' }, { offset: 0, value: 'a' }, { offset: 1, value: 'b' }], 1: log('c') },
    });
    expect(report.ok).toBe(false);
    expect(report.backwards).toEqual([{ partition: 0, index: 2, from: 1, to: 0 }]);
    expect(report.counts.inconsistent).toBe(0);
  });

  it('phantoms: values in the log nobody sent, or whose every attempt failed, are reported', () => {
    const failed: SendEntry = { value: 'f', partition: 0, attempts: [{ outcome: 'failed', error: 'NOT_ENOUGH_REPLICAS', startedMs: 0 }] };
    const report = checkHistory({ history: [acked('a', 0, 0), failed], final: { 0: log('a', 'f', 'z') } });
    expect(report.phantoms).toEqual([
      { value: 'f', partition: 0, offset: 1, reason: 'failed' },
      { value: 'z', partition: 0, offset: 2, reason: 'never-sent' },
    ]);
  });

  it('pending attempts count as unknown; lists are capped at maxListed while the counts stay exact', () => {
    const history: SendEntry[] = Array.from({ length: 50 }, (_, i) => acked(`v${i}`, 0, i));
    const report = checkHistory({ history, final: { 0: [] }, maxListed: 10 });
    expect(report.counts.lost).toBe(50);
    expect(report.lost).toHaveLength(10);
    expect(report.truncated).toBe(true);
    const pending: SendEntry = { value: 'p', partition: 0, attempts: [{ outcome: 'pending', startedMs: 0 }, { outcome: 'acked', offset: 1, startedMs: 1 }] };
    expect(checkHistory({ history: [pending], final: { 0: log('p', 'p') } }).counts.explainedDuplicates).toBe(1);
  });
});
