/**
 * All windows of one split in flat typed arrays on SharedArrayBuffers, so feed workers read them without a
 * copy. Window w occupies [w*L, (w+1)*L) of `tokens` and `segment`; its spans are
 * spanData[3*spanOffsets[w] .. 3*spanOffsets[w+1]) as (kind code, start, end) triples in window coordinates.
 */
import { SPAN_KINDS, type Span, spanKindCode } from '../schemas/dataset.ts';

export interface WindowStore {
  seqLen: number;
  count: number;
  tokens: Int32Array;
  segment: Int32Array;
  spanOffsets: Int32Array;
  spanData: Int32Array;
  /** Non-padding positions over all windows. */
  contentTokens: number;
}

export interface WindowLike {
  tokens: Int32Array;
  segment: Int32Array;
  length: number;
  spans: Span[];
}

function sharedInt32(n: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(Math.max(1, n) * 4), 0, n);
}

export function buildWindowStore(windows: readonly WindowLike[], seqLen: number): WindowStore {
  const count = windows.length;
  let spanCount = 0;
  for (const w of windows) spanCount += w.spans.length;
  const tokens = sharedInt32(count * seqLen);
  const segment = sharedInt32(count * seqLen);
  const spanOffsets = sharedInt32(count + 1);
  const spanData = sharedInt32(spanCount * 3);
  let s = 0;
  let contentTokens = 0;
  windows.forEach((w, i) => {
    if (w.tokens.length !== seqLen)
      throw new Error(`window ${i} has ${w.tokens.length} tokens, expected ${seqLen}`);
    tokens.set(w.tokens, i * seqLen);
    segment.set(w.segment, i * seqLen);
    contentTokens += w.length;
    spanOffsets[i] = s;
    for (const sp of w.spans) {
      spanData[3 * s] = spanKindCode(sp.kind);
      spanData[3 * s + 1] = sp.start;
      spanData[3 * s + 2] = sp.end;
      s++;
    }
  });
  spanOffsets[count] = s;
  return { seqLen, count, tokens, segment, spanOffsets, spanData, contentTokens };
}

/** Window w as copies (corruptions write into their own arrays, never into the shared store). */
export function windowAt(
  store: WindowStore,
  w: number,
): { tokens: Int32Array; segment: Int32Array; spans: Span[] } {
  if (!(w >= 0 && w < store.count)) throw new Error(`window ${w} out of range [0, ${store.count})`);
  const L = store.seqLen;
  const spans: Span[] = [];
  for (let s = store.spanOffsets[w]; s < store.spanOffsets[w + 1]; s++) {
    spans.push({
      kind: SPAN_KINDS[store.spanData[3 * s]],
      start: store.spanData[3 * s + 1],
      end: store.spanData[3 * s + 2],
    });
  }
  return {
    tokens: store.tokens.slice(w * L, (w + 1) * L),
    segment: store.segment.slice(w * L, (w + 1) * L),
    spans,
  };
}
