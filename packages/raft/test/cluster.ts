// A tiny hand-driven cluster for scenario tests (etcd interaction-test style): messages wait in a
// queue until `stabilize()` or `deliver()`, links can be cut, every node is ticked explicitly.
import { MemoryStorage, RawNode, Xoshiro128, type Entry, type Message, type RawNodeConfig, type ReadState } from '../src/index.js';

export interface TestNode {
  id: number;
  raw: RawNode;
  storage: MemoryStorage;
  applied: Entry[];
  readStates: ReadState[];
  snapshotsInstalled: number;
}

export class Cluster {
  readonly nodes = new Map<number, TestNode>();
  queue: Message[] = [];
  readonly sent: Message[] = [];
  private readonly cut = new Set<string>();
  readonly random = new Xoshiro128(7);

  /** Nodes 1..voterCount bootstrap the group; `extraNodes` join later, as a new member does: with no configuration. */
  constructor(voterCount: number, private readonly options: Partial<RawNodeConfig> = {}, extraNodes: number[] = []) {
    const voters = Array.from({ length: voterCount }, (_, k) => k + 1);
    for (const id of voters) this.addNode(id, voters);
    for (const id of extraNodes) this.addNode(id, []);
  }

  /** A node with its own storage; `voters` is its bootstrap configuration ([] for a joining member). */
  addNode(id: number, voters: number[]): TestNode {
    const storage = new MemoryStorage({ voters, learners: [] });
    const raw = new RawNode({ id, voters, electionTicks: 10, heartbeatTicks: 1, storage, random: this.random, ...this.options });
    const node = { id, raw, storage, applied: [], readStates: [], snapshotsInstalled: 0 };
    this.nodes.set(id, node);
    return node;
  }

  /** A crash and restart: a new RawNode over what the node persisted; `voters` is its (maybe stale) bootstrap config. */
  restart(id: number, voters: number[]): void {
    const node = this.node(id);
    this.queue = this.queue.filter((message) => message.to !== id);
    node.raw = new RawNode({ id, voters, electionTicks: 10, heartbeatTicks: 1, storage: node.storage, random: this.random, ...this.options });
  }

  /** The host's compaction: snapshot at the applied index with the configuration in force there, drop the log up to it. */
  compact(id: number): void {
    const node = this.node(id);
    const applied = node.applied[node.applied.length - 1]?.index ?? 0;
    node.storage.createSnapshot(applied, node.raw.confStateAt(applied), new TextEncoder().encode(`state at ${applied}`));
    node.storage.compact(applied);
  }

  node(id: number): TestNode {
    return this.nodes.get(id)!;
  }

  raw(id: number): RawNode {
    return this.node(id).raw;
  }

  /** Persist, queue messages, apply and advance every pending Ready of node `id`. */
  processReady(id: number): void {
    const node = this.node(id);
    for (let round = 0; round < 100 && node.raw.hasReady(); round++) {
      const ready = node.raw.ready();
      if (ready.snapshot) {
        node.storage.applySnapshot(ready.snapshot);
        node.snapshotsInstalled++;
      }
      node.storage.append(ready.entries);
      if (ready.hardState) node.storage.setHardState(ready.hardState);
      for (const message of ready.messages) {
        this.sent.push(message);
        if (!this.cut.has(`${message.from}>${message.to}`)) this.queue.push(message);
      }
      node.applied.push(...ready.committedEntries);
      node.readStates.push(...ready.readStates);
      node.raw.advance();
    }
  }

  processAll(): void {
    for (const id of this.nodes.keys()) this.processReady(id);
  }

  /** Deliver queued messages that match `filter` (all by default), once. */
  deliver(filter: (message: Message) => boolean = () => true): number {
    const due = this.queue.filter(filter);
    this.queue = this.queue.filter((message) => !filter(message));
    for (const message of due) {
      if (this.cut.has(`${message.from}>${message.to}`)) continue;
      this.raw(message.to).step(message);
      this.processReady(message.to);
    }
    return due.length;
  }

  /** Process and deliver until nothing moves. */
  stabilize(roundsMax = 200): void {
    for (let round = 0; round < roundsMax; round++) {
      this.processAll();
      if (this.queue.length === 0) return;
      this.deliver();
    }
    throw new Error('cluster did not stabilize');
  }

  tick(id: number, ticks = 1): void {
    for (let k = 0; k < ticks; k++) {
      this.raw(id).tick();
      this.processReady(id);
    }
  }

  /** Tick every node once and stabilize, `ticks` times. */
  tickAll(ticks: number, only: number[] = [...this.nodes.keys()]): void {
    for (let k = 0; k < ticks; k++) {
      for (const id of only) this.tick(id);
      this.stabilize();
    }
  }

  /** Tick `ids` until one of them leads; returns it. */
  awaitLeader(ids: number[], ticksMax = 100): number {
    for (let k = 0; k < ticksMax; k++) {
      const leader = ids.find((id) => this.raw(id).role === 'leader');
      if (leader !== undefined) return leader;
      this.tickAll(1, ids);
    }
    throw new Error(`no leader among ${ids} within ${ticksMax} ticks`);
  }

  isolate(id: number): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}>${other}`);
      this.cut.add(`${other}>${id}`);
    }
  }

  heal(): void {
    this.cut.clear();
  }

  elect(id: number): void {
    this.raw(id).campaign();
    this.stabilize();
  }

  propose(id: number, text: string): number {
    const index = this.raw(id).propose(new TextEncoder().encode(text));
    this.processReady(id);
    return index;
  }

  appliedTexts(id: number): string[] {
    return this.node(id).applied.filter((entry) => entry.type === 'normal').map((entry) => new TextDecoder().decode(entry.data));
  }
}
