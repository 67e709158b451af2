/**
 * Filtering is deterministic (input order does not matter, ties break on the id, thresholds reject with
 * reasons); a distillation set holds the states of a trajectory with 1/t weights and round-trips through
 * its Arrow file; edit augmentation substitutes visible tokens and puts loss on them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { plainVocabulary } from '../pipelines/corrupt/vocab.ts';
import {
  buildDistillSet,
  distillExamples,
  readDistillSet,
  writeDistillSet,
} from '../posttrain/trajectories/distill.ts';
import { filterTrajectories, parseThreshold } from '../posttrain/trajectories/filter.ts';
import type { ScoredRow } from '../posttrain/trajectories/score.ts';
import type { TrajectoryStep } from '../schemas/trajectory.ts';

const dir = mkdtempSync(join(tmpdir(), 'sdt-distill-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const M = 3;
const specials = { pad: 0, bos: 1, eos: 2, mask: M, del: 4 };

function step(block: number, s: number, positions: number[], tokens: number[]): TrajectoryStep {
  return { block, step: s, kind: 'commit', positions, tokens, confidences: positions.map(() => 0.9) };
}

function row(
  id: string,
  elbo: number | null,
  tau: number,
  verifier: number | null,
  steps: TrajectoryStep[] = [],
): ScoredRow {
  return {
    id,
    checkpoint: 'c',
    prompt: Int32Array.from([9, 8]),
    tokens: Int32Array.from([5, 6, 7, 8]),
    text: '',
    eos: false,
    steps,
    forwardPasses: tau + 1,
    settings: '{}',
    elbo,
    levSurrogate: 1 / tau,
    tau,
    verifier,
    extras: { levMeanJump: 4 / tau, elboPositions: 4, syntaxOk: verifier === 1, testsPass: null },
  };
}

describe('traj filter', () => {
  const rows = [
    row('p#0', -5, 4, 1),
    row('p#1', -3, 4, 0),
    row('p#2', -5, 2, 1),
    row('p#3', -4, 3, 1),
    row('q#0', -9, 1, 1),
    row('q#1', null, 1, 1),
    row('r#0', -1, 1, 0),
  ];

  it('keeps the highest ELBO among verified ones, per prompt, with reasons', () => {
    const res = filterTrajectories(rows, { by: 'elbo', topK: 2, require: [parseThreshold('verifier>=1')] });
    expect(res.kept.map((r) => r.id)).toEqual(['p#3', 'p#0', 'q#0']);
    expect(res.report).toEqual([
      {
        prompt: 'p',
        candidates: 4,
        rejected: { 'verifier>=1': 1 },
        kept: [
          { id: 'p#3', score: -4 },
          { id: 'p#0', score: -5 },
        ],
      },
      { prompt: 'q', candidates: 2, rejected: { 'no elbo score': 1 }, kept: [{ id: 'q#0', score: -9 }] },
      { prompt: 'r', candidates: 1, rejected: { 'verifier>=1': 1 }, kept: [] },
    ]);
  });

  it('is deterministic under any input order (ties break on the id)', () => {
    const ref = filterTrajectories(rows, { by: 'verifier', topK: 2, require: [] }).kept.map((r) => r.id);
    // p#0, p#2, p#3 tie on verifier 1: the two smallest ids win.
    expect(ref.slice(0, 2)).toEqual(['p#0', 'p#2']);
    let seed = 7;
    for (let trial = 0; trial < 20; trial++) {
      const shuffled = [...rows];
      for (let i = shuffled.length - 1; i > 0; i--) {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        const j = seed % (i + 1);
        [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
      }
      expect(
        filterTrajectories(shuffled, { by: 'verifier', topK: 2, require: [] }).kept.map((r) => r.id),
      ).toEqual(ref);
    }
  });

  it('lower-is-better keys and threshold parsing', () => {
    const res = filterTrajectories(rows, { by: 'tau', topK: 1, require: [parseThreshold('elbo > -6')] });
    expect(res.kept.map((r) => r.id)).toEqual(['p#2', 'r#0']);
    expect(() => parseThreshold('speed>1')).toThrow(/KEY OP NUMBER/);
  });
});

describe('distillation set', () => {
  // Prompt [9, 8]; block 0 = positions 0..3 in two steps, block 1 = positions 4..5 in one step.
  const traj = row('t#0', -1, 3, 1, [
    step(0, 0, [1, 2], [6, 7]),
    step(0, 1, [0, 3], [5, 8]),
    step(1, 0, [4, 5], [10, 11]),
  ]);
  const opts = { specials, vocab: plainVocabulary(40), augmentShare: 0, alpha: 0, seed: 1 };

  it('holds each state before a commit with x0 targets on masked positions and weights 1/t', () => {
    const ex = distillExamples(traj, opts);
    expect(ex.map((e) => Array.from(e.input))).toEqual([
      [9, 8, M, M, M, M],
      [9, 8, M, 6, 7, M],
      [9, 8, 5, 6, 7, 8, M, M],
    ]);
    expect(ex.map((e) => Array.from(e.target))).toEqual([
      [-1, -1, 5, 6, 7, 8],
      [-1, -1, 5, -1, -1, 8],
      [-1, -1, -1, -1, -1, -1, 10, 11],
    ]);
    expect(ex.map((e) => e.t)).toEqual([1, 0.5, 1]);
    expect(Array.from(ex[1].weight)).toEqual([0, 0, 2, 0, 0, 2]);
  });

  it('puts no target where the trajectory never committed (after <|eos|> in its last block)', () => {
    // Block 1 commits <|eos|> at 4 and a token at 7 in one step; 5 and 6 stay masked for good.
    const eos = row('e#0', -1, 3, 1, [step(0, 0, [0, 1, 2, 3], [5, 6, 7, 8]), step(1, 0, [4, 7], [2, 12])]);
    for (const augmentShare of [0, 1]) {
      const ex = distillExamples(eos, { ...opts, augmentShare, alpha: 0.5 });
      for (const e of ex) expect(Array.from(e.target)).not.toContain(M);
      const last = ex.at(-1)!;
      expect(Array.from(last.target.subarray(2 + 4))).toEqual([2, -1, -1, 12]);
    }
  });

  it('round-trips through its Arrow file', async () => {
    const ex = buildDistillSet([traj, { ...traj, id: 't#1' }], { ...opts, augmentShare: 1, alpha: 0.5 });
    const path = join(dir, 'set.arrow');
    await writeDistillSet(path, ex);
    const back = await readDistillSet(path);
    expect(back).toEqual(ex);
  });

  it('edit augmentation substitutes visible tokens and puts unit loss on all of them', () => {
    const ex = distillExamples(traj, { ...opts, augmentShare: 1, alpha: 0.5 });
    const last = ex[2];
    // 4 visible canvas tokens, alpha 0.5: a budget of 2 substitutions.
    expect(last.edited).toBeGreaterThan(0);
    expect(last.edited).toBeLessThanOrEqual(2);
    expect(Array.from(last.target.subarray(2, 6))).toEqual([5, 6, 7, 8]);
    expect(Array.from(last.weight.subarray(2, 6))).toEqual([1, 1, 1, 1]);
    let changed = 0;
    for (let p = 2; p < 6; p++) if (last.input[p] !== last.target[p]) changed++;
    expect(changed).toBe(last.edited);
    // The same seed gives the same augmentation.
    expect(distillExamples(traj, { ...opts, augmentShare: 1, alpha: 0.5 })).toEqual(ex);
  });
});
