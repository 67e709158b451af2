import { describe, expect, it } from 'vitest';
import { blockClippedRate, MASK_EPS, maskCorrupt, maskRate, warmupCap } from '../pipelines/corrupt/mask.ts';
import { exampleRng, Rng } from '../pipelines/corrupt/rng.ts';
import { randomRow, SP, seeds } from './corrupt-helpers.ts';

const plain = (n: number, rng: Rng) => Int32Array.from({ length: n }, () => 10 + rng.int(100));

describe('mask process', () => {
  it('p_mask = (1-eps) t + eps and block clipping', () => {
    expect(maskRate(0)).toBeCloseTo(MASK_EPS, 12);
    expect(maskRate(1)).toBeCloseTo(1, 12);
    expect(blockClippedRate(0.01, 8)).toBe(1 / 8);
    expect(blockClippedRate(0.5, 8)).toBe(0.5);
    expect(warmupCap(0, 100)).toBeCloseTo(0.01);
    expect(warmupCap(50, 100)).toBeCloseTo(0.505);
    expect(warmupCap(100, 100)).toBe(1);
  });

  it('mask ratio matches p_mask within a binomial bound, per example and on average', () => {
    const n = 800;
    let total = 0;
    let expected = 0;
    let variance = 0;
    for (const s of seeds(60)) {
      const rng = new Rng(s);
      const x0 = plain(n, rng);
      const r = maskCorrupt(x0, [], rng, { specials: SP });
      const p = maskRate(r.t!);
      expect(r.rate[0]).toBeCloseTo(p, 6);
      expect(Math.abs(r.masked - p * n)).toBeLessThanOrEqual(6 * Math.sqrt(n * p * (1 - p)) + 1);
      total += r.masked;
      expected += p * n;
      variance += n * p * (1 - p);
    }
    expect(Math.abs(total - expected)).toBeLessThan(5 * Math.sqrt(variance));
  });

  it('t is uniform on [0, cap): mean t near cap/2, warm-up cap respected', () => {
    let sum = 0;
    const N = 400;
    for (let i = 0; i < N; i++) {
      const r = maskCorrupt(new Int32Array(4).fill(20), [], exampleRng(1, i), { specials: SP, tCap: 0.2 });
      expect(r.t!).toBeLessThan(0.2);
      sum += r.t!;
    }
    // U(0, 0.2) has sd 0.0577; the mean of N draws is within 5 sd / sqrt(N).
    expect(Math.abs(sum / N - 0.1)).toBeLessThan((5 * 0.0577) / Math.sqrt(N));
  });

  it('weights are 1/p on masked positions and 0 elsewhere; targets are x0; unbiased loss scale', () => {
    const n = 500;
    let scale = 0;
    const S = seeds(80);
    for (const s of S) {
      const rng = new Rng(s);
      const x0 = plain(n, rng);
      const r = maskCorrupt(x0, [], rng, { specials: SP, t: 0.2 });
      expect(Array.from(r.target)).toEqual(Array.from(x0));
      let wsum = 0;
      for (let i = 0; i < n; i++) {
        if (r.input[i] === SP.mask) expect(r.weight[i]).toBeCloseTo(1 / maskRate(0.2), 4);
        else {
          expect(r.weight[i]).toBe(0);
          expect(r.input[i]).toBe(x0[i]);
        }
        wsum += r.weight[i];
      }
      scale += wsum / n;
    }
    // E[sum_i 1{masked} / p] = n: the 1/p weighting is an unbiased estimate of the full loss scale.
    expect(Math.abs(scale / S.length - 1)).toBeLessThan(0.05);
  });

  it('never masks padding or BOS', () => {
    const x0 = Int32Array.from([SP.bos, 10, 11, 12, SP.eos, SP.pad, SP.pad, SP.pad]);
    for (const s of seeds(50)) {
      const r = maskCorrupt(x0, [], new Rng(s), { specials: SP, t: 1 });
      expect(r.input[0]).toBe(SP.bos);
      expect(Array.from(r.input.subarray(5))).toEqual([SP.pad, SP.pad, SP.pad]);
      expect(r.weight[0] + r.weight[5] + r.weight[6] + r.weight[7]).toBe(0);
      expect(r.masked).toBe(4); // t = 1 -> p = 1: every maskable token (EOS included)
    }
  });

  it('block mode: per-block clipped rate and at least one mask in every block', () => {
    const B = 16;
    for (const s of seeds(40)) {
      for (const structure of [false, true]) {
        const rng = new Rng(s);
        const row = randomRow(rng, 30);
        const r = maskCorrupt(row.tokens, row.spans, rng, {
          specials: SP,
          mode: 'block',
          blockSize: B,
          structure,
        });
        for (let a = 0; a < row.tokens.length; a += B) {
          const b = Math.min(a + B, row.tokens.length);
          let m = 0;
          for (let i = a; i < b; i++) {
            if (r.input[i] === SP.mask) {
              m++;
              expect(r.weight[i]).toBeCloseTo(1 / r.rate[a], 4);
            }
            expect(r.rate[i]).toBe(r.rate[a]);
          }
          expect(r.rate[a]).toBeGreaterThanOrEqual(Math.fround(1 / B) - 1e-7);
          expect(m).toBeGreaterThanOrEqual(1);
        }
      }
    }
  });

  it('structure-aware masking masks whole spans, hits the target count, tops up uniformly', () => {
    let spanMasked = 0;
    let topUp = 0;
    for (const s of seeds(80)) {
      const rng = new Rng(s);
      const row = randomRow(rng, 20);
      const n = row.tokens.length;
      const r = maskCorrupt(row.tokens, row.spans, rng, { specials: SP, structure: true });
      const p = r.rate[0];
      // Stochastic rounding: floor(p n) or floor(p n) + 1.
      expect(r.masked === Math.floor(p * n) || r.masked === Math.floor(p * n) + 1).toBe(true);
      const covered = new Uint8Array(n);
      for (const sp of r.maskedSpans) {
        expect(row.spans.some((o) => o.start === sp.start && o.end === sp.end && o.kind === sp.kind)).toBe(
          true,
        );
        for (let i = sp.start; i < sp.end; i++) {
          expect(r.input[i]).toBe(SP.mask);
          covered[i] = 1;
        }
      }
      const inSpans = covered.reduce((a, b) => a + b, 0);
      spanMasked += inSpans;
      topUp += r.masked - inSpans;
    }
    // Most masks come from whole spans; the uniform top-up only fills the remainder.
    expect(spanMasked).toBeGreaterThan(3 * topUp);
  });

  it('span kinds filter restricts which spans are masked whole', () => {
    for (const s of seeds(20)) {
      const rng = new Rng(s);
      const row = randomRow(rng, 15);
      const r = maskCorrupt(row.tokens, row.spans, rng, {
        specials: SP,
        structure: true,
        spanKinds: ['statement'],
      });
      for (const sp of r.maskedSpans) expect(sp.kind).toBe('statement');
    }
  });

  it('is deterministic in (seed, index)', () => {
    const row = randomRow(new Rng(5), 20);
    const a = maskCorrupt(row.tokens, row.spans, exampleRng(42, 7), { specials: SP, structure: true });
    const b = maskCorrupt(row.tokens, row.spans, exampleRng(42, 7), { specials: SP, structure: true });
    const c = maskCorrupt(row.tokens, row.spans, exampleRng(42, 8), { specials: SP, structure: true });
    expect(Array.from(a.input)).toEqual(Array.from(b.input));
    expect(a.t).toBe(b.t);
    expect(a.t).not.toBe(c.t);
  });
});
