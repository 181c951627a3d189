// Chaos, short version for CI: one node at a time cut off from the other nodes (Raft, the
// controller API and replication through fault-injecting proxies; clients still reach it) past its
// session timeout, then healed, while producers send uniquely numbered values with acks=all
// (retrying on their own) and a consumer reads along. The cut-off node leaves every ISR and loses
// its leaderships; the checker proves no acknowledged record was lost, no offset changed its
// record, no duplicate without a retried unknown outcome, and consumers never went back; every
// replica ends byte-identical and the full ISR is back within 10 s of the last heal.
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { LocalCluster, makeTempDir } from '@runnel/testkit';
import { printNodeLogsOnFailure } from '../integration/harness.js';
import { CHAOS_NODE_CONFIG, runAndCheck } from './chaosRun.js';

describe('chaos: partition', () => {
  const state = {} as { cluster: LocalCluster; dir: string };
  printNodeLogsOnFailure(() => state.cluster?.nodes ?? []);
  beforeAll(async () => {
    state.dir = await makeTempDir('runnel-chaos-');
    state.cluster = await LocalCluster.start({
      nodes: 3,
      dataDir: state.dir,
      networkFaults: true,
      config: CHAOS_NODE_CONFIG,
    });
  });
  afterAll(async () => {
    for (const node of state.cluster?.nodes ?? []) node.resume();
    await state.cluster?.kill();
    if (state.dir !== undefined) await rm(state.dir, { recursive: true, force: true });
  });

  it('a node cut off from the others past its session timeout, then healed, loses no acknowledged record', async () => {
    await runAndCheck(state.cluster, 'partition');
  }, 120_000);
});
