import { describe, expect, it } from 'vitest';
import { maskCorrupt } from '../pipelines/corrupt/mask.ts';
import { Rng } from '../pipelines/corrupt/rng.ts';
import { SP } from './corrupt-helpers.ts';

const B = 8;
const row = (n: number, seed: number) => {
  const rng = new Rng(seed);
  return Int32Array.from({ length: n }, () => 10 + rng.int(100));
};

/** Masked positions of block b, in order. */
const maskedOf = (input: Int32Array, b: number) => {
  const out: number[] = [];
  for (let i = b * B; i < Math.min(input.length, (b + 1) * B); i++) if (input[i] === SP.mask) out.push(i);
  return out;
};

/** A block's masked positions are a suffix when every maskable position after the first masked one is masked. */
const isSuffix = (input: Int32Array, x0: Int32Array, b: number) => {
  const m = maskedOf(input, b);
  if (m.length === 0) return false;
  for (let i = m[0]; i < Math.min(input.length, (b + 1) * B); i++)
    if (x0[i] !== SP.pad && x0[i] !== SP.bos && input[i] !== SP.mask) return false;
  return true;
};

describe('suffix masking', () => {
  it('fraction 1: every block masks a suffix of its maskable tokens, padding and BOS kept, weights 1/p', () => {
    for (let s = 0; s < 200; s++) {
      const x0 = row(40, s);
      x0[0] = SP.bos;
      for (let i = 34; i < 40; i++) x0[i] = SP.pad;
      const r = maskCorrupt(x0, [], new Rng(s), {
        specials: SP,
        mode: 'block',
        blockSize: B,
        suffixFraction: 1,
      });
      for (let b = 0; b < 5; b++) {
        expect(isSuffix(r.input, x0, b)).toBe(true);
        for (let i = b * B; i < (b + 1) * B; i++) {
          if (r.input[i] === SP.mask) expect(r.weight[i]).toBeCloseTo(1 / r.rate[i], 4);
          else expect(r.weight[i]).toBe(0);
        }
      }
      expect(r.input[0]).toBe(SP.bos);
      for (let i = 34; i < 40; i++) expect(r.input[i]).toBe(SP.pad);
    }
  });

  it('draws the suffix length as the scattered process draws its count: mean masked fraction ~ E[p]', () => {
    let masked = 0;
    let expected = 0;
    for (let s = 0; s < 2000; s++) {
      const x0 = row(B, s);
      const r = maskCorrupt(x0, [], new Rng(s), {
        specials: SP,
        mode: 'block',
        blockSize: B,
        suffixFraction: 1,
      });
      masked += r.masked;
      // Binomial(B, p) forced to at least one: E = B p + P(count = 0).
      const p = r.rate[0];
      expected += B * p + (1 - p) ** B;
    }
    expect(Math.abs(masked - expected) / expected).toBeLessThan(0.03);
  });

  it('a fraction in between mixes suffix and scattered blocks in about that proportion', () => {
    let suffix = 0;
    let blocks = 0;
    for (let s = 0; s < 400; s++) {
      const x0 = row(64, s);
      const r = maskCorrupt(x0, [], new Rng(s), {
        specials: SP,
        mode: 'block',
        blockSize: B,
        suffixFraction: 0.3,
      });
      for (let b = 0; b < 8; b++) {
        blocks++;
        // A scattered block can look like a suffix by chance (one mask at the end, or all masked).
        if (isSuffix(r.input, x0, b)) suffix++;
      }
    }
    const share = suffix / blocks;
    expect(share).toBeGreaterThan(0.3);
    expect(share).toBeLessThan(0.55);
    const scattered = maskCorrupt(row(64, 1), [], new Rng(1), { specials: SP, mode: 'block', blockSize: B });
    expect(scattered.kind).toBe('mask');
  });

  it('fraction 0 draws exactly what the option left out draws (streams of older runs unchanged)', () => {
    for (let s = 0; s < 50; s++) {
      const x0 = row(64, s);
      const a = maskCorrupt(x0, [], new Rng(s), { specials: SP, mode: 'block', blockSize: B });
      const b = maskCorrupt(x0, [], new Rng(s), {
        specials: SP,
        mode: 'block',
        blockSize: B,
        suffixFraction: 0,
      });
      expect(Array.from(b.input)).toEqual(Array.from(a.input));
      expect(Array.from(b.weight)).toEqual(Array.from(a.weight));
    }
  });

  it('refuses a fraction outside [0, 1] and sequence mode', () => {
    const x0 = row(16, 3);
    expect(() =>
      maskCorrupt(x0, [], new Rng(1), { specials: SP, mode: 'block', blockSize: B, suffixFraction: 1.5 }),
    ).toThrow(/suffixFraction/);
    expect(() => maskCorrupt(x0, [], new Rng(1), { specials: SP, suffixFraction: 0.5 })).toThrow(
      /block mode/,
    );
  });
});
