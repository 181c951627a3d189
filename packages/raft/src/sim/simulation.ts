// A deterministic, single-threaded cluster simulator (TigerBeetle VOPR / Kafka
// RaftEventSimulationTest style). One seeded PRNG drives everything: swarm options, network
// faults, crashes, proposals and the nodes' election timeouts. A safety phase runs with faults and
// checks the invariants after every event; a liveness phase heals everything and requires the
// cluster to converge within a bounded number of ticks, then to stay live and stable: a follower cut
// off from the leader must not disrupt it when it comes back, new proposals commit, reads are served.
// A failure names the seed and the invariant.
//
// The host loop is the real host's: a Ready's write is issued, and while its fsync is pending the
// node keeps stepping messages, ticking and taking proposals (their output goes into the next
// Ready); only when the fsync completes are the Ready's messages sent, its entries applied, and
// advance() called. The disk faults (lost fsync, torn write, corrupt entry) are modelled in disk.ts.
import { quorumSize } from '../quorum.js';
import { RawNode, type Ready } from '../rawNode.js';
import { Xoshiro128, type Random } from '../random.js';
import { MemoryStorage } from '../storage.js';
import { NONE, RaftError, RaftInvariantError, type ConfChange, type Entry, type Message } from '../types.js';
import { SimDisk, type DiskRecord } from './disk.js';
import { InvariantChecker, InvariantViolation } from './invariants.js';
import { Network } from './network.js';

export interface SimOptions {
  seed: number;
  /** Nodes in the universe; ids 1..nodeCount. */
  nodeCount: number;
  /** Nodes 1..initialVoterCount start as voters; the rest join through membership changes. */
  initialVoterCount: number;
  electionTicks: number;
  heartbeatTicks: number;
  preVote: boolean;
  checkQuorum: boolean;
  maxInflightMessages: number;
  maxEntriesPerMessage: number;
  safetyTicks: number;
  livenessTicksMax: number;
  dropRate: number;
  duplicateRate: number;
  delayTicksMax: number;
  /** Per tick: probability that the partition changes. */
  partitionRate: number;
  /** Per tick: probability that a random running node crashes. */
  crashRate: number;
  restartTicksMax: number;
  /** Per Ready: probability of a crash before persisting / after entries but before the hard state / before sending. */
  readyCrashRate: number;
  /** Per tick: expected number of proposals. */
  proposalRate: number;
  /** Per tick: probability that a random node snapshots and compacts its log. */
  compactionRate: number;
  readRate: number;
  transferRate: number;
  membershipRate: number;
  /** Per Ready: probability that its fsync is still pending while the node runs on (steps, ticks, proposals). */
  fsyncPendingRate: number;
  /** A pending fsync completes at the end of a tick 0..fsyncPendingTicksMax ticks later (safety phase; 0 after). */
  fsyncPendingTicksMax: number;
  /**
   * Per tick: probability that a random node's disk stalls for electionTicks..3·electionTicks ticks
   * (fsync latency spikes under I/O pressure): its writes stay pending, so it falls silent while it
   * still steps messages — long enough to be deposed with its own entries unsynced.
   */
  diskStallRate: number;
  /** Per tick: probability that a node whose fsync is pending loses power (its write is lost or torn). */
  lostFsyncRate: number;
  /** Per crash: probability that a committed entry on the node's disk is damaged while it is down (at most one node per run). */
  corruptionRate: number;
  /**
   * The host verifies every entry's checksum at open and refuses to start on damage (default). Off
   * only to show that the checker catches a node that serves a damaged log.
   */
  verifyChecksumsAtOpen?: boolean;
  /**
   * The replicated state machine and its clients. Absent: the built-in key-value store.
   */
  workload?: SimWorkload;
}

/** What a workload sees of the leader it proposes to. */
export interface LeaderHandle {
  readonly id: number;
  readonly term: number;
  /** The leader's last log index (including its uncommitted entries). */
  readonly lastIndex: number;
  readonly commit: number;
  /** The index of the last entry this node's state machine applied. */
  readonly appliedIndex: number;
  /** Proposes one entry: its log index, or null when the core dropped it (RaftError). */
  propose(data: Uint8Array): number | null;
}

/**
 * A pluggable replicated state machine plus the clients that drive it. The simulator owns the
 * nodes, the log and the faults; the workload owns each node's state machine (restore, apply,
 * snapshot), decides what the leader proposes, and checks its own invariants. A failed check
 * throws (an InvariantViolation names the invariant; anything else is reported as unexpected).
 */
export interface SimWorkload {
  /** The node (re)starts or installs a snapshot: its state machine is the one in `data` (empty: the initial state) as of `index`. */
  restore(nodeId: number, data: Uint8Array, index: number): void;
  /** The node's state machine, for a snapshot at its applied index. */
  snapshot(nodeId: number): Uint8Array;
  /** A committed normal entry, in log order (an empty `data` is a new leader's entry). */
  apply(nodeId: number, entry: Entry): void;
  /** The node crashed: whatever it kept in memory only (e.g. a leader's pending state) is gone. */
  crash(nodeId: number): void;
  /** One client request reaching the leader during the safety phase (called `proposalRate` times per tick). */
  propose(leader: LeaderHandle, random: Random, tick: number): void;
  /** After every tick (safety and liveness). */
  check(tick: number): void;
  /** Once converged: every member applied the same last index. */
  checkConverged(memberIds: readonly number[]): void;
}

