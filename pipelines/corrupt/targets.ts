/**
 * The two target forms for edited sequences (docs/corruptions.md), both over a fixed-length canvas:
 * (a) positional: position j of the canvas targets x0[j] (x0 padded with <|pad|> or truncated);
 * (b) aligned: position j targets the x0 token the edited token aligns to under an optimal Levenshtein
 *     alignment, or <|del|> when it is spurious; deleted x0 tokens are listed as "missing before j".
 * The loss covers every real position (weight 1): the model must learn that visible tokens can be wrong.
 */
import { alignedTargets } from './align.ts';
import type { CorruptSpecials, TrainingExample } from './types.ts';

export type TargetForm = 'positional' | 'aligned';

export interface EditExample extends TrainingExample {
  kind: 'edit';
  /** Token-level Levenshtein distance between x0 and the edited sequence (before canvas truncation). */
  distance: number;
  /** Aligned form only: x0 tokens deleted by the edit, to be re-inserted before input position p. */
  missingBefore?: Int32Array;
  missingTokens?: Int32Array;
}

const padOrCut = (src: ArrayLike<number>, len: number, fill: number): Int32Array => {
  const out = new Int32Array(len).fill(fill);
  for (let i = 0; i < Math.min(len, src.length); i++) out[i] = src[i];
  return out;
};

function canvasSegment(seg: Int32Array | undefined, realLen: number, canvas: number): Int32Array | undefined {
  if (!seg) return undefined;
  const out = new Int32Array(canvas);
  const last = seg.length ? seg[seg.length - 1] : 0;
  // Positions past the edited tokens that still carry a target belong to the last document.
  for (let i = 0; i < Math.min(canvas, realLen); i++) out[i] = i < seg.length ? seg[i] : last;
  return out;
}

/** (a) Positional targets. canvas defaults to the edited length. */
export function positionalExample(
  x0: Int32Array,
  edited: Int32Array,
  distance: number,
  sp: CorruptSpecials,
  opts: { canvas?: number; t?: number; editedSegment?: Int32Array } = {},
): EditExample {
  const canvas = opts.canvas ?? edited.length;
  const input = padOrCut(edited, canvas, sp.pad);
  const target = padOrCut(x0, canvas, sp.pad);
  const real = Math.min(canvas, Math.max(edited.length, x0.length));
  const weight = new Float32Array(canvas);
  weight.fill(1, 0, real);
  const ex: EditExample = { kind: 'edit', input, target, weight, distance };
  if (opts.t !== undefined) ex.t = opts.t;
  const seg = canvasSegment(opts.editedSegment, real, canvas);
  if (seg) ex.segment = seg;
  return ex;
}

/** (b) Levenshtein-aligned targets. canvas defaults to the edited length; a shorter canvas truncates. */
export function alignedExample(
  x0: Int32Array,
  edited: Int32Array,
  sp: CorruptSpecials,
  opts: { canvas?: number; t?: number; editedSegment?: Int32Array; bound?: number } = {},
): EditExample {
  const a = alignedTargets(x0, edited, sp.del, opts.bound);
  const canvas = opts.canvas ?? edited.length;
  const real = Math.min(canvas, edited.length);
  const input = padOrCut(edited, canvas, sp.pad);
  const target = padOrCut(a.target.subarray(0, real), canvas, sp.pad);
  const weight = new Float32Array(canvas);
  weight.fill(1, 0, real);
  // After truncation only deletions inside the kept part (or at its end when nothing was cut) remain.
  const keepUpTo = edited.length > canvas ? canvas - 1 : canvas;
  let keep = 0;
  while (keep < a.missingBefore.length && a.missingBefore[keep] <= keepUpTo) keep++;
  const ex: EditExample = {
    kind: 'edit',
    input,
    target,
    weight,
    distance: a.distance,
    missingBefore: a.missingBefore.slice(0, keep),
    missingTokens: a.missingTokens.slice(0, keep),
  };
  if (opts.t !== undefined) ex.t = opts.t;
  const seg = canvasSegment(opts.editedSegment, real, canvas);
  if (seg) ex.segment = seg;
  return ex;
}
