import { describe, expect, it } from 'vitest';
import { maskCorrupt } from '../pipelines/corrupt/mask.ts';
import { Rng } from '../pipelines/corrupt/rng.ts';
import { plainRow as row, SP } from './corrupt-helpers.ts';

const B = 8;

describe('block masking with a clean prefix', () => {
  it('leaves every block before some block k untouched and masks every block from k on', () => {
    const firsts = new Set<number>();
    for (let s = 0; s < 300; s++) {
      const x0 = row(64, s);
      const r = maskCorrupt(x0, [], new Rng(s), {
        specials: SP,
        mode: 'block',
        blockSize: B,
        cleanPrefix: true,
      });
      const maskedIn = (b: number) => r.input.slice(b * B, (b + 1) * B).filter((t) => t === SP.mask).length;
      const blocks = Array.from({ length: 64 / B }, (_, b) => maskedIn(b));
      const k = blocks.findIndex((m) => m > 0);
      expect(k).toBeGreaterThanOrEqual(0);
      // Clean before k (no input change, no loss); block clipping forces a mask in every block from k on.
      for (let b = 0; b < k; b++) {
        expect(blocks[b]).toBe(0);
        for (let i = b * B; i < (b + 1) * B; i++) expect(r.weight[i]).toBe(0);
      }
      for (let b = k; b < blocks.length; b++) expect(blocks[b]).toBeGreaterThan(0);
      firsts.add(k);
    }
    // k is drawn over all blocks.
    expect(firsts.size).toBe(64 / B);
  });

  it('draws the clean prefix per document (segment): each document is a decoding in progress', () => {
    const segment = Int32Array.from({ length: 64 }, (_, i) => (i < 20 ? 0 : i < 60 ? 1 : -1));
    const seen = [new Set<number>(), new Set<number>()];
    for (let s = 0; s < 400; s++) {
      const x0 = row(64, s);
      const r = maskCorrupt(
        x0,
        [],
        new Rng(s),
        { specials: SP, mode: 'block', blockSize: B, cleanPrefix: true },
        segment,
      );
      for (const [d, [lo, hi]] of [
        [0, 20],
        [1, 60],
      ].entries() as IterableIterator<[number, [number, number]]>) {
        const start = d === 0 ? 0 : 20;
        let first = -1;
        for (let i = start; i < hi && first < 0; i++) if (r.input[i] === SP.mask) first = i;
        // Nothing of the document is masked before the block of its first mask.
        const k = first < 0 ? Math.floor((hi - 1) / B) + 1 : Math.floor(first / B);
        for (let i = start; i < Math.min(hi, k * B); i++) {
          expect(r.input[i]).toBe(x0[i]);
          expect(r.weight[i]).toBe(0);
        }
        seen[d].add(k);
        expect(lo).toBeLessThan(hi);
      }
    }
    // Document 0 covers blocks 0-2, document 1 blocks 2-7: every start block occurs (3 for document 0
    // when its last block's forced mask landed on document 1's tokens).
    for (const k of [0, 1, 2]) expect(seen[0].has(k)).toBe(true);
    expect(seen[1].size).toBeGreaterThanOrEqual(5);
  });

  it('changes nothing when off, and nothing outside block mode', () => {
    for (let s = 0; s < 20; s++) {
      const x0 = row(40, s);
      const plain = maskCorrupt(x0, [], new Rng(s), { specials: SP, mode: 'block', blockSize: B });
      const off = maskCorrupt(x0, [], new Rng(s), {
        specials: SP,
        mode: 'block',
        blockSize: B,
        cleanPrefix: false,
      });
      expect(off.input).toEqual(plain.input);
      const seq = maskCorrupt(x0, [], new Rng(s), { specials: SP });
      const seqClean = maskCorrupt(x0, [], new Rng(s), { specials: SP, cleanPrefix: true });
      expect(seqClean.input).toEqual(seq.input);
    }
  });
});
