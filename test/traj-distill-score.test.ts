/**
 * Trajectory scoring: the Levenshtein surrogate on hand-made trajectories against values worked out by
 * hand, and the ELBO (the engine's score op) against the trainer's own loss (`sdt-native forward --targets
 * --weights`) on the same states.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../common/native.ts';
import { EngineClient } from '../engine/client.ts';
import { elboOfTrajectories, stepRows } from '../posttrain/trajectories/elbo.ts';
import { levenshtein, levSurrogate, levSurrogateOfStates } from '../posttrain/trajectories/lev.ts';
import { readScored, scoreTrajectories, writeScored } from '../posttrain/trajectories/score.ts';
import type { TrajectoryRow, TrajectoryStep } from '../schemas/trajectory.ts';
import { builtNative, tinyModelConfig } from './native-build.ts';
import { writeNpy } from './train-npy.ts';

// Empty when sdt-native cannot be built here (no CMake): the native tests skip.
const bin = builtNative() ?? '';
const haveNative = bin !== '';
const dir = mkdtempSync(join(tmpdir(), 'sdt-trajscore-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const M = 3;
function step(block: number, s: number, positions: number[], tokens: number[]): TrajectoryStep {
  return { block, step: s, kind: 'commit', positions, tokens, confidences: positions.map(() => 0.5) };
}
function traj(id: string, prompt: number[], tokens: number[], steps: TrajectoryStep[]): TrajectoryRow {
  return {
    id,
    checkpoint: 'test',
    prompt: Int32Array.from(prompt),
    tokens: Int32Array.from(tokens),
    text: '',
    eos: false,
    steps,
    forwardPasses: steps.length + 1,
    settings: '{}',
    elbo: null,
    levSurrogate: null,
    tau: null,
    verifier: null,
  };
}

const testsBin = join(repoRoot, 'native', 'build', 'sdt-native-tests');
describe.skipIf(!existsSync(testsBin))('native score unit tests', () => {
  it('score_steps agrees with a log-softmax of the logits (native/tests/test_score.cpp)', () => {
    const r = spawnSync(testsBin, ['score_'], { encoding: 'utf8' });
    if (!/score_steps_matches/.test(r.stdout)) {
      console.warn(
        'sdt-native-tests predates native/tests/test_score.cpp; rebuild with npm run build:native',
      );
      return;
    }
    expect(r.status, r.stdout + r.stderr).toBe(0);
  });
});

describe('Levenshtein surrogate', () => {
  it('edit distance on token arrays', () => {
    const enc = (s: string) => Array.from(s, (c) => c.charCodeAt(0));
    expect(levenshtein(enc('kitten'), enc('sitting'))).toBe(3);
    expect(levenshtein(enc('abc'), enc('bca'))).toBe(2);
    expect(levenshtein([], [1, 2])).toBe(2);
    expect(levenshtein([5, 6], [5, 6])).toBe(0);
  });

  it('matches hand-computed values on a hand-made trajectory', () => {
    // Canvas of 4: commits {0,1}, then {3}, then {2}: jumps 2, 1, 1.
    const row = traj(
      'a#0',
      [10],
      [4, 5, 6, 7],
      [step(0, 0, [0, 1], [4, 5]), step(0, 1, [3], [7]), step(0, 2, [2], [6])],
    );
    const s = levSurrogate(row, M);
    expect(s.pairs).toBe(3);
    expect(s.meanJump).toBeCloseTo(4 / 3, 12);
    expect(s.meanInverse).toBeCloseTo((1 / 2 + 1 + 1) / 3, 12);
    // One step filling everything: a single jump of 4.
    const oneShot = traj('a#1', [10], [4, 5, 6, 7], [step(0, 0, [0, 1, 2, 3], [4, 5, 6, 7])]);
    expect(levSurrogate(oneShot, M).meanInverse).toBeCloseTo(1 / 4, 12);
    // A stall (no visible change) is counted but not inverted.
    const st = levSurrogateOfStates([
      [M, M],
      [M, M],
      [1, M],
    ]);
    expect(st).toEqual({ meanInverse: 1, meanJump: 0.5, pairs: 2, stalls: 1 });
  });

  it('step rows hold the state before each commit, cut at the end of the block', () => {
    const row = traj(
      'b#0',
      [9, 8],
      [4, 5, 6, 7],
      [step(0, 0, [1], [5]), step(0, 1, [0], [4]), step(1, 0, [2, 3], [6, 7])],
    );
    const rows = stepRows(row, M);
    expect(rows.map((r) => Array.from(r.input))).toEqual([
      [9, 8, M, M],
      [9, 8, M, 5],
      [9, 8, 4, 5, M, M],
    ]);
    expect(Array.from(rows[2].targets)).toEqual([-1, -1, -1, -1, 6, 7]);
  });
});

const TINY = tinyModelConfig({ mask_token_id: M });

describe.skipIf(!haveNative)('ELBO scoring', () => {
  const ckpt = join(dir, 'ckpt');
  const rows = [
    traj(
      'p#0',
      [10, 11, 12],
      [4, 5, 6, 7, 8],
      [step(0, 0, [1, 2], [5, 6]), step(0, 1, [0, 3], [4, 7]), step(1, 0, [4], [8])],
    ),
    traj('p#1', [10, 11, 12], [20, 21, 22, 23], [step(0, 0, [0, 1, 2, 3], [20, 21, 22, 23])]),
    traj('q#0', [30], [31, 32], [step(0, 0, [1], [32]), step(0, 1, [0], [31])]),
  ];

  it('equals minus the trainer loss on the same states', async () => {
    writeFileSync(join(dir, 'config.json'), JSON.stringify(TINY));
    const init = spawnSync(
      bin,
      ['init', '--config', join(dir, 'config.json'), '--out', ckpt, '--seed', '3'],
      {
        encoding: 'utf8',
      },
    );
    expect(init.status, init.stderr).toBe(0);
    const engine = await EngineClient.start({ ckpt, binary: bin });
    const scored = await elboOfTrajectories(rows, engine).finally(() => engine.close());
    // Independent: every step row through the trainer's loss with unit weights; loss * count = -sum log p.
    const steps = rows.flatMap((r) => stepRows(r, M));
    const T = Math.max(...steps.map((s) => s.input.length));
    const ids = new Int32Array(steps.length * T);
    const tgt = new Int32Array(steps.length * T).fill(-1);
    const seg = new Int32Array(steps.length * T).fill(-1);
    steps.forEach((s, i) => {
      ids.set(s.input, i * T);
      tgt.set(s.targets, i * T);
      seg.fill(0, i * T, i * T + s.input.length);
    });
    writeNpy(join(dir, 'ids.npy'), ids, [steps.length, T]);
    writeNpy(join(dir, 'tgt.npy'), tgt, [steps.length, T]);
    writeNpy(join(dir, 'seg.npy'), seg, [steps.length, T]);
    writeNpy(join(dir, 'w.npy'), new Float32Array(steps.length * T).fill(1), [steps.length, T]);
    const fw = spawnSync(
      bin,
      [
        'forward',
        '--ckpt',
        ckpt,
        '--tokens',
        join(dir, 'ids.npy'),
        '--targets',
        join(dir, 'tgt.npy'),
        '--weights',
        join(dir, 'w.npy'),
        '--segments',
        join(dir, 'seg.npy'),
      ],
      { encoding: 'utf8' },
    );
    expect(fw.status, fw.stderr).toBe(0);
    const loss = JSON.parse(fw.stdout.trim().split('\n').pop()!) as { loss: number; targets: number };
    expect(loss.targets).toBe(11);
    const total = scored.reduce((a, s) => a + s.elbo, 0);
    expect(total).toBeCloseTo(-loss.loss * loss.targets, 3);
    expect(scored.map((s) => s.positions)).toEqual([5, 4, 2]);
    // A random model spreads mass over ~37 tokens: each position costs about ln(37) nats.
    expect(total / 11).toBeLessThan(-Math.log(37) + 1);
    expect(total / 11).toBeGreaterThan(-Math.log(37) - 1);
  });

  it('scores round-trip through the Arrow file with the extra columns', async () => {
    const scored = await scoreTrajectories(rows, { ckpt, bin, noVerifier: true });
    const path = join(dir, 'scored.arrow');
    await writeScored(path, scored);
    const back = await readScored(path);
    expect(back.map((r) => [r.id, r.tau, r.elbo, r.levSurrogate, r.extras.levMeanJump])).toEqual(
      scored.map((r) => [r.id, r.tau, r.elbo, r.levSurrogate, r.extras.levMeanJump]),
    );
    expect(back[1].tau).toBe(1);
    expect(back[1].levSurrogate).toBeCloseTo(0.25, 12);
    expect(back[0].verifier).toBeNull();
  });
});
