// The chaos run: producers send uniquely numbered values with acks=all (doing their own bounded
// retries, each attempt recorded in a History), a live consumer reads along, and a fault schedule
// kills, pauses and cuts off nodes meanwhile. Afterwards everything is healed, the run waits for a
// full ISR everywhere, reads every partition from the start, runs the checker and compares the
// replicas' segment files byte for byte.
//
// It drives a LocalCluster (or anything shaped like one: nodes that can be killed, launched, paused
// and resumed, and — for the `partition` fault — cutOff/heal); everything else goes through the
// public client API.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Admin, Consumer, Producer, type ClusterStatus } from '@runnel/client';
import type { NodeProcess } from '../nodeProcess.js';
import { checkHistory, summarizeCheck, type CheckReport, type LogRecord } from './checker.js';
import { History, errorNameOf, type SendEntry } from './history.js';

/**
 * kill: SIGKILL a random node and restart it. pause: SIGSTOP a partition leader past its session.
 * partition: cut a node off from the others. promote: restart a follower and, the moment it is back
 * in the ISR of a partition it prefers, make it that partition's leader — by preferred-leader
 * election or by SIGKILL of the current leader, in turn (the window of KIP-497's maximal ISR: a
 * member just added must already have every acknowledged record).
 */
/** How long a restarted node may take to rejoin an ISR before a promote fault gives up on it. */
const REJOIN_WAIT_MS = 30_000;

export type FaultKind = 'kill' | 'pause' | 'partition' | 'promote';
export const FAULT_KINDS: readonly FaultKind[] = ['kill', 'pause', 'partition', 'promote'];

/** What the runner needs of a cluster; LocalCluster has it all. */
export interface ChaosCluster {
  readonly nodes: readonly NodeProcess[];
  node(id: number): NodeProcess;
  /** Network cuts (LocalCluster started with `networkFaults: true`); needed by the `partition` fault only. */
  cutOff?(nodeId: number): unknown;
  heal?(nodeId: number): unknown;
  isCutOff?(nodeId: number): boolean;
}

export interface ChaosOptions {
  /** A started cluster; every node is a broker. */
  cluster: ChaosCluster;
  /** Values to send (each one unique). */
  records: number;
  /** How long faults run (and values are sent); the run stops earlier once every value is settled. */
  durationMs: number;
  /** Faults to inject, taken in turn. Default ['kill']; [] runs without faults. */
  faults?: readonly FaultKind[];
  /** Topic to create (must not exist). Default chaos-<time>. */
  topic?: string;
  partitions?: number;
  replicationFactor?: number;
  minInsyncReplicas?: number;
  /** Sends started per second at most. Default: records spread over durationMs. */
  ratePerSec?: number;
  /** Values in flight at once (spread over the partitions). Default 96. */
  concurrency?: number;
  /** Attempts per value before giving up (backoff 100 ms doubling to 2 s, jittered). Default 20. */
  maxAttempts?: number;
  /** Producer request timeout. Default 5000. */
  requestTimeoutMs?: number;
  /** Pause between the end of one fault and the start of the next. Default 2000–4000 ms (random). */
  faultGapMs?: readonly [number, number];
  /** How long a killed node stays down. Default 1000–3000 ms. */
  killDownMs?: readonly [number, number];
  /** How long a leader stays paused. Default session timeout + 1500–3000 ms. */
  pauseMs?: readonly [number, number];
  /** How long a node stays cut off. Default session timeout + 1500–3000 ms. */
  cutOffMs?: readonly [number, number];
  /**
   * pause and partition: after the fault's duration, keep the node paused or cut off (at most this
   * much longer) until the controller has fenced it out of every ISR and leadership. Default session
   * timeout + 10000.
   */
  replacedWaitMs?: number;
  /** Before the next fault, wait (at most this long) for a full ISR everywhere. Default 15000; 0 does not wait. */
  waitForIsrBetweenFaultsMs?: number;
  /** broker.session.timeout.ms of the cluster; read from node 1's server.properties when absent. */
  sessionTimeoutMs?: number;
  /** The full ISR must be back within this long after the last restart/heal. Default 10000. */
  isrHealLimitMs?: number;
  /** Seed of the fault schedule's randomness. Default: random. */
  seed?: number;
  /** Progress lines (one every progressIntervalMs) and fault events. */
  log?: (line: string) => void;
  progressIntervalMs?: number;
}