export interface SimResult {
  seed: number;
  nodeCount: number;
  ticks: number;
  livenessTicks: number;
  proposals: number;
  acknowledged: number;
  appliedIndexMax: number;
  messagesDelivered: number;
  messagesDropped: number;
  crashes: number;
  elections: number;
  readsServed: number;
  snapshotsInstalled: number;
  confChanges: number;
  /** Ready writes whose fsync stayed pending while the node ran on. */
  fsyncsPending: number;
  /** Ready writes whose last entry the core replaced (a new leader's append) before the fsync completed. */
  entriesReplacedWhilePending: number;
  /** Crashes that cut a pending write: nothing or only a prefix of its records survived. */
  writesLost: number;
  /** Nodes that refused to start on a damaged log (and stayed down). */
  corruptionsDetected: number;
  /** Healed runs in which a voter was cut off from the leader and came back without disrupting it. */
  rejoinsWithoutDisruption: number;
  /** Reads issued at every member once healed, all served. */
  probeReadsServed: number;
}

export class SimulationFailure extends Error {
  readonly seed: number;
  readonly invariant: string;
  constructor(seed: number, invariant: string, tick: number, detail: string) {
    super(`seed=${seed} tick=${tick} invariant "${invariant}" violated: ${detail}`);
    this.name = 'SimulationFailure';
    this.seed = seed;
    this.invariant = invariant;
  }
}

/** Draws a random mix of faults and features from the seed (VOPR "swarm testing"). */
export function swarmOptions(seed: number): SimOptions {
  const random = new Xoshiro128(seed ^ 0x5eed);
  const pick = <T>(choices: readonly T[]): T => choices[random.nextInt(choices.length)]!;
  const maybe = (probability: number, value: number): number => (random.nextFloat() < probability ? value : 0);
  const membership = random.nextFloat() < 0.25;
  const nodeCount = membership ? 5 : pick([3, 5]);
  const electionTicks = pick([6, 10]);
  return {
    seed,
    nodeCount,
    initialVoterCount: membership ? 3 : nodeCount,
    electionTicks,
    heartbeatTicks: pick([1, 1, 2, 3]),
    // Without PreVote and CheckQuorum's leader lease, a server on a stale configuration (a removed
    // one, or one that has not seen a newer config) can bump terms forever and keep the others from
    // electing (Raft thesis §4.2.3; seeds 1755 and 41531 showed both), so membership seeds run with both.
    preVote: membership || random.nextFloat() < 0.85,
    checkQuorum: membership || random.nextFloat() < 0.85,
    maxInflightMessages: pick([1, 2, 8, 64]),
    maxEntriesPerMessage: pick([1, 3, 64]),
    safetyTicks: 150 + random.nextInt(200),
    livenessTicksMax: 60 * electionTicks,
    dropRate: maybe(0.6, random.nextFloat() * 0.3),
    duplicateRate: maybe(0.4, random.nextFloat() * 0.2),
    delayTicksMax: pick([1, 1, 2, 4, 8]),
    partitionRate: maybe(0.6, random.nextFloat() * 0.06),
    crashRate: maybe(0.6, random.nextFloat() * 0.03),
    restartTicksMax: pick([3, 20, 60]),
    readyCrashRate: maybe(0.5, random.nextFloat() * 0.01),
    proposalRate: pick([0.1, 0.5, 1, 2]),
    compactionRate: maybe(0.6, random.nextFloat() * 0.08),
    readRate: maybe(0.5, random.nextFloat() * 0.3),
    transferRate: maybe(0.3, random.nextFloat() * 0.02),
    membershipRate: membership ? 0.02 + random.nextFloat() * 0.06 : 0,
    // Drawn last, so the options above are what they were for every seed.
    fsyncPendingRate: pick([0, 0.3, 0.7, 1]),
    fsyncPendingTicksMax: pick([0, 1, 2]),
    diskStallRate: maybe(0.5, random.nextFloat() * 0.03),
    lostFsyncRate: maybe(0.5, random.nextFloat() * 0.05),
    // A damaged node stays down for good: only with a fixed membership, where the others keep a quorum.
    corruptionRate: membership ? 0 : maybe(0.3, 0.3 + random.nextFloat() * 0.7),
  };
}

interface SimNode {
  readonly id: number;
  readonly disk: SimDisk;
  raw: RawNode | undefined;
  restartAtTick: number;
  kv: Map<string, string>;
  appliedIndex: number;
  /** The Ready handed out whose fsync is pending (the host handles one Ready at a time). */
  pendingWrite: PendingWrite | undefined;
  /** No fsync of this node completes before this tick (a stalled disk). */
  diskStalledUntilTick: number;
  /** A compaction the nemesis asked for while a write was pending: the host runs it after advance(). */
  compactAfterWrite: boolean;
  /** The index of the entry that rotted on this node's disk, if one did. */
  damagedIndex: number | undefined;
  /** The disk failed its checksum verification at open: the node refuses to start, for good. */
  damaged: boolean;
  /** Leader only: the term and commit index whose durability on a quorum was checked last. */
  commitChecked: { term: number; index: number };
}

interface PendingWrite {
  readonly ready: Ready;
  readonly records: DiskRecord[];
  dueTick: number;
}

/** Once healed: the leader that must keep its term, and what the check is about. */
interface Stability {
  readonly leader: SimNode;
  readonly term: number;
  invariant: string;
}

interface PendingRead {
  readonly node: number;
  readonly committedAtStart: number;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

export class Simulation {
  readonly options: SimOptions;
  readonly random: Xoshiro128;
  readonly network: Network;
  readonly checker = new InvariantChecker();
  readonly nodes: SimNode[] = [];
  private readonly trace: ((line: string) => void) | undefined;
  tick = 0;
  private phase: 'safety' | 'liveness' = 'safety';
  private proposalSequence = 0;
  private readSequence = 0;
  private readonly pendingReads = new Map<number, PendingRead>();
  /** Keys of proposals applied somewhere (so committed): every member must end up with them. */
  private readonly acknowledged = new Set<string>();
  private readonly stats = {
    crashes: 0, elections: 0, readsServed: 0, snapshotsInstalled: 0, confChanges: 0, proposals: 0,
    fsyncsPending: 0, entriesReplacedWhilePending: 0, writesLost: 0, corruptionsDetected: 0, rejoinsWithoutDisruption: 0, probeReadsServed: 0,
  };
  private corruptionInjected = false;
  private stability: Stability | undefined = undefined;

