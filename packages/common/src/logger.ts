import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * A pino logger writing JSON lines to stdout, or to `destination` (tests that check what was
 * logged). The level comes from `level`, else RUNNEL_LOG_LEVEL, else info; `silent` turns it off
 * (tests that run nodes in-process use it).
 */
export function createLogger(options: { name: string; level?: string; bindings?: Record<string, unknown>; destination?: { write(line: string): void } }): Logger {
  const level = options.level ?? process.env.RUNNEL_LOG_LEVEL ?? 'info';
  const settings = { name: options.name, level, base: { pid: process.pid, ...options.bindings } };
  return options.destination === undefined ? pino(settings) : pino(settings, options.destination);
}
