// The consumer protocol's bytes in Kafka's layout (with the sticky assignors' userData), and the
// range and round-robin assignors on the examples of Kafka's own documentation of them.
import { describe, expect, it } from 'vitest';
import { commonRebalanceProtocol, rangeAssignor, roundRobinAssignor, type PartitionAssignor } from '../src/group/assignors.js';
import {
  ConsumerProtocolError,
  decodeAssignment,
  decodeCooperativeStickyUserData,
  decodeStickyUserData,
  decodeSubscription,
  encodeAssignment,
  encodeCooperativeStickyUserData,
  encodeStickyUserData,
  encodeSubscription,
} from '../src/group/consumerProtocol.js';

describe('consumer protocol', () => {
  it('lays a subscription out as Kafka does, and reads versions 0 and 2', () => {
    const bytes = encodeSubscription({ topics: ['ab'], userData: null, ownedPartitions: [{ topic: 'ab', partitions: [3] }] });
    // version 1, [topics] "ab", user data null, [owned] ab:[3]
    expect(bytes.toString('hex')).toBe('0001' + '00000001' + '0002' + '6162' + 'ffffffff' + '00000001' + '0002' + '6162' + '00000001' + '00000003');
    expect(decodeSubscription(bytes)).toEqual({ topics: ['ab'], userData: null, ownedPartitions: [{ topic: 'ab', partitions: [3] }], generationId: -1 });
    const v0 = Buffer.from('0000' + '00000002' + '0001' + '61' + '0001' + '62' + '00000001' + '7a', 'hex');
    expect(decodeSubscription(v0)).toEqual({ topics: ['a', 'b'], userData: Buffer.from('z'), ownedPartitions: [], generationId: -1 });
    const v2 = Buffer.concat([encodeSubscription({ topics: ['a'] }), Buffer.from('00000007', 'hex')]);
    v2.writeInt16BE(2, 0);
    expect(decodeSubscription(v2).generationId).toBe(7);
  });

  it('round-trips an assignment; an empty one is empty bytes or no partitions', () => {
    const assignment = { partitions: [{ topic: 'orders', partitions: [0, 2] }], userData: Buffer.from('u') };
    expect(decodeAssignment(encodeAssignment(assignment))).toEqual(assignment);
    expect(decodeAssignment(Buffer.alloc(0))).toEqual({ partitions: [], userData: null });
    expect(() => decodeAssignment(Buffer.from('0000000000', 'hex'))).toThrow(ConsumerProtocolError);
  });
});

describe('sticky assignors\' user data', () => {
  it('lays the sticky previous assignment out as Kafka\'s StickyAssignorUserData v1, and reads v0', () => {
    const bytes = encodeStickyUserData({ partitions: [{ topic: 'ab', partitions: [3, 5] }], generation: 7 });
    // [previous assignment] ab:[3, 5], generation 7; no version prefix
    const v0 = '00000001' + '0002' + '6162' + '00000002' + '00000003' + '00000005';
    expect(bytes.toString('hex')).toBe(v0 + '00000007');
    expect(decodeStickyUserData(bytes)).toEqual({ partitions: [{ topic: 'ab', partitions: [3, 5] }], generation: 7 });
    expect(decodeStickyUserData(Buffer.from(v0, 'hex'))).toEqual({ partitions: [{ topic: 'ab', partitions: [3, 5] }], generation: -1 });
    expect(() => decodeStickyUserData(Buffer.from('00000001' + '0002' + '61', 'hex'))).toThrow(ConsumerProtocolError);
  });

  it('lays the cooperative-sticky generation out as CooperativeStickyAssignorUserData v0', () => {
    expect(encodeCooperativeStickyUserData(7).toString('hex')).toBe('00000007');
    expect(decodeCooperativeStickyUserData(Buffer.from('ffffffff', 'hex'))).toBe(-1);
    expect(() => decodeCooperativeStickyUserData(Buffer.from('01', 'hex'))).toThrow(ConsumerProtocolError);
  });
});

describe('assignors', () => {
  const members = [
    { memberId: 'C1', topics: ['t0', 't1'] },
    { memberId: 'C0', topics: ['t0', 't1'] },
  ];
  const partitionCounts = new Map([
    ['t0', 3],
    ['t1', 3],
  ]);

  it('range: consecutive ranges per topic, the first members one more (Kafka\'s RangeAssignor example)', () => {
    const assignment = rangeAssignor.assign(members, partitionCounts);
    expect(assignment.get('C0')).toEqual([
      { topic: 't0', partitions: [0, 1] },
      { topic: 't1', partitions: [0, 1] },
    ]);
    expect(assignment.get('C1')).toEqual([
      { topic: 't0', partitions: [2] },
      { topic: 't1', partitions: [2] },
    ]);
  });

  it('roundrobin: every partition dealt in turn (Kafka\'s RoundRobinAssignor example)', () => {
    const assignment = roundRobinAssignor.assign(members, partitionCounts);
    expect(assignment.get('C0')).toEqual([
      { topic: 't0', partitions: [0, 2] },
      { topic: 't1', partitions: [1] },
    ]);
    expect(assignment.get('C1')).toEqual([
      { topic: 't0', partitions: [1] },
      { topic: 't1', partitions: [0, 2] },
    ]);
  });

  it('range and roundrobin are eager; a consumer rebalances with the most advanced protocol all its assignors support', () => {
    expect(rangeAssignor.supportedProtocols).toEqual(['EAGER']);
    expect(roundRobinAssignor.supportedProtocols).toEqual(['EAGER']);
    const cooperative: PartitionAssignor = { ...rangeAssignor, name: 'cooperative', supportedProtocols: ['COOPERATIVE', 'EAGER'] };
    const cooperativeOnly: PartitionAssignor = { ...cooperative, name: 'cooperative-only', supportedProtocols: ['COOPERATIVE'] };
    expect(commonRebalanceProtocol([cooperative])).toBe('COOPERATIVE');
    expect(commonRebalanceProtocol([cooperative, roundRobinAssignor])).toBe('EAGER');
    expect(commonRebalanceProtocol([rangeAssignor, roundRobinAssignor])).toBe('EAGER');
    expect(() => commonRebalanceProtocol([cooperativeOnly, rangeAssignor])).toThrow(/no rebalance protocol in common/);
    expect(() => commonRebalanceProtocol([])).toThrow(/no partition assignor/);
  });

  it('gives each partition to one subscribed member; members beyond the partitions stay idle', () => {
    const many = Array.from({ length: 8 }, (_, k) => ({ memberId: `m${k}`, topics: ['orders'] }));
    for (const assignor of [rangeAssignor, roundRobinAssignor]) {
      const assignment = assignor.assign(many, new Map([['orders', 6]]));
      const owned = [...assignment.values()].flatMap((topics) => topics.flatMap((entry) => entry.partitions));
      expect(owned.sort()).toEqual([0, 1, 2, 3, 4, 5]);
      expect([...assignment.values()].filter((topics) => topics.length === 0)).toHaveLength(2);
    }
    // Members subscribed to different topics get only theirs.
    const mixed = roundRobinAssignor.assign(
      [
        { memberId: 'a', topics: ['x'] },
        { memberId: 'b', topics: ['x', 'y'] },
      ],
      new Map([
        ['x', 2],
        ['y', 2],
      ]),
    );
    expect(mixed.get('a')).toEqual([{ topic: 'x', partitions: [0] }]);
    expect(mixed.get('b')).toEqual([
      { topic: 'x', partitions: [1] },
      { topic: 'y', partitions: [0, 1] },
    ]);
  });
});
