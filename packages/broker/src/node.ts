// One Runnel process: the roles its process.roles names, wired together. A controller runs a
// member of the metadata quorum (QuorumController on Raft) and serves ControllerApi beside Raft on
// the CONTROLLER listener. A broker registers with the active controller and heartbeats
// (BrokerLifecycle), follows the committed metadata log (MetadataFollower) and applies it to its
// replicas (BrokerMetadataPublisher), and serves the gRPC client API and the HTTP endpoint.
import type { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import type { ServerHttp2Session } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { RunnelError, loadClientProto, loadGroupProto, loadReplicationProto, type BrokerConfig, type Logger } from '@runnel/common';
import { ControllerClient, ControllerService, QuorumController, RaftLogMissingError } from '@runnel/controller/quorum';
import { BrokerLifecycle } from './brokerLifecycle.js';
import { ClientApiService } from './clientApi.js';
import { GroupCoordinatorLocator } from './group/coordinatorLocator.js';
import { GroupCoordinator, OFFSETS_TOPIC } from './group/groupCoordinator.js';
import { HighWatermarkClient, groupLags, partitionKey } from './group/groupLag.js';
import { ReplicatedOffsetsLog } from './group/replicatedOffsetsLog.js';
import { GroupApiService } from './groupApi.js';
import { KafkaListener } from './kafka/kafkaListener.js';
import { KafkaRequestHandler } from './kafka/kafkaRequestHandler.js';
import { ReplicaFetcherManager } from './followerFetcher.js';
import { HttpEndpoint, type NodeStatusSource } from './httpEndpoint.js';
import { LogManager } from './logManager.js';
import { metaPropertiesPath, newClusterId, readMetaProperties, writeMetaProperties } from './metaProperties.js';
import { MetadataFollower } from './metadataFollower.js';
import { BrokerMetadataPublisher } from './metadataPublisher.js';
import { BrokerMetrics } from './metrics.js';
import { readiness, type NodeHealthInput, type Readiness } from './nodeHealth.js';
import { isUnderReplicated, type Partition } from './partition.js';
import { ReplicaManager } from './replicaManager.js';
import { ReplicationThrottles } from './replicationQuota.js';
import { RequestMemoryPool } from './requestMemoryPool.js';
import { TopicAdmin } from './topicAdmin.js';

/** How long a graceful stop waits for in-flight calls before it cancels them. */
const SHUTDOWN_GRACE_MS = 5_000;

/** The Raft group of the metadata quorum, named on the wire. */
const METADATA_RAFT_GROUP = '__cluster_metadata';
/** The Raft tick; election timeouts are counted in ticks. */
const RAFT_TICK_MS = 100;
/** One ControllerApi call's budget, retries included: a broker keeps trying on its own schedule. */
const CONTROLLER_CALL_TIMEOUT_MS = 3_000;

/** HTTP/2 receive window per stream and per connection on the gRPC listener. */
const RECEIVE_WINDOW_BYTES = 16 * 1024 * 1024;

/**
 * grpc-js leaves the server's HTTP/2 receive windows at the protocol default of 64 KiB, so a
 * 1 MiB produce request needs a dozen WINDOW_UPDATE round trips; measured here, that halved
 * produce throughput. grpc-js has no server option for it (only the client side has
 * `grpc-node.flow_control_window`), so this sets the stream window in the options grpc-js hands
 * to http2.createServer and the connection window on each new session. Call before bindAsync;
 * call the returned function after it; it reports whether both took effect.
 */
function enlargeReceiveWindows(server: grpc.Server): () => boolean {
  const internals = server as unknown as { commonServerOptions?: { settings?: Record<string, number> }; http2Servers?: Map<EventEmitter, unknown> };
  const streamWindow = internals.commonServerOptions !== undefined;
  if (streamWindow) internals.commonServerOptions!.settings = { ...internals.commonServerOptions!.settings, initialWindowSize: RECEIVE_WINDOW_BYTES };
  return () => {
    if (!(internals.http2Servers instanceof Map) || internals.http2Servers.size === 0) return false;
    for (const http2Server of internals.http2Servers.keys()) {
      http2Server.on('session', (session: ServerHttp2Session) => session.setLocalWindowSize(RECEIVE_WINDOW_BYTES));
    }
    return streamWindow;
  };
}

export interface NodeAddresses {
  /** The PLAINTEXT listener (Kafka clients), when the node is a broker and has one. */
  kafka: { host: string; port: number } | null;
  grpc: { host: string; port: number } | null;
  controller: { host: string; port: number } | null;
  http: { host: string; port: number } | null;
}

/** The broker role's parts, present when process.roles includes broker. */
interface BrokerRole {
  readonly logs: LogManager;
  readonly fetchers: ReplicaFetcherManager;
  readonly controllerClient: ControllerClient;
  readonly follower: MetadataFollower;
  readonly lifecycle: BrokerLifecycle;
  readonly replicas: ReplicaManager;
  readonly publisher: BrokerMetadataPublisher;
}

export interface NodeOptions {
  /**
   * Called once if the controller's Raft member stops for good (a broken invariant, a failed
   * write to the metadata log). The process should exit non-zero: the node cannot go on as a
   * controller, and a supervisor restarting it is the way back.
   */
  readonly onFatal?: (error: Error) => void;
}

export class Node implements NodeStatusSource {
  readonly metrics: BrokerMetrics;
  /** queued.max.request.bytes: the bytes of unanswered requests every client stream shares. */
  readonly requestMemory: RequestMemoryPool;
  private quorum: QuorumController | undefined;
  private controllerService: ControllerService | undefined;
  private broker: BrokerRole | undefined;
  private grpcServer: grpc.Server | undefined;
  private clientApi: ClientApiService | undefined;
  private kafkaListener: KafkaListener | undefined;
  private coordinator: GroupCoordinator | undefined;
  /** Asks other brokers for high watermarks, for the consumer group lag metrics. */
  private highWatermarks: HighWatermarkClient | undefined;
  private offsetsExpiryTimer: NodeJS.Timeout | undefined;
  private http: HttpEndpoint | undefined;
  private grpcPort = 0;
  private replicationPort = 0;
  private kafkaPort = 0;
  private stopping: Promise<void> | undefined;
  /** start() has finished: every role runs. */
  started = false;
  clusterId = '';

  constructor(
    readonly config: BrokerConfig,
    private readonly logger: Logger,
    private readonly options: NodeOptions = {},
  ) {
    this.metrics = new BrokerMetrics();
    this.metrics.onScrape(() => this.refreshMetrics());
    this.requestMemory = new RequestMemoryPool(config.int('queued.max.request.bytes'));
  }

  /**
   * Starts every role. Resolves once the node is useful: a controller's Raft member is running; a
   * broker is registered, unfenced and caught up with the metadata log.
   */
  async start(): Promise<NodeAddresses> {
    // grpc-js prints its own errors to stderr; a node reports failures through its logger and
    // its exit status instead (GRPC_VERBOSITY, when set, still wins).
    if (process.env.GRPC_VERBOSITY === undefined) grpc.setLogVerbosity(grpc.logVerbosity.NONE);
    const config = this.config;
    const roles = config.roles();
    // A server.properties written for Kafka: say once which of its keys do nothing here, and why.
    const ignoredNotice = config.ignoredKafkaKeysNotice();
    if (ignoredNotice !== null) this.logger.warn({ ignoredKafkaKeys: config.ignoredKafkaSettings().map((setting) => setting.key) }, ignoredNotice);
    const derivedNotice = config.derivedListenersNotice();
    if (derivedNotice !== null) this.logger.info(derivedNotice);
    const logDir = config.logDir();
    mkdirSync(logDir, { recursive: true });
    const configuredClusterId = config.string('cluster.id');
    const stored = readMetaProperties(logDir, config.nodeId, configuredClusterId);
    const meta = stored ?? { nodeId: config.nodeId, clusterId: configuredClusterId ?? newClusterId() };
    this.clusterId = meta.clusterId;
    const voters = config.quorumVoters();
    const addresses: NodeAddresses = { kafka: null, grpc: null, controller: null, http: null };

    // First, so that health probes are answered (503, naming why) while the roles start and logs recover.
    const httpListener = config.listener('HTTP');
    if (httpListener !== undefined) {
      this.http = new HttpEndpoint(this.metrics, this);
      try {
        addresses.http = { host: httpListener.host, port: await this.http.listen(httpListener.host, httpListener.port) };
      } catch (error) {
        throw new Error(`cannot listen for HTTP on ${httpListener.host}:${httpListener.port}: ${(error as Error).message}`);
      }
    }
    if (roles.controller) addresses.controller = await this.startController(voters, stored !== undefined);
    // Written after the controller's metadata log exists, so that meta.properties present means
    // "this node ran before, and a controller here had its log" (startController relies on it).
    if (stored === undefined) writeMetaProperties(logDir, meta);
    if (roles.broker) Object.assign(addresses, await this.startBroker(voters));
    this.started = true;
    this.logger.info({ clusterId: this.clusterId, roles, ...addresses }, 'node ready');
    return addresses;
  }

  /**
   * Starts this node's member of the metadata quorum. A node that ran before (`ranBefore`: its
   * meta.properties exists) must find its metadata log: if the directory was wiped, the member
   * lost the votes it cast and the entries it acknowledged, and starting over as a new member
   * could vote twice in a term or help elect a leader that lacks a committed entry. It refuses,
   * unless controller.quorum.new.member says the node joins as a new member. A fresh cluster
   * (every node's first start, no meta.properties anywhere) bootstraps as before.
   * (The rule cannot tell a node whose whole log directory was wiped from a new one.)
   */
  private async startController(voters: ReadonlyMap<number, string>, ranBefore: boolean): Promise<{ host: string; port: number }> {
    const config = this.config;
    const newMember = config.boolean('controller.quorum.new.member');
    const listener = config.listener('CONTROLLER')!;
    const electionTicks = Math.max(3, Math.round(config.int('controller.quorum.election.timeout.ms') / RAFT_TICK_MS));
    const quorum = new QuorumController({
      raft: {
        id: config.nodeId,
        voters,
        group: METADATA_RAFT_GROUP,
        dataDir: config.metadataLogDir(),
        listenHost: listener.host,
        listenPort: listener.port,
        logger: this.logger.child({ role: 'controller' }),
        tickMs: RAFT_TICK_MS,
        electionTicks,
        heartbeatTicks: 1,
        services: (server) => this.controllerService?.addTo(server),
        onFatal: (error) => this.options.onFatal?.(error),
        onCommitLatency: (seconds) => this.metrics.raftCommitLatencySeconds.observe(seconds),
        createIfEmpty: !ranBefore || newMember,
      },
      sessionTimeoutMs: config.int('broker.session.timeout.ms'),
      autoLeaderRebalanceEnable: config.boolean('auto.leader.rebalance.enable'),
      leaderImbalanceCheckIntervalMs: config.int('leader.imbalance.check.interval.seconds') * 1000,
      config: {
        defaultNumPartitions: config.int('num.partitions'),
        defaultReplicationFactor: config.int('default.replication.factor'),
        deleteTopicEnable: config.boolean('delete.topic.enable'),
        uncleanLeaderElectionEnable: config.boolean('unclean.leader.election.enable'),
        leaderImbalancePerBrokerPercentage: config.int('leader.imbalance.per.broker.percentage'),
        autoReplicaRebalanceEnable: config.boolean('auto.replica.rebalance.enable'),
      },
    });
    this.quorum = quorum;
    this.controllerService = new ControllerService(quorum);
    try {
      await quorum.start();
    } catch (error) {
      if (!(error instanceof RaftLogMissingError)) throw error;
      throw new Error(
        `metadata log directory ${config.metadataLogDir()} is empty, but node ${config.nodeId} has run before (${metaPropertiesPath(config.logDir())} exists): ` +
          'its Raft votes and log are lost, and starting over could vote twice in a term. Restore the directory, or start the node once with ' +
          'controller.quorum.new.member=true if it is meant to join the quorum as a new member',
      );
    }
    // Either way the key should go now: left set, it would let a later wipe through unnoticed.
    if (ranBefore && quorum.raft.createdLog) {
      this.logger.warn({ dir: config.metadataLogDir() }, 'started a new, empty metadata log as a new quorum member (controller.quorum.new.member=true); remove the key now');
    } else if (newMember) {
      this.logger.warn('controller.quorum.new.member=true had no effect (this is the first start, or the metadata log exists); remove it, so that a wiped metadata directory is refused');
    }
    this.logger.info({ voters: Object.fromEntries(voters), port: quorum.raft.port }, 'controller quorum member started');
    const { confState } = quorum.raft.membership();
    if (!voters.has(config.nodeId) && confState.voters.length === 0) {
      this.logger.warn(
        { voters: Object.fromEntries(voters) },
        `node ${config.nodeId} is not in controller.quorum.voters: it joins the running quorum with no vote; add it with \`runnel quorum add-voter ${config.nodeId}@${listener.host}:${quorum.raft.port}\``,
      );
    }
    return { host: listener.host, port: quorum.raft.port };
  }

  private async startBroker(voters: ReadonlyMap<number, string>): Promise<Pick<NodeAddresses, 'grpc' | 'kafka'>> {
    const config = this.config;
    const nodeId = config.nodeId;
    // Set below, once they exist: a replica taken offline stops being fetched and is reported at once.
    let replicaOffline = (_partition: Partition | undefined): void => undefined;
    const logs = new LogManager({
      logDir: config.logDir(),
      minFreeBytes: config.int('log.dir.min.free.bytes'),
      defaults: config.logSettings(),
      retentionCheckIntervalMs: config.int('log.retention.check.interval.ms'),
      cleaner: {
        enabled: config.boolean('log.cleaner.enable'),
        backoffMs: config.int('log.cleaner.backoff.ms'),
        dedupeBufferBytes: config.int('log.cleaner.dedupe.buffer.size'),
      },
      logger: this.logger,
      onReplicaOffline: (_replica, partition) => replicaOffline(partition),
      metrics: this.metrics,
    });
    const started = Date.now();
    await logs.start();
    this.logger.info({ logDir: config.logDir(), ms: Date.now() - started }, 'log directory ready');
    const controllerClient = new ControllerClient({
      controllers: voters,
      ...(voters.has(nodeId) ? { initialControllerId: nodeId } : {}),
      callTimeoutMs: CONTROLLER_CALL_TIMEOUT_MS,
      rpcTimeoutMs: Math.min(2_000, config.int('broker.session.timeout.ms')),
    });
    // Set below, once the lifecycle exists: the fetchers send this broker's epoch.
    let brokerEpoch = (): number => -1;
    const throttles = new ReplicationThrottles(nodeId, config);
    const fetchers = new ReplicaFetcherManager({
      throttle: throttles.follower,
      brokerId: nodeId,
      brokerEpoch: () => brokerEpoch(),
      partitionMaxBytes: config.int('replica.fetch.max.bytes'),
      responseMaxBytes: config.int('replica.fetch.response.max.bytes'),
      maxWaitMs: config.int('replica.fetch.wait.max.ms'),
      logger: this.logger.child({ role: 'follower' }),
      metrics: this.metrics,
    });
    const publisher = new BrokerMetadataPublisher(nodeId, logs, fetchers, this.metrics, this.logger);
    // Set once the group coordinator exists (below); metadata applied before that has no groups to move.
    let followOffsetsLeadership = (): void => undefined;
    // A co-located controller is read first: it is on this host and has what this node committed.
    const members = [...voters.keys()].sort((a, b) => (a === nodeId ? -1 : b === nodeId ? 1 : a - b));
    const follower = new MetadataFollower({
      client: controllerClient,
      members,
      publish: async (before, after, snapshot) => {
        await publisher.publish(before, after, snapshot);
        throttles.follow(after);
        // The coordinator follows the leadership of __consumer_offsets (set once the replicas exist).
        followOffsetsLeadership();
      },
      logger: this.logger.child({ role: 'metadata' }),
      onApplyFailure: () => lifecycle.heartbeatNow(),
    });
    const grpcListener = config.listener('GRPC')!;
    const lifecycle = new BrokerLifecycle({
      client: controllerClient,
      brokerId: nodeId,
      // Registration starts after the listener is bound, so a port 0 (tests) is known by then.
      listeners: () => {
        const bound = { GRPC: this.grpcPort, REPLICATION: this.replicationPort, PLAINTEXT: this.kafkaPort };
        const listeners: Array<{ name: string; host: string; port: number }> = [];
        for (const name of ['GRPC', 'REPLICATION', 'PLAINTEXT'] as const) {
          const advertised = config.advertisedListener(name);
          if (advertised !== undefined) listeners.push({ name, host: advertised.host, port: advertised.port === 0 ? bound[name] : advertised.port });
        }
        return listeners;
      },
      rack: config.string('broker.rack'),
      heartbeatIntervalMs: config.int('broker.heartbeat.interval.ms'),
      sessionTimeoutMs: config.int('broker.session.timeout.ms'),
      metadataOffset: () => follower.offset,
      offlineReplicas: () => logs.offlineReplicas(),
      logDirState: () => logs.logDirStatus().state,
      // A broker whose replicas may be in stale roles must lead nothing: being fenced moves its leadership away.
      wantFence: () => follower.applyFailure !== null,
      logger: this.logger.child({ role: 'lifecycle' }),
    });
    brokerEpoch = () => lifecycle.brokerEpoch;
    replicaOffline = (partition) => {
      if (partition !== undefined) fetchers.stopFollowing(partition);
      this.metrics.offlineReplicas.set(logs.offlineReplicas().length);
      lifecycle.heartbeatNow();
    };
    const replicas = new ReplicaManager(
      logs,
      {
        partitionExists: (topic, index) => follower.image.partition(topic, index) !== undefined,
        leadershipRevoked: () => follower.applyFailure ?? lifecycle.leadershipRevoked(),
        alterIsr: async (partition, newIsr) => {
          const role = partition.role;
          const response = await controllerClient.alterPartition({
            brokerId: nodeId,
            brokerEpoch: lifecycle.brokerEpoch,
            partitions: [{ topic: partition.topic, topicId: partition.topicId, partition: partition.index, leaderEpoch: role.leaderEpoch, partitionEpoch: role.partitionEpoch, newIsr: [...newIsr] }],
          });
          const result = response.partitions[0];
          const code = response.errorCode !== 0 ? response.errorCode : (result?.errorCode ?? 0);
          if (code !== 0) throw RunnelError.fromCode(code, `AlterPartition for ${partition.name} refused: ${response.errorMessage || result?.errorMessage}`);
          // The leader acts on the committed ISR: wait until this broker has applied it.
          await follower.waitForOffset(Number(response.metadataOffset), CONTROLLER_CALL_TIMEOUT_MS);
          return { partitionEpoch: result === undefined ? -1 : result.partitionEpoch };
        },
        isrIneligibility: (brokerId, brokerEpoch) => {
          const broker = follower.image.broker(brokerId);
          if (broker === undefined) return `broker ${brokerId} is not registered`;
          if (broker.fenced) return `broker ${brokerId} is fenced`;
          if (brokerEpoch !== -1 && broker.epoch !== brokerEpoch) return `broker ${brokerId} fetched at epoch ${brokerEpoch}, registered at ${broker.epoch}`;
          return null;
        },
      },
      this.logger,
      this.metrics,
      { fetchMaxBytes: config.int('fetch.max.bytes'), replicaLagTimeMaxMs: config.int('replica.lag.time.max.ms'), leaderThrottle: throttles.leader },
    );
    this.broker = { logs, fetchers, controllerClient, follower, lifecycle, replicas, publisher };

    // Consumer groups: this broker coordinates the groups of the __consumer_offsets partitions it leads.
    const offsetsPartitions = (): number => follower.image.topic(OFFSETS_TOPIC)?.partitionCount ?? config.int('offsets.topic.num.partitions');
    const coordinator = new GroupCoordinator({
      offsetsPartitions,
      group: {
        minSessionTimeoutMs: config.int('group.min.session.timeout.ms'),
        maxSessionTimeoutMs: config.int('group.max.session.timeout.ms'),
        maxSize: config.int('group.max.size'),
        initialRebalanceDelayMs: config.int('group.initial.rebalance.delay.ms'),
      },
      log: new ReplicatedOffsetsLog(logs, replicas, config.int('offsets.commit.timeout.ms')),
      logger: this.logger.child({ role: 'group-coordinator' }),
      offsetMetadataBytesMax: config.int('offset.metadata.max.bytes'),
    });
    this.coordinator = coordinator;
    const highWatermarks = new HighWatermarkClient();
    this.highWatermarks = highWatermarks;
    this.metrics.onScrapeGroupLags(() =>
      groupLags({
        committedOffsets: () => coordinator.allCommittedOffsets(),
        leaderOf: (topic, partition) => {
          const leader = follower.image.partition(topic, partition)?.leader ?? -1;
          if (leader < 0) return null;
          if (leader === nodeId) return 'local';
          const listener = follower.image.broker(leader)?.listeners.find((candidate) => candidate.name === 'GRPC');
          return listener === undefined ? null : `${listener.host}:${listener.port}`;
        },
        localHighWatermarks: (partitions) => {
          const marks = new Map<string, number>();
          for (const result of replicas.listOffsets(partitions.map(({ topic, partition }) => ({ topic, partition, timestamp: -1, currentLeaderEpoch: -1 })))) {
            if (result.errorCode === 0) marks.set(partitionKey(result.topic, result.partition), result.offset);
          }
          return marks;
        },
        remoteHighWatermarks: (address, partitions) => highWatermarks.highWatermarks(address, partitions),
      }),
    );
    const retentionMs = config.int('offsets.retention.minutes') * 60_000;
    this.offsetsExpiryTimer = setInterval(() => {
      coordinator.expireOffsets(retentionMs).catch((error: unknown) => this.logger.error({ err: error }, 'expiring committed offsets failed'));
    }, config.int('offsets.retention.check.interval.ms'));
    this.offsetsExpiryTimer.unref();
    followOffsetsLeadership = () => {
      const led = new Map<number, number>();
      for (const partition of logs.allPartitions()) if (partition.topic === OFFSETS_TOPIC && partition.isLeader) led.set(partition.index, partition.leaderEpoch);
      for (const index of coordinator.hostedPartitions()) if (!led.has(index)) coordinator.resign(index);
      for (const [index, epoch] of led) {
        coordinator.becomeCoordinator(index, epoch).catch((error: unknown) => this.logger.error({ err: error, partition: `${OFFSETS_TOPIC}-${index}` }, 'cannot coordinate the groups of this partition'));
      }
    };
    const coordinatorLocator = new GroupCoordinatorLocator(
      {
        image: () => follower.image,
        controller: controllerClient,
        waitForMetadata: (offset, timeoutMs) => follower.waitForOffset(offset, timeoutMs),
        offsetsTopicPartitions: config.int('offsets.topic.num.partitions'),
        offsetsTopicReplicationFactor: config.int('offsets.topic.replication.factor'),
        offsetsTopicSegmentBytes: config.int('offsets.topic.segment.bytes'),
      },
      coordinator,
      this.logger,
    );
    const groupService = new GroupApiService(coordinatorLocator, coordinator, this.metrics, this.logger);

    // Both doors act through the same objects: one behaviour, two doors.
    const topics = new TopicAdmin(
      {
        clusterId: this.clusterId,
        nodeId,
        autoCreateTopics: config.boolean('auto.create.topics.enable'),
        image: () => follower.image,
        controller: controllerClient,
        waitForMetadata: (offset, timeoutMs) => follower.waitForOffset(offset, timeoutMs),
      },
      logs,
      this.logger,
    );
    const service = new ClientApiService(
      topics,
      logs,
      replicas,
      this.metrics,
      this.logger,
      this.requestMemory,
    );
    const server = new grpc.Server({
      'grpc.max_receive_message_length': config.int('socket.request.max.bytes'),
      'grpc.max_send_message_length': config.int('fetch.max.bytes') + 1024 * 1024,
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.http2.min_ping_interval_without_data_ms': 5_000,
    });
    this.clientApi = service;
    const largeWindows = enlargeReceiveWindows(server);
    server.addService(loadClientProto().runnel.v1.ClientApi.service, service.handlers());
    server.addService(loadReplicationProto().runnel.v1.ReplicationApi.service, service.replicationHandlers());
    server.addService(loadGroupProto().runnel.v1.GroupApi.service, groupService.handlers());
    const grpcPort = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`${grpcListener.host}:${grpcListener.port}`, grpc.ServerCredentials.createInsecure(), (error, port) =>
        error === null ? resolve(port) : reject(new Error(`cannot listen for gRPC on ${grpcListener.host}:${grpcListener.port}: ${error.message}`)),
      );
    });
    this.grpcServer = server;
    // Inter-broker traffic may have a listener of its own (the same service, another port).
    const replicationListener = config.listener('REPLICATION');
    if (replicationListener !== undefined) {
      this.replicationPort = await new Promise<number>((resolve, reject) => {
        server.bindAsync(`${replicationListener.host}:${replicationListener.port}`, grpc.ServerCredentials.createInsecure(), (error, port) =>
          error === null ? resolve(port) : reject(new Error(`cannot listen for REPLICATION on ${replicationListener.host}:${replicationListener.port}: ${error.message}`)),
        );
      });
    }
    if (!largeWindows()) this.logger.warn('could not enlarge HTTP/2 receive windows: produce throughput will be limited by flow control');
    this.grpcPort = grpcPort;

    // The Kafka door: bound before registration, so the metadata carries its port.
    const kafkaListenerConfig = config.listener('PLAINTEXT');
    if (kafkaListenerConfig !== undefined) {
      const handler = new KafkaRequestHandler({ nodeId, config, topics, logs, replicas, coordinator, coordinatorLocator, logger: this.logger.child({ listener: 'PLAINTEXT' }) });
      this.kafkaListener = new KafkaListener({
        host: kafkaListenerConfig.host,
        port: kafkaListenerConfig.port,
        maxRequestBytes: config.int('socket.request.max.bytes'),
        idleTimeoutMs: config.int('connections.max.idle.ms'),
        handler,
        memory: this.requestMemory,
        metrics: this.metrics,
        logger: this.logger.child({ listener: 'PLAINTEXT' }),
      });
      this.kafkaPort = await this.kafkaListener.listen();
    }

    follower.start();
    replicas.start();
    await lifecycle.start();
    // Caught up with what the controller had when it unfenced this broker: the image is current,
    // so partition directories it does not assign here are strays (a topic deleted while this
    // broker was down); they are set aside, not deleted.
    await follower.waitForOffset(lifecycle.catchUpTarget, CONTROLLER_CALL_TIMEOUT_MS);
    if (follower.offset >= lifecycle.catchUpTarget) logs.setAsideStrayDirectories(publisher.assignedReplicas(follower.image));

    return {
      grpc: { host: grpcListener.host, port: grpcPort },
      kafka: kafkaListenerConfig === undefined ? null : { host: kafkaListenerConfig.host, port: this.kafkaPort },
    };
  }

  /**
   * Sets the gauges that read the node's state, at scrape time: per-partition series are rebuilt
   * from the replicas hosted now, so a partition that left this node leaves the metrics with it.
   */
  private refreshMetrics(): void {
    const metrics = this.metrics;
    metrics.requestMemoryPeakBytes.set(this.requestMemory.peakBytes);
    const quorum = this.quorum;
    if (quorum !== undefined) {
      const status = quorum.raft.status();
      const active = status.leader === this.config.nodeId && quorum.isActive;
      metrics.activeController.set(active ? 1 : 0);
      metrics.raftTerm.set(status.term);
      metrics.raftCommitIndex.set(status.commit);
      let offline = 0;
      if (active) for (const topic of quorum.image.topics()) for (const state of topic.partitions()) if (state.leader === -1) offline++;
      metrics.offlinePartitions.set(offline);
    }
    const broker = this.broker;
    if (broker === undefined) return;
    metrics.partitionLogSizeBytes.reset();
    metrics.followerLagOffsets.reset();
    let led = 0;
    let underReplicated = 0;
    let underMinIsr = 0;
    let totalBytes = 0;
    const partitions = broker.logs.allPartitions();
    for (const partition of partitions) {
      const labels = { topic: partition.topic, partition: String(partition.index) };
      const bytes = partition.log.sizeInBytes;
      totalBytes += bytes;
      metrics.partitionLogSizeBytes.set(labels, bytes);
      if (!partition.isLeader) continue;
      led++;
      if (isUnderReplicated(partition.role)) underReplicated++;
      if (partition.role.isr.length < partition.minInsyncReplicas) underMinIsr++;
      const logEnd = partition.log.logEndOffset;
      for (const [replica, follower] of partition.followers) {
        if (follower.logEndOffset >= 0) metrics.followerLagOffsets.set({ ...labels, replica: String(replica) }, Math.max(0, logEnd - follower.logEndOffset));
      }
    }
    metrics.logSizeBytes.set(totalBytes);
    metrics.partitions.set(partitions.length);
    metrics.leaderPartitions.set(led);
    metrics.underReplicatedPartitions.set(underReplicated);
    metrics.underMinIsrPartitions.set(underMinIsr);
    metrics.offlineReplicas.set(broker.logs.offlineReplicas().length);
    const logDir = broker.logs.logDirStatus();
    metrics.diskFreeBytes.set(logDir.freeBytes);
    metrics.diskTotalBytes.set(logDir.totalBytes);
    metrics.diskFreeSpaceAlert.set(logDir.minFreeBytes > 0 && logDir.freeBytes >= 0 && logDir.freeBytes < logDir.minFreeBytes ? 1 : 0);
    metrics.offlineLogDirs.set(logDir.state === 'offline' ? 1 : 0);
    metrics.forgetTopicsExcept(new Set([...partitions.map((partition) => partition.topic), ...broker.logs.offlineReplicas().map((replica) => replica.topic)]));
  }

  /** The state readiness is judged on (see nodeHealth.ts). */
  healthInput(): NodeHealthInput {
    const broker = this.broker;
    return {
      started: this.started,
      stopping: this.stopping !== undefined,
      controller: this.quorum === undefined ? null : { leaderId: this.quorum.leaderId },
      broker:
        broker === undefined
          ? null
          : {
              recovery: broker.publisher.recovery,
              brokerEpoch: broker.lifecycle.brokerEpoch,
              fenced: broker.lifecycle.isFenced,
              leadershipRevoked: broker.lifecycle.leadershipRevoked(),
              metadataApplyFailure: broker.follower.applyFailure,
              metadataOffset: broker.follower.offset,
              metadataBehind: broker.lifecycle.metadataBehind(),
              metadataLagMaxMs: this.config.int('broker.session.timeout.ms'),
              shuttingDown: broker.lifecycle.isShuttingDown,
              logDir: broker.logs.logDirStatus(),
            },
    };
  }

  readiness(): Readiness {
    return readiness(this.healthInput());
  }

  /** GET /v1/broker: what this node is doing, for operators and scripts. */
  describe(): object {
    const input = this.healthInput();
    const { ready, reasons } = readiness(input);
    const broker = this.broker;
    const quorum = this.quorum;
    const partitions = broker?.logs.allPartitions() ?? [];
    const names = (selected: Partition[]) => selected.map((partition) => partition.name).sort();
    return {
      nodeId: this.config.nodeId,
      clusterId: this.clusterId,
      roles: this.config.roles(),
      state: nodeState(input),
      ready,
      reasons,
      controller: quorum === undefined ? null : { leaderId: quorum.leaderId, active: quorum.leaderId === this.config.nodeId && quorum.isActive, term: quorum.raft.status().term },
      broker:
        broker === undefined || input.broker === null
          ? null
          : {
              brokerEpoch: input.broker.brokerEpoch,
              fenced: input.broker.fenced,
              metadataOffset: input.broker.metadataOffset,
              metadataBehind: input.broker.metadataBehind,
              recovery: input.broker.recovery,
              logDir: input.broker.logDir,
              partitions: {
                leader: names(partitions.filter((partition) => partition.isLeader)),
                follower: names(partitions.filter((partition) => !partition.isLeader)),
                offline: broker.logs.offlineReplicas().map((replica) => ({ partition: `${replica.topic}-${replica.partition}`, reason: replica.reason })),
              },
            },
    };
  }

  /**
   * Stops every role. A broker first asks the controller to move its leadership away (controlled
   * shutdown, bounded by controlled.shutdown.timeout.ms), then lets in-flight requests finish
   * (bounded), flushes and closes its logs; a controller hands Raft leadership over before it goes.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    this.logger.info('node stopping');
    clearInterval(this.offsetsExpiryTimer);
    const broker = this.broker;
    if (broker !== undefined && this.config.boolean('controlled.shutdown.enable') && broker.lifecycle.brokerEpoch !== -1) {
      await broker.lifecycle.controlledShutdown(this.config.int('controlled.shutdown.timeout.ms'));
    }
    // Members waiting for a join or sync answer hear COORDINATOR_NOT_AVAILABLE and look for the new coordinator.
    for (const partition of this.coordinator?.hostedPartitions() ?? []) this.coordinator!.resign(partition);
    const server = this.grpcServer;
    const kafkaClosed = this.kafkaListener?.close(SHUTDOWN_GRACE_MS);
    if (server !== undefined) {
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, SHUTDOWN_GRACE_MS);
        this.clientApi?.drainStreams();
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
    }
    await kafkaClosed;
    if (broker !== undefined) {
      broker.replicas.stop();
      await broker.fetchers.stop();
      broker.lifecycle.stop();
      broker.follower.stop();
      broker.controllerClient.close();
      this.highWatermarks?.close();
      await broker.logs.stop();
    }
    await this.http?.close();
    if (this.quorum !== undefined) {
      this.controllerService?.close();
      await this.quorum.stop();
    }
    this.logger.info('node stopped');
  }
}

/** One word for what the node is doing, the first that applies. */
function nodeState(input: NodeHealthInput): string {
  const broker = input.broker;
  if (input.stopping || broker?.shuttingDown === true) return 'stopping';
  if (broker !== null) {
    if (!broker.recovery.done) return 'recovering';
    if (broker.brokerEpoch === -1) return 'registering';
    if (broker.fenced) return 'fenced';
    if (broker.leadershipRevoked !== null || broker.metadataBehind !== null) return 'catching-up';
  } else if (input.controller !== null && input.controller.leaderId === -1) {
    return 'electing';
  }
  return input.started ? 'running' : 'starting';
}
