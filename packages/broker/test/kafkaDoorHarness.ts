// One broker's Kafka door on real collaborators: a LogManager on a temp dir whose replicas take
// their roles from metadata images through the BrokerMetadataPublisher, the ReplicaManager, a
// GroupCoordinator on __consumer_offsets, the TopicAdmin and the KafkaListener on a free port. The
// controller is the one thing faked: a stand-in that turns CreateTopics and DeleteTopics into
// metadata records and publishes them, as the controller and the metadata log would (and
// CreatePartitions through the real ControllerLogic).
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { BrokerConfig, createLogger, errorCode, type Logger } from '@runnel/common';
import { BrokerSessions, ControllerLogic, MetadataImage, SeededRandom, type MetadataRecord } from '@runnel/controller';
import type { ControllerClient } from '@runnel/controller/quorum';
import { KafkaWireClient } from '@runnel/testkit';
import { ReplicaFetcherManager } from '../src/followerFetcher.js';
import { GroupCoordinatorLocator } from '../src/group/coordinatorLocator.js';
import { GroupCoordinator, OFFSETS_TOPIC } from '../src/group/groupCoordinator.js';
import { ReplicatedOffsetsLog } from '../src/group/replicatedOffsetsLog.js';
import { KafkaListener } from '../src/kafka/kafkaListener.js';
import { KafkaRequestHandler } from '../src/kafka/kafkaRequestHandler.js';
import { LogManager } from '../src/logManager.js';
import { BrokerMetadataPublisher } from '../src/metadataPublisher.js';
import { BrokerMetrics } from '../src/metrics.js';
import { ReplicaManager } from '../src/replicaManager.js';
import { RequestMemoryPool } from '../src/requestMemoryPool.js';
import { TopicAdmin } from '../src/topicAdmin.js';
import { logSettings } from './leaderHarness.js';

export const THIS_BROKER = 1;
/** A second registered broker that leads nothing here unless a test says so. */
export const OTHER_BROKER = 2;
export const CLUSTER_ID = 'kafka-door-test-cluster';
const OFFSETS_PARTITIONS = 3;

interface ControllerTopic {
  readonly name: string;
  readonly numPartitions: number;
  readonly replicationFactor: number;
  readonly configs: ReadonlyArray<{ name: string; value: string }>;
}

export interface KafkaDoorOptions {
  /** Broker config keys over the test defaults. */
  readonly config?: Record<string, string>;
  /** Log settings over the storage tests' small ones. */
  readonly maxRequestBytes?: number;
  /** The other broker's PLAINTEXT port in the metadata (it does not exist). */
  readonly otherBrokerPort?: number;
  /** queued.max.request.bytes (default unlimited). */
  readonly queuedMaxRequestBytes?: number;
}

export class KafkaDoorFixture {
  image = MetadataImage.empty();
  /** Topics created by CreateTopics (or auto-creation), in order: what the controller was asked. */
  readonly created: string[] = [];
  readonly warnings: string[] = [];
  private nextTopic = 1;

  private constructor(
    readonly dir: string,
    readonly logs: LogManager,
    readonly replicas: ReplicaManager,
    readonly coordinator: GroupCoordinator,
    private readonly fetchers: ReplicaFetcherManager,
    private readonly publisher: BrokerMetadataPublisher,
    readonly metrics: BrokerMetrics,
    readonly logger: Logger,
    readonly logLines: string[],
    readonly memory: RequestMemoryPool,
  ) {}

  listener!: KafkaListener;
  port = 0;
  handler!: KafkaRequestHandler;