  constructor(options: SimOptions, trace?: (line: string) => void) {
    this.options = options;
    this.trace = trace;
    this.random = new Xoshiro128(options.seed);
    this.network = new Network(this.random, {
      dropRate: options.dropRate,
      duplicateRate: options.duplicateRate,
      delayTicksMax: options.delayTicksMax,
    });
    const voters = Array.from({ length: options.initialVoterCount }, (_, k) => k + 1);
    for (let id = 1; id <= options.nodeCount; id++) {
      const node: SimNode = {
        // Nodes beyond the initial voters join as a real new member does: with no configuration.
        id, disk: new SimDisk(new MemoryStorage({ voters: id <= options.initialVoterCount ? voters : [], learners: [] })), raw: undefined, restartAtTick: 0, kv: new Map(), appliedIndex: 0,
        pendingWrite: undefined, diskStalledUntilTick: 0, compactAfterWrite: false, damagedIndex: undefined, damaged: false, commitChecked: { term: 0, index: 0 },
      };
      this.nodes.push(node);
      this.start(node);
    }
  }

  run(): SimResult {
    try {
      for (; this.tick < this.options.safetyTicks; this.tick++) this.step();
      const livenessStart = this.tick;
      this.startLiveness();
      // Heal-time work is bounded by the log to ship: one round trip (2 ticks) moves at least one entry.
      const logBacklog = Math.max(...this.nodes.map((node) => node.raw?.lastIndex ?? 0));
      const livenessTicksMax = this.options.livenessTicksMax + 2 * logBacklog;
      const deadline = this.tick + livenessTicksMax;
      // Election timers run on from the faulty phase: a follower whose heartbeats were dropped just
      // before the heal may time out in the first ticks after it, and without PreVote its election
      // is legitimate (controller seed 8854: converged at the heal, node 1 campaigned that tick).
      // Stability is asked of a cluster whose members have heard the leader since the heal: it
      // converges, a heartbeat round passes, and it is still converged under the same leader.
      for (;;) {
        for (; !this.converged(); this.tick++) {
          if (this.tick >= deadline) this.fail('liveness', `no convergence within ${livenessTicksMax} ticks: ${this.describe()}`);
          this.step();
        }
        const leader = this.leader()!;
        const term = leader.raw!.term;
        for (let k = 0; k < this.options.heartbeatTicks + 2; k++, this.tick++) this.step();
        if (this.converged() && this.leader() === leader && leader.raw!.term === term) break;
      }
      this.checkConvergedState();
      this.settle();
      return this.result(this.tick - livenessStart);
    } catch (error) {
      if (error instanceof SimulationFailure) throw error;
      // A workload's own invariant errors carry the invariant's name the same way.
      if (error instanceof InvariantViolation || error instanceof RaftInvariantError || namesInvariant(error)) {
        const detail = error.message.replace(/^.*? violated: /, '');
        throw new SimulationFailure(this.options.seed, error.invariant, this.tick, detail);
      }
      const detail = error instanceof Error ? `${error.stack ?? error.message}` : String(error);
      throw new SimulationFailure(this.options.seed, 'no unexpected exception', this.tick, detail);
    }
  }

  private fail(invariant: string, detail: string): never {
    throw new SimulationFailure(this.options.seed, invariant, this.tick, detail);
  }

  private log(line: () => string): void {
    if (this.trace !== undefined) this.trace(`t=${this.tick} ${line()}`);
  }

  // ---- one tick -------------------------------------------------------------------------------

  private step(): void {
    if (this.phase === 'safety') this.nemesis();
    this.restartDue();
    this.clientRequests();
    const offset = this.random.nextInt(this.nodes.length);
    for (let k = 0; k < this.nodes.length; k++) {
      const node = this.nodes[(offset + k) % this.nodes.length]!;
      if (node.raw === undefined) continue;
      node.raw.tick();
      this.observe(node);
      this.processReady(node);
    }
    for (const message of this.network.takeDue(this.tick)) {
      const node = this.nodes[message.to - 1]!;
      if (node.raw === undefined) continue;
      this.log(() => `deliver ${formatMessage(message)}`);
      const termBefore = node.raw.term;
      node.raw.step(message);
      this.checker.onDeliver(node.id, message, termBefore, node.raw);
      this.observe(node);
      if (this.random.nextFloat() < 0.7) this.processReady(node);
    }
    this.completeDueWrites();
    this.options.workload?.check(this.tick);
    if (this.stability !== undefined) this.checkStable(this.stability);
  }

  private observe(node: SimNode): void {
    const raw = node.raw!;
    this.checker.observe(node.id, raw);
    if (raw.role !== 'leader') return;
    const checked = node.commitChecked;
    if (checked.term !== raw.term) {
      // Entries committed before this term were committed under an earlier leader's configuration.
      node.commitChecked = { term: raw.term, index: raw.commit };
    } else if (raw.commit > checked.index) {
      checked.index = raw.commit;
      const entryTerm = raw.termAt(raw.commit);
      if (entryTerm !== undefined) {
        this.checker.onLeaderCommit(node.id, raw.term, raw.commit, entryTerm, raw.confState().voters, (id) => this.nodes[id - 1]!.disk);
      }
    }
  }

  // ---- the host loop --------------------------------------------------------------------------

