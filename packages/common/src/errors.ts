// One error vocabulary for every door into the broker: Kafka's numeric error codes.
// Source: the error table of the Kafka protocol guide (kafka.apache.org/protocol#protocol_error_codes).

interface ErrorSpec {
  readonly code: number;
  readonly retriable: boolean;
  readonly message: string;
}

export const ERRORS = {
  UNKNOWN_SERVER_ERROR: { code: -1, retriable: false, message: 'The server experienced an unexpected error' },
  NONE: { code: 0, retriable: false, message: '' },
  OFFSET_OUT_OF_RANGE: { code: 1, retriable: false, message: 'The requested offset is not within the range of offsets maintained by the server' },
  CORRUPT_MESSAGE: { code: 2, retriable: true, message: 'The record batch failed its CRC check, exceeds the valid size, has a null key on a compacted topic, or is otherwise corrupt' },
  UNKNOWN_TOPIC_OR_PARTITION: { code: 3, retriable: true, message: 'This server does not host this topic-partition' },
  INVALID_FETCH_SIZE: { code: 4, retriable: false, message: 'The requested fetch size is invalid' },
  LEADER_NOT_AVAILABLE: { code: 5, retriable: true, message: 'There is no leader for this topic-partition as we are in the middle of a leadership election' },
  NOT_LEADER_OR_FOLLOWER: { code: 6, retriable: true, message: 'This server is not the leader or a follower for that topic-partition' },
  REQUEST_TIMED_OUT: { code: 7, retriable: true, message: 'The request timed out' },
  BROKER_NOT_AVAILABLE: { code: 8, retriable: false, message: 'The broker is not available' },
  REPLICA_NOT_AVAILABLE: { code: 9, retriable: true, message: 'The replica is not available for the requested topic-partition' },
  MESSAGE_TOO_LARGE: { code: 10, retriable: false, message: 'The request included a message larger than the max message size the server will accept' },
  OFFSET_METADATA_TOO_LARGE: { code: 12, retriable: false, message: 'The metadata field of the offset request was too large' },
  NETWORK_EXCEPTION: { code: 13, retriable: true, message: 'The server disconnected before a response was received' },
  COORDINATOR_LOAD_IN_PROGRESS: { code: 14, retriable: true, message: 'The coordinator is loading and hence cannot process requests' },
  COORDINATOR_NOT_AVAILABLE: { code: 15, retriable: true, message: 'The coordinator is not available' },
  NOT_COORDINATOR: { code: 16, retriable: true, message: 'This is not the correct coordinator' },
  INVALID_TOPIC_EXCEPTION: { code: 17, retriable: false, message: 'The request attempted to perform an operation on an invalid topic' },
  RECORD_LIST_TOO_LARGE: { code: 18, retriable: false, message: 'The request included message batch larger than the configured segment size on the server' },
  NOT_ENOUGH_REPLICAS: { code: 19, retriable: true, message: 'Messages are rejected since there are fewer in-sync replicas than required' },
  NOT_ENOUGH_REPLICAS_AFTER_APPEND: { code: 20, retriable: true, message: 'Messages are written to the log, but to fewer in-sync replicas than required' },
  ILLEGAL_GENERATION: { code: 22, retriable: false, message: 'Specified group generation id is not valid' },
  INCONSISTENT_GROUP_PROTOCOL: { code: 23, retriable: false, message: "The group member's supported protocols are incompatible with those of existing members or first group member tried to join with empty protocol type or empty protocol list" },
  INVALID_GROUP_ID: { code: 24, retriable: false, message: 'The configured groupId is invalid' },
  UNKNOWN_MEMBER_ID: { code: 25, retriable: false, message: 'The coordinator is not aware of this member' },
  INVALID_SESSION_TIMEOUT: { code: 26, retriable: false, message: 'The session timeout is not within the range allowed by the broker (as configured by group.min.session.timeout.ms and group.max.session.timeout.ms)' },
  REBALANCE_IN_PROGRESS: { code: 27, retriable: false, message: 'The group is rebalancing, so a rejoin is needed' },
  INVALID_COMMIT_OFFSET_SIZE: { code: 28, retriable: false, message: 'The committing offset data size is not valid' },
  INVALID_REQUIRED_ACKS: { code: 21, retriable: false, message: 'Produce request specified an invalid value for required acks' },
  INVALID_TIMESTAMP: { code: 32, retriable: false, message: 'The timestamp of the message is out of acceptable range' },
  UNSUPPORTED_SASL_MECHANISM: { code: 33, retriable: false, message: 'The broker does not support the requested SASL mechanism' },
  UNSUPPORTED_VERSION: { code: 35, retriable: false, message: 'The version of API is not supported' },
  TOPIC_ALREADY_EXISTS: { code: 36, retriable: false, message: 'Topic with this name already exists' },
  INVALID_PARTITIONS: { code: 37, retriable: false, message: 'Number of partitions is below 1' },
  INVALID_REPLICATION_FACTOR: { code: 38, retriable: false, message: 'Replication factor is below 1 or larger than the number of available brokers' },
  INVALID_REPLICA_ASSIGNMENT: { code: 39, retriable: false, message: 'Replica assignment is invalid' },
  INVALID_CONFIG: { code: 40, retriable: false, message: 'Configuration is invalid' },
  NOT_CONTROLLER: { code: 41, retriable: true, message: 'This is not the correct controller for this cluster' },
  INVALID_REQUEST: { code: 42, retriable: false, message: 'This most likely occurs because of a request being malformed by the client library or the message was sent to an incompatible broker' },
  UNSUPPORTED_FOR_MESSAGE_FORMAT: { code: 43, retriable: false, message: 'The message format version on the broker does not support the request' },
  POLICY_VIOLATION: { code: 44, retriable: false, message: 'Request parameters do not satisfy the configured policy' },
  KAFKA_STORAGE_ERROR: { code: 56, retriable: true, message: 'Disk error when trying to access log file on the disk' },
  REASSIGNMENT_IN_PROGRESS: { code: 60, retriable: false, message: 'A partition reassignment is in progress.' },
  NON_EMPTY_GROUP: { code: 68, retriable: false, message: 'The group is not empty' },
  GROUP_ID_NOT_FOUND: { code: 69, retriable: false, message: 'The group id does not exist' },
  FETCH_SESSION_ID_NOT_FOUND: { code: 70, retriable: true, message: 'The fetch session ID was not found' },
  TOPIC_DELETION_DISABLED: { code: 73, retriable: false, message: 'Topic deletion is disabled' },
  FENCED_LEADER_EPOCH: { code: 74, retriable: true, message: 'The leader epoch in the request is older than the epoch on the broker' },
  UNKNOWN_LEADER_EPOCH: { code: 75, retriable: true, message: 'The leader epoch in the request is newer than the epoch on the broker' },
  UNSUPPORTED_COMPRESSION_TYPE: { code: 76, retriable: false, message: 'The requesting client does not support the compression type of given partition' },
  STALE_BROKER_EPOCH: { code: 77, retriable: false, message: 'Broker epoch has changed' },
  OFFSET_NOT_AVAILABLE: { code: 78, retriable: true, message: 'The leader high watermark has not caught up from a recent leader election so the offsets cannot be guaranteed to be monotonically increasing' },
  MEMBER_ID_REQUIRED: { code: 79, retriable: false, message: 'The group member needs to have a valid member id before actually entering a consumer group' },
  PREFERRED_LEADER_NOT_AVAILABLE: { code: 80, retriable: true, message: 'The preferred leader was not available' },
  GROUP_MAX_SIZE_REACHED: { code: 81, retriable: false, message: 'The consumer group has reached its max size' },
  FENCED_INSTANCE_ID: { code: 82, retriable: false, message: 'The broker rejected this static consumer since another consumer with the same group.instance.id has registered with a different member.id' },
  ELIGIBLE_LEADERS_NOT_AVAILABLE: { code: 83, retriable: true, message: 'Eligible topic partition leaders are not available' },
  ELECTION_NOT_NEEDED: { code: 84, retriable: true, message: 'Leader election not needed for topic partition' },
  NO_REASSIGNMENT_IN_PROGRESS: { code: 85, retriable: false, message: 'No partition reassignment is in progress.' },
  INVALID_RECORD: { code: 87, retriable: false, message: 'This record has failed the validation on broker and hence will be rejected' },
  INVALID_UPDATE_VERSION: { code: 95, retriable: false, message: 'The given update version was invalid' },
  UNKNOWN_TOPIC_ID: { code: 100, retriable: true, message: 'This server does not host this topic ID' },
  DUPLICATE_BROKER_REGISTRATION: { code: 101, retriable: false, message: 'This broker ID is already in use' },
  BROKER_ID_NOT_REGISTERED: { code: 102, retriable: false, message: 'The given broker ID was not registered.' },
  INELIGIBLE_REPLICA: { code: 107, retriable: false, message: 'The new ISR contains at least one ineligible replica' },
  NEW_LEADER_ELECTED: { code: 108, retriable: false, message: 'The AlterPartition request successfully updated the partition state but the leader has changed' },
  MISMATCHED_ENDPOINT_TYPE: { code: 114, retriable: false, message: 'The request was sent to an endpoint of the wrong type' },
  UNSUPPORTED_ENDPOINT_TYPE: { code: 115, retriable: false, message: 'This endpoint type is not supported yet' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorName = keyof typeof ERRORS;

const byCode = new Map<number, ErrorName>(
  (Object.keys(ERRORS) as ErrorName[]).map((name) => [ERRORS[name].code, name]),
);

/** The Kafka error code for a name, e.g. `errorCode('NOT_LEADER_OR_FOLLOWER') === 6`. */
export function errorCode(name: ErrorName): number {
  return ERRORS[name].code;
}

/** The name of a Kafka error code; codes this build does not know become `UNKNOWN_ERROR_<code>`. */
export function errorName(code: number): string {
  return byCode.get(code) ?? `UNKNOWN_ERROR_${code}`;
}

export function isRetriable(code: number): boolean {
  const name = byCode.get(code);
  return name !== undefined && ERRORS[name].retriable;
}

/**
 * An operating error that maps onto a Kafka error code: the broker turns it into a per-partition
 * error in its response, the client raises it to the caller.
 */
export class RunnelError extends Error {
  readonly code: number;
  readonly errorName: string;
  readonly retriable: boolean;
  /** The message without the error name in front: what a broker puts in a response's error_message. */
  readonly detail: string;

  constructor(name: ErrorName, detail?: string) {
    super(detail === undefined || detail === '' ? `${name}: ${ERRORS[name].message}` : `${name}: ${detail}`);
    this.detail = detail === undefined || detail === '' ? ERRORS[name].message : detail;
    this.name = 'RunnelError';
    this.code = ERRORS[name].code;
    this.errorName = name;
    this.retriable = ERRORS[name].retriable;
  }

  /** A client-side error for a code received from a broker. */
  static fromCode(code: number, detail?: string): RunnelError {
    const name = byCode.get(code);
    if (name !== undefined) return new RunnelError(name, detail);
    const error = new RunnelError('UNKNOWN_SERVER_ERROR', detail ?? `error code ${code}`);
    return Object.assign(error, { code, errorName: errorName(code) });
  }
}
