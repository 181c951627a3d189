// The example state machine the Raft tests replicate: a string map changed by put and delete
// commands. Deterministic, so every member that applies the same entries holds the same map.
import type { StateMachine } from '../host/raftHost.js';

export type KvCommand = { op: 'put'; key: string; value: string } | { op: 'delete'; key: string };

export function encodeKvCommand(command: KvCommand): Uint8Array {
  return Buffer.from(JSON.stringify(command));
}

export class KvStateMachine implements StateMachine {
  readonly data = new Map<string, string>();
  /** Index of the last entry applied, for tests that compare members. */
  lastApplied = 0;

  apply(bytes: Uint8Array, index: number): unknown {
    this.lastApplied = index;
    let command: KvCommand;
    try {
      command = JSON.parse(Buffer.from(bytes).toString('utf8')) as KvCommand;
    } catch {
      return { error: 'not a KV command' }; // applied as a no-op on every member alike
    }
    if (command.op === 'put' && typeof command.key === 'string' && typeof command.value === 'string') {
      const previous = this.data.get(command.key) ?? null;
      this.data.set(command.key, command.value);
      return { index, previous };
    }
    if (command.op === 'delete' && typeof command.key === 'string') {
      const existed = this.data.delete(command.key);
      return { index, existed };
    }
    return { error: 'unknown KV command' };
  }

  get(key: string): string | undefined {
    return this.data.get(key);
  }

  snapshot(): Uint8Array {
    return Buffer.from(JSON.stringify({ lastApplied: this.lastApplied, entries: [...this.data] }));
  }

  restore(bytes: Uint8Array): void {
    const state = JSON.parse(Buffer.from(bytes).toString('utf8')) as { lastApplied: number; entries: Array<[string, string]> };
    this.data.clear();
    for (const [key, value] of state.entries) this.data.set(key, value);
    this.lastApplied = state.lastApplied;
  }
}
