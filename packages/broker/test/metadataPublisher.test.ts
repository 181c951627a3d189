// BrokerMetadataPublisher on real collaborators (LogManager on a temp dir, ReplicaFetcherManager,
// ReplicaManager): one partition whose new role cannot be applied (its leader-epoch checkpoint
// cannot be written) must not leave another partition of the same update in its old role; the
// failed replica goes offline here (KAFKA_STORAGE_ERROR to produce, fetch and replica fetch) and is
// reported, so that the controller can move leadership and the ISR off it.
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLogger, encodeRecordBatch, errorCode } from '@runnel/common';
import { MetadataImage, type MetadataRecord } from '@runnel/controller';
import { ReplicaFetcherManager } from '../src/followerFetcher.js';
import { LogManager, type OfflineReplica } from '../src/logManager.js';
import { BrokerMetadataPublisher } from '../src/metadataPublisher.js';
import { BrokerMetrics } from '../src/metrics.js';
import { ReplicaManager } from '../src/replicaManager.js';
import { logSettings } from './leaderHarness.js';

const THIS_BROKER = 1;
const OTHER_BROKER = 2;
const TOPIC = 'orders';
const TOPIC_ID = 'AAAAAAAAAAAAAAAAAAAAAQ';
const logger = createLogger({ name: 'test', level: 'silent' });

const settings = logSettings();

interface Broker {
  readonly dir: string;
  readonly logs: LogManager;
  readonly fetchers: ReplicaFetcherManager;
  readonly publisher: BrokerMetadataPublisher;
  readonly replicas: ReplicaManager;
  readonly metrics: BrokerMetrics;
  readonly reported: OfflineReplica[];
}

let broker: Broker;

function startBroker(dir: string): Broker {
  const metrics = new BrokerMetrics(false);
  const reported: OfflineReplica[] = [];
  const logs = new LogManager({ logDir: dir, defaults: settings, retentionCheckIntervalMs: 3_600_000, logger, onReplicaOffline: (replica) => reported.push(replica) });
  const fetchers = new ReplicaFetcherManager({ brokerId: THIS_BROKER, brokerEpoch: () => 0, partitionMaxBytes: 1 << 20, responseMaxBytes: 1 << 20, maxWaitMs: 100, logger, metrics });
  const publisher = new BrokerMetadataPublisher(THIS_BROKER, logs, fetchers, metrics, logger);
  const replicas = new ReplicaManager(
    logs,
    { partitionExists: () => true, leadershipRevoked: () => null, alterIsr: () => Promise.resolve({ partitionEpoch: -1 }), isrIneligibility: () => null },
    logger,
    metrics,
    { fetchMaxBytes: 1 << 20, replicaLagTimeMaxMs: 30_000 },
  );
  return { dir, logs, fetchers, publisher, replicas, metrics, reported };
}

beforeEach(async () => {
  broker = startBroker(fs.mkdtempSync(join(os.tmpdir(), 'runnel-broker-publisher-')));
  await broker.logs.start();
});

afterEach(async () => {
  vi.restoreAllMocks();
  await broker.fetchers.stop();
  await broker.logs.stop();
  fs.rmSync(broker.dir, { recursive: true, force: true });
});

const registered: MetadataRecord[] = [THIS_BROKER, OTHER_BROKER].flatMap((id): MetadataRecord[] => [
  // Port 1 on loopback: nothing listens, so the follower's fetcher only retries.
  { type: 'RegisterBroker', brokerId: id, incarnationId: `incarnation-${id}`, listeners: [{ name: 'GRPC', host: '127.0.0.1', port: 1 }], rack: null },
]);

/** Partition 0 led by the other broker, partition 1 led by this one; both replicated on both. */
function initialImage(): MetadataImage {
  const records: MetadataRecord[] = [
    ...registered,
    { type: 'UnfenceBroker', brokerId: THIS_BROKER, brokerEpoch: 0 },
    { type: 'UnfenceBroker', brokerId: OTHER_BROKER, brokerEpoch: 1 },
    { type: 'Topic', name: TOPIC, topicId: TOPIC_ID },
    { type: 'Partition', topicId: TOPIC_ID, partition: 0, replicas: [OTHER_BROKER, THIS_BROKER], isr: [OTHER_BROKER, THIS_BROKER], leader: OTHER_BROKER, leaderEpoch: 0, partitionEpoch: 0 },
    { type: 'Partition', topicId: TOPIC_ID, partition: 1, replicas: [THIS_BROKER, OTHER_BROKER], isr: [THIS_BROKER, OTHER_BROKER], leader: THIS_BROKER, leaderEpoch: 0, partitionEpoch: 0 },
  ];
  return MetadataImage.empty().applyAll(records, 0);
}

async function produce(partition: number): Promise<{ errorCode: number; errorMessage: string }> {
  const [result] = await broker.replicas.produce(1, [{ topic: TOPIC, partition, records: encodeRecordBatch([{ value: Buffer.from(`to-${partition}`) }]) }]);
  return result!;
}

