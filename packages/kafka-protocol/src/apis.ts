// The APIs this package speaks, with the version range of each, and the request/response entry
// points a listener (or a test client) uses: a whole message, header and body, in or out.
import { readMessage, writeMessage, type DecodeOptions } from './codec.js';
import { UnsupportedApiVersionError } from './errors.js';
import { API_VERSIONS_REQUEST, API_VERSIONS_RESPONSE } from './messages/apiVersions.js';
import { CREATE_PARTITIONS_REQUEST, CREATE_PARTITIONS_RESPONSE } from './messages/createPartitions.js';
import { CREATE_TOPICS_REQUEST, CREATE_TOPICS_RESPONSE } from './messages/createTopics.js';
import { DELETE_GROUPS_REQUEST, DELETE_GROUPS_RESPONSE } from './messages/deleteGroups.js';
import { DELETE_TOPICS_REQUEST, DELETE_TOPICS_RESPONSE } from './messages/deleteTopics.js';
import { DESCRIBE_CLUSTER_REQUEST, DESCRIBE_CLUSTER_RESPONSE } from './messages/describeCluster.js';
import { DESCRIBE_CONFIGS_REQUEST, DESCRIBE_CONFIGS_RESPONSE } from './messages/describeConfigs.js';
import { DESCRIBE_GROUPS_REQUEST, DESCRIBE_GROUPS_RESPONSE } from './messages/describeGroups.js';
import { ELECT_LEADERS_REQUEST, ELECT_LEADERS_RESPONSE } from './messages/electLeaders.js';
import { FETCH_REQUEST, FETCH_RESPONSE } from './messages/fetch.js';
import { FIND_COORDINATOR_REQUEST, FIND_COORDINATOR_RESPONSE } from './messages/findCoordinator.js';
import { REQUEST_HEADER, RESPONSE_HEADER } from './messages/headers.js';
import { HEARTBEAT_REQUEST, HEARTBEAT_RESPONSE } from './messages/heartbeat.js';
import { INCREMENTAL_ALTER_CONFIGS_REQUEST, INCREMENTAL_ALTER_CONFIGS_RESPONSE } from './messages/incrementalAlterConfigs.js';
import { JOIN_GROUP_REQUEST, JOIN_GROUP_RESPONSE } from './messages/joinGroup.js';
import { LEAVE_GROUP_REQUEST, LEAVE_GROUP_RESPONSE } from './messages/leaveGroup.js';
import { LIST_GROUPS_REQUEST, LIST_GROUPS_RESPONSE } from './messages/listGroups.js';
import { LIST_OFFSETS_REQUEST, LIST_OFFSETS_RESPONSE } from './messages/listOffsets.js';
import { METADATA_REQUEST, METADATA_RESPONSE } from './messages/metadata.js';
import { OFFSET_COMMIT_REQUEST, OFFSET_COMMIT_RESPONSE } from './messages/offsetCommit.js';
import { OFFSET_FETCH_REQUEST, OFFSET_FETCH_RESPONSE } from './messages/offsetFetch.js';
import {
  ALTER_PARTITION_REASSIGNMENTS_REQUEST,
  ALTER_PARTITION_REASSIGNMENTS_RESPONSE,
  LIST_PARTITION_REASSIGNMENTS_REQUEST,
  LIST_PARTITION_REASSIGNMENTS_RESPONSE,
} from './messages/partitionReassignments.js';
import { OFFSET_FOR_LEADER_EPOCH_REQUEST, OFFSET_FOR_LEADER_EPOCH_RESPONSE } from './messages/offsetForLeaderEpoch.js';
import { PRODUCE_REQUEST, PRODUCE_RESPONSE } from './messages/produce.js';
import { SASL_HANDSHAKE_REQUEST, SASL_HANDSHAKE_RESPONSE } from './messages/saslHandshake.js';
import { SYNC_GROUP_REQUEST, SYNC_GROUP_RESPONSE } from './messages/syncGroup.js';
import type { MessageInput, MessageOf, MessageSpec, UnknownTaggedField } from './schema.js';
import { inVersions, parseVersions } from './versions.js';
import { KafkaWireReader } from './wireReader.js';
import { KafkaWireWriter } from './wireWriter.js';

