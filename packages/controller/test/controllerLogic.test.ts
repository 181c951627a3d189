import { describe, expect, it } from 'vitest';
import { MetadataImage, type AlterPartitionItem, type MetadataRecord } from '../src/index.js';
import { Cluster } from './cluster.js';

const types = (records: readonly MetadataRecord[]): string[] => records.map((record) => record.type);

describe('broker registration, heartbeats and fencing', () => {
  it('a registered broker is fenced until its reported metadata offset reaches its registration', () => {
    const cluster = new Cluster();
    const epoch = cluster.register(1);
    expect(cluster.image.broker(1)).toMatchObject({ fenced: true, epoch, incarnationId: 'incarnation-1' });
    let response = cluster.heartbeat(1, { offset: epoch - 1 });
    expect(response).toMatchObject({ errorCode: 0, isCaughtUp: false, isFenced: true });
    response = cluster.heartbeat(1, { offset: epoch, wantFence: true });
    expect(response).toMatchObject({ isCaughtUp: true, isFenced: true });
    const result = cluster.logic.brokerHeartbeat(cluster.image, { brokerId: 1, brokerEpoch: epoch, currentMetadataOffset: epoch }, cluster.nowMs);
    expect(types(result.records)).toEqual(['UnfenceBroker']);
    expect(cluster.commit(result)).toMatchObject({ isCaughtUp: true, isFenced: false, shouldShutDown: false });
    expect(cluster.image.broker(1)!.fenced).toBe(false);
  });

  it('rejects heartbeats from an unknown broker or an old epoch (STALE_BROKER_EPOCH)', () => {
    const cluster = new Cluster();
    const epoch = cluster.register(1);
    expect(cluster.logic.brokerHeartbeat(cluster.image, { brokerId: 2, brokerEpoch: 0, currentMetadataOffset: 0 }, 0).response.errorCode).toBe(77);
    expect(cluster.logic.brokerHeartbeat(cluster.image, { brokerId: 1, brokerEpoch: epoch + 1, currentMetadataOffset: 5 }, 0).response.errorCode).toBe(77);
  });

  it('fences a broker after broker.session.timeout.ms without a heartbeat, not before', () => {
    const cluster = new Cluster();
    cluster.start([1, 2, 3]);
    cluster.advance(2000);
    cluster.heartbeatAll();
    cluster.advance(9000);
    cluster.heartbeatAll([1]);
    // Exactly 9000 ms after the last heartbeat of broker 1 nothing is fenced.
    expect(cluster.commit(cluster.logic.fenceExpiredBrokers(cluster.image, cluster.nowMs)).fenced).toEqual([]);
    cluster.advance(1);
    expect(cluster.commit(cluster.logic.fenceExpiredBrokers(cluster.image, cluster.nowMs)).fenced).toEqual([1]);
    expect(cluster.image.broker(1)!.fenced).toBe(true);
    expect(cluster.image.broker(2)!.fenced).toBe(false);
  });

  it('a new controller starts every session fresh instead of fencing everyone at once', () => {
    const cluster = new Cluster();
    cluster.start([1, 2]);
    const fresh = new Cluster();
    fresh.image = cluster.image;
    fresh.nowMs = 1_000_000;
    expect(fresh.logic.fenceExpiredBrokers(fresh.image, fresh.nowMs).response.fenced).toEqual([]);
    fresh.advance(9001);
    expect(fresh.logic.fenceExpiredBrokers(fresh.image, fresh.nowMs).response.fenced).toEqual([1, 2]);
  });

  it('fencing the leader moves leadership to another ISR member with epoch + 1 and removes it from every ISR', () => {
    const cluster = new Cluster(5);
    cluster.start([1, 2, 3]);
    cluster.createTopic('t', 12, 3);
    const before = cluster.partitions('t');
    const ledByOne = before.filter((state) => state.leader === 1);
    expect(ledByOne.length).toBe(4);
    cluster.advance(9001);
    cluster.heartbeatAll([1]);
    const result = cluster.logic.fenceExpiredBrokers(cluster.image, cluster.nowMs);
    expect(types(result.records).at(-1)).toBe('FenceBroker');
    cluster.commit(result);
    for (const state of cluster.partitions('t')) {
      const previous = before[state.partition]!;
      expect(state.isr).not.toContain(1);
      expect(state.isr).toEqual(previous.isr.filter((id) => id !== 1));
      expect(state.partitionEpoch).toBe(previous.partitionEpoch + 1);
      if (previous.leader === 1) {
        expect(state.leader).not.toBe(1);
        expect(previous.isr).toContain(state.leader);
        expect(state.leaderEpoch).toBe(previous.leaderEpoch + 1);
      } else {
        expect(state.leader).toBe(previous.leader);
        expect(state.leaderEpoch).toBe(previous.leaderEpoch);
      }
    }
    expect(cluster.image.partitionsLedBy(1)).toEqual([]);
  });

  it('fencing several brokers at once never elects one of them', () => {
    const cluster = new Cluster(2);
    cluster.start([1, 2, 3, 4]);
    cluster.createTopic('t', 8, 3);
    cluster.advance(9001);
    cluster.heartbeatAll([1, 2]);
    const result = cluster.logic.fenceExpiredBrokers(cluster.image, cluster.nowMs);
    cluster.commit(result);
    // No record of the batch elects a broker that the same batch fences.
    const changes = result.records.filter((record) => record.type === 'PartitionChange');
    expect(changes.length).toBeGreaterThan(0);
    for (const record of changes) expect([1, 2]).not.toContain(record.leader);
    for (const state of cluster.partitions('t')) expect([1, 2]).not.toContain(state.leader);
  });

  it('a restarted broker (new incarnation) is refused while its old session lives, then fenced until caught up', () => {
    const cluster = new Cluster(3);
    cluster.start([1, 2, 3]);
    cluster.createTopic('t', 6, 3);
    const oldEpoch = cluster.image.broker(2)!.epoch;
    const request = { brokerId: 2, incarnationId: 'restarted', listeners: [{ name: 'PLAINTEXT', host: 'localhost', port: 9093 }], rack: null };
    const refused = cluster.logic.registerBroker(cluster.image, request, cluster.nowMs);
    expect(refused.response.errorCode).toBe(101);
    expect(refused.records).toEqual([]);
    // A retry from the same incarnation is accepted and writes nothing.
    const retry = cluster.logic.registerBroker(cluster.image, { ...request, incarnationId: 'incarnation-2' }, cluster.nowMs);
    expect(retry).toEqual({ records: [], response: { errorCode: 0, errorMessage: '' } });

    cluster.advance(9001);
    cluster.heartbeatAll([2]);
    // The old session expired but the broker was not fenced yet: the new registration takes over.
    const accepted = cluster.logic.registerBroker(cluster.image, request, cluster.nowMs);
    expect(accepted.response.errorCode).toBe(0);
    expect(types(accepted.records).at(-1)).toBe('RegisterBroker');
    cluster.commit(accepted);
    const registration = cluster.image.broker(2)!;
    expect(registration).toMatchObject({ incarnationId: 'restarted', fenced: true });
    expect(registration.epoch).toBeGreaterThan(oldEpoch);
    for (const state of cluster.partitions('t')) {
      expect(state.leader).not.toBe(2);
      expect(state.isr).not.toContain(2);
    }
    expect(cluster.heartbeat(2, { offset: registration.epoch - 1 })).toMatchObject({ isFenced: true, isCaughtUp: false });
    expect(cluster.heartbeat(2, { offset: registration.epoch })).toMatchObject({ isFenced: false, isCaughtUp: true });
  });

  it('rejects malformed registrations', () => {
    const cluster = new Cluster();
    const bad = cluster.logic.registerBroker(cluster.image, { brokerId: -1, incarnationId: 'x', listeners: [] }, 0);
    expect(bad.response.errorCode).toBe(42);
    const noIncarnation = cluster.logic.registerBroker(cluster.image, { brokerId: 1, incarnationId: '', listeners: [] }, 0);
    expect(noIncarnation.response.errorCode).toBe(42);
  });
});

