import { describe, expect, it } from 'vitest';
import { isMaskable } from '../pipelines/corrupt/mask.ts';
import { Rng } from '../pipelines/corrupt/rng.ts';
import { plainVocabulary } from '../pipelines/corrupt/vocab.ts';
import { arExample } from '../trainer/ar.ts';
import { configProblems, defaultConfig, type TrainConfig } from '../trainer/config.ts';
import { editStageStart, stageAt } from '../trainer/curriculum.ts';
import { EpochOrder, type FeedContext, trainFrame } from '../trainer/feed.ts';
import { partLayout } from '../trainer/feed-part.ts';
import { buildValidationFrames, stratifiedTimes } from '../trainer/validation.ts';
import { buildWindowStore, type WindowLike, windowAt } from '../trainer/window-store.ts';

const SP = { pad: 0, bos: 1, eos: 2, mask: 3, del: 4 };
const L = 48;
const V = 120;

/** Synthetic windows: one or two packed documents of BOS content EOS, then padding. */
function windows(count: number, seed: number): WindowLike[] {
  const rng = new Rng(seed);
  const out: WindowLike[] = [];
  for (let w = 0; w < count; w++) {
    const tokens = new Int32Array(L);
    const segment = new Int32Array(L);
    let pos = 0;
    const docs = 1 + rng.int(2);
    for (let d = 1; d <= docs; d++) {
      const len = 5 + rng.int(14);
      tokens[pos] = SP.bos;
      segment[pos++] = d;
      for (let i = 0; i < len; i++) {
        tokens[pos] = 8 + rng.int(V - 8);
        segment[pos++] = d;
      }
      tokens[pos] = SP.eos;
      segment[pos++] = d;
    }
    out.push({ tokens, segment, length: pos, spans: [{ kind: 'statement', start: 1, end: 4 }] });
  }
  return out;
}

function context(over: Partial<TrainConfig> = {}): FeedContext {
  const cfg: TrainConfig = { ...defaultConfig(), ...over };
  cfg.data = { ...cfg.data, seq_len: L };
  return { cfg, specials: SP, editVocab: plainVocabulary(V, 8), train: buildWindowStore(windows(10, 7), L) };
}

const frames = (ctx: FeedContext, from: number, to: number) => {
  const order = new EpochOrder(ctx.cfg.seed, ctx.train.count);
  const out = [];
  for (let f = from; f < to; f++) out.push(trainFrame(ctx, order, f));
  return out;
};

