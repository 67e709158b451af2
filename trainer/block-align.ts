/**
 * Block-aligned windows for block-diffusion training: each packed document is moved to start at a block
 * boundary and its last block is filled with <|eos|>, which stay part of the document (targets like any
 * token). That is how the sampler meets a document: blocks counted from its first token and, once the text
 * ends, a block whose remaining positions must all become <|eos|>. Packed as the dataset stores them, a
 * document ends mid-block next to another document it cannot see, so the model never learns what follows
 * its <|eos|> and, decoding, commits text after the end before the <|eos|> itself.
 */
import type { Span } from '../schemas/dataset.ts';

export interface PackedWindow {
  tokens: Int32Array;
  /** 1-based document ids, 0 on padding (pipelines/corrupt convention). */
  segment: Int32Array;
  spans: Span[];
}

export interface AlignedWindow extends PackedWindow {
  /** Documents (or their tails) that no longer fit in the window and were left out. */
  dropped: number;
}

/**
 * The window with every document starting at a multiple of `blockSize` and filled with `eos` up to the end
 * of its last block; documents that no longer fit are cut at the window's end (the first) or left out.
 */
export function alignToBlocks(w: PackedWindow, blockSize: number, eos: number, pad: number): AlignedWindow {
  if (!(Number.isInteger(blockSize) && blockSize >= 1))
    throw new Error(`alignToBlocks: blockSize ${blockSize}`);
  const L = w.tokens.length;
  const tokens = new Int32Array(L).fill(pad);
  const segment = new Int32Array(L);
  const spans: Span[] = [];
  let cursor = 0;
  let dropped = 0;
  let start = 0;
  while (start < L && w.segment[start] !== 0) {
    let end = start + 1;
    while (end < L && w.segment[end] === w.segment[start]) end++;
    if (cursor >= L) {
      dropped++;
    } else {
      const n = Math.min(end - start, L - cursor);
      tokens.set(w.tokens.subarray(start, start + n), cursor);
      segment.fill(w.segment[start], cursor, cursor + n);
      const shift = cursor - start;
      for (const s of w.spans) {
        if (s.start >= start && s.end <= start + n)
          spans.push({ kind: s.kind, start: s.start + shift, end: s.end + shift });
      }
      const filled = Math.min(L, Math.ceil((cursor + n) / blockSize) * blockSize);
      // Only a document that ended (its <|eos|> is in) gets the fill; a cut one continues elsewhere.
      if (n === end - start && w.tokens[end - 1] === eos) {
        tokens.fill(eos, cursor + n, filled);
        segment.fill(w.segment[start], cursor + n, filled);
      }
      cursor = filled;
    }
    start = end;
  }
  return { tokens, segment, spans, dropped };
}
