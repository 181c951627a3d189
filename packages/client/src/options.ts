import type { Logger } from '@runnel/common';

export interface ClientOptions {
  /** 'host:port' or a list of them; the port defaults to 9192 (the gRPC client API). */
  bootstrap: string | string[];
  clientId?: string;
  /** Deadline of a unary call, and how long a stream request may wait for its answer. Default 30000. */
  requestTimeoutMs?: number;
  /** A pino logger; the client logs nothing without one. */
  logger?: Logger;
  /** Metadata older than this is refreshed before use. Default 300000, as Kafka's metadata.max.age.ms. */
  metadataMaxAgeMs?: number;
}

export const DEFAULT_PORT = 9192;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
export const DEFAULT_METADATA_MAX_AGE_MS = 300_000;

export interface ResolvedClientOptions {
  bootstrapAddresses: string[];
  clientId: string;
  requestTimeoutMs: number;
  metadataMaxAgeMs: number;
  logger: Logger | undefined;
}

/** 'host', 'host:port', '[v6]:port' or 'v6' → 'host:port' as grpc-js wants it. */
export function normalizeAddress(address: string): string {
  const trimmed = address.trim();
  if (trimmed === '') throw new TypeError('bootstrap address is empty');
  if (trimmed.startsWith('[')) return trimmed.includes(']:') ? trimmed : `${trimmed}:${DEFAULT_PORT}`;
  const colons = trimmed.split(':').length - 1;
  if (colons === 0) return `${trimmed}:${DEFAULT_PORT}`;
  if (colons === 1) return trimmed;
  return `[${trimmed}]:${DEFAULT_PORT}`; // a bare IPv6 address
}

export { brokerAddress } from '@runnel/common';

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name} must be a positive number, got ${value}`);
  return value;
}

export function nonNegative(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`${name} must be a number >= 0, got ${value}`);
  return value;
}

export { positive as positiveOption };

export function resolveClientOptions(options: ClientOptions): ResolvedClientOptions {
  const list = Array.isArray(options.bootstrap) ? options.bootstrap : options.bootstrap.split(',');
  const bootstrapAddresses = list.map(normalizeAddress);
  if (bootstrapAddresses.length === 0) throw new TypeError('bootstrap needs at least one address');
  return {
    bootstrapAddresses,
    clientId: options.clientId ?? 'runnel-client',
    requestTimeoutMs: positive('requestTimeoutMs', options.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS),
    metadataMaxAgeMs: positive('metadataMaxAgeMs', options.metadataMaxAgeMs, DEFAULT_METADATA_MAX_AGE_MS),
    logger: options.logger,
  };
}
