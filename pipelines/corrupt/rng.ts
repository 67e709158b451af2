/**
 * A small, fast, seedable PRNG (xoshiro128**) so corruptions are reproducible bit for bit.
 * Each example gets its own generator derived from (seed, example index), which is what makes worker
 * threads produce the same examples whatever order they run in: no generator state is shared.
 */

/** splitmix32 step: a good mixer for turning arbitrary integers into well-spread seeds. */
function splitmix32(state: number): [number, number] {
  const next = (state + 0x9e3779b9) | 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  z ^= z >>> 15;
  return [next, z >>> 0];
}

const rotl = (x: number, k: number): number => (x << k) | (x >>> (32 - k));

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** Seed from up to a few integers (each taken modulo 2^53 and split into two 32-bit halves). */
  constructor(...seedParts: number[]) {
    let h = 0x6a09e667;
    for (const part of seedParts) {
      if (!Number.isFinite(part)) throw new Error(`Rng seed part must be a finite number, got ${part}`);
      const v = Math.trunc(Math.abs(part));
      const lo = v % 0x100000000;
      const hi = Math.floor(v / 0x100000000) + (part < 0 ? 0x80000000 : 0);
      h = splitmix32((h ^ lo) | 0)[1];
      h = splitmix32((h ^ hi) | 0)[1];
    }
    let st = h | 0;
    const out: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [ns, z] = splitmix32(st);
      st = ns;
      out.push(z | 0);
    }
    // xoshiro must not start from the all-zero state.
    if ((out[0] | out[1] | out[2] | out[3]) === 0) out[0] = 1;
    [this.s0, this.s1, this.s2, this.s3] = out as [number, number, number, number];
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9);
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result >>> 0;
  }

  /** Uniform float in [0, 1) with 53 bits of resolution. */
  float(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [0, n). Rejection sampling keeps it unbiased for any n < 2^32. */
  int(n: number): number {
    if (!(n >= 1) || n > 0x100000000 || !Number.isInteger(n)) throw new Error(`Rng.int: bad bound ${n}`);
    const limit = 0x100000000 - (0x100000000 % n);
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }

  /** Uniform integer in [lo, hi). */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo);
  }

  bernoulli(p: number): boolean {
    return this.float() < p;
  }

  /** Pick an index with probability proportional to weights[i] (all >= 0, sum > 0). */
  weighted(weights: readonly number[]): number {
    let total = 0;
    for (const w of weights) total += w;
    let r = this.float() * total;
    for (let i = 0; i < weights.length; i++) {
      r -= weights[i];
      if (r < 0 && weights[i] > 0) return i;
    }
    for (let i = weights.length - 1; i >= 0; i--) if (weights[i] > 0) return i;
    throw new Error('Rng.weighted: all weights are zero');
  }

  /** Fisher-Yates shuffle in place. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i];
      items[i] = items[j];
      items[j] = tmp;
    }
    return items;
  }
}

/** The generator for one example: depends only on (seed, index, stream), never on scheduling. */
export function exampleRng(seed: number, index: number, stream = 0): Rng {
  return new Rng(seed, index, stream);
}
