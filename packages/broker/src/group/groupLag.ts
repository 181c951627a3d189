// Consumer group lag for the metrics (kafka-exporter's kafka_consumergroup_lag): per group, topic
// and partition, the partition's high watermark minus the group's committed offset. Only the
// group's coordinator knows the committed offsets, so it reports its own groups (each series
// exists on one broker); the high watermark comes from the partition's leader: this broker's own
// replica when it leads, else a ListOffsets (latest) to the leader, one call per leader broker,
// bounded in time. Partitions without a leader, or whose leader does not answer, have no series
// until it does: a lag made up from a stale or missing high watermark would mislead an alert.
import * as grpc from '@grpc/grpc-js';
import { loadClientProto, type ClientApi } from '@runnel/common';

/** One committed offset of a group this broker coordinates. */
export interface GroupOffset {
  readonly group: string;
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
}

export interface GroupLag extends GroupOffset {
  readonly highWatermark: number;
  /** highWatermark - offset, never below 0 (a commit above the high watermark is not negative lag). */
  readonly lag: number;
}

export interface GroupLagSources {
  /** Every committed offset of the groups coordinated here. */
  committedOffsets(): GroupOffset[];
  /** The partition's leader: this broker ('local'), another's GRPC address, or null (no leader known). */
  leaderOf(topic: string, partition: number): 'local' | string | null;
  /** High watermarks of partitions this broker leads (ListOffsets latest, answered here). */
  localHighWatermarks(partitions: readonly PartitionRef[]): Map<string, number>;
  /** High watermarks from the leader at `address`; partitions it refuses are absent. */
  remoteHighWatermarks(address: string, partitions: readonly PartitionRef[]): Promise<Map<string, number>>;
}

export interface PartitionRef {
  readonly topic: string;
  readonly partition: number;
}

export function partitionKey(topic: string, partition: number): string {
  return `${topic}\0${partition}`;
}

/** The lag of every committed offset whose partition's high watermark its leader told. */
export async function groupLags(sources: GroupLagSources): Promise<GroupLag[]> {
  const offsets = sources.committedOffsets();
  const byLeader = new Map<string, Map<string, PartitionRef>>();
  for (const { topic, partition } of offsets) {
    const leader = sources.leaderOf(topic, partition);
    if (leader === null) continue;
    let partitions = byLeader.get(leader);
    if (partitions === undefined) byLeader.set(leader, (partitions = new Map()));
    partitions.set(partitionKey(topic, partition), { topic, partition });
  }
  const highWatermarks = new Map<string, number>();
  await Promise.all(
    [...byLeader].map(async ([leader, partitions]) => {
      const refs = [...partitions.values()];
      const answered = leader === 'local' ? sources.localHighWatermarks(refs) : await sources.remoteHighWatermarks(leader, refs).catch(() => new Map<string, number>());
      for (const [key, highWatermark] of answered) highWatermarks.set(key, highWatermark);
    }),
  );
  const lags: GroupLag[] = [];
  for (const offset of offsets) {
    const highWatermark = highWatermarks.get(partitionKey(offset.topic, offset.partition));
    if (highWatermark !== undefined) lags.push({ ...offset, highWatermark, lag: Math.max(0, highWatermark - offset.offset) });
  }
  return lags;
}

/** How long a scrape waits for another broker's high watermarks. */
const REMOTE_CALL_TIMEOUT_MS = 2_000;
const LATEST_TIMESTAMP = -1;

/** ListOffsets (latest) over the gRPC client API of other brokers; one channel per address, kept. */
export class HighWatermarkClient {
  private readonly clients = new Map<string, ClientApi.ClientApiClient>();

  async highWatermarks(address: string, partitions: readonly PartitionRef[]): Promise<Map<string, number>> {
    const client = this.clientFor(address);
    const request = { partitions: partitions.map(({ topic, partition }) => ({ topic, partition, timestamp: LATEST_TIMESTAMP })) };
    const response = await new Promise<ClientApi.ListOffsetsResponse__Output>((resolve, reject) => {
      client.listOffsets(request, { deadline: Date.now() + REMOTE_CALL_TIMEOUT_MS }, (error, answer) => (error !== null || answer === undefined ? reject(error ?? new Error('no answer')) : resolve(answer)));
    });
    const marks = new Map<string, number>();
    for (const entry of response.partitions) if (entry.errorCode === 0 && entry.offset >= 0) marks.set(partitionKey(entry.topic, entry.partition), Number(entry.offset));
    return marks;
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  private clientFor(address: string): ClientApi.ClientApiClient {
    let client = this.clients.get(address);
    if (client === undefined) {
      const { ClientApi: Client } = loadClientProto().runnel.v1;
      client = new Client(address, grpc.credentials.createInsecure());
      this.clients.set(address, client);
    }
    return client;
  }
}
