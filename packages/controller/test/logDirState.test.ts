// A broker's log directory state (online, full, offline) from its heartbeats: the controller
// records each change in the metadata log (BrokerLogDir), places no new replica on a broker whose
// directory is not online, says so when that leaves too few brokers, and forgets the state when the
// broker registers again (a restart).
import { describe, expect, it } from 'vitest';
import { INVARIANTS, MetadataImage, MetadataRecordError, decodeRecord, encodeRecord, type LogDirState, type MetadataRecord } from '../src/index.js';
import { decodeImageSnapshot, encodeImageSnapshot } from '../src/quorum/index.js';
import { canonicalImage } from '../src/sim/controllerWorkload.js';
import { Cluster } from './cluster.js';
import { violation } from './violation.js';

const types = (records: readonly MetadataRecord[]): string[] => records.map((record) => record.type);

function heartbeatWithLogDir(cluster: Cluster, brokerId: number, logDir: LogDirState) {
  const broker = cluster.image.broker(brokerId)!;
  return cluster.logic.brokerHeartbeat(cluster.image, { brokerId, brokerEpoch: broker.epoch, currentMetadataOffset: cluster.image.highestOffset, logDir }, cluster.nowMs);
}

describe('the BrokerLogDir record', () => {
  it('round-trips canonically and refuses an unknown state', () => {
    const record: MetadataRecord = { type: 'BrokerLogDir', brokerId: 2, brokerEpoch: 17, state: 'full' };
    expect(decodeRecord(encodeRecord(record))).toEqual(record);
    expect(new TextDecoder().decode(encodeRecord(record))).toBe('{"v":1,"type":"BrokerLogDir","brokerId":2,"brokerEpoch":17,"state":"full"}');
    expect(() => decodeRecord(new TextEncoder().encode('{"v":1,"type":"BrokerLogDir","brokerId":2,"brokerEpoch":17,"state":"broken"}'))).toThrow(MetadataRecordError);
  });

  it('must name the current registration', () => {
    const cluster = new Cluster();
    cluster.start([1]);
    const epoch = cluster.image.broker(1)!.epoch;
    expect(violation(cluster.image, { type: 'BrokerLogDir', brokerId: 1, brokerEpoch: epoch + 1, state: 'full' })).toBe(INVARIANTS.brokerEpochMatches);
    expect(violation(cluster.image, { type: 'BrokerLogDir', brokerId: 9, brokerEpoch: epoch, state: 'full' })).toBe(INVARIANTS.knownReference);
  });
});

describe('log directory state from heartbeats', () => {
  it('is recorded on change only, keeps new replicas off the broker, and clears when space is freed', () => {
    const cluster = new Cluster();
    cluster.start([1, 2, 3]);
    expect(cluster.image.broker(2)!.logDir).toBe('online');
    expect(types(heartbeatWithLogDir(cluster, 2, 'online').records)).toEqual([]);
    const full = heartbeatWithLogDir(cluster, 2, 'full');
    expect(full.records).toEqual([{ type: 'BrokerLogDir', brokerId: 2, brokerEpoch: cluster.image.broker(2)!.epoch, state: 'full' }]);
    cluster.commit(full);
    expect(types(heartbeatWithLogDir(cluster, 2, 'full').records)).toEqual([]);

    cluster.createTopic('spread', 12, 2);
    expect(cluster.partitions('spread').flatMap((state) => state.replicas)).not.toContain(2);
    // A reassignment plan (brokers joining or leaving) does not move replicas there either.
    expect(cluster.logic.usableBrokers(cluster.image).map((broker) => broker.id)).toEqual([1, 3]);

    cluster.commit(heartbeatWithLogDir(cluster, 2, 'online'));
    expect(cluster.logic.usableBrokers(cluster.image).map((broker) => broker.id)).toEqual([1, 2, 3]);
  });

  it('refuses a topic it cannot place, naming the brokers left out and why', () => {
    const cluster = new Cluster();
    cluster.start([1, 2]);
    cluster.commit(heartbeatWithLogDir(cluster, 1, 'offline'));
    const result = cluster.createTopic('wide', 1, 2);
    expect(result.errorCode).toBe(38); // INVALID_REPLICATION_FACTOR
    expect(result.errorMessage).toMatch(/replication factor 2 is larger than the 1 available broker\(s\); broker\(s\) 1 \(log directory offline\) get no new replicas until their log directory is online again/);
  });

  it('is forgotten when the broker registers again (a restart), and survives a snapshot', () => {
    const cluster = new Cluster();
    cluster.start([1, 2]);
    cluster.commit(heartbeatWithLogDir(cluster, 2, 'offline'));
    const restored = decodeImageSnapshot(encodeImageSnapshot(cluster.image));
    expect(restored.broker(2)!.logDir).toBe('offline');
    expect(canonicalImage(restored)).toBe(canonicalImage(cluster.image));
    expect(MetadataImage.empty().broker(2)).toBeUndefined();

    // The restart: the old session expires, the broker is fenced, and its new process registers.
    cluster.advance(9001);
    cluster.heartbeatAll([2]);
    cluster.commit(cluster.logic.fenceExpiredBrokers(cluster.image, cluster.nowMs));
    cluster.register(2);
    expect(cluster.image.broker(2)!.logDir).toBe('online');
  });
});
