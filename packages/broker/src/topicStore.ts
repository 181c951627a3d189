// The topics this node hosts, kept in one JSON file in the log directory and replaced atomically
// (write a temporary file, fsync, rename, fsync the directory), so a crash leaves either the old
// or the new list and never half of one. A file that does not parse is a startup error naming
// the file: silently starting with no topics would orphan every partition on disk.
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

export interface TopicRecord {
  name: string;
  topicId: string;
  partitions: number;
  replicationFactor: number;
  /** The topic's own config overrides, as given (validated on create). */
  configs: Record<string, string>;
  /** Leader epoch stamped on every batch written by this node as leader. */
  leaderEpoch: number;
  createdAtMs: number;
}

interface TopicFile {
  version: 1;
  topics: TopicRecord[];
}

export class TopicStoreError extends Error {}

export class TopicStore {
  static readonly FILE_NAME = 'topics.json';
  private readonly path: string;

  constructor(private readonly logDir: string) {
    this.path = join(logDir, TopicStore.FILE_NAME);
  }

  load(): TopicRecord[] {
    if (!existsSync(this.path)) return [];
    let parsed: TopicFile;
    try {
      parsed = JSON.parse(readFileSync(this.path, 'utf8')) as TopicFile;
    } catch (error) {
      throw new TopicStoreError(`${this.path} is corrupt (${(error as Error).message}); refusing to start rather than forget its topics`);
    }
    if (parsed?.version !== 1 || !Array.isArray(parsed.topics)) {
      throw new TopicStoreError(`${this.path} has an unknown format (version ${String(parsed?.version)})`);
    }
    return parsed.topics;
  }

  save(topics: readonly TopicRecord[]): void {
    const temporary = `${this.path}.tmp`;
    const body: TopicFile = { version: 1, topics: [...topics] };
    writeFileSync(temporary, JSON.stringify(body, null, 2));
    const fd = openSync(temporary, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, this.path);
    const dirFd = openSync(this.logDir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  }
}