describe('BrokerMetadataPublisher: one partition failing its new role', () => {
  it('still moves every other partition of the update, and takes the failed one offline and reports it', async () => {
    const first = initialImage();
    await broker.publisher.publish(MetadataImage.empty(), first, false);
    expect(await produce(1)).toMatchObject({ errorCode: 0 });
    expect(await produce(0)).toMatchObject({ errorCode: errorCode('NOT_LEADER_OR_FOLLOWER') });

    // A real fault on real files: partition 0's leader-epoch checkpoint can no longer be replaced
    // (a directory is in the way), so becoming its leader at a new epoch fails with EISDIR.
    const checkpoint = join(broker.dir, `${TOPIC}-0`, 'leader-epoch-checkpoint');
    fs.rmSync(checkpoint, { force: true });
    fs.mkdirSync(join(checkpoint, 'in-the-way'), { recursive: true });

    // One update: this broker takes over partition 0, and partition 1 moves to the other broker.
    // Partition 0 comes first in the update, so its failure used to skip partition 1.
    const second = first.applyAll(
      [
        { type: 'PartitionChange', topicId: TOPIC_ID, partition: 0, leader: THIS_BROKER, isr: [THIS_BROKER, OTHER_BROKER], leaderEpoch: 1, partitionEpoch: 1 },
        { type: 'PartitionChange', topicId: TOPIC_ID, partition: 1, leader: OTHER_BROKER, isr: [THIS_BROKER, OTHER_BROKER], leaderEpoch: 1, partitionEpoch: 1 },
      ],
      first.highestOffset + 1,
    );
    const publishError = await broker.publisher.publish(first, second, false).then(
      () => null,
      (error: unknown) => error,
    );

    // Partition 1 moved away: no more writes here (an acks=1 write would be lost).
    const movedAway = await produce(1);
    expect(movedAway.errorCode, movedAway.errorMessage).toBe(errorCode('NOT_LEADER_OR_FOLLOWER'));
    expect(broker.logs.partition(TOPIC, 1)!.role).toMatchObject({ leader: OTHER_BROKER, leaderEpoch: 1 });

    // Partition 0 is offline here: produce, consumer fetch and replica fetch all say so.
    const refused = await produce(0);
    expect(refused.errorCode, refused.errorMessage).toBe(errorCode('KAFKA_STORAGE_ERROR'));
    const [fetched] = await broker.replicas.fetch({ maxWaitMs: 0, minBytes: 1, maxBytes: 1 << 20, partitions: [{ topic: TOPIC, partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20 }] });
    expect(fetched!.errorCode).toBe(errorCode('KAFKA_STORAGE_ERROR'));
    const [replicaFetched] = await broker.replicas.replicaFetch({
      replicaId: OTHER_BROKER,
      brokerEpoch: 1,
      maxWaitMs: 0,
      minBytes: 1,
      maxBytes: 1 << 20,
      partitions: [{ topic: TOPIC, partition: 0, currentLeaderEpoch: 1, fetchOffset: 0, lastFetchedEpoch: -1, partitionMaxBytes: 1 << 20 }],
    });
    expect(replicaFetched!.errorCode).toBe(errorCode('KAFKA_STORAGE_ERROR'));
    // It neither leads nor follows: no partition object is served, no fetcher asks for it.
    expect(broker.logs.partition(TOPIC, 0)).toBeUndefined();
    expect(broker.fetchers.followedPartitions()).toEqual([`${TOPIC}-1`]);

    // Reported (what the next heartbeat carries), once.
    const expected = { topic: TOPIC, topicId: TOPIC_ID, partition: 0 };
    expect(broker.reported).toEqual([expect.objectContaining(expected)]);
    expect(broker.logs.offlineReplicas()).toEqual([expect.objectContaining(expected)]);
    expect(broker.logs.offlineReplicas()[0]!.reason).toMatch(/KAFKA_STORAGE_ERROR|EISDIR/);
    expect(publishError).toBeNull();
    expect((await broker.metrics.offlineReplicas.get()).values[0]!.value).toBe(1);

    // A later update does not bring it back (only a restart retries the log): it stays offline.
    const third = second.apply({ type: 'PartitionChange', topicId: TOPIC_ID, partition: 0, leader: OTHER_BROKER, isr: [OTHER_BROKER], leaderEpoch: 2, partitionEpoch: 2 }, second.highestOffset + 1);
    await broker.publisher.publish(second, third, false);
    expect(broker.logs.partition(TOPIC, 0)).toBeUndefined();
    expect((await produce(0)).errorCode).toBe(errorCode('KAFKA_STORAGE_ERROR'));
    expect(broker.reported).toHaveLength(1);

    // Deleting the topic forgets the offline replica (nothing is left to report).
    const fourth = third.apply({ type: 'RemoveTopic', topicId: TOPIC_ID }, third.highestOffset + 1);
    await broker.publisher.publish(third, fourth, false);
    expect(broker.logs.offlineReplicas()).toEqual([]);
    expect((await broker.metrics.offlineReplicas.get()).values[0]!.value).toBe(0);
  });

  it('a log that fails at runtime (fsync EIO on an acks=1 write) goes offline and is reported', async () => {
    const image = initialImage().apply({ type: 'Config', resourceType: 'topic', resourceName: TOPIC, name: 'flush.messages', value: '1' }, 100);
    await broker.publisher.publish(MetadataImage.empty(), image, false);
    expect(await produce(1)).toMatchObject({ errorCode: 0 });
    vi.spyOn(fs, 'fdatasync').mockImplementation(((_fd: number, callback: (error: NodeJS.ErrnoException | null) => void) => {
      callback(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO', errno: -5 }));
    }) as typeof fs.fdatasync);
    const failed = await produce(1);
    expect(failed.errorCode, failed.errorMessage).toBe(errorCode('KAFKA_STORAGE_ERROR'));
    expect(broker.reported).toEqual([expect.objectContaining({ topic: TOPIC, topicId: TOPIC_ID, partition: 1 })]);
    expect(broker.logs.partition(TOPIC, 1)).toBeUndefined();
    expect((await produce(1)).errorCode).toBe(errorCode('KAFKA_STORAGE_ERROR'));
    // The other partition is untouched.
    expect(broker.logs.partition(TOPIC, 0)!.role.leader).toBe(OTHER_BROKER);
  });
});
