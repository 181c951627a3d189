// A full disk, for real: one node whose log directory is a 16 MiB tmpfs that the test fills. Nearly
// full (free space under log.dir.min.free.bytes), the node says so in /readyz, the metrics and
// `cluster health`, and `topic create` places nothing on it. Completely full, a produce fails with
// ENOSPC: the replica and the log directory go offline, and `runnel produce` prints the
// KAFKA_STORAGE_ERROR at once as a warning instead of after its 120 s delivery timeout. After
// space is freed the documented way back is a restart. And `runnel cluster up` keeps its node
// running when the node's log file can no longer be written. Needs root (mount); skipped otherwise.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NodeProcess, RUNNEL_BIN, makeTempDir } from '@runnel/testkit';
import { runCli } from './cli.js';
import { describeRequiring } from '../compat/systemClients.js';
import { freeBasePort, printNodeLogsOnFailure, waitFor } from './harness.js';

const MIB = 1024 * 1024;
const LOG_DIR_BYTES = 16 * MIB;
const MIN_FREE_BYTES = 4 * MIB;
const TOPIC = 'disk';

/** Whether this process may mount a tmpfs (root, and a kernel that lets it). */
/** What this machine lacks to mount a tmpfs, or undefined when it can (CI runs as root). */
function cannotMount(): string | undefined {
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root';
  return spawnSync('mount', ['--version']).status === 0 ? undefined : 'no mount command (apt-get install -y mount)';
}

