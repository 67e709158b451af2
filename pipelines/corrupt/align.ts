/**
 * Token-level Levenshtein distance and alignment.
 *
 * `tokenDistance` uses fastest-levenshtein, which compares JavaScript strings by UTF-16 code unit
 * (charCodeAt, with a 65536-entry table). A token id therefore has to become exactly ONE code unit:
 * String.fromCodePoint(0x10000 + id) would yield a surrogate pair (two units), so one substituted token
 * could count as two edits, or as one when the high surrogates agree. Vocabularies can also exceed
 * 65536 ids. We remap the ids of each pair densely (first-seen order, 0..u-1) and build strings with
 * String.fromCharCode: equality, and hence the distance, is preserved, and u <= |a| + |b| always fits.
 *
 * `alignTokens` is our own banded DP (Ukkonen): when the distance is at most w, every optimal path stays
 * within |i - j| <= w, so a band of width w (doubled until the result fits) gives the exact distance in
 * O((n + m) w) instead of O(n m); edits are at most 10% of a sequence, so the band stays narrow.
 */
import { distance as levenshteinStrings } from 'fastest-levenshtein';

/** Map two token sequences to strings of single UTF-16 code units with equal ids -> equal units. */
export function tokensToStrings(a: ArrayLike<number>, b: ArrayLike<number>): [string, string] {
  const dense = new Map<number, number>();
  const encode = (seq: ArrayLike<number>): string => {
    const units = new Array<number>(seq.length);
    for (let i = 0; i < seq.length; i++) {
      let u = dense.get(seq[i]);
      if (u === undefined) {
        u = dense.size;
        dense.set(seq[i], u);
      }
      units[i] = u;
    }
    let out = '';
    // Chunked to stay under the engine's argument-count limit for long sequences.
    for (let i = 0; i < units.length; i += 8192) out += String.fromCharCode(...units.slice(i, i + 8192));
    return out;
  };
  return [encode(a), encode(b)];
}

/** Token-level Levenshtein distance (unit costs) via fastest-levenshtein. */
export function tokenDistance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const [sa, sb] = tokensToStrings(a, b);
  return levenshteinStrings(sa, sb);
}

/**
 * An optimal alignment of x (the clean x0) to y (the edited sequence).
 * - alignedTo[j]: index in x that y[j] matches or substitutes, or -1 when y[j] is a spurious insertion.
 * - deletions: x tokens with no counterpart in y, as (before, xIndex): x[xIndex] belongs just before y
 *   position `before` (before == y.length: at the end). Sorted by xIndex, hence by `before`.
 */
export interface Alignment {
  distance: number;
  alignedTo: Int32Array;
  deletedBefore: Int32Array;
  deletedIndex: Int32Array;
}

const DIAG = 0;
const UP = 1; // x[i-1] deleted
const LEFT = 2; // y[j-1] inserted

function bandedAlign(x: ArrayLike<number>, y: ArrayLike<number>, w: number): Alignment | undefined {
  const n = x.length;
  const m = y.length;
  const width = 2 * w + 1;
  const INF = 0x3fffffff;
  const cost = new Int32Array((n + 1) * width).fill(INF);
  const op = new Uint8Array((n + 1) * width);
  const at = (i: number, j: number): number => i * width + (j - i + w);
  for (let j = 0; j <= Math.min(m, w); j++) {
    cost[at(0, j)] = j;
    op[at(0, j)] = LEFT;
  }
  // Flat index of (i, j) is i*width + (j - i + w): left is k-1, diagonal k-width, up k-width+1.
  const up = width - 1;
  for (let i = 1; i <= n; i++) {
    const jLo = Math.max(0, i - w);
    const jHi = Math.min(m, i + w);
    const base = i * width - i + w;
    const xi = x[i - 1];
    let j = jLo;
    if (j === 0) {
      cost[base] = i;
      op[base] = UP;
      j = 1;
    }
    for (; j <= jHi; j++) {
      const k = base + j;
      let best = cost[k - width] + (xi === y[j - 1] ? 0 : 1);
      let bop = DIAG;
      // At the band's edges the flat neighbour index wraps into another row: test the band instead.
      if (j - i < w) {
        const cu = cost[k - up] + 1;
        if (cu < best) {
          best = cu;
          bop = UP;
        }
      }
      if (i - j < w) {
        const cl = cost[k - 1] + 1;
        if (cl < best) {
          best = cl;
          bop = LEFT;
        }
      }
      cost[k] = best;
      op[k] = bop;
    }
  }
  const dist = cost[at(n, m)];
  if (dist > w) return undefined;
  const alignedTo = new Int32Array(m).fill(-1);
  const delBefore: number[] = [];
  const delIndex: number[] = [];
  let i = n;
  let j = m;
  while (i > 0 || j > 0) {
    const o = op[at(i, j)];
    if (o === DIAG) {
      alignedTo[j - 1] = i - 1;
      i--;
      j--;
    } else if (o === UP) {
      delBefore.push(j);
      delIndex.push(i - 1);
      i--;
    } else {
      j--;
    }
  }
  delBefore.reverse();
  delIndex.reverse();
  return {
    distance: dist,
    alignedTo,
    deletedBefore: Int32Array.from(delBefore),
    deletedIndex: Int32Array.from(delIndex),
  };
}

