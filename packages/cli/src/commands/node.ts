import { createLogger } from '@runnel/common';
import { loadBrokerConfig, type ConfigOptions } from './config.js';

/** `runnel node`: runs one node in this process until SIGTERM or SIGINT, then stops cleanly and exits 0. */
export async function runNode(options: ConfigOptions): Promise<void> {
  const config = loadBrokerConfig(options);
  const { Node } = await import('@runnel/broker');
  const logger = createLogger({ name: 'runnel', bindings: { nodeId: config.nodeId } });
  const node = new Node(config, logger, {
    // The node is broken, not stopping: no graceful shutdown (it would hand over leadership and
    // write more), just one line saying why, and a non-zero exit for the supervisor.
    onFatal: (error) => {
      process.stderr.write(`runnel: node ${config.nodeId}'s controller (Raft member) failed, exiting: ${error.message}\n`);
      process.exit(1);
    },
  });
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    node.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  try {
    await node.start();
  } catch (error) {
    await node.stop().catch(() => undefined);
    throw error;
  }
}