describe('feed', () => {
  it('is deterministic: same seed, same batches; another seed, other batches', () => {
    const ctx = context({ steps: 10, batch: { batch_size: 4, micro_batches: 2 } });
    const a = frames(ctx, 0, 20);
    const b = frames(context({ steps: 10, batch: { batch_size: 4, micro_batches: 2 } }), 0, 20);
    expect(b).toEqual(a);
    const c = frames(context({ steps: 10, seed: 99, batch: { batch_size: 4, micro_batches: 2 } }), 0, 20);
    expect(c.map((f) => f.batch.input)).not.toEqual(a.map((f) => f.batch.input));
  });

  it('restarting at a stream position reproduces the later batches', () => {
    const ctx = context({ steps: 10, batch: { batch_size: 4, micro_batches: 2 } });
    const full = frames(ctx, 0, 20);
    expect(frames(ctx, 13, 20)).toEqual(full.slice(13));
    expect(full[13].step).toBe(6);
  });

  it('visits every window once per epoch', () => {
    const ctx = context();
    const order = new EpochOrder(ctx.cfg.seed, ctx.train.count);
    for (const epoch of [0, 1, 5]) {
      const seen = Array.from({ length: 10 }, (_, i) => order.windowOf(epoch * 10 + i)).sort((x, y) => x - y);
      expect(seen).toEqual([...Array(10).keys()]);
    }
  });

  it('switches from mask to mask+edit at mask_fraction of the steps', () => {
    const base = defaultConfig();
    const ctx = context({
      steps: 10,
      batch: { batch_size: 8, micro_batches: 2 },
      curriculum: { ...base.curriculum, mask_fraction: 0.7, edit_mix: 0.5 },
    });
    expect(editStageStart(ctx.cfg)).toBe(7);
    expect(stageAt(ctx.cfg, 6)).toBe('mask');
    expect(stageAt(ctx.cfg, 7)).toBe('edit');
    const all = frames(ctx, 0, 20);
    for (const f of all) {
      if (f.step < 7) expect(f.kinds).toEqual({ mask: 4, edit: 0, ar: 0 });
      else expect(f.kinds.mask + f.kinds.edit).toBe(4);
    }
    const edits = all.filter((f) => f.step >= 7).reduce((s, f) => s + f.kinds.edit, 0);
    expect(edits).toBeGreaterThan(0);
    expect(edits).toBeLessThan(24);
    // Mask examples: loss only where the input is <|mask|>, weight 1/p >= 1; edit examples: weight on content.
    for (const f of all) {
      const { input, weight, target } = f.batch;
      for (let i = 0; i < input.length; i++) {
        if (f.step < 7) {
          expect(weight[i] > 0).toBe(input[i] === SP.mask);
          if (weight[i] > 0) expect(weight[i]).toBeGreaterThanOrEqual(1);
        }
        expect(target[i]).not.toBe(SP.mask);
      }
    }
  });

  it('mask-ratio warm-up: few masks while the cap on t is small, about half once it reaches 1', () => {
    const base = defaultConfig();
    const ctx = context({
      steps: 40,
      batch: { batch_size: 8, micro_batches: 1 },
      curriculum: { ...base.curriculum, mask_fraction: 1, mask_warmup_steps: 20 },
    });
    const ratio = (fs: ReturnType<typeof frames>) => {
      let masked = 0;
      let content = 0;
      for (const f of fs)
        f.batch.input.forEach((tok, i) => {
          if (f.batch.segment[i] >= 0 && f.batch.target[i] !== SP.bos) content++;
          if (tok === SP.mask) masked++;
        });
      return masked / content;
    };
    expect(ratio(frames(ctx, 0, 2))).toBeLessThan(0.05);
    const late = ratio(frames(ctx, 20, 40));
    expect(late).toBeGreaterThan(0.35);
    expect(late).toBeLessThan(0.65);
  });

  it('block attention: one mask rate per block, so every block with content holds a mask', () => {
    const base = defaultConfig();
    const B = 8;
    const emptyBlocks = (attention: 'block' | 'bidirectional') => {
      const ctx = context({
        steps: 30,
        batch: { batch_size: 8, micro_batches: 1 },
        model: { ...base.model, attention_mode: attention, block_size: B },
        curriculum: { ...base.curriculum, mask_fraction: 1 },
      });
      let empty = 0;
      for (const f of frames(ctx, 0, 30)) {
        const { input } = f.batch;
        for (let row = 0; row * L < input.length; row++) {
          for (let b = 0; b < L; b += B) {
            let content = 0;
            let masked = 0;
            for (let i = row * L + b; i < row * L + b + B; i++) {
              if (input[i] === SP.mask) masked++;
              if (input[i] === SP.mask || isMaskable(input[i], SP)) content++;
            }
            if (content > 0 && masked === 0) empty++;
          }
        }
      }
      return empty;
    };
    expect(emptyBlocks('block')).toBe(0);
    // One rate per sequence leaves some blocks unmasked when t is small: the check above can fail.
    expect(emptyBlocks('bidirectional')).toBeGreaterThan(0);
  });

  it('two-stream: rows are [noisy | clean], loss on the noisy half only, documents kept per stream', () => {
    const base = defaultConfig();
    const ctx = context({
      steps: 20,
      batch: { batch_size: 4, micro_batches: 1 },
      model: { ...base.model, attention_mode: 'block', block_size: 8 },
      curriculum: { ...base.curriculum, mask_fraction: 0.5, two_stream: true },
    });
    const single = context({
      steps: 20,
      batch: { batch_size: 4, micro_batches: 1 },
      model: { ...base.model, attention_mode: 'block', block_size: 8 },
      curriculum: { ...base.curriculum, mask_fraction: 0.5 },
    });
    const order = new EpochOrder(ctx.cfg.seed, ctx.train.count);
    let edits = 0;
    for (let f = 0; f < 20; f++) {
      const two = trainFrame(ctx, order, f);
      const one = trainFrame(single, order, f);
      expect(two.batch.T).toBe(2 * L);
      edits += two.kinds.edit;
      for (let r = 0; r < two.batch.B; r++) {
        const row = (a: Int32Array | Float32Array, from: number, to: number) =>
          Array.from(a.subarray(r * 2 * L + from, r * 2 * L + to));
        const oneRow = (a: Int32Array | Float32Array) => Array.from(a.subarray(r * L, (r + 1) * L));
        // The noisy half is exactly the single-layout example; the clean half is its window.
        expect(row(two.batch.input, 0, L)).toEqual(oneRow(one.batch.input));
        expect(row(two.batch.weight, 0, L)).toEqual(oneRow(one.batch.weight));
        const w = windowAt(ctx.train, order.windowOf(f * two.batch.B + r));
        expect(row(two.batch.input, L, 2 * L)).toEqual(Array.from(w.tokens));
        expect(row(two.batch.target, L, 2 * L).every((t) => t === -1)).toBe(true);
        expect(row(two.batch.weight, L, 2 * L).every((x) => x === 0)).toBe(true);
        expect(row(two.batch.segment, L, 2 * L)).toEqual(Array.from(w.segment, (s) => (s === 0 ? -1 : s)));
      }
    }
    expect(edits).toBeGreaterThan(0);
    const frame = buildValidationFrames(ctx, ctx.train, 'elbo')[0];
    expect(frame.batch.T).toBe(2 * L);
  });

  it('two-stream: refused for AR, for bidirectional attention and beside --clean-prefix', () => {
    const base = defaultConfig();
    const cfg = (over: Partial<TrainConfig>) => ({ ...base, ...over });
    const two = { ...base.curriculum, two_stream: true };
    const block = { ...base.model, attention_mode: 'block' as const };
    expect(configProblems(cfg({ model: block, curriculum: two }), 'x')).toEqual([]);
    expect(configProblems(cfg({ curriculum: two }), 'x').join()).toMatch(/two_stream.*--attention block/);
    expect(configProblems(cfg({ model: block, curriculum: two, objective: 'ar' }), 'x').join()).toMatch(
      /objective ar/,
    );
    expect(
      configProblems(cfg({ model: block, curriculum: { ...two, clean_prefix: true } }), 'x').join(),
    ).toMatch(/drop --clean-prefix/);
  });

  it('suffix masks: with --suffix-masks 1 every masked block of a mask example is a clean prefix then masks', () => {
    const base = defaultConfig();
    const B = 8;
    const ctxOf = (suffix: number) =>
      context({
        steps: 20,
        batch: { batch_size: 4, micro_batches: 1 },
        model: { ...base.model, attention_mode: 'block', block_size: B },
        curriculum: { ...base.curriculum, mask_fraction: 1, suffix_masks: suffix },
      });
    // Blocks whose masks are not a suffix of their maskable tokens (mask, then a visible maskable token).
    const scattered = (suffix: number) => {
      let count = 0;
      for (const f of frames(ctxOf(suffix), 0, 20)) {
        const { input } = f.batch;
        for (let a = 0; a < input.length; a += B) {
          let seenMask = false;
          for (let i = a; i < a + B; i++) {
            if (input[i] === SP.mask) seenMask = true;
            else if (seenMask && isMaskable(input[i], SP)) {
              count++;
              break;
            }
          }
        }
      }
      return count;
    };
    expect(scattered(1)).toBe(0);
    expect(scattered(0)).toBeGreaterThan(0);
    const cfg = { ...base, curriculum: { ...base.curriculum, suffix_masks: 0.5 } };
    expect(configProblems(cfg, 'x').join()).toMatch(/suffix_masks.*--attention block/);
    const block = { ...base.model, attention_mode: 'block' as const };
    expect(configProblems({ ...cfg, model: block }, 'x')).toEqual([]);
    expect(
      configProblems(
        { ...cfg, model: block, curriculum: { ...cfg.curriculum, structure: true } },
        'x',
      ).join(),
    ).toMatch(/suffix_masks and curriculum.structure/);
  });

  it('ar: targets are the inputs shifted by one, within a document', () => {
    const ctx = context({ objective: 'ar', steps: 4, batch: { batch_size: 2, micro_batches: 1 } });
    for (const f of frames(ctx, 0, 4)) {
      const { input, target, weight, segment } = f.batch;
      for (let b = 0; b < f.batch.B; b++) {
        for (let t = 0; t < L; t++) {
          const i = b * L + t;
          const sameDoc = t + 1 < L && segment[i] >= 0 && segment[i] === segment[i + 1];
          expect(weight[i]).toBe(sameDoc ? 1 : 0);
          if (sameDoc) expect(target[i]).toBe(input[i + 1]);
        }
      }
    }
    // A window without segment ids: every position but the last predicts the next non-pad token.
    const ex = arExample(Int32Array.from([1, 10, 11, 12, 2, 0, 0]), undefined, 0);
    expect([...ex.target]).toEqual([10, 11, 12, 2, 0, 0, 0]);
    expect([...ex.weight]).toEqual([1, 1, 1, 1, 0, 0, 0]);
  });

  it('validation: stratified t covers each stratum once; frames are fixed across calls', () => {
    const t = stratifiedTimes(16, 3);
    const strata = [...t].map((x) => Math.floor(x * 16)).sort((a, b) => a - b);
    expect(strata).toEqual([...Array(16).keys()]);
    const ctx = context({ validation: { every: 10, batches: 2 } });
    const val = buildWindowStore(windows(5, 11), L);
    const a = buildValidationFrames(ctx, val, 'elbo');
    expect(buildValidationFrames(ctx, val, 'elbo')).toEqual(a);
    expect(a).toHaveLength(2);
    // The denominator counts maskable positions: content and EOS, not BOS or padding.
    for (const f of a) {
      let n = 0;
      f.batch.segment.forEach((s, i) => {
        if (s >= 0 && f.batch.target[i] !== SP.bos) n++;
      });
      expect(f.denominator).toBe(n);
    }
  });
});

