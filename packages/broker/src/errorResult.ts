import { RunnelError, errorCode, type Logger } from '@runnel/common';
import { failStop, InvariantViolation } from './invariant.js';

/**
 * The error_code and error_message a response carries for `error`: a RunnelError keeps its Kafka
 * code, as does an error with a numeric `errorCode`; anything else is a bug, logged with `context`, and answered UNKNOWN_SERVER_ERROR.
 */
export function errorResult(error: unknown, logger: Logger, context: object = {}): { errorCode: number; errorMessage: string } {
  if (error instanceof RunnelError) return { errorCode: error.code, errorMessage: error.detail };
  if (error instanceof InvariantViolation) failStop(error, logger);
  // The controller's client errors (no active controller reachable: NOT_CONTROLLER) carry their code.
  const code = (error as { errorCode?: unknown } | null)?.errorCode;
  if (typeof code === 'number' && Number.isInteger(code)) return { errorCode: code, errorMessage: detailOf(error as Error) };
  logger.error({ err: error, ...context }, 'unexpected error');
  return { errorCode: errorCode('UNKNOWN_SERVER_ERROR'), errorMessage: (error as Error)?.message ?? String(error) };
}

/** A coded error's message without its code name in front, where it keeps one apart (`detail`). */
function detailOf(error: Error & { detail?: unknown }): string {
  return typeof error.detail === 'string' ? error.detail : error.message;
}
