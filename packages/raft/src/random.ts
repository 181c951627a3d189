// A small seeded PRNG (xoshiro128**, seeded through splitmix32). The core takes a `Random` so that
// election timeouts are reproducible; the simulator drives every choice from one instance.

export interface Random {
  /** A uniform integer in [0, maxExclusive). */
  nextInt(maxExclusive: number): number;
  /** A uniform float in [0, 1). */
  nextFloat(): number;
}

export class Xoshiro128 implements Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    let state = seed >>> 0;
    const splitmix32 = (): number => {
      state = (state + 0x9e3779b9) >>> 0;
      let z = state;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = splitmix32();
    this.b = splitmix32();
    this.c = splitmix32();
    this.d = splitmix32();
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }

  private nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.b << 9) >>> 0;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    this.a >>>= 0;
    this.b >>>= 0;
    this.c >>>= 0;
    return result;
  }

  nextFloat(): number {
    return this.nextUint32() / 4294967296;
  }

  nextInt(maxExclusive: number): number {
    if (!(maxExclusive >= 1)) throw new RangeError(`nextInt bound must be >= 1, got ${maxExclusive}`);
    return Math.floor(this.nextFloat() * maxExclusive);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
