// ControllerApi (controllerService.ts) on three QuorumControllers in this process, each with its own
// gRPC server on a free port, driven through ControllerClient: redirection from a standby,
// registration and heartbeats, topic creation, FetchMetadata from a standby (snapshot, then
// updates; resuming without a snapshot), malformed requests, and failover to a new controller.
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, type ClientApi as Pb } from '@runnel/common';
import { MetadataImage, SeededRandom } from '../src/index.js';
import {
  ControllerClient,
  ControllerService,
  MetadataStateMachine,
  QuorumController,
  applyMetadataUpdate,
  encodeRecordBatch,
  serveController,
} from '../src/quorum/index.js';
import { canonicalImage } from '../src/sim/index.js';
import { freePort, sleep, until } from './async.js';

const logger = createLogger({ name: 'controller-service-test', level: 'silent' });
const TICK_MS = 20;


interface Member {
  readonly controller: QuorumController;
  readonly stop: () => Promise<void>;
}

/** Follows one FetchMetadata stream, applying every update to its own image. */
class Follower {
  readonly updates: Pb.MetadataUpdate__Output[] = [];
  error: grpc.ServiceError | undefined;

  constructor(
    readonly stream: grpc.ClientReadableStream<Pb.MetadataUpdate__Output>,
    public image: MetadataImage = MetadataImage.empty(),
  ) {
    stream.on('data', (update: Pb.MetadataUpdate__Output) => {
      this.updates.push(update);
      this.image = applyMetadataUpdate(this.image, update);
    });
    stream.on('error', (error: grpc.ServiceError) => {
      this.error = error;
    });
  }

  close(): void {
    this.stream.cancel();
  }
}

