import { status, type ServiceError } from '@grpc/grpc-js';
import { RunnelError } from '@runnel/common';

function isServiceError(error: unknown): error is ServiceError {
  return typeof error === 'object' && error !== null && typeof (error as { code?: unknown }).code === 'number' && 'details' in error;
}

/**
 * A whole request failed at the gRPC level. Connection trouble is Kafka's retriable
 * NETWORK_EXCEPTION; RESOURCE_EXHAUSTED is a request over the server's size limit, which no retry
 * fixes; anything else is a request this server refuses.
 */
export function fromGrpcError(error: unknown, what: string): RunnelError {
  if (error instanceof RunnelError) return error;
  if (!isServiceError(error)) return new RunnelError('NETWORK_EXCEPTION', `${what}: ${(error as Error)?.message ?? String(error)}`);
  const detail = `${what}: gRPC ${status[error.code] ?? error.code}: ${error.details}`;
  switch (error.code) {
    case status.UNAVAILABLE:
    case status.DEADLINE_EXCEEDED:
    case status.CANCELLED:
    case status.ABORTED:
      return new RunnelError('NETWORK_EXCEPTION', detail);
    case status.RESOURCE_EXHAUSTED:
      return new RunnelError('MESSAGE_TOO_LARGE', detail);
    case status.UNIMPLEMENTED:
      return new RunnelError('UNSUPPORTED_VERSION', detail);
    case status.INVALID_ARGUMENT:
      return new RunnelError('INVALID_REQUEST', detail);
    default:
      return new RunnelError('UNKNOWN_SERVER_ERROR', detail);
  }
}

/**
 * The error for requests left pending when a stream ends or breaks: a retriable
 * NETWORK_EXCEPTION, except that a stream refused with RESOURCE_EXHAUSTED while exactly one
 * request was unanswered names that request as too large (no retry can fix it).
 */
export function streamLostError(error: unknown, what: string, pendingCount: number): RunnelError {
  if (isServiceError(error) && error.code === status.RESOURCE_EXHAUSTED && pendingCount === 1) return fromGrpcError(error, what);
  const detail = error === undefined ? 'stream ended' : isServiceError(error) ? `gRPC ${status[error.code] ?? error.code}: ${error.details}` : String((error as Error).message ?? error);
  return new RunnelError('NETWORK_EXCEPTION', `${what}: ${detail}`);
}

/** Codes after which the cached leader or topic layout is suspect. */
export function needsMetadataRefresh(code: number): boolean {
  return code === 3 || code === 5 || code === 6 || code === 13 || code === 74 || code === 75;
}
