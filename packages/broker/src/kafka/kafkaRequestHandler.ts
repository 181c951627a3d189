// The Kafka door's request layer: one decoded Kafka request in, the encoded response out. Each API
// is a handler that maps the request onto the same broker operations the gRPC door calls
// (TopicAdmin, ReplicaManager, GroupCoordinator) and their results back into Kafka's fields. The
// table of handlers is also what ApiVersions advertises: an API is listed exactly when it is served.
import { errorCode, type BrokerConfig, type Logger } from '@runnel/common';
import {
  SUPPORTED_APIS,
  encodeResponse,
  type ApiName,
  type KafkaRequest,
  type ResponseInput,
  type UnsupportedApiVersionError,
} from '@runnel/kafka-protocol';
import type { GroupCoordinatorLocator } from '../group/coordinatorLocator.js';
import type { GroupCoordinator } from '../group/groupCoordinator.js';
import type { LogManager } from '../logManager.js';
import type { ReplicaManager } from '../replicaManager.js';
import type { TopicAdmin } from '../topicAdmin.js';
import { adminHandlers } from './adminHandlers.js';
import { partitionHandlers } from './partitionHandlers.js';
import { clusterHandlers } from './clusterHandlers.js';
import { groupHandlers } from './groupHandlers.js';
import { recordHandlers } from './recordHandlers.js';

/** The broker as the Kafka door uses it: the same objects the gRPC door is built on. */
export interface KafkaDoorBroker {
  readonly nodeId: number;
  readonly config: BrokerConfig;
  readonly topics: TopicAdmin;
  readonly logs: LogManager;
  readonly replicas: ReplicaManager;
  readonly coordinator: GroupCoordinator;
  readonly coordinatorLocator: GroupCoordinatorLocator;
  readonly logger: Logger;
}

/** What a handler knows of the connection a request came on. */
export interface KafkaClient {
  /** The request header's client id. */
  readonly clientId: string | null;
  /** The peer's address as Kafka shows a group member's host: `/127.0.0.1`. */
  readonly clientHost: string;
  /** Aborts when the connection closes or the listener shuts down: a long poll answers at once. */
  readonly closed: AbortSignal;
}

export type KafkaRequestOf<N extends ApiName> = Extract<KafkaRequest, { apiName: N }>;

/**
 * A request that gets no response: an acks=0 produce. With `closeBecause`, the connection is
 * closed instead, as Kafka does when an acks=0 produce failed: the client hears of the failure
 * only through the closed connection, and refreshes its metadata.
 */
export interface NoResponse {
  readonly noResponse: true;
  readonly closeBecause: string | null;
}

export type KafkaHandler<N extends ApiName> = (request: KafkaRequestOf<N>, client: KafkaClient) => Promise<ResponseInput<N> | NoResponse>;
export type KafkaHandlers = { readonly [N in ApiName]?: KafkaHandler<N> };

/** What the connection does with a request's outcome. */
export type KafkaOutcome = { readonly response: Buffer } | { readonly response: null; readonly closeBecause: string | null };

/** ApiVersions v3's client software name and version must look like this (Kafka's rule, KIP-511). */
const SOFTWARE_NAME_OR_VERSION = /^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$/;

export class KafkaRequestHandler {
  private readonly handlers: KafkaHandlers;
  /** What ApiVersions lists: every API this door has a handler for, with the codec's version range. */
  readonly servedApis: ReadonlyArray<{ apiKey: number; minVersion: number; maxVersion: number }>;

  constructor(broker: KafkaDoorBroker) {
    this.handlers = {
      ApiVersions: async (request) => this.apiVersions(request),
      SaslHandshake: async () => ({
        // No SASL mechanism is enabled on any Runnel listener. SaslHandshake stays listed so that a
        // client configured for SASL gets this clear refusal instead of falling back to raw SASL
        // bytes the listener cannot read (librdkafka does so when the API is not advertised).
        // Kafka's own PLAINTEXT listener answers ILLEGAL_SASL_STATE here; an unsupported mechanism
        // with an empty list says more precisely that nothing is offered.
        errorCode: errorCode('UNSUPPORTED_SASL_MECHANISM'),
        mechanisms: [],
      }),
      ...clusterHandlers(broker),
      ...recordHandlers(broker),
      ...adminHandlers(broker),
      ...partitionHandlers(broker),
      ...groupHandlers(broker),
    };
    this.servedApis = SUPPORTED_APIS.filter((api) => this.handlers[api.apiName] !== undefined).map(({ apiKey, minVersion, maxVersion }) => ({ apiKey, minVersion, maxVersion }));
  }

  /** Handles one request. Throws only on a bug (a handler failing, a response that does not encode). */
  async handle(request: KafkaRequest, client: KafkaClient): Promise<KafkaOutcome> {
    const handler = this.handlers[request.apiName] as KafkaHandler<ApiName> | undefined;
    if (handler === undefined) throw new Error(`no handler for ${request.apiName}, although the codec decoded it`);
    const result = await handler(request as KafkaRequestOf<ApiName>, client);
    if ('noResponse' in result) return { response: null, closeBecause: result.closeBecause };
    return { response: encodeResponse(request.apiName, request.apiVersion, request.correlationId, result as ResponseInput<ApiName>) };
  }

  /** Whether `apiKey` names an API this door serves (a version outside its range is another matter). */
  serves(apiKey: number): boolean {
    return this.servedApis.some((api) => api.apiKey === apiKey);
  }

  /**
   * The answer to an ApiVersions request of a version above ours, or to an API key we do not
   * serve: an ApiVersions v0 body (the one layout every client reads) with UNSUPPORTED_VERSION and
   * the APIs we serve, so the client can pick versions it shares with us (KIP-511).
   */
  unsupportedVersionAnswer(error: UnsupportedApiVersionError): Buffer {
    return encodeResponse('ApiVersions', 0, error.correlationId, { errorCode: errorCode('UNSUPPORTED_VERSION'), apiKeys: [...this.servedApis] });
  }

  private apiVersions(request: KafkaRequestOf<'ApiVersions'>): ResponseInput<'ApiVersions'> {
    const { clientSoftwareName, clientSoftwareVersion } = request.body;
    if (request.apiVersion >= 3 && (!SOFTWARE_NAME_OR_VERSION.test(clientSoftwareName) || !SOFTWARE_NAME_OR_VERSION.test(clientSoftwareVersion))) {
      return { errorCode: errorCode('INVALID_REQUEST'), apiKeys: [] };
    }
    return { errorCode: 0, apiKeys: [...this.servedApis], throttleTimeMs: 0 };
  }
}
