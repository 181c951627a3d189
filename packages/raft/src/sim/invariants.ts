// The safety properties the simulator checks after every event. Each check is incremental (it
// looks at what the event changed), so checking after every event stays cheap.
import { quorumSize } from '../quorum.js';
import type { Entry, HardState, Message, Role } from '../types.js';
import type { DurableView } from './disk.js';

export class InvariantViolation extends Error {
  readonly invariant: string;
  constructor(invariant: string, detail: string) {
    super(`invariant "${invariant}" violated: ${detail}`);
    this.name = 'InvariantViolation';
    this.invariant = invariant;
  }
}

function check(condition: boolean, invariant: string, detail: () => string): asserts condition {
  if (!condition) throw new InvariantViolation(invariant, detail());
}

/** What the checker needs to read from a live node's log. */
export interface LogView {
  termAt(index: number): number | undefined;
  readonly firstIndex: number;
  readonly lastIndex: number;
}

export interface NodeObservation extends LogView {
  readonly term: number;
  readonly vote: number;
  readonly role: Role;
  readonly commit: number;
}

interface NodeMemory {
  incarnation: number;
  termSeen: number;
  voteSeen: number;
  commitSeen: number;
  persisted: HardState;
  commitRegistered: number;
}

export function entryDigest(entry: Entry): string {
  let text = '';
  for (const byte of entry.data) text += String.fromCharCode(byte);
  return `${entry.term}/${entry.type}/${text}`;
}

export class InvariantChecker {
  private readonly leaderOfTerm = new Map<number, number>();
  /** (index, term) → "prevTerm|digest": the entry and its predecessor's term, for log matching. */
  private readonly entriesSeen = new Map<number, Map<number, string>>();
  /** index → term of the committed entry. */
  private readonly committedTerms: number[] = [];
  /**
   * index → the lowest term in which some node knew the entry committed (the committing node's
   * current term bounds the term in which the entry was committed from above). Leader completeness
   * concerns leaders of later terms only: a stale leader of an earlier term may lack it.
   */
  private readonly commitTerms: number[] = [];
  /** index → digest of the entry applied there by any node, in any incarnation. */
  private readonly appliedDigests: string[] = [];
  private readonly nodes = new Map<number, NodeMemory>();
  private readonly leaders = new Map<number, NodeObservation>();
  private commitIndexMaxSeen = 0;

  private memory(id: number): NodeMemory {
    let memory = this.nodes.get(id);
    if (memory === undefined) {
      memory = { incarnation: 0, termSeen: 0, voteSeen: 0, commitSeen: 0, persisted: { term: 0, vote: 0, commit: 0 }, commitRegistered: 0 };
      this.nodes.set(id, memory);
    }
    return memory;
  }

  /** A node restarted from its persisted state. */
  onRestart(id: number, node: NodeObservation): void {
    const memory = this.memory(id);
    memory.incarnation++;
    check(node.term >= memory.persisted.term, 'term never goes backwards across restarts', () =>
      `node ${id} restarted at term ${node.term}, persisted ${memory.persisted.term}`);
    check(node.term > memory.persisted.term || memory.persisted.vote === 0 || node.vote === memory.persisted.vote,
      'vote never changes across restarts', () => `node ${id} term ${node.term} vote ${node.vote}, persisted ${memory.persisted.vote}`);
    memory.termSeen = node.term;
    memory.voteSeen = node.vote;
    memory.commitSeen = node.commit;
  }

  onCrash(id: number): void {
    this.leaders.delete(id);
  }

  /** After every event that touched node `id`. */
  observe(id: number, node: NodeObservation): void {
    const memory = this.memory(id);
    check(node.term >= memory.termSeen, 'term never goes backwards', () => `node ${id}: ${memory.termSeen} -> ${node.term}`);
    if (node.term === memory.termSeen && memory.voteSeen !== 0) {
      check(node.vote === memory.voteSeen, 'one vote per term', () =>
        `node ${id} voted ${memory.voteSeen} then ${node.vote} in term ${node.term}`);
    }
    check(node.commit >= memory.commitSeen, 'commit index never goes backwards', () =>
      `node ${id}: ${memory.commitSeen} -> ${node.commit}`);
    // PreVote (Raft thesis §9.6): a pre-election is a dry run; only a real campaign raises one's own term.
    check(node.role !== 'preCandidate' || node.term === memory.termSeen, 'a pre-candidate keeps its term', () =>
      `node ${id} became a pre-candidate at term ${node.term}, was at ${memory.termSeen}`);
    memory.termSeen = node.term;
    memory.voteSeen = node.vote;
    memory.commitSeen = node.commit;
    if (node.role === 'leader') this.observeLeader(id, node);
    else this.leaders.delete(id);
    if (node.commit > memory.commitRegistered) this.registerCommitted(id, node, memory);
  }