  /** Hands out Readies until there is none, or one's fsync stays pending. */
  private processReady(node: SimNode): void {
    for (let round = 0; round < 8; round++) {
      const raw = node.raw;
      if (raw === undefined || node.pendingWrite !== undefined || !raw.hasReady()) return;
      const ready = raw.ready();
      const { options, random } = this;
      const delayTicks = this.phase === 'safety' && options.fsyncPendingTicksMax > 0 ? random.nextInt(options.fsyncPendingTicksMax + 1) : 0;
      const dueTick = Math.max(this.tick + delayTicks, node.diskStalledUntilTick);
      node.pendingWrite = { ready, records: SimDisk.records(ready), dueTick };
      if (dueTick > this.tick || (options.fsyncPendingRate > 0 && random.nextFloat() < options.fsyncPendingRate)) {
        this.stats.fsyncsPending++;
        return; // completes at the end of tick dueTick; until then the node runs on
      }
      this.completeWrite(node);
    }
  }

  /** End of a tick: every due fsync completes (in random order), and the nodes go on with their next Ready. */
  private completeDueWrites(): void {
    const offset = this.random.nextInt(this.nodes.length);
    for (let round = 0; round < 8; round++) {
      let completed = false;
      for (let k = 0; k < this.nodes.length; k++) {
        const node = this.nodes[(offset + k) % this.nodes.length]!;
        const write = node.pendingWrite;
        if (write !== undefined && write.dueTick <= this.tick) {
          this.completeWrite(node);
          completed = true;
        }
        this.processReady(node);
      }
      if (!completed) return;
    }
  }

  /** The pending write's fsync completes: persist, send, apply, advance(). */
  private completeWrite(node: SimNode): void {
    const raw = node.raw!;
    const write = node.pendingWrite!;
    const { ready } = write;
    if (ready.softState !== undefined) {
      this.log(() => `node ${node.id} is ${ready.softState!.role} (leader ${ready.softState!.leader}) term ${ready.hardState?.term ?? raw.term}`);
      if (ready.softState.role === 'leader') this.stats.elections++;
    }
    if (this.options.readyCrashRate > 0 && this.phase === 'safety' && this.random.nextFloat() < this.options.readyCrashRate) {
      // The fsync fails (the host stops; crash() tears the write), or it succeeds and the host dies before sending.
      if (this.random.nextFloat() < 0.5) return this.crash(node, 'as its fsync fails');
      node.pendingWrite = undefined;
      this.persist(node, write.records);
      return this.crash(node, 'after persisting, before sending');
    }
    node.pendingWrite = undefined;
    const last = ready.entries[ready.entries.length - 1];
    if (last !== undefined && raw.termAt(last.index) !== last.term) this.stats.entriesReplacedWhilePending++;
    this.persist(node, write.records);
    for (const message of ready.messages) {
      const addressee = this.nodes[message.to - 1]?.raw;
      const leads = addressee !== undefined && addressee.role === 'leader' && addressee.term === message.term;
      this.checker.onSend(node.id, message, node.disk, leads ? (index) => addressee.termAt(index) : undefined);
      this.network.send(message, this.tick);
    }
    this.apply(node, ready);
    raw.advance();
    this.observe(node);
    if (node.compactAfterWrite) {
      node.compactAfterWrite = false;
      this.compact(node);
    }
  }

  /** Make `records` (a whole write, or the prefix a crash left) durable, checking them as they land. */
  private persist(node: SimNode, records: readonly DiskRecord[]): void {
    const { disk } = node;
    let entries: Entry[] = [];
    const flushEntries = (): void => {
      if (entries.length === 0) return;
      disk.writeEntries(entries);
      // Log matching against what is on this disk now: the predecessor of each entry as stored.
      this.checker.onPersistEntries(node.id, entries, disk);
      entries = [];
    };
    for (const record of records) {
      if (record.kind === 'entry') {
        entries.push(record.entry);
        continue;
      }
      flushEntries();
      if (record.kind === 'snapshot') {
        disk.writeSnapshot(record.snapshot);
      } else {
        this.checker.onPersistHardState(node.id, record.hardState);
        disk.writeHardState(record.hardState);
      }
    }
    flushEntries();
  }

  private apply(node: SimNode, ready: Ready): void {
    if (ready.snapshot !== undefined) {
      this.stats.snapshotsInstalled++;
      this.log(() => `node ${node.id} installs snapshot at ${ready.snapshot!.metadata.index}`);
      this.restoreStateMachine(node, ready.snapshot.data, ready.snapshot.metadata.index);
      node.appliedIndex = ready.snapshot.metadata.index;
    }
    for (const entry of ready.committedEntries) {
      if (entry.index !== node.appliedIndex + 1) {
        this.fail('entries are applied in order', `node ${node.id} applied ${node.appliedIndex}, got ${entry.index}`);
      }
      this.checker.onApply(node.id, entry);
      this.applyEntry(node, entry);
      node.appliedIndex = entry.index;
    }
    for (const readState of ready.readStates) this.serveRead(node, readState.index, readState.context);
  }

  private applyEntry(node: SimNode, entry: Entry): void {
    if (entry.type === 'config') {
      this.log(() => `node ${node.id} applies config entry ${entry.index}`);
      return;
    }
    if (entry.type !== 'normal') return;
    if (this.options.workload !== undefined) return this.options.workload.apply(node.id, entry);
    const [key, value] = textDecoder.decode(entry.data).split('=') as [string, string];
    node.kv.set(key, value);
    this.acknowledged.add(key);
  }

  private serveRead(node: SimNode, index: number, context: Uint8Array): void {
    const id = new DataView(context.buffer, context.byteOffset, context.byteLength).getUint32(0);
    const pending = this.pendingReads.get(id);
    if (pending === undefined) return; // a duplicate answer
    if (pending.node !== node.id) this.fail('read answered to its requester', `read ${id} of node ${pending.node} at node ${node.id}`);
    if (index < pending.committedAtStart) {
      this.fail('read linearizability', `read ${id} at node ${node.id} got index ${index}, but ${pending.committedAtStart} was committed before it started`);
    }
    if (node.appliedIndex < index) this.fail('read served after apply', `read ${id} index ${index}, applied ${node.appliedIndex}`);
    this.pendingReads.delete(id);
    this.stats.readsServed++;
  }