describe('feed parts of a data-parallel run', () => {
  const rowsOf = (ctx: FeedContext, from: number, to: number): number[][] => {
    const T = ctx.cfg.data.seq_len;
    const out: number[][] = [];
    for (const f of frames(ctx, from, to)) {
      const b = f.batch;
      for (let k = 0; k < b.input.length / T; k++) {
        const row = (a: ArrayLike<number>) => Array.from(a).slice(k * T, (k + 1) * T);
        out.push([...row(b.input), ...row(b.target), ...row(b.weight), ...row(b.segment)]);
      }
    }
    return out;
  };

  it("the ranks' parts of every step are, in rank order, exactly the world-1 step; a rank resumes at step * frames", () => {
    const rng = new Rng(2026);
    for (let trial = 0; trial < 24; trial++) {
      const M = 1 + rng.int(4);
      const bs = M * (1 + rng.int(6));
      const divisors = [...Array(bs).keys()].map((d) => d + 1).filter((d) => bs % d === 0 && d <= 8);
      const N = divisors[rng.int(divisors.length)];
      const steps = 3;
      const over: Partial<TrainConfig> = {
        steps,
        seed: rng.int(1000),
        batch: { batch_size: bs, micro_batches: M },
        curriculum: { ...defaultConfig().curriculum, mask_fraction: 0.5 },
      };
      const world1 = context(over);
      const { framesPerStep, rows } = partLayout(world1.cfg, N);
      expect(framesPerStep * rows * N, `${bs}/${M}/${N}`).toBe(bs);
      if (M % N === 0) expect(rows).toBe(bs / M); // whole world-1 frames
      const parts = [...Array(N).keys()].map((rank) => ({ ...context(over), part: { rank, world: N } }));
      for (let s = 0; s < steps; s++) {
        const whole = rowsOf(world1, s * M, (s + 1) * M);
        const shared = parts.flatMap((p) => rowsOf(p, s * framesPerStep, (s + 1) * framesPerStep));
        expect(shared, `batch ${bs}, micro ${M}, ${N} ranks, step ${s}`).toEqual(whole);
        for (const p of parts) {
          for (const f of frames(p, s * framesPerStep, (s + 1) * framesPerStep)) expect(f.step).toBe(s);
        }
      }
      // The rule, independently: rank r's frame j of step s starts at example s*bs + r*bs/N + j*rows.
      const r = rng.int(N);
      const s = rng.int(steps);
      const j = rng.int(framesPerStep);
      const order = new EpochOrder(world1.cfg.seed, world1.train.count);
      const frame = trainFrame(parts[r], order, s * framesPerStep + j);
      const first = s * bs + (r * bs) / N + j * rows;
      const world1Frame = trainFrame(world1, order, Math.floor(first / (bs / M)));
      const T = world1.cfg.data.seq_len;
      const offset = (first % (bs / M)) * T;
      expect(Array.from(frame.batch.input.subarray(0, T))).toEqual(
        Array.from(world1Frame.batch.input.subarray(offset, offset + T)),
      );
    }
  });

  it('a batch the ranks cannot share equally is refused with the flag to change', () => {
    const ctx = context({ batch: { batch_size: 6, micro_batches: 2 } });
    expect(() => partLayout(ctx.cfg, 4)).toThrow(
      'batch.batch_size 6 cannot be split over 4 ranks: each rank trains batch_size / ranks sequences per step; set --batch-size to a multiple of 4.',
    );
    expect(partLayout(ctx.cfg, 3)).toEqual({ framesPerStep: 2, rows: 1 });
    expect(partLayout(ctx.cfg, 2)).toEqual({ framesPerStep: 1, rows: 3 });
  });
});

