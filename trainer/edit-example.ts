/**
 * One edit-stage example from a window: edit the window's content (padding excluded) with the seeded edit
 * process of pipelines/corrupt, then lay the targets over the fixed-length canvas in the configured form.
 */
import { editTokens } from '../pipelines/corrupt/edit.ts';
import type { Rng } from '../pipelines/corrupt/rng.ts';
import { alignedExample, positionalExample } from '../pipelines/corrupt/targets.ts';
import type { CorruptSpecials } from '../pipelines/corrupt/types.ts';
import type { EditVocabulary } from '../pipelines/corrupt/vocab.ts';
import type { Span } from '../schemas/dataset.ts';
import type { SequenceExample } from './batch.ts';
import type { TrainConfig } from './config.ts';

export interface EditContext {
  cfg: TrainConfig;
  specials: CorruptSpecials;
  editVocab: EditVocabulary;
}

/** Content length of a window: padding (segment 0) only ever follows the content. */
function contentLength(segment: Int32Array): number {
  let n = segment.length;
  while (n > 0 && segment[n - 1] === 0) n--;
  return n;
}

export function editExample(
  w: { tokens: Int32Array; segment: Int32Array; spans: Span[] },
  rng: Rng,
  ctx: EditContext,
): SequenceExample {
  const L = w.tokens.length;
  const n = contentLength(w.segment);
  const x0 = w.tokens.slice(0, n);
  const seg = w.segment.slice(0, n);
  const spans = w.spans.filter((s) => s.end <= n);
  const { cfg, specials } = ctx;
  const r = editTokens(
    x0,
    spans,
    rng,
    {
      specials,
      vocab: ctx.editVocab,
      alphaMax: cfg.curriculum.edit_alpha_max,
      structure: cfg.curriculum.structure,
    },
    seg,
  );
  const opts = { canvas: L, t: r.alpha, ...(r.editedSegment ? { editedSegment: r.editedSegment } : {}) };
  const ex =
    cfg.curriculum.edit_targets === 'aligned'
      ? alignedExample(r.x0, r.edited, specials, opts)
      : positionalExample(r.x0, r.edited, r.charged, specials, opts);
  const out: SequenceExample = { input: ex.input, target: ex.target, weight: ex.weight };
  if (ex.segment) out.segment = ex.segment;
  return out;
}
