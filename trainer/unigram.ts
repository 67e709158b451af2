/**
 * Unigram baselines in bits per token, the losses of a model that ignores context entirely; every trained
 * model must beat them. Counted over the positions the validation metrics score (neither padding nor BOS).
 *  - entropy of the training data: -sum p log2 p with p the training unigram distribution;
 *  - cross-entropy on validation: the training unigram distribution (add-one smoothed over the vocabulary,
 *    so unseen tokens have a finite cost) scoring the validation tokens. This is what a context-free model
 *    fitted to the training data scores on the held-out split, the fairer bar for validation losses.
 */
import type { WindowStore } from './window-store.ts';

function counts(store: WindowStore, skip: readonly number[]): { counts: Map<number, number>; total: number } {
  const out = new Map<number, number>();
  const skipSet = new Set(skip);
  let total = 0;
  for (const tok of store.tokens) {
    if (skipSet.has(tok)) continue;
    out.set(tok, (out.get(tok) ?? 0) + 1);
    total++;
  }
  return { counts: out, total };
}

export function unigramEntropyBits(store: WindowStore, skip: readonly number[]): number {
  const { counts: c, total } = counts(store, skip);
  if (total === 0) return 0;
  let h = 0;
  for (const n of c.values()) {
    const p = n / total;
    h -= p * Math.log2(p);
  }
  return h;
}

export function unigramCrossEntropyBits(
  train: WindowStore,
  validation: WindowStore,
  skip: readonly number[],
  vocabSize: number,
): number {
  const t = counts(train, skip);
  const v = counts(validation, skip);
  if (v.total === 0) return 0;
  const denom = t.total + vocabSize;
  let bits = 0;
  for (const [tok, n] of v.counts) bits -= n * Math.log2(((t.counts.get(tok) ?? 0) + 1) / denom);
  return bits / v.total;
}