describe('feed pool', () => {
  it('worker threads produce the same frames, in order, as the main thread', async () => {
    const { FeedPool } = await import('../trainer/feed-pool.ts');
    const ctx = context({ steps: 10, batch: { batch_size: 4, micro_batches: 2 } });
    const expected = frames(ctx, 3, 17);
    const pool = new FeedPool(ctx, 2);
    const got = [];
    try {
      for await (const f of pool.frames(3, 17)) got.push(f);
    } finally {
      await pool.close();
    }
    expect(got).toEqual(expected);
  });
});

describe('unigram baselines', () => {
  it('entropy of k equiprobable tokens is log2 k; cross-entropy matches a direct sum', async () => {
    const { unigramEntropyBits, unigramCrossEntropyBits } = await import('../trainer/unigram.ts');
    const mk = (toks: number[]) =>
      buildWindowStore(
        [
          {
            tokens: Int32Array.from(toks),
            segment: Int32Array.from(toks, (t) => (t === 0 ? 0 : 1)),
            length: toks.length,
            spans: [],
          },
        ],
        toks.length,
      );
    const train = mk([1, 10, 11, 12, 13, 10, 11, 12, 13, 0, 0]);
    expect(unigramEntropyBits(train, [SP.pad, SP.bos])).toBeCloseTo(2, 12);
    const val = mk([1, 10, 10, 14, 0]);
    // Add-one smoothing over a vocabulary of 20: counts 2/8 -> (2+1)/(8+20), unseen 14 -> 1/28.
    const expected = -(2 * Math.log2(3 / 28) + Math.log2(1 / 28)) / 3;
    expect(unigramCrossEntropyBits(train, val, [SP.pad, SP.bos], 20)).toBeCloseTo(expected, 12);
  });
});

