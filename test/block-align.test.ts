import { describe, expect, it } from 'vitest';
import { Rng } from '../pipelines/corrupt/rng.ts';
import { alignToBlocks, type PackedWindow } from '../trainer/block-align.ts';

const EOS = 2;
const PAD = 0;

/** A packed window: documents of random lengths (content, then <|eos|> unless cut), then padding. */
function packed(L: number, seed: number): { w: PackedWindow; docs: number[][] } {
  const rng = new Rng(seed);
  const tokens = new Int32Array(L);
  const segment = new Int32Array(L);
  const docs: number[][] = [];
  let pos = 0;
  for (let d = 1; pos < L - 4; d++) {
    const len = 3 + rng.int(20);
    const doc = Array.from({ length: len }, () => 10 + rng.int(50));
    doc.push(EOS);
    const n = Math.min(doc.length, L - pos - (rng.int(3) === 0 ? 3 : 0));
    tokens.set(doc.slice(0, n), pos);
    segment.fill(d, pos, pos + n);
    docs.push(doc.slice(0, n));
    pos += n;
    if (n < doc.length) break;
  }
  const spans = [{ kind: 'statement' as const, start: 1, end: 3 }];
  return { w: { tokens, segment, spans }, docs };
}

describe('block-aligned windows', () => {
  it('starts each kept document at a block boundary, in order, with its tokens intact and <|eos|> fill', () => {
    for (let seed = 0; seed < 200; seed++) {
      const B = [1, 4, 8, 16][seed % 4];
      const L = 64;
      const { w, docs } = packed(L, seed);
      const a = alignToBlocks(w, B, EOS, PAD);
      // Read the documents back from the aligned window by segment run.
      const got: number[][] = [];
      const starts: number[] = [];
      for (let i = 0; i < L; i++) {
        if (a.segment[i] === 0) {
          expect(a.tokens[i]).toBe(PAD);
          continue;
        }
        if (i === 0 || a.segment[i - 1] !== a.segment[i]) {
          got.push([]);
          starts.push(i);
        }
        got[got.length - 1].push(a.tokens[i]);
      }
      expect(got.length + a.dropped).toBe(docs.length);
      for (const s of starts) expect(s % B).toBe(0);
      got.forEach((g, k) => {
        const doc = docs[k];
        const ended = doc[doc.length - 1] === EOS;
        const last = starts[k] + g.length;
        if (ended && g.length >= doc.length) {
          // The whole document, then <|eos|> up to the end of its block (or the window).
          expect(g.slice(0, doc.length)).toEqual(doc);
          expect(g.slice(doc.length).every((t) => t === EOS)).toBe(true);
          expect(last % B === 0 || last === L).toBe(true);
        } else {
          // Cut (here or in the source window): a prefix with no fill, ending where the window or the source did.
          expect(last === L || g.length === doc.length).toBe(true);
          expect(g).toEqual(doc.slice(0, g.length));
        }
      });
    }
  });

  it('keeps spans with their document, shifted, and the window untouched when documents already align', () => {
    const tokens = Int32Array.from([5, 6, EOS, 7, 8, 9, 10, EOS, PAD]);
    const segment = Int32Array.from([1, 1, 1, 2, 2, 2, 2, 2, 0]);
    const a = alignToBlocks(
      { tokens, segment, spans: [{ kind: 'statement', start: 4, end: 6 }] },
      4,
      EOS,
      PAD,
    );
    expect(Array.from(a.tokens)).toEqual([5, 6, EOS, EOS, 7, 8, 9, 10, EOS]);
    expect(Array.from(a.segment)).toEqual([1, 1, 1, 1, 2, 2, 2, 2, 2]);
    expect(a.spans).toEqual([{ kind: 'statement', start: 5, end: 7 }]);
    const same = alignToBlocks({ tokens, segment, spans: [] }, 1, EOS, PAD);
    expect(Array.from(same.tokens)).toEqual(Array.from(tokens));
  });
});
