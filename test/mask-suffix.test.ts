import { describe, expect, it } from 'vitest';
import { maskCorrupt } from '../pipelines/corrupt/mask.ts';
import { Rng } from '../pipelines/corrupt/rng.ts';
import { plainRow as row, SP } from './corrupt-helpers.ts';

const B = 8;

/** Block-mode masking of x0 with the corruption stream `seed` and suffix fraction q (undefined: option left out). */
const blockMask = (x0: Int32Array, seed: number, q?: number) =>
  maskCorrupt(x0, [], new Rng(seed), {
    specials: SP,
    mode: 'block',
    blockSize: B,
    ...(q === undefined ? {} : { suffixFraction: q }),
  });

/** A block's masked positions are a suffix when every maskable position after the first masked one is masked. */
const isSuffix = (input: Int32Array, x0: Int32Array, b: number) => {
  const end = Math.min(input.length, (b + 1) * B);
  let first = -1;
  for (let i = b * B; i < end && first < 0; i++) if (input[i] === SP.mask) first = i;
  if (first < 0) return false;
  for (let i = first; i < end; i++)
    if (x0[i] !== SP.pad && x0[i] !== SP.bos && input[i] !== SP.mask) return false;
  return true;
};

/** Share of the 8 blocks of 400 64-token rows whose masks form a suffix, at suffix fraction q. */
const suffixShare = (q: number) => {
  let suffix = 0;
  let blocks = 0;
  for (let s = 0; s < 400; s++) {
    const x0 = row(64, s);
    const r = blockMask(x0, s, q);
    for (let b = 0; b < 8; b++) {
      blocks++;
      if (isSuffix(r.input, x0, b)) suffix++;
    }
  }
  return suffix / blocks;
};

describe('suffix masking', () => {
  it('fraction 1: every block masks a suffix of its maskable tokens, padding and BOS kept, weights 1/p', () => {
    for (let s = 0; s < 200; s++) {
      const x0 = row(40, s);
      x0[0] = SP.bos;
      for (let i = 34; i < 40; i++) x0[i] = SP.pad;
      const r = blockMask(x0, s, 1);
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
      const r = blockMask(row(B, s), s, 1);
      masked += r.masked;
      // Binomial(B, p) forced to at least one: E = B p + P(count = 0).
      const p = r.rate[0];
      expected += B * p + (1 - p) ** B;
    }
    expect(Math.abs(masked - expected) / expected).toBeLessThan(0.03);
  });

  it('a fraction in between mixes suffix and scattered blocks in about that proportion', () => {
    // A scattered block can look like a suffix by chance (one mask at the end, or all masked): measure that
    // share at fraction 0; at q the share is chance + q (1 - chance).
    const chance = suffixShare(0);
    const share = suffixShare(0.3);
    expect(share).toBeGreaterThan(0.3);
    expect(share).toBeLessThan(0.55);
    expect(Math.abs(share - (chance + 0.3 * (1 - chance)))).toBeLessThan(0.05);
    const scattered = blockMask(row(64, 1), 1);
    expect(scattered.kind).toBe('mask');
  });

  it('fraction 0 draws exactly what the option left out draws (streams of older runs unchanged)', () => {
    for (let s = 0; s < 50; s++) {
      const x0 = row(64, s);
      const a = blockMask(x0, s);
      const b = blockMask(x0, s, 0);
      expect(Array.from(b.input)).toEqual(Array.from(a.input));
      expect(Array.from(b.weight)).toEqual(Array.from(a.weight));
    }
  });

  it('refuses a fraction outside [0, 1] and sequence mode', () => {
    const x0 = row(16, 3);
    expect(() => blockMask(x0, 1, 1.5)).toThrow(/suffixFraction/);
    expect(() => maskCorrupt(x0, [], new Rng(1), { specials: SP, suffixFraction: 0.5 })).toThrow(
      /block mode/,
    );
  });
});
