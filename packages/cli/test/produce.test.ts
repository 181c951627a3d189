// `runnel produce` warns at once, once per partition, of a retriable error that needs an operator
// (a failed or full log directory) instead of staying silent for the whole delivery timeout.
import { RunnelError } from '@runnel/common';
import { describe, expect, it } from 'vitest';
import { operatorErrorWarner } from '../src/commands/produce.js';

describe('operatorErrorWarner', () => {
  it('prints one line per partition for KAFKA_STORAGE_ERROR and nothing for errors a leader move fixes', () => {
    const lines: string[] = [];
    const warn = operatorErrorWarner((line) => lines.push(line));
    // As the producer's sender words it.
    const storage = new RunnelError('KAFKA_STORAGE_ERROR', 'produce to orders-0: orders-0 is offline on this broker: ENOSPC: no space left on device, write');
    warn(new RunnelError('NOT_LEADER_OR_FOLLOWER'), 'orders', 0);
    warn(storage, 'orders', 0);
    warn(storage, 'orders', 0);
    warn(storage, 'orders', 1);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe(
      'warning: produce to orders-0 failed with KAFKA_STORAGE_ERROR: orders-0 is offline on this broker: ENOSPC: no space left on device, write. ' +
        "The broker's log directory failed (a full disk?); see `runnel cluster health`. Retrying for up to 120 s.\n",
    );
    expect(lines[1]).toMatch(/^warning: produce to orders-1 failed with KAFKA_STORAGE_ERROR/);
  });
});
