/**
 * The mask process (docs/corruptions.md): t ~ U(0, cap), p_mask = (1 - eps) t + eps, each maskable
 * token becomes <|mask|>, and the loss weight is 1/p_mask on masked positions and 0 elsewhere.
 * Pure functions over token arrays, spans and an Rng, so the trainer feed and `sdt data corrupt` agree.
 */
import type { Span, SpanKind } from '../../schemas/dataset.ts';
import type { Rng } from './rng.ts';
import type { CorruptSpecials, TrainingExample } from './types.ts';

/** Lower clip of the mask rate: keeps 1/p_mask finite when t is close to 0. */
export const MASK_EPS = 1e-3;

export function maskRate(t: number, eps = MASK_EPS): number {
  return (1 - eps) * t + eps;
}

/** Block-clipped rate u_blk = min(1, max(u, 1/B)): a block of B tokens expects at least one mask. */
export function blockClippedRate(u: number, blockSize: number): number {
  return Math.min(1, Math.max(u, 1 / blockSize));
}

/**
 * Mask-ratio warm-up: the cap on t grows linearly from `start` to 1 over `warmupSteps`, so early training
 * sees mostly-visible sequences. Pass the result as `MaskOptions.tCap`.
 */
export function warmupCap(step: number, warmupSteps: number, start = 0.01): number {
  if (warmupSteps <= 0 || step >= warmupSteps) return 1;
  return start + ((1 - start) * Math.max(0, step)) / warmupSteps;
}

export interface MaskOptions {
  specials: CorruptSpecials;
  /** 'sequence': one t per sequence. 'block': one t per block of `blockSize`, with block clipping. */
  mode?: 'sequence' | 'block';
  blockSize?: number;
  /** Structure-aware: mask whole annotated spans until the target count is met, then top up uniformly. */
  structure?: boolean;
  /** Span kinds used by structure-aware masking (default: all). */
  spanKinds?: readonly SpanKind[];
  /** Warm-up cap on t: t ~ U(0, tCap). Default 1. */
  tCap?: number;
  /** Fixed t instead of a random draw (inspection, tests). Applies to every block in block mode. */
  t?: number;
  /**
   * Block mode: each document (segment; the whole window without segments) draws a block k uniformly
   * among the blocks it covers; its tokens in blocks before k stay clean (nothing masked, no loss), as
   * earlier blocks are when a block is decoded, and its tokens from block k on are masked as usual.
   * Without it every block is as noisy as its own draw, so the model learns to lean little on a context
   * (the prompt) that decoding shows it clean.
   */
  cleanPrefix?: boolean;
  /**
   * Block mode: the probability that a block masks a suffix (its last m maskable tokens, m drawn as the
   * uniform process would count them) instead of scattered positions. Left-to-right decoding only ever shows
   * a block as a clean prefix and a masked rest, so these are exactly the states it asks the model about.
   * 0 (default) draws nothing extra, so streams without it are unchanged.
   */
  suffixFraction?: number;
  eps?: number;
}

export interface MaskResult extends TrainingExample {
  kind: 'mask';
  /** Number of masked positions. */
  masked: number;
  /** Spans masked whole by structure-aware masking (clipped to their block in block mode). */
  maskedSpans: Span[];
  /** The rate used per position's region (sequence: one value everywhere; block: per block). */
  rate: Float32Array;
}

/** Positions that may be masked: padding and BOS are context, never targets. */
export function isMaskable(tok: number, sp: CorruptSpecials): boolean {
  return tok !== sp.pad && tok !== sp.bos;
}

/**
 * Each maskable position of [a, b) is masked with probability p (at least one if forced). With `suffix`
 * the same count is drawn, but the last that many maskable positions are masked instead.
 */
function maskRegionUniform(
  maskable: Uint8Array,
  isMasked: Uint8Array,
  a: number,
  b: number,
  p: number,
  forceOne: boolean,
  rng: Rng,
  suffix = false,
): void {
  let count = 0;
  let candidates = 0;
  for (let i = a; i < b; i++) {
    if (!maskable[i]) continue;
    candidates++;
    if (rng.float() < p) {
      if (!suffix) isMasked[i] = 1;
      count++;
    }
  }
  if (suffix) {
    let m = forceOne && candidates > 0 ? Math.max(count, 1) : count;
    for (let i = b - 1; i >= a && m > 0; i--) {
      if (!maskable[i]) continue;
      isMasked[i] = 1;
      m--;
    }
    return;
  }
  if (forceOne && count === 0 && candidates > 0) {
    let pick = rng.int(candidates);
    for (let i = a; i < b; i++) {
      if (maskable[i] && pick-- === 0) {
        isMasked[i] = 1;
        break;
      }
    }
  }
}

