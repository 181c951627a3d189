// The replication throttle (leader.replication.throttled.rate / follower.replication.throttled.rate):
// the rate it measures, the leader leaving a replica being added out of its fetches while the quota
// is spent, and the follower not asking for it, while every other replica goes on at full speed.
import * as grpc from '@grpc/grpc-js';
import { createLogger, loadReplicationProto, type ReplicationApi } from '@runnel/common';
import { afterEach, describe, expect, it } from 'vitest';
import { ReplicaFetcherManager } from '../src/followerFetcher.js';
import { BrokerMetrics } from '../src/metrics.js';
import type { PartitionRole } from '../src/partition.js';
import { ReplicationQuota, ReplicationThrottles, UNLIMITED_RATE } from '../src/replicationQuota.js';
import { batchOf, followerFetch, leaderFixture, TOPIC, TOPIC_ID, type LeaderFixture } from './leaderHarness.js';

class FakeClock {
  ms = 1_000_000;
  readonly now = (): number => this.ms;
}

describe('ReplicationQuota', () => {
  it('measures over at least windows − 1 windows, so a quiet link gets that much before it is held back', () => {
    const clock = new FakeClock();
    const quota = new ReplicationQuota({ bytesPerSecond: 1000, windows: 11, windowMs: 1000 }, clock.now);
    quota.record(10_000);
    expect(quota.rate()).toBe(1000);
    expect(quota.isExceeded()).toBe(false);
    quota.record(1);
    expect(quota.isExceeded()).toBe(true);
    // Samples older than the windows are forgotten.
    clock.ms += 12_000;
    expect(quota.rate()).toBe(0);
    expect(quota.isExceeded()).toBe(false);
  });

  it('holds a sender that sends whenever it may to the limit over a long run', () => {
    const clock = new FakeClock();
    const quota = new ReplicationQuota({ bytesPerSecond: 50_000, windows: 11, windowMs: 1000 }, clock.now);
    let sent = 0;
    let sentAfterWarmUp = 0;
    for (let tick = 0; tick < 120_000 / 20; tick++) {
      clock.ms += 20;
      if (quota.isExceeded()) continue;
      quota.record(16_384);
      sent += 16_384;
      if (tick * 20 >= 20_000) sentAfterWarmUp += 16_384;
    }
    // Past the first burst, the average over 100 s stays within a few percent of the limit.
    expect(sentAfterWarmUp / 100).toBeGreaterThan(50_000 * 0.95);
    expect(sentAfterWarmUp / 100).toBeLessThan(50_000 * 1.05);
    expect(sent).toBeGreaterThan(sentAfterWarmUp);
  });

  it('never binds at the unlimited default, and takes a new limit at once', () => {
    const clock = new FakeClock();
    const quota = new ReplicationQuota({ bytesPerSecond: UNLIMITED_RATE, windows: 11, windowMs: 1000 }, clock.now);
    quota.record(1e12);
    expect(quota.isExceeded()).toBe(false);
    quota.setLimit(1000);
    expect(quota.isExceeded()).toBe(true);
    expect(() => quota.setLimit(-1)).toThrow(/bytes per second/);
  });

  it('takes a broker-level dynamic rate over a cluster-level one over the node\'s configuration', () => {
    const statics: Record<string, number> = {
      'replication.quota.window.num': 11,
      'replication.quota.window.size.seconds': 1,
      'leader.replication.throttled.rate': 7,
      'follower.replication.throttled.rate': 8,
    };
    const throttles = new ReplicationThrottles(3, { int: (key) => statics[key]! });
    const configs = new Map<string, Map<string, string>>();
    const image = { config: (type: 'broker' | 'cluster', name: string) => configs.get(`${type}/${name}`) ?? new Map<string, string>() };
    throttles.follow(image);
    expect([throttles.leader.bytesPerSecond, throttles.follower.bytesPerSecond]).toEqual([7, 8]);
    configs.set('cluster/', new Map([['leader.replication.throttled.rate', '1000'], ['follower.replication.throttled.rate', '2000']]));
    configs.set('broker/3', new Map([['leader.replication.throttled.rate', '500']]));
    configs.set('broker/4', new Map([['follower.replication.throttled.rate', '1']]));
    throttles.follow(image);
    expect([throttles.leader.bytesPerSecond, throttles.follower.bytesPerSecond]).toEqual([500, 2000]);
  });
});

