/**
 * End to end: `sdt train` on a tiny dataset built from stdlib files, through the real sdt-native binary.
 * Checks the run directory, that the curriculum reaches the edit stage, that a stopped and resumed run logs
 * the same losses as an uninterrupted one, bit for bit, and that the AR objective reports NLL.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { main } from '../bin/main.ts';
import { EngineClient } from '../engine/client.ts';
import { loadConfigFile } from '../trainer/config.ts';
import { loadTrainData } from '../trainer/data.ts';
import { readLog } from '../trainer/run-log.ts';
import { buildValidationFrames } from '../trainer/validation.ts';
import { nativeOrBuild, stdlibDataset, tempDir } from './train-helpers.ts';
import { readNpyFloat32, writeNpy } from './train-npy.ts';

const bin = nativeOrBuild();
let dir = '';
let dataset = '';

const tinyRun = (out: string, extra: string[] = []): string[] => [
  'train',
  '--dataset',
  dataset,
  '--model',
  'tiny',
  '--steps',
  '8',
  '--batch-size',
  '4',
  '--micro-batches',
  '2',
  '--seq-len',
  '32',
  '--val-every',
  '2',
  '--val-batches',
  '1',
  '--checkpoint-every',
  '4',
  '--mask-fraction',
  '0.5',
  '--threads',
  '1',
  '--warmup',
  '2',
  '--out',
  out,
  '--quiet',
  ...extra,
];

const stepLosses = (run: string) =>
  readLog(run)
    .filter((r) => r.type === 'step' || r.type === 'eval')
    .map((r) =>
      r.type === 'step' ? ['step', r.step, r.loss, r.grad_norm] : ['eval', r.step, r.group, r.loss],
    );

describe.skipIf(!bin)('sdt train end to end', () => {
  beforeAll(async () => {
    process.env.SDT_NATIVE = bin;
    dir = await tempDir('train-e2e');
    dataset = await stdlibDataset(dir, ['json/*.py'], 400);
  });

  it('trains through both stages and writes the run directory', async () => {
    const run = join(dir, 'full');
    expect(await main(tinyRun(run))).toBe(0);
    for (const f of ['config.json', 'log.jsonl', 'log.csv', 'loss.svg', 'summary.json', 'native.log'])
      expect(existsSync(join(run, f)), f).toBe(true);
    const ckpts = readdirSync(join(run, 'checkpoints')).filter((n) => n.startsWith('step-'));
    expect(ckpts).toEqual(['step-000004', 'step-000008']);
    expect(existsSync(join(run, 'checkpoints', 'step-000008', 'COMPLETE'))).toBe(true);
    const summary = JSON.parse(readFileSync(join(run, 'summary.json'), 'utf8'));
    expect(summary.status).toBe('complete');
    expect(summary.steps_done).toBe(8);
    expect(summary.tokens_seen).toBe(8 * 4 * 32);
    expect(Object.keys(summary.final_validation).sort()).toEqual(['edit', 'elbo']);
    const log = readLog(run);
    const stages = log.filter((r) => r.type === 'step').map((r) => (r as { stage: string }).stage);
    expect(stages).toEqual(['mask', 'mask', 'mask', 'mask', 'edit', 'edit', 'edit', 'edit']);
    const evalSteps = [...new Set(log.filter((r) => r.type === 'eval').map((r) => r.step))];
    expect(evalSteps).toEqual([0, 2, 4, 6, 7]);
    const svg = readFileSync(join(run, 'loss.svg'), 'utf8');
    expect(svg).toContain('<svg');
    expect(svg).toContain('edit stage');
    expect(readFileSync(join(run, 'log.csv'), 'utf8').split('\n')[0]).toMatch(/^type,step,stage,group,loss/);
  });

  it('a stopped and resumed run logs the same losses as an uninterrupted one', async () => {
    const full = join(dir, 'full');
    if (!existsSync(join(full, 'log.jsonl'))) expect(await main(tinyRun(full))).toBe(0);
    const run = join(dir, 'resumed');
    expect(await main(tinyRun(run, ['--stop-after', '3']))).toBe(0);
    const stopped = JSON.parse(readFileSync(join(run, 'summary.json'), 'utf8'));
    expect(stopped.status).toBe('stopped');
    expect(stopped.steps_done).toBe(3);
    // A second fresh start into the same directory is refused: it would mix two runs.
    expect(await main(tinyRun(run))).toBe(2);
    expect(await main(['train', '--resume', run, '--quiet'])).toBe(0);
    expect(stepLosses(run)).toEqual(stepLosses(full));
    expect(JSON.parse(readFileSync(join(run, 'summary.json'), 'utf8')).status).toBe('complete');
  });

  it('ar objective: causal training, NLL validation', async () => {
    const run = join(dir, 'ar');
    expect(await main(tinyRun(run, ['--objective', 'ar', '--steps', '4']))).toBe(0);
    const summary = JSON.parse(readFileSync(join(run, 'summary.json'), 'utf8'));
    expect(Object.keys(summary.final_validation)).toEqual(['nll']);
    const native = JSON.parse(readFileSync(join(run, 'native-train.json'), 'utf8'));
    expect(native.model.attention_mode).toBe('causal');
  });

  it('block attention: a block checkpoint the sampler decodes with its exact cache', async () => {
    const run = join(dir, 'block');
    expect(await main(tinyRun(run, ['--attention', 'block', '--block-size', '8', '--steps', '4']))).toBe(0);
    const native = JSON.parse(readFileSync(join(run, 'native-train.json'), 'utf8'));
    expect(native.model.attention_mode).toBe('block');
    expect(native.model.block_size).toBe(8);
    const ckpt = join(run, 'checkpoints', 'step-000004');
    const config = JSON.parse(readFileSync(join(ckpt, 'config.json'), 'utf8'));
    expect([config.attention_mode, config.block_size]).toEqual(['block', 8]);
    const client = await EngineClient.start({ ckpt });
    try {
      expect(client.info.attention_mode).toBe('block');
      const [c] = await client.generateTokens([[5, 6, 7]], { maxNew: 12, block: 8, eos: -1 });
      // Blocks aligned at multiples of 8 from position 0: the first completes the prompt's block.
      expect(c.blocks.map((b) => b.size)).toEqual([5, 7]);
    } finally {
      await client.close();
    }
  });

  it("the logged ELBO equals one computed from the checkpoint's logits", async () => {
    const run = join(dir, 'full');
    if (!existsSync(join(run, 'log.jsonl'))) expect(await main(tinyRun(run))).toBe(0);
    const cfg = await loadConfigFile(join(run, 'config.json'));
    const data = await loadTrainData(dataset, cfg.data.seq_len);
    const ctx = { cfg, specials: data.specials, editVocab: data.editVocab, train: data.train };
    const frames = buildValidationFrames(ctx, data.validation, 'elbo');
    // Cross-entropy in TypeScript from sdt-native's logits of the step-4 checkpoint (mask column is -inf).
    let ceSum = 0;
    let denominator = 0;
    frames.forEach((f, k) => {
      const { B, T, input, target, weight, segment } = f.batch;
      const p = (name: string) => join(dir, `elbo-${k}-${name}.npy`);
      writeNpy(p('tokens'), input, [B, T]);
      writeNpy(p('segments'), segment, [B, T]);
      const ckpt = join(run, 'checkpoints', 'step-000004');
      const r = spawnSync(bin!, [
        'forward',
        '--ckpt',
        ckpt,
        '--tokens',
        p('tokens'),
        '--segments',
        p('segments'),
        '--out',
        p('logits'),
      ]);
      expect(r.status, String(r.stderr)).toBe(0);
      const { data: logits, shape } = readNpyFloat32(p('logits'));
      const V = shape[2];
      for (let i = 0; i < B * T; i++) {
        if (weight[i] === 0) continue;
        const row = logits.subarray(i * V, (i + 1) * V);
        let max = Number.NEGATIVE_INFINITY;
        for (const x of row) if (x > max) max = x;
        let sum = 0;
        for (const x of row) if (Number.isFinite(x)) sum += Math.exp(x - max);
        ceSum += weight[i] * (max + Math.log(sum) - row[target[i]]);
      }
      denominator += f.denominator;
    });
    const expected = ceSum / denominator / Math.LN2;
    const logged = readLog(run).find((r) => r.type === 'eval' && r.step === 4 && r.group === 'elbo');
    expect(logged).toBeDefined();
    expect((logged as { bits_per_token: number }).bits_per_token).toBeCloseTo(expected, 4);
  });
});