describe('loss plot', () => {
  it('ticks cover the range with 1-2-5 steps; the SVG has one polyline per series and the markers', async () => {
    const { renderSvg, movingAverage } = await import('../trainer/plot.ts');
    const { niceTicks } = await import('../common/svg.ts');
    for (const [lo, hi] of [
      [0, 1],
      [3.2, 12.9],
      [0, 317],
    ]) {
      const t = niceTicks(lo, hi);
      expect(t[0]).toBeGreaterThanOrEqual(lo);
      expect(t.at(-1)).toBeLessThanOrEqual(hi + 1e-9);
      const step = t[1] - t[0];
      expect((hi - lo) / step).toBeGreaterThanOrEqual(2);
      expect(Number((step / 10 ** Math.floor(Math.log10(step))).toFixed(6))).toBeOneOf([1, 2, 5]);
    }
    expect(
      movingAverage(
        [
          [1, 2],
          [2, 4],
          [3, 6],
        ],
        2,
      ).map((p) => p[1]),
    ).toEqual([2, 3, 5]);
    const svg = renderSvg({
      title: 'a < b',
      xLabel: 'x',
      yLabel: 'y',
      series: [
        {
          label: 'one',
          color: '#000',
          points: [
            [0, 1],
            [1, 2],
          ],
        },
        {
          label: 'two',
          color: '#111',
          points: [
            [0, 3],
            [1, 1],
          ],
        },
      ],
      vlines: [[0.5, 'edit stage']],
      hlines: [[1.5, 'unigram']],
    });
    expect(svg.match(/<polyline /g)).toHaveLength(2);
    expect(svg).toContain('a &lt; b');
    expect(svg).toContain('edit stage');
    expect(svg).toContain('unigram');
  });
});
