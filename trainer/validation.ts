/**
 * The fixed validation batches, built once per run from the held-out split and sent at every evaluation, so
 * successive validation losses are comparable.
 *
 * Diffusion ("elbo" group): the mask objective with t stratified over U(0,1): of n examples, example j gets
 * t in [k/n, (k+1)/n) for a seeded permutation k of j, and loss weights 1/p_mask(t) on masked tokens. The
 * weighted masked cross-entropy summed over a sequence and averaged over t ~ U(0,1) is an upper bound on the
 * sequence's negative log-likelihood; dividing by the number of maskable tokens gives bits per token (after
 * dividing by ln 2). Stratifying t only lowers the variance of that Monte Carlo estimate.
 * Diffusion ("edit" group): edit-corrupted examples, cross-entropy per target token (not a likelihood bound).
 * AR ("nll" group): next-token negative log-likelihood per predicted token.
 */
import { isMaskable, maskCorrupt } from '../pipelines/corrupt/mask.ts';
import { exampleRng, Rng } from '../pipelines/corrupt/rng.ts';
import { arExample } from './ar.ts';
import { type MicroBatch, type SequenceExample, stackExamples, twoStreamExample } from './batch.ts';
import { microBatchSize, rowLength } from './config.ts';
import { RNG_STREAM } from './curriculum.ts';
import { editExample } from './edit-example.ts';
import { blockMasking, diffusionWindow, type FeedContext } from './feed.ts';
import { type WindowStore, windowAt } from './window-store.ts';

export type EvalGroup = 'elbo' | 'edit' | 'nll';

export interface ValidationFrame {
  group: EvalGroup;
  batch: MicroBatch;
  /** Tokens the metric is per: maskable tokens (elbo), weighted positions (nll, edit). */
  denominator: number;
}

/** Groups evaluated for an objective. */
export function evalGroups(objective: 'diffusion' | 'ar'): EvalGroup[] {
  return objective === 'ar' ? ['nll'] : ['elbo', 'edit'];
}

/** Window for validation example j of n: evenly spread over the split, wrapping when it is small. */
export function validationWindow(j: number, n: number, count: number): number {
  if (count <= 0) throw new Error('the validation split has no windows');
  return n <= count ? Math.floor((j * count) / n) : j % count;
}

/** Stratified t levels: t_j in [k_j/n, (k_j+1)/n) with k a seeded permutation of 0..n-1. */
export function stratifiedTimes(n: number, seed: number): Float64Array {
  const rng = new Rng(seed, n, RNG_STREAM.validation);
  const perm = rng.shuffle(Array.from({ length: n }, (_, i) => i));
  const t = new Float64Array(n);
  for (let j = 0; j < n; j++) t[j] = (perm[j] + rng.float()) / n;
  return t;
}

export function buildValidationFrames(
  ctx: FeedContext,
  valStore: WindowStore,
  group: EvalGroup,
): ValidationFrame[] {
  const { cfg, specials } = ctx;
  const B = microBatchSize(cfg);
  const n = cfg.validation.batches * B;
  const times = stratifiedTimes(n, cfg.seed);
  const frames: ValidationFrame[] = [];
  for (let f = 0; f < cfg.validation.batches; f++) {
    const examples: SequenceExample[] = [];
    let denominator = 0;
    for (let r = 0; r < B; r++) {
      const j = f * B + r;
      const stored = windowAt(valStore, validationWindow(j, n, valStore.count));
      const w = group === 'nll' ? stored : diffusionWindow(ctx, stored);
      const rng = exampleRng(cfg.seed, j, RNG_STREAM.validation);
      let ex: SequenceExample;
      if (group === 'nll') {
        ex = arExample(w.tokens, w.segment, specials.pad);
      } else if (group === 'elbo') {
        ex = maskCorrupt(
          w.tokens,
          w.spans,
          rng,
          { specials, t: times[j], eps: cfg.curriculum.mask_eps, ...blockMasking(cfg) },
          w.segment,
        );
        for (const tok of w.tokens) if (isMaskable(tok, specials)) denominator++;
      } else {
        ex = editExample(w, rng, ctx);
      }
      if (group !== 'elbo') for (const x of ex.weight) if (x > 0) denominator++;
      examples.push(
        group !== 'nll' && cfg.curriculum.two_stream ? twoStreamExample(ex, w.tokens, w.segment) : ex,
      );
    }
    frames.push({ group, batch: stackExamples(examples, rowLength(cfg)), denominator });
  }
  return frames;
}