  // ---- crashes and restarts -------------------------------------------------------------------

  private start(node: SimNode): void {
    const { options } = this;
    if (options.verifyChecksumsAtOpen !== false) {
      const damagedIndex = node.disk.findDamage();
      if (damagedIndex !== undefined) {
        // A checksum that fails on an intact entry would silently keep a healthy node down.
        if (damagedIndex !== node.damagedIndex) this.fail('checksums fail only on damaged entries', `node ${node.id} entry ${damagedIndex}`);
        this.log(() => `node ${node.id} refuses to start: entry ${damagedIndex} fails its checksum`);
        node.damaged = true;
        node.restartAtTick = Infinity;
        this.stats.corruptionsDetected++;
        return;
      }
    }
    node.raw = new RawNode({
      id: node.id,
      voters: [],
      electionTicks: options.electionTicks,
      heartbeatTicks: options.heartbeatTicks,
      storage: node.disk.storage,
      random: this.random,
      preVote: options.preVote,
      checkQuorum: options.checkQuorum,
      maxInflightMessages: options.maxInflightMessages,
      maxEntriesPerMessage: options.maxEntriesPerMessage,
    });
    const snapshot = node.disk.storage.snapshot();
    this.restoreStateMachine(node, snapshot.data, snapshot.metadata.index);
    node.appliedIndex = snapshot.metadata.index;
    node.commitChecked = { term: 0, index: 0 };
    this.checker.onRestart(node.id, node.raw);
  }

  private restoreStateMachine(node: SimNode, data: Uint8Array, index: number): void {
    if (this.options.workload !== undefined) this.options.workload.restore(node.id, data, index);
    else node.kv = decodeKv(data);
  }

  private crash(node: SimNode, when: string): void {
    this.log(() => `node ${node.id} crashes ${when}`);
    const write = node.pendingWrite;
    if (write !== undefined) {
      // Lost fsync: only a prefix of the write may have reached the disk (see disk.ts).
      const kept = this.random.nextInt(write.records.length + 1);
      this.persist(node, write.records.slice(0, kept));
      if (kept < write.records.length) this.stats.writesLost++;
      this.log(() => `node ${node.id} keeps ${kept} of the ${write.records.length} records of its pending write`);
      node.pendingWrite = undefined;
    }
    node.compactAfterWrite = false;
    this.maybeDamage(node);
    node.raw = undefined;
    this.options.workload?.crash(node.id);
    node.restartAtTick = this.tick + 1 + this.random.nextInt(this.options.restartTicksMax);
    this.checker.onCrash(node.id);
    this.stats.crashes++;
    for (const [id, read] of this.pendingReads) if (read.node === node.id) this.pendingReads.delete(id);
  }

  /** While the node is down, one committed entry on its disk may rot (one node per run). */
  private maybeDamage(node: SimNode): void {
    const { options, random } = this;
    if (this.corruptionInjected || options.corruptionRate <= 0 || random.nextFloat() >= options.corruptionRate) return;
    const index = node.disk.damageOneEntry((count) => random.nextInt(count), node.disk.hardState.commit);
    if (index === undefined) return;
    this.corruptionInjected = true;
    node.damagedIndex = index;
    this.log(() => `node ${node.id}: entry ${index} is damaged on disk`);
  }

  private restartDue(): void {
    for (const node of this.nodes) {
      if (node.raw !== undefined || node.restartAtTick > this.tick) continue;
      this.log(() => `node ${node.id} restarts`);
      this.start(node);
    }
  }

  // ---- faults and clients ---------------------------------------------------------------------

  private nemesis(): void {
    const { options, random } = this;
    if (options.partitionRate > 0 && random.nextFloat() < options.partitionRate) this.changePartition();
    if (options.crashRate > 0 && random.nextFloat() < options.crashRate) {
      const node = this.nodes[random.nextInt(this.nodes.length)]!;
      if (node.raw !== undefined) this.crash(node, 'at random');
    }
    if (options.diskStallRate > 0 && random.nextFloat() < options.diskStallRate) {
      const node = this.nodes[random.nextInt(this.nodes.length)]!;
      node.diskStalledUntilTick = this.tick + options.electionTicks * (1 + random.nextInt(3)) + random.nextInt(options.electionTicks);
      if (node.pendingWrite !== undefined) node.pendingWrite.dueTick = Math.max(node.pendingWrite.dueTick, node.diskStalledUntilTick);
      this.log(() => `node ${node.id}'s disk stalls until tick ${node.diskStalledUntilTick}`);
    }
    if (options.lostFsyncRate > 0 && random.nextFloat() < options.lostFsyncRate) {
      const writing = this.nodes.filter((node) => node.pendingWrite !== undefined);
      if (writing.length > 0) this.crash(writing[random.nextInt(writing.length)]!, 'with its fsync pending (power loss)');
    }
    if (options.compactionRate > 0 && random.nextFloat() < options.compactionRate) {
      this.compact(this.nodes[random.nextInt(this.nodes.length)]!);
    }
    if (options.transferRate > 0 && random.nextFloat() < options.transferRate) this.transfer();
    if (options.membershipRate > 0 && random.nextFloat() < options.membershipRate) this.changeMembership();
  }

