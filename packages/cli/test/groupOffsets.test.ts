// The arithmetic of `runnel group reset-offsets` and `describe`: which target the options ask for,
// how datetimes read, how new offsets are clamped, and how lag is counted.
import { describe, expect, it } from 'vitest';
import { parseDatetime, partitionKey, partitionLags, planReset, resetTargetOf, type PartitionPosition } from '../src/commands/groupOffsets.js';

/** Partition 0: log 10..100, committed 40; partition 1: log 0..5, nothing committed. */
const positions: PartitionPosition[] = [
  { partition: 0, committed: 40, logStart: 10, logEnd: 100 },
  { partition: 1, committed: null, logStart: 0, logEnd: 5 },
];

const newOffsets = (plan: ReturnType<typeof planReset>) => plan.map((row) => row.newOffset);

describe('reset-offsets plan', () => {
  it('goes to the log start or end, keeping the current offset for the report', () => {
    expect(planReset('orders', { kind: 'earliest' }, positions)).toEqual([
      { topic: 'orders', partition: 0, currentOffset: 40, newOffset: 10 },
      { topic: 'orders', partition: 1, currentOffset: null, newOffset: 0 },
    ]);
    expect(newOffsets(planReset('orders', { kind: 'latest' }, positions))).toEqual([100, 5]);
  });

  it('clamps --to-offset to the log start and end', () => {
    expect(newOffsets(planReset('orders', { kind: 'offset', offset: 3 }, positions))).toEqual([10, 3]);
    expect(newOffsets(planReset('orders', { kind: 'offset', offset: 50 }, positions))).toEqual([50, 5]);
    expect(newOffsets(planReset('orders', { kind: 'offset', offset: 100 }, positions.slice(0, 1)))).toEqual([100]);
  });

  it('shifts the committed offset, clamped, and refuses to shift a partition without a commit', () => {
    const committedOnly = positions.slice(0, 1);
    expect(newOffsets(planReset('orders', { kind: 'shift', by: -25 }, committedOnly))).toEqual([15]);
    expect(newOffsets(planReset('orders', { kind: 'shift', by: -35 }, committedOnly))).toEqual([10]);
    expect(newOffsets(planReset('orders', { kind: 'shift', by: 60 }, committedOnly))).toEqual([100]);
    expect(newOffsets(planReset('orders', { kind: 'shift', by: 0 }, committedOnly))).toEqual([40]);
    expect(() => planReset('orders', { kind: 'shift', by: 1 }, positions)).toThrow('cannot shift the offset of orders-1: the group has no committed offset for it');
  });

  it('goes to the offset found for a datetime, or to the log end when no record is that recent', () => {
    const found = [
      { ...positions[0]!, offsetForTime: 70 },
      { ...positions[1]!, offsetForTime: null },
    ];
    expect(newOffsets(planReset('orders', { kind: 'datetime', timestamp: 1_700_000_000_000 }, found))).toEqual([70, 5]);
    expect(() => planReset('orders', { kind: 'datetime', timestamp: 1 }, positions)).toThrow('no offset was looked up for orders-0');
  });
});

