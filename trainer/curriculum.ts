/**
 * The two-stage curriculum of one diffusion run: mask corruption for the first `mask_fraction` of the steps,
 * then edit corruption mixed with mask (each example is an edit with probability `edit_mix`). The AR
 * objective has a single stage. Everything here is a pure function of (config, step, example index), which is
 * what lets a resumed run see exactly the examples an uninterrupted one would.
 */
import { exampleRng } from '../pipelines/corrupt/rng.ts';
import type { TrainConfig } from './config.ts';
import { totalSteps } from './config.ts';

export type Stage = 'mask' | 'edit' | 'ar';
export type ExampleKind = 'mask' | 'edit' | 'ar';

/** Rng stream ids, so the draws for different purposes of one example never overlap. */
export const RNG_STREAM = { kind: 1, corrupt: 2, order: 3, validation: 4 } as const;

/** First step (0-based) of the edit stage; equals the step count when there is no edit stage. */
export function editStageStart(cfg: TrainConfig): number {
  const steps = totalSteps(cfg);
  return Math.min(steps, Math.round(cfg.curriculum.mask_fraction * steps));
}

/** The stage that 0-based step `step` belongs to. */
export function stageAt(cfg: TrainConfig, step: number): Stage {
  if (cfg.objective === 'ar') return 'ar';
  return step < editStageStart(cfg) ? 'mask' : 'edit';
}

/** The corruption of training example `index`, drawn during 0-based `step`. */
export function exampleKind(cfg: TrainConfig, step: number, index: number): ExampleKind {
  const stage = stageAt(cfg, step);
  if (stage !== 'edit') return stage;
  return exampleRng(cfg.seed, index, RNG_STREAM.kind).float() < cfg.curriculum.edit_mix ? 'edit' : 'mask';
}