function maskRegionStructured(
  maskable: Uint8Array,
  isMasked: Uint8Array,
  a: number,
  b: number,
  p: number,
  forceOne: boolean,
  spans: readonly Span[],
  rng: Rng,
  maskedSpans: Span[],
): void {
  let candidates = 0;
  for (let i = a; i < b; i++) if (maskable[i]) candidates++;
  if (candidates === 0) return;
  // Stochastic rounding keeps E[count] = p * candidates exactly, like the Bernoulli process.
  let target = Math.min(candidates, Math.floor(p * candidates + rng.float()));
  if (forceOne) target = Math.max(target, 1);
  let count = 0;
  const clipped: Span[] = [];
  for (const s of spans) {
    const start = Math.max(s.start, a);
    const end = Math.min(s.end, b);
    if (end > start) clipped.push({ kind: s.kind, start, end });
  }
  rng.shuffle(clipped);
  for (const s of clipped) {
    if (count >= target) break;
    let fresh = 0;
    for (let i = s.start; i < s.end; i++) if (maskable[i] && !isMasked[i]) fresh++;
    // A span that would overshoot the target is skipped: the ratio must stay what t asks for.
    if (fresh === 0 || count + fresh > target) continue;
    for (let i = s.start; i < s.end; i++) if (maskable[i]) isMasked[i] = 1;
    count += fresh;
    maskedSpans.push(s);
  }
  if (count < target) {
    const rest: number[] = [];
    for (let i = a; i < b; i++) if (maskable[i] && !isMasked[i]) rest.push(i);
    // Partial Fisher-Yates: only the first (target - count) picks are needed.
    const need = target - count;
    for (let k = 0; k < need; k++) {
      const j = k + rng.int(rest.length - k);
      const tmp = rest[k];
      rest[k] = rest[j];
      rest[j] = tmp;
      isMasked[rest[k]] = 1;
    }
  }
}

/**
 * For each document (run of one segment id; the whole row without segments) draw a block k among the
 * blocks it covers and make its tokens in earlier blocks unmaskable.
 */
function keepPrefixesClean(
  maskable: Uint8Array,
  segment: Int32Array | undefined,
  blockSize: number,
  rng: Rng,
): void {
  const n = maskable.length;
  let start = 0;
  while (start < n) {
    let end = start + 1;
    if (segment) while (end < n && segment[end] === segment[start]) end++;
    else end = n;
    if (!segment || segment[start] >= 0) {
      const first = Math.floor(start / blockSize);
      const last = Math.floor((end - 1) / blockSize);
      const k = first + rng.int(last - first + 1);
      for (let i = start; i < Math.min(end, k * blockSize); i++) maskable[i] = 0;
    }
    start = end;
  }
}

/**
 * Mask one sequence. `tokens` is x0 (a window, padding included); `spans` are in the same coordinates.
 * Returns input (x0 with <|mask|>), target (x0), weight (1/p on masked positions) and bookkeeping.
 */
export function maskCorrupt(
  tokens: Int32Array,
  spans: readonly Span[],
  rng: Rng,
  opts: MaskOptions,
  segment?: Int32Array,
): MaskResult {
  const sp = opts.specials;
  const n = tokens.length;
  const eps = opts.eps ?? MASK_EPS;
  const cap = opts.tCap ?? 1;
  if (!(cap > 0 && cap <= 1)) throw new Error(`mask: tCap must be in (0, 1], got ${cap}`);
  const mode = opts.mode ?? 'sequence';
  const blockSize = mode === 'block' ? (opts.blockSize ?? 0) : n;
  if (mode === 'block' && !(Number.isInteger(blockSize) && blockSize >= 1)) {
    throw new Error(`mask: block mode needs an integer blockSize >= 1, got ${opts.blockSize}`);
  }
  const suffixFraction = opts.suffixFraction ?? 0;
  if (!(suffixFraction >= 0 && suffixFraction <= 1))
    throw new Error(`mask: suffixFraction must be in [0, 1], got ${opts.suffixFraction}`);
  if (suffixFraction > 0 && (mode !== 'block' || opts.structure))
    throw new Error('mask: suffix masking needs block mode without structure-aware masking');
  const kinds = opts.spanKinds ? new Set(opts.spanKinds) : undefined;
  const usable = opts.structure ? spans.filter((s) => !kinds || kinds.has(s.kind)) : [];

  const maskable = new Uint8Array(n);
  for (let i = 0; i < n; i++) maskable[i] = isMaskable(tokens[i], sp) ? 1 : 0;
  if (mode === 'block' && opts.cleanPrefix) keepPrefixesClean(maskable, segment, blockSize, rng);
  const isMasked = new Uint8Array(n);
  const rate = new Float32Array(n);
  const maskedSpans: Span[] = [];
  let tSum = 0;
  let regions = 0;
  for (let a = 0; a < n; a += Math.max(1, blockSize)) {
    const b = Math.min(n, a + Math.max(1, blockSize));
    const t = opts.t ?? rng.float() * cap;
    let p = maskRate(t, eps);
    if (mode === 'block') p = blockClippedRate(p, blockSize);
    tSum += t;
    regions++;
    rate.fill(p, a, b);
    const forceOne = mode === 'block';
    if (suffixFraction > 0 && rng.float() < suffixFraction) {
      maskRegionUniform(maskable, isMasked, a, b, p, forceOne, rng, true);
    } else if (opts.structure) {
      const inRegion = usable.filter((s) => s.end > a && s.start < b);
      maskRegionStructured(maskable, isMasked, a, b, p, forceOne, inRegion, rng, maskedSpans);
    } else {
      maskRegionUniform(maskable, isMasked, a, b, p, forceOne, rng);
    }
  }

  const input = new Int32Array(tokens);
  const target = new Int32Array(tokens);
  const weight = new Float32Array(n);
  let masked = 0;
  for (let i = 0; i < n; i++) {
    if (!isMasked[i]) continue;
    input[i] = sp.mask;
    weight[i] = 1 / rate[i];
    masked++;
  }
  const result: MaskResult = {
    kind: 'mask',
    input,
    target,
    weight,
    t: regions > 0 ? tSum / regions : 0,
    masked,
    maskedSpans,
    rate,
  };
  if (segment) result.segment = new Int32Array(segment);
  return result;
}
