// The leader-epoch cache of one partition (Kafka's LeaderEpochFileCache, KIP-101/KIP-279): which
// leader epoch each part of the log was written in, as (epoch, startOffset) entries with strictly
// increasing epochs and non-decreasing start offsets. The start offset of an epoch is the offset of
// the first batch written in it. Persisted as `leader-epoch-checkpoint` in the partition directory
// in Kafka's checkpoint format, rewritten atomically whenever an entry is added or removed.
// PartitionLog owns when the cache changes; this class keeps the entries and the file consistent.
import fs from 'node:fs';
import { join } from 'node:path';
import { assert, replaceFile } from './files.js';

export const LEADER_EPOCH_CHECKPOINT_FILE = 'leader-epoch-checkpoint';
const CHECKPOINT_VERSION = 0;
const INT32_MAX = 0x7fff_ffff;

export interface EpochEntry {
  epoch: number;
  startOffset: number;
}

export type CheckpointLoad = { entries: EpochEntry[] } | { entries: null; reason: string; missing: boolean };

function isEpoch(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0 && value <= INT32_MAX;
}

function isOffset(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}

/** `0\nN\nepoch startOffset\n…`, as Kafka's CheckpointFile writes it. */
export function formatCheckpoint(entries: readonly EpochEntry[]): string {
  let text = `${CHECKPOINT_VERSION}\n${entries.length}\n`;
  for (const { epoch, startOffset } of entries) text += `${epoch} ${startOffset}\n`;
  return text;
}

/** Parses a checkpoint, checking the version, the count and the ordering; throws Error with the reason. */
export function parseCheckpoint(text: string): EpochEntry[] {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const integer = (line: string | undefined, what: string): number => {
    if (line === undefined || !/^-?\d+$/.test(line.trim())) throw new Error(`${what}: expected an integer, got ${JSON.stringify(line ?? '')}`);
    return Number(line.trim());
  };
  const version = integer(lines[0], 'line 1 (version)');
  if (version !== CHECKPOINT_VERSION) throw new Error(`unsupported version ${version}`);
  const count = integer(lines[1], 'line 2 (entry count)');
  if (!Number.isSafeInteger(count) || count < 0) throw new Error(`bad entry count ${count}`);
  if (lines.length - 2 !== count) throw new Error(`the count says ${count} entries, the file has ${lines.length - 2}`);
  const entries: EpochEntry[] = [];
  for (let i = 0; i < count; i++) {
    const line = lines[i + 2]!;
    const match = /^\s*(\d+)\s+(\d+)\s*$/.exec(line);
    if (match === null) throw new Error(`line ${i + 3}: expected "epoch startOffset", got ${JSON.stringify(line)}`);
    const entry = { epoch: Number(match[1]), startOffset: Number(match[2]) };
    if (!isEpoch(entry.epoch) || !isOffset(entry.startOffset)) throw new Error(`line ${i + 3}: out of range: ${line}`);
    const previous = entries.at(-1);
    if (previous !== undefined && (entry.epoch <= previous.epoch || entry.startOffset < previous.startOffset)) {
      throw new Error(`line ${i + 3}: entry ${entry.epoch} ${entry.startOffset} does not follow ${previous.epoch} ${previous.startOffset}`);
    }
    entries.push(entry);
  }
  return entries;
}

/** Reads `dir`/leader-epoch-checkpoint; `entries: null` with the reason when it is missing or unreadable. */
export function readCheckpoint(dir: string): CheckpointLoad {
  let text: string;
  try {
    text = fs.readFileSync(join(dir, LEADER_EPOCH_CHECKPOINT_FILE), 'utf8');
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    return { entries: null, missing, reason: missing ? 'missing' : (error as Error).message };
  }
  try {
    return { entries: parseCheckpoint(text) };
  } catch (error) {
    return { entries: null, missing: false, reason: (error as Error).message };
  }
}

/** Replaces the checkpoint: temporary file, rename; `durable` (the default) fsyncs the file before and the directory after. */
export function writeCheckpoint(dir: string, entries: readonly EpochEntry[], options: { readonly durable?: boolean } = {}): void {
  replaceFile(join(dir, LEADER_EPOCH_CHECKPOINT_FILE), formatCheckpoint(entries), options);
}

/**
 * The entries in memory. Mutators return true when they changed something; the owner then calls
 * persist() (PartitionLog batches the changes of one operation into one write).
 */
export class LeaderEpochCache {
  private entries: EpochEntry[];

