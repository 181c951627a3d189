// Kafka's sticky and cooperative-sticky assignors: balance, stickiness, the cooperative
// two-round handover, conflicting claims, unequal subscriptions, vanished topics, determinism,
// and random memberships.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ASSIGNORS,
  commonRebalanceProtocol,
  cooperativeStickyAssignor,
  stickyAssignor,
  type AssignorMember,
  type PartitionAssignor,
} from '../src/group/assignors.js';
import { decodeSubscription, encodeStickyUserData, encodeSubscription, type TopicPartitions } from '../src/group/consumerProtocol.js';

type Counts = ReadonlyMap<string, number>;
type Assignment = Map<string, TopicPartitions[]>;

interface Joiner {
  readonly memberId: string;
  readonly topics: readonly string[];
}

/** "topic/partition" strings of one member's assignment, sorted. */
function keys(partitions: readonly TopicPartitions[] | undefined): string[] {
  return (partitions ?? []).flatMap(({ topic, partitions: numbers }) => numbers.map((partition) => `${topic}/${partition}`)).sort();
}

function fromKeys(list: Iterable<string>): TopicPartitions[] {
  const byTopic = new Map<string, number[]>();
  for (const key of list) {
    const [topic, partition] = key.split('/') as [string, string];
    byTopic.set(topic, [...(byTopic.get(topic) ?? []), Number(partition)]);
  }
  return [...byTopic].map(([topic, partitions]) => ({ topic, partitions }));
}

function ownerOf(assignment: Assignment): Map<string, string> {
  const owners = new Map<string, string>();
  for (const [member, partitions] of assignment) {
    for (const key of keys(partitions)) {
      expect(owners.has(key), `${key} assigned to ${owners.get(key)} and ${member}`).toBe(false);
      owners.set(key, member);
    }
  }
  return owners;
}

function sizes(assignment: Assignment): number[] {
  return [...assignment.values()].map((partitions) => keys(partitions).length);
}

function allPartitions(counts: Counts, topics: Iterable<string>): string[] {
  return [...new Set(topics)].flatMap((topic) => Array.from({ length: counts.get(topic) ?? 0 }, (_, partition) => `${topic}/${partition}`)).sort();
}

/**
 * What every assignment must be: one entry per member, each partition to at most one member and
 * only to one subscribed to its topic.
 */
function expectValid(assignment: Assignment, members: readonly Joiner[], counts: Counts): void {
  expect([...assignment.keys()].sort()).toEqual(members.map((member) => member.memberId).sort());
  const owners = ownerOf(assignment);
  for (const [key, member] of owners) {
    const topic = key.split('/')[0]!;
    expect(members.find((candidate) => candidate.memberId === member)!.topics).toContain(topic);
    expect(Number(key.split('/')[1])).toBeLessThan(counts.get(topic)!);
  }
}

/**
 * Kafka's "as balanced as possible": every partition of every subscribed topic is assigned, and
 * no member could take a partition from a member holding two or more more than it.
 */
function expectBalanced(assignment: Assignment, members: readonly Joiner[], counts: Counts): void {
  expectValid(assignment, members, counts);
  const owners = ownerOf(assignment);
  expect([...owners.keys()].sort()).toEqual(allPartitions(counts, members.flatMap((member) => member.topics)));
  const size = new Map([...assignment].map(([member, partitions]) => [member, keys(partitions).length]));
  for (const member of members) {
    for (const key of allPartitions(counts, member.topics)) {
      const owner = owners.get(key)!;
      expect(size.get(owner)!, `${member.memberId} (${size.get(member.memberId)}) could take ${key} from ${owner}`).toBeLessThanOrEqual(size.get(member.memberId)! + 1);
    }
  }
  if (members.every((member) => [...member.topics].sort().join() === [...members[0]!.topics].sort().join())) {
    expect(Math.max(...sizes(assignment)) - Math.min(...sizes(assignment))).toBeLessThanOrEqual(1);
  }
}

/**
 * The fewest partitions that must change owner to balance `partitionCount` partitions, all of
 * them owned as `owned` says, over `memberCount` members that subscribe to the same topics: the
 * ceil-sized shares go to the members owning the most.
 */