  private observeLeader(id: number, node: NodeObservation): void {
    const known = this.leaderOfTerm.get(node.term);
    check(known === undefined || known === id, 'election safety', () =>
      `nodes ${known} and ${id} are both leaders of term ${node.term}`);
    if (known === undefined) {
      this.leaderOfTerm.set(node.term, id);
      // Leader completeness: every entry committed so far (in earlier terms) is in the new leader's log.
      const from = Math.max(1, node.firstIndex);
      for (let index = from; index < this.committedTerms.length; index++) {
        const term = this.committedTerms[index];
        if (term === undefined || this.commitTerms[index]! >= node.term) continue;
        check(node.termAt(index) === term, 'leader completeness', () =>
          `leader ${id} of term ${node.term} has term ${node.termAt(index)} at committed index ${index} (term ${term})`);
      }
    }
    this.leaders.set(id, node);
  }

  private registerCommitted(id: number, node: NodeObservation, memory: NodeMemory): void {
    for (let index = memory.commitRegistered + 1; index <= node.commit; index++) {
      const term = node.termAt(index);
      if (term === undefined) continue; // inside a snapshot
      const known = this.committedTerms[index];
      check(known === undefined || known === term, 'committed entries never change', () =>
        `node ${id} committed term ${term} at ${index}, earlier term ${known}`);
      this.committedTerms[index] = term;
      const commitTerm = Math.min(this.commitTerms[index] ?? Infinity, node.term);
      this.commitTerms[index] = commitTerm;
      for (const [leaderId, leader] of this.leaders) {
        if (leader.term <= commitTerm || index < leader.firstIndex) continue;
        check(leader.termAt(index) === term, 'leader completeness', () =>
          `leader ${leaderId} of term ${leader.term} has term ${leader.termAt(index)} at ${index}, committed (term ${term}) by term ${commitTerm}`);
      }
    }
    memory.commitRegistered = node.commit;
    this.commitIndexMaxSeen = Math.max(this.commitIndexMaxSeen, node.commit);
  }

  /** Node `id` stepped `message` (observe() follows); its term was `termBefore`. */
  onDeliver(id: number, message: Message, termBefore: number, node: NodeObservation): void {
    // Otherwise a node that cannot win (a partitioned one) still forces terms up, the disruption PreVote exists to prevent.
    check(message.type !== 'preVote' || node.term === termBefore, 'a pre-vote request leaves the receiver\'s term unchanged', () =>
      `node ${id} went from term ${termBefore} to ${node.term} on a pre-vote from ${message.from} at term ${message.term}`);
  }

  /**
   * Node `id` sends `message`; `disk` is what a crash of the node would leave now. A granted vote,
   * a candidate's vote for itself and an acknowledged append are promises, so they must be durable
   * when they leave — unless the node's durable term has moved past the message's: it will never
   * vote in that term again, and a leader of a newer term may have truncated what it acknowledged.
   * An acknowledgement promises the leader's entries, not just some entry at that index:
   * `leaderTermAt` is the addressee's log while it still leads in the message's term.
   */
  onSend(id: number, message: Message, disk: DurableView, leaderTermAt?: (index: number) => number | undefined): void {
    const durable = disk.hardState;
    if (durable.term > message.term) return;
    if ((message.type === 'voteResponse' && !message.reject) || message.type === 'vote') {
      const votedFor = message.type === 'vote' ? id : message.to;
      check(durable.term === message.term && durable.vote === votedFor, 'a vote is durable when sent', () =>
        `node ${id} sends ${message.type} for node ${votedFor} in term ${message.term}; durable term ${durable.term} vote ${durable.vote}`);
    } else if (message.type === 'appendResponse' && !message.reject) {
      const index = message.index;
      if (index <= disk.snapshotIndex) return; // a snapshot holds committed state only
      const durableTerm = index <= disk.lastIndex ? disk.termAt(index) : undefined;
      const leaderTerm = leaderTermAt?.(index);
      check(durableTerm !== undefined && (leaderTerm === undefined || durableTerm === leaderTerm),
        'an acknowledged append is durable when sent', () =>
          `node ${id} acknowledges index ${index} in term ${message.term}; on its disk: ${durableTerm === undefined ? 'nothing' : `term ${durableTerm}`} ` +
          `(log ends at ${disk.lastIndex}, snapshot ${disk.snapshotIndex}); the leader has term ${leaderTerm} there`);
    }
  }