  private changePartition(): void {
    const { network, random, nodes } = this;
    network.heal();
    const kind = random.nextInt(5);
    const ids = nodes.map((node) => node.id);
    if (kind === 0) {
      this.log(() => 'network heals');
      return;
    }
    if (kind === 1) {
      const isolated = ids[random.nextInt(ids.length)]!;
      for (const other of ids) if (other !== isolated) (network.cut(isolated, other), network.cut(other, isolated));
      this.log(() => `node ${isolated} is isolated`);
    } else if (kind === 2) {
      const side = new Set(ids.filter(() => random.nextFloat() < 0.5));
      for (const a of ids) for (const b of ids) if (side.has(a) !== side.has(b)) network.cut(a, b);
      this.log(() => `partition {${[...side]}} | rest`);
    } else if (kind === 3) {
      const mute = ids[random.nextInt(ids.length)]!;
      const outbound = random.nextFloat() < 0.5;
      for (const other of ids) if (other !== mute) (outbound ? network.cut(mute, other) : network.cut(other, mute));
      this.log(() => `node ${mute} cannot ${outbound ? 'send' : 'receive'}`);
    } else {
      for (const a of ids) for (const b of ids) if (a !== b && random.nextFloat() < 0.3) network.cut(a, b);
      this.log(() => `random links cut (${network.cutCount})`);
    }
  }

  /** Snapshot the state machine at the applied index and compact; the host does it between Readies. */
  private compact(node: SimNode): void {
    const raw = node.raw;
    if (raw === undefined || node.appliedIndex <= node.disk.snapshotIndex) return;
    // A joining node that has not seen a configuration yet cannot snapshot (RaftHost waits too).
    if (raw.confStateAt(node.appliedIndex).voters.length === 0) return;
    if (node.pendingWrite !== undefined) {
      node.compactAfterWrite = true; // RaftHost compacts right after advance()
      return;
    }
    const data = this.options.workload !== undefined ? this.options.workload.snapshot(node.id) : encodeKv(node.kv);
    const compactTo = Math.max(node.disk.storage.firstIndex() - 1, node.appliedIndex - this.random.nextInt(4));
    node.disk.compact(node.appliedIndex, raw.confStateAt(node.appliedIndex), data, compactTo);
    this.log(() => `node ${node.id} snapshots at ${node.appliedIndex}, compacts to ${compactTo}`);
  }

