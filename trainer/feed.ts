/**
 * The feed's pure core: which window and which corruption each training example gets, and the fixed
 * validation batches. Training example `i` is a function of (seed, i) only: its window comes from a seeded
 * permutation of the windows for its epoch, its corruption from an Rng seeded with (seed, i). In a world of
 * one, frame f (one micro-batch of the stream) holds examples f*B .. f*B+B-1 and belongs to step
 * floor(f / micro_batches); a rank of a larger world builds its part of each step (feed-part.ts). Restarting
 * the feed at a frame position reproduces the rest of the run exactly.
 */
import { maskCorrupt, warmupCap } from '../pipelines/corrupt/mask.ts';
import { exampleRng, Rng } from '../pipelines/corrupt/rng.ts';
import type { CorruptSpecials } from '../pipelines/corrupt/types.ts';
import { arExample } from './ar.ts';
import { type MicroBatch, type SequenceExample, stackExamples, twoStreamExample } from './batch.ts';
import { alignToBlocks, type PackedWindow } from './block-align.ts';
import { rowLength, type TrainConfig } from './config.ts';
import { type ExampleKind, exampleKind, RNG_STREAM } from './curriculum.ts';
import { type EditContext, editExample } from './edit-example.ts';
import { type FeedPart, partFrame, partLayout } from './feed-part.ts';
import { type WindowStore, windowAt } from './window-store.ts';

export interface FeedContext extends EditContext {
  cfg: TrainConfig;
  specials: CorruptSpecials;
  train: WindowStore;
  /** This rank's part of the stream; absent: a world of one. */
  part?: FeedPart;
}

/** Seeded permutations of window indices, one per epoch; the last few are cached. */
export class EpochOrder {
  private readonly cache = new Map<number, Uint32Array>();
  constructor(
    private readonly seed: number,
    private readonly count: number,
  ) {
    if (count <= 0) throw new Error('the training split has no windows');
  }

  permutation(epoch: number): Uint32Array {
    let perm = this.cache.get(epoch);
    if (perm) return perm;
    perm = new Uint32Array(this.count);
    for (let i = 0; i < this.count; i++) perm[i] = i;
    const rng = new Rng(this.seed, epoch, RNG_STREAM.order);
    for (let i = this.count - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      const tmp = perm[i];
      perm[i] = perm[j];
      perm[j] = tmp;
    }
    if (this.cache.size >= 3) this.cache.delete(this.cache.keys().next().value as number);
    this.cache.set(epoch, perm);
    return perm;
  }

  /** The window of training example `index`. */
  windowOf(index: number): number {
    const epoch = Math.floor(index / this.count);
    return this.permutation(epoch)[index - epoch * this.count];
  }
}

export interface FeedExample extends SequenceExample {
  kind: ExampleKind;
  window: number;
}

/** The window a diffusion example corrupts: block-aligned with <|eos|> fill under curriculum.align_blocks. */
export function diffusionWindow(ctx: FeedContext, w: PackedWindow): PackedWindow {
  const { cfg, specials } = ctx;
  return cfg.curriculum.align_blocks ? alignToBlocks(w, cfg.model.block_size, specials.eos, specials.pad) : w;
}

/** Block models draw one mask rate per block, aligned with the blocks their attention sees. */
export function blockMasking(cfg: TrainConfig): { mode?: 'block'; blockSize?: number } {
  return cfg.model.attention_mode === 'block' ? { mode: 'block', blockSize: cfg.model.block_size } : {};
}

/** Training example `index`, drawn during 0-based optimizer step `step`. */
export function trainExample(ctx: FeedContext, order: EpochOrder, index: number, step: number): FeedExample {
  const { cfg, specials } = ctx;
  const window = order.windowOf(index);
  const kind = exampleKind(cfg, step, index);
  const stored = windowAt(ctx.train, window);
  const w = kind === 'ar' ? stored : diffusionWindow(ctx, stored);
  const rng = exampleRng(cfg.seed, index, RNG_STREAM.corrupt);
  let ex: SequenceExample;
  if (kind === 'ar') {
    ex = arExample(w.tokens, w.segment, specials.pad);
  } else if (kind === 'mask') {
    ex = maskCorrupt(
      w.tokens,
      w.spans,
      rng,
      {
        specials,
        structure: cfg.curriculum.structure,
        eps: cfg.curriculum.mask_eps,
        tCap: warmupCap(step, cfg.curriculum.mask_warmup_steps),
        ...blockMasking(cfg),
        ...(cfg.curriculum.clean_prefix && cfg.model.attention_mode === 'block' ? { cleanPrefix: true } : {}),
        ...(cfg.curriculum.suffix_masks > 0 ? { suffixFraction: cfg.curriculum.suffix_masks } : {}),
      },
      w.segment,
    );
  } else {
    ex = editExample(w, rng, ctx);
  }
  if (cfg.curriculum.two_stream && kind !== 'ar') ex = twoStreamExample(ex, w.tokens, w.segment);
  return { ...ex, kind, window };
}

export interface TrainFrame {
  frame: number;
  step: number;
  batch: MicroBatch;
  /** Examples per corruption kind in this frame. */
  kinds: Record<ExampleKind, number>;
}

/** Micro-batch `frame` of this rank's training stream. */
export function trainFrame(ctx: FeedContext, order: EpochOrder, frame: number): TrainFrame {
  const part = ctx.part ?? { rank: 0, world: 1 };
  const { rows } = partLayout(ctx.cfg, part.world);
  const { step, first } = partFrame(ctx.cfg, part, frame);
  const kinds: Record<ExampleKind, number> = { mask: 0, edit: 0, ar: 0 };
  const examples: FeedExample[] = [];
  for (let r = 0; r < rows; r++) {
    const ex = trainExample(ctx, order, first + r, step);
    kinds[ex.kind]++;
    examples.push(ex);
  }
  return { frame, step, batch: stackExamples(examples, rowLength(ctx.cfg)), kinds };
}
