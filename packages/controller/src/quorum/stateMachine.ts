// The metadata log as a RaftHost StateMachine: each Raft entry is one controller decision's records
// (the simulator's batch framing: 4-byte big-endian length + encoded record), applied in order to a
// MetadataImage. Record offsets are the image's own (highestOffset + 1 onward), not Raft indexes,
// exactly as in the simulator, so every member builds the same image from the same entries.
//
// The snapshot is the image itself as a canonical list of records that rebuilds it (brokers in id
// order with their epochs, then unfencing, configs, topics and their partitions in their current
// state, then the replicas brokers reported offline) — not the record log, so its size follows the
// image, not the history.

import type { StateMachine } from '@runnel/raft/host';
import { MetadataImage } from '../image.js';
import { decodeRecord, encodeRecord, type MetadataRecord } from '../records.js';
import { decodeBatch, encodeBatch } from '../sim/controllerWorkload.js';

export { encodeBatch, decodeBatch };

export const METADATA_SNAPSHOT_VERSION = 1;

/**
 * `records` are the records that turned `previous` into `image` (at offsets previous.highestOffset + 1
 * onward), or null when `image` came from a snapshot restore.
 */
export type ImageListener = (image: MetadataImage, previous: MetadataImage, raftIndex: number, records: readonly MetadataRecord[] | null) => void;

/** Encodes one decision's records as one Raft entry. */
export function encodeRecordBatch(records: readonly MetadataRecord[]): Uint8Array {
  return encodeBatch(records.map(encodeRecord));
}

export function decodeRecordBatch(data: Uint8Array): MetadataRecord[] {
  return decodeBatch(data).map(decodeRecord);
}

/** The canonical records that rebuild `image` (with the offset each RegisterBroker must land at). */
export function imageToSnapshotRecords(image: MetadataImage): { record: MetadataRecord; offset: number }[] {
  const entries: { record: MetadataRecord; offset: number }[] = [];
  const brokers = image.brokers();
  for (const broker of brokers) {
    entries.push({
      record: { type: 'RegisterBroker', brokerId: broker.id, incarnationId: broker.incarnationId, listeners: broker.listeners, rack: broker.rack },
      offset: broker.epoch,
    });
  }
  for (const broker of brokers) {
    if (!broker.fenced) entries.push({ record: { type: 'UnfenceBroker', brokerId: broker.id, brokerEpoch: broker.epoch }, offset: -1 });
  }
  const configs = (resourceType: 'cluster' | 'broker' | 'topic', resourceName: string): void => {
    const keys = [...image.config(resourceType, resourceName).keys()].sort();
    for (const name of keys) {
      entries.push({ record: { type: 'Config', resourceType, resourceName, name, value: image.config(resourceType, resourceName).get(name)! }, offset: -1 });
    }
  };
  configs('cluster', '');
  for (const broker of brokers) configs('broker', String(broker.id));
  const topics = image.topics().sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const topic of topics) {
    entries.push({ record: { type: 'Topic', name: topic.name, topicId: topic.id }, offset: -1 });
    configs('topic', topic.name);
    for (const state of topic.partitions()) {
      entries.push({
        record: {
          type: 'Partition',
          topicId: topic.id,
          partition: state.partition,
          replicas: state.replicas,
          isr: state.isr,
          leader: state.leader,
          leaderEpoch: state.leaderEpoch,
          partitionEpoch: state.partitionEpoch,
          // A move in progress is part of the state: a broker restored from this snapshot keeps
          // following the added replica, and the move completes or is cancelled as from the log.
          ...(state.addingReplicas.length > 0 ? { addingReplicas: state.addingReplicas } : {}),
          ...(state.removingReplicas.length > 0 ? { removingReplicas: state.removingReplicas } : {}),
        },
        offset: -1,
      });
    }
  }
  // Last: each needs its broker's registration and its partition's current state.
  for (const broker of brokers) {
    if (broker.decommissioned) entries.push({ record: { type: 'BrokerDecommission', brokerId: broker.id, decommissioned: true }, offset: -1 });
    if (broker.logDir !== 'online') entries.push({ record: { type: 'BrokerLogDir', brokerId: broker.id, brokerEpoch: broker.epoch, state: broker.logDir }, offset: -1 });
    for (const replica of image.offlineReplicas(broker.id)) {
      entries.push({ record: { type: 'ReplicaOffline', brokerId: broker.id, brokerEpoch: broker.epoch, topicId: replica.topicId, partition: replica.partition }, offset: -1 });
    }
  }
  return entries;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** A snapshot: a header `{"v":1,"highestOffset":N,"epochs":[...]}` then the canonical records, batch-framed. */