describe('the leader\'s side of the throttle', () => {
  let fixture: LeaderFixture | undefined;
  afterEach(async () => {
    await fixture?.close();
    fixture = undefined;
  });

  it('answers a replica being added empty while the quota is spent, and never holds back an ISR member', async () => {
    const clock = new FakeClock();
    const throttle = new ReplicationQuota({ bytesPerSecond: 1000, windows: 11, windowMs: 1000 }, clock.now);
    // A move from [1,2,3] to [1,2,4]: 4 is being added, 3 removed.
    const moving: PartitionRole = { leader: 1, leaderEpoch: 1, partitionEpoch: 1, replicas: [1, 2, 4, 3], isr: [1, 2, 3], addingReplicas: [4] };
    fixture = await leaderFixture({ brokerId: 1, role: moving, leaderThrottle: throttle });
    const { replicas, partition } = fixture;
    for (let k = 0; k < 20; k++) await replicas.produce(1, [{ topic: TOPIC, partition: 0, records: batchOf(100, `b${k}-`) }]);
    const end = partition.log.logEndOffset;

    // The first fetch goes through (nothing measured yet) and spends the quota for a while.
    const first = await followerFetch(replicas, partition, 4, 0);
    expect(first.records.length).toBeGreaterThan(10_000);
    expect(throttle.isExceeded()).toBe(true);
    const held = await followerFetch(replicas, partition, 4, 100);
    expect(held.errorCode).toBe(0);
    expect(held.records.length).toBe(0);
    expect(held.logEndOffset).toBe(end);

    // Members of the ISR fetch as usual.
    expect((await followerFetch(replicas, partition, 2, 0)).records.length).toBeGreaterThan(0);
    expect((await followerFetch(replicas, partition, 3, 0)).records.length).toBeGreaterThan(0);

    // Once the measured rate is under the limit again, 4 gets data.
    clock.ms += 60_000;
    expect((await followerFetch(replicas, partition, 4, 100)).records.length).toBeGreaterThan(0);

    // In the ISR, 4 is a full member: the spent quota no longer applies to it.
    expect(throttle.isExceeded()).toBe(true);
    fixture.applyRole({ ...moving, partitionEpoch: 2, isr: [1, 2, 3, 4] });
    expect((await followerFetch(replicas, partition, 4, 200)).records.length).toBeGreaterThan(0);
  });
});

