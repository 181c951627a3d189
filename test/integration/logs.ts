// On a failing test, print the tail of every node's output: the failure report then shows what
// the node saw, not only what the test expected.
import { beforeEach } from 'vitest';
import type { NodeProcess } from '@runnel/testkit';

const TAIL_BYTES = 8000;

export function printNodeLogsOnFailure(nodes: () => Array<NodeProcess | undefined>): void {
  beforeEach(({ onTestFailed }) => {
    onTestFailed(() => {
      for (const node of nodes()) {
        if (node === undefined) continue;
        process.stderr.write(`\n----- node ${node.nodeId} (${node.dataDir}), last ${TAIL_BYTES} bytes of output -----\n${node.logs().slice(-TAIL_BYTES)}\n`);
      }
    });
  });
}
