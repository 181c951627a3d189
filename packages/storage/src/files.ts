// File names, assertions and the few fs helpers every part of storage shares.
import fs from 'node:fs';
import { dirname, join } from 'node:path';

export const LOG_SUFFIX = '.log';
export const OFFSET_INDEX_SUFFIX = '.index';
export const TIME_INDEX_SUFFIX = '.timeindex';
/** Written by close(), removed by open(): its absence at open means the last run crashed. */
export const CLEAN_SHUTDOWN_FILE = '.runnel_cleanshutdown';
/** Suffixes of files left by an operation that did not finish; recovery deletes them. */
export const STRAY_SUFFIXES = ['.deleted', '.cleaned', '.swap'] as const;
export const DELETED_SUFFIX = '.deleted';

const OFFSET_DIGITS = 20;
const SEGMENT_FILE_PATTERN = /^(\d{20})(\.log|\.index|\.timeindex)$/;
/** writev takes at most IOV_MAX (1024 on Linux) buffers per call. */
const IOV_MAX = 1024;
/** A short write that makes no progress this many times in a row is a disk error, not a retry. */
const WRITE_ATTEMPTS_MAX = 64;

export class AssertionError extends Error {
  constructor(message: string) {
    super(`storage invariant broken: ${message}`);
    this.name = 'AssertionError';
  }
}

/** A failed assertion is a programmer error: it throws and is not meant to be handled. */
export function assert(condition: boolean, message: string | (() => string)): asserts condition {
  if (!condition) throw new AssertionError(typeof message === 'string' ? message : message());
}

export function assertOffset(offset: number, name: string): void {
  assert(Number.isSafeInteger(offset) && offset >= 0, () => `${name} must be a non-negative safe integer, got ${offset}`);
}

export function segmentFileName(baseOffset: number, suffix: string): string {
  assertOffset(baseOffset, 'segment base offset');
  return String(baseOffset).padStart(OFFSET_DIGITS, '0') + suffix;
}

export function segmentPath(dir: string, baseOffset: number, suffix: string): string {
  return join(dir, segmentFileName(baseOffset, suffix));
}

/** `00000000000000000042.index` -> { baseOffset: 42, suffix: '.index' }; null for anything else. */
export function parseSegmentFileName(name: string): { baseOffset: number; suffix: string } | null {
  const match = SEGMENT_FILE_PATTERN.exec(name);
  if (match === null) return null;
  const baseOffset = Number(match[1]);
  if (!Number.isSafeInteger(baseOffset)) return null;
  return { baseOffset, suffix: match[2]! };
}

export function isStrayFile(name: string): boolean {
  return STRAY_SUFFIXES.some((suffix) => name.endsWith(suffix));
}

/** Makes a directory entry (a created, renamed or deleted file) durable. */
export function fsyncDirectory(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Writes all of `buffers` at `position` with as few writev calls as the kernel allows (one, unless
 * there are more than IOV_MAX buffers or the kernel writes short). Returns the bytes written.
 */
export function writevFully(fd: number, buffers: Buffer[], position: number): number {
  let total = 0;
  let index = 0;
  let pending: Buffer[] = buffers;
  let stalls = 0;
  while (index < pending.length) {
    const slice = index === 0 && pending.length <= IOV_MAX ? pending : pending.slice(index, index + IOV_MAX);
    let expected = 0;
    for (const buffer of slice) expected += buffer.length;
    const written = fs.writevSync(fd, slice, position + total);
    total += written;
    if (written === expected) {
      index += slice.length;
      continue;
    }
    // A short write: keep the unwritten remainder and go again.
    stalls = written === 0 ? stalls + 1 : 0;
    if (stalls >= WRITE_ATTEMPTS_MAX) throw new Error(`writev made no progress at byte ${position + total}`);
    pending = remainderAfter(slice, written).concat(pending.slice(index + slice.length));
    index = 0;
  }
  return total;
}

function remainderAfter(buffers: Buffer[], written: number): Buffer[] {
  const rest: Buffer[] = [];
  let skip = written;
  for (const buffer of buffers) {
    if (skip >= buffer.length) {
      skip -= buffer.length;
      continue;
    }
    rest.push(skip > 0 ? buffer.subarray(skip) : buffer);
    skip = 0;
  }
  return rest;
}

/** Reads up to `length` bytes at `position` into `buffer[0..]`; fewer only at end of file. */
export function readFully(fd: number, buffer: Buffer, length: number, position: number): number {
  assert(length <= buffer.length, 'readFully: length exceeds the buffer');
  let total = 0;
  while (total < length) {
    const read = fs.readSync(fd, buffer, total, length - total, position + total);
    if (read === 0) break;
    total += read;
  }
  return total;
}

export function fdatasyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fdatasync(fd, (error) => (error === null ? resolve() : reject(error))));
}

export function unlinkIfExists(path: string): boolean {
  try {
    fs.unlinkSync(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/** Reads the big-endian i64 at `position` as a number, asserting it is a safe integer. */
export function readSafeInt64(buffer: Buffer, position: number): number {
  const high = buffer.readInt32BE(position);
  const low = buffer.readUInt32BE(position + 4);
  const value = high * 0x1_0000_0000 + low;
  if (!Number.isSafeInteger(value)) return Number.NaN;
  return value;
}

/** Below this base offset every segment is durable; recovery after a crash validates from it on. */
export const RECOVERY_POINT_FILE = 'recovery-point';

/** The recovery point, or 0 (validate everything) when the file is missing or unreadable. */
export function readRecoveryPoint(dir: string): number {
  try {
    const value = Number(fs.readFileSync(join(dir, RECOVERY_POINT_FILE), 'utf8').trim());
    return Number.isSafeInteger(value) && value >= 0 ? value : 0;
  } catch {
    return 0;
  }
}

/**
 * Replaces the recovery point (temporary file, then rename). Raising it need not be durable: a
 * crash that loses the write leaves the lower value, and recovery validates more, never less.
 * Lowering it (after a truncation) must be durable, so `durable` fsyncs the file and directory.
 */
export function writeRecoveryPoint(dir: string, offset: number, durable: boolean): void {
  replaceFile(join(dir, RECOVERY_POINT_FILE), `${offset}\n`, { durable });
}

/**
 * Replaces a small file so that a crash leaves the old content or the new, never a mix: a
 * temporary file, renamed over the old one. `durable` (the default) fsyncs the file before the
 * rename and the directory after it, so the new content also survives a machine crash.
 */
export function replaceFile(path: string, text: string, options: { readonly durable?: boolean } = {}): void {
  const durable = options.durable ?? true;
  const temporary = `${path}.tmp`;
  const fd = fs.openSync(temporary, 'w', 0o644);
  try {
    fs.writeFileSync(fd, text);
    if (durable) fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temporary, path);
  if (durable) fsyncDirectory(dirname(path));
}

/** `replaceFile` off the event loop (the fsyncs run in libuv's thread pool). */
export async function replaceFileAsync(path: string, text: string): Promise<void> {
  const temporary = `${path}.tmp`;
  const handle = await fs.promises.open(temporary, 'w', 0o644);
  try {
    await handle.writeFile(text);
    await handle.datasync();
  } finally {
    await handle.close();
  }
  await fs.promises.rename(temporary, path);
  const directory = await fs.promises.open(dirname(path), 'r');
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}
