import { SPAN_KINDS, type Span } from '../../schemas/dataset.ts';
import type { NodeRange } from './parse.ts';

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

/** Index of the token containing byte `b`: the last token starting at or before it. */
function tokenAt(byteOffsets: Int32Array, nTokens: number, b: number): number {
  let lo = 0;
  let hi = nTokens - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (byteOffsets[mid] <= b) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** One past the last token overlapping bytes before `b`: the first token starting at or after it. */
function tokenEndAt(byteOffsets: Int32Array, nTokens: number, b: number): number {
  let lo = 0;
  let hi = nTokens;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (byteOffsets[mid] >= b) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * Token ranges of syntax nodes. A span is the smallest token range covering the node's bytes: byte-level
 * BPE merges a leading space into a word, so the token " foo" belongs to the identifier `foo`. Duplicate
 * (kind, range) pairs, from nodes that wrap one another, are kept once.
 */
export function nodesToSpans(
  text: string,
  nodes: NodeRange[],
  byteOffsets: Int32Array,
  nTokens: number,
): Span[] {
  if (nTokens === 0) return [];
  const ascii = byteOffsets[nTokens] === text.length;
  const map = ascii ? undefined : utf16ToUtf8Offsets(text);
  const seen = new Set<string>();
  const spans: Span[] = [];
  for (const n of nodes) {
    const sb = map ? map[n.start16] : n.start16;
    const eb = map ? map[n.end16] : n.end16;
    const start = tokenAt(byteOffsets, nTokens, sb);
    const end = Math.max(start + 1, tokenEndAt(byteOffsets, nTokens, eb));
    const key = `${n.kind}:${start}:${end}`;
    if (seen.has(key)) continue;
    seen.add(key);
    spans.push({ kind: SPAN_KINDS[n.kind], start, end });
  }
  return spans;
}
