/**
 * The post-training anchor rows (posttrain/stages/anchor.ts `anchorExample`): on a block model, a clean
 * prefix of whole blocks, one masked block, nothing after it; on a bidirectional model, the mask process.
 */
import { describe, expect, it } from 'vitest';
import { maskCorrupt } from '../pipelines/corrupt/mask.ts';
import { Rng } from '../pipelines/corrupt/rng.ts';
import { anchorExample } from '../posttrain/stages/anchor.ts';
import { SP } from './corrupt-helpers.ts';

const window = Int32Array.from({ length: 70 }, (_, i) => 5 + ((i * 13) % 50));

describe('anchorExample', () => {
  it('on a block model: clean whole-block prefix, loss only inside the last block, targets from x0', () => {
    const block = 16;
    const starts = new Set<number>();
    for (let seed = 0; seed < 200; seed++) {
      const ex = anchorExample(window, new Rng(seed, 3), SP, block);
      const end = ex.input.length;
      const start = Math.floor((end - 1) / block) * block;
      starts.add(start);
      expect(end === window.length || end % block === 0).toBe(true);
      expect(ex.target.length).toBe(end);
      expect(ex.weight.length).toBe(end);
      let masked = 0;
      for (let i = 0; i < end; i++) {
        const isMask = ex.input[i] === SP.mask;
        if (isMask) masked++;
        if (i < start) expect(isMask).toBe(false);
        expect(ex.weight[i] > 0).toBe(isMask);
        expect(ex.target[i]).toBe(window[i]);
        if (!isMask) expect(ex.input[i]).toBe(window[i]);
      }
      expect(masked).toBeGreaterThan(0);
    }
    // Every block of the window, the short last one included, is drawn as the noisy block.
    expect([...starts].sort((a, b) => a - b)).toEqual([0, 16, 32, 48, 64]);
  });

  it('on a bidirectional model: the mask process over the whole window', () => {
    const a = anchorExample(window, new Rng(7, 3), SP);
    const b = maskCorrupt(window, [], new Rng(7, 3), { specials: SP });
    expect(Array.from(a.input)).toEqual(Array.from(b.input));
    expect(Array.from(a.weight)).toEqual(Array.from(b.weight));
  });
});
