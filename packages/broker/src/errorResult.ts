import { RunnelError, errorCode, type Logger } from '@runnel/common';

/**
 * The error_code and error_message a response carries for `error`: a RunnelError keeps its Kafka
 * code; anything else is a bug, logged with `context`, and answered UNKNOWN_SERVER_ERROR.
 */
export function errorResult(error: unknown, logger: Logger, context: object = {}): { errorCode: number; errorMessage: string } {
  if (error instanceof RunnelError) return { errorCode: error.code, errorMessage: error.detail };
  logger.error({ err: error, ...context }, 'unexpected error');
  return { errorCode: errorCode('UNKNOWN_SERVER_ERROR'), errorMessage: (error as Error)?.message ?? String(error) };
}
