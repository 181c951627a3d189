// A leader replica on real files, driven directly: a LogManager in a temp dir, a ReplicaManager, and
// a controller stand-in (the LeadershipView) whose AlterPartition answers the test decides. The
// layer above the broker's data calls is the controller and the network; they are what is faked.
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { createLogger, encodeRecordBatch, RunnelError, type LogSettings } from '@runnel/common';
import { testSettings } from '../../storage/test/helpers.js';
import { LogManager } from '../src/logManager.js';
import { BrokerMetrics } from '../src/metrics.js';
import type { Partition, PartitionRole } from '../src/partition.js';
import type { ReplicationQuota } from '../src/replicationQuota.js';
import { ReplicaManager, type IsrChangeOutcome, type LeadershipView, type ReplicaFetchResult } from '../src/replicaManager.js';

export const TOPIC = 't';
export const TOPIC_ID = 'AAAAAAAAAAAAAAAAAAAAAA';

/** Small, test-sized log settings: the storage tests' own, so both layers test the same log. */
export const logSettings = testSettings;

/** One AlterPartition call the test answers by hand. */
export interface AlterIsrCall {
  readonly partition: Partition;
  readonly newIsr: number[];
  resolve(outcome: IsrChangeOutcome): void;
  reject(error: Error): void;
}

/** The controller as the leader sees it: calls are recorded and answered by the test. */
export class ControllerStandIn implements LeadershipView {
  readonly calls: AlterIsrCall[] = [];
  revoked: string | null = null;
  /** Whether the metadata knows the partition (false: deleted). */
  exists = true;
  readonly ineligible = new Map<number, string>();

  partitionExists(): boolean {
    return this.exists;
  }

  leadershipRevoked(): string | null {
    return this.revoked;
  }

  isrIneligibility(brokerId: number): string | null {
    return this.ineligible.get(brokerId) ?? null;
  }

  alterIsr(partition: Partition, newIsr: ReadonlyArray<{ brokerId: number; brokerEpoch: number }>): Promise<IsrChangeOutcome> {
    return new Promise((resolve, reject) => {
      this.calls.push({ partition, newIsr: newIsr.map((member) => member.brokerId), resolve, reject });
    });
  }

  /** Answers the latest call with a refusal named by its Kafka error. */
  refuseLatest(name: 'INELIGIBLE_REPLICA' | 'INVALID_UPDATE_VERSION' | 'FENCED_LEADER_EPOCH'): void {
    this.calls[this.calls.length - 1]!.reject(new RunnelError(name, 'refused by the test'));
  }
}

export interface LeaderFixture {
  readonly dir: string;
  readonly logs: LogManager;
  readonly replicas: ReplicaManager;
  readonly controller: ControllerStandIn;
  readonly partition: Partition;
  /** Applies a role as the metadata would (partition epoch bumped by the caller). */
  applyRole(role: PartitionRole): void;
  close(): Promise<void>;
}

export async function leaderFixture(options: {
  brokerId: number;
  role: PartitionRole;
  settings?: Partial<LogSettings>;
  replicaLagTimeMaxMs?: number;
  leaderThrottle?: ReplicationQuota;
}): Promise<LeaderFixture> {
  const dir = fs.mkdtempSync(join(os.tmpdir(), 'runnel-broker-'));
  const logger = createLogger({ name: 'test', level: 'silent' });
  const logs = new LogManager({ logDir: dir, defaults: logSettings(options.settings), retentionCheckIntervalMs: 3_600_000, logger });
  await logs.start();
  const controller = new ControllerStandIn();
  const replicas = new ReplicaManager(logs, controller, logger, new BrokerMetrics(), {
    fetchMaxBytes: 10 * 1024 * 1024,
    replicaLagTimeMaxMs: options.replicaLagTimeMaxMs ?? 30_000,
    leaderThrottle: options.leaderThrottle,
  });
  const partition = await logs.openPartition(TOPIC, TOPIC_ID, 0, {}, options.brokerId);
  partition.minInsyncReplicas = options.settings?.minInsyncReplicas ?? 1;
  partition.applyRole(options.role, Date.now());
  return {
    dir,
    logs,
    replicas,
    controller,
    partition,
    applyRole: (role) => partition.applyRole(role, Date.now()),
    close: async () => {
      replicas.stop();
      await logs.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A batch of `count` small records. */
export function batchOf(count: number, label = 'r'): Buffer {
  return encodeRecordBatch(Array.from({ length: count }, (_, k) => ({ key: null, value: Buffer.from(`${label}${k}`) })));
}

/** A follower's fetch of partition 0 from `fetchOffset`, answered at once (no long poll). */
export async function followerFetch(replicas: ReplicaManager, partition: Partition, replicaId: number, fetchOffset: number): Promise<ReplicaFetchResult> {
  const [result] = await replicas.replicaFetch({
    replicaId,
    brokerEpoch: 1,
    maxWaitMs: 0,
    minBytes: 1,
    maxBytes: 1024 * 1024,
    partitions: [{ topic: TOPIC, partition: 0, currentLeaderEpoch: partition.leaderEpoch, fetchOffset, lastFetchedEpoch: -1, partitionMaxBytes: 1024 * 1024 }],
  });
  return result!;
}

/** Settles pending promise callbacks (and one macrotask turn). */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