/**
 * Exact Levenshtein alignment. `bound` is the initial band; by default it is the exact distance from
 * fastest-levenshtein (bit-parallel, ~n m / 32 steps), so the band DP runs once with the narrowest band.
 */
export function alignTokens(x: ArrayLike<number>, y: ArrayLike<number>, bound?: number): Alignment {
  bound ??= tokenDistance(x, y);
  const diff = Math.abs(x.length - y.length);
  const full = Math.max(x.length, y.length, 1);
  let w = Math.min(full, Math.max(diff, bound, 1));
  for (;;) {
    const r = bandedAlign(x, y, w);
    if (r) return r;
    if (w >= full) throw new Error('alignTokens: full-width band failed (bug)');
    w = Math.min(full, w * 2);
  }
}

/** The edit cost an alignment implies: substitutions + insertions + deletions. */
export function alignmentCost(x: ArrayLike<number>, y: ArrayLike<number>, a: Alignment): number {
  let c = a.deletedIndex.length;
  for (let j = 0; j < y.length; j++) {
    const i = a.alignedTo[j];
    if (i < 0 || x[i] !== y[j]) c++;
  }
  return c;
}

/**
 * Levenshtein-aligned targets: target[j] is the x0 token y[j] aligns to, or <|del|> for a spurious
 * token; deleted x0 tokens are listed as "missing before input position p" (missingBefore, sorted)
 * with their ids in missingTokens.
 */
export interface AlignedTargets {
  target: Int32Array;
  missingBefore: Int32Array;
  missingTokens: Int32Array;
  distance: number;
}

export function alignedTargets(
  x0: ArrayLike<number>,
  y: ArrayLike<number>,
  delId: number,
  bound?: number,
): AlignedTargets {
  const a = alignTokens(x0, y, bound);
  const target = new Int32Array(y.length);
  for (let j = 0; j < y.length; j++) target[j] = a.alignedTo[j] < 0 ? delId : x0[a.alignedTo[j]];
  const missingTokens = new Int32Array(a.deletedIndex.length);
  for (let k = 0; k < missingTokens.length; k++) missingTokens[k] = x0[a.deletedIndex[k]];
  return { target, missingBefore: a.deletedBefore, missingTokens, distance: a.distance };
}

/**
 * Apply aligned targets: drop <|del|> positions, keep the others' targets, re-insert missing tokens
 * before their positions. Positions at or beyond `length` are ignored (canvas padding).
 */
export function applyAlignedTargets(
  target: ArrayLike<number>,
  missingBefore: ArrayLike<number>,
  missingTokens: ArrayLike<number>,
  delId: number,
  length = target.length,
): Int32Array {
  const out: number[] = [];
  let k = 0;
  for (let j = 0; j <= length; j++) {
    while (k < missingBefore.length && missingBefore[k] === j) out.push(missingTokens[k++]);
    if (j < length && target[j] !== delId) out.push(target[j]);
  }
  return Int32Array.from(out);
}