  /**
   * Leader `id` advanced its commit index to `index` (an entry of term `entryTerm`). Its voters'
   * acknowledgements and its own count were durable, so a quorum of `voters` holds the entry on
   * disk (or a snapshot past it): otherwise one crash could lose a committed entry.
   */
  onLeaderCommit(id: number, term: number, index: number, entryTerm: number, voters: readonly number[], diskOf: (id: number) => DurableView): void {
    // Raft §5.4.2 (Figure 8): an entry of an earlier term on a quorum can still be overwritten.
    check(entryTerm === term, 'a leader commits by counting replicas only entries of its term', () =>
      `leader ${id} of term ${term} moved its commit index to ${index}, an entry of term ${entryTerm}`);
    let holding = 0;
    for (const voter of voters) {
      const disk = diskOf(voter);
      if (disk.snapshotIndex >= index || disk.termAt(index) === entryTerm) holding++;
    }
    check(holding >= quorumSize(voters.length), 'a committed entry is durable on a quorum', () =>
      `leader ${id} committed ${index} (term ${entryTerm}); ${holding} of voters [${voters}] hold it on disk`);
  }

  /** Node `id` persisted a hard state. */
  onPersistHardState(id: number, hardState: HardState): void {
    const memory = this.memory(id);
    const previous = memory.persisted;
    check(hardState.term >= previous.term, 'durable term never goes backwards', () =>
      `node ${id}: ${previous.term} -> ${hardState.term}`);
    if (hardState.term === previous.term && previous.vote !== 0) {
      check(hardState.vote === previous.vote, 'one vote per term', () =>
        `node ${id} persisted vote ${previous.vote} then ${hardState.vote} in term ${hardState.term}`);
    }
    check(hardState.commit >= previous.commit, 'durable commit never goes backwards', () =>
      `node ${id}: ${previous.commit} -> ${hardState.commit}`);
    memory.persisted = hardState;
  }

  /**
   * Node `id` persisted `entries`; `log` is its log at that moment. Log matching: an (index, term)
   * pair names one entry and one predecessor term, so equal pairs imply identical prefixes.
   */
  onPersistEntries(id: number, entries: readonly Entry[], log: LogView): void {
    for (const entry of entries) {
      const previousTerm = entry.index === 1 ? 0 : log.termAt(entry.index - 1);
      const signature = `${previousTerm ?? '?'}|${entryDigest(entry)}`;
      let byTerm = this.entriesSeen.get(entry.index);
      if (byTerm === undefined) {
        byTerm = new Map();
        this.entriesSeen.set(entry.index, byTerm);
      }
      const known = byTerm.get(entry.term);
      if (known === undefined || (known.startsWith('?|') && previousTerm !== undefined)) {
        byTerm.set(entry.term, signature);
        continue;
      }
      if (previousTerm === undefined) continue;
      check(known === signature, 'log matching', () =>
        `node ${id} persisted ${signature} at index ${entry.index} term ${entry.term}; another node has ${known}`);
    }
  }

  /** Node `id` applied `entry`. State machine safety: one entry per index, across nodes and restarts. */
  onApply(id: number, entry: Entry): void {
    const digest = entryDigest(entry);
    const known = this.appliedDigests[entry.index];
    check(known === undefined || known === digest, 'state machine safety', () =>
      `node ${id} applied ${digest} at index ${entry.index}; another node applied ${known}`);
    this.appliedDigests[entry.index] = digest;
  }

  /** The highest index known committed anywhere (a read must not return older state). */
  committedIndexMax(): number {
    return this.commitIndexMaxSeen;
  }

  appliedCount(): number {
    return this.appliedDigests.length;
  }
}