describe('reset-offsets options', () => {
  it('takes exactly one target', () => {
    expect(resetTargetOf({ toEarliest: true })).toEqual({ kind: 'earliest' });
    expect(resetTargetOf({ toLatest: true })).toEqual({ kind: 'latest' });
    expect(resetTargetOf({ toOffset: 0 })).toEqual({ kind: 'offset', offset: 0 });
    expect(resetTargetOf({ shiftBy: -3 })).toEqual({ kind: 'shift', by: -3 });
    expect(resetTargetOf({ toDatetime: '2024-05-01T12:00:00Z' })).toEqual({ kind: 'datetime', timestamp: Date.UTC(2024, 4, 1, 12) });
    expect(() => resetTargetOf({})).toThrow('needs exactly one of --to-earliest, --to-latest, --to-offset, --to-datetime, --shift-by: none was given');
    expect(() => resetTargetOf({ toEarliest: true, shiftBy: 2 })).toThrow('got --to-earliest and --shift-by');
    expect(() => resetTargetOf({ toEarliest: false, toOffset: 4 })).not.toThrow();
  });

  it('reads ISO-8601 datetimes: UTC, with a zone offset, or local without a zone', () => {
    expect(parseDatetime('2024-05-01T12:00:00Z')).toBe(Date.UTC(2024, 4, 1, 12));
    expect(parseDatetime('2024-05-01T12:00:00.5Z')).toBe(Date.UTC(2024, 4, 1, 12, 0, 0, 500));
    expect(parseDatetime('2024-05-01T14:30:00.250+02:00')).toBe(Date.UTC(2024, 4, 1, 12, 30, 0, 250));
    expect(parseDatetime('2024-05-01T07:00-05:00')).toBe(Date.UTC(2024, 4, 1, 12));
    expect(parseDatetime('2024-05-01T12:00:00')).toBe(new Date(2024, 4, 1, 12).getTime());
    expect(parseDatetime('2024-05-01')).toBe(new Date(2024, 4, 1).getTime());
  });

  it('refuses what is not an existing time after 1970', () => {
    expect(() => parseDatetime('yesterday')).toThrow("'yesterday' is not an ISO-8601 date-time");
    expect(() => parseDatetime('2024-5-1')).toThrow('is not an ISO-8601 date-time');
    expect(() => parseDatetime('2024-02-30')).toThrow('is not a time that exists');
    expect(() => parseDatetime('2024-05-01T24:00:00Z')).toThrow('is not a time that exists');
    expect(() => parseDatetime('2024-05-01T12:00:00+25:00')).toThrow('has a zone offset that does not exist');
    expect(() => parseDatetime('1969-12-31T23:59:59Z')).toThrow('is before 1970');
    expect(() => parseDatetime('1970-01-01T00:30:00+01:00')).toThrow('is before 1970');
    expect(parseDatetime('1970-01-01T00:00:00Z')).toBe(0);
  });
});

describe('group lag', () => {
  const member = (memberId: string, assignment: Array<{ topic: string; partitions: number[] }>) => ({ memberId, groupInstanceId: null, clientId: 'c', clientHost: '/h', assignment });
  const committed = (topic: string, partition: number, offset: number) => ({ topic, partition, offset, leaderEpoch: -1, metadata: '' });

  it('rows for assigned and committed partitions, sorted, with owners and the total of the known lags', () => {
    const members = [member('m-2', [{ topic: 'orders', partitions: [1] }]), member('m-1', [{ topic: 'audit', partitions: [0] }, { topic: 'orders', partitions: [0] }])];
    const commits = [committed('orders', 0, 40), committed('orders', 2, 7), committed('gone', 0, 3)];
    const logEnds = new Map([
      [partitionKey('orders', 0), 50],
      [partitionKey('orders', 1), 30],
      [partitionKey('orders', 2), 7],
      [partitionKey('audit', 0), 12],
    ]);
    expect(partitionLags(members, commits, logEnds)).toEqual({
      partitions: [
        { topic: 'audit', partition: 0, committedOffset: null, logEndOffset: 12, lag: null, owner: 'm-1' },
        { topic: 'gone', partition: 0, committedOffset: 3, logEndOffset: null, lag: null, owner: null },
        { topic: 'orders', partition: 0, committedOffset: 40, logEndOffset: 50, lag: 10, owner: 'm-1' },
        { topic: 'orders', partition: 1, committedOffset: null, logEndOffset: 30, lag: null, owner: 'm-2' },
        { topic: 'orders', partition: 2, committedOffset: 7, logEndOffset: 7, lag: 0, owner: null },
      ],
      totalLag: 10,
    });
  });

  it('is empty for a group with neither members nor commits', () => {
    expect(partitionLags([], [], new Map())).toEqual({ partitions: [], totalLag: 0 });
  });
});
