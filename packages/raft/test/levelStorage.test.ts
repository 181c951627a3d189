import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, truncateSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LevelRaftStorage, RaftLogMissingError, RaftStorageError } from '../src/host/levelStorage.js';
import type { Entry } from '../src/types.js';

const dirs: string[] = [];
function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'raft-level-'));
  dirs.push(dir);
  return join(dir, 'raft');
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const bootstrap = { voters: [1, 2, 3], learners: [] };
const entry = (index: number, term: number, text = `e${index}`): Entry => ({ index, term, type: 'normal', data: Buffer.from(text) });

describe('LevelRaftStorage', () => {
  it('starts empty with the bootstrap configuration', async () => {
    const storage = await LevelRaftStorage.open(freshDir(), { nodeId: 1, bootstrap });
    expect(storage.initialState()).toEqual({ hardState: { term: 0, vote: 0, commit: 0 }, confState: bootstrap });
    expect([storage.firstIndex(), storage.lastIndex()]).toEqual([1, 0]);
    await storage.close();
  });

  it('keeps hard state and entries across a reopen, replacing a conflicting tail', async () => {
    const dir = freshDir();
    let storage = await LevelRaftStorage.open(dir, { nodeId: 1, bootstrap });
    await storage.persist({ entries: [entry(1, 1), entry(2, 1), entry(3, 1)], hardState: { term: 1, vote: 1, commit: 1 } });
    await storage.persist({ entries: [entry(2, 2, 'new'), entry(3, 2, 'new3'), entry(4, 2)], hardState: { term: 2, vote: 2, commit: 2 } });
    await storage.close();
    storage = await LevelRaftStorage.open(dir, { nodeId: 1, bootstrap });
    expect(storage.initialState().hardState).toEqual({ term: 2, vote: 2, commit: 2 });
    expect(storage.entries(1, 5, 100).map((e) => [e.index, e.term, Buffer.from(e.data).toString()])).toEqual([
      [1, 1, 'e1'],
      [2, 2, 'new'],
      [3, 2, 'new3'],
      [4, 2, 'e4'],
    ]);
    await storage.persist({ entries: [entry(3, 3)], hardState: { term: 3, vote: 3, commit: 2 } });
    expect(storage.lastIndex()).toBe(3);
    await storage.close();
    storage = await LevelRaftStorage.open(dir, { nodeId: 1, bootstrap });
    expect(storage.lastIndex()).toBe(3);
    expect(storage.term(3)).toBe(3);
    await storage.close();
  });

  it('compacts behind a snapshot, keeping the retained entries, and reopens the same', async () => {
    const dir = freshDir();
    let storage = await LevelRaftStorage.open(dir, { nodeId: 2, bootstrap });
    await storage.persist({ entries: Array.from({ length: 20 }, (_, i) => entry(i + 1, 1)), hardState: { term: 1, vote: 0, commit: 20 } });
    await storage.compact(15, bootstrap, Buffer.from('state@15'), 5);
    expect([storage.firstIndex(), storage.lastIndex(), storage.snapshot().metadata.index]).toEqual([11, 20, 15]);
    await storage.close();
    // After a restart the log starts behind the snapshot (the retained entries only serve
    // followers of the running leader), and the level store holds no orphaned entries.
    storage = await LevelRaftStorage.open(dir, { nodeId: 2, bootstrap });
    expect([storage.firstIndex(), storage.lastIndex()]).toEqual([16, 20]);
    expect(Buffer.from(storage.snapshot().data).toString()).toBe('state@15');
    await storage.compact(18, bootstrap, Buffer.from('state@18'), 0);
    await storage.close();
    storage = await LevelRaftStorage.open(dir, { nodeId: 2, bootstrap });
    expect([storage.firstIndex(), storage.lastIndex(), storage.term(20)]).toEqual([19, 20, 1]);
    await storage.close();
  });

  it('installs a snapshot from a leader, replacing the whole log', async () => {
    const dir = freshDir();
    let storage = await LevelRaftStorage.open(dir, { nodeId: 3, bootstrap });
    await storage.persist({ entries: [entry(1, 1), entry(2, 1)] });
    await storage.persist({ snapshot: { metadata: { index: 50, term: 4, confState: bootstrap }, data: Buffer.from('s50') }, entries: [], hardState: { term: 4, vote: 0, commit: 50 } });
    expect([storage.firstIndex(), storage.lastIndex()]).toEqual([51, 50]);
    await storage.close();
    storage = await LevelRaftStorage.open(dir, { nodeId: 3, bootstrap });
    expect([storage.firstIndex(), storage.lastIndex(), storage.term(50)]).toEqual([51, 50, 4]);
    await storage.close();
  });

  it('without createIfEmpty, refuses a missing or emptied directory (creating nothing) and opens an existing log', async () => {
    const dir = freshDir();
    const missing = await LevelRaftStorage.open(dir, { nodeId: 1, bootstrap, createIfEmpty: false }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(RaftLogMissingError);
    expect((missing as Error).message).toBe(`raft storage ${dir}: holds no Raft log, and this member may not start a new one`);
    expect(existsSync(dir)).toBe(false);
    mkdirSync(dir);
    await expect(LevelRaftStorage.open(dir, { nodeId: 1, bootstrap, createIfEmpty: false })).rejects.toBeInstanceOf(RaftLogMissingError);
    // Still refused the next time: the refusal wrote no log.
    await expect(LevelRaftStorage.open(dir, { nodeId: 1, bootstrap, createIfEmpty: false })).rejects.toBeInstanceOf(RaftLogMissingError);

    const created = await LevelRaftStorage.open(dir, { nodeId: 1, bootstrap });
    expect(created.created).toBe(true);
    await created.close();
    const reopened = await LevelRaftStorage.open(dir, { nodeId: 1, bootstrap, createIfEmpty: false });
    expect(reopened.created).toBe(false);
    await reopened.close();
  });

  it("refuses another node's directory", async () => {
    const dir = freshDir();
    await (await LevelRaftStorage.open(dir, { nodeId: 1, bootstrap })).close();
    await expect(LevelRaftStorage.open(dir, { nodeId: 2, bootstrap })).rejects.toThrow(/belongs to node 1, not node 2/);
  });

  it('refuses damaged files with an error naming the directory, never starting empty', async () => {
    const dir = freshDir();
    const storage = await LevelRaftStorage.open(dir, { nodeId: 1, bootstrap });
    await storage.persist({ entries: [entry(1, 1)], hardState: { term: 1, vote: 1, commit: 1 } });
    await storage.close();
    writeFileSync(join(dir, 'CURRENT'), 'MANIFEST-999999\n');
    const error = await LevelRaftStorage.open(dir, { nodeId: 1, bootstrap }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RaftStorageError);
    expect((error as Error).message).toContain(dir);
  });

  it('refuses a truncated manifest with an error naming the directory', async () => {
    const dir = freshDir();
    const storage = await LevelRaftStorage.open(dir, { nodeId: 1, bootstrap });
    await storage.persist({ entries: [entry(1, 1), entry(2, 1)], hardState: { term: 1, vote: 1, commit: 2 } });
    await storage.close();
    const manifest = readdirSync(dir).find((name) => name.startsWith('MANIFEST-'))!;
    truncateSync(join(dir, manifest), Math.floor(statSync(join(dir, manifest)).size / 2));
    const error = await LevelRaftStorage.open(dir, { nodeId: 1, bootstrap }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RaftStorageError);
    expect((error as Error).message).toContain(dir);
  });
});
