/**
 * Autoregressive examples for `--objective ar`: the same windows, the same architecture run causally, and
 * targets = the next token. A position is trained only when its next token is real content of the same packed
 * document, so the model never learns to predict across a document boundary or into padding.
 */
import type { SequenceExample } from './batch.ts';

/**
 * tokens: the window (padding included); segment: its 1-based document ids (0 on padding), or undefined when
 * the whole window is one document. padId fills the targets of untrained positions (their weight is 0).
 */
export function arExample(
  tokens: Int32Array,
  segment: Int32Array | undefined,
  padId: number,
): SequenceExample {
  const n = tokens.length;
  const input = new Int32Array(tokens);
  const target = new Int32Array(n).fill(padId);
  const weight = new Float32Array(n);
  for (let i = 0; i + 1 < n; i++) {
    const next = tokens[i + 1];
    if (next === padId) continue;
    if (segment && (segment[i] === 0 || segment[i] !== segment[i + 1])) continue;
    target[i] = next;
    weight[i] = 1;
  }
  const ex: SequenceExample = { input, target, weight };
  if (segment) ex.segment = new Int32Array(segment);
  return ex;
}
