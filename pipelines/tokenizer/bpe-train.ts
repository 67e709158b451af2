import { bytesToTokenString } from './bytelevel.ts';
import { PairHeap } from './pair-heap.ts';
import { type PieceEnd, pieceSplitter, SPLIT_PATTERN } from './pretokenize.ts';

/** Pair keys pack two token ids into one safe integer: left * PAIR_BASE + right. */
export const PAIR_BASE = 2 ** 21;
export const MAX_VOCAB_SIZE = PAIR_BASE;

export const pairKey = (left: number, right: number): number => left * PAIR_BASE + right;

/** Counts pre-tokens ("words") over a corpus; BPE never merges across them. */
export class WordCounter {
  readonly counts = new Map<string, number>();
  private readonly pieceEnd: PieceEnd;

  constructor(readonly pattern = SPLIT_PATTERN) {
    this.pieceEnd = pieceSplitter(pattern);
  }

  add(text: string): void {
    const counts = this.counts;
    for (let i = 0; i < text.length; ) {
      const e = this.pieceEnd(text, i);
      const w = text.slice(i, e);
      counts.set(w, (counts.get(w) ?? 0) + 1);
      i = e;
    }
  }
}

export interface BpeTrainOptions {
  /** Total vocabulary size including the special tokens and the 256 byte tokens. */
  vocabSize: number;
  /** A pair seen fewer times than this is never merged; training stops early when none is left. */
  minFrequency: number;
  /** Number of ids reserved before the byte tokens (the special tokens). */
  specialCount: number;
  /** Called after each merge with the vocabulary size so far. */
  onMerge?: (vocabLength: number) => void;
}

export interface BpeMerges {
  /** tokens[id - specialCount] are the bytes of token id; the first 256 are the single bytes in order. */
  tokens: Uint8Array[];
  /** merges[rank] = [left id, right id]; rank is the order in which they were learned. */
  merges: Array<[number, number]>;
}

/**
 * Learn BPE merges from word counts. Incremental: pair counts and a per-pair index of the words holding
 * the pair are updated only for the words a merge touches; a lazy max-heap picks the next pair.
 * Each merge takes the most frequent pair; ties go to the smaller (left id, right id).
 */
export function learnMerges(wordCounts: Map<string, number>, opts: BpeTrainOptions): BpeMerges {
  const { vocabSize, minFrequency, specialCount } = opts;
  if (vocabSize > MAX_VOCAB_SIZE)
    throw new RangeError(`vocabulary size ${vocabSize} exceeds ${MAX_VOCAB_SIZE}`);
  const base = specialCount;
  const tokens: Uint8Array[] = [];
  const idOfToken = new Map<string, number>();
  for (let b = 0; b < 256; b++) {
    const bytes = Uint8Array.of(b);
    tokens.push(bytes);
    idOfToken.set(bytesToTokenString(bytes), base + b);
  }

  // Sort words so that word indices (and thus all iteration orders) do not depend on Map insertion order.
  const entries = [...wordCounts.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const encoder = new TextEncoder();
  const words: Int32Array[] = new Array(entries.length);
  const freqs = new Float64Array(entries.length);
  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, number[]>();
  const addWord = (k: number, w: number): void => {
    const list = pairWords.get(k);
    if (!list) pairWords.set(k, [w]);
    else if (list[list.length - 1] !== w) list.push(w);
  };
  for (let w = 0; w < entries.length; w++) {
    const bytes = encoder.encode(entries[w][0]);
    const syms = new Int32Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) syms[i] = base + bytes[i];
    words[w] = syms;
    const f = entries[w][1];
    freqs[w] = f;
    for (let i = 0; i + 1 < syms.length; i++) {
      const k = pairKey(syms[i], syms[i + 1]);
      pairCount.set(k, (pairCount.get(k) ?? 0) + f);
      addWord(k, w);
    }
  }
  const heap = new PairHeap();
  for (const [k, c] of pairCount) heap.push(c, k);

  const merges: Array<[number, number]> = [];
  const addCount = (k: number, delta: number): void => {
    const c = (pairCount.get(k) ?? 0) + delta;
    if (c === 0) pairCount.delete(k);
    else pairCount.set(k, c);
  };

  while (base + tokens.length < vocabSize) {
    const top = heap.pop();
    if (!top) break;
    const actual = pairCount.get(top.key) ?? 0;
    if (actual !== top.count) {
      if (actual > 0) heap.push(actual, top.key);
      continue;
    }
    if (actual < minFrequency) break;
    const left = Math.floor(top.key / PAIR_BASE);
    const right = top.key - left * PAIR_BASE;
    const lb = tokens[left - base];
    const rb = tokens[right - base];
    const merged = new Uint8Array(lb.length + rb.length);
    merged.set(lb, 0);
    merged.set(rb, lb.length);
    // Two different merges can spell the same bytes ("ab"+"c", "a"+"bc"); they share one id.
    const mergedName = bytesToTokenString(merged);
    let newId = idOfToken.get(mergedName);
    if (newId === undefined) {
      newId = base + tokens.length;
      tokens.push(merged);
      idOfToken.set(mergedName, newId);
    }
    merges.push([left, right]);

    const touched = new Set<number>();
    for (const w of pairWords.get(top.key) ?? []) {
      const syms = words[w];
      let found = false;
      for (let i = 0; i + 1 < syms.length; i++) {
        if (syms[i] === left && syms[i + 1] === right) {
          found = true;
          break;
        }
      }
      if (!found) continue;
      const f = freqs[w];
      for (let i = 0; i + 1 < syms.length; i++) addCount(pairKey(syms[i], syms[i + 1]), -f);
      const next: number[] = [];
      for (let i = 0; i < syms.length; ) {
        if (i + 1 < syms.length && syms[i] === left && syms[i + 1] === right) {
          next.push(newId);
          i += 2;
        } else {
          next.push(syms[i]);
          i += 1;
        }
      }
      for (let i = 0; i + 1 < next.length; i++) {
        const k = pairKey(next[i], next[i + 1]);
        addCount(k, f);
        if (next[i] === newId || next[i + 1] === newId) {
          touched.add(k);
          addWord(k, w);
        }
      }
      words[w] = Int32Array.from(next);
    }
    pairWords.delete(top.key);
    pairCount.delete(top.key);
    for (const k of touched) {
      const c = pairCount.get(k);
      if (c !== undefined) heap.push(c, k);
    }
    opts.onMerge?.(base + tokens.length);
  }
  return { tokens, merges };
}