describe('the follower\'s side of the throttle', () => {
  const fixtures: LeaderFixture[] = [];
  let fetchers: ReplicaFetcherManager | undefined;
  let server: grpc.Server | undefined;
  afterEach(async () => {
    await fetchers?.stop();
    fetchers = undefined;
    server?.forceShutdown();
    server = undefined;
    for (const fixture of fixtures.splice(0)) await fixture.close();
  });

  it('leaves its replica being added out of its fetches while the quota is spent, but not its other replicas', async () => {
    // Leader 2 holds partition 0 (1 being added) and partition 1 (1 in the ISR), 1.5 MB each.
    const leader = await leaderFixture({ brokerId: 2, role: { leader: 2, leaderEpoch: 1, partitionEpoch: 1, replicas: [2, 3], isr: [2, 3] } });
    fixtures.push(leader);
    const other = await leader.logs.openPartition(TOPIC, TOPIC_ID, 1, {}, 2);
    other.applyRole({ leader: 2, leaderEpoch: 1, partitionEpoch: 1, replicas: [2, 1], isr: [2, 1] }, Date.now());
    leader.applyRole({ leader: 2, leaderEpoch: 1, partitionEpoch: 2, replicas: [2, 3, 1], isr: [2, 3], addingReplicas: [1] });
    const value = 'x'.repeat(1000);
    for (let k = 0; k < 30; k++) {
      const batch = batchOf(50, `${value}-${k}-`);
      await leader.replicas.produce(1, [{ topic: TOPIC, partition: 0, records: batch }, { topic: TOPIC, partition: 1, records: batch }]);
    }
    const { port } = await serveReplication(leader, (started) => (server = started));

    // Follower 1: a throttle of 100 KB/s measured over 2 windows of 500 ms.
    const follower = await leaderFixture({ brokerId: 1, role: { leader: 2, leaderEpoch: 1, partitionEpoch: 2, replicas: [2, 3, 1], isr: [2, 3], addingReplicas: [1] } });
    fixtures.push(follower);
    const followedOther = await follower.logs.openPartition(TOPIC, TOPIC_ID, 1, {}, 1);
    followedOther.applyRole({ leader: 2, leaderEpoch: 1, partitionEpoch: 1, replicas: [2, 1], isr: [2, 1] }, Date.now());
    const throttle = new ReplicationQuota({ bytesPerSecond: 100_000, windows: 2, windowMs: 500 });
    const metrics = new BrokerMetrics();
    fetchers = new ReplicaFetcherManager({
      brokerId: 1,
      brokerEpoch: () => 1,
      partitionMaxBytes: 64 * 1024,
      responseMaxBytes: 10 * 1024 * 1024,
      maxWaitMs: 100,
      logger: createLogger({ name: 'test', level: 'silent' }),
      metrics,
      throttle,
    });
    const startedMs = Date.now();
    fetchers.follow(follower.partition, 2, `127.0.0.1:${port}`);
    fetchers.follow(followedOther, 2, `127.0.0.1:${port}`);

    // The ISR member copies everything while the replica being added is held to the rate.
    const total = other.log.logEndOffset;
    await waitUntil(() => followedOther.log.logEndOffset === total, 30_000);
    const elapsedS = (Date.now() - startedMs) / 1000;
    const throttledBytes = follower.partition.log.sizeInBytes;
    // What the rate allows in that time, plus the first window's burst and one fetch of overshoot.
    expect(throttledBytes).toBeLessThan(100_000 * (elapsedS + 0.5) + 2 * 64 * 1024);
    expect(follower.partition.log.logEndOffset).toBeLessThan(total);

    // Lifting the limit lets it finish.
    throttle.setLimit(UNLIMITED_RATE);
    await waitUntil(() => follower.partition.log.logEndOffset === total, 30_000);
    const counted = await metrics.registry.getSingleMetric('runnel_replication_throttled_bytes_total')!.get();
    expect(counted.values.find((sample) => sample.labels.side === 'follower')?.value ?? 0).toBeGreaterThan(0);
  });
});

/** Serves the leader's ReplicaFetch over a real gRPC server on loopback. */
async function serveReplication(leader: LeaderFixture, keep: (server: grpc.Server) => void): Promise<{ port: number }> {
  const server = new grpc.Server();
  keep(server);
  server.addService(loadReplicationProto().runnel.v1.ReplicationApi.service, {
    ReplicaFetch: (call: grpc.ServerDuplexStream<ReplicationApi.ReplicaFetchRequest__Output, ReplicationApi.ReplicaFetchResponse>) => {
      call.on('data', (request: ReplicationApi.ReplicaFetchRequest__Output) => {
        void leader.replicas
          .replicaFetch({
            replicaId: request.replicaId,
            brokerEpoch: Number(request.brokerEpoch),
            maxWaitMs: request.maxWaitMs,
            minBytes: request.minBytes,
            maxBytes: request.maxBytes,
            partitions: request.partitions.map((entry) => ({ ...entry, fetchOffset: Number(entry.fetchOffset) })),
          })
          .then((partitions) => call.write({ requestId: request.requestId, partitions }));
      });
      call.on('end', () => call.end());
    },
  } satisfies ReplicationApi.ReplicationApiHandlers);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error === null ? resolve(bound) : reject(error))));
  return { port };
}

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
