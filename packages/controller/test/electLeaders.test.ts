// Kafka's ElectLeaders on the controller: preferred and unclean elections per partition, with the
// codes KRaft answers (ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE,
// ELIGIBLE_LEADERS_NOT_AVAILABLE, UNKNOWN_TOPIC_OR_PARTITION), and "every partition" leaving out
// those that need nothing.
import { describe, expect, it } from 'vitest';
import { CONTROLLER_ERRORS } from '../src/index.js';
import { Cluster } from './cluster.js';

const code = (name: keyof typeof CONTROLLER_ERRORS): number => CONTROLLER_ERRORS[name].code;

/** Three brokers, topic t with 3 partitions RF 3; broker 1 was down and is back (in no leadership, back in every ISR). */
function clusterAfterBroker1Returned(): Cluster {
  const cluster = new Cluster(7);
  cluster.start([1, 2, 3]);
  cluster.createTopic('t', 3, 3);
  cluster.advance(9001);
  cluster.heartbeatAll([1]);
  cluster.commit(cluster.logic.fenceExpiredBrokers(cluster.image, cluster.nowMs));
  cluster.register(1);
  cluster.heartbeat(1);
  cluster.expandIsrs();
  return cluster;
}

describe('ControllerLogic.electLeaders', () => {
  it('moves leadership back to the preferred replica, and says when it is not needed or not possible', () => {
    const cluster = clusterAfterBroker1Returned();
    const preferredBy1 = cluster.partitions('t').filter((state) => state.replicas[0] === 1);
    expect(preferredBy1.length).toBeGreaterThan(0);
    expect(preferredBy1.every((state) => state.leader !== 1)).toBe(true);
    const target = preferredBy1[0]!;
    const other = cluster.partitions('t').find((state) => state.replicas[0] !== 1)!;

    const result = cluster.logic.electLeaders(cluster.image, {
      electionType: 'preferred',
      topics: [{ topic: 't', partitions: [target.partition, other.partition, 9] }, { topic: 'missing', partitions: [0] }],
    });
    expect(result.response.topics.map((topic) => topic.partitions.map((entry) => entry.errorCode))).toEqual([
      [0, code('ELECTION_NOT_NEEDED'), code('UNKNOWN_TOPIC_OR_PARTITION')],
      [code('UNKNOWN_TOPIC_OR_PARTITION')],
    ]);
    cluster.commit(result);
    const after = cluster.image.partition('t', target.partition)!;
    expect(after.leader).toBe(1);
    expect(after.leaderEpoch).toBe(target.leaderEpoch + 1);

    // Once led by its preferred replica, nothing to do.
    const again = cluster.logic.electLeaders(cluster.image, { electionType: 'preferred', topics: [{ topic: 't', partitions: [target.partition] }] });
    expect(again.records).toEqual([]);
    expect(again.response.topics[0]!.partitions[0]!.errorCode).toBe(code('ELECTION_NOT_NEEDED'));
  });

  it('refuses a preferred replica that is out of the ISR or not alive, naming which', () => {
    const cluster = new Cluster(7);
    cluster.start([1, 2, 3]);
    cluster.createTopic('t', 3, 3);
    cluster.advance(9001);
    cluster.heartbeatAll([1]);
    cluster.commit(cluster.logic.fenceExpiredBrokers(cluster.image, cluster.nowMs));
    const preferredBy1 = cluster.partitions('t').find((state) => state.replicas[0] === 1)!;
    const dead = cluster.logic.electLeaders(cluster.image, { electionType: 'preferred', topics: [{ topic: 't', partitions: [preferredBy1.partition] }] });
    expect(dead.records).toEqual([]);
    expect(dead.response.topics[0]!.partitions[0]).toMatchObject({ errorCode: code('PREFERRED_LEADER_NOT_AVAILABLE') });
    expect(dead.response.topics[0]!.partitions[0]!.errorMessage).toMatch(/preferred replica 1 .* is not alive/);
    // Back, but not yet caught up: out of the ISR.
    cluster.register(1);
    cluster.heartbeat(1);
    const behind = cluster.logic.electLeaders(cluster.image, { electionType: 'preferred', topics: [{ topic: 't', partitions: [preferredBy1.partition] }] });
    expect(behind.response.topics[0]!.partitions[0]!.errorMessage).toMatch(/is not in the ISR/);
  });

  it('for every partition (topics null) lists only partitions where an election was needed', () => {
    const cluster = clusterAfterBroker1Returned();
    const result = cluster.logic.electLeaders(cluster.image, { electionType: 'preferred', topics: null });
    const listed = result.response.topics.flatMap((topic) => topic.partitions);
    const needed = cluster.partitions('t').filter((state) => state.leader !== state.replicas[0]);
    expect(listed.map((entry) => entry.partition).sort()).toEqual(needed.map((state) => state.partition).sort());
    expect(listed.every((entry) => entry.errorCode === 0)).toBe(true);
    cluster.commit(result);
    expect(cluster.partitions('t').every((state) => state.leader === state.replicas[0])).toBe(true);
    expect(cluster.logic.electLeaders(cluster.image, { electionType: 'preferred', topics: null }).response.topics[0]!.partitions).toEqual([]);
  });

  it('elects a live replica outside the ISR only for a partition without a leader, when asked for an unclean election', () => {
    const cluster = new Cluster(7);
    cluster.start([1, 2]);
    cluster.createTopic('u', 1, 2);
    const state = cluster.image.partition('u', 0)!;
    const [first, second] = state.replicas as [number, number];
    // `second` fails: the ISR shrinks to `first`. Then `first` fails too: offline, ISR [first].
    cluster.advance(9001);
    cluster.heartbeatAll([second]);
    cluster.commit(cluster.logic.fenceExpiredBrokers(cluster.image, cluster.nowMs));
    cluster.advance(9001);
    cluster.heartbeatAll([first, second]);
    cluster.commit(cluster.logic.fenceExpiredBrokers(cluster.image, cluster.nowMs));
    // `second` returns; without unclean election the partition stays offline.
    cluster.register(second);
    cluster.heartbeat(second);
    expect(cluster.image.partition('u', 0)).toMatchObject({ leader: -1, isr: [first] });
    expect(cluster.logic.electLeaders(cluster.image, { electionType: 'preferred', topics: [{ topic: 'u', partitions: [0] }] }).records).toEqual([]);

    const unclean = cluster.logic.electLeaders(cluster.image, { electionType: 'unclean', topics: [{ topic: 'u', partitions: [0] }] });
    expect(unclean.response.topics[0]!.partitions[0]!.errorCode).toBe(0);
    cluster.commit(unclean);
    expect(cluster.image.partition('u', 0)).toMatchObject({ leader: second, isr: [second] });

    // With a leader, an unclean election is not needed.
    const led = cluster.logic.electLeaders(cluster.image, { electionType: 'unclean', topics: [{ topic: 'u', partitions: [0] }] });
    expect(led.response.topics[0]!.partitions[0]!.errorCode).toBe(code('ELECTION_NOT_NEEDED'));
  });

  it('answers ELIGIBLE_LEADERS_NOT_AVAILABLE when no replica of an offline partition is alive', () => {
    const cluster = new Cluster(7);
    cluster.start([1]);
    cluster.createTopic('solo', 1, 1);
    cluster.advance(9001);
    cluster.commit(cluster.logic.fenceExpiredBrokers(cluster.image, cluster.nowMs));
    const result = cluster.logic.electLeaders(cluster.image, { electionType: 'unclean', topics: [{ topic: 'solo', partitions: [0] }] });
    expect(result.records).toEqual([]);
    expect(result.response.topics[0]!.partitions[0]).toMatchObject({ errorCode: code('ELIGIBLE_LEADERS_NOT_AVAILABLE') });
  });
});
