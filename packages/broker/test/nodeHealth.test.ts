// The readiness rules, one at a time: each fails readiness on its own and names itself.
import { describe, expect, it } from 'vitest';
import { MetadataLag, readiness, type BrokerHealthInput, type NodeHealthInput } from '../src/nodeHealth.js';

const healthyBroker: BrokerHealthInput = {
  recovery: { done: true, opened: 4, total: 4 },
  brokerEpoch: 7,
  fenced: false,
  leadershipRevoked: null,
  metadataApplyFailure: null,
  metadataOffset: 40,
  metadataBehind: null,
  metadataLagMaxMs: 3000,
  shuttingDown: false,
  logDir: { path: '/data/logs', state: 'online', offlineReason: null, freeBytes: 500 * 1048576, totalBytes: 1000 * 1048576, minFreeBytes: 64 * 1048576 },
};
const logDir = healthyBroker.logDir;
const healthyNode: NodeHealthInput = { started: true, stopping: false, controller: { leaderId: 1 }, broker: healthyBroker };

function withBroker(change: Partial<BrokerHealthInput>): NodeHealthInput {
  return { ...healthyNode, broker: { ...healthyBroker, ...change } };
}

describe('readiness', () => {
  it('is ready when every rule holds', () => {
    expect(readiness(healthyNode)).toEqual({ ready: true, reasons: [] });
  });

  it.each([
    ['starting', { ...healthyNode, started: false }, /node starting/],
    ['stopping', { ...healthyNode, stopping: true }, /node stopping/],
    ['waiting for the first metadata', withBroker({ recovery: { done: false, opened: 0, total: null } }), /logs not recovered: waiting for the metadata/],
    ['recovering logs', withBroker({ recovery: { done: false, opened: 3, total: 50 } }), /logs recovering: 3 of 50 replicas opened/],
    ['not registered', withBroker({ brokerEpoch: -1, fenced: true }), /not registered/],
    ['fenced', withBroker({ fenced: true, leadershipRevoked: 'the controller has fenced this broker' }), /fenced by the controller/],
    ['lease lapsed', withBroker({ leadershipRevoked: 'no heartbeat answered for 4000 ms' }), /may not lead: no heartbeat answered/],
    ['metadata not applied', withBroker({ metadataApplyFailure: 'boom' }), /metadata not applied: boom/],
    ['behind on the metadata', withBroker({ metadataBehind: { controllerOffset: 55, behindMs: 3500 } }), /behind on the metadata: applied offset 40, the controller had 55 3500 ms ago/],
    ['shutting down', withBroker({ shuttingDown: true }), /shutting down/],
    ['the log directory is full', withBroker({ logDir: { ...logDir, state: 'full', freeBytes: 3 * 1048576 } }), /log directory \/data\/logs nearly full: 3\.0 MiB free, under log.dir.min.free.bytes \(64\.0 MiB\)/],
    [
      'the log directory is offline',
      withBroker({ logDir: { ...logDir, state: 'offline', offlineReason: 'orders-0: ENOSPC: no space left on device, write' } }),
      /log directory \/data\/logs offline since a write failed \(orders-0: ENOSPC: no space left on device, write\); free space or fix the disk, then restart the broker/,
    ],
    ['controller-only without a leader', { ...healthyNode, broker: null, controller: { leaderId: -1 } }, /no controller quorum leader/],
  ] as const)('is not ready when %s', (_name, input, reason) => {
    const result = readiness(input);
    expect(result.ready).toBe(false);
    expect(result.reasons).toHaveLength(1);
    expect(result.reasons[0]).toMatch(reason);
  });

  it('tolerates metadata lag up to the limit', () => {
    expect(readiness(withBroker({ metadataBehind: { controllerOffset: 55, behindMs: 2999 } })).ready).toBe(true);
  });

  it('leaves a broker\'s controller to its own rules: no leader known locally is not a reason', () => {
    expect(readiness({ ...healthyNode, controller: { leaderId: -1 } }).ready).toBe(true);
  });
});

describe('MetadataLag', () => {
  it('is behind from when the controller reported an offset not applied here', () => {
    const lag = new MetadataLag();
    lag.observe(10, 10, 0);
    expect(lag.behind(10, 5000)).toBeNull();
    lag.observe(12, 10, 1000);
    lag.observe(15, 10, 2000); // the older, unmet target keeps its time
    expect(lag.behind(10, 4000)).toEqual({ controllerOffset: 12, behindMs: 3000 });
    expect(lag.behind(12, 4100)).toBeNull();
    lag.observe(15, 12, 4200);
    expect(lag.behind(12, 4300)).toEqual({ controllerOffset: 15, behindMs: 100 });
  });
});
