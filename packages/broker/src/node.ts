// One Runnel process: reads its configuration, opens its logs, and serves the gRPC client API
// and the HTTP endpoint. Later roles (controller, follower replication) are wired in here too.
import type { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import type { ServerHttp2Session } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { loadClientProto, type BrokerConfig, type Logger } from '@runnel/common';
import { ClientApiService } from './clientApi.js';
import { HttpEndpoint } from './httpEndpoint.js';
import { LogManager } from './logManager.js';
import { loadOrCreateMetaProperties } from './metaProperties.js';
import { BrokerMetrics } from './metrics.js';
import { ReplicaManager } from './replicaManager.js';

/** How long a graceful stop waits for in-flight calls before it cancels them. */
const SHUTDOWN_GRACE_MS = 5_000;

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
  grpc: { host: string; port: number };
  http: { host: string; port: number } | null;
}

export class Node {
  readonly metrics: BrokerMetrics;
  private readonly logs: LogManager;
  private readonly replicas: ReplicaManager;
  private grpcServer: grpc.Server | undefined;
  private clientApi: ClientApiService | undefined;
  private http: HttpEndpoint | undefined;
  private sizeTimer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;
  clusterId = '';

  constructor(
    readonly config: BrokerConfig,
    private readonly logger: Logger,
  ) {
    this.metrics = new BrokerMetrics();
    this.logs = new LogManager({
      logDir: config.logDir(),
      defaults: config.logSettings(),
      retentionCheckIntervalMs: config.int('log.retention.check.interval.ms'),
      logger,
    });
    this.replicas = new ReplicaManager(this.logs, logger, this.metrics, config.int('fetch.max.bytes'));
  }

  get logManager(): LogManager {
    return this.logs;
  }

  /** Opens the logs (recovering them after a crash) and starts listening. Returns the bound addresses. */
  async start(): Promise<NodeAddresses> {
    // grpc-js prints its own errors to stderr; a node reports failures through its logger and
    // its exit status instead (GRPC_VERBOSITY, when set, still wins).
    if (process.env.GRPC_VERBOSITY === undefined) grpc.setLogVerbosity(grpc.logVerbosity.NONE);
    const logDir = this.config.logDir();
    mkdirSync(logDir, { recursive: true });
    this.clusterId = loadOrCreateMetaProperties(logDir, this.config.nodeId).clusterId;
    const started = Date.now();
    await this.logs.start();
    this.logger.info({ logDir, partitions: this.logs.allPartitions().length, ms: Date.now() - started }, 'logs loaded');

    const grpcListener = this.config.listener('GRPC')!;
    const advertised = this.config.advertisedListeners().find((listener) => listener.name === 'GRPC')!;
    const service = new ClientApiService(
      {
        clusterId: this.clusterId,
        nodeId: this.config.nodeId,
        host: advertised.host,
        port: advertised.port,
        rack: this.config.string('broker.rack'),
        liveBrokers: () => 1,
        defaultPartitions: this.config.int('num.partitions'),
        defaultReplicationFactor: this.config.int('default.replication.factor'),
        autoCreateTopics: this.config.boolean('auto.create.topics.enable'),
        deleteTopicEnable: this.config.boolean('delete.topic.enable'),
      },
      this.logs,
      this.replicas,
      this.metrics,
      this.logger,
    );
    const server = new grpc.Server({
      'grpc.max_receive_message_length': this.config.int('socket.request.max.bytes'),
      'grpc.max_send_message_length': this.config.int('fetch.max.bytes') + 1024 * 1024,
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.http2.min_ping_interval_without_data_ms': 5_000,
    });
    this.clientApi = service;
    const largeWindows = enlargeReceiveWindows(server);
    server.addService(loadClientProto().runnel.v1.ClientApi.service, service.handlers());
    const grpcPort = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`${grpcListener.host}:${grpcListener.port}`, grpc.ServerCredentials.createInsecure(), (error, port) =>
        error === null ? resolve(port) : reject(new Error(`cannot listen for gRPC on ${grpcListener.host}:${grpcListener.port}: ${error.message}`)),
      );
    });
    this.grpcServer = server;
    if (!largeWindows()) this.logger.warn('could not enlarge HTTP/2 receive windows: produce throughput will be limited by flow control');

    let http: NodeAddresses['http'] = null;
    const httpListener = this.config.listener('HTTP');
    if (httpListener !== undefined) {
      this.http = new HttpEndpoint(this.metrics.registry);
      try {
        http = { host: httpListener.host, port: await this.http.listen(httpListener.host, httpListener.port) };
      } catch (error) {
        throw new Error(`cannot listen for HTTP on ${httpListener.host}:${httpListener.port}: ${(error as Error).message}`);
      }
      this.http.markReady();
    }
    this.metrics.partitions.set(this.logs.allPartitions().length);
    this.sizeTimer = setInterval(() => {
      this.metrics.logSizeBytes.set(this.logs.allPartitions().reduce((sum, partition) => sum + partition.log.sizeInBytes, 0));
    }, 5_000);
    this.sizeTimer.unref();
    const addresses = { grpc: { host: grpcListener.host, port: grpcPort }, http };
    this.logger.info({ clusterId: this.clusterId, ...addresses }, "node ready");
    return addresses;
  }

  /** Stops accepting requests, lets in-flight ones finish (bounded), then flushes and closes every log. */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    this.logger.info('node stopping');
    clearInterval(this.sizeTimer);
    const server = this.grpcServer;
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
    await this.http?.close();
    await this.logs.stop();
    this.logger.info('node stopped');
  }
}
