// The Kafka error codes the controller answers with: @runnel/common's table, the one vocabulary of
// every door into Runnel (codes and names from kafka.apache.org/protocol#protocol_error_codes).
import { ERRORS, type ErrorName } from '@runnel/common';

export const CONTROLLER_ERRORS = ERRORS;

export type ControllerErrorName = ErrorName;

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

/**
 * The message is the detail alone, as Kafka's error_message is: the code travels beside it, and a
 * reader that prints both (the CLI's "NAME: detail") would otherwise name the code twice.
 */
export function apiError(name: ControllerErrorName, detail?: string): ApiError {
  const spec = CONTROLLER_ERRORS[name];
  return { errorCode: spec.code, errorMessage: detail ?? spec.message };
}