describe('ControllerApi over gRPC on three QuorumControllers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'controller-service-'));
  const members = new Map<number, Member>();
  const apiAddresses = new Map<number, string>();
  let client: ControllerClient;
  const followers: Follower[] = [];
  const epochs = new Map<number, number>();

  const active = (): QuorumController | undefined => {
    const list = [...members.values()].filter((member) => member.controller.isActive);
    return list.length === 1 ? list[0]!.controller : undefined;
  };

  beforeAll(async () => {
    const raftPorts = [await freePort(), await freePort(), await freePort()];
    const voters = new Map(raftPorts.map((port, k) => [k + 1, `127.0.0.1:${port}`]));
    await Promise.all(
      [1, 2, 3].map(async (id) => {
        const controller = new QuorumController({
          raft: { id, voters, group: 'metadata', dataDir: join(dir, `node-${id}`), listenHost: '127.0.0.1', listenPort: raftPorts[id - 1]!, logger, tickMs: TICK_MS },
          // Long sessions: the brokers here heartbeat only when the test says so.
          sessionTimeoutMs: 30_000,
          sessionCheckIntervalMs: 200,
          random: new SeededRandom(id),
          config: { defaultReplicationFactor: 3 },
        });
        await controller.start();
        const served = await serveController(controller, { host: '127.0.0.1', port: 0 });
        apiAddresses.set(id, `127.0.0.1:${served.port}`);
        members.set(id, {
          controller,
          stop: async () => {
            await served.stop();
            await controller.stop();
          },
        });
      }),
    );
  });

  afterAll(async () => {
    for (const follower of followers) follower.close();
    client?.close();
    await Promise.all([...members.values()].map((member) => member.stop()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('follows NOT_CONTROLLER from a standby to the active controller and registers brokers', async () => {
    const leader = await until('an active controller', active);
    const standby = [1, 2, 3].find((id) => id !== leader.id)!;
    await until('the standby knows the leader', () => members.get(standby)!.controller.leaderId === leader.id);
    client = new ControllerClient({ controllers: apiAddresses, initialControllerId: standby });

    // The standby itself answers NOT_CONTROLLER with the leader's id.
    const direct = await new Promise<Pb.ControllerCreateTopicsResponse__Output>((resolve, reject) =>
      client.client(standby).createTopics({ topics: [{ name: 'nope', numPartitions: 1, replicationFactor: 1 }] }, (error, value) => (error ? reject(error) : resolve(value!))),
    );
    expect(direct.errorCode).toBe(41);
    expect(direct.controllerId).toBe(leader.id);
    expect(direct.topics).toEqual([]);

    for (const brokerId of [101, 102, 103]) {
      const response = await client.registerBroker({
        brokerId,
        incarnationId: `broker-${brokerId}-a`,
        listeners: [{ name: 'PLAINTEXT', host: '127.0.0.1', port: 9000 + brokerId }],
      });
      expect(response.errorCode).toBe(0);
      expect(response.brokerEpoch).toBeGreaterThanOrEqual(0);
      expect(response.controllerId).toBe(leader.id);
      epochs.set(brokerId, response.brokerEpoch);
    }
    expect(client.controllerId).toBe(leader.id);
    expect(new Set(epochs.values()).size).toBe(3);
  });

  it('unfences brokers through heartbeats', async () => {
    const leader = await until('an active controller', active);
    await until('registrations applied', () => leader.image.brokers().length === 3);
    for (const [brokerId, brokerEpoch] of epochs) {
      const response = await client.brokerHeartbeat({ brokerId, brokerEpoch, currentMetadataOffset: leader.image.highestOffset });
      expect(response.errorCode).toBe(0);
    }
    await until('brokers unfenced', () => leader.image.brokers().every((broker) => !broker.fenced));
    const again = await client.brokerHeartbeat({ brokerId: 101, brokerEpoch: epochs.get(101)!, currentMetadataOffset: leader.image.highestOffset });
    expect(again).toMatchObject({ errorCode: 0, isFenced: false, isCaughtUp: true, shouldShutDown: false });
    // A stale broker epoch is an answer, not a failure.
    const stale = await client.brokerHeartbeat({ brokerId: 101, brokerEpoch: epochs.get(101)! + 1000, currentMetadataOffset: 0 });
    expect(stale.errorCode).not.toBe(0);
    expect(stale.errorCode).not.toBe(41);
  });

  it('streams metadata from a standby: the snapshot, then the records of a topic created afterwards', async () => {
    const leader = await until('an active controller', active);
    const standbyId = [1, 2, 3].find((id) => id !== leader.id)!;
    const standby = members.get(standbyId)!.controller;
    await until('the standby applied the brokers', () => standby.image.brokers().filter((broker) => !broker.fenced).length === 3);
    const follower = new Follower(client.fetchMetadata(0, standbyId));
    followers.push(follower);
    await until('the snapshot', () => follower.updates.length >= 1);
    const snapshot = follower.updates[0]!;
    expect(snapshot.snapshot).toBe(true);
    expect(snapshot.servedBy).toBe(standbyId);
    expect(follower.image.brokers().map((broker) => broker.id)).toEqual([101, 102, 103]);
    const snapshotOffset = snapshot.offset;

    const created = await client.createTopics({ topics: [{ name: 'orders', numPartitions: 3, replicationFactor: 3 }] });
    expect(created.errorCode).toBe(0);
    expect(created.topics).toHaveLength(1);
    expect(created.topics[0]).toMatchObject({ name: 'orders', errorCode: 0, numPartitions: 3, replicationFactor: 3 });
    expect(created.topics[0]!.topicId).not.toBe('');

    await until('the follower sees the topic', () => follower.image.topic('orders')?.partitionCount === 3);
    const later = follower.updates.slice(1);
    expect(later.length).toBeGreaterThan(0);
    expect(later.every((update) => !update.snapshot)).toBe(true);
    let expected = snapshotOffset + 1;
    for (const update of later) {
      expect(update.records[0]!.offset).toBe(expected);
      expected = update.offset + 1;
      expect(update.records[update.records.length - 1]!.offset).toBe(update.offset);
    }
    await until('the follower matches the standby', () => canonicalImage(follower.image) === canonicalImage(standby.image));

    // Resuming from an offset it still holds replays only the missing records, without a snapshot.
    const resumed = new Follower(client.fetchMetadata(snapshotOffset + 1, standbyId), applyMetadataUpdate(MetadataImage.empty(), snapshot));
    followers.push(resumed);
    await until('the replay', () => resumed.updates.length >= 1);
    expect(resumed.updates[0]!.snapshot).toBe(false);
    expect(resumed.updates[0]!.records[0]!.offset).toBe(snapshotOffset + 1);
    await until('the resumed follower matches the standby', () => canonicalImage(resumed.image) === canonicalImage(standby.image));
    expect(follower.error).toBeUndefined();
  });

  it('answers malformed requests with INVALID_REQUEST and keeps serving', async () => {
    const leader = await until('an active controller', active);
    const raw = client.client(leader.id);
    const call = <T>(invoke: (callback: grpc.requestCallback<T>) => void): Promise<T> =>
      new Promise((resolve, reject) => invoke((error, value) => (error ? reject(error) : resolve(value!))));

    const badRegistration = await call<Pb.RegisterBrokerResponse__Output>((callback) =>
      raw.registerBroker({ brokerId: -7, incarnationId: '', listeners: [] }, callback),
    );
    expect(badRegistration.errorCode).toBe(42);
    expect(badRegistration.errorMessage).toMatch(/broker_id/);
    const badListener = await call<Pb.RegisterBrokerResponse__Output>((callback) =>
      raw.registerBroker({ brokerId: 7, incarnationId: 'x', listeners: [{ name: 'P', host: '', port: 0 }] }, callback),
    );
    expect(badListener.errorCode).toBe(42);
    const badTopics = await call<Pb.ControllerCreateTopicsResponse__Output>((callback) =>
      raw.createTopics({ topics: [{ name: 'x', numPartitions: -5, replicationFactor: 1, configs: [{ name: 'a', value: '1' }, { name: 'a', value: '2' }] }] }, callback),
    );
    expect(badTopics.errorCode).toBe(42);
    const badIsr = await call<Pb.AlterPartitionResponse__Output>((callback) =>
      raw.alterPartition({ brokerId: 101, brokerEpoch: 0, partitions: [{ topic: 'orders', partition: -1, newIsr: [] }] }, callback),
    );
    expect(badIsr.errorCode).toBe(42);
    // A request the controller itself rejects per topic is an answer with per-item codes.
    const duplicate = await client.createTopics({ topics: [{ name: 'orders', numPartitions: 1, replicationFactor: 1 }] });
    expect(duplicate.errorCode).toBe(0);
    expect(duplicate.topics[0]!.errorCode).toBe(36);

    const heartbeat = await client.brokerHeartbeat({ brokerId: 102, brokerEpoch: epochs.get(102)!, currentMetadataOffset: leader.image.highestOffset });
    expect(heartbeat.errorCode).toBe(0);
    const elected = await client.electLeaders();
    expect(elected.errorCode).toBe(0);
    expect(elected.moved).toEqual([]);
  });

  it('grows a topic through any member (answered once committed); a count that is not an increase is a per-topic INVALID_PARTITIONS', async () => {
    const leader = await until('an active controller', active);
    const standbyId = [1, 2, 3].find((id) => id !== leader.id)!;
    // Sent to a standby: the client follows NOT_CONTROLLER to the active controller.
    client.controllerId = standbyId;
    const grown = await client.createPartitions({ topics: [{ name: 'orders', count: 5 }] });
    expect(grown).toMatchObject({ errorCode: 0, topics: [{ name: 'orders', errorCode: 0, errorMessage: '' }] });
    expect(leader.image.highestOffset).toBeGreaterThanOrEqual(Number(grown.metadataOffset));
    expect(leader.image.topic('orders')!.partitionCount).toBe(5);
    const assigned = await client.createPartitions({ topics: [{ name: 'orders', count: 6, assignments: [{ brokerIds: [103, 101, 102] }] }] });
    expect(assigned.topics[0]!.errorCode).toBe(0);
    expect(leader.image.partition('orders', 5)).toMatchObject({ replicas: [103, 101, 102], leader: 103 });
    const refused = await client.createPartitions({ topics: [{ name: 'orders', count: 2 }, { name: 'orders-missing', count: 2 }], validateOnly: true });
    expect(refused.errorCode).toBe(0);
    expect(refused.topics.map((topic) => [topic.name, topic.errorCode])).toEqual([
      ['orders', 37],
      ['orders-missing', 3],
    ]);
    expect(refused.topics[0]!.errorMessage).toMatch(/currently has 6 partition\(s\); 2 would not be an increase/);
  });

  it('finds the new active controller after the active one stops', async () => {
    const old = await until('an active controller', active);
    expect(client.controllerId).toBe(old.id);
    const stopping = members.get(old.id)!;
    members.delete(old.id);
    await stopping.stop();

    const created = await client.createTopics({ topics: [{ name: 'after-failover', numPartitions: 2, replicationFactor: 3 }] });
    expect(created.errorCode).toBe(0);
    expect(created.topics[0]!.errorCode).toBe(0);
    expect(client.controllerId).not.toBe(old.id);
    expect(members.has(client.controllerId)).toBe(true);
    expect(created.controllerId).toBe(client.controllerId);

    // The standby stream (if its member still runs) sees the new topic too.
    const live = followers.filter((follower) => follower.updates[0]!.servedBy !== old.id);
    for (const follower of live) {
      await until('the follower sees the new topic', () => follower.image.topic('after-failover')?.partitionCount === 2);
    }
  });
});

describe('ControllerService FetchMetadata bounds', () => {
  /** A stand-in for grpc's server stream that never drains. */
  class StuckCall extends EventEmitter {
    readonly written: Pb.MetadataUpdate[] = [];
    status: { code: number; details: string } | undefined;
    ended = false;
    constructor(readonly request: { fromOffset: number }) {
      super();
      this.on('error', (error: { code: number; details: string }) => {
        this.status = error;
        this.ended = true;
      });
    }
    get writableLength(): number {
      return this.written.length;
    }
    write(update: Pb.MetadataUpdate): boolean {
      this.written.push(update);
      return false;
    }
    end(): void {
      this.ended = true;
    }
  }

  const register = (brokerId: number): Uint8Array =>
    encodeRecordBatch([{ type: 'RegisterBroker', brokerId, incarnationId: `i-${brokerId}`, listeners: [{ name: 'P', host: 'h', port: 1 }], rack: null }]);

  it('ends a stream that falls too far behind instead of buffering, and replays from its buffer', () => {
    const stateMachine = new MetadataStateMachine();
    const controller = { id: 7, leaderId: -1, stateMachine, get image() { return stateMachine.image; } } as unknown as QuorumController;
    const service = new ControllerService(controller, { maxPendingUpdates: 3, replayRecords: 4 });
    const handlers = service.handlers();
    const stuck = new StuckCall({ fromOffset: 0 });
    handlers.FetchMetadata(stuck as never);
    expect(stuck.written).toHaveLength(1);
    expect(stuck.written[0]!.snapshot).toBe(true);
    for (let id = 1; id <= 6; id++) stateMachine.apply(register(id), id);
    expect(stuck.written).toHaveLength(3);
    expect(stuck.ended).toBe(true);
    expect(stuck.status?.code).toBe(8); // RESOURCE_EXHAUSTED
    expect(service.streams).toBe(0);

    // Offsets 0..5 applied; the buffer holds the last 4 (2..5): 3 replays, 1 is too old (snapshot).
    const resumed = new StuckCall({ fromOffset: 3 });
    handlers.FetchMetadata(resumed as never);
    expect(resumed.written[0]).toMatchObject({ snapshot: false, offset: 5 });
    expect(resumed.written[0]!.records!.map((record) => record.offset)).toEqual([3, 4, 5]);
    const old = new StuckCall({ fromOffset: 1 });
    handlers.FetchMetadata(old as never);
    expect(old.written[0]).toMatchObject({ snapshot: true, offset: 5 });
    expect(old.written[0]!.records).toHaveLength(6);
    const invalid = new StuckCall({ fromOffset: -3 });
    handlers.FetchMetadata(invalid as never);
    expect(invalid.status?.code).toBe(3); // INVALID_ARGUMENT
    service.close();
    expect(resumed.ended && old.ended).toBe(true);
  });
});
