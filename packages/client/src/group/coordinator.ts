// A group's coordinator: the broker leading the group's __consumer_offsets partition, named by
// FindCoordinator on any broker. Leadership of that partition moves (failover, rebalance), and a
// new leader answers COORDINATOR_LOAD_IN_PROGRESS while it loads the groups, so every group call
// may need the coordinator found again: `callCoordinator` does that until a deadline, as Kafka's
// clients do with their group calls.
import { RunnelError } from '@runnel/common';
import { backoffMs, sleep } from '../backoff.js';
import type { Cluster } from '../cluster.js';
import type { BrokerConnection } from '../connection.js';
import { brokerAddress } from '../options.js';

export interface GroupCoordinator {
  readonly nodeId: number;
  /** The connection to the coordinator's gRPC client listener. */
  readonly connection: BrokerConnection;
}

const COORDINATOR_BACKOFF_MS = 100;
const COORDINATOR_BACKOFF_MAX_MS = 1000;

/** Errors after which the coordinator is looked up again: it moved, is loading, or did not answer. */
const COORDINATOR_ERRORS: ReadonlySet<string> = new Set(['COORDINATOR_NOT_AVAILABLE', 'COORDINATOR_LOAD_IN_PROGRESS', 'NOT_COORDINATOR', 'NETWORK_EXCEPTION']);

export function isCoordinatorError(error: unknown): error is RunnelError {
  return error instanceof RunnelError && COORDINATOR_ERRORS.has(error.errorName);
}

/** FindCoordinator on any broker, once; a Kafka error in the answer is thrown naming the group. */
async function lookUpCoordinator(cluster: Cluster, groupId: string): Promise<GroupCoordinator> {
  const answer = await cluster.anyBroker((connection) => connection.group('FindCoordinator', { key: groupId }));
  if (answer.errorCode !== 0) {
    throw RunnelError.fromCode(answer.errorCode, `find the coordinator of group '${groupId}'${answer.errorMessage ? `: ${answer.errorMessage}` : ''}`);
  }
  return { nodeId: answer.nodeId, connection: cluster.connection(brokerAddress(answer.host, answer.port)) };
}

/**
 * Runs `call` on the coordinator of `groupId`. When the lookup or `call` throws a coordinator
 * error (see isCoordinatorError; `call` turns the error codes of its answer into RunnelErrors),
 * the coordinator is looked up again after a backoff, for up to `timeoutMs` in all; then the last
 * error is thrown. Other errors are thrown at once. `call` may therefore run more than once.
 */
export async function callCoordinator<T>(
  cluster: Cluster,
  groupId: string,
  call: (coordinator: GroupCoordinator) => Promise<T>,
  timeoutMs: number = cluster.options.requestTimeoutMs,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await call(await lookUpCoordinator(cluster, groupId));
    } catch (error) {
      if (!isCoordinatorError(error)) throw error;
      const remainingMs = deadline - Date.now();
      if (remainingMs <= 0) {
        throw RunnelError.fromCode(error.code, `group '${groupId}': no coordinator answered within ${timeoutMs} ms (last: ${error.detail})`);
      }
      // The last wait is cut to the deadline, so the call gives up at requestTimeoutMs, not a backoff before it.
      await sleep(Math.min(backoffMs(attempt, COORDINATOR_BACKOFF_MS, COORDINATOR_BACKOFF_MAX_MS), remainingMs));
    }
  }
}

/** The coordinator of `groupId`, looked up again on coordinator errors for up to `timeoutMs`. */
export function findCoordinator(cluster: Cluster, groupId: string, timeoutMs?: number): Promise<GroupCoordinator> {
  return callCoordinator(cluster, groupId, async (coordinator) => coordinator, timeoutMs);
}
