/**
 * `sdt train --dry-run`: what a run would cost before it starts. Parameters (counted as the native model
 * lays them out), FLOPs per token, tokens to see and an estimated time. The time comes from a few real steps of
 * sdt-native on the run's own batches when the binary is there, otherwise from a stated throughput assumption.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { atomicWriteJson } from '../common/fs.ts';
import { formatDuration } from '../common/progress.ts';
import { type TrainConfig, totalSteps, totalTokens } from './config.ts';
import { editStageStart } from './curriculum.ts';
import type { TrainData } from './data.ts';
import { EpochOrder, trainFrame } from './feed.ts';
import { countParameters, trainFlopsPerToken } from './model-size.ts';
import { nativeTrainConfig } from './native-config.ts';
import { NativeProcess } from './native-process.ts';
import { encodeEnd, encodeHeader, encodeTrain } from './stream-encoder.ts';
import { unigramEntropyBits } from './unigram.ts';

/** Used when sdt-native cannot be run: a conservative sustained fp32 rate for 2 cores with OpenBLAS. */
export const ASSUMED_GFLOPS = 20;
const MEASURE_STEPS = 3;

export interface DryRunReport {
  parameters: ReturnType<typeof countParameters>;
  flopsPerToken: number;
  steps: number;
  tokens: number;
  editStageStart: number;
  trainTokensPerEpoch: number;
  unigramBits: number;
  tokensPerSecond: number;
  rateSource: string;
  estimatedSeconds: number;
}

/** Tokens per second of `sdt-native train` on this config, measured on the run's first batches. */
export async function measureTokensPerSecond(
  cfg: TrainConfig,
  data: TrainData,
  nativeBin: string,
): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'sdt-dry-run-'));
  try {
    const probe: TrainConfig = { ...cfg, steps: MEASURE_STEPS, checkpoint: { every: 0, keep: 1 } };
    const cfgPath = join(dir, 'native-train.json');
    await atomicWriteJson(
      cfgPath,
      nativeTrainConfig(probe, {
        vocabSize: data.vocabSize,
        specials: data.specials,
        tokenizerPath: resolve(data.tokenizerPath),
      }),
    );
    const rates: number[] = [];
    const native = new NativeProcess(
      nativeBin,
      ['train', '--stream', '-', '--config', cfgPath, '--out', join(dir, 'run')],
      (ev) => {
        if (ev.event === 'step') rates.push(Number(ev.tokens_per_s));
      },
      { env: { ...process.env, OMP_NUM_THREADS: String(cfg.threads) } },
    );
    const ctx = { cfg: probe, specials: data.specials, editVocab: data.editVocab, train: data.train };
    const order = new EpochOrder(cfg.seed, data.train.count);
    let ok = await native.write(encodeHeader(0));
    for (let f = 0; ok && f < MEASURE_STEPS * cfg.batch.micro_batches; f++) {
      const frame = trainFrame(ctx, order, f);
      ok = await native.write(encodeTrain(frame.batch, frame.step, probe));
    }
    if (ok) await native.write(encodeEnd());
    native.endInput();
    const exit = await native.exit;
    if (exit.code !== 0 || rates.length === 0) {
      throw new Error(`sdt-native exited with ${exit.code}: ${native.stderrTail().slice(-3).join(' | ')}`);
    }
    // The first step pays for allocation and page faults; the later ones are the steady state.
    const steady = rates.length > 1 ? rates.slice(1) : rates;
    return steady.reduce((a, b) => a + b, 0) / steady.length;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function dryRun(
  cfg: TrainConfig,
  data: TrainData,
  nativeBin: string | undefined,
): Promise<DryRunReport> {
  const parameters = countParameters(cfg.model, data.vocabSize);
  const flopsPerToken = trainFlopsPerToken(cfg.model, data.vocabSize, cfg.data.seq_len);
  const steps = totalSteps(cfg);
  const tokens = totalTokens(cfg);
  let tokensPerSecond = (ASSUMED_GFLOPS * 1e9) / flopsPerToken;
  let rateSource = `assumed ${ASSUMED_GFLOPS} GFLOP/s sustained (sdt-native not available)`;
  if (nativeBin) {
    try {
      tokensPerSecond = await measureTokensPerSecond(cfg, data, nativeBin);
      rateSource = `measured: ${MEASURE_STEPS} steps of sdt-native on this machine (${cfg.threads} threads)`;
    } catch (err) {
      rateSource = `assumed ${ASSUMED_GFLOPS} GFLOP/s sustained (measuring failed: ${(err as Error).message})`;
    }
  }
  return {
    parameters,
    flopsPerToken,
    steps,
    tokens,
    editStageStart: editStageStart(cfg),
    trainTokensPerEpoch: data.train.count * cfg.data.seq_len,
    unigramBits: unigramEntropyBits(data.train, [data.specials.pad, data.specials.bos]),
    tokensPerSecond,
    rateSource,
    estimatedSeconds: tokens / tokensPerSecond,
  };
}

const fmt = (n: number): string => n.toLocaleString('en-US');
const si = (n: number): string =>
  n >= 1e9
    ? `${(n / 1e9).toFixed(2)} G`
    : n >= 1e6
      ? `${(n / 1e6).toFixed(2)} M`
      : `${(n / 1e3).toFixed(1)} k`;

export function formatDryRun(cfg: TrainConfig, r: DryRunReport): string {
  const p = r.parameters;
  const lines = [
    `model: ${cfg.model.preset} preset, hidden ${cfg.model.hidden_size}, ${cfg.model.num_hidden_layers} layers, ${cfg.model.num_attention_heads} heads (${cfg.model.num_key_value_heads} kv), mlp ${cfg.model.intermediate_size}`,
    `parameters: ${fmt(p.total)} (embedding ${fmt(p.embedding)}, layers ${fmt(p.layers)}, final norm ${fmt(p.finalNorm)}, lm_head ${p.lmHead ? fmt(p.lmHead) : 'tied'})`,
    `FLOPs per token: ${si(r.flopsPerToken)}FLOP (6 x matmul parameters + 12 x layers x seq_len x hidden for attention)`,
    `objective: ${cfg.objective}${cfg.objective === 'diffusion' ? `; mask stage steps 0-${r.editStageStart - 1}, edit stage (edit mix ${cfg.curriculum.edit_mix}) from step ${r.editStageStart}` : ''}`,
    `steps: ${fmt(r.steps)} x ${cfg.batch.batch_size} sequences x ${cfg.data.seq_len} tokens = ${fmt(r.tokens)} tokens (${(r.tokens / r.trainTokensPerEpoch).toFixed(2)} epochs of ${fmt(r.trainTokensPerEpoch)})`,
    `total compute: ${si(r.flopsPerToken * r.tokens)}FLOP`,
    `unigram entropy of the training data: ${r.unigramBits.toFixed(3)} bits/token`,
    `throughput: ${fmt(Math.round(r.tokensPerSecond))} tokens/s (${r.rateSource})`,
    `estimated time: ${formatDuration(r.estimatedSeconds)} (training only; validation adds ${cfg.validation.batches} forward batches every ${cfg.validation.every || totalSteps(cfg)} steps)`,
  ];
  return `${lines.join('\n')}\n`;
}
