import { fmix32 } from './hash.ts';

/**
 * Near-duplicate detection: MinHash signatures over word shingles, bucketed by LSH bands, candidates
 * confirmed by the signatures' estimated Jaccard similarity against --near-dup-threshold.
 */
export interface MinHashOptions {
  numPerm: number;
  /** Words per shingle. */
  shingle: number;
}

export const DEFAULT_MINHASH: MinHashOptions = { numPerm: 128, shingle: 5 };

const isWordChar = (c: number): boolean =>
  (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 95;
const isSpace = (c: number): boolean => c === 32 || c === 9 || c === 10 || c === 13 || c === 12 || c === 11;

/** FNV-1a hashes of the words of a text: runs of [A-Za-z0-9_], and every other non-space character. */
function wordHashes(text: string): Uint32Array {
  let out = new Uint32Array(Math.max(16, text.length >> 2));
  let n = 0;
  let i = 0;
  const len = text.length;
  while (i < len) {
    let c = text.charCodeAt(i);
    if (isSpace(c)) {
      i++;
      continue;
    }
    let h = 0x811c9dc5;
    if (isWordChar(c)) {
      while (i < len) {
        c = text.charCodeAt(i);
        if (!isWordChar(c)) break;
        h = Math.imul(h ^ c, 0x01000193);
        i++;
      }
    } else {
      h = Math.imul(h ^ c, 0x01000193);
      i++;
    }
    if (n === out.length) {
      const grown = new Uint32Array(out.length * 2);
      grown.set(out);
      out = grown;
    }
    out[n++] = h >>> 0;
  }
  return out.subarray(0, n);
}

const EMPTY = 0xffffffff;

/**
 * The MinHash signature of a text by one-permutation hashing (Li, Owen and Zhang 2012): each distinct
 * shingle is hashed once; the top bits pick one of numPerm bins and the rest compete for that bin's
 * minimum. Empty bins (short texts) borrow from the next non-empty bin with an offset per step
 * (rotation densification, Shrivastava and Li 2014), so equal positions still estimate Jaccard. One hash
 * per shingle instead of numPerm makes this step cheap next to parsing.
 */
export function minhashSignature(text: string, opts: MinHashOptions = DEFAULT_MINHASH): Uint32Array {
  const bins = opts.numPerm;
  const bits = Math.log2(bins);
  if (!Number.isInteger(bits)) throw new Error(`MinHash numPerm must be a power of two; got ${bins}`);
  const words = wordHashes(text);
  const sig = new Uint32Array(bins).fill(EMPTY);
  const k = Math.min(opts.shingle, Math.max(1, words.length));
  const count = words.length === 0 ? 0 : Math.max(1, words.length - k + 1);
  const valueMask = bits === 0 ? 0xffffffff : (1 << (32 - bits)) - 1;
  for (let i = 0; i < count; i++) {
    let h = 0;
    for (let j = 0; j < k && i + j < words.length; j++) h = fmix32(h ^ Math.imul(words[i + j], j + 1));
    const v = fmix32(h ^ 0x5bd1e995);
    const bin = bits === 0 ? 0 : v >>> (32 - bits);
    const value = (v & valueMask) >>> 0;
    if (value < sig[bin]) sig[bin] = value;
  }
  densify(sig, valueMask);
  return sig;
}

function densify(sig: Uint32Array, valueMask: number): void {
  const n = sig.length;
  let anyFilled = false;
  for (let i = 0; i < n; i++) if (sig[i] !== EMPTY) anyFilled = true;
  if (!anyFilled) return;
  const out = Uint32Array.from(sig);
  for (let i = 0; i < n; i++) {
    if (sig[i] !== EMPTY) continue;
    let t = 1;
    while (sig[(i + t) % n] === EMPTY) t++;
    // The offset keeps borrowed values apart from the bin's own values (they live above valueMask).
    out[i] = (sig[(i + t) % n] + (valueMask + 1) * t) >>> 0;
  }
  sig.set(out);
}

/** Fraction of equal positions: an unbiased estimate of the Jaccard similarity of the shingle sets. */
export function estimatedJaccard(a: Uint32Array, b: Uint32Array): number {
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same / a.length;
}

/**
 * Bands for a threshold: the LSH S-curve's midpoint (1/b)^(1/r) is put well below the threshold so pairs
 * at the threshold become candidates with high probability (>99% at 0.85 with 16x8 for 128 permutations).
 */
export function chooseBands(numPerm: number, threshold: number): { bands: number; rows: number } {
  let best = { bands: numPerm, rows: 1 };
  for (let rows = 1; rows <= numPerm; rows++) {
    if (numPerm % rows !== 0) continue;
    const bands = numPerm / rows;
    const midpoint = (1 / bands) ** (1 / rows);
    if (midpoint <= threshold - 0.12) best = { bands, rows };
  }
  return best;
}

export class NearDupIndex {
  private readonly bands: number;
  private readonly rows: number;
  private readonly buckets: Map<number, number[]>[];
  private readonly signatures: Uint32Array[] = [];
  private readonly ids: string[] = [];

  constructor(
    readonly threshold: number,
    numPerm = DEFAULT_MINHASH.numPerm,
  ) {
    ({ bands: this.bands, rows: this.rows } = chooseBands(numPerm, threshold));
    this.buckets = Array.from({ length: this.bands }, () => new Map());
  }

  get size(): number {
    return this.ids.length;
  }

  private bandKey(sig: Uint32Array, band: number): number {
    let h = band;
    for (let i = band * this.rows; i < (band + 1) * this.rows; i++) h = fmix32(h ^ sig[i]) + i;
    return h >>> 0;
  }

  /** The id and similarity of an indexed near-duplicate of `sig`, or undefined. */
  query(sig: Uint32Array): { id: string; similarity: number } | undefined {
    const seen = new Set<number>();
    let best: { id: string; similarity: number } | undefined;
    for (let b = 0; b < this.bands; b++) {
      const hits = this.buckets[b].get(this.bandKey(sig, b));
      if (!hits) continue;
      for (const i of hits) {
        if (seen.has(i)) continue;
        seen.add(i);
        const sim = estimatedJaccard(sig, this.signatures[i]);
        if (sim >= this.threshold && (!best || sim > best.similarity))
          best = { id: this.ids[i], similarity: sim };
      }
    }
    return best;
  }

  add(id: string, sig: Uint32Array): void {
    const index = this.ids.length;
    this.ids.push(id);
    this.signatures.push(sig);
    for (let b = 0; b < this.bands; b++) {
      const key = this.bandKey(sig, b);
      const list = this.buckets[b].get(key);
      if (list) list.push(index);
      else this.buckets[b].set(key, [index]);
    }
  }

  /** Keep-or-drop in one call: the first of a group of near-copies is kept, later ones are dropped. */
  checkAndAdd(id: string, sig: Uint32Array): { id: string; similarity: number } | undefined {
    const hit = this.query(sig);
    if (!hit) this.add(id, sig);
    return hit;
  }
}
