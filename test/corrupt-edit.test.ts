import { distance as levenshteinStrings } from 'fastest-levenshtein';
import { describe, expect, it } from 'vitest';
import {
  alignedTargets,
  alignmentCost,
  alignTokens,
  applyAlignedTargets,
  tokenDistance,
} from '../pipelines/corrupt/align.ts';
import { editExample } from '../pipelines/corrupt/corrupt.ts';
import { PLAIN_STYLE, renderExample } from '../pipelines/corrupt/diff.ts';
import { EDIT_OPS, type EditOp, editTokens } from '../pipelines/corrupt/edit.ts';
import { maskCorrupt } from '../pipelines/corrupt/mask.ts';
import { exampleRng, Rng } from '../pipelines/corrupt/rng.ts';
import { positionalExample } from '../pipelines/corrupt/targets.ts';
import { plainVocabulary } from '../pipelines/corrupt/vocab.ts';
import { FIRST_ORDINARY, randomRow, SP, seeds, TOY_VOCAB } from './corrupt-helpers.ts';

/** Textbook O(n m) Levenshtein, the independent reference for our DP. */
function referenceDistance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

describe('token Levenshtein', () => {
  it('maps ids to single code units: a surrogate-pair mapping would miscount', () => {
    const naive = (ids: number[]) => ids.map((id) => String.fromCodePoint(0x10000 + id)).join('');
    // One substituted token, but both halves of the surrogate pair differ: the naive mapping says 2.
    expect(levenshteinStrings(naive([0]), naive([0x401]))).toBe(2);
    expect(tokenDistance([0], [0x401])).toBe(1);
    // Ids beyond the 16-bit range work too.
    expect(tokenDistance([70000, 5, 900000], [5, 900000, 70001])).toBe(2);
  });

  it('banded DP cost == fastest-levenshtein == reference on random pairs, alignment cost consistent', () => {
    for (const s of seeds(150)) {
      const rng = new Rng(s);
      const alphabet = 2 + rng.int(20);
      const a = Array.from({ length: rng.int(120) }, () => rng.int(alphabet));
      // Half the pairs are near-copies (narrow band), half are unrelated (forces band doubling).
      const b = rng.bernoulli(0.5)
        ? a.filter(() => rng.bernoulli(0.95)).map((t) => (rng.bernoulli(0.05) ? rng.int(alphabet) : t))
        : Array.from({ length: rng.int(120) }, () => rng.int(alphabet));
      const ref = referenceDistance(a, b);
      const al = alignTokens(a, b, 1 + rng.int(8));
      expect(al.distance).toBe(ref);
      expect(tokenDistance(a, b)).toBe(ref);
      expect(alignmentCost(a, b, al)).toBe(ref);
    }
  });

  it('aligned targets round-trip: drop <|del|>, re-insert missing tokens -> x0', () => {
    for (const s of seeds(150)) {
      const rng = new Rng(s);
      const a = Array.from({ length: rng.int(80) }, () => 10 + rng.int(6));
      const b = Array.from({ length: rng.int(80) }, () => 10 + rng.int(6));
      const t = alignedTargets(a, b, SP.del);
      expect(Array.from(applyAlignedTargets(t.target, t.missingBefore, t.missingTokens, SP.del))).toEqual(a);
    }
  });
});

