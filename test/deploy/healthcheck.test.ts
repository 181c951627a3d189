// The image's HEALTHCHECK script (deploy/docker/healthcheck.mjs) on this machine, against a real
// node: it finds the HTTP listener as the node does (server.properties, then RUNNEL_* variables)
// and exits 0 only on a 200 from /readyz. The container test runs it inside the image too.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { freePort } from '@runnel/testkit';
import { useSingleNode } from '../integration/harness.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

function runHealthcheck(configFile: string, env: NodeJS.ProcessEnv = {}) {
  const result = spawnSync(process.execPath, ['deploy/docker/healthcheck.mjs', configFile], { cwd: root, encoding: 'utf8', timeout: 10_000, env: { ...process.env, ...env } });
  return { status: result.status, output: `${result.stdout}${result.stderr}`.trim() };
}

describe('the image health check script', () => {
  const fixture = useSingleNode();

  it('passes on a ready node, reading the HTTP port from its server.properties', () => {
    expect(runHealthcheck(fixture.node.configPath)).toEqual({ status: 0, output: 'ready' });
  });

  it('follows RUNNEL_LISTENERS over the file, and fails naming the URL that did not answer', async () => {
    const node = fixture.node;
    const closedPort = await freePort(); // released again: nothing listens there
    const listeners = `PLAINTEXT://127.0.0.1:${node.kafkaPort},GRPC://127.0.0.1:${node.grpcPort},CONTROLLER://127.0.0.1:${node.controllerPort},HTTP://127.0.0.1:${closedPort}`;
    expect(runHealthcheck(node.configPath, { RUNNEL_LISTENERS: listeners })).toEqual({ status: 1, output: `not ready: http://127.0.0.1:${closedPort}/readyz: ECONNREFUSED` });
  });

  it('fails with the node\'s own message on a configuration the node would refuse', () => {
    const result = runHealthcheck(fixture.node.configPath, { RUNNEL_NODE_ID: 'two' });
    expect(result.status).toBe(1);
    expect(result.output).toMatch(/^not ready: .*node\.id/);
  });
});
