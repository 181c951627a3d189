// Partition assignors: run by the group's leader member on every member's subscription, as in
// Kafka (the broker only relays the result). Each is deterministic in its input, so that every
// client computes the same assignment from the same members, whatever its language: the names and
// rules are Kafka's RangeAssignor ("range"), RoundRobinAssignor ("roundrobin"), StickyAssignor
// ("sticky") and CooperativeStickyAssignor ("cooperative-sticky").
import {
  ConsumerProtocolError,
  decodeCooperativeStickyUserData,
  decodeStickyUserData,
  encodeCooperativeStickyUserData,
  encodeStickyUserData,
  type Subscription,
  type TopicPartitions,
} from './consumerProtocol.js';
import { stickyAssign, type MemberPartitions, type StickyMember } from './stickyAssignment.js';

/**
 * Kafka's rebalance protocols. EAGER: every member revokes all its partitions before it joins, so
 * an assignment may move anything. COOPERATIVE (KIP-429): members keep consuming what they own
 * while the group rebalances and report it in `ownedPartitions`; an assignment must not hand a
 * partition to one member while another still owns it.
 */
export type RebalanceProtocol = 'EAGER' | 'COOPERATIVE';

/** A member as the leader sees it: its id and its decoded Subscription (`{ memberId, ...decodeSubscription(metadata) }`). */
export interface AssignorMember extends Pick<Subscription, 'topics'>, Partial<Omit<Subscription, 'topics'>> {
  readonly memberId: string;
}

export interface PartitionAssignor {
  readonly name: string;
  /** The rebalance protocols this assignor's assignments are safe under. */
  readonly supportedProtocols: readonly RebalanceProtocol[];
  /**
   * The userData for this assignor's Subscription, from what the member was last assigned and the
   * generation of that assignment (-1 before its first); absent or null: none.
   */
  subscriptionUserData?(ownedAssignment: readonly TopicPartitions[], generation: number): Buffer | null;
  /** memberId → its partitions, per topic in topic order, partitions ascending. */
  assign(members: readonly AssignorMember[], partitionCounts: ReadonlyMap<string, number>): Map<string, TopicPartitions[]>;
}

function byMemberId(a: AssignorMember, b: AssignorMember): number {
  return a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0;
}

function collect(result: MemberPartitions): Map<string, TopicPartitions[]> {
  const out = new Map<string, TopicPartitions[]>();
  for (const [memberId, topics] of result) {
    out.set(
      memberId,
      [...topics.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([topic, partitions]) => ({ topic, partitions: [...partitions].sort((x, y) => x - y) })),
    );
  }
  return out;
}

function emptyResult(members: readonly AssignorMember[]): MemberPartitions {
  return new Map(members.map((member) => [member.memberId, new Map<string, number[]>()]));
}

/**
 * Per topic, the members subscribed to it (ordered by member id) get consecutive ranges; the first
 * `partitions % members` get one more.
 */
export const rangeAssignor: PartitionAssignor = {
  name: 'range',
  supportedProtocols: ['EAGER'],
  assign(members, partitionCounts) {
    const result = emptyResult(members);
    const topics = [...new Set(members.flatMap((member) => member.topics))].sort();
    for (const topic of topics) {
      const count = partitionCounts.get(topic);
      if (count === undefined) continue; // not in the metadata (yet): nobody gets it
      const subscribed = members.filter((member) => member.topics.includes(topic)).sort(byMemberId);
      const each = Math.floor(count / subscribed.length);
      const extra = count % subscribed.length;
      subscribed.forEach((member, i) => {
        const start = each * i + Math.min(i, extra);
        const length = each + (i < extra ? 1 : 0);
        if (length > 0) result.get(member.memberId)!.set(topic, Array.from({ length }, (_, k) => start + k));
      });
    }
    return collect(result);
  },
};

/** Every partition of every subscribed topic, in (topic, partition) order, dealt round the members (ordered by id) that subscribe to its topic. */
export const roundRobinAssignor: PartitionAssignor = {
  name: 'roundrobin',
  supportedProtocols: ['EAGER'],
  assign(members, partitionCounts) {
    const result = emptyResult(members);
    const ordered = [...members].sort(byMemberId);
    if (ordered.length === 0) return collect(result);
    const topics = [...new Set(members.flatMap((member) => member.topics))].sort();
    let next = 0;
    for (const topic of topics) {
      const count = partitionCounts.get(topic) ?? 0;
      for (let partition = 0; partition < count; partition++) {
        // The next member in the circle that subscribes to this topic.
        for (let tried = 0; tried < ordered.length; tried++) {
          const member = ordered[next % ordered.length]!;
          next++;
          if (!member.topics.includes(topic)) continue;
          const owned = result.get(member.memberId)!;
          owned.set(topic, [...(owned.get(topic) ?? []), partition]);
          break;
        }
      }
    }
    return collect(result);
  },
};

