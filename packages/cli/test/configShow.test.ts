// `runnel config show`, run as a user runs it: every key's effective value and where it came from
// (default, the file, a RUNNEL_* variable, --set), and the Kafka keys that have no effect, with why.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { RUNNEL_BIN } from '@runnel/testkit';

const KAFKA_1_0 = fileURLToPath(new URL('../../common/test/fixtures/kafka/1.0.0/server.properties', import.meta.url));

function runnel(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [RUNNEL_BIN, ...args], { env: { ...process.env, ...env }, timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
  });
}

/** The row of `key` in the table: its value and source columns. */
function row(table: string, key: string): string[] {
  const line = table.split('\n').find((text) => text.startsWith(`${key} `));
  if (line === undefined) throw new Error(`no row for ${key} in:\n${table}`);
  return line.split(/ {2,}/).slice(1);
}

describe('runnel config show', () => {
  const dir = mkdtempSync(join(tmpdir(), 'runnel-config-show-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('prints each effective value and where it came from: default, file, environment, --set', async () => {
    const shown = await runnel(['config', 'show', '--config', KAFKA_1_0, '--set', 'num.partitions=3', '--set', 'log.dirs=/var/lib/runnel'], { RUNNEL_LOG_RETENTION_HOURS: '1', RUNNEL_BROKER_ID: '4' });
    expect(shown.stderr).toBe('');
    expect(shown.code).toBe(0);
    expect(shown.stdout.split('\n')[0]).toBe(`Configuration of ${KAFKA_1_0} (precedence: default < file < environment < --set)`);
    expect(row(shown.stdout, 'node.id')).toEqual(['4', 'environment RUNNEL_BROKER_ID (as broker.id)']);
    expect(row(shown.stdout, 'num.partitions')).toEqual(['3', '--set']);
    expect(row(shown.stdout, 'log.dirs')).toEqual(['/var/lib/runnel', '--set']);
    expect(row(shown.stdout, 'log.retention.hours')).toEqual(['1', 'environment RUNNEL_LOG_RETENTION_HOURS']);
    expect(row(shown.stdout, 'log.segment.bytes')).toEqual(['1073741824', 'file']);
    expect(row(shown.stdout, 'min.insync.replicas')).toEqual(['1', 'default']);
    expect(row(shown.stdout, 'controller.quorum.voters')).toEqual(['4@127.0.0.1:9292', 'default; this node alone']);
    expect(row(shown.stdout, 'broker.rack')).toEqual(['-', 'default']);
    const ignored = shown.stdout.slice(shown.stdout.indexOf('Kafka keys with no effect in Runnel (accepted, ignored):'));
    expect(row(ignored, 'zookeeper.connect')).toEqual(['localhost:2181', 'file', 'the Raft controller replaces ZooKeeper: set controller.quorum.voters']);
    expect(row(ignored, 'num.io.threads')).toEqual(['8', 'file', 'a node serves everything on one Node.js event loop: there are no thread pools to size']);
  });

  it('prints the same as JSON for scripts', async () => {
    const shown = await runnel(['config', 'show', '--config', KAFKA_1_0, '--format', 'json'], { RUNNEL_NUM_PARTITIONS: '2' });
    expect(shown.code).toBe(0);
    const parsed = JSON.parse(shown.stdout) as { settings: Array<Record<string, string | null>>; ignoredKafkaKeys: Array<Record<string, string>> };
    const settings = new Map(parsed.settings.map((setting) => [setting.key, setting]));
    expect(settings.get('node.id')).toEqual({ key: 'node.id', value: '0', source: 'file', file: KAFKA_1_0, writtenAs: 'broker.id' });
    expect(settings.get('num.partitions')).toEqual({ key: 'num.partitions', value: '2', source: 'environment', variable: 'RUNNEL_NUM_PARTITIONS' });
    expect(settings.get('cluster.id')).toEqual({ key: 'cluster.id', value: null, source: 'default' });
    expect(parsed.ignoredKafkaKeys.map((setting) => setting.key)).toContain('zookeeper.connect');
    expect(parsed.ignoredKafkaKeys.find((setting) => setting.key === 'num.io.threads')).toEqual({ key: 'num.io.threads', value: '8', source: 'file', file: KAFKA_1_0, reason: expect.stringMatching(/event loop/) });
  });

  it('fails with one line naming the problem, as the node would', async () => {
    const file = join(dir, 'typo.properties');
    writeFileSync(file, 'broker.id=0\nnum.io.thread=8\n');
    const typo = await runnel(['config', 'show', '--config', file]);
    expect(typo.code).toBe(1);
    expect(typo.stderr).toBe(`runnel: ${file}: unknown config key 'num.io.thread' (did you mean 'num.io.threads'?)\n`);
    const refused = await runnel(['config', 'show', '--set', 'listeners=SASL_SSL://:9093,CONTROLLER://:9292']);
    expect(refused.stderr).toBe("runnel: listeners: 'SASL_SSL://:9093' is a SASL_SSL listener: Runnel serves plaintext listeners only (TLS and SASL are not implemented)\n");
  });
});