/** Fills the filesystem at `dir` with `file` until only `leaveBytes` are free (0: until ENOSPC). */
function fill(dir: string, file: string, leaveBytes: number): void {
  const fd = openSync(file, 'a');
  const chunk = Buffer.alloc(256 * 1024, 7);
  try {
    for (;;) {
      const stats = statfsSync(dir);
      const free = stats.bavail * stats.bsize;
      if (free <= leaveBytes) return;
      const size = Math.min(chunk.length, Math.max(stats.bsize, free - leaveBytes));
      writeSync(fd, chunk, 0, size);
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    closeSync(fd);
  }
}

async function readyz(node: NodeProcess): Promise<{ status: number; reasons: string[] }> {
  const response = await fetch(`http://127.0.0.1:${node.httpPort}/readyz`, { signal: AbortSignal.timeout(2000) });
  return { status: response.status, reasons: ((await response.json()) as { reasons: string[] }).reasons };
}

async function metric(node: NodeProcess, name: string): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${node.httpPort}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

interface HealthJson {
  healthy: boolean;
  logDirProblems: string[];
  problems: string[];
}

async function health(node: NodeProcess): Promise<HealthJson> {
  const result = await runCli(['--bootstrap', node.bootstrap, 'cluster', 'health', '--format', 'json'], { timeoutMs: 20_000 });
  return JSON.parse(result.stdout) as HealthJson;
}

/**
 * Runs `runnel produce` on `lines` lines of 1 KiB and returns the first stderr line starting with
 * "warning:" and how long after the start it came; the process is stopped then (it would retry for
 * its whole delivery timeout).
 */
async function firstProduceWarning(bootstrap: string, lines: number, timeoutMs: number): Promise<{ line: string; afterMs: number }> {
  const child = spawn(process.execPath, [RUNNEL_BIN, '--bootstrap', bootstrap, 'produce', TOPIC], { stdio: ['pipe', 'ignore', 'pipe'] });
  const startedMs = Date.now();
  child.stdin.on('error', () => undefined); // killed while input is still being written
  child.stdin.end(`${'x'.repeat(1023)}\n`.repeat(lines));
  try {
    return await new Promise((resolve, reject) => {
      let stderr = '';
      const timer = setTimeout(() => reject(new Error(`no warning from runnel produce within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString('utf8');
        const line = stderr.split('\n').find((candidate) => candidate.startsWith('warning:') && stderr.includes(`${candidate}\n`));
        if (line === undefined) return;
        clearTimeout(timer);
        resolve({ line, afterMs: Date.now() - startedMs });
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`runnel produce exited (${code}) without a warning; stderr: ${stderr}`));
      });
    });
  } finally {
    child.kill('SIGKILL');
  }
}

describeRequiring('a full log directory', cannotMount(), () => {
  const state = {} as { dir: string; mountPoint: string; mounted: boolean; node: NodeProcess };
  printNodeLogsOnFailure(() => [state.node]);

  beforeAll(async () => {
    state.dir = await makeTempDir('runnel-full-disk-');
    state.mountPoint = join(state.dir, 'logs');
    mkdirSync(state.mountPoint);
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${LOG_DIR_BYTES}`, 'tmpfs', state.mountPoint], { encoding: 'utf8' });
    if (mounted.status !== 0) throw new Error(`mount tmpfs: ${mounted.stderr}`);
    state.mounted = true;
    state.node = await NodeProcess.start({
      dataDir: join(state.dir, 'node'),
      config: {
        'log.dirs': state.mountPoint,
        // The metadata log elsewhere: this test is about the partition logs' disk.
        'metadata.log.dir': join(state.dir, 'metadata'),
        'log.dir.min.free.bytes': String(MIN_FREE_BYTES),
      },
    });
  });

  afterAll(async () => {
    await state.node?.kill();
    if (state.mounted) spawnSync('umount', ['-l', state.mountPoint]);
    if (state.dir !== undefined) await rm(state.dir, { recursive: true, force: true });
  });

  it('is reported, keeps new partitions off the broker, warns the producer at once, and comes back after a restart', async () => {
    const { node, mountPoint } = state;
    const bootstrap = ['--bootstrap', node.bootstrap];
    const created = await runCli([...bootstrap, 'topic', 'create', TOPIC, '--partitions', '2', '--replication-factor', '1'], { timeoutMs: 20_000 });
    expect(created.code, created.stderr).toBe(0);
    expect((await readyz(node)).status).toBe(200);
    expect(await metric(node, 'runnel_storage_disk_total_bytes')).toBe(LOG_DIR_BYTES);
    expect(await metric(node, 'runnel_storage_disk_free_bytes')).toBeGreaterThan(MIN_FREE_BYTES);
    expect(await metric(node, 'runnel_storage_disk_free_space_alert')).toBe(0);

    // Nearly full: 2 MiB free, under log.dir.min.free.bytes.
    fill(mountPoint, join(mountPoint, 'filler-1'), 2 * MIB);
    const full = await waitFor('/readyz to say the log directory is nearly full', async () => {
      const answer = await readyz(node);
      return answer.status === 503 && answer.reasons.some((reason) => /log directory .* nearly full: .* free, under log.dir.min.free.bytes \(4\.0 MiB\)/.test(reason)) ? answer : undefined;
    }, 5_000);
    expect(full.reasons).toHaveLength(1);
    expect(await metric(node, 'runnel_storage_disk_free_space_alert')).toBe(1);
    const nearlyFull = await waitFor('cluster health to name the full log directory', async () => {
      const verdict = await health(node);
      return verdict.logDirProblems.length > 0 ? verdict : undefined;
    }, 10_000);
    expect(nearlyFull).toMatchObject({ healthy: false, logDirProblems: ['1 (full)'] });
    const refused = await runCli([...bootstrap, 'topic', 'create', 'elsewhere', '--partitions', '1', '--replication-factor', '1'], { timeoutMs: 20_000 });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/broker\(s\) 1 \(log directory full\) get no new replicas/);

    // Full: the next append fails with ENOSPC; the producer hears of it at once, not in 120 s.
    fill(mountPoint, join(mountPoint, 'filler-2'), 0);
    const warning = await firstProduceWarning(node.bootstrap, 4000, 20_000);
    expect(warning.line).toMatch(new RegExp(`^warning: produce to ${TOPIC}-[01] failed with KAFKA_STORAGE_ERROR: .*ENOSPC.*runnel cluster health.*Retrying for up to 120 s\\.$`));
    expect(warning.afterMs).toBeLessThan(20_000);
    const offline = await waitFor('/readyz to say the log directory is offline', async () => {
      const answer = await readyz(node);
      return answer.reasons.some((reason) => /offline since a write failed \(disk-[01]: ENOSPC.*then restart the broker/.test(reason)) ? answer : undefined;
    }, 5_000);
    expect(offline.status).toBe(503);
    expect(await metric(node, 'runnel_offline_log_dirs')).toBe(1);
    const failed = await waitFor('cluster health to name the offline log directory', async () => {
      const verdict = await health(node);
      return verdict.logDirProblems.includes('1 (offline)') ? verdict : undefined;
    }, 10_000);
    expect(failed.healthy).toBe(false);

    // Space freed: the directory stays offline (its failed logs are closed) until the restart.
    rmSync(join(mountPoint, 'filler-1'));
    rmSync(join(mountPoint, 'filler-2'));
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect((await readyz(node)).reasons.some((reason) => /offline since a write failed/.test(reason))).toBe(true);
    await node.restart('SIGTERM');
    await waitFor('/readyz 200 after the restart', async () => ((await readyz(node)).status === 200 ? true : undefined), 20_000);
    expect(await metric(node, 'runnel_offline_log_dirs')).toBe(0);
    const healthy = await waitFor('cluster health to be healthy again', async () => {
      const verdict = await health(node);
      return verdict.healthy ? verdict : undefined;
    }, 20_000);
    expect(healthy.logDirProblems).toEqual([]);
    const again = await runCli([...bootstrap, 'topic', 'create', 'elsewhere', '--partitions', '1', '--replication-factor', '1'], { timeoutMs: 20_000 });
    expect(again.code, again.stderr).toBe(0);
    const produced = await runCli([...bootstrap, 'produce', TOPIC], { input: 'a\nb\nc\n', timeoutMs: 30_000 });
    expect(produced.code, produced.stderr).toBe(0);
    expect(produced.stderr).not.toContain('warning:');
  });
});

describeRequiring('runnel cluster up on a full disk', cannotMount(), () => {
  const state = {} as { dir: string; mounted: boolean };

  afterAll(async () => {
    if (state.mounted) spawnSync('umount', ['-l', join(state.dir, 'data')]);
    if (state.dir !== undefined) await rm(state.dir, { recursive: true, force: true });
  });

  it('keeps running, and its node serving, when the node log file can no longer be written', async () => {
    state.dir = await makeTempDir('runnel-full-disk-up-');
    const dataDir = join(state.dir, 'data');
    mkdirSync(dataDir);
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${LOG_DIR_BYTES}`, 'tmpfs', dataDir], { encoding: 'utf8' });
    if (mounted.status !== 0) throw new Error(`mount tmpfs: ${mounted.stderr}`);
    state.mounted = true;
    const basePort = await freeBasePort(1);
    const bootstrap = ['--bootstrap', `127.0.0.1:${basePort + 101}`];
    // No free-space floor: the 16 MiB disk would count as full from the start and refuse the topic.
    const child = spawn(process.execPath, [RUNNEL_BIN, 'cluster', 'up', '--nodes', '1', '--data-dir', dataDir, '--base-port', String(basePort)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RUNNEL_LOG_DIR_MIN_FREE_BYTES: '0' },
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await waitFor('cluster up to be ready', () => (output.includes('Press Ctrl-C to stop.') ? true : undefined), 60_000);
      const created = await runCli([...bootstrap, 'topic', 'create', TOPIC, '--partitions', '1', '--replication-factor', '1'], { timeoutMs: 20_000 });
      expect(created.code, created.stderr).toBe(0);
      fill(dataDir, join(dataDir, 'filler'), 0);
      // The append fails with ENOSPC, and the node logs why, at length, into a file on the full disk.
      await firstProduceWarning(bootstrap[1]!, 200, 20_000);
      await waitFor('cluster up to say the node log is dropped', () => (output.includes('its log output is dropped from now on') ? true : undefined), 10_000);
      expect(output).toMatch(/node 1: cannot write .*node\.log \(ENOSPC: no space left on device, write\); its log output is dropped from now on/);
      expect(child.exitCode).toBeNull();
      // The node is not blocked on a stdout nobody reads: it still answers, and keeps logging into the void.
      for (let k = 0; k < 3; k++) {
        const listed = await runCli([...bootstrap, 'topic', 'list'], { timeoutMs: 20_000 });
        expect(listed.code, listed.stderr).toBe(0);
      }
      expect(child.exitCode).toBeNull();
    } finally {
      child.kill('SIGINT');
      await exited;
    }
  });
});