describe('offline partitions and unclean election', () => {
  function singleIsr(configs?: Record<string, string>): Cluster {
    const cluster = new Cluster(11);
    cluster.start([1, 2, 3]);
    cluster.createTopic('t', 1, 3, configs);
    const state = cluster.partitions('t')[0]!;
    const leader = cluster.image.broker(state.leader)!;
    // The leader shrinks the ISR to itself (its followers fell behind).
    const response = cluster.commit(
      cluster.logic.alterPartition(cluster.image, {
        brokerId: leader.id,
        brokerEpoch: leader.epoch,
        partitions: [{ topic: 't', partition: 0, leaderEpoch: state.leaderEpoch, partitionEpoch: state.partitionEpoch, newIsr: [leader.id] }],
      }),
    );
    expect(response.partitions[0]).toMatchObject({ errorCode: 0, isr: [leader.id], leaderEpoch: state.leaderEpoch, partitionEpoch: state.partitionEpoch + 1 });
    return cluster;
  }

  function fenceLeader(cluster: Cluster): number {
    const leader = cluster.partitions('t')[0]!.leader;
    cluster.advance(9001);
    cluster.heartbeatAll([leader]);
    cluster.commit(cluster.logic.fenceExpiredBrokers(cluster.image, cluster.nowMs));
    return leader;
  }

  it('goes offline (leader -1) when no ISR member is alive, keeping the last ISR member', () => {
    const cluster = singleIsr();
    const before = cluster.partitions('t')[0]!;
    const leader = fenceLeader(cluster);
    expect(cluster.partitions('t')[0]).toMatchObject({ leader: -1, isr: [leader], leaderEpoch: before.leaderEpoch + 1 });
    // The last ISR member comes back (same incarnation) and leads again.
    cluster.heartbeat(leader);
    expect(cluster.image.broker(leader)!.fenced).toBe(false);
    expect(cluster.partitions('t')[0]).toMatchObject({ leader, isr: [leader], leaderEpoch: before.leaderEpoch + 2 });
  });

  it('elects a live replica outside the ISR when the topic sets unclean.leader.election.enable=true', () => {
    const cluster = singleIsr({ 'unclean.leader.election.enable': 'true' });
    const before = cluster.partitions('t')[0]!;
    const leader = fenceLeader(cluster);
    const after = cluster.partitions('t')[0]!;
    expect(after.leader).not.toBe(-1);
    expect(after.leader).not.toBe(leader);
    expect(after.isr).toEqual([after.leader]);
    expect(after.leaderEpoch).toBe(before.leaderEpoch + 1);
  });

  it('a cluster-wide unclean.leader.election.enable applies to topics that do not set it, and a topic can override it', () => {
    const cluster = singleIsr();
    cluster.image = cluster.image.applyAll(
      [{ type: 'Config', resourceType: 'cluster', resourceName: '', name: 'unclean.leader.election.enable', value: 'true' }],
      cluster.image.highestOffset + 1,
    );
    expect(cluster.logic.uncleanElectionAllowed(cluster.image, 't')).toBe(true);
    fenceLeader(cluster);
    expect(cluster.partitions('t')[0]!.leader).not.toBe(-1);
    const other = singleIsr({ 'unclean.leader.election.enable': 'false' });
    other.image = other.image.applyAll(
      [{ type: 'Config', resourceType: 'cluster', resourceName: '', name: 'unclean.leader.election.enable', value: 'true' }],
      other.image.highestOffset + 1,
    );
    fenceLeader(other);
    expect(other.partitions('t')[0]!.leader).toBe(-1);
  });

  it('an unfenced broker is elected for offline partitions it can lead uncleanly', () => {
    const cluster = new Cluster(4);
    cluster.start([1, 2]);
    cluster.createTopic('u', 1, 2, { 'unclean.leader.election.enable': 'true' });
    // Both replicas go down; the partition is offline with the last ISR member remembered.
    cluster.advance(9001);
    cluster.commit(cluster.logic.fenceExpiredBrokers(cluster.image, cluster.nowMs));
    const offline = cluster.partitions('u')[0]!;
    expect(offline.leader).toBe(-1);
    const lastIsr = offline.isr[0]!;
    const other = lastIsr === 1 ? 2 : 1;
    cluster.heartbeat(other);
    expect(cluster.partitions('u')[0]).toMatchObject({ leader: other, isr: [other] });
  });
});

