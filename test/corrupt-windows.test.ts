import { describe, expect, it } from 'vitest';
import { spawnTsWorker } from '../common/worker.ts';
import { applyAlignedTargets } from '../pipelines/corrupt/align.ts';
import { type CorruptConfig, corruptWindow } from '../pipelines/corrupt/corrupt.ts';
import { Rng } from '../pipelines/corrupt/rng.ts';
import { cutWindows, type WindowSource } from '../pipelines/corrupt/windows.ts';
import { fixtureConfig, fixtureWindows, randomRow, SP, seeds, TOY_VOCAB } from './corrupt-helpers.ts';

function rows(seed: number, count: number): WindowSource[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, (_, i) => ({ id: `row${i}`, ...randomRow(rng, rng.int(12)) }));
}

describe('windows', () => {
  for (const pack of [true, false]) {
    it(`cuts and ${pack ? 'packs' : 'pads'} rows into L-token windows, keeping docs, segments and spans`, () => {
      for (const s of seeds(15)) {
        const L = 16 + new Rng(s).int(48);
        const src = rows(s, 25);
        const wins = cutWindows(src, { seqLen: L, specials: SP, pack });
        const rebuilt = new Map<string, number[]>();
        for (const w of wins) {
          expect(w.tokens.length).toBe(L);
          for (let i = 0; i < L; i++) {
            expect(w.segment[i] === 0).toBe(i >= w.length);
            if (i >= w.length) expect(w.tokens[i]).toBe(SP.pad);
          }
          w.pieces.forEach((p, k) => {
            expect(p.segment).toBe(k + 1);
            for (let i = p.start; i < p.end; i++) expect(w.segment[i]).toBe(p.segment);
            const got = rebuilt.get(p.rowId) ?? [];
            got.push(...w.tokens.subarray(p.start, p.end));
            rebuilt.set(p.rowId, got);
          });
          if (!pack) expect(w.pieces.length).toBe(1);
          // Every window span holds the same tokens as the row span it came from.
          for (const sp of w.spans) {
            const piece = w.pieces.find((p) => sp.start >= p.start && sp.end <= p.end)!;
            expect(piece).toBeDefined();
            const row = src.find((r) => r.id === piece.rowId)!;
            const bos = w.tokens[piece.start] === SP.bos ? 1 : 0;
            const rowStart = piece.rowOffset + sp.start - piece.start - bos;
            expect(Array.from(w.tokens.subarray(sp.start, sp.end))).toEqual(
              Array.from(row.tokens.subarray(rowStart, rowStart + sp.end - sp.start)),
            );
            expect(
              row.spans.some(
                (o) => o.kind === sp.kind && o.start <= rowStart && o.end >= rowStart + sp.end - sp.start,
              ),
            ).toBe(true);
          }
        }
        // Concatenating a row's pieces gives back BOS + tokens + EOS, and short rows are never split.
        for (const r of src) {
          expect(rebuilt.get(r.id)).toEqual([SP.bos, ...r.tokens, SP.eos]);
          const n = wins.reduce((a, w) => a + w.pieces.filter((p) => p.rowId === r.id).length, 0);
          expect(n).toBe(Math.ceil((r.tokens.length + 2) / L));
        }
        // Span coverage: total clipped span length per row equals the row's total span length.
        for (const r of src) {
          const want = r.spans.reduce((a, sp) => a + sp.end - sp.start, 0);
          let got = 0;
          for (const w of wins)
            for (const sp of w.spans) {
              const p = w.pieces.find((q) => sp.start >= q.start && sp.end <= q.end)!;
              if (p.rowId === r.id) got += sp.end - sp.start;
            }
          expect(got).toBe(want);
        }
      }
    });
  }

  it('corruptWindow: mask keeps segments and gives padding weight 0; edit aligned round-trips each window', () => {
    const wins = cutWindows(rows(77, 30), { seqLen: 96, specials: SP });
    const mask: CorruptConfig = { kind: 'mask', seed: 3, specials: SP, mask: { structure: true } };
    const edit: CorruptConfig = {
      kind: 'edit',
      seed: 3,
      specials: SP,
      edit: { vocab: TOY_VOCAB, structure: true, targets: 'aligned', canvas: 200 },
    };
    wins.forEach((w, i) => {
      const m = corruptWindow(w, i, mask);
      expect(Array.from(m.segment!)).toEqual(Array.from(w.segment));
      for (let j = w.length; j < 96; j++) expect(m.weight[j]).toBe(0);
      const e = corruptWindow(w, i, edit);
      if (e.kind !== 'edit') throw new Error('expected edit');
      const len = e.edit.edited.length;
      expect(e.input.length).toBe(200);
      const back = applyAlignedTargets(e.target, e.missingBefore!, e.missingTokens!, SP.del, len);
      expect(Array.from(back)).toEqual(Array.from(w.tokens.subarray(0, w.length)));
      // Segment ids stay non-decreasing (documents stay in order) and 0 only on padding.
      for (let j = 1; j < len; j++) expect(e.segment![j]).toBeGreaterThanOrEqual(e.segment![j - 1]);
      for (let j = 0; j < 200; j++) expect(e.segment![j] === 0).toBe(j >= len);
    });
  });

  it('examples do not depend on the order they are produced in', () => {
    const wins = cutWindows(rows(5, 20), { seqLen: 64, specials: SP });
    const cfg: CorruptConfig = {
      kind: 'edit',
      seed: 11,
      specials: SP,
      edit: { vocab: TOY_VOCAB, targets: 'positional' },
    };
    const forward = wins.map((w, i) => Array.from(corruptWindow(w, i, cfg).input));
    const backward = wins
      .map((_, k) => wins.length - 1 - k)
      .map((i) => Array.from(corruptWindow(wins[i], i, cfg).input));
    expect(backward.reverse()).toEqual(forward);
  });

  it('worker threads produce the same examples as the main thread, whatever the order and split', async () => {
    const wins = fixtureWindows();
    const all = wins.map((_, i) => i);
    for (const kind of ['mask', 'edit'] as const) {
      const cfg = fixtureConfig(kind);
      const here = all.map((i) => {
        const e = corruptWindow(wins[i], i, cfg);
        return { i, input: Array.from(e.input), target: Array.from(e.target), weight: Array.from(e.weight) };
      });
      // Two workers take interleaved halves, one of them backwards.
      const halves = [all.filter((i) => i % 2 === 0).reverse(), all.filter((i) => i % 2 === 1)];
      const parts = await Promise.all(
        halves.map(
          (indices) =>
            new Promise<typeof here>((resolve, reject) => {
              const w = spawnTsWorker(new URL('./corrupt-worker.ts', import.meta.url), { indices, kind });
              w.once('message', (m) => {
                resolve(m);
                void w.terminate();
              });
              w.once('error', reject);
            }),
        ),
      );
      const merged = parts.flat().sort((a, b) => a.i - b.i);
      expect(merged).toEqual(here);
    }
  });
});
