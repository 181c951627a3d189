// The assignment behind Kafka's `sticky` and `cooperative-sticky` assignors (its
// AbstractStickyAssignor): first as balanced as the subscriptions allow, then moving as few
// partitions as possible away from the members that own them. The two assignors differ only in
// where a member's previous ownership comes from and in what happens to partitions that change
// owner (see `withholdTransfers`).
//
// One procedure serves both of Kafka's paths (all members subscribed to the same topics, and
// not): keep every partition whose owner still subscribes to it, give each remaining partition to
// the least loaded member that subscribes to it, then move partitions one at a time from a member
// holding at least two more than another member that could take them, until no such pair is left.
// That end state is Kafka's definition of balanced: with equal subscriptions the counts differ by
// at most one; otherwise no member could take a partition from one holding two or more more than
// it. Every move lowers the sum of the squared counts, so the moves end. Each move goes to the
// least loaded member that can be helped and comes from the most loaded one that can help it: with
// equal subscriptions that moves no more partitions than any balanced assignment must (the larger
// shares stay with the members that owned the most). Of a donor's partitions it moves first one the
// donor did not own before this rebalance, which costs no revocation.
//
// Everything is ordered by member id, topic and partition, so the same input gives the same
// result whatever order the members arrive in.
import type { TopicPartitions } from './consumerProtocol.js';

export interface StickyMember {
  readonly memberId: string;
  readonly topics: readonly string[];
  /** The partitions the member says it owned when it joined. */
  readonly claimed: readonly TopicPartitions[];
  /** The generation that ownership is from; -1 when unknown (older than any known one). */
  readonly generation: number;
}

export interface StickyOptions {
  /**
   * Cooperative rebalancing (KIP-429): leave out of this round every partition that another
   * member still owns, so that it is never owned twice at once.
   */
  readonly withholdTransfers: boolean;
}

/** memberId → topic → partitions (in no particular order). */
export type MemberPartitions = Map<string, Map<string, number[]>>;

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Per topic, per partition: the members whose claim is of the newest generation claimed for it. */
type Claimants = Map<string, Map<number, string[]>>;

/**
 * A partition claimed by several members goes to the claim of the newest generation; when more
 * than one member claims it in that generation, none of them keeps it (as Kafka does: one of them
 * must be wrong, and neither can be trusted with it). Claims on topics or partitions that no longer
 * exist are dropped.
 */
function newestClaimants(members: readonly StickyMember[], partitionCounts: ReadonlyMap<string, number>): Claimants {
  const newest = new Map<string, Map<number, { generation: number; members: string[] }>>();
  for (const member of members) {
    for (const { topic, partitions } of member.claimed) {
      const count = partitionCounts.get(topic);
      if (count === undefined) continue;
      let byPartition = newest.get(topic);
      if (byPartition === undefined) newest.set(topic, (byPartition = new Map()));
      for (const partition of new Set(partitions)) {
        if (!Number.isInteger(partition) || partition < 0 || partition >= count) continue;
        const current = byPartition.get(partition);
        if (current === undefined || member.generation > current.generation) byPartition.set(partition, { generation: member.generation, members: [member.memberId] });
        else if (member.generation === current.generation) current.members.push(member.memberId);
      }
    }
  }
  const claimants: Claimants = new Map();
  for (const [topic, byPartition] of newest) claimants.set(topic, new Map([...byPartition].map(([partition, claim]) => [partition, claim.members])));
  return claimants;
}

interface Move {
  readonly from: string;
  readonly to: string;
  readonly topic: string;
  readonly partition: number;
}

class StickyBalancer {
  /** Topic → the members that subscribe to it, by member id; only topics that exist. */
  private readonly subscribers = new Map<string, string[]>();
  /** Member → the existing topics it subscribes to, sorted. */
  private readonly topicsOf = new Map<string, string[]>();
  private readonly counts = new Map<string, number>();
  /** Member → topic → what it holds now. */
  private readonly holdings = new Map<string, Map<string, Set<number>>>();
  /** Topic → the partitions someone holds now. */
  private readonly held = new Map<string, Set<number>>();
  /** Topic → partition → the member that owned it and keeps it unless balance needs it elsewhere. */
  private readonly previousOwner = new Map<string, Map<number, string>>();