export function encodeImageSnapshot(image: MetadataImage): Uint8Array {
  const entries = imageToSnapshotRecords(image);
  const epochs = entries.filter((entry) => entry.record.type === 'RegisterBroker').map((entry) => entry.offset);
  const header = encoder.encode(JSON.stringify({ v: METADATA_SNAPSHOT_VERSION, highestOffset: image.highestOffset, epochs }));
  return encodeBatch([header, ...entries.map((entry) => encodeRecord(entry.record))]);
}

export function decodeImageSnapshot(data: Uint8Array): MetadataImage {
  if (data.length === 0) return MetadataImage.empty();
  const [header, ...encoded] = decodeBatch(data);
  if (header === undefined) throw new Error('metadata snapshot: no header');
  const parsed = JSON.parse(decoder.decode(header)) as { v?: unknown; highestOffset?: unknown; epochs?: unknown };
  if (parsed.v !== METADATA_SNAPSHOT_VERSION) throw new Error(`metadata snapshot: unsupported version ${JSON.stringify(parsed.v)}`);
  const { highestOffset, epochs } = parsed;
  if (typeof highestOffset !== 'number' || !Array.isArray(epochs) || !epochs.every((epoch) => typeof epoch === 'number')) {
    throw new Error('metadata snapshot: malformed header');
  }
  let broker = 0;
  const entries = encoded.map((bytes) => {
    const record = decodeRecord(bytes);
    if (record.type !== 'RegisterBroker') return { record, offset: -1 };
    const offset = epochs[broker++] as number | undefined;
    if (offset === undefined) throw new Error('metadata snapshot: more registrations than epochs');
    return { record, offset };
  });
  if (broker !== epochs.length) throw new Error('metadata snapshot: fewer registrations than epochs');
  return MetadataImage.fromSnapshotRecords(entries, highestOffset);
}

/** The metadata log applied to a MetadataImage, for RaftHost. */
export class MetadataStateMachine implements StateMachine {
  private current: MetadataImage = MetadataImage.empty();
  private index = 0;
  private readonly listeners = new Set<ImageListener>();

  /** The image of every entry applied so far. */
  get image(): MetadataImage {
    return this.current;
  }

  /** Calls `listener` with every new image (after an entry with records, or a restore). Returns an unsubscribe function. */
  onImage(listener: ImageListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  apply(data: Uint8Array, index: number): MetadataImage {
    this.index = index;
    if (data.length === 0) return this.current;
    const records = decodeRecordBatch(data);
    const previous = this.current;
    // MetadataImage asserts its invariants here: a record computed from another image fails.
    this.current = previous.applyAll(records, previous.highestOffset + 1);
    this.emit(previous, index, records);
    return this.current;
  }

  snapshot(): Uint8Array {
    return encodeImageSnapshot(this.current);
  }

  /** `index` in listener calls after a restore is the last index applied before it (RaftHost does not pass the snapshot's). */
  restore(data: Uint8Array): void {
    const previous = this.current;
    this.current = decodeImageSnapshot(data);
    this.emit(previous, this.index, null);
  }

  private emit(previous: MetadataImage, index: number, records: readonly MetadataRecord[] | null): void {
    for (const listener of this.listeners) listener(this.current, previous, index, records);
  }
}