  private leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const node of this.nodes) {
      if (node.raw?.role === 'leader' && (best === undefined || node.raw.term > best.raw!.term)) best = node;
    }
    return best;
  }

  private transfer(): void {
    const leader = this.leader();
    if (leader === undefined) return;
    const voters = leader.raw!.confState().voters;
    const target = voters[this.random.nextInt(voters.length)]!;
    try {
      leader.raw!.transferLeadership(target);
      this.log(() => `node ${leader.id} transfers leadership to ${target}`);
    } catch (error) {
      if (!(error instanceof RaftError)) throw error;
    }
    this.observe(leader);
    this.processReady(leader);
  }

  private changeMembership(): void {
    const leader = this.leader();
    if (leader === undefined) return;
    const raw = leader.raw!;
    const { voters, learners } = raw.confState();
    const target = this.random.nextInt(this.nodes.length) + 1;
    let change: ConfChange;
    if (voters.includes(target)) change = { type: 'removeVoter', nodeId: target };
    else if (learners.includes(target)) change = { type: this.random.nextFloat() < 0.7 ? 'addVoter' : 'removeVoter', nodeId: target };
    else change = { type: this.random.nextFloat() < 0.5 ? 'addLearner' : 'addVoter', nodeId: target };

    try {
      raw.proposeConfChange(change);
      this.stats.confChanges++;
      this.log(() => `node ${leader.id} proposes ${change.type} ${change.nodeId}`);
    } catch (error) {
      if (!(error instanceof RaftError)) throw error;
    }
    this.observe(leader);
    this.processReady(leader);
  }

  private clientRequests(): void {
    const { options, random } = this;
    if (this.phase !== 'safety') return;
    let proposals = Math.floor(options.proposalRate) + (random.nextFloat() < options.proposalRate % 1 ? 1 : 0);
    for (; proposals > 0; proposals--) {
      // Clients mostly find the leader; some talk to whichever node they reach.
      const node = (random.nextFloat() < 0.8 ? this.leader() : undefined) ?? this.nodes[random.nextInt(this.nodes.length)]!;
      if (node.raw?.role === 'leader') this.proposeAt(node);
    }
    if (options.readRate > 0 && random.nextFloat() < options.readRate) this.read(this.nodes[random.nextInt(this.nodes.length)]!);
  }

  /** One client request at a leader. Built-in store: the key proposed, or undefined if the core dropped it. */
  private proposeAt(node: SimNode): string | undefined {
    const raw = node.raw!;
    let key: string | undefined;
    if (this.options.workload !== undefined) {
      this.options.workload.propose(this.leaderHandle(node, raw), this.random, this.tick);
    } else {
      try {
        raw.propose(textEncoder.encode(`p${this.proposalSequence + 1}=${node.id}@${raw.term}`));
        key = `p${++this.proposalSequence}`;
        this.stats.proposals++;
      } catch (error) {
        if (!(error instanceof RaftError)) throw error;
      }
    }
    this.observe(node);
    this.processReady(node);
    return key;
  }

  private leaderHandle(node: SimNode, raw: RawNode): LeaderHandle {
    const stats = this.stats;
    const log = (line: () => string): void => this.log(line);
    return {
      id: node.id,
      term: raw.term,
      lastIndex: raw.lastIndex,
      commit: raw.commit,
      appliedIndex: node.appliedIndex,
      propose(data: Uint8Array): number | null {
        try {
          const index = raw.propose(data);
          stats.proposals++;
          log(() => `node ${node.id} proposes ${data.length} bytes at ${index}`);
          return index;
        } catch (error) {
          if (!(error instanceof RaftError)) throw error;
          return null;
        }
      },
    };
  }

  /** A linearizable read at `node`: its id, or undefined if the core dropped it. */
  private read(node: SimNode): number | undefined {
    if (node.raw === undefined) return undefined;
    const id = ++this.readSequence;
    const context = new Uint8Array(4);
    new DataView(context.buffer).setUint32(0, id);
    let started = false;
    try {
      node.raw.readIndex(context);
      this.pendingReads.set(id, { node: node.id, committedAtStart: this.checker.committedIndexMax() });
      started = true;
    } catch (error) {
      if (!(error instanceof RaftError)) throw error;
    }
    this.processReady(node);
    return started ? id : undefined;
  }

  // ---- liveness -------------------------------------------------------------------------------

  private startLiveness(): void {
    this.phase = 'liveness';
    this.log(() => 'liveness phase: network healed, faults stopped, every node restarted');
    this.network.heal();
    this.network.faults = { dropRate: 0, duplicateRate: 0, delayTicksMax: 1 };
    for (const node of this.nodes) {
      // A stalled disk is a fault too: one outlasting the heal would silence a node in the checks that follow.
      node.diskStalledUntilTick = 0;
      if (node.pendingWrite !== undefined) node.pendingWrite.dueTick = Math.min(node.pendingWrite.dueTick, this.tick);
      if (node.raw === undefined && !node.damaged) node.restartAtTick = this.tick;
    }
    this.restartDue();
  }

  /** The leader's configuration, less a node that refused to start on a damaged log (an operator must replace it). */
  private members(leader: SimNode): SimNode[] {
    const { voters, learners } = leader.raw!.confState();
    return [...voters, ...learners].map((id) => this.nodes[id - 1]!).filter((node) => !node.damaged);
  }

  private converged(): boolean {
    const leader = this.leader();
    if (leader === undefined) return false;
    const raw = leader.raw!;
    if (raw.commit !== raw.lastIndex || raw.termAt(raw.commit) !== raw.term) return false;
    for (const member of this.members(leader)) {
      if (member.raw === undefined || member.appliedIndex !== raw.lastIndex || member.raw.leader !== leader.id) return false;
    }
    // A leadership transfer started under faults may still finish: leadership is settled once none is under way.
    return raw.status().leadTransferee === NONE && !this.network.hasInFlight((message) => message.type === 'timeoutNow');
  }

  private checkConvergedState(): void {
    const leader = this.leader()!;
    if (this.options.workload !== undefined) return this.options.workload.checkConverged(this.members(leader).map((member) => member.id));
    const expected = leader.kv;
    for (const member of this.members(leader)) {
      for (const key of this.acknowledged) {
        if (!member.kv.has(key)) this.fail('acknowledged writes survive', `node ${member.id} lacks ${key} at applied ${member.appliedIndex}`);
      }
      if (member.kv.size !== expected.size) this.fail('replicas converge', `node ${member.id} has ${member.kv.size} keys, leader ${expected.size}`);
      for (const [key, value] of expected) {
        if (member.kv.get(key) !== value) this.fail('replicas converge', `node ${member.id} ${key}=${member.kv.get(key)}, leader ${value}`);
      }
    }
  }

  // ---- once healed: stable and live -----------------------------------------------------------

  /**
   * The cluster converged under one leader; with no faults it must keep that leader and term. With
   * PreVote and CheckQuorum on, a voter is cut off from the leader (sometimes after a spell in full
   * isolation) while it still reaches the others, so its pre-votes arrive: they must not change the
   * term, and it must catch up once reconnected (etcd's disruptive follower; the leader lease of
   * thesis §9.6). Then new proposals must commit on every member and a read at every member be served.
   */
  private settle(): void {
    const leader = this.leader()!;
    const stability: Stability = { leader, term: leader.raw!.term, invariant: 'a healed cluster keeps its leader' };
    this.stability = stability;
    const cutOff = this.options.preVote && this.options.checkQuorum && this.cutOffFollower(leader, stability);
    stability.invariant = cutOff ? 'a rejoining follower does not disrupt the leader' : 'a healed cluster keeps its leader';
    this.probe(leader);
    if (cutOff) this.stats.rejoinsWithoutDisruption++;
    this.stability = undefined;
    this.checkConvergedState();
  }

  /** Returns false when no voter can be cut off while the leader keeps a quorum. */
  private cutOffFollower(leader: SimNode, stability: Stability): boolean {
    const { network, random, options } = this;
    const voterIds = leader.raw!.confState().voters;
    const running = voterIds.map((id) => this.nodes[id - 1]!).filter((node) => node.raw !== undefined);
    const followers = running.filter((node) => node !== leader);
    if (followers.length === 0 || running.length - 1 < quorumSize(voterIds.length)) return false;
    const follower = followers[random.nextInt(followers.length)]!;
    // Without proposals its log stays as up to date as the others': only the leader lease stops its pre-votes.
    const withProposals = random.nextFloat() < 0.5;
    stability.invariant = 'a follower cut off from the leader does not disrupt it';
    const others = this.nodes.filter((node) => node !== follower);
    if (random.nextFloat() < 0.5) {
      for (const other of others) (network.cut(follower.id, other.id), network.cut(other.id, follower.id));
      this.log(() => `node ${follower.id} is isolated`);
      this.runTicks(options.electionTicks + random.nextInt(options.electionTicks), withProposals ? leader : undefined);
      network.heal();
    }
    network.cut(follower.id, leader.id);
    network.cut(leader.id, follower.id);
    this.log(() => `node ${follower.id} is cut off from leader ${leader.id}, not from the others`);
    this.runTicks(3 * options.electionTicks + random.nextInt(options.electionTicks), withProposals ? leader : undefined);
    network.heal();
    this.log(() => `node ${follower.id} reconnects`);
    return true;
  }

  private runTicks(count: number, proposeAt: SimNode | undefined): void {
    for (let k = 0; k < count; k++, this.tick++) {
      if (proposeAt !== undefined) this.proposeAt(proposeAt);
      this.step();
    }
  }

  /** New proposals commit on every member, then a read at every member is served, in bounded time. */
  private probe(leader: SimNode): void {
    const keys: string[] = [];
    for (let k = 0; k < 3; k++) {
      const key = this.proposeAt(leader);
      if (key !== undefined) keys.push(key);
      else if (this.options.workload === undefined) this.fail('proposals commit once healed', `leader ${leader.id} dropped a proposal: ${this.describe()}`);
    }
    const backlog = leader.raw!.lastIndex - Math.min(...this.members(leader).map((member) => member.appliedIndex));
    const ticksMax = this.options.livenessTicksMax + 2 * backlog;
    const deadline = this.tick + ticksMax;
    for (;; this.tick++) {
      const keysPending = keys.filter((key) => !this.acknowledged.has(key));
      if (keysPending.length === 0 && this.converged()) break;
      if (this.tick >= deadline) {
        const detail = `within ${ticksMax} ticks: ${this.describe()}`;
        if (keysPending.length > 0) this.fail('proposals commit once healed', `${keysPending} not applied ${detail}`);
        this.fail('liveness', `no convergence after healing ${detail}`);
      }
      this.step();
    }
    // Every member follows the leader now: a read started anywhere must be served.
    const reads: number[] = [];
    for (const member of this.members(leader)) {
      const id = this.read(member);
      if (id === undefined) this.fail('reads are served once healed', `node ${member.id} dropped a read: ${this.describe()}`);
      reads.push(id);
    }
    for (;; this.tick++) {
      const readsPending = reads.filter((id) => this.pendingReads.has(id));
      if (readsPending.length === 0) break;
      if (this.tick >= deadline) this.fail('reads are served once healed', `reads ${readsPending} not served within ${ticksMax} ticks: ${this.describe()}`);
      this.step();
    }
    this.stats.probeReadsServed += reads.length;
  }

  private checkStable(stability: Stability): void {
    const { leader, term, invariant } = stability;
    const raw = leader.raw;
    if (raw?.role !== 'leader' || raw.term !== term) {
      this.fail(invariant, `leader ${leader.id} of term ${term} is now ${raw === undefined ? 'down' : `${raw.role} at term ${raw.term}`}: ${this.describe()}`);
    }
    for (const member of this.members(leader)) {
      if (member.raw !== undefined && member.raw.term !== term) {
        this.fail(invariant, `node ${member.id} moved to term ${member.raw.term} under leader ${leader.id} of term ${term}: ${this.describe()}`);
      }
    }
  }

  private describe(): string {
    return this.nodes
      .map((node) => {
        const raw = node.raw;
        if (raw === undefined) return `${node.id}:${node.damaged ? 'damaged' : 'down'}`;
        return `${node.id}:${raw.role}/t${raw.term}/lead${raw.leader}/commit${raw.commit}/last${raw.lastIndex}/applied${node.appliedIndex}/conf${JSON.stringify(raw.confState())}`;
      })
      .join(' ');
  }

  private result(livenessTicks: number): SimResult {
    return {
      seed: this.options.seed,
      nodeCount: this.options.nodeCount,
      ticks: this.tick,
      livenessTicks,
      proposals: this.stats.proposals,
      acknowledged: this.acknowledged.size,
      appliedIndexMax: Math.max(...this.nodes.map((node) => node.appliedIndex)),
      messagesDelivered: this.network.delivered,
      messagesDropped: this.network.dropped,
      crashes: this.stats.crashes,
      elections: this.stats.elections,
      readsServed: this.stats.readsServed,
      snapshotsInstalled: this.stats.snapshotsInstalled,
      confChanges: this.stats.confChanges,
      fsyncsPending: this.stats.fsyncsPending,
      entriesReplacedWhilePending: this.stats.entriesReplacedWhilePending,
      writesLost: this.stats.writesLost,
      corruptionsDetected: this.stats.corruptionsDetected,
      rejoinsWithoutDisruption: this.stats.rejoinsWithoutDisruption,
      probeReadsServed: this.stats.probeReadsServed,
    };
  }
}

