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
import { nativeOrBuild, stdlibDataset, tempDir, tinyTrainArgs } from './train-helpers.ts';
import { readNpyFloat32, writeNpy } from './train-npy.ts';

const bin = nativeOrBuild();
let dir = '';
let dataset = '';

const tinyRun = (out: string, extra: string[] = []): string[] => tinyTrainArgs(dataset, out, 8, extra);

/** -log softmax(row)[target] in nats; -inf entries (the mask column) take no mass. */
function crossEntropy(row: Float32Array, target: number): number {
  let max = Number.NEGATIVE_INFINITY;
  for (const x of row) if (x > max) max = x;
  let sum = 0;
  for (const x of row) if (Number.isFinite(x)) sum += Math.exp(x - max);
  return max + Math.log(sum) - row[target];
}

/** `sdt-native forward` logits of token rows (files under the test's temp dir, named by `tag`). */
function nativeLogits(ckpt: string, tokens: Int32Array, segments: Int32Array, shape: number[], tag: string) {
  const p = (name: string) => join(dir, `${tag}-${name}.npy`);
  writeNpy(p('tokens'), tokens, shape);
  writeNpy(p('segments'), segments, shape);
  const args = [
    'forward',
    '--ckpt',
    ckpt,
    '--tokens',
    p('tokens'),
    '--segments',
    p('segments'),
    '--out',
    p('logits'),
  ];
  const r = spawnSync(bin!, args);
  expect(r.status, String(r.stderr)).toBe(0);
  const { data: logits, shape: out } = readNpyFloat32(p('logits'));
  return { logits, V: out[2] };
}

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
      const ckpt = join(run, 'checkpoints', 'step-000004');
      const { logits, V } = nativeLogits(ckpt, input, segment, [B, T], `elbo-${k}`);
      for (let i = 0; i < B * T; i++) {
        if (weight[i] === 0) continue;
        ceSum += weight[i] * crossEntropy(logits.subarray(i * V, (i + 1) * V), target[i]);
      }
      denominator += f.denominator;
    });
    const expected = ceSum / denominator / Math.LN2;
    const logged = readLog(run).find((r) => r.type === 'eval' && r.step === 4 && r.group === 'elbo');
    expect(logged).toBeDefined();
    expect((logged as { bits_per_token: number }).bits_per_token).toBeCloseTo(expected, 4);
  });

  it('two-stream layout: the logged ELBO equals block-mode forwards of each noisy block after its clean prefix', async () => {
    const run = join(dir, 'two-stream');
    const extra = ['--attention', 'block', '--block-size', '8', '--two-stream', '--mask-fraction', '1'];
    expect(await main(tinyRun(run, extra))).toBe(0);
    expect(JSON.parse(readFileSync(join(run, 'native-train.json'), 'utf8')).layout).toBe('two-stream');
    const ckpt = join(run, 'checkpoints', 'step-000004');
    // The checkpoint is a plain block model: the layout belongs to training only.
    expect(JSON.parse(readFileSync(join(ckpt, 'config.json'), 'utf8')).attention_mode).toBe('block');
    const cfg = await loadConfigFile(join(run, 'config.json'));
    const data = await loadTrainData(dataset, cfg.data.seq_len);
    const ctx = { cfg, specials: data.specials, editVocab: data.editVocab, train: data.train };
    const frames = buildValidationFrames(ctx, data.validation, 'elbo');
    const L = cfg.data.seq_len;
    const bs = cfg.model.block_size;
    let ceSum = 0;
    let denominator = 0;
    let n = 0;
    for (const f of frames) {
      expect(f.batch.T).toBe(2 * L);
      for (let r = 0; r < f.batch.B; r++) {
        const at = (a: Int32Array | Float32Array, from: number, to: number) =>
          Array.from(a.subarray(r * 2 * L + from, r * 2 * L + to));
        for (let k = 0; k * bs < L; k++) {
          const end = Math.min(L, (k + 1) * bs);
          // What decoding block k sees: the clean blocks before it, then the noisy block.
          const seq = [...at(f.batch.input, L, L + k * bs), ...at(f.batch.input, k * bs, end)];
          const seg = [...at(f.batch.segment, L, L + k * bs), ...at(f.batch.segment, k * bs, end)];
          const { logits, V } = nativeLogits(
            ckpt,
            Int32Array.from(seq),
            Int32Array.from(seg),
            [1, end],
            `ts-${n++}`,
          );
          for (let t = k * bs; t < end; t++) {
            const i = r * 2 * L + t;
            if (f.batch.weight[i] === 0) continue;
            ceSum += f.batch.weight[i] * crossEntropy(logits.subarray(t * V, (t + 1) * V), f.batch.target[i]);
          }
        }
      }
      denominator += f.denominator;
    }
    const expected = ceSum / denominator / Math.LN2;
    const logged = readLog(run).find((x) => x.type === 'eval' && x.step === 4 && x.group === 'elbo');
    expect(logged).toBeDefined();
    expect((logged as { bits_per_token: number }).bits_per_token).toBeCloseTo(expected, 4);
  });
});