function fewestMoves(owned: readonly number[], memberCount: number, partitionCount: number): number {
  const floor = Math.floor(partitionCount / memberCount);
  const ceilShares = partitionCount % memberCount;
  const kept = [...owned].sort((a, b) => b - a).reduce((sum, count, index) => sum + Math.min(count, index < ceilShares ? floor + 1 : floor), 0);
  return partitionCount - kept;
}

function moved(before: Assignment, after: Assignment): string[] {
  const previous = ownerOf(before);
  const next = ownerOf(after);
  return [...previous].filter(([key, member]) => next.get(key) !== member).map(([key]) => key);
}

function membersOf(count: number, topics: readonly string[]): Joiner[] {
  return Array.from({ length: count }, (_, k) => ({ memberId: `member-${k}`, topics }));
}

/**
 * One rebalance as a member would take part in it: each joins with the Subscription bytes it
 * would send (its owned partitions under COOPERATIVE, nothing under EAGER, and the assignor's
 * userData), and the leader assigns on the decoded subscriptions.
 */
function rebalance(assignor: PartitionAssignor, members: readonly Joiner[], owned: Assignment, generation: number, counts: Counts): Assignment {
  const cooperative = commonRebalanceProtocol([assignor]) === 'COOPERATIVE';
  const joined: AssignorMember[] = members.map(({ memberId, topics }) => {
    const partitions = owned.get(memberId) ?? [];
    const memberGeneration = owned.has(memberId) ? generation : -1;
    const bytes = encodeSubscription({
      topics,
      userData: assignor.subscriptionUserData?.(partitions, memberGeneration) ?? null,
      ownedPartitions: cooperative ? partitions : [],
    });
    return { memberId, ...decodeSubscription(bytes) };
  });
  return assignor.assign(joined, counts);
}

/**
 * Cooperative rounds until an assignment leaves nothing out. Checks in every round that no
 * partition is handed to one member while another still owns it; returns the rounds it took.
 */
function rebalanceCooperatively(members: readonly Joiner[], start: Assignment, startGeneration: number, counts: Counts, maxRounds = 10): { assignment: Assignment; rounds: number } {
  let owned = new Map([...start].filter(([member]) => members.some((candidate) => candidate.memberId === member)));
  const everything = allPartitions(counts, members.flatMap((member) => member.topics));
  for (let round = 1; round <= maxRounds; round++) {
    const assignment = rebalance(cooperativeStickyAssignor, members, owned, startGeneration + round - 1, counts);
    expectValid(assignment, members, counts);
    for (const [member, partitions] of assignment) {
      const ownedByMember = new Set(keys(owned.get(member)));
      for (const key of keys(partitions)) {
        if (ownedByMember.has(key)) continue;
        const stillOwning = [...owned].filter(([other, otherPartitions]) => other !== member && keys(otherPartitions).includes(key));
        expect(stillOwning, `${key} given to ${member} while owned by ${stillOwning.map(([other]) => other)}`).toEqual([]);
      }
    }
    // Each member revokes what it lost and takes what it gained: it owns its assignment.
    owned = assignment;
    if (ownerOf(assignment).size === everything.length) return { assignment, rounds: round };
  }
  throw new Error(`no complete assignment after ${maxRounds} rounds`);
}

const onePartitionedTopic = new Map([['orders', 6]]);
const severalTopics = new Map([
  ['a', 3],
  ['b', 5],
  ['c', 4],
]);