describe('alterPartition', () => {
  function setup() {
    const cluster = new Cluster(9);
    cluster.start([1, 2, 3]);
    cluster.createTopic('t', 1, 3);
    const state = cluster.partitions('t')[0]!;
    const leader = cluster.image.broker(state.leader)!;
    const followers = state.replicas.filter((id) => id !== leader.id);
    return { cluster, state, leader, followers };
  }

  it('shrinks and expands the ISR, bumping only the partition epoch', () => {
    const { cluster, state, leader, followers } = setup();
    const shrink = cluster.commit(
      cluster.logic.alterPartition(cluster.image, {
        brokerId: leader.id,
        brokerEpoch: leader.epoch,
        partitions: [{ topic: 't', partition: 0, leaderEpoch: state.leaderEpoch, partitionEpoch: state.partitionEpoch, newIsr: [leader.id, followers[0]!] }],
      }),
    );
    expect(shrink).toMatchObject({ errorCode: 0, partitions: [{ errorCode: 0, leader: leader.id, isr: [leader.id, followers[0]], leaderEpoch: 0, partitionEpoch: 1 }] });
    const expand = cluster.commit(
      cluster.logic.alterPartition(cluster.image, {
        brokerId: leader.id,
        brokerEpoch: leader.epoch,
        partitions: [
          { topic: 't', partition: 0, leaderEpoch: 0, partitionEpoch: 1, newIsr: [{ brokerId: leader.id, brokerEpoch: leader.epoch }, followers[0]!, { brokerId: followers[1]!, brokerEpoch: -1 }] },
        ],
      }),
    );
    expect(expand.partitions[0]).toMatchObject({ errorCode: 0, isr: [leader.id, followers[0], followers[1]], partitionEpoch: 2 });
  });

  it('rejects stale and invalid requests with Kafka error codes, writing nothing', () => {
    const { cluster, state, leader, followers } = setup();
    // Move the partition on: leader epoch 0 -> 0, partition epoch 0 -> 1.
    cluster.commit(
      cluster.logic.alterPartition(cluster.image, {
        brokerId: leader.id,
        brokerEpoch: leader.epoch,
        partitions: [{ topic: 't', partition: 0, leaderEpoch: 0, partitionEpoch: 0, newIsr: [leader.id, followers[0]!] }],
      }),
    );
    const item: AlterPartitionItem = { topic: 't', partition: 0, leaderEpoch: 0, partitionEpoch: 1, newIsr: [leader.id] };
    const attempt = (overrides: Partial<AlterPartitionItem> & { brokerId?: number; brokerEpoch?: number }) => {
      const { brokerId = leader.id, brokerEpoch = leader.epoch, ...rest } = overrides;
      const result = cluster.logic.alterPartition(cluster.image, { brokerId, brokerEpoch, partitions: [{ ...item, ...rest }] });
      return { records: result.records.length, code: result.response.errorCode || result.response.partitions[0]!.errorCode };
    };
    expect(attempt({ partitionEpoch: 0 })).toEqual({ records: 0, code: 95 }); // INVALID_UPDATE_VERSION
    expect(attempt({ partitionEpoch: 2 })).toEqual({ records: 0, code: 41 }); // NOT_CONTROLLER: newer than ours
    expect(attempt({ leaderEpoch: 1 })).toEqual({ records: 0, code: 41 });
    expect(attempt({ brokerId: followers[0]!, brokerEpoch: cluster.image.broker(followers[0]!)!.epoch })).toEqual({ records: 0, code: 42 }); // not the leader
    expect(attempt({ brokerEpoch: leader.epoch + 100 })).toEqual({ records: 0, code: 77 }); // STALE_BROKER_EPOCH
    expect(attempt({ topic: 'nope' })).toEqual({ records: 0, code: 3 });
    expect(attempt({ partition: 5 })).toEqual({ records: 0, code: 3 });
    expect(attempt({ topicId: 'some-other-id' })).toEqual({ records: 0, code: 100 }); // UNKNOWN_TOPIC_ID: re-created topic
    expect(attempt({ topicId: cluster.image.topic('t')!.id, newIsr: [leader.id, followers[0]!] })).toEqual({ records: 0, code: 0 }); // no change, no record
    expect(attempt({ newIsr: [followers[0]!] })).toEqual({ records: 0, code: 42 }); // leader missing
    expect(attempt({ newIsr: [leader.id, 99] })).toEqual({ records: 0, code: 42 }); // not a replica
    expect(attempt({ newIsr: [leader.id, leader.id] })).toEqual({ records: 0, code: 42 });
    expect(attempt({ newIsr: [leader.id, { brokerId: followers[1]!, brokerEpoch: 12345 }] })).toEqual({ records: 0, code: 107 }); // other incarnation
    expect(state.leaderEpoch).toBe(0);

    // A fenced replica is INELIGIBLE_REPLICA; after a leader change the old leader's epoch is fenced.
    cluster.advance(9001);
    cluster.heartbeatAll([followers[1]!]);
    cluster.commit(cluster.logic.fenceExpiredBrokers(cluster.image, cluster.nowMs));
    expect(attempt({ newIsr: [leader.id, followers[1]!] })).toEqual({ records: 0, code: 107 });
    cluster.advance(9001);
    cluster.heartbeatAll([leader.id, followers[1]!]);
    cluster.commit(cluster.logic.fenceExpiredBrokers(cluster.image, cluster.nowMs));
    const now = cluster.partitions('t')[0]!;
    expect(now.leader).toBe(followers[0]);
    expect(now.leaderEpoch).toBe(1);
    cluster.heartbeat(leader.id);
    expect(attempt({ brokerEpoch: cluster.image.broker(leader.id)!.epoch, partitionEpoch: now.partitionEpoch })).toEqual({ records: 0, code: 74 }); // FENCED_LEADER_EPOCH
  });
});