/**
 * A member's userData read with `decode`; unreadable bytes read as `fallback`, as in Kafka: one
 * member's stray bytes must not stop the leader from assigning the whole group.
 */
function decodeUserData<T>(userData: Buffer, decode: (bytes: Buffer) => T, fallback: T): T {
  try {
    return decode(userData);
  } catch (error) {
    if (error instanceof ConsumerProtocolError) return fallback;
    throw error;
  }
}

/** A member's previous assignment as the sticky assignor keeps it, in its userData. */
function stickyMemberData(member: AssignorMember): StickyMember {
  const previous = member.userData ? decodeUserData(member.userData, decodeStickyUserData, { partitions: [], generation: -1 }) : { partitions: [], generation: -1 };
  return { memberId: member.memberId, topics: member.topics, claimed: previous.partitions, generation: previous.generation };
}

/**
 * Kafka's StickyAssignor, for the EAGER protocol: its members have revoked everything by the time
 * they join, so what each owned travels in its userData (its last assignment and generation), not
 * in ownedPartitions. The assignment is as balanced as possible and moves as few partitions as it
 * can (see stickyAssignment.ts).
 */
export const stickyAssignor: PartitionAssignor = {
  name: 'sticky',
  supportedProtocols: ['EAGER'],
  subscriptionUserData(ownedAssignment, generation) {
    return generation < 0 ? null : encodeStickyUserData({ partitions: ownedAssignment, generation });
  },
  assign(members, partitionCounts) {
    return collect(stickyAssign(members.map(stickyMemberData), partitionCounts, { withholdTransfers: false }));
  },
};

/** The generation of a member's ownedPartitions: the subscription's (v2+), else the one in its userData. */
function cooperativeGeneration(member: AssignorMember): number {
  if (member.generationId !== undefined && member.generationId >= 0) return member.generationId;
  return member.userData ? decodeUserData(member.userData, decodeCooperativeStickyUserData, -1) : -1;
}

/**
 * Kafka's CooperativeStickyAssignor (KIP-429): the sticky assignment over what members still own
 * (ownedPartitions), less every partition that would change owner. Such a partition takes two
 * rebalances: in the first, its new owner is not given it while the old owner's claim stands, and
 * the old owner, whose new assignment lacks it, revokes it and rejoins; the rebalance that this
 * starts finds it owned by nobody and gives it out. So no partition is owned by two members at once, and
 * members keep consuming everything that does not move. Under EAGER (some member of the group
 * knows only eager assignors) members own nothing when they join, and it is a balanced assignment
 * from scratch.
 */
export const cooperativeStickyAssignor: PartitionAssignor = {
  name: 'cooperative-sticky',
  supportedProtocols: ['COOPERATIVE', 'EAGER'],
  subscriptionUserData(_ownedAssignment, generation) {
    return encodeCooperativeStickyUserData(generation);
  },
  assign(members, partitionCounts) {
    const owners = members.map((member) => ({ memberId: member.memberId, topics: member.topics, claimed: member.ownedPartitions ?? [], generation: cooperativeGeneration(member) }));
    return collect(stickyAssign(owners, partitionCounts, { withholdTransfers: true }));
  },
};

export const ASSIGNORS: readonly PartitionAssignor[] = [rangeAssignor, roundRobinAssignor, stickyAssignor, cooperativeStickyAssignor];

/**
 * The protocol a consumer configured with `assignors` rebalances with, as Kafka's consumer
 * chooses it: the most advanced one that every one of them supports, since the group may pick any
 * of them. Throws when they share none.
 */
export function commonRebalanceProtocol(assignors: readonly PartitionAssignor[]): RebalanceProtocol {
  const supportedByAll = (protocol: RebalanceProtocol) => assignors.every((assignor) => assignor.supportedProtocols.includes(protocol));
  if (assignors.length === 0) throw new Error('no partition assignor configured');
  if (supportedByAll('COOPERATIVE')) return 'COOPERATIVE';
  if (supportedByAll('EAGER')) return 'EAGER';
  throw new Error(`the assignors ${assignors.map((assignor) => assignor.name).join(', ')} support no rebalance protocol in common`);
}
