/**
 * One entry point for both processes, shared by the trainer feed and `sdt data corrupt`: a window (or a
 * bare token sequence) + the example index + a config -> one TrainingExample. The Rng is derived from
 * (seed, index) only, so the same index gives the same example in any worker, in any order.
 */
import type { Span } from '../../schemas/dataset.ts';
import { tokenDistance } from './align.ts';
import { type EditOptions, type EditResult, editTokens } from './edit.ts';
import { type MaskOptions, type MaskResult, maskCorrupt } from './mask.ts';
import { exampleRng, type Rng } from './rng.ts';
import { alignedExample, type EditExample, positionalExample, type TargetForm } from './targets.ts';
import type { CorruptSpecials, Window } from './types.ts';

export interface EditConfig extends Omit<EditOptions, 'specials'> {
  targets: TargetForm;
  /** Canvas length; default: the window length L (or the edited length for a bare sequence). */
  canvas?: number;
}

export interface CorruptConfig {
  kind: 'mask' | 'edit';
  seed: number;
  specials: CorruptSpecials;
  mask?: Omit<MaskOptions, 'specials'>;
  edit?: EditConfig;
}

export type CorruptedExample = MaskResult | (EditExample & { edit: EditResult });

/** Edit x0 and build the configured targets; the distance is measured with fastest-levenshtein. */
export function editExample(
  x0: Int32Array,
  spans: readonly Span[],
  rng: Rng,
  specials: CorruptSpecials,
  cfg: EditConfig,
  segment?: Int32Array,
  canvas?: number,
): EditExample & { edit: EditResult } {
  const edit = editTokens(x0, spans, rng, { ...cfg, specials }, segment);
  const distance = tokenDistance(x0, edit.edited);
  const opts = {
    canvas: cfg.canvas ?? canvas,
    t: edit.alpha,
    ...(edit.editedSegment ? { editedSegment: edit.editedSegment } : {}),
  };
  if (cfg.targets === 'aligned') {
    const ex = alignedExample(x0, edit.edited, specials, { ...opts, bound: distance });
    if (ex.distance !== distance) {
      throw new Error(`alignment DP cost ${ex.distance} != fastest-levenshtein ${distance} (bug)`);
    }
    return { ...ex, edit };
  }
  return { ...positionalExample(x0, edit.edited, distance, specials, opts), edit };
}

/** Corrupt one window: mask over the whole window, or edit its content with a canvas of length L. */
export function corruptWindow(window: Window, index: number, cfg: CorruptConfig): CorruptedExample {
  const rng = exampleRng(cfg.seed, index);
  if (cfg.kind === 'mask') {
    return maskCorrupt(
      window.tokens,
      window.spans,
      rng,
      { ...cfg.mask, specials: cfg.specials },
      window.segment,
    );
  }
  if (!cfg.edit) throw new Error('corruptWindow: kind "edit" needs cfg.edit');
  const x0 = window.tokens.subarray(0, window.length);
  const seg = window.segment.subarray(0, window.length);
  return editExample(x0, window.spans, rng, cfg.specials, cfg.edit, seg, window.tokens.length);
}
