// The HTTP listener's probes on real node processes: /healthz answers as soon as the process
// listens; /readyz answers 503 naming every failing rule (no quorum leader on a controller-only
// node, a broker not registered and its logs not recovered, a broker fenced after a pause past its
// session timeout, a broker whose metadata stalled) and 200 once the node is ready.
import { rm } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { Admin } from '@runnel/client';
import { LocalCluster, makeTempDir, type NodeProcess } from '@runnel/testkit';
import { printNodeLogsOnFailure, waitFor } from './harness.js';

interface Probe {
  status: number;
  body: { ready?: boolean; reasons?: string[]; alive?: boolean; [key: string]: unknown };
}

async function probe(node: NodeProcess, path: string, timeoutMs = 2000): Promise<Probe> {
  const response = await fetch(`http://127.0.0.1:${node.httpPort}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: response.status, body: (await response.json()) as Probe['body'] };
}

/** Polls /readyz until it answers 503 with a reason matching `reason`; returns the reasons. */
function notReadyBecause(node: NodeProcess, reason: RegExp, timeoutMs: number): Promise<string[]> {
  return waitFor(
    `node ${node.nodeId} /readyz 503 matching ${reason}`,
    async () => {
      const { status, body } = await probe(node, '/readyz');
      return status === 503 && body.reasons!.some((text) => reason.test(text)) ? body.reasons : undefined;
    },
    timeoutMs,
    50,
  );
}

function readyAgain(node: NodeProcess, timeoutMs: number): Promise<Probe> {
  return waitFor(`node ${node.nodeId} /readyz 200`, async () => {
    const answer = await probe(node, '/readyz');
    return answer.status === 200 ? answer : undefined;
  }, timeoutMs, 100);
}

describe('readiness of brokers and controllers', () => {
  // Voters 1 and 3; node 2 is a broker only, node 3 a controller only.
  let cluster: LocalCluster | undefined;
  let dir = '';
  printNodeLogsOnFailure(() => cluster?.nodes ?? []);
  afterAll(async () => {
    for (const node of cluster?.nodes ?? []) node.resume();
    await cluster?.kill();
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('answers /healthz at once and /readyz 503 with its reasons until the quorum and registration are there', async () => {
    dir = await makeTempDir('runnel-health-');
    cluster = await LocalCluster.create({ nodes: 3, dataDir: dir, roles: (id) => (id === 1 ? 'broker,controller' : id === 2 ? 'broker' : 'controller') });
    const [one, two, three] = cluster.nodes as [NodeProcess, NodeProcess, NodeProcess];
    // Nodes 2 and 3 alone: one of two voters, so no leader, and nothing to register with.
    const launched = [two.launch(), three.launch()];
    for (const node of [two, three]) {
      const alive = await waitFor(`node ${node.nodeId} to answer /healthz`, async () => (await probe(node, '/healthz')).body, 20_000, 50);
      expect(alive).toEqual({ alive: true });
    }
    // A controller-only node has started once its Raft member runs, leader or not.
    expect(await notReadyBecause(three, /no controller quorum leader known/, 20_000)).toEqual(['no controller quorum leader known']);
    const twoReasons = await notReadyBecause(two, /not registered/, 20_000);
    expect(twoReasons).toContain('logs not recovered: waiting for the metadata that names this broker\'s replicas');
    expect((await probe(two, '/health')).status).toBe(503);
    expect((await probe(two, '/v1/broker')).body).toMatchObject({ nodeId: 2, state: 'recovering', ready: false, broker: { brokerEpoch: -1 } });

    await Promise.all([one.launch(), ...launched]);
    for (const node of cluster.nodes) expect((await readyAgain(node, 20_000)).body).toEqual({ ready: true, reasons: [] });
    expect((await probe(two, '/health')).status).toBe(200);
    const controllerView = (await probe(three, '/v1/broker')).body;
    expect(controllerView).toMatchObject({ nodeId: 3, state: 'running', ready: true, broker: null });
    expect((controllerView.controller as { leaderId: number }).leaderId).toBeGreaterThan(0);
  });

  it('describes the partitions a broker leads and follows, and answers unknown paths and methods with errors', async () => {
    const [one, two] = cluster!.nodes as [NodeProcess, NodeProcess];
    const admin = new Admin({ bootstrap: one.bootstrap });
    await admin.createTopics([{ name: 'probed', partitions: 2, replicationFactor: 2 }]);
    await admin.close();
    const view = await waitFor('node 2 to host both replicas', async () => {
      const { body } = await probe(two, '/v1/broker');
      const partitions = (body.broker as { partitions: { leader: string[]; follower: string[] } }).partitions;
      return partitions.leader.length + partitions.follower.length === 2 ? body : undefined;
    }, 10_000);
    expect(view).toMatchObject({ state: 'running', broker: { fenced: false, recovery: { done: true }, partitions: { offline: [] } } });
    const partitions = (view.broker as { partitions: { leader: string[]; follower: string[] } }).partitions;
    expect([...partitions.leader, ...partitions.follower].sort()).toEqual(['probed-0', 'probed-1']);

    const missing = await fetch(`http://127.0.0.1:${two.httpPort}/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.text()).toMatch(/not found: \/nope; try \/metrics, \/healthz, \/readyz/);
    const posted = await fetch(`http://127.0.0.1:${two.httpPort}/readyz`, { method: 'POST' });
    expect(posted.status).toBe(405);
    expect((await probe(two, '/healthz')).status).toBe(200);
  });

  it('is not ready from the moment a broker paused past its session timeout resumes, until it is unfenced again', async () => {
    const two = cluster!.nodes[1]!;
    two.pause();
    await new Promise((resolve) => setTimeout(resolve, 4000)); // broker.session.timeout.ms is 3000
    // Asked while paused: the request waits in the socket and is the first thing answered after SIGCONT,
    // before any heartbeat can have been answered.
    const first = probe(two, '/readyz', 10_000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    two.resume();
    const answer = await first;
    expect(answer.status).toBe(503);
    expect(answer.body.reasons!.join('; ')).toMatch(/fenced by the controller|may not lead: no heartbeat answered/);
    await readyAgain(two, 15_000);
  });
});

describe('readiness of a broker behind on the metadata', () => {
  let cluster: LocalCluster | undefined;
  let dir = '';
  printNodeLogsOnFailure(() => cluster?.nodes ?? []);
  afterAll(async () => {
    await cluster?.kill();
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('is not ready once the controller has metadata it has not applied for a session timeout, and ready again when it catches up', async () => {
    dir = await makeTempDir('runnel-health-lag-');
    cluster = await LocalCluster.start({ nodes: 3, dataDir: dir, networkFaults: true });
    const admin = new Admin({ bootstrap: cluster.bootstrap });
    const controllerId = (await admin.clusterStatus()).controller.id;
    const lagging = cluster.nodes.find((node) => node.nodeId !== controllerId)!;
    // The active controller's Raft messages stop reaching the lagging node's quorum member, which is
    // where that broker reads the metadata log; its heartbeats to the controller still pass.
    cluster.controllerProxy(controllerId, lagging.nodeId).cut();
    await admin.createTopics([{ name: 'moved-on', partitions: 1, replicationFactor: 1 }]);
    const reasons = await notReadyBecause(lagging, /behind on the metadata/, 15_000);
    expect(reasons.join('; ')).not.toMatch(/fenced|not registered/);
    expect((await probe(lagging, '/v1/broker')).body).toMatchObject({ state: 'catching-up', broker: { fenced: false } });
    cluster.controllerProxy(controllerId, lagging.nodeId).heal();
    await readyAgain(lagging, 15_000);
    await admin.close();
  });
});