/** Each API's request and response table; their validVersions are the range this package serves. */
export const KAFKA_APIS = {
  Produce: { apiKey: 0, request: PRODUCE_REQUEST, response: PRODUCE_RESPONSE },
  Fetch: { apiKey: 1, request: FETCH_REQUEST, response: FETCH_RESPONSE },
  ListOffsets: { apiKey: 2, request: LIST_OFFSETS_REQUEST, response: LIST_OFFSETS_RESPONSE },
  Metadata: { apiKey: 3, request: METADATA_REQUEST, response: METADATA_RESPONSE },
  OffsetCommit: { apiKey: 8, request: OFFSET_COMMIT_REQUEST, response: OFFSET_COMMIT_RESPONSE },
  OffsetFetch: { apiKey: 9, request: OFFSET_FETCH_REQUEST, response: OFFSET_FETCH_RESPONSE },
  FindCoordinator: { apiKey: 10, request: FIND_COORDINATOR_REQUEST, response: FIND_COORDINATOR_RESPONSE },
  JoinGroup: { apiKey: 11, request: JOIN_GROUP_REQUEST, response: JOIN_GROUP_RESPONSE },
  Heartbeat: { apiKey: 12, request: HEARTBEAT_REQUEST, response: HEARTBEAT_RESPONSE },
  LeaveGroup: { apiKey: 13, request: LEAVE_GROUP_REQUEST, response: LEAVE_GROUP_RESPONSE },
  SyncGroup: { apiKey: 14, request: SYNC_GROUP_REQUEST, response: SYNC_GROUP_RESPONSE },
  DescribeGroups: { apiKey: 15, request: DESCRIBE_GROUPS_REQUEST, response: DESCRIBE_GROUPS_RESPONSE },
  ListGroups: { apiKey: 16, request: LIST_GROUPS_REQUEST, response: LIST_GROUPS_RESPONSE },
  SaslHandshake: { apiKey: 17, request: SASL_HANDSHAKE_REQUEST, response: SASL_HANDSHAKE_RESPONSE },
  ApiVersions: { apiKey: 18, request: API_VERSIONS_REQUEST, response: API_VERSIONS_RESPONSE },
  CreateTopics: { apiKey: 19, request: CREATE_TOPICS_REQUEST, response: CREATE_TOPICS_RESPONSE },
  DeleteTopics: { apiKey: 20, request: DELETE_TOPICS_REQUEST, response: DELETE_TOPICS_RESPONSE },
  OffsetForLeaderEpoch: { apiKey: 23, request: OFFSET_FOR_LEADER_EPOCH_REQUEST, response: OFFSET_FOR_LEADER_EPOCH_RESPONSE },
  DescribeConfigs: { apiKey: 32, request: DESCRIBE_CONFIGS_REQUEST, response: DESCRIBE_CONFIGS_RESPONSE },
  CreatePartitions: { apiKey: 37, request: CREATE_PARTITIONS_REQUEST, response: CREATE_PARTITIONS_RESPONSE },
  DeleteGroups: { apiKey: 42, request: DELETE_GROUPS_REQUEST, response: DELETE_GROUPS_RESPONSE },
  ElectLeaders: { apiKey: 43, request: ELECT_LEADERS_REQUEST, response: ELECT_LEADERS_RESPONSE },
  IncrementalAlterConfigs: { apiKey: 44, request: INCREMENTAL_ALTER_CONFIGS_REQUEST, response: INCREMENTAL_ALTER_CONFIGS_RESPONSE },
  AlterPartitionReassignments: { apiKey: 45, request: ALTER_PARTITION_REASSIGNMENTS_REQUEST, response: ALTER_PARTITION_REASSIGNMENTS_RESPONSE },
  ListPartitionReassignments: { apiKey: 46, request: LIST_PARTITION_REASSIGNMENTS_REQUEST, response: LIST_PARTITION_REASSIGNMENTS_RESPONSE },
  DescribeCluster: { apiKey: 60, request: DESCRIBE_CLUSTER_REQUEST, response: DESCRIBE_CLUSTER_RESPONSE },
} as const satisfies Record<string, { apiKey: number; request: MessageSpec; response: MessageSpec }>;