describe('edit process', () => {
  it('Levenshtein distance <= k for every op mix, structure-aware included', () => {
    const mixes: Partial<Record<EditOp, number>>[] = [
      ...EDIT_OPS.map((o) => ({ [o]: 1 })),
      Object.fromEntries(EDIT_OPS.map((o) => [o, 1])),
    ];
    for (const s of seeds(40)) {
      for (const opWeights of mixes) {
        const rng = new Rng(s);
        const row = randomRow(rng, 25);
        const r = editTokens(row.tokens, row.spans, rng, {
          specials: SP,
          vocab: TOY_VOCAB,
          opWeights,
          alphaMax: 0.3,
        });
        expect(r.budget).toBe(Math.floor(row.tokens.length * r.alpha));
        expect(r.charged).toBeLessThanOrEqual(r.budget);
        expect(tokenDistance(row.tokens, r.edited)).toBeLessThanOrEqual(r.budget);
      }
    }
  });

  it('substitution-only: Hamming distance k; Levenshtein exactly k with tokens absent from x0', () => {
    for (const s of seeds(60)) {
      const rng = new Rng(s);
      const x0 = Int32Array.from({ length: 50 + rng.int(300) }, () => 10 + rng.int(40));
      // Fresh tokens [100, 1000): every substituted token must be paid for, so d >= k; Hamming gives d <= k.
      const fresh = { ...plainVocabulary(1000), randomLo: 100 };
      const r = editTokens(x0, [], rng, { specials: SP, vocab: fresh, opWeights: { substitute: 1 } });
      expect(r.charged).toBe(r.budget);
      expect(tokenDistance(x0, r.edited)).toBe(r.budget);
      // Overlapping vocabulary: Hamming is still k, Levenshtein can only be lower.
      const r2 = editTokens(x0, [], rng, {
        specials: SP,
        vocab: plainVocabulary(50),
        opWeights: { substitute: 1 },
        alpha: 0.1,
      });
      let hamming = 0;
      for (let i = 0; i < x0.length; i++) if (x0[i] !== r2.edited[i]) hamming++;
      expect(hamming).toBe(r2.budget);
      expect(tokenDistance(x0, r2.edited)).toBeLessThanOrEqual(r2.budget);
    }
  });

  it('structure-aware ops all fire and do what they say', () => {
    const counts = Object.fromEntries(EDIT_OPS.map((o) => [o, 0])) as Record<EditOp, number>;
    for (const s of seeds(40)) {
      const rng = new Rng(s);
      const row = randomRow(rng, 30);
      const r = editTokens(row.tokens, row.spans, rng, {
        specials: SP,
        vocab: TOY_VOCAB,
        structure: true,
        alpha: 0.1,
      });
      for (const o of EDIT_OPS) counts[o] += r.applied[o];
      const only = editTokens(row.tokens, row.spans, new Rng(s, 1), {
        specials: SP,
        vocab: TOY_VOCAB,
        opWeights: { replaceOperator: 1 },
        alpha: 0.05,
      });
      // Operator replacement: same length, and every changed token is an operator of the same spacing.
      expect(only.edited.length).toBe(row.tokens.length);
      for (let i = 0; i < row.tokens.length; i++) {
        if (only.edited[i] === row.tokens[i]) continue;
        const g = TOY_VOCAB.operatorGroup.get(row.tokens[i]);
        expect(g).toBeDefined();
        expect(TOY_VOCAB.operatorGroup.get(only.edited[i])).toBe(g);
      }
    }
    for (const o of EDIT_OPS) expect(counts[o], o).toBeGreaterThan(0);
  });

  it('operator replacement leaves operator-looking tokens inside identifiers alone', () => {
    const x0 = Int32Array.from({ length: 40 }, (_, i) => FIRST_ORDINARY + (i % 12));
    const spans = [{ kind: 'identifier' as const, start: 0, end: 20 }];
    for (const s of seeds(20)) {
      const r = editTokens(x0, spans, new Rng(s), {
        specials: SP,
        vocab: TOY_VOCAB,
        opWeights: { replaceOperator: 1 },
        alpha: 0.25,
      });
      expect(Array.from(r.edited.subarray(0, 20))).toEqual(Array.from(x0.subarray(0, 20)));
      let changed = 0;
      for (let i = 20; i < 40; i++) if (r.edited[i] !== x0[i]) changed++;
      expect(changed).toBe(r.budget);
    }
  });

  it('deleting a statement removes exactly that statement; duplicating a line repeats it', () => {
    for (const s of seeds(30)) {
      const rng = new Rng(s);
      const row = randomRow(rng, 10);
      const x = Array.from(row.tokens);
      const del = editTokens(row.tokens, row.spans, rng, {
        specials: SP,
        vocab: TOY_VOCAB,
        opWeights: { deleteStatement: 1 },
        alpha: 0.5,
      });
      if (del.applied.deleteStatement > 0) {
        // Deleting whole statements from a sequence of statements: the result is x0 minus some statements.
        const stmts = row.spans
          .filter((sp) => sp.kind === 'statement')
          .map((sp) => x.slice(sp.start, sp.end));
        const edited = Array.from(del.edited);
        let pos = 0;
        for (const st of stmts) {
          if (edited.slice(pos, pos + st.length).join() === st.join()) pos += st.length;
        }
        expect(pos).toBe(edited.length);
        expect(x.length - edited.length).toBe(del.charged);
      }
      const dup = editTokens(row.tokens, row.spans, rng, {
        specials: SP,
        vocab: TOY_VOCAB,
        opWeights: { duplicateLine: 1 },
        alpha: 0.3,
      });
      expect(dup.edited.length - x.length).toBe(dup.charged);
      expect(tokenDistance(x, dup.edited)).toBe(dup.charged);
    }
  });

  it('BOS/EOS/pad are never edited and inserted tokens stay inside their document', () => {
    for (const s of seeds(40)) {
      const rng = new Rng(s);
      const a = randomRow(rng, 5);
      const b = randomRow(rng, 4);
      const x0 = Int32Array.from([SP.bos, ...a.tokens, SP.eos, SP.bos, ...b.tokens, SP.eos]);
      const seg = Int32Array.from(x0, (_, i) => (i <= a.tokens.length + 1 ? 1 : 2));
      const r = editTokens(x0, [], rng, { specials: SP, vocab: TOY_VOCAB, alpha: 0.3 }, seg);
      const e = Array.from(r.edited);
      expect(e[0]).toBe(SP.bos);
      expect(e[e.length - 1]).toBe(SP.eos);
      expect(e.filter((t) => t === SP.bos).length).toBe(2);
      expect(e.filter((t) => t === SP.eos).length).toBe(2);
      const firstEos = e.indexOf(SP.eos);
      expect(e[firstEos + 1]).toBe(SP.bos);
      for (let i = 0; i < e.length; i++) expect(r.editedSegment![i]).toBe(i <= firstEos ? 1 : 2);
    }
  });

  it('aligned examples reconstruct x0 and report the fastest-levenshtein distance', () => {
    for (const s of seeds(60)) {
      const rng = new Rng(s);
      const row = randomRow(rng, 20);
      const ex = editExample(row.tokens, row.spans, rng, SP, {
        vocab: TOY_VOCAB,
        structure: true,
        targets: 'aligned',
        alphaMax: 0.1,
      });
      expect(ex.distance).toBe(tokenDistance(row.tokens, ex.edit.edited));
      expect(ex.distance).toBeLessThanOrEqual(ex.edit.budget);
      expect(Array.from(ex.input)).toEqual(Array.from(ex.edit.edited));
      expect(Array.from(ex.weight).every((w) => w === 1)).toBe(true);
      const back = applyAlignedTargets(ex.target, ex.missingBefore!, ex.missingTokens!, SP.del);
      expect(Array.from(back)).toEqual(Array.from(row.tokens));
    }
  });

  it('aligned examples on a longer canvas pad with weight 0 and still round-trip', () => {
    const rng = new Rng(3);
    const row = randomRow(rng, 10);
    const canvas = row.tokens.length + 40;
    const ex = editExample(row.tokens, row.spans, rng, SP, { vocab: TOY_VOCAB, targets: 'aligned', canvas });
    const len = ex.edit.edited.length;
    expect(ex.input.length).toBe(canvas);
    expect(Array.from(ex.weight.subarray(len)).every((w) => w === 0)).toBe(true);
    expect(Array.from(ex.input.subarray(len)).every((t) => t === SP.pad)).toBe(true);
    const back = applyAlignedTargets(ex.target, ex.missingBefore!, ex.missingTokens!, SP.del, len);
    expect(Array.from(back)).toEqual(Array.from(row.tokens));
  });

  it('positional targets: x0 padded or truncated to the canvas, loss on all real positions', () => {
    const x0 = Int32Array.from([10, 11, 12, 13, 14]);
    const short = Int32Array.from([10, 12, 13]);
    const ex = positionalExample(x0, short, 2, SP);
    expect(Array.from(ex.input)).toEqual([10, 12, 13]);
    expect(Array.from(ex.target)).toEqual([10, 11, 12]);
    expect(Array.from(ex.weight)).toEqual([1, 1, 1]);
    const wide = positionalExample(x0, short, 2, SP, { canvas: 7 });
    expect(Array.from(wide.input)).toEqual([10, 12, 13, SP.pad, SP.pad, SP.pad, SP.pad]);
    expect(Array.from(wide.target)).toEqual([10, 11, 12, 13, 14, SP.pad, SP.pad]);
    expect(Array.from(wide.weight)).toEqual([1, 1, 1, 1, 1, 0, 0]);
  });

  it('is deterministic in (seed, index)', () => {
    const row = randomRow(new Rng(9), 20);
    const cfg = { vocab: TOY_VOCAB, structure: true, targets: 'aligned' as const };
    const a = editExample(row.tokens, row.spans, exampleRng(1, 5), SP, cfg);
    const b = editExample(row.tokens, row.spans, exampleRng(1, 5), SP, cfg);
    expect(Array.from(a.input)).toEqual(Array.from(b.input));
    expect(Array.from(a.target)).toEqual(Array.from(b.target));
    expect(a.t).toBe(b.t);
  });
});