  private readonly memberIds: readonly string[];

  /** `members` ordered by member id. */
  constructor(
    members: readonly StickyMember[],
    private readonly partitionCounts: ReadonlyMap<string, number>,
  ) {
    this.memberIds = members.map((member) => member.memberId);
    for (const member of members) {
      const topics = [...new Set(member.topics)].filter((topic) => partitionCounts.has(topic)).sort(compareStrings);
      this.topicsOf.set(member.memberId, topics);
      this.counts.set(member.memberId, 0);
      this.holdings.set(member.memberId, new Map(topics.map((topic) => [topic, new Set<number>()])));
      for (const topic of topics) {
        let subscribed = this.subscribers.get(topic);
        if (subscribed === undefined) {
          this.subscribers.set(topic, (subscribed = []));
          this.held.set(topic, new Set());
        }
        subscribed.push(member.memberId);
      }
    }
  }

  /** Keeps each claimed partition with its one newest claimant, if that member still subscribes to its topic. */
  keepOwned(claimants: Claimants): void {
    for (const [topic, byPartition] of claimants) {
      const owners = new Map<number, string>();
      this.previousOwner.set(topic, owners);
      for (const [partition, members] of byPartition) {
        const owner = members.length === 1 ? members[0]! : undefined;
        if (owner === undefined || !this.holdings.get(owner)!.has(topic)) continue;
        owners.set(partition, owner);
        this.give(owner, topic, partition);
      }
    }
  }

  /**
   * The partitions nobody kept, topics with the fewest subscribers first (they have the fewest
   * places to go), each to the least loaded member that subscribes to it.
   */
  assignUnowned(): void {
    const topics = [...this.subscribers.keys()].sort((a, b) => this.subscribers.get(a)!.length - this.subscribers.get(b)!.length || compareStrings(a, b));
    for (const topic of topics) {
      const subscribed = this.subscribers.get(topic)!;
      const count = this.partitionCounts.get(topic)!;
      for (let partition = 0; partition < count; partition++) {
        if (this.held.get(topic)!.has(partition)) continue;
        let leastLoaded = subscribed[0]!;
        for (const member of subscribed) if (this.lighter(member, leastLoaded)) leastLoaded = member;
        this.give(leastLoaded, topic, partition);
      }
    }
  }

  /** Moves partitions towards the least loaded members until no move would make the counts more even. */
  balance(): void {
    for (let move = this.nextMove(); move !== undefined; move = this.nextMove()) {
      this.take(move.from, move.topic, move.partition);
      this.give(move.to, move.topic, move.partition);
    }
  }

  /** Orders members by load, then by id. */
  private lighter(a: string, b: string): boolean {
    const byLoad = this.counts.get(a)! - this.counts.get(b)!;
    return byLoad < 0 || (byLoad === 0 && a < b);
  }

  /**
   * Per topic, its least loaded subscriber and its most loaded holder; a topic is uneven when the
   * second holds two or more more than the first. The receiver is the least loaded of the uneven
   * topics' least loaded subscribers (any member that could be helped is one of them), and the
   * donor the most loaded holder among its uneven topics.
   */
  private nextMove(): Move | undefined {
    const uneven: { topic: string; receiver: string; donor: string }[] = [];
    for (const [topic, subscribed] of this.subscribers) {
      let receiver = subscribed[0]!;
      let donor: string | undefined;
      for (const member of subscribed) {
        if (this.lighter(member, receiver)) receiver = member;
        if (this.holdings.get(member)!.get(topic)!.size > 0 && (donor === undefined || this.counts.get(member)! > this.counts.get(donor)!)) donor = member;
      }
      if (donor !== undefined && this.counts.get(donor)! >= this.counts.get(receiver)! + 2) uneven.push({ topic, receiver, donor });
    }
    if (uneven.length === 0) return undefined;
    let chosen = uneven[0]!;
    for (const candidate of uneven) {
      if (this.lighter(candidate.receiver, chosen.receiver)) chosen = candidate;
      else if (candidate.receiver === chosen.receiver && this.betterDonor(candidate, chosen)) chosen = candidate;
    }
    return { from: chosen.donor, to: chosen.receiver, topic: chosen.topic, partition: this.cheapestOf(chosen.donor, chosen.topic) };
  }

