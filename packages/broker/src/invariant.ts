// A broken invariant is a bug, not an operating error: the broker must not go on serving with a
// high watermark or a role it cannot trust. `assert` throws an InvariantViolation; wherever the
// broker turns errors into responses it hands those to `failStop`, which logs and ends the process
// (the controller then fences it, and its replicas are served by others).
import type { Logger } from '@runnel/common';

export class InvariantViolation extends Error {
  constructor(message: string) {
    super(`invariant: ${message}`);
    this.name = 'InvariantViolation';
  }
}

export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new InvariantViolation(message);
}

/**
 * Logs the violation and rethrows it outside any promise chain, so that it reaches the process as
 * an uncaught exception (exit status 1) instead of being answered as one more error code.
 */
export function failStop(error: InvariantViolation, logger: Logger): void {
  logger.fatal({ err: error }, 'a broker invariant is broken; stopping');
  process.nextTick(() => {
    throw error;
  });
}