export interface FaultEvent {
  kind: FaultKind;
  node: number;
  /** The partition whose leader was paused. */
  partition?: number;
  /** Since the start of the run. */
  atMs: number;
  durationMs: number;
  /** From the end of the fault until every partition had a full ISR again; -1 if not within the wait. */
  isrHealMs: number;
  /**
   * pause and partition: whether, just before SIGCONT/heal, the controller had taken the node out of
   * every ISR and every leadership of the topic (it was fenced and replaced, as it must be).
   */
  replaced?: boolean;
  /** pause and partition: ms from the start of the fault until the node was seen replaced (-1: not seen). */
  replacedAfterMs?: number;
  /** The active controller when the fault began (-1 unknown): pausing or cutting it off adds an election. */
  controller: number;
}

export interface ReplicaComparison {
  partition: number;
  identical: boolean;
  /** Bytes of the .log segments per node (-1: no directory). */
  bytes: Record<number, number>;
}

export interface ChaosReport {
  ok: boolean;
  /** Why ok is false, one phrase each. */
  problems: string[];
  topic: string;
  seed: number;
  runMs: number;
  faults: Record<FaultKind, number> & { total: number; events: FaultEvent[] };
  /** From the last restart/heal (or the end of sending, without faults) to a full ISR everywhere; -1 if never. */
  isrHealMs: number;
  isrHealLimitMs: number;
  replicasIdentical: boolean;
  replicas: ReplicaComparison[];
  /** Errors of failed/unknown attempts by name. */
  errors: Record<string, number>;
  consumer: { records: number; errors: Record<string, number> };
  /** Up to 20 values never acknowledged, with their attempts. */
  unacknowledgedSample: SendEntry[];
  check: CheckReport;
  summary: string;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** mulberry32: a small seeded PRNG, so a schedule can be replayed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function readSessionTimeout(cluster: ChaosCluster): number {
  try {
    const text = readFileSync(cluster.nodes[0]!.configPath, 'utf8');
    const match = /^broker\.session\.timeout\.ms=(\d+)\s*$/m.exec(text);
    if (match !== null) return Number(match[1]);
  } catch {
    // fall through
  }
  return 9000;
}

function bump(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

/** Bytes of one replica's log: its .log segments in offset order (the active one included); null without a directory. */
export function replicaLogBytes(node: NodeProcess, topic: string, partition: number): Buffer | null {
  const dir = join(node.dataDir, 'logs', `${topic}-${partition}`);
  if (!existsSync(dir)) return null;
  try {
    const segments = readdirSync(dir).filter((name) => name.endsWith('.log')).sort();
    return Buffer.concat(segments.map((name) => readFileSync(join(dir, name))));
  } catch {
    return null; // a segment deleted under us: look again later
  }
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const cluster = options.cluster;
  const faults = [...(options.faults ?? ['kill'])];
  for (const kind of faults) if (!FAULT_KINDS.includes(kind)) throw new RangeError(`unknown fault '${kind}' (known: ${FAULT_KINDS.join(', ')})`);
  if (faults.includes('partition') && (typeof cluster.cutOff !== 'function' || typeof cluster.heal !== 'function')) {
    throw new Error("the 'partition' fault needs cluster.cutOff()/heal(): start the LocalCluster with networkFaults: true");
  }
  if (!Number.isInteger(options.records) || options.records < 1) throw new RangeError(`records must be a positive integer, got ${options.records}`);
  if (!(options.durationMs > 0)) throw new RangeError(`durationMs must be positive, got ${options.durationMs}`);
  const topic = options.topic ?? `chaos-${Date.now()}`;
  const partitions = options.partitions ?? 6;
  const replicationFactor = options.replicationFactor ?? 3;
  const minInsync = options.minInsyncReplicas ?? 2;
  const concurrency = options.concurrency ?? 96;
  const maxAttempts = options.maxAttempts ?? 20;
  const requestTimeoutMs = options.requestTimeoutMs ?? 5000;
  const sessionTimeoutMs = options.sessionTimeoutMs ?? readSessionTimeout(cluster);
  const isrHealLimitMs = options.isrHealLimitMs ?? 10_000;
  const ratePerSec = options.ratePerSec ?? Math.max(1, options.records / (options.durationMs / 1000));
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const rand = random(seed);
  const between = ([low, high]: readonly [number, number]) => low + rand() * Math.max(0, high - low);
  const faultGap = options.faultGapMs ?? [2000, 4000];
  const killDown = options.killDownMs ?? [1000, 3000];
  const pauseFor = options.pauseMs ?? [sessionTimeoutMs + 1500, sessionTimeoutMs + 3000];
  const cutFor = options.cutOffMs ?? [sessionTimeoutMs + 1500, sessionTimeoutMs + 3000];
  const waitIsrBetween = options.waitForIsrBetweenFaultsMs ?? 15_000;
  const replacedWaitMs = options.replacedWaitMs ?? sessionTimeoutMs + 10_000;
  const log = options.log ?? (() => {});
  const progressIntervalMs = options.progressIntervalMs ?? 5000;

  const startMs = Date.now();
  const since = () => Date.now() - startMs;
  const history = new History();
  const errors: Record<string, number> = {};
  const consumerErrors: Record<string, number> = {};
  const observed = new Map<number, LogRecord[]>(Array.from({ length: partitions }, (_, p) => [p, []]));
  const faultCounts: Record<FaultKind, number> = { kill: 0, pause: 0, partition: 0, promote: 0 };
  const events: FaultEvent[] = [];
  const paused = new Set<number>();
  const down = new Set<number>();
  const cut = new Set<number>();
  let lastFaultEndMs = 0;
  let currentFault = '';

  /** Nodes a client can talk to and that have a current view: running, not paused, not cut off. */
  const healthyNodes = () => cluster.nodes.filter((node) => node.running && !paused.has(node.nodeId) && !cut.has(node.nodeId) && !down.has(node.nodeId));
  const allBootstrap = cluster.nodes.map((node) => node.bootstrap);

  /** The cluster status as the active controller sees it (else as any healthy node sees it). */
  const status = async (): Promise<ClusterStatus | undefined> => {
    const nodes = healthyNodes();
    if (nodes.length === 0) return undefined;
    const admin = new Admin({ bootstrap: nodes.map((node) => node.bootstrap), requestTimeoutMs: 2000 });
    try {
      let current = await admin.clusterStatus();
      if (current.servedBy !== current.controller.id) {
        const controller = nodes.find((node) => node.nodeId === current.controller.id);
        if (controller !== undefined) {
          const direct = new Admin({ bootstrap: controller.bootstrap, requestTimeoutMs: 2000 });
          try {
            current = await direct.clusterStatus();
          } catch {
            // keep the other node's view
          } finally {
            await direct.close().catch(() => undefined);
          }
        }
      }
      return current;
    } catch {
      return undefined;
    } finally {
      await admin.close().catch(() => undefined);
    }
  };
  const fullIsr = (current: ClusterStatus | undefined): boolean => {
    const state = current?.topics.find((candidate) => candidate.name === topic);
    if (state === undefined || state.partitions.length !== partitions) return false;
    const fenced = new Set(current!.nodes.filter((node) => node.fenced).map((node) => node.id));
    return state.partitions.every((partition) => partition.leader >= 0 && !fenced.has(partition.leader) && partition.isr.length === partition.replicas.length);
  };
  /** Whether `nodeId` leads no partition of the topic and is in no ISR (undefined status: false). */
  const isReplaced = (current: ClusterStatus | undefined, nodeId: number): boolean => {
    const state = current?.topics.find((candidate) => candidate.name === topic);
    if (state === undefined) return false;
    return state.partitions.every((partition) => partition.leader !== nodeId && !partition.isr.includes(nodeId));
  };
  /**
   * Waits (at most `extraMs` more) until `nodeId` is out of every ISR and leadership of the topic;
   * ms since `fromMs` when it is, -1 if not. The fault lasts until then, so that each pause or cut
   * really costs the node its session, also when it was the active controller (whose successor
   * first has to be elected, and then gives every broker a fresh session).
   */
  const waitUntilReplaced = async (nodeId: number, fromMs: number, extraMs: number): Promise<number> => {
    const deadline = Date.now() + extraMs;
    for (;;) {
      if (isReplaced(await status(), nodeId)) return Date.now() - fromMs;
      if (Date.now() > deadline) return -1;
      await sleep(200);
    }
  };
  /**
   * Polls (every 50 ms, at most `timeoutMs`) until `nodeId` is in the ISR of a partition whose
   * preferred replica it is and which another node leads: that partition and its leader, or null.
   */
  const waitForRejoin = async (nodeId: number, timeoutMs: number): Promise<{ partition: number; leader: number } | null> => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() <= deadline) {
      const state = (await status())?.topics.find((candidate) => candidate.name === topic);
      const found = state?.partitions.find((candidate) => candidate.replicas[0] === nodeId && candidate.isr.includes(nodeId) && candidate.leader >= 0 && candidate.leader !== nodeId);
      if (found !== undefined) return { partition: found.partition, leader: found.leader };
      await sleep(50);
    }
    return null;
  };
  const electPreferredLeaders = async (): Promise<void> => {
    const admin = new Admin({ bootstrap: healthyNodes().map((node) => node.bootstrap), requestTimeoutMs: 3000 });
    try {
      await admin.electPreferredLeaders();
    } catch (error) {
      log(`chaos ${Math.round(since() / 1000)}s: preferred-leader election failed: ${(error as Error).message}`);
    } finally {
      await admin.close().catch(() => undefined);
    }
  };
  let promotions = 0;
  /** Ms until every partition has a full ISR, polling every 100 ms; -1 after `timeoutMs`. */
  const waitForFullIsr = async (fromMs: number, timeoutMs: number): Promise<number> => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() <= deadline) {
      if (fullIsr(await status())) return Date.now() - fromMs;
      await sleep(100);
    }
    return -1;
  };

  // ---- the topic ----
  {
    const admin = new Admin({ bootstrap: allBootstrap, requestTimeoutMs: 10_000 });
    try {
      await admin.createTopics([{ name: topic, partitions, replicationFactor, configs: { 'min.insync.replicas': String(minInsync) } }]);
    } finally {
      await admin.close().catch(() => undefined);
    }
    if ((await waitForFullIsr(Date.now(), 30_000)) < 0) throw new Error(`topic ${topic} has no full ISR 30 s after it was created`);
  }

  // ---- producers ----
  const producer = new Producer({
    bootstrap: allBootstrap,
    acks: -1,
    retries: 0,
    lingerMs: 2,
    requestTimeoutMs,
    deliveryTimeoutMs: requestTimeoutMs * 2 + 2000,
    maxBlockMs: requestTimeoutMs * 2,
    metadataMaxAgeMs: 5000,
  });
  // The clock of sending and faults starts once the topic is ready.
  const sendStartMs = Date.now();
  const sendDeadlineMs = sendStartMs + options.durationMs;
  let settled = 0;
  let inFlight = 0;
  const sendOne = async (n: number): Promise<void> => {
    const value = `${topic}:${n}`;
    const partition = n % partitions;
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      const handle = history.attempt(value, partition);
      try {
        const meta = await producer.send({ topic, partition, value });
        handle.ack(meta.offset);
        return;
      } catch (error) {
        handle.fail(error);
        bump(errors, errorNameOf(error) ?? 'Error');
      }
      // Past the run's end plus a grace for retries, stop trying.
      if (attempt === maxAttempts || Date.now() > sendDeadlineMs + 30_000) break;
      await sleep(Math.min(2000, 100 * 2 ** (attempt - 1)) * (0.5 + Math.random()));
    }
    history.giveUp(value);
  };
  // Lanes per partition, each taking the partition's next value (n ≡ partition mod partitions), so
  // that a partition without a leader holds up only its own values.
  const nextOfPartition = Array.from({ length: partitions }, (_, p) => p);
  const lane = async (partition: number): Promise<void> => {
    while (nextOfPartition[partition]! < options.records && Date.now() < sendDeadlineMs) {
      const n = nextOfPartition[partition]!;
      nextOfPartition[partition] = n + partitions;
      const notBefore = sendStartMs + (n * 1000) / ratePerSec;
      if (notBefore > Date.now()) await sleep(notBefore - Date.now());
      if (Date.now() >= sendDeadlineMs) break;
      inFlight++;
      try {
        await sendOne(n);
      } finally {
        inFlight--;
        settled++;
      }
    }
  };
  const lanesPerPartition = Math.max(1, Math.ceil(concurrency / partitions));
  const producing = Promise.all(Array.from({ length: partitions * lanesPerPartition }, (_, i) => lane(i % partitions)));
  let producersDone = false;
  void producing.finally(() => {
    producersDone = true;
  });

  // ---- the live consumer ----
  let consuming = true;
  let consumed = 0;
  const consumer = new Consumer({ bootstrap: allBootstrap, autoOffsetReset: 'none', requestTimeoutMs: 5000, maxWaitMs: 200 });
  const assignment = Array.from({ length: partitions }, (_, partition) => ({ topic, partition }));
  consumer.assign(assignment);
  for (const tp of assignment) consumer.seek(tp, 0);
  const consumerHardDeadline = sendDeadlineMs + 10 * 60_000;
  const consumerLoop = (async () => {
    while (consuming && Date.now() < consumerHardDeadline) {
      try {
        for (const record of await consumer.poll(300)) {
          observed.get(record.partition)?.push({ offset: record.offset, value: record.value === null ? null : record.value.toString('utf8') });
          consumed++;
        }
      } catch (error) {
        bump(consumerErrors, errorNameOf(error) ?? 'Error');
        await sleep(200);
      }
    }
  })();

  // ---- progress ----
  const progress = setInterval(() => {
    const c = history.counts();
    const faultText = FAULT_KINDS.filter((kind) => faultCounts[kind] > 0).map((kind) => `${kind}:${faultCounts[kind]}`).join(',') || 'none';
    log(`chaos ${Math.round(since() / 1000)}s: sent ${c.sent}/${options.records}, acked ${c.acknowledged}, unknown ${c.attemptOutcomes.unknown}, failed ${c.attemptOutcomes.failed} attempts, in flight ${inFlight}, consumed ${consumed}, faults ${faultText}${currentFault ? `, now: ${currentFault}` : ''}`);
  }, progressIntervalMs);
  progress.unref?.();

  // ---- faults ----
  const running = () => Date.now() < sendDeadlineMs && !producersDone;
  /** Sleeps up to `ms`, returning early once the run is over. */
  const waitWhileRunning = async (ms: number): Promise<void> => {
    const until = Date.now() + ms;
    while (Date.now() < until && running()) await sleep(Math.min(100, until - Date.now()));
  };
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
  const restoreAll = async (): Promise<void> => {
    for (const id of [...paused]) {
      cluster.node(id).resume();
      paused.delete(id);
    }
    for (const id of [...cut]) {
      await cluster.heal!(id);
      cut.delete(id);
    }
    for (const id of [...down]) {
      const node = cluster.node(id);
      if (!node.running) await node.launch();
      down.delete(id);
    }
  };

  const faultLoop = async (): Promise<void> => {
    const maxFaults = Math.ceil(options.durationMs / 500) + 1;
    for (let index = 0; faults.length > 0 && index < maxFaults && running(); index++) {
      await waitWhileRunning(between(faultGap));
      if (!running()) break;
      const kind = faults[index % faults.length]!;
      const atMs = since();
      let nodeId: number;
      let partition: number | undefined;
      let durationMs: number;
      let replaced: boolean | undefined;
      let replacedAfterMs: number | undefined;
      const controller = (await status())?.controller.id ?? -1;
      if (kind === 'kill') {
        const node = pick(cluster.nodes.filter((candidate) => candidate.running));
        nodeId = node.nodeId;
        durationMs = between(killDown);
        currentFault = `kill node ${nodeId}`;
        log(`chaos ${Math.round(atMs / 1000)}s: SIGKILL node ${nodeId}, restart in ${Math.round(durationMs)} ms`);
        down.add(nodeId);
        await node.kill('SIGKILL');
        await waitWhileRunning(durationMs);
        await node.launch();
        down.delete(nodeId);
      } else if (kind === 'promote') {
        const node = pick(cluster.nodes.filter((candidate) => candidate.running));
        nodeId = node.nodeId;
        durationMs = between(killDown);
        currentFault = `promote node ${nodeId}`;
        log(`chaos ${Math.round(atMs / 1000)}s: SIGKILL node ${nodeId}, restart in ${Math.round(durationMs)} ms, then make it leader as soon as it rejoins an ISR`);
        down.add(nodeId);
        await node.kill('SIGKILL');
        await waitWhileRunning(durationMs);
        await node.launch();
        down.delete(nodeId);
        const rejoined = await waitForRejoin(nodeId, REJOIN_WAIT_MS);
        if (rejoined === null) {
          log(`chaos ${Math.round(since() / 1000)}s: node ${nodeId} did not rejoin an ISR it prefers within ${REJOIN_WAIT_MS} ms; no promotion`);
        } else {
          partition = rejoined.partition;
          promotions++;
          if (promotions % 2 === 1) {
            log(`chaos ${Math.round(since() / 1000)}s: node ${nodeId} is back in the ISR of ${topic}-${partition}: preferred-leader election now`);
            await electPreferredLeaders();
          } else {
            const leader = cluster.node(rejoined.leader);
            log(`chaos ${Math.round(since() / 1000)}s: node ${nodeId} is back in the ISR of ${topic}-${partition}: SIGKILL its leader ${rejoined.leader}`);
            down.add(leader.nodeId);
            await leader.kill('SIGKILL');
            await waitWhileRunning(between(killDown));
            await leader.launch();
            down.delete(leader.nodeId);
          }
        }
      } else if (kind === 'pause') {
        partition = Math.floor(rand() * partitions);
        const current = await status();
        const leader = current?.topics.find((candidate) => candidate.name === topic)?.partitions[partition]?.leader ?? -1;
        if (leader < 0) {
          log(`chaos ${Math.round(atMs / 1000)}s: partition ${partition} has no leader now; no pause`);
          continue;
        }
        nodeId = leader;
        durationMs = between(pauseFor);
        currentFault = `pause node ${nodeId}`;
        log(`chaos ${Math.round(atMs / 1000)}s: SIGSTOP node ${nodeId} (leader of ${topic}-${partition}) for ${Math.round(durationMs)} ms`);
        paused.add(nodeId);
        cluster.node(nodeId).pause();
        const pausedAt = Date.now();
        await sleep(durationMs); // the whole pause, even if sending ended meanwhile
        replacedAfterMs = await waitUntilReplaced(nodeId, pausedAt, replacedWaitMs);
        replaced = replacedAfterMs >= 0;
        cluster.node(nodeId).resume();
        paused.delete(nodeId);
      } else {
        nodeId = pick(cluster.nodes.filter((candidate) => candidate.running)).nodeId;
        durationMs = between(cutFor);
        currentFault = `cut off node ${nodeId}`;
        log(`chaos ${Math.round(atMs / 1000)}s: cut off node ${nodeId} for ${Math.round(durationMs)} ms`);
        cut.add(nodeId);
        await cluster.cutOff!(nodeId);
        const cutAt = Date.now();
        await sleep(durationMs);
        replacedAfterMs = await waitUntilReplaced(nodeId, cutAt, replacedWaitMs);
        replaced = replacedAfterMs >= 0;
        await cluster.heal!(nodeId);
        cut.delete(nodeId);
      }
      faultCounts[kind]++;
      lastFaultEndMs = Date.now();
      currentFault = '';
      const healMs = waitIsrBetween > 0 ? await waitForFullIsr(lastFaultEndMs, waitIsrBetween) : -1;
      events.push({ kind, node: nodeId, partition, atMs, durationMs: lastFaultEndMs - startMs - atMs, isrHealMs: healMs, replaced, replacedAfterMs, controller });
      const controllerText = controller === nodeId ? ' (the active controller)' : '';
      const replacedText = replaced === undefined ? '' : replaced ? `; fenced out of every ISR and leadership after ${replacedAfterMs} ms` : '; it still led or was in an ISR at the end of the fault';
      log(`chaos ${Math.round(since() / 1000)}s: ${kind} of node ${nodeId}${controllerText} over after ${lastFaultEndMs - startMs - atMs} ms${replacedText}; full ISR ${healMs < 0 ? 'not back yet' : `after ${healMs} ms`}`);
    }
  };

  let check: CheckReport;
  let isrHealMs = -1;
  const replicas: ReplicaComparison[] = [];
  try {
    try {
      await faultLoop();
    } finally {
      await restoreAll();
    }
    await producing;
    // The heal time is measured right after the last fault (while producers may still run); the
    // ISR must also be full now, after sending ended.
    const lastEvent = events.at(-1);
    const healFromMs = lastFaultEndMs > 0 ? lastFaultEndMs : Date.now();
    const fullNowMs = await waitForFullIsr(healFromMs, Math.max(isrHealLimitMs, 10_000) + 50_000);
    isrHealMs = fullNowMs < 0 ? -1 : lastEvent !== undefined && lastEvent.isrHealMs >= 0 ? lastEvent.isrHealMs : fullNowMs;
    log(`chaos ${Math.round(since() / 1000)}s: sending over (${settled} values settled); full ISR ${isrHealMs < 0 ? 'NOT back' : `${isrHealMs} ms after the last restart/heal`}`);
    // Let the live consumer reach the end, then stop it.
    const ends = await endOffsets(allBootstrap, topic, partitions);
    const catchUpDeadline = Date.now() + 15_000;
    while (Date.now() < catchUpDeadline && ends !== undefined && [...observed.entries()].some(([p, records]) => (records.at(-1)?.offset ?? -1) + 1 < ends.get(p)!)) await sleep(200);
    consuming = false;
    await consumerLoop;

    // ---- afterwards: read every partition from the start, compare the replicas ----
    const final = new Map<number, LogRecord[]>();
    const logStartOffsets = new Map<number, number>();
    for (let p = 0; p < partitions; p++) {
      const read = await readPartition(allBootstrap, topic, p);
      final.set(p, read.records);
      logStartOffsets.set(p, read.logStartOffset);
    }
    check = checkHistory({ history, final, observed, logStartOffsets });
    const current = await status();
    for (let p = 0; p < partitions; p++) {
      const ids = current?.topics.find((candidate) => candidate.name === topic)?.partitions[p]?.replicas ?? cluster.nodes.map((node) => node.nodeId);
      replicas.push(await compareReplicas(cluster, topic, p, ids, 30_000));
    }
  } finally {
    clearInterval(progress);
    consuming = false;
    await restoreAll().catch(() => undefined);
    await consumerLoop.catch(() => undefined);
    await consumer.close().catch(() => undefined);
    await producer.close().catch(() => undefined);
  }

  const replicasIdentical = replicas.every((replica) => replica.identical);
  const problems: string[] = [];
  if (!check.ok) problems.push(`checker: lost ${check.counts.lost}, inconsistent ${check.counts.inconsistent}, unexplained duplicates ${check.counts.unexplainedDuplicates}, backwards ${check.counts.backwards}`);
  if (isrHealMs < 0) problems.push('the ISR never became full again');
  else if (isrHealMs > isrHealLimitMs) problems.push(`full ISR ${isrHealMs} ms after the last restart/heal (limit ${isrHealLimitMs} ms)`);
  if (!replicasIdentical) problems.push(`replicas differ: partitions ${replicas.filter((replica) => !replica.identical).map((replica) => replica.partition).join(', ')}`);
  const total = faultCounts.kill + faultCounts.pause + faultCounts.partition + faultCounts.promote;
  const ok = problems.length === 0;
  const c = check.counts;
  const summary =
    `chaos ${ok ? 'OK' : 'FAILED'} (${topic}, seed ${seed}, ${Math.round(since() / 1000)} s): records ${c.sent}, acked ${c.acknowledged}, failed ${c.failed}, unknown ${c.unknown}, exhausted ${c.exhausted}, ` +
    `lost ${c.lost}, inconsistent ${c.inconsistent}, duplicates ${c.duplicates} (unexplained ${c.unexplainedDuplicates}), gaps ${c.gaps}, backwards ${c.backwards}, phantoms ${c.phantoms}; ` +
    `faults ${total} (kill ${faultCounts.kill}, pause ${faultCounts.pause}, partition ${faultCounts.partition}, promote ${faultCounts.promote}); ISR healed ${isrHealMs} ms; replicas ${replicasIdentical ? 'identical' : 'DIFFER'}` +
    (ok ? '' : `; problems: ${problems.join('; ')}`);
  log(summary);
  log(`checker: ${summarizeCheck(check)}`);
  log(`attempt errors: ${JSON.stringify(errors)}; consumer errors: ${JSON.stringify(consumerErrors)}`);
  return {
    ok,
    problems,
    topic,
    seed,
    runMs: since(),
    faults: { ...faultCounts, total, events },
    isrHealMs,
    isrHealLimitMs,
    replicasIdentical,
    replicas,
    errors,
    consumer: { records: consumed, errors: consumerErrors },
    unacknowledgedSample: history.list().filter((entry) => !entry.attempts.some((attempt) => attempt.outcome === 'acked')).slice(0, 20),
    check,
    summary,
  };
}