describe('controlled shutdown', () => {
  it('moves leadership off the broker and removes it from ISRs it is not the last member of, then lets it stop', () => {
    const cluster = new Cluster(21);
    cluster.start([1, 2, 3]);
    cluster.createTopic('t', 6, 3);
    cluster.createTopic('solo', 3, 1);
    const before = cluster.image;
    const epoch = cluster.image.broker(1)!.epoch;
    const result = cluster.logic.controlledShutdown(cluster.image, { brokerId: 1, brokerEpoch: epoch, currentMetadataOffset: cluster.image.highestOffset }, cluster.nowMs);
    expect(result.response).toMatchObject({ isFenced: false, inControlledShutdown: true, shouldShutDown: false });
    cluster.commit(result);
    for (const state of cluster.partitions('t')) {
      const previous = before.partition('t', state.partition)!;
      expect(state.leader).not.toBe(1);
      expect(state.isr).not.toContain(1);
      expect(state.leaderEpoch).toBe(previous.leaderEpoch + (previous.leader === 1 ? 1 : 0));
    }
    for (const state of cluster.partitions('solo')) {
      if (state.replicas[0] === 1) expect(state).toMatchObject({ leader: -1, isr: [1], leaderEpoch: 1 });
    }
    // The other brokers have not applied the moves yet: the broker must wait.
    const waiting = cluster.commit(cluster.logic.controlledShutdown(cluster.image, { brokerId: 1, brokerEpoch: epoch, currentMetadataOffset: cluster.image.highestOffset }, cluster.nowMs));
    expect(waiting).toMatchObject({ shouldShutDown: false, inControlledShutdown: true });
    // New topics avoid it, and it cannot rejoin an ISR.
    cluster.createTopic('later', 4, 2);
    for (const state of cluster.partitions('later')) expect(state.replicas).not.toContain(1);
    cluster.heartbeat(2);
    cluster.heartbeat(3);
    const done = cluster.logic.controlledShutdown(cluster.image, { brokerId: 1, brokerEpoch: epoch, currentMetadataOffset: cluster.image.highestOffset }, cluster.nowMs);
    expect(done.response).toMatchObject({ shouldShutDown: true, isFenced: true, inControlledShutdown: false });
    expect(types(done.records)).toEqual(['FenceBroker']);
    cluster.commit(done);
    expect(cluster.image.broker(1)!.fenced).toBe(true);
  });

  it('a fenced broker asking to shut down may do so at once', () => {
    const cluster = new Cluster();
    cluster.register(1);
    expect(cluster.heartbeat(1, { offset: -1, wantShutDown: true })).toMatchObject({ shouldShutDown: true, isFenced: true });
  });
});

