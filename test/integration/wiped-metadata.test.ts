// A controller whose metadata log directory was wiped has lost its Raft votes and log: starting it
// as a brand-new member could vote twice in a term. The node refuses, in one line, unless
// controller.quorum.new.member says it is a new member; a fresh node still starts on its own.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NodeProcess, makeTempDir } from '@runnel/testkit';
import { printNodeLogsOnFailure } from './harness.js';

describe('a controller whose metadata log directory was wiped', () => {
  let node: NodeProcess | undefined;
  let dir: string | undefined;
  printNodeLogsOnFailure(() => [node]);
  afterAll(async () => {
    await node?.kill();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('refuses to start, naming the directory and the way out; starts once controller.quorum.new.member=true says it is new', async () => {
    dir = await makeTempDir('runnel-wiped-');
    node = await NodeProcess.start({ dataDir: dir }); // a fresh node bootstraps on its own
    expect(await node.stop()).toEqual({ code: 0, signal: null });
    const metadataDir = join(dir, 'logs', '__cluster_metadata');
    await rm(metadataDir, { recursive: true, force: true });

    await expect(node.launch()).rejects.toThrow(/exited \(1\) before it was ready/);
    const errorLines = node.logs().split('\n').filter((line) => line.startsWith('runnel: '));
    expect(errorLines).toHaveLength(1);
    expect(errorLines[0]).toContain(`metadata log directory ${metadataDir} is empty, but node 1 has run before`);
    expect(errorLines[0]).toContain('controller.quorum.new.member=true');

    const ports = { grpc: node.grpcPort, controller: node.controllerPort, http: node.httpPort, kafka: node.kafkaPort };
    node = await NodeProcess.create({ dataDir: dir, ports, config: { 'controller.quorum.new.member': 'true' } });
    await node.launch();
    expect(await node.stop()).toEqual({ code: 0, signal: null });

    // The log exists again: later starts need no flag.
    node = await NodeProcess.create({ dataDir: dir, ports });
    await node.launch();
  });
});