export function runSimulation(options: SimOptions, trace?: (line: string) => void): SimResult {
  return new Simulation(options, trace).run();
}

export function runSeed(seed: number, trace?: (line: string) => void): SimResult {
  return runSimulation(swarmOptions(seed), trace);
}

function namesInvariant(error: unknown): error is Error & { readonly invariant: string } {
  return error instanceof Error && typeof (error as { invariant?: unknown }).invariant === 'string';
}

function encodeKv(kv: Map<string, string>): Uint8Array {
  return textEncoder.encode(JSON.stringify([...kv]));
}

function decodeKv(data: Uint8Array): Map<string, string> {
  if (data.length === 0) return new Map();
  return new Map(JSON.parse(textDecoder.decode(data)) as [string, string][]);
}

export function formatMessage(message: Message): string {
  const head = `${message.from}->${message.to} ${message.type} t${message.term}`;
  switch (message.type) {
    case 'vote':
    case 'preVote':
      return `${head} last=${message.lastIndex}/t${message.lastTerm}${message.transfer ? ' transfer' : ''}`;
    case 'voteResponse':
    case 'preVoteResponse':
      return `${head} ${message.reject ? 'reject' : 'grant'}`;
    case 'append':
      return `${head} prev=${message.prevIndex}/t${message.prevTerm} entries=${message.entries.length} commit=${message.commit}`;
    case 'appendResponse':
      return `${head} index=${message.index}${message.reject ? ` reject hint=${message.rejectHint}/t${message.logTerm}` : ''}`;
    case 'heartbeat':
      return `${head} commit=${message.commit} read=${message.readId}`;
    case 'heartbeatResponse':
      return `${head} read=${message.readId}`;
    case 'snapshot':
      return `${head} index=${message.snapshot.metadata.index}/t${message.snapshot.metadata.term}`;
    case 'readIndexResponse':
      return `${head} index=${message.index}`;
    default:
      return head;
  }
}