describe('sticky assignors', () => {
  it('sit beside range and roundrobin; cooperative-sticky alone rebalances cooperatively, beside an eager-only assignor eagerly', () => {
    expect(ASSIGNORS.map((assignor) => [assignor.name, assignor.supportedProtocols])).toEqual([
      ['range', ['EAGER']],
      ['roundrobin', ['EAGER']],
      ['sticky', ['EAGER']],
      ['cooperative-sticky', ['COOPERATIVE', 'EAGER']],
    ]);
    expect(commonRebalanceProtocol([cooperativeStickyAssignor])).toBe('COOPERATIVE');
    expect(commonRebalanceProtocol([cooperativeStickyAssignor, stickyAssignor])).toBe('EAGER');
  });

  for (const assignor of [stickyAssignor, cooperativeStickyAssignor]) {
    it(`${assignor.name}: 1 to 8 fresh members share 6 partitions, and several topics, within one of each other`, () => {
      for (let count = 1; count <= 8; count++) {
        for (const counts of [onePartitionedTopic, severalTopics]) {
          const members = membersOf(count, [...counts.keys()]);
          const assignment = rebalance(assignor, members, new Map(), -1, counts);
          expectBalanced(assignment, members, counts);
          const total = [...counts.values()].reduce((sum, n) => sum + n, 0);
          expect(Math.max(...sizes(assignment))).toBe(Math.ceil(total / count));
        }
      }
    });
  }

  it("sticky: Kafka's StickyAssignor examples (equal and unequal subscriptions, a member removed)", () => {
    const fourTopics = new Map(['t0', 't1', 't2', 't3'].map((topic) => [topic, 2]));
    const three = membersOf(3, ['t0', 't1', 't2', 't3']).map((member, k) => ({ ...member, memberId: `C${k}` }));
    const first = rebalance(stickyAssignor, three, new Map(), -1, fourTopics);
    expect(Object.fromEntries([...first].map(([member, partitions]) => [member, keys(partitions)]))).toEqual({
      C0: ['t0/0', 't1/1', 't3/0'],
      C1: ['t0/1', 't2/0', 't3/1'],
      C2: ['t1/0', 't2/1'],
    });
    const withoutC1 = three.filter((member) => member.memberId !== 'C1');
    const second = rebalance(stickyAssignor, withoutC1, first, 1, fourTopics);
    expect(Object.fromEntries([...second].map(([member, partitions]) => [member, keys(partitions)]))).toEqual({
      C0: ['t0/0', 't1/1', 't2/0', 't3/0'],
      C2: ['t0/1', 't1/0', 't2/1', 't3/1'],
    });

    const sized = new Map([
      ['t0', 1],
      ['t1', 2],
      ['t2', 3],
    ]);
    const unequal = [
      { memberId: 'C0', topics: ['t0'] },
      { memberId: 'C1', topics: ['t0', 't1'] },
      { memberId: 'C2', topics: ['t0', 't1', 't2'] },
    ];
    const before = rebalance(stickyAssignor, unequal, new Map(), -1, sized);
    expect(Object.fromEntries([...before].map(([member, partitions]) => [member, keys(partitions)]))).toEqual({
      C0: ['t0/0'],
      C1: ['t1/0', 't1/1'],
      C2: ['t2/0', 't2/1', 't2/2'],
    });
    const after = rebalance(stickyAssignor, unequal.slice(1), before, 1, sized);
    expect(Object.fromEntries([...after].map(([member, partitions]) => [member, keys(partitions)]))).toEqual({
      C1: ['t0/0', 't1/0', 't1/1'],
      C2: ['t2/0', 't2/1', 't2/2'],
    });
  });

  it('sticky: a member joining moves only the fewest partitions; a member leaving moves only its own', () => {
    for (const counts of [onePartitionedTopic, severalTopics]) {
      const topics = [...counts.keys()];
      const total = [...counts.values()].reduce((sum, n) => sum + n, 0);
      let assignment: Assignment = new Map();
      for (let count = 1; count <= 8; count++) {
        const members = membersOf(count, topics);
        const next = rebalance(stickyAssignor, members, assignment, count - 1, counts);
        expectBalanced(next, members, counts);
        const previousSizes = members.map((member) => keys(assignment.get(member.memberId)).length);
        expect(moved(assignment, next)).toHaveLength(count === 1 ? 0 : fewestMoves(previousSizes, count, total));
        assignment = next;
      }
      for (let count = 8; count > 1; count--) {
        // The member in the middle leaves: nobody else's partitions move.
        const present = [...assignment.keys()].sort();
        const leaving = present[Math.floor(present.length / 2)]!;
        const members = present.filter((member) => member !== leaving).map((memberId) => ({ memberId, topics }));
        const next = rebalance(stickyAssignor, members, assignment, 20 - count, counts);
        expectBalanced(next, members, counts);
        expect(moved(assignment, next)).toEqual(keys(assignment.get(leaving)));
        assignment = next;
      }
    }
  });

  it('cooperative-sticky: members joining one by one and leaving again; never owned twice, balanced within two rounds', () => {
    for (const counts of [onePartitionedTopic, severalTopics]) {
      const topics = [...counts.keys()];
      const total = [...counts.values()].reduce((sum, n) => sum + n, 0);
      let assignment: Assignment = new Map();
      let generation = 0;
      const step = (members: Joiner[], fewest: number) => {
        const { assignment: next, rounds } = rebalanceCooperatively(members, assignment, generation, counts);
        expect(rounds).toBeLessThanOrEqual(2);
        // A second round happens exactly when something had to change owner.
        expect(rounds).toBe(moved(assignment, next).length > 0 ? 2 : 1);
        expect(moved(assignment, next)).toHaveLength(fewest);
        expectBalanced(next, members, counts);
        generation += rounds;
        assignment = next;
      };
      for (let count = 1; count <= 8; count++) {
        const members = membersOf(count, topics);
        step(members, count === 1 ? 0 : fewestMoves(members.map((member) => keys(assignment.get(member.memberId)).length), count, total));
      }
      for (let count = 8; count > 1; count--) {
        const leaving = `member-${count - 1}`;
        const members = membersOf(count - 1, topics);
        // What the leaver owned is free at once; nothing else moves.
        const fewest = 0;
        const before = new Map(assignment);
        before.delete(leaving);
        assignment = before;
        step(members, fewest);
      }
    }
  });

  it('cooperative-sticky: the first round hands over only what nobody else owns; the second gives out what was revoked', () => {
    const counts = new Map([['orders', 4]]);
    const owned: Assignment = new Map([['a', [{ topic: 'orders', partitions: [0, 1, 2, 3] }]]]);
    const members = [
      { memberId: 'a', topics: ['orders'] },
      { memberId: 'b', topics: ['orders'] },
    ];
    const first = rebalance(cooperativeStickyAssignor, members, owned, 3, counts);
    expect(keys(first.get('a'))).toHaveLength(2);
    expect(keys(first.get('b'))).toEqual([]);
    const second = rebalance(cooperativeStickyAssignor, members, first, 4, counts);
    expect(keys(second.get('a'))).toEqual(keys(first.get('a')));
    expect(keys(second.get('b'))).toEqual(allPartitions(counts, ['orders']).filter((key) => !keys(first.get('a')).includes(key)));
  });

  it('a partition claimed by two members goes to the newer generation; claimed twice in one generation, neither keeps it', () => {
    const counts = new Map([['t', 4]]);
    const claim = (memberId: string, partitions: number[], generation: number, topics = ['t']): AssignorMember => ({
      memberId,
      topics,
      userData: stickyAssignor.subscriptionUserData!([{ topic: 't', partitions }], generation),
      ownedPartitions: [{ topic: 't', partitions }],
      generationId: generation,
    });
    // b's claim on 1 is from an older generation: a keeps 1, b keeps 2.
    for (const assignor of [stickyAssignor, cooperativeStickyAssignor]) {
      const assignment = assignor.assign([claim('a', [0, 1], 6), claim('b', [1, 2], 5)], counts);
      expect(keys(assignment.get('a'))).toEqual(['t/0', 't/1']);
      expect(keys(assignment.get('b'))).toEqual(['t/2', 't/3']);
    }
    // Same generation: 1 is nobody's. Eagerly it goes where the balance wants it: to b, the
    // first of the least loaded (had a kept it, b would have got 0 from a instead).
    const contested = [claim('a', [0, 1], 5), claim('b', [1], 5), claim('c', [], -1)];
    const eager = stickyAssignor.assign(contested, counts);
    expectBalanced(eager, contested, counts);
    expect(keys(eager.get('a'))).toEqual(['t/0', 't/3']);
    expect(keys(eager.get('b'))).toEqual(['t/1']);
    // Cooperatively it is withheld from everyone, so both claimants revoke it first.
    const cooperative = cooperativeStickyAssignor.assign(contested, counts);
    expect(ownerOf(cooperative).has('t/1')).toBe(false);
    expect(keys(cooperative.get('a'))).toEqual(['t/0', 't/3']);
  });

  it('cooperative-sticky reads the generation from the subscription (v2) or else from its userData', () => {
    const counts = new Map([['t', 2]]);
    const stale = { memberId: 'a', topics: ['t'], ownedPartitions: [{ topic: 't', partitions: [0] }] };
    const current = { memberId: 'b', topics: ['t'], ownedPartitions: [{ topic: 't', partitions: [0] }] };
    const byGenerationId = cooperativeStickyAssignor.assign([{ ...stale, generationId: 3 }, { ...current, generationId: 4 }], counts);
    const byUserData = cooperativeStickyAssignor.assign(
      [
        { ...stale, userData: cooperativeStickyAssignor.subscriptionUserData!([], 3) },
        { ...current, userData: cooperativeStickyAssignor.subscriptionUserData!([], 4) },
      ],
      counts,
    );
    for (const assignment of [byGenerationId, byUserData]) {
      expect(keys(assignment.get('b'))).toEqual(['t/0']);
      expect(keys(assignment.get('a'))).toEqual(['t/1']);
    }
    // Unreadable userData is an unknown generation, not a failed assignment.
    const garbled = cooperativeStickyAssignor.assign([{ ...stale, userData: Buffer.from([1]) }, { ...current, generationId: 0 }], counts);
    expect(keys(garbled.get('b'))).toEqual(['t/0']);
  });

  it('sticky: no previous assignment before the first generation; unreadable userData is no previous assignment', () => {
    expect(stickyAssignor.subscriptionUserData!([], -1)).toBeNull();
    const counts = new Map([['t', 2]]);
    const assignment = stickyAssignor.assign(
      [
        { memberId: 'a', topics: ['t'], userData: Buffer.from('garbage') },
        { memberId: 'b', topics: ['t'], userData: stickyAssignor.subscriptionUserData!([{ topic: 't', partitions: [0] }], 2) },
      ],
      counts,
    );
    expect(keys(assignment.get('b'))).toEqual(['t/0']);
    expect(keys(assignment.get('a'))).toEqual(['t/1']);
  });

  it('unequal subscriptions: each member only gets its topics, as balanced as they allow, and stays sticky', () => {
    const counts = new Map([
      ['x', 5],
      ['y', 2],
    ]);
    const members = [
      { memberId: 'a', topics: ['x'] },
      { memberId: 'b', topics: ['x', 'y'] },
      { memberId: 'c', topics: ['y'] },
    ];
    for (const assignor of [stickyAssignor, cooperativeStickyAssignor]) {
      const assignment = rebalance(assignor, members, new Map(), -1, counts);
      expectBalanced(assignment, members, counts);
      expect(sizes(assignment).sort()).toEqual([2, 2, 3]);
      // c stops subscribing to y (to anything): its partitions go to b, the one other member that can take them, and nothing else moves.
      const changed = members.map((member) => (member.memberId === 'c' ? { ...member, topics: [] } : member));
      const next = assignor === stickyAssignor ? rebalance(stickyAssignor, changed, assignment, 1, counts) : rebalanceCooperatively(changed, assignment, 1, counts).assignment;
      expectBalanced(next, changed, counts);
      expect(moved(assignment, next).sort()).toEqual(keys(assignment.get('c')));
    }
  });

  it('unequal subscriptions: to even the load it moves a partition nobody owned before one somebody did', () => {
    const counts = new Map([
      ['x', 4],
      ['y', 13],
    ]);
    const members = [
      { memberId: 'a', topics: ['x'] },
      { memberId: 'b', topics: ['x', 'y'] },
      { memberId: 'c', topics: ['y'] },
      { memberId: 'd', topics: ['y'] },
    ];
    const owned: Assignment = new Map([
      ['a', fromKeys(['x/2', 'x/3'])],
      ['b', fromKeys(['x/0'])],
      ['c', fromKeys(['y/0', 'y/1', 'y/2', 'y/3', 'y/4'])],
      ['d', fromKeys(['y/5', 'y/6', 'y/7', 'y/8', 'y/9'])],
    ]);
    // b, the least loaded for x, gets the new x/1, then the new y/10..12: two more than a, which
    // can take only x. Handing a the x/1 that b never owned evens them without revoking x/0.
    const eager = rebalance(stickyAssignor, members, owned, 1, counts);
    expectBalanced(eager, members, counts);
    expect(keys(eager.get('a'))).toEqual(['x/1', 'x/2', 'x/3']);
    expect(moved(owned, eager)).toEqual([]);
    const { assignment, rounds } = rebalanceCooperatively(members, owned, 1, counts);
    expect(assignment).toEqual(eager);
    expect(rounds).toBe(1);
  });

  it('unequal subscriptions: evens out the least loaded member first', () => {
    const counts = new Map([
      ['a', 1],
      ['b', 2],
      ['c', 2],
    ]);
    const members = [
      { memberId: 'm0', topics: ['b', 'c'] },
      { memberId: 'm1', topics: ['b'] },
      { memberId: 'm2', topics: ['a', 'b', 'c'] },
      { memberId: 'm3', topics: ['c'] },
    ];
    const owned: Assignment = new Map([
      ['m0', fromKeys(['c/1'])],
      ['m1', fromKeys(['b/0'])],
      ['m2', fromKeys(['b/1', 'c/0'])],
    ]);
    // m2 (3, with the new a/0) must give one up. Giving b/1 to m0 (1) first would leave m3 (0)
    // to take c/1 from m0 in turn: two moves where one, c/0 to m3, does.
    const assignment = rebalance(stickyAssignor, members, owned, 1, counts);
    expectBalanced(assignment, members, counts);
    expect(moved(owned, assignment)).toEqual(['c/0']);
    expect(keys(assignment.get('m3'))).toEqual(['c/0']);
  });

  it('drops ownership of deleted topics and of partitions past the end of a topic', () => {
    const before = new Map([
      ['kept', 4],
      ['deleted', 3],
    ]);
    const members = membersOf(2, ['kept', 'deleted']);
    for (const assignor of [stickyAssignor, cooperativeStickyAssignor]) {
      const assignment = rebalance(assignor, members, new Map(), -1, before);
      // 'deleted' is gone from the metadata and 'kept' now has only 2 partitions.
      const after = new Map([['kept', 2]]);
      const next = rebalance(assignor, members, assignment, 1, after);
      expectBalanced(next, members, after);
      // Each member still has what it had of the two partitions that remain.
      for (const [member, partitions] of next) {
        expect(keys(partitions)).toEqual(keys(assignment.get(member)).filter((key) => key === 'kept/0' || key === 'kept/1'));
      }
    }
  });

  it('is deterministic: the same input, in any member order, gives the same assignment', () => {
    const counts = severalTopics;
    const members: AssignorMember[] = ['m3', 'm1', 'm4', 'm0', 'm2'].map((memberId, k) => ({
      memberId,
      topics: k === 2 ? ['a', 'b'] : ['a', 'b', 'c'],
      ownedPartitions: fromKeys(k === 0 ? ['a/0', 'b/1', 'c/3'] : k === 1 ? ['a/0', 'c/0', 'c/1', 'c/2'] : k === 3 ? ['b/0', 'b/2', 'b/3', 'b/4'] : []),
      generationId: 7,
      userData: stickyAssignor.subscriptionUserData!(fromKeys(k === 0 ? ['a/0', 'b/1'] : k === 1 ? ['a/0', 'c/0'] : []), 7),
    }));
    for (const assignor of [stickyAssignor, cooperativeStickyAssignor]) {
      const first = assignor.assign(members, counts);
      expect(assignor.assign(members, counts)).toEqual(first);
      expect(assignor.assign([...members].reverse(), counts)).toEqual(first);
      expect(assignor.assign([members[2]!, members[0]!, members[4]!, members[1]!, members[3]!], counts)).toEqual(first);
    }
  });
});

