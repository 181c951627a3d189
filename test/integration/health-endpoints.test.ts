// The HTTP listener's probes on real node processes: /healthz answers as soon as the process
// listens; /readyz answers 503 naming every failing rule (no quorum leader on a controller-only
// node, a broker not registered and its logs not recovered, a broker fenced after a pause past its
// session timeout, a broker whose metadata stalled) and 200 once the node is ready.
import { rm } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { Admin, Consumer, Producer } from '@runnel/client';
import { LocalCluster, makeTempDir, type NodeProcess } from '@runnel/testkit';
import { printNodeLogsOnFailure, waitFor } from './harness.js';

interface Probe {
  status: number;
  body: { ready?: boolean; reasons?: string[]; alive?: boolean; [key: string]: unknown };
}

async function scrape(node: NodeProcess): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${node.httpPort}/metrics`, { signal: AbortSignal.timeout(5000) });
  expect(response.status).toBe(200);
  return response.text();
}

/** The value of one series in Prometheus text (`name{labels}` exactly as printed), or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
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
    // Its logs count as recovered once any metadata reached it: node 3's (empty) log may get there
    // first, which is right too (nothing is assigned here yet); before that, this is the reason.
    for (const reason of twoReasons.filter((text) => text.startsWith('logs'))) expect(reason).toBe('logs not recovered: waiting for the metadata that names this broker\'s replicas');
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
    // On a loaded machine the controller may fence later than the session timeout; until it has, a
    // heartbeat sent after SIGCONT is still answered and the broker rightly counts as ready.
    const admin = new Admin({ bootstrap: cluster!.nodes[0]!.bootstrap });
    try {
      await waitFor('the controller to fence node 2', async () => ((await admin.clusterStatus()).nodes.find((node) => node.id === 2)?.fenced === true ? true : undefined), 20_000, 100);
    } finally {
      await admin.close();
    }
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

describe('metrics on a running cluster', () => {
  const fixture = {} as { cluster: LocalCluster; dir: string };
  printNodeLogsOnFailure(() => fixture.cluster?.nodes ?? []);
  afterAll(async () => {
    await fixture.cluster?.kill();
    if (fixture.dir !== undefined) await rm(fixture.dir, { recursive: true, force: true });
  });

  it('counts bytes and records per topic, partitions, leaders and the controller, and drops a deleted topic\'s series', async () => {
    fixture.dir = await makeTempDir('runnel-metrics-');
    fixture.cluster = await LocalCluster.start({ nodes: 2, dataDir: fixture.dir });
    const cluster = fixture.cluster;
    const admin = new Admin({ bootstrap: cluster.bootstrap });
    await admin.createTopics([{ name: 'metered', partitions: 1, replicationFactor: 2 }]);
    const leaderId = (await admin.describeTopics(['metered']))[0]!.partitions[0]!.leader;
    const leader = cluster.node(leaderId);
    const follower = cluster.nodes.find((node) => node.nodeId !== leaderId)!;
    const producer = new Producer({ bootstrap: cluster.bootstrap, acks: 'all', lingerMs: 0 });
    for (let i = 0; i < 10; i++) await producer.send({ topic: 'metered', value: `record-${i}` });
    await producer.close();
    const consumer = new Consumer({ bootstrap: cluster.bootstrap, autoOffsetReset: 'earliest' });
    consumer.assign([{ topic: 'metered', partition: 0 }]);
    let consumed = 0;
    while (consumed < 10) consumed += (await consumer.poll(2000)).length;
    await consumer.close();

    const text = await scrape(leader);
    expect(sample(text, 'runnel_topic_records_in_total{topic="metered"}')).toBe(10);
    expect(sample(text, 'runnel_topic_bytes_in_total{topic="metered"}')).toBeGreaterThan(100);
    expect(sample(text, 'runnel_topic_records_out_total{topic="metered"}')).toBeGreaterThanOrEqual(10);
    expect(sample(text, 'runnel_records_in_total')).toBe(10); // the older, unlabelled name still counts
    expect(sample(text, 'runnel_leader_partitions')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'runnel_under_min_isr_partitions')).toBe(0);
    expect(sample(text, 'runnel_log_partition_size_bytes{topic="metered",partition="0"}')).toBeGreaterThan(100);
    expect(text).toMatch(/runnel_request_duration_seconds_count\{api="[A-Za-z]+",listener="GRPC"\} [1-9]/);
    expect(sample(text, `runnel_follower_lag_offsets{topic="metered",partition="0",replica="${follower.nodeId}"}`)).toBe(0);
    const activeCounts = await Promise.all(cluster.nodes.map(async (node) => sample(await scrape(node), 'runnel_active_controller')));
    expect(activeCounts.reduce((sum, count) => sum! + count!, 0)).toBe(1);
    // The active controller timed the commits of the records it appended (the topic's, at least).
    const active = cluster.nodes[activeCounts.indexOf(1)]!;
    expect(sample(await scrape(active), 'runnel_raft_commit_latency_seconds_count')).toBeGreaterThan(0);
    expect(sample(text, 'runnel_raft_term')).toBeGreaterThan(0);
    expect(sample(text, 'runnel_offline_partitions') ?? 0).toBe(0);

    await admin.deleteTopics(['metered']);
    await admin.close();
    await waitFor('the deleted topic\'s series to go', async () => ((await scrape(leader)).includes('topic="metered"') ? undefined : true), 10_000);
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
