/**
 * Unigram entropy of the training data in bits per token: the loss of a model that ignores context entirely,
 * a baseline every trained model must beat. Counted over the positions the validation metrics score
 * (neither padding nor BOS).
 */
import type { WindowStore } from './window-store.ts';

export function unigramEntropyBits(store: WindowStore, skip: readonly number[]): number {
  const counts = new Map<number, number>();
  const skipSet = new Set(skip);
  let total = 0;
  for (const tok of store.tokens) {
    if (skipSet.has(tok)) continue;
    counts.set(tok, (counts.get(tok) ?? 0) + 1);
    total++;
  }
  if (total === 0) return 0;
  let h = 0;
  for (const c of counts.values()) {
    const p = c / total;
    h -= p * Math.log2(p);
  }
  return h;
}