/** The high watermark of every partition (ListOffsets 'latest'), or undefined when not answered. */
async function endOffsets(bootstrap: string[], topic: string, partitions: number): Promise<Map<number, number> | undefined> {
  const admin = new Admin({ bootstrap, requestTimeoutMs: 5000 });
  try {
    const listed = await admin.listOffsets(Array.from({ length: partitions }, (_, partition) => ({ topic, partition, timestamp: 'latest' as const })));
    return new Map(listed.map((entry) => [entry.partition, entry.offset]));
  } catch {
    return undefined;
  } finally {
    await admin.close().catch(() => undefined);
  }
}

/** Every record of a partition from its log start up to its high watermark (bounded: 60 s, retried on errors). */
export async function readPartition(bootstrap: string[], topic: string, partition: number, timeoutMs = 60_000): Promise<{ logStartOffset: number; endOffset: number; records: LogRecord[] }> {
  const deadline = Date.now() + timeoutMs;
  const admin = new Admin({ bootstrap, requestTimeoutMs: 5000 });
  let logStartOffset = 0;
  let endOffset = 0;
  try {
    for (;;) {
      try {
        const [start] = await admin.listOffsets([{ topic, partition, timestamp: 'earliest' }]);
        const [end] = await admin.listOffsets([{ topic, partition, timestamp: 'latest' }]);
        logStartOffset = start!.offset;
        endOffset = end!.offset;
        break;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await sleep(200);
      }
    }
  } finally {
    await admin.close().catch(() => undefined);
  }
  const consumer = new Consumer({ bootstrap, autoOffsetReset: 'none', requestTimeoutMs: 5000, maxWaitMs: 100 });
  const records: LogRecord[] = [];
  try {
    consumer.assign([{ topic, partition }]);
    consumer.seek({ topic, partition }, logStartOffset);
    let position = logStartOffset;
    while (position < endOffset) {
      if (Date.now() > deadline) throw new Error(`reading ${topic}-${partition}: at offset ${position} of ${endOffset} after ${timeoutMs} ms`);
      try {
        for (const record of await consumer.poll(500)) {
          records.push({ offset: record.offset, value: record.value === null ? null : record.value.toString('utf8') });
          position = record.offset + 1;
        }
      } catch {
        await sleep(200);
      }
    }
  } finally {
    await consumer.close().catch(() => undefined);
  }
  return { logStartOffset, endOffset, records };
}

/** Waits (bounded) until every replica's .log segments of a partition are byte-identical. */
export async function compareReplicas(cluster: ChaosCluster, topic: string, partition: number, nodeIds: readonly number[], timeoutMs: number): Promise<ReplicaComparison> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const logs = nodeIds.map((id) => replicaLogBytes(cluster.node(id), topic, partition));
    const bytes: Record<number, number> = {};
    nodeIds.forEach((id, i) => (bytes[id] = logs[i]?.length ?? -1));
    const identical = logs.every((log) => log !== null && log.equals(logs[0]!));
    if (identical || Date.now() > deadline) return { partition, identical, bytes };
    await sleep(250);
  }
}
