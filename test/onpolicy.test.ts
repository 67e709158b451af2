/**
 * One on-policy round on a tiny random model, end to end (sample -> score -> select -> distil), with a
 * planted reward: the kept trajectories must become more likely under the updated weights (their ELBO
 * rises), the round log must carry its metrics, and a rerun resumes instead of redoing the rounds.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../bin/main.ts';
import { EngineClient } from '../engine/client.ts';
import { plainVocabulary } from '../pipelines/corrupt/vocab.ts';
import { specialsFromCheckpoint } from '../posttrain/stages/distill.ts';
import {
  advantageWeights,
  distinctBigramShare,
  rewardOf,
  roundPrompts,
  runOnPolicy,
  selectForDistillation,
} from '../posttrain/stages/onpolicy.ts';
import { elboOfTrajectories } from '../posttrain/trajectories/elbo.ts';
import { readRounds, speedupPoints } from '../posttrain/trajectories/report-speedup.ts';
import type { ScoredRow } from '../posttrain/trajectories/score.ts';
import { readScored } from '../posttrain/trajectories/score.ts';
import { builtNative, tinyModelConfig } from './native-build.ts';

// Empty when sdt-native cannot be built here (no CMake): the native tests skip.
const bin = builtNative() ?? '';
const haveNative = bin !== '';
const dir = mkdtempSync(join(tmpdir(), 'sdt-onpolicy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TINY = tinyModelConfig({ vocab_size: 48, attention_mode: 'block' });

describe.skipIf(!haveNative)('on-policy round', () => {
  it('raises the likelihood of the rewarded trajectories', async () => {
    writeFileSync(join(dir, 'config.json'), JSON.stringify(TINY));
    const ckpt = join(dir, 'ckpt');
    const init = spawnSync(
      bin,
      ['init', '--config', join(dir, 'config.json'), '--out', ckpt, '--seed', '9'],
      {
        encoding: 'utf8',
      },
    );
    expect(init.status, init.stderr).toBe(0);
    const specials = await specialsFromCheckpoint(ckpt);
    // Planted reward: how many generated tokens are in [10, 20).
    const reward = (r: { tokens: Int32Array }) => r.tokens.filter((t) => t >= 10 && t < 20).length;
    const anchor = [Int32Array.from({ length: 24 }, (_, i) => 5 + ((i * 7) % 40))];
    const out = join(dir, 'run');
    const opts = {
      ckpt,
      out,
      bin,
      prompts: [
        { id: 'a', prompt: '', tokens: Int32Array.from([1, 30, 31, 32]) },
        { id: 'b', prompt: '', tokens: Int32Array.from([1, 40, 41, 42]) },
      ],
      heldoutPrompts: [{ id: 'h', prompt: '', tokens: Int32Array.from([1, 35, 36, 37]) }],
      settings: { maxNew: 8, block: 4, temperature: 1, rule: 'fixed' as const, tokensPerStep: 2, eos: -1 },
      k: 4,
      rounds: 1,
      keepTop: 1,
      reward: 'lev' as const,
      requireVerified: false,
      customReward: reward,
      specials,
      vocab: plainVocabulary(TINY.vocab_size),
      anchor,
      anchorShare: 0,
      validation: anchor,
      stepsPerRound: 12,
      batch: 4,
      seqLen: 16,
      lr: 5e-3,
      augmentShare: 0,
      alpha: 0,
      seed: 4,
      quiet: true,
    };
    const records = await runOnPolicy(opts);
    expect(records.map((r) => r.round)).toEqual([0, 1]);
    expect(records[0].kept).toBe(2);
    expect(records[0].trajectories).toBe(8);
    // Fixed rule, 2 tokens per step, blocks of 4 aligned after 4-token prompts: 2 steps per block.
    expect(records[0].steps_per_block).toBeCloseTo(2, 12);
    expect(records[0].forward_passes_per_token).toBeGreaterThan(0);
    expect(records[1].step).toBe(12);
    expect(records[0].validation_loss).not.toBeNull();
    // Held-out prompts are decoded once each, greedily, with the same rule: also 2 steps per block.
    for (const r of records) {
      expect(r.heldout?.prompts).toBe(1);
      expect(r.heldout?.generated_tokens).toBe(8);
      expect(r.heldout?.steps_per_block).toBeCloseTo(2, 12);
      expect(r.heldout?.distinct_bigrams).toBeGreaterThan(0);
      expect(r.heldout?.distinct_bigrams).toBeLessThanOrEqual(1);
    }

    const pool = await readScored(join(out, 'round-000', 'scored.arrow'));
    const { kept } = selectForDistillation(pool, opts);
    // The kept ones are the per-prompt maxima of the planted reward.
    for (const k of kept) {
      const mine = pool.filter((r) => r.id.split('#')[0] === k.id.split('#')[0]);
      expect(reward(k)).toBe(Math.max(...mine.map(reward)));
    }
    const elbo = async (c: string) => {
      const engine = await EngineClient.start({ ckpt: c, binary: bin });
      return elboOfTrajectories(kept, engine).finally(() => engine.close());
    };
    const before = await elbo(ckpt);
    const after = await elbo(records[1].ckpt);
    for (let i = 0; i < kept.length; i++) expect(after[i].elbo).toBeGreaterThan(before[i].elbo);

    // The speedup report reads the same log: round 0 is the reference (speedup 1).
    const points = speedupPoints(await readRounds(out));
    expect(points.map((p) => p.step)).toEqual([0, 12]);
    expect(points[0].speedup).toBe(1);
    // Judged on the held-out prompts when every round measured them.
    expect(points[1].speedup).toBeCloseTo(
      records[0].heldout!.forward_passes_per_token / records[1].heldout!.forward_passes_per_token,
      12,
    );
    expect(await main(['report', 'speedup', out])).toBe(0);
    const svg = readFileSync(join(out, 'speedup.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.match(/<circle/g)).toHaveLength(4);

    // A rerun finds every round recorded and does nothing more.
    const again = await runOnPolicy(opts);
    expect(again).toHaveLength(2);
    expect(readFileSync(join(out, 'onpolicy.jsonl'), 'utf8').trim().split('\n')).toHaveLength(2);

    // More --rounds on the same run: the measure-only last round now trains, and the new last one measures.
    const more = await runOnPolicy({ ...opts, rounds: 2 });
    expect(more.map((r) => r.round)).toEqual([0, 1, 2]);
    expect(more.map((r) => r.step)).toEqual([0, 12, 24]);
    expect(new Set(more.map((r) => r.ckpt)).size).toBe(3);
    expect(readFileSync(join(out, 'onpolicy.jsonl'), 'utf8').trim().split('\n')).toHaveLength(3);

    // One prompt per round: round 0 samples only 'a', round 1 (the measuring one) only 'b'.
    const windowed = join(dir, 'run-windowed');
    const perRound = await runOnPolicy({ ...opts, out: windowed, promptsPerRound: 1 });
    expect(perRound.map((r) => r.trajectories)).toEqual([4, 4]);
    for (const [round, id] of [
      [0, 'a'],
      [1, 'b'],
    ] as const) {
      const rows = await readScored(join(windowed, `round-00${round}`, 'scored.arrow'));
      expect(new Set(rows.map((r) => r.id.split('#')[0]))).toEqual(new Set([id]));
    }
  }, 180_000);
});

describe('prompts per round (--prompts-per-round)', () => {
  it('gives each round the next window, covers the list before repeating, and wraps', () => {
    const all = Array.from({ length: 10 }, (_, i) => i);
    const windows = [0, 1, 2, 3, 4].map((r) => roundPrompts(all, 4, r));
    for (const w of windows) expect(w).toHaveLength(4);
    // Consecutive windows continue where the last one stopped, modulo the list.
    const flat = windows.flat();
    flat.forEach((v, i) => {
      expect(v).toBe(i % all.length);
    });
    // The first ceil(10 / 4) rounds together see every prompt.
    expect(new Set(windows.slice(0, 3).flat()).size).toBe(10);
  });
  it('uses every prompt every round when the window is 0 or not smaller than the list', () => {
    const all = ['a', 'b', 'c'];
    expect(roundPrompts(all, 0, 5)).toEqual(all);
    expect(roundPrompts(all, undefined, 1)).toEqual(all);
    expect(roundPrompts(all, 3, 2)).toEqual(all);
  });
});

describe('advantage weights (--update awr)', () => {
  const r = (id: string, tau: number) =>
    ({ id, tau, levSurrogate: tau / 8, steps: [] }) as unknown as ScoredRow;
  it('exp(A / beta), mean 1 per prompt, fewer steps weigh more', () => {
    const rows = [r('p#0', 2), r('p#1', 4), r('q#0', 7)];
    const w = advantageWeights(rows, rewardOf({ reward: 'tau' }), 1);
    // Prompt p: rewards -2, -4, mean -3: weights e^1, e^-1 over their mean.
    const z = (Math.E + 1 / Math.E) / 2;
    expect(w.get('p#0')).toBeCloseTo(Math.E / z, 12);
    expect(w.get('p#1')).toBeCloseTo(1 / Math.E / z, 12);
    // A prompt with one trajectory has advantage 0: weight 1.
    expect(w.get('q#0')).toBeCloseTo(1, 12);
    // A larger beta flattens the weights toward 1.
    const flat = advantageWeights(rows, rewardOf({ reward: 'tau' }), 100);
    expect(Math.abs(flat.get('p#0')! - 1)).toBeLessThan(0.011);
    // The surrogate (mean 1/d_lev, which grows with the number of steps) ranks the same way.
    const lev = advantageWeights(rows, rewardOf({ reward: 'lev' }), 0.1);
    expect(lev.get('p#0')!).toBeGreaterThan(lev.get('p#1')!);
  });
});

describe('collapse measure', () => {
  it('counts distinct bigrams against all bigrams of a completion', () => {
    expect(distinctBigramShare([1, 2, 1, 2, 1])).toBe(0.5);
    expect(distinctBigramShare([7, 7, 7, 7])).toBeCloseTo(1 / 3, 12);
    expect(distinctBigramShare([1, 2, 3, 4])).toBe(1);
    expect(distinctBigramShare([5])).toBe(1);
  });
});