  static async start(options: KafkaDoorOptions = {}): Promise<KafkaDoorFixture> {
    const dir = fs.mkdtempSync(join(os.tmpdir(), 'runnel-kafka-door-'));
    const logLines: string[] = [];
    // Every log line the door writes, as JSON, for the tests that count them.
    const logger = createLogger({ name: 'test', level: 'info', destination: { write: (line: string) => logLines.push(line) } });
    const metrics = new BrokerMetrics(false);
    const logs = new LogManager({ logDir: dir, defaults: logSettings(), retentionCheckIntervalMs: 3_600_000, logger });
    await logs.start();
    const fetchers = new ReplicaFetcherManager({ brokerId: THIS_BROKER, brokerEpoch: () => 0, partitionMaxBytes: 1 << 20, responseMaxBytes: 1 << 20, maxWaitMs: 100, logger, metrics });
    const publisher = new BrokerMetadataPublisher(THIS_BROKER, logs, fetchers, metrics, logger);
    let fixture: KafkaDoorFixture | undefined;
    const replicas = new ReplicaManager(
      logs,
      {
        partitionExists: (topic, index) => fixture?.image.partition(topic, index) !== undefined,
        leadershipRevoked: () => null,
        alterIsr: () => Promise.resolve({ partitionEpoch: -1 }),
        isrIneligibility: () => null,
      },
      logger,
      metrics,
      { fetchMaxBytes: 10 << 20, replicaLagTimeMaxMs: 30_000 },
    );
    const coordinator = new GroupCoordinator({
      offsetsPartitions: () => OFFSETS_PARTITIONS,
      group: { minSessionTimeoutMs: 100, maxSessionTimeoutMs: 300_000, maxSize: 100, initialRebalanceDelayMs: 0 },
      log: new ReplicatedOffsetsLog(logs, replicas, 5_000),
      logger,
    });
    fixture = new KafkaDoorFixture(dir, logs, replicas, coordinator, fetchers, publisher, metrics, logger, logLines, new RequestMemoryPool(options.queuedMaxRequestBytes ?? -1));
    const config = BrokerConfig.from({
      file: {
        'node.id': String(THIS_BROKER),
        'log.dirs': dir,
        'offsets.topic.num.partitions': String(OFFSETS_PARTITIONS),
        'offsets.topic.replication.factor': '1',
        ...options.config,
      },
    });
    const controller = fixture.controllerStandIn();
    const cluster = {
      clusterId: CLUSTER_ID,
      nodeId: THIS_BROKER,
      autoCreateTopics: config.boolean('auto.create.topics.enable'),
      image: () => fixture!.image,
      controller,
      waitForMetadata: async () => true,
    };
    const topics = new TopicAdmin(cluster, logs, logger);
    const coordinatorLocator = new GroupCoordinatorLocator(
      { ...cluster, offsetsTopicPartitions: OFFSETS_PARTITIONS, offsetsTopicReplicationFactor: 1, offsetsTopicSegmentBytes: config.int('offsets.topic.segment.bytes') },
      coordinator,
      logger,
    );
    fixture.handler = new KafkaRequestHandler({ nodeId: THIS_BROKER, config, topics, logs, replicas, coordinator, coordinatorLocator, logger });
    fixture.listener = new KafkaListener({
      host: '127.0.0.1',
      port: 0,
      maxRequestBytes: options.maxRequestBytes ?? config.int('socket.request.max.bytes'),
      idleTimeoutMs: config.int('connections.max.idle.ms'),
      handler: fixture.handler,
      memory: fixture.memory,
      metrics,
      logger,
    });
    fixture.port = await fixture.listener.listen();
    await fixture.apply([
      ...[THIS_BROKER, OTHER_BROKER].map(
        (id): MetadataRecord => ({
          type: 'RegisterBroker',
          brokerId: id,
          incarnationId: `incarnation-${id}`,
          listeners: [
            { name: 'GRPC', host: '127.0.0.1', port: 1 },
            { name: 'PLAINTEXT', host: '127.0.0.1', port: id === THIS_BROKER ? fixture!.port : (options.otherBrokerPort ?? 2) },
          ],
          rack: null,
        }),
      ),
      { type: 'UnfenceBroker', brokerId: THIS_BROKER, brokerEpoch: 0 },
      { type: 'UnfenceBroker', brokerId: OTHER_BROKER, brokerEpoch: 1 },
    ]);
    return fixture;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  connect(clientId = 'kafka-door-test'): Promise<KafkaWireClient> {
    return KafkaWireClient.connect(this.address, clientId);
  }

  /** Applies metadata records as the metadata log would, and the coordinator follows __consumer_offsets as Node does. */
  async apply(records: readonly MetadataRecord[]): Promise<void> {
    const before = this.image;
    this.image = before.applyAll(records, before.highestOffset + 1);
    await this.publisher.publish(before, this.image, false);
    const led = this.logs.allPartitions().filter((partition) => partition.topic === OFFSETS_TOPIC && partition.isLeader);
    for (const index of this.coordinator.hostedPartitions()) if (!led.some((partition) => partition.index === index)) this.coordinator.resign(index);
    for (const partition of led) await this.coordinator.becomeCoordinator(partition.index, partition.leaderEpoch);
  }

  /** A topic whose partitions this broker leads (or `leader` does) with replicas [leader]. */
  async createTopic(name: string, partitions: number, leader = THIS_BROKER): Promise<string> {
    const topicId = Buffer.alloc(16, this.nextTopic++).toString('base64url');
    await this.apply([
      { type: 'Topic', name, topicId },
      ...Array.from({ length: partitions }, (_, partition): MetadataRecord => ({ type: 'Partition', topicId, partition, replicas: [leader], isr: [leader], leader, leaderEpoch: 0, partitionEpoch: 0 })),
    ]);
    return topicId;
  }

  /** Moves a partition's leadership (and its leader epoch) as the controller would. */
  async moveLeader(topic: string, partition: number, leader: number): Promise<void> {
    const state = this.image.partition(topic, partition)!;
    const { topicId } = state;
    if (state.replicas.includes(leader)) {
      await this.apply([{ type: 'PartitionChange', topicId, partition, leader, isr: [...state.replicas], leaderEpoch: state.leaderEpoch + 1, partitionEpoch: state.partitionEpoch + 1 }]);
      return;
    }
    // A leader from outside the replicas takes the first one's place, as a completed reassignment
    // does: the move starts (the new replica added, the old one being removed), then completes.
    const target = [leader, ...state.replicas.slice(1)];
    const removed = state.replicas[0]!;
    await this.apply([
      {
        type: 'PartitionChange', topicId, partition, leader: state.leader, isr: [...state.isr, leader], leaderEpoch: state.leaderEpoch, partitionEpoch: state.partitionEpoch + 1,
        replicas: [...target, removed], addingReplicas: [leader], removingReplicas: [removed],
      },
      { type: 'PartitionChange', topicId, partition, leader, isr: target, leaderEpoch: state.leaderEpoch + 1, partitionEpoch: state.partitionEpoch + 2, replicas: target, addingReplicas: [], removingReplicas: [] },
    ]);
  }

  /** Log lines (parsed) whose message contains `text`. */
  logged(text: string): Array<{ msg: string; peer?: string; level: number }> {
    return this.logLines.map((line) => JSON.parse(line) as { msg: string; peer?: string; level: number }).filter((line) => line.msg.includes(text));
  }

  async close(): Promise<void> {
    await this.listener.close(1_000);
    this.replicas.stop();
    await this.fetchers.stop();
    await this.logs.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** The part of ControllerClient that TopicAdmin and the coordinator locator call. */
  private controllerStandIn(): ControllerClient {
    const fixture = this;
    const stand = {
      controllerId: THIS_BROKER,
      async createTopics(request: { topics: ControllerTopic[]; validateOnly: boolean }) {
        const results = [];
        const records: MetadataRecord[] = [];
        for (const topic of request.topics) {
          const numPartitions = topic.numPartitions === -1 ? 1 : topic.numPartitions;
          const replicationFactor = topic.replicationFactor === -1 ? 1 : topic.replicationFactor;
          const failed = (name: Parameters<typeof errorCode>[0], message: string) => results.push({ name: topic.name, errorCode: errorCode(name), errorMessage: message, topicId: '', numPartitions: -1, replicationFactor: -1 });
          if (fixture.image.topic(topic.name) !== undefined) failed('TOPIC_ALREADY_EXISTS', `topic '${topic.name}' already exists`);
          else if (!/^[a-zA-Z0-9._-]+$/.test(topic.name)) failed('INVALID_TOPIC_EXCEPTION', `'${topic.name}' is not a valid topic name`);
          else if (numPartitions < 1) failed('INVALID_PARTITIONS', `${numPartitions} partitions`);
          else if (replicationFactor !== 1) failed('INVALID_REPLICATION_FACTOR', `replication factor ${replicationFactor} is larger than the 1 live broker here`);
          else {
            const topicId = Buffer.alloc(16, fixture.nextTopic++).toString('base64url');
            results.push({ name: topic.name, errorCode: 0, errorMessage: '', topicId: request.validateOnly ? '' : topicId, numPartitions, replicationFactor });
            if (request.validateOnly) continue;
            fixture.created.push(topic.name);
            records.push({ type: 'Topic', name: topic.name, topicId });
            for (const config of topic.configs) records.push({ type: 'Config', resourceType: 'topic', resourceName: topic.name, name: config.name, value: config.value });
            for (let partition = 0; partition < numPartitions; partition++) {
              records.push({ type: 'Partition', topicId, partition, replicas: [THIS_BROKER], isr: [THIS_BROKER], leader: THIS_BROKER, leaderEpoch: 0, partitionEpoch: 0 });
            }
          }
        }
        if (records.length > 0) await fixture.apply(records);
        return { errorCode: 0, errorMessage: '', controllerId: THIS_BROKER, topics: results, metadataOffset: fixture.image.highestOffset };
      },
      async createPartitions(request: { topics: Array<{ name: string; count: number; assignments: Array<{ brokerIds: number[] }> }>; validateOnly: boolean }) {
        const logic = new ControllerLogic({ sessions: new BrokerSessions(10_000), random: new SeededRandom(1) });
        const topics = request.topics.map((topic) => ({ ...topic, assignments: topic.assignments.length === 0 ? null : topic.assignments.map((assignment) => assignment.brokerIds) }));
        const result = logic.createPartitions(fixture.image, { topics, validateOnly: request.validateOnly });
        if (result.records.length > 0) await fixture.apply(result.records);
        return { errorCode: 0, errorMessage: '', controllerId: THIS_BROKER, topics: result.response.topics, metadataOffset: fixture.image.highestOffset };
      },
      async incrementalAlterConfigs(request: { resources: Array<{ type: 'broker' | 'cluster'; name: string; ops: Array<{ key: string; op: number; value: string }> }>; validateOnly: boolean }) {
        const logic = new ControllerLogic({ sessions: new BrokerSessions(10_000), random: new SeededRandom(1) });
        const resources = request.resources.map((resource) => ({ ...resource, ops: resource.ops.map((operation) => ({ ...operation, op: operation.op === 0 ? ('set' as const) : ('delete' as const) })) }));
        const result = logic.incrementalAlterConfigs(fixture.image, { resources, validateOnly: request.validateOnly });
        if (result.records.length > 0) await fixture.apply(result.records);
        return { errorCode: 0, errorMessage: '', controllerId: THIS_BROKER, resources: result.response.resources, metadataOffset: fixture.image.highestOffset };
      },
      async deleteTopics(request: { names: string[] }) {
        const results = [];
        const records: MetadataRecord[] = [];
        for (const name of request.names) {
          const topic = fixture.image.topic(name);
          if (topic === undefined) results.push({ name, errorCode: errorCode('UNKNOWN_TOPIC_OR_PARTITION'), errorMessage: `topic '${name}' does not exist` });
          else {
            results.push({ name, errorCode: 0, errorMessage: '' });
            records.push({ type: 'RemoveTopic', topicId: topic.id });
          }
        }
        if (records.length > 0) await fixture.apply(records);
        return { errorCode: 0, errorMessage: '', controllerId: THIS_BROKER, topics: results, metadataOffset: fixture.image.highestOffset };
      },
    };
    return stand as unknown as ControllerClient;
  }
}