  constructor(
    readonly dir: string,
    entries: readonly EpochEntry[] = [],
  ) {
    this.entries = entries.map((entry) => ({ ...entry }));
    this.checkInvariants();
  }

  /** Entries oldest first (a copy). */
  all(): EpochEntry[] {
    return this.entries.map((entry) => ({ ...entry }));
  }

  get isEmpty(): boolean {
    return this.entries.length === 0;
  }

  /** The latest epoch, or -1 when empty. */
  get latestEpoch(): number {
    return this.entries.at(-1)?.epoch ?? -1;
  }

  get latestEntry(): EpochEntry | null {
    const last = this.entries.at(-1);
    return last === undefined ? null : { ...last };
  }

  /**
   * The largest epoch <= `epoch` and its end offset: the start offset of the next larger epoch,
   * or `logEndOffset` for the latest. Below the first entry, as Kafka: the requested epoch ends
   * where the first known one starts (a follower with only older data truncates there).
   * { -1, -1 } for epoch -1 or an empty cache.
   */
  endOffsetFor(epoch: number, logEndOffset: number): { epoch: number; endOffset: number } {
    let low = 0;
    let high = this.entries.length - 1;
    let floor = -1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      if (this.entries[middle]!.epoch <= epoch) {
        floor = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    if (floor === -1) return epoch < 0 || this.entries.length === 0 ? { epoch: -1, endOffset: -1 } : { epoch, endOffset: this.entries[0]!.startOffset };
    const next = this.entries[floor + 1];
    return { epoch: this.entries[floor]!.epoch, endOffset: next === undefined ? logEndOffset : next.startOffset };
  }

  /**
   * Adds (epoch, startOffset) if `epoch` is above the latest; false (no change) otherwise. The
   * caller guarantees startOffset >= the latest entry's start offset.
   */
  assign(epoch: number, startOffset: number): boolean {
    assert(isEpoch(epoch), () => `leader epoch ${epoch} must be an integer in [0, ${INT32_MAX}]`);
    assert(isOffset(startOffset), () => `epoch start offset ${startOffset} must be a non-negative safe integer`);
    if (epoch <= this.latestEpoch) return false;
    const latest = this.entries.at(-1);
    assert(latest === undefined || startOffset >= latest.startOffset, () => `epoch ${epoch} cannot start at ${startOffset}, before epoch ${latest!.epoch} at ${latest!.startOffset}`);
    this.entries.push({ epoch, startOffset });
    return true;
  }

  /** Drops every entry with startOffset >= `offset` (Kafka's truncateFromEnd). */
  truncateFromEnd(offset: number): boolean {
    let keep = this.entries.length;
    while (keep > 0 && this.entries[keep - 1]!.startOffset >= offset) keep--;
    if (keep === this.entries.length) return false;
    this.entries.length = keep;
    return true;
  }

  /**
   * The log now starts at `offset` (Kafka's truncateFromStart): drops the entries wholly below it
   * and keeps the latest entry starting at or below it, its start offset raised to `offset`.
   */
  truncateFromStart(offset: number): boolean {
    let covering = -1;
    while (covering + 1 < this.entries.length && this.entries[covering + 1]!.startOffset <= offset) covering++;
    if (covering === -1) return false;
    const entry = this.entries[covering]!;
    if (covering === 0 && entry.startOffset === offset) return false;
    this.entries.splice(0, covering);
    this.entries[0] = { epoch: entry.epoch, startOffset: offset };
    return true;
  }

  clear(): boolean {
    if (this.entries.length === 0) return false;
    this.entries = [];
    return true;
  }

  /**
   * Writes the checkpoint file atomically. `durable: false` skips the fsyncs, for a change whose
   * loss is harmless (retention raising the first entry: open() trims entries below the log start
   * again, and rebuilds an unreadable file from the batch headers).
   */
  persist(options: { readonly durable?: boolean } = {}): void {
    this.checkInvariants();
    writeCheckpoint(this.dir, this.entries, options);
  }

  private checkInvariants(): void {
    for (let i = 0; i < this.entries.length; i++) {
      const entry = this.entries[i]!;
      assert(isEpoch(entry.epoch) && isOffset(entry.startOffset), () => `bad epoch entry ${entry.epoch} ${entry.startOffset}`);
      const previous = this.entries[i - 1];
      assert(
        previous === undefined || (entry.epoch > previous.epoch && entry.startOffset >= previous.startOffset),
        () => `epoch entry ${entry.epoch} ${entry.startOffset} does not follow ${previous!.epoch} ${previous!.startOffset}`,
      );
    }
  }
}