  /** The more loaded donor; on a tie the lower member id, then the lower topic. */
  private betterDonor(a: { topic: string; donor: string }, b: { topic: string; donor: string }): boolean {
    const byLoad = this.counts.get(a.donor)! - this.counts.get(b.donor)!;
    if (byLoad !== 0) return byLoad > 0;
    return a.donor !== b.donor ? a.donor < b.donor : a.topic < b.topic;
  }

  /** The lowest partition of `topic` that `from` holds, preferring one it did not own before (moving it revokes nothing). */
  private cheapestOf(from: string, topic: string): number {
    const owners = this.previousOwner.get(topic);
    let cheapest: { partition: number; fresh: boolean } | undefined;
    for (const partition of this.holdings.get(from)!.get(topic)!) {
      const fresh = owners?.get(partition) !== from;
      if (cheapest === undefined || (fresh && !cheapest.fresh) || (fresh === cheapest.fresh && partition < cheapest.partition)) cheapest = { partition, fresh };
    }
    return cheapest!.partition;
  }

  private give(member: string, topic: string, partition: number): void {
    this.holdings.get(member)!.get(topic)!.add(partition);
    this.held.get(topic)!.add(partition);
    this.counts.set(member, this.counts.get(member)! + 1);
  }

  private take(member: string, topic: string, partition: number): void {
    this.holdings.get(member)!.get(topic)!.delete(partition);
    this.held.get(topic)!.delete(partition);
    this.counts.set(member, this.counts.get(member)! - 1);
  }

  result(): MemberPartitions {
    const result: MemberPartitions = new Map();
    for (const member of this.memberIds) {
      const topics = new Map<string, number[]>();
      for (const [topic, partitions] of this.holdings.get(member)!) if (partitions.size > 0) topics.set(topic, [...partitions]);
      result.set(member, topics);
    }
    return result;
  }
}

/**
 * KIP-429: a partition that changes owner is first revoked by the member that owns it and only
 * handed over in the next rebalance. So the new owner does not get it in this round while any
 * other member's claim on it stands (a contested partition is withheld from everyone); the old
 * owner, whose assignment no longer has it, revokes it and rejoins, and the rebalance that follows
 * finds it unowned and gives it out.
 */
function withholdClaimedByOthers(assignment: MemberPartitions, claimants: Claimants): void {
  for (const [member, topics] of assignment) {
    for (const [topic, partitions] of topics) {
      const claims = claimants.get(topic);
      if (claims === undefined) continue;
      const free = partitions.filter((partition) => (claims.get(partition) ?? []).every((claimant) => claimant === member));
      if (free.length === 0) topics.delete(topic);
      else topics.set(topic, free);
    }
  }
}

export function stickyAssign(members: readonly StickyMember[], partitionCounts: ReadonlyMap<string, number>, options: StickyOptions): MemberPartitions {
  const ordered = [...members].sort((a, b) => compareStrings(a.memberId, b.memberId));
  const claimants = newestClaimants(ordered, partitionCounts);
  const balancer = new StickyBalancer(ordered, partitionCounts);
  balancer.keepOwned(claimants);
  balancer.assignUnowned();
  balancer.balance();
  const assignment = balancer.result();
  if (options.withholdTransfers) withholdClaimedByOthers(assignment, claimants);
  return assignment;
}
