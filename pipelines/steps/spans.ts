import { SPAN_KINDS, type Span } from '../../schemas/dataset.ts';
import type { NodeList } from './parse.ts';

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
 * (kind, range) triples, from nodes that wrap one another, are kept once.
 */
export function nodesToSpanArrays(
  text: string,
  nodes: NodeList,
  byteOffsets: Int32Array,
  nTokens: number,
): SpanArrays {
  const kind = new Uint8Array(nodes.length);
  const start = new Int32Array(nodes.length);
  const end = new Int32Array(nodes.length);
  let n = 0;
  if (nTokens > 0) {
    const ascii = byteOffsets[nTokens] === text.length;
    const map = ascii ? undefined : utf16ToUtf8Offsets(text);
    // A numeric key (exact below 2^53 for up to 2^24 tokens) instead of strings: no garbage per node.
    const seen = new Set<number>();
    // Nodes come in pre-order, so their starts never decrease: the start token only moves forward.
    let s = 0;
    for (let i = 0; i < nodes.length; i++) {
      const sb = map ? map[nodes.start16[i]] : nodes.start16[i];
      const eb = map ? map[nodes.end16[i]] : nodes.end16[i];
      // The token containing byte sb: the last one starting at or before it.
      while (s + 1 < nTokens && byteOffsets[s + 1] <= sb) s++;
      const e = Math.max(s + 1, tokenEndAt(byteOffsets, nTokens, eb, s));
      const key = (s * 16777216 + e) * 8 + nodes.kind[i];
      if (seen.has(key)) continue;
      seen.add(key);
      kind[n] = nodes.kind[i];
      start[n] = s;
      end[n] = e;
      n++;
    }
  }
  return { kind: kind.slice(0, n), start: start.slice(0, n), end: end.slice(0, n) };
}

/** The same spans as objects, for callers that want them (tests, tools). */
export function nodesToSpans(
  text: string,
  nodes: NodeList,
  byteOffsets: Int32Array,
  nTokens: number,
): Span[] {
  const a = nodesToSpanArrays(text, nodes, byteOffsets, nTokens);
  return Array.from(a.kind, (k, i) => ({ kind: SPAN_KINDS[k], start: a.start[i], end: a.end[i] }));
}
