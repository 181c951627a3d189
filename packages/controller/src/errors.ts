// The Kafka error codes the controller answers with. Codes and names follow Kafka's protocol error
// table (kafka.apache.org/protocol#protocol_error_codes); the ones @runnel/common also lists are
// checked against it in test/errors.test.ts. Kept here because common does not list the
// controller-only codes (77, 80, 95, 100, 101, 107, 108) yet.

export const CONTROLLER_ERRORS = {
  NONE: { code: 0, message: '' },
  UNKNOWN_TOPIC_OR_PARTITION: { code: 3, message: 'This server does not host this topic-partition' },
  INVALID_TOPIC_EXCEPTION: { code: 17, message: 'The request attempted to perform an operation on an invalid topic' },
  TOPIC_ALREADY_EXISTS: { code: 36, message: 'Topic with this name already exists' },
  INVALID_PARTITIONS: { code: 37, message: 'Number of partitions is below 1' },
  INVALID_REPLICATION_FACTOR: { code: 38, message: 'Replication factor is below 1 or larger than the number of available brokers' },
  INVALID_CONFIG: { code: 40, message: 'Configuration is invalid' },
  NOT_CONTROLLER: { code: 41, message: 'This is not the correct controller for this cluster' },
  INVALID_REQUEST: { code: 42, message: 'The request is malformed or inconsistent with the current state' },
  TOPIC_DELETION_DISABLED: { code: 73, message: 'Topic deletion is disabled' },
  FENCED_LEADER_EPOCH: { code: 74, message: 'The leader epoch in the request is older than the epoch on the controller' },
  STALE_BROKER_EPOCH: { code: 77, message: 'Broker epoch has changed' },
  PREFERRED_LEADER_NOT_AVAILABLE: { code: 80, message: 'The preferred leader was not available' },
  INVALID_UPDATE_VERSION: { code: 95, message: 'The given update version was invalid' },
  UNKNOWN_TOPIC_ID: { code: 100, message: 'This server does not host this topic ID' },
  DUPLICATE_BROKER_REGISTRATION: { code: 101, message: 'This broker ID is already in use' },
  INELIGIBLE_REPLICA: { code: 107, message: 'The new ISR contains at least one ineligible replica' },
  NEW_LEADER_ELECTED: { code: 108, message: 'The AlterPartition request updated the partition state but the leader has changed' },
} as const satisfies Record<string, { code: number; message: string }>;

export type ControllerErrorName = keyof typeof CONTROLLER_ERRORS;

/** The Kafka error code for a name, e.g. `controllerErrorCode('INELIGIBLE_REPLICA') === 107`. */
export function controllerErrorCode(name: ControllerErrorName): number {
  return CONTROLLER_ERRORS[name].code;
}

/** An error code with its message, as every per-item result of a controller response carries. */
export interface ApiError {
  readonly errorCode: number;
  readonly errorMessage: string;
}

export const NO_ERROR: ApiError = Object.freeze({ errorCode: 0, errorMessage: '' });

export function apiError(name: ControllerErrorName, detail?: string): ApiError {
  const spec = CONTROLLER_ERRORS[name];
  return { errorCode: spec.code, errorMessage: detail === undefined ? `${name}: ${spec.message}` : `${name}: ${detail}` };
}
