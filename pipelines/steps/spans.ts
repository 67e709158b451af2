import { SPAN_KINDS, type Span } from '../../schemas/dataset.ts';

/**
 * UTF-8 byte offset of every UTF-16 index of `text` (length text.length + 1). tree-sitter reports UTF-16
 * indices for JS strings while token offsets are UTF-8 bytes; a surrogate pair's second half maps to the
 * end of the 4-byte character.
 */
export function utf16ToUtf8Offsets(text: string): Int32Array {
  const out = new Int32Array(text.length + 1);
  let b = 0;
  for (let i = 0; i < text.length; i++) {
    out[i] = b;
    const c = text.charCodeAt(i);
    if (c < 0x80) b += 1;
    else if (c < 0x800) b += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        b += 4;
        out[++i] = b;
        continue;
      }
      b += 3;
    } else b += 3;
  }
  out[text.length] = b;
  return out;
}

/**
 * One past the last token overlapping bytes before `b`: the first token starting at or after it, searched
 * from token `from` (at or before the answer) by galloping: most nodes span a few tokens.
 */
function tokenEndAt(byteOffsets: Int32Array, nTokens: number, b: number, from: number): number {
  let lo = from;
  let step = 1;
  while (lo + step < nTokens && byteOffsets[lo + step] < b) {
    lo += step;
    step *= 2;
  }
  let hi = Math.min(nTokens, lo + step);
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (byteOffsets[mid] >= b) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

export interface SpanArrays {
  kind: Uint8Array;
  start: Int32Array;
  end: Int32Array;
}

/**
 * Token ranges of syntax nodes. A span is the smallest token range covering the node's bytes: byte-level
 * BPE merges a leading space into a word, so the token " foo" belongs to the identifier `foo`. Duplicate
 * (kind, range) triples, from nodes that wrap one another, are kept once. `nodes` holds (kind, start byte,
 * end byte) triples in pre-order (ParseResult.nodes).
 */
export function nodesToSpanArrays(nodes: Int32Array, byteOffsets: Int32Array, nTokens: number): SpanArrays {
  const count = Math.floor(nodes.length / 3);
  const kind = new Uint8Array(count);
  const start = new Int32Array(count);
  const end = new Int32Array(count);
  let n = 0;
  if (nTokens > 0) {
    // Nodes come in pre-order, so their starts never decrease: the start token only moves forward, and
    // nodes with the same start token are consecutive. A duplicate can only be among the spans kept since
    // the start token last moved: a short scan of those, or a set when there are many (a long chain of
    // nested nodes starting at one token).
    let s = 0;
    let runStart = 0;
    let runSet: Set<number> | undefined;
    for (let i = 0; i < 3 * count; i += 3) {
      const k = nodes[i];
      const sb = nodes[i + 1];
      const eb = nodes[i + 2];
      // The token containing byte sb: the last one starting at or before it.
      const s0 = s;
      while (s + 1 < nTokens && byteOffsets[s + 1] <= sb) s++;
      if (s !== s0) {
        runStart = n;
        runSet = undefined;
      }
      const e = Math.max(s + 1, tokenEndAt(byteOffsets, nTokens, eb, s));
      if (runSet) {
        const key = e * 8 + k;
        if (runSet.has(key)) continue;
        runSet.add(key);
      } else {
        let dup = false;
        for (let j = runStart; j < n; j++) {
          if (end[j] === e && kind[j] === k) {
            dup = true;
            break;
          }
        }
        if (dup) continue;
        if (n - runStart >= 32) {
          runSet = new Set<number>();
          for (let j = runStart; j < n; j++) runSet.add(end[j] * 8 + kind[j]);
          runSet.add(e * 8 + k);
        }
      }
      kind[n] = k;
      start[n] = s;
      end[n] = e;
      n++;
    }
  }
  return { kind: kind.slice(0, n), start: start.slice(0, n), end: end.slice(0, n) };
}

/** The same spans as objects, for callers that want them (tests, tools). */
export function nodesToSpans(nodes: Int32Array, byteOffsets: Int32Array, nTokens: number): Span[] {
  const a = nodesToSpanArrays(nodes, byteOffsets, nTokens);
  return Array.from(a.kind, (k, i) => ({ kind: SPAN_KINDS[k], start: a.start[i], end: a.end[i] }));
}
