/**
 * Which part of the training stream a rank builds. Rank r of N trains, of step s, the r-th of N equal
 * contiguous slices of the step's examples: examples s*BS + r*BS/N .. s*BS + (r+1)*BS/N - 1 (BS =
 * batch.batch_size, which N must divide). Examples are a function of (seed, index) only (feed.ts), so the
 * ranks' parts of a step are together exactly the examples a world of one trains in that step, and a
 * rank's part of any step is known without reading the others'.
 *
 * A rank cuts its slice into M_r = M / gcd(M, N) frames (M = batch.micro_batches) of BS / (N * M_r) rows:
 * when N divides M these are whole frames of the world-1 stream (the same micro-batch size, M/N frames per
 * rank), otherwise each world-1 frame's rows are shared out. Frame f of rank r belongs to step
 * floor(f / M_r), so a rank resumes its part at frame step * M_r, as a world of one does at step * M.
 */
import { UserError } from '../common/errors.ts';
import type { TrainConfig } from './config.ts';
import type { Ranks } from './ranks.ts';

export type FeedPart = Pick<Ranks, 'rank' | 'world'>;

export interface PartLayout {
  /** Frames per step on every rank (the native trainer's micro_batches). */
  framesPerStep: number;
  /** Rows per frame. */
  rows: number;
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

export function partLayout(cfg: TrainConfig, world: number): PartLayout {
  const bs = cfg.batch.batch_size;
  if (bs % world !== 0)
    throw new UserError(
      `batch.batch_size ${bs} cannot be split over ${world} ranks: each rank trains batch_size / ranks sequences per step; set --batch-size to a multiple of ${world}.`,
    );
  const framesPerStep = cfg.batch.micro_batches / gcd(cfg.batch.micro_batches, world);
  return { framesPerStep, rows: bs / (world * framesPerStep) };
}

/** The step of rank-local frame `frame` and the global index of its first example. */
export function partFrame(cfg: TrainConfig, part: FeedPart, frame: number): { step: number; first: number } {
  const { framesPerStep, rows } = partLayout(cfg, part.world);
  const step = Math.floor(frame / framesPerStep);
  const bs = cfg.batch.batch_size;
  return { step, first: step * bs + (part.rank * bs) / part.world + (frame - step * framesPerStep) * rows };
}
