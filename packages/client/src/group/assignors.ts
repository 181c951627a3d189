// Partition assignors: run by the group's leader member on every member's subscription, as in
// Kafka (the broker only relays the result). Each is deterministic in its input, so that every
// client computes the same assignment from the same members, whatever its language: the names and
// rules are Kafka's RangeAssignor ("range") and RoundRobinAssignor ("roundrobin").
import type { TopicPartitions } from './consumerProtocol.js';

export interface AssignorMember {
  readonly memberId: string;
  readonly topics: readonly string[];
}

export interface PartitionAssignor {
  readonly name: string;
  /** memberId → its partitions, per topic in topic order, partitions ascending. */
  assign(members: readonly AssignorMember[], partitionCounts: ReadonlyMap<string, number>): Map<string, TopicPartitions[]>;
}

function byMemberId(a: AssignorMember, b: AssignorMember): number {
  return a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0;
}

function collect(result: Map<string, Map<string, number[]>>): Map<string, TopicPartitions[]> {
  const out = new Map<string, TopicPartitions[]>();
  for (const [memberId, topics] of result) {
    out.set(
      memberId,
      [...topics.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([topic, partitions]) => ({ topic, partitions: [...partitions].sort((x, y) => x - y) })),
    );
  }
  return out;
}

function emptyResult(members: readonly AssignorMember[]): Map<string, Map<string, number[]>> {
  return new Map(members.map((member) => [member.memberId, new Map<string, number[]>()]));
}

/**
 * Per topic, the members subscribed to it (ordered by member id) get consecutive ranges; the first
 * `partitions % members` get one more.
 */
export const rangeAssignor: PartitionAssignor = {
  name: 'range',
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

export const ASSIGNORS: readonly PartitionAssignor[] = [rangeAssignor, roundRobinAssignor];