describe('createTopics and deleteTopics', () => {
  it('12 partitions with RF 3 on 3 brokers: 4 leaders each, 12 replicas each, ISR = replicas', () => {
    const cluster = new Cluster(8);
    cluster.start([1, 2, 3]);
    const result = cluster.createTopic('orders', 12, 3);
    expect(result).toMatchObject({ errorCode: 0, name: 'orders', numPartitions: 12, replicationFactor: 3 });
    expect(result.topicId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect([...cluster.leaderCounts().values()]).toEqual([4, 4, 4]);
    const replicas = new Map<number, number>();
    for (const state of cluster.partitions('orders')) {
      expect(state).toMatchObject({ leader: state.replicas[0], isr: state.replicas, leaderEpoch: 0, partitionEpoch: 0 });
      for (const id of state.replicas) replicas.set(id, (replicas.get(id) ?? 0) + 1);
    }
    expect([...replicas.values()]).toEqual([12, 12, 12]);
  });

  it('writes Topic, then Config, then Partition records', () => {
    const cluster = new Cluster();
    cluster.start([1]);
    const result = cluster.logic.createTopics(cluster.image, { topics: [{ name: 'c', numPartitions: 2, replicationFactor: 1, configs: { 'retention.ms': '5', 'cleanup.policy': 'delete' } }] });
    expect(types(result.records)).toEqual(['Topic', 'Config', 'Config', 'Partition', 'Partition']);
    cluster.commit(result);
    expect(Object.fromEntries(cluster.image.topicConfigs('c'))).toEqual({ 'cleanup.policy': 'delete', 'retention.ms': '5' });
  });

  it('answers with Kafka error codes for invalid topics', () => {
    const cluster = new Cluster(1, { defaultNumPartitions: 3, defaultReplicationFactor: 2 });
    cluster.start([1, 2, 3]);
    cluster.createTopic('exists', 1, 1);
    cluster.createTopic('with.dot', 1, 1);
    const response = cluster.commit(
      cluster.logic.createTopics(cluster.image, {
        topics: [
          { name: 'exists', numPartitions: 1, replicationFactor: 1 },
          { name: 'zero', numPartitions: 0, replicationFactor: 1 },
          { name: 'negative', numPartitions: -2, replicationFactor: 1 },
          { name: 'rf-too-big', numPartitions: 1, replicationFactor: 4 },
          { name: 'rf-zero', numPartitions: 1, replicationFactor: 0 },
          { name: 'bad/name', numPartitions: 1, replicationFactor: 1 },
          { name: '..', numPartitions: 1, replicationFactor: 1 },
          { name: 'x'.repeat(250), numPartitions: 1, replicationFactor: 1 },
          { name: 'with_dot', numPartitions: 1, replicationFactor: 1 },
          { name: 'bad-config', numPartitions: 1, replicationFactor: 1, configs: { 'retention.ms': 'soon' } },
          { name: 'unknown-config', numPartitions: 1, replicationFactor: 1, configs: { 'retention.hours': '1' } },
          { name: 'twice', numPartitions: 1, replicationFactor: 1 },
          { name: 'twice', numPartitions: 1, replicationFactor: 1 },
          { name: 'defaults' },
        ],
      }),
    );
    expect(response.topics.map((topic) => [topic.name.slice(0, 12), topic.errorCode])).toEqual([
      ['exists', 36],
      ['zero', 37],
      ['negative', 37],
      ['rf-too-big', 38],
      ['rf-zero', 38],
      ['bad/name', 17],
      ['..', 17],
      ['xxxxxxxxxxxx', 17],
      ['with_dot', 17],
      ['bad-config', 40],
      ['unknown-conf', 40],
      ['twice', 42],
      ['twice', 42],
      ['defaults', 0],
    ]);
    expect(response.topics[3]!.errorMessage).toMatch(/^unable to replicate .*3 available broker/);
    expect(cluster.image.topic('defaults')!.partitionCount).toBe(3);
    expect(cluster.partitions('defaults')[0]!.replicas).toHaveLength(2);
  });

  it('counts only live brokers: RF greater than the unfenced brokers is INVALID_REPLICATION_FACTOR (38)', () => {
    const cluster = new Cluster();
    cluster.start([1, 2, 3]);
    cluster.advance(9001);
    cluster.heartbeatAll([3]);
    cluster.commit(cluster.logic.fenceExpiredBrokers(cluster.image, cluster.nowMs));
    const result = cluster.logic.createTopics(cluster.image, { topics: [{ name: 't', numPartitions: 3, replicationFactor: 3 }] });
    expect(result.response.topics[0]!.errorCode).toBe(38);
    expect(result.records).toEqual([]);
    const ok = cluster.commit(cluster.logic.createTopics(cluster.image, { topics: [{ name: 't', numPartitions: 3, replicationFactor: 2 }] }));
    expect(ok.topics[0]!.errorCode).toBe(0);
    for (const state of cluster.partitions('t')) expect(state.replicas).not.toContain(3);
  });

  it('never reuses a topic id, even when a new controller repeats the random sequence', () => {
    const cluster = new Cluster(42);
    cluster.start([1]);
    const first = cluster.createTopic('t', 1, 1).topicId!;
    cluster.commit(cluster.logic.deleteTopics(cluster.image, { topics: ['t'] }));
    // A new controller whose random source starts where the first one did.
    const next = new Cluster(42);
    next.image = cluster.image;
    const second = next.createTopic('t', 1, 1).topicId!;
    expect(second).not.toBe(first);
    expect(Buffer.from(second, 'base64url')).toHaveLength(16);
  });

  it('validateOnly writes nothing', () => {
    const cluster = new Cluster();
    cluster.start([1]);
    const result = cluster.logic.createTopics(cluster.image, { topics: [{ name: 'v', numPartitions: 1, replicationFactor: 1 }], validateOnly: true });
    expect(result.records).toEqual([]);
    expect(result.response.topics[0]).toMatchObject({ errorCode: 0, topicId: null });
  });

  it('deletes topics; unknown is UNKNOWN_TOPIC_OR_PARTITION, disabled deletion is TOPIC_DELETION_DISABLED', () => {
    const cluster = new Cluster();
    cluster.start([1]);
    const id = cluster.createTopic('gone', 2, 1).topicId;
    const result = cluster.logic.deleteTopics(cluster.image, { topics: ['gone', 'never'] });
    expect(result.records).toEqual([{ type: 'RemoveTopic', topicId: id }]);
    expect(result.response.topics.map((topic) => topic.errorCode)).toEqual([0, 3]);
    cluster.commit(result);
    expect(cluster.image.topic('gone')).toBeUndefined();
    const disabled = new Cluster(1, { deleteTopicEnable: false });
    disabled.start([1]);
    disabled.createTopic('kept', 1, 1);
    expect(disabled.logic.deleteTopics(disabled.image, { topics: ['kept'] }).response.topics[0]!.errorCode).toBe(73);
  });

  it('never mutates the image it is given', () => {
    const cluster = new Cluster();
    cluster.start([1, 2]);
    const image: MetadataImage = cluster.image;
    const snapshot = JSON.stringify([...image.allPartitions()].map((entry) => entry.state));
    cluster.logic.createTopics(image, { topics: [{ name: 'a', numPartitions: 4, replicationFactor: 2 }] });
    expect(image.topic('a')).toBeUndefined();
    expect(JSON.stringify([...image.allPartitions()].map((entry) => entry.state))).toBe(snapshot);
  });
});

describe('scale', () => {
  it('handles 10,000 partitions: create, fence a broker, bring it back and rebalance, quickly', () => {
    const started = performance.now();
    const cluster = new Cluster(1);
    cluster.start([1, 2, 3]);
    cluster.createTopic('big', 10_000, 3);
    expect([...cluster.leaderCounts().values()].sort()).toEqual([3333, 3333, 3334]);
    cluster.advance(9001);
    cluster.heartbeatAll([1]);
    cluster.commit(cluster.logic.fenceExpiredBrokers(cluster.image, cluster.nowMs));
    expect(cluster.image.leaderCount(1)).toBe(0);
    expect(cluster.image.leaderCount(2) + cluster.image.leaderCount(3)).toBe(10_000);
    cluster.register(1);
    cluster.heartbeat(1);
    cluster.expandIsrs();
    cluster.commit(cluster.logic.preferredLeaderElection(cluster.image));
    expect([...cluster.leaderCounts().values()].sort()).toEqual([3333, 3333, 3334]);
    expect(performance.now() - started).toBeLessThan(5000);
  });
});