export type ApiName = keyof typeof KAFKA_APIS;

/** API name to key, e.g. `API_KEYS.Metadata === 3`. */
export const API_KEYS = Object.fromEntries(Object.entries(KAFKA_APIS).map(([name, api]) => [name, api.apiKey])) as {
  readonly [N in ApiName]: (typeof KAFKA_APIS)[N]['apiKey'];
};

export interface SupportedApi {
  readonly apiName: ApiName;
  readonly apiKey: number;
  readonly minVersion: number;
  readonly maxVersion: number;
}

/** Every API with the versions served, by ascending key: what an ApiVersions response lists. */
export const SUPPORTED_APIS: readonly SupportedApi[] = Object.entries(KAFKA_APIS)
  .map(([name, api]) => {
    const range = parseVersions(api.request.validVersions);
    return { apiName: name as ApiName, apiKey: api.apiKey, minVersion: range.min, maxVersion: range.max };
  })
  .sort((a, b) => a.apiKey - b.apiKey);

const API_BY_KEY = new Map<number, SupportedApi>(SUPPORTED_APIS.map((api) => [api.apiKey, api]));

export type RequestOf<N extends ApiName> = MessageOf<(typeof KAFKA_APIS)[N]['request']>;
export type RequestInput<N extends ApiName> = MessageInput<(typeof KAFKA_APIS)[N]['request']>;
export type ResponseOf<N extends ApiName> = MessageOf<(typeof KAFKA_APIS)[N]['response']>;
export type ResponseInput<N extends ApiName> = MessageInput<(typeof KAFKA_APIS)[N]['response']>;

export interface RequestHeader {
  readonly apiKey: number;
  readonly apiVersion: number;
  readonly correlationId: number;
  readonly clientId: string | null;
}

/** A decoded request; `apiName` (or `apiKey`) tells which body it carries. */
export type KafkaRequest = {
  [N in ApiName]: RequestHeader & {
    readonly apiName: N;
    readonly apiKey: (typeof KAFKA_APIS)[N]['apiKey'];
    /** Tagged fields of request header v2; none are defined, so only unknown ones, when kept. */
    readonly headerTaggedFields?: UnknownTaggedField[];
    readonly body: RequestOf<N>;
  };
}[ApiName];

/**
 * Header v2 for flexible versions, v1 otherwise. Decided from the API's flexibleVersions, which are
 * open-ended, so even a version beyond the supported range has a known header.
 */
function requestHeaderVersion(spec: MessageSpec, apiVersion: number): number {
  return inVersions(apiVersion, spec.flexibleVersions) ? 2 : 1;
}

/** ApiVersions responses always use header v0 (KIP-511): the client cannot know their version yet. */
function responseHeaderVersion(apiName: ApiName, apiVersion: number): number {
  return apiName !== 'ApiVersions' && inVersions(apiVersion, KAFKA_APIS[apiName].response.flexibleVersions) ? 1 : 0;
}

function apiOf(apiName: ApiName): (typeof KAFKA_APIS)[ApiName] {
  const api = KAFKA_APIS[apiName];
  if (api === undefined) throw new RangeError(`no Kafka API is called ${String(apiName)}`);
  return api;
}

