/**
 * Exponential backoff with ±20% jitter (Kafka's retry.backoff.ms / retry.backoff.max.ms): attempt
 * 1 waits about baseMs, each later attempt doubles it, never beyond maxMs.
 */
export function backoffMs(attempt: number, baseMs: number, maxMs: number): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 30);
  const raw = Math.min(baseMs * 2 ** exponent, maxMs);
  const jitter = 0.8 + Math.random() * 0.4;
  return Math.max(0, Math.min(Math.round(raw * jitter), maxMs));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
