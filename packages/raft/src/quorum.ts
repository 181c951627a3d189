// Majority arithmetic: the commit index a quorum has reached, and the outcome of a vote.

export function quorumSize(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/** The largest index that a majority of voters have (match index of the quorum-th best voter). */
export function majorityIndex(voters: Iterable<number>, matchOf: (id: number) => number): number {
  const matches: number[] = [];
  for (const id of voters) matches.push(matchOf(id));
  if (matches.length === 0) return 0;
  matches.sort((x, y) => y - x);
  return matches[quorumSize(matches.length) - 1]!;
}

export type VoteResult = 'won' | 'lost' | 'pending';

export function voteResult(voters: ReadonlySet<number>, votes: ReadonlyMap<number, boolean>): VoteResult {
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const vote = votes.get(id);
    if (vote === true) granted++;
    else if (vote === false) rejected++;
  }
  const quorum = quorumSize(voters.size);
  if (granted >= quorum) return 'won';
  if (rejected > voters.size - quorum) return 'lost';
  return 'pending';
}

/** Whether the voters for which `active` holds form a majority. */
export function quorumActive(voters: ReadonlySet<number>, active: (id: number) => boolean): boolean {
  let count = 0;
  for (const id of voters) if (active(id)) count++;
  return count >= quorumSize(voters.size);
}