describe('sticky assignors on random memberships', () => {
  const topicNames = ['a', 'b', 'c'];
  const membership = fc
    .record({
      counts: fc.tuple(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 7 })),
      equalSubscriptions: fc.boolean(),
      members: fc.uniqueArray(
        fc.record({
          memberId: fc.constantFrom(...'abcdefghijkl'.split('').map((letter) => `member-${letter}`)),
          topics: fc.subarray(topicNames, { minLength: 1 }),
          // Claims may name vanished partitions (up to 9) and clash with other members'.
          claimed: fc.uniqueArray(fc.tuple(fc.constantFrom(...topicNames), fc.integer({ min: 0, max: 9 })), { maxLength: 8, selector: ([topic, partition]) => `${topic}/${partition}` }),
          generation: fc.integer({ min: -1, max: 3 }),
        }),
        { minLength: 1, maxLength: 8, selector: (member) => member.memberId },
      ),
    })
    .map(({ counts, equalSubscriptions, members }) => ({
      counts: new Map(topicNames.map((topic, k) => [topic, counts[k]!]).filter(([, count]) => count !== 0) as [string, number][]),
      members: members.map((member) => ({ ...member, topics: equalSubscriptions ? topicNames : member.topics })),
    }));

  it('every assignment is valid and balanced; sticky keeps all it can when subscriptions are equal; cooperative is sticky less transfers', () => {
    fc.assert(
      fc.property(membership, ({ counts, members }) => {
        // The same ownership told each assignor's way: in userData for sticky (whatever the
        // generation), in ownedPartitions and generationId for cooperative-sticky.
        const owned = (claimed: [string, number][]) => fromKeys(claimed.map(([topic, partition]) => `${topic}/${partition}`));
        const eager = stickyAssignor.assign(
          members.map(({ memberId, topics, claimed, generation }) => ({ memberId, topics, userData: encodeStickyUserData({ partitions: owned(claimed), generation }) })),
          counts,
        );
        expectBalanced(eager, members, counts);
        const cooperative = cooperativeStickyAssignor.assign(
          members.map(({ memberId, topics, claimed, generation }) => ({ memberId, topics, ownedPartitions: owned(claimed), generationId: generation })),
          counts,
        );
        expectValid(cooperative, members, counts);
        for (const member of members) expect(keys(eager.get(member.memberId))).toEqual(expect.arrayContaining(keys(cooperative.get(member.memberId))));
        // What cooperative leaves out is exactly what someone else claims.
        const claimedBy = new Map<string, string[]>();
        for (const { memberId, claimed } of members) for (const [topic, partition] of claimed) claimedBy.set(`${topic}/${partition}`, [...(claimedBy.get(`${topic}/${partition}`) ?? []), memberId]);
        for (const [member, partitions] of eager) {
          for (const key of keys(partitions)) {
            const withheld = !keys(cooperative.get(member)).includes(key);
            if (withheld) expect((claimedBy.get(key) ?? []).some((other) => other !== member)).toBe(true);
          }
        }
        // With one set of topics for all and no clashing claims, only the unavoidable moves happen.
        const claims = members.flatMap((member) => member.claimed.map(([topic, partition]) => `${topic}/${partition}`));
        const validClaims = claims.filter((key) => Number(key.split('/')[1]) < (counts.get(key.split('/')[0]!) ?? 0));
        if (members.every((member) => member.topics.length === topicNames.length) && new Set(claims).size === claims.length) {
          const total = [...counts.values()].reduce((sum, n) => sum + n, 0);
          const owned = members.map((member) => member.claimed.filter(([topic, partition]) => partition < (counts.get(topic) ?? 0)).length);
          const kept = members.reduce((sum, member) => sum + keys(eager.get(member.memberId)).filter((key) => member.claimed.some(([topic, partition]) => `${topic}/${partition}` === key)).length, 0);
          expect(validClaims.length - kept).toBe(fewestMoves(owned, members.length, total) - (total - validClaims.length));
        }
      }),
      { numRuns: 400 },
    );
  });

  it('cooperative rebalancing after any change never owns a partition twice and settles in two rounds when subscriptions are equal', () => {
    fc.assert(
      fc.property(membership, membership, ({ counts, members: before }, { members: after }) => {
        // The group as it was, settled; then members come and go and subscriptions change.
        const previous = rebalanceCooperatively(before, new Map(), 0, counts);
        const { assignment, rounds } = rebalanceCooperatively(after, previous.assignment, previous.rounds, counts);
        expectBalanced(assignment, after, counts);
        const equal = after.every((member) => member.topics.length === topicNames.length);
        if (equal) expect(rounds).toBeLessThanOrEqual(2);
      }),
      { numRuns: 400 },
    );
  });
});