describe('diff rendering', () => {
  const text = (id: number) => `<${id}>`;
  it('plain markers: removing insertions gives x0, removing deletions gives the edited sequence', () => {
    for (const s of seeds(30)) {
      const rng = new Rng(s);
      const row = randomRow(rng, 12);
      const ex = editExample(row.tokens, row.spans, rng, SP, {
        vocab: TOY_VOCAB,
        structure: true,
        targets: 'aligned',
      });
      const shown = renderExample(ex, text, PLAIN_STYLE, 1e9);
      const asText = (ids: ArrayLike<number>) => Array.from(ids, text).join('');
      expect(shown.replace(/\{\+.*?\+\}/g, '').replace(/\[-(.*?)-\]/g, '$1')).toBe(asText(row.tokens));
      expect(shown.replace(/\[-.*?-\]/g, '').replace(/\{\+(.*?)\+\}/g, '$1')).toBe(asText(ex.edit.edited));
      const m = maskCorrupt(row.tokens, row.spans, rng, { specials: SP });
      const masked = renderExample(m, text, PLAIN_STYLE, 1e9);
      expect(masked.replace(/\[M:(.*?)\]/g, '$1')).toBe(asText(row.tokens));
      expect((masked.match(/\[M:/g) ?? []).length).toBe(m.masked);
    }
  });
});