/**
 * Decodes one request: `message` is a frame's content, without its size prefix (what FrameDecoder
 * yields). Throws UnsupportedApiVersionError for an API key or version outside SUPPORTED_APIS
 * (with the header fields that could be read), KafkaProtocolError for anything malformed.
 */
export function decodeRequest(message: Buffer, options?: DecodeOptions): KafkaRequest {
  // Every header version starts with the API key and version, and they decide the rest's layout.
  const prefix = new KafkaWireReader(message);
  const apiKey = prefix.int16('requestApiKey');
  const apiVersion = prefix.int16('requestApiVersion');
  const supported = API_BY_KEY.get(apiKey);
  if (supported === undefined) throw new UnsupportedApiVersionError(apiKey, apiVersion, prefix.int32('correlationId'), undefined, undefined);
  const api = KAFKA_APIS[supported.apiName];
  const reader = new KafkaWireReader(message);
  const header = readMessage(reader, REQUEST_HEADER, requestHeaderVersion(api.request, apiVersion), options);
  if (apiVersion < supported.minVersion || apiVersion > supported.maxVersion) {
    throw new UnsupportedApiVersionError(apiKey, apiVersion, header.correlationId, header.clientId, supported);
  }
  const body = readMessage(reader, api.request, apiVersion, options);
  reader.expectEnd(`${api.request.name} v${apiVersion}`);
  return {
    apiName: supported.apiName,
    apiKey,
    apiVersion,
    correlationId: header.correlationId,
    clientId: header.clientId,
    ...(header.unknownTaggedFields === undefined ? {} : { headerTaggedFields: header.unknownTaggedFields }),
    body,
  } as KafkaRequest;
}

/** Encodes a response to a request of `apiName` at `apiVersion`, size prefix included, ready to write. */
export function encodeResponse<N extends ApiName>(apiName: N, apiVersion: number, correlationId: number, body: ResponseInput<N>): Buffer {
  const writer = new KafkaWireWriter();
  writeMessage(writer, RESPONSE_HEADER, responseHeaderVersion(apiName, apiVersion), { correlationId });
  writeMessage(writer, apiOf(apiName).response, apiVersion, body as MessageInput<MessageSpec>);
  return writer.toFrame();
}

/** Encodes a request, size prefix included: the client side, for tests and tools. */
export function encodeRequest<N extends ApiName>(
  apiName: N,
  header: { readonly apiVersion: number; readonly correlationId: number; readonly clientId: string | null },
  body: RequestInput<N>,
): Buffer {
  const api = apiOf(apiName);
  const writer = new KafkaWireWriter();
  writeMessage(writer, REQUEST_HEADER, requestHeaderVersion(api.request, header.apiVersion), {
    requestApiKey: api.apiKey,
    requestApiVersion: header.apiVersion,
    correlationId: header.correlationId,
    clientId: header.clientId,
  });
  writeMessage(writer, api.request, header.apiVersion, body as MessageInput<MessageSpec>);
  return writer.toFrame();
}

/**
 * Decodes a response to a request of `apiName` at `apiVersion` (a response does not say what it
 * answers: the caller matches `correlationId`, see `responseCorrelationId`). `message` is without
 * its size prefix.
 */
export function decodeResponse<N extends ApiName>(apiName: N, apiVersion: number, message: Buffer, options?: DecodeOptions): { correlationId: number; body: ResponseOf<N> } {
  const api = apiOf(apiName);
  const reader = new KafkaWireReader(message);
  const header = readMessage(reader, RESPONSE_HEADER, responseHeaderVersion(apiName, apiVersion), options);
  const body = readMessage(reader, api.response as MessageSpec, apiVersion, options) as unknown as ResponseOf<N>;
  reader.expectEnd(`${api.response.name} v${apiVersion}`);
  return { correlationId: header.correlationId, body };
}

/** The correlation id every response starts with, to find the request it answers. */
export function responseCorrelationId(message: Buffer): number {
  return new KafkaWireReader(message).int32('correlationId');
}
