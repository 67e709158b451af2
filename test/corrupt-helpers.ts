/** Shared fixtures for the corruption tests: a toy vocabulary and random rows with nested spans. */
import type { CorruptConfig } from '../pipelines/corrupt/corrupt.ts';
import { Rng } from '../pipelines/corrupt/rng.ts';
import type { CorruptSpecials, Window } from '../pipelines/corrupt/types.ts';
import { vocabularyFromTexts } from '../pipelines/corrupt/vocab.ts';
import { cutWindows } from '../pipelines/corrupt/windows.ts';
import type { Span } from '../schemas/dataset.ts';

export const SP: CorruptSpecials = { pad: 0, bos: 1, eos: 2, mask: 3, del: 4 };
export const FIRST_ORDINARY = 8;

/** Token texts of a toy vocabulary: specials, operators (bare and spaced), newline tokens, words. */
export function toyTexts(size = 200): string[] {
  const texts = ['<|pad|>', '<|bos|>', '<|eos|>', '<|mask|>', '<|del|>', '<|p|>', '<|m|>', '<|s|>'];
  for (const op of ['+', '-', '*', '==', '!=', '<']) texts.push(op, ` ${op}`);
  texts.push('\n', ':\n', '\n    ');
  while (texts.length < size) texts.push(`w${texts.length}`);
  return texts;
}
export const TOY_TEXTS = toyTexts();
export const TOY_VOCAB = vocabularyFromTexts(TOY_TEXTS, FIRST_ORDINARY);

/**
 * A random "file": lines of tokens ending in a newline token, each line a statement made of identifier
 * spans (1-2 tokens) separated by operators, with an expression span per line.
 */
export function randomRow(rng: Rng, lines: number): { tokens: Int32Array; spans: Span[] } {
  const toks: number[] = [];
  const spans: Span[] = [];
  const words = Array.from({ length: 12 }, () => FIRST_ORDINARY + 21 + rng.int(TOY_TEXTS.length - 29));
  for (let l = 0; l < lines; l++) {
    const start = toks.length;
    const terms = 1 + rng.int(4);
    for (let k = 0; k < terms; k++) {
      if (k > 0) toks.push(FIRST_ORDINARY + rng.int(12)); // an operator
      const a = toks.length;
      toks.push(words[rng.int(words.length)]);
      if (rng.bernoulli(0.3)) toks.push(words[rng.int(words.length)]);
      spans.push({ kind: 'identifier', start: a, end: toks.length });
    }
    spans.push({ kind: 'expression', start, end: toks.length });
    toks.push(FIRST_ORDINARY + 12 + rng.int(3)); // newline token
    spans.push({ kind: 'statement', start, end: toks.length });
  }
  if (lines > 0) spans.push({ kind: 'block', start: 0, end: toks.length });
  return { tokens: Int32Array.from(toks), spans };
}

/** n ordinary tokens (ids 10..109) from a stream seeded with `seed`: a row with nothing special in it. */
export function plainRow(n: number, seed: number): Int32Array {
  const rng = new Rng(seed);
  return Int32Array.from({ length: n }, () => 10 + rng.int(100));
}

export const seeds = (n: number): number[] => Array.from({ length: n }, (_, i) => i * 7919 + 13);

/** A fixed set of windows and configs that a worker thread can rebuild on its own. */
export function fixtureWindows(): Window[] {
  const rng = new Rng(2024);
  const rows = Array.from({ length: 40 }, (_, i) => ({ id: `r${i}`, ...randomRow(rng, 1 + rng.int(10)) }));
  return cutWindows(rows, { seqLen: 80, specials: SP });
}

export function fixtureConfig(kind: 'mask' | 'edit'): CorruptConfig {
  return kind === 'mask'
    ? { kind, seed: 99, specials: SP, mask: { structure: true, mode: 'block', blockSize: 16 } }
    : { kind, seed: 99, specials: SP, edit: { vocab: TOY_VOCAB, structure: true, targets: 'aligned' } };
}
