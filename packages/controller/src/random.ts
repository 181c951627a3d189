// Randomness is injected (no Math.random in the controller): placement start index and shift and
// topic ids come from it, so a seeded run replays exactly. Same shape as @runnel/raft's `Random`,
// so the host can pass one generator to both.

export interface Random {
  /** A uniform integer in [0, maxExclusive). */
  nextInt(maxExclusive: number): number;
}

/** A small seeded generator (mulberry32) for tests and tools. */
export class SeededRandom implements Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  private nextUint32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  nextInt(maxExclusive: number): number {
    if (!Number.isSafeInteger(maxExclusive) || maxExclusive < 1) {
      throw new RangeError(`nextInt bound must be an integer >= 1, got ${maxExclusive}`);
    }
    return Math.floor((this.nextUint32() / 4294967296) * maxExclusive);
  }
}
