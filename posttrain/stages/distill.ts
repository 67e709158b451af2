/**
 * `sdt train --stage distill`: constrained-order fine-tuning. Starting from a checkpoint's weights (fresh
 * optimizer), train on a distillation set (posttrain/trajectories/distill.ts) mixed with a share of
 * ordinary mask-corrupted windows as an anchor (`anchorExample`: on a block model, as block-wise decoding
 * sees them), through `sdt-native train --init-from`.
 * The batches are written to RUN/stream.bin first (schemas/stream.ts) so a run can be replayed exactly.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../../common/errors.ts';
import { Rng } from '../../pipelines/corrupt/rng.ts';
import type { CorruptSpecials } from '../../pipelines/corrupt/types.ts';
import {
  CHECKPOINT_FILES,
  type CheckpointConfig,
  checkedTrainConfig,
  checkpointSpecials,
  latestCheckpoint,
  type NativeTrainConfig,
  readCheckpointConfig,
} from '../../schemas/checkpoint.ts';
import { StreamWriter } from '../../schemas/stream.ts';
import { type NativeEvent, NativeProcess } from '../../trainer/native-process.ts';
import type { DistillExample } from '../trajectories/distill.ts';
import { anchorExample } from './anchor.ts';

export interface DistillStageOptions {
  /** Checkpoint whose weights start the stage. */
  ckpt: string;
  examples: DistillExample[];
  /** Ordinary token windows (x0, no padding needed) for the mask-objective anchor. */
  anchor?: Int32Array[];
  /** Share of rows drawn from the anchor (0..1). */
  anchorShare: number;
  specials: CorruptSpecials;
  /** Sequence length of a batch row; longer examples are cut from the left (the prompt side). */
  seqLen: number;
  batch: number;
  steps: number;
  lr: number;
  out: string;
  bin: string;
  seed: number;
  threads?: number;
  onEvent?: (e: NativeEvent) => void;
}

export interface DistillStageResult {
  /** The final checkpoint directory. */
  ckpt: string;
  losses: number[];
  rowsFromDistill: number;
  rowsFromAnchor: number;
}

/** One training row of width T: the example left-cut to T, padded with target -1, weight 0, segment -1. */
function placeRow(
  ex: { input: Int32Array; target: Int32Array; weight: Float32Array },
  T: number,
  pad: number,
  at: number,
  ids: Int32Array,
  tgt: Int32Array,
  w: Float32Array,
  seg: Int32Array,
): void {
  const cut = Math.max(0, ex.input.length - T);
  const n = ex.input.length - cut;
  ids.fill(pad, at, at + T);
  tgt.fill(-1, at, at + T);
  w.fill(0, at, at + T);
  seg.fill(-1, at, at + T);
  ids.set(ex.input.subarray(cut), at);
  tgt.set(ex.target.subarray(cut), at);
  w.set(ex.weight.subarray(cut), at);
  seg.fill(0, at, at + n);
}

/** Writes the stage's stream: `steps` train frames of `batch` rows, then an end frame. */
export async function writeDistillStream(
  path: string,
  o: DistillStageOptions,
  model: CheckpointConfig,
): Promise<{ distill: number; anchor: number }> {
  if (o.examples.length === 0 && !(o.anchor && o.anchor.length > 0)) {
    throw new UserError('distill stage: no examples and no anchor data; nothing to train on.');
  }
  const rng = new Rng(o.seed, 0xd157);
  const anchorBlock = model.attention_mode === 'block' ? model.block_size : undefined;
  const order = o.examples.map((_, i) => i);
  let next = order.length;
  const shuffle = () => {
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rng.float() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    next = 0;
  };
  const T = o.seqLen;
  const w = await StreamWriter.toFile(path);
  let distill = 0;
  let anchor = 0;
  for (let s = 0; s < o.steps; s++) {
    const ids = new Int32Array(o.batch * T);
    const tgt = new Int32Array(o.batch * T);
    const wt = new Float32Array(o.batch * T);
    const seg = new Int32Array(o.batch * T);
    for (let r = 0; r < o.batch; r++) {
      const useAnchor =
        o.examples.length === 0 || (o.anchor && o.anchor.length > 0 && rng.float() < o.anchorShare);
      if (useAnchor && o.anchor && o.anchor.length > 0) {
        const x0 = o.anchor[Math.floor(rng.float() * o.anchor.length)].subarray(0, T);
        placeRow(
          anchorExample(x0, rng, o.specials, anchorBlock),
          T,
          o.specials.pad,
          r * T,
          ids,
          tgt,
          wt,
          seg,
        );
        anchor++;
      } else {
        if (next >= order.length) shuffle();
        placeRow(o.examples[order[next++]], T, o.specials.pad, r * T, ids, tgt, wt, seg);
        distill++;
      }
    }
    await w.writeTrain({
      B: o.batch,
      T,
      tag: 'distill',
      inputIds: ids,
      targetIds: tgt,
      weights: wt,
      segmentIds: seg,
    });
  }
  await w.end();
  return { distill, anchor };
}

/** The TRAIN.json of the stage: the checkpoint's own model config, a constant-ish short schedule. */
export function distillTrainConfig(o: DistillStageOptions, model: CheckpointConfig): NativeTrainConfig {
  const tok = join(o.ckpt, CHECKPOINT_FILES.tokenizer);
  return checkedTrainConfig({
    model,
    ...(existsSync(tok) ? { tokenizer: tok } : {}),
    total_steps: o.steps,
    micro_batches: 1,
    schedule: { lr: o.lr, min_lr: o.lr / 10, warmup_steps: 0 },
    checkpoint_every: 0,
    keep_checkpoints: 1,
    seed: o.seed,
    threads: o.threads ?? 0,
  });
}

export async function runDistillStage(o: DistillStageOptions): Promise<DistillStageResult> {
  if (!(o.steps >= 1) || !(o.batch >= 1) || !(o.seqLen >= 2)) {
    throw new UserError('distill stage: steps, batch must be >= 1 and seq-len >= 2.');
  }
  if (!(o.anchorShare >= 0 && o.anchorShare <= 1))
    throw new UserError('distill stage: --anchor-share must be in [0, 1].');
  if (latestCheckpoint(o.out)) {
    throw new UserError(`${o.out} already holds checkpoints; choose another --out for the stage.`);
  }
  await mkdir(o.out, { recursive: true });
  const streamPath = join(o.out, 'stream.bin');
  const model = await readCheckpointConfig(o.ckpt);
  const counts = await writeDistillStream(streamPath, o, model);
  const trainPath = join(o.out, 'TRAIN.json');
  await writeFile(trainPath, `${JSON.stringify(distillTrainConfig(o, model), null, 2)}\n`);
  const losses: number[] = [];
  let error = '';
  const proc = new NativeProcess(
    o.bin,
    ['train', '--stream', streamPath, '--config', trainPath, '--out', o.out, '--init-from', o.ckpt],
    (e) => {
      if (e.event === 'step' && typeof e.loss === 'number') losses.push(e.loss);
      if (e.event === 'error') error = String(e.message ?? JSON.stringify(e));
      o.onEvent?.(e);
    },
  );
  proc.endInput();
  const exit = await proc.exit;
  if (exit.code !== 0) {
    throw new UserError(
      `sdt-native train (distill stage, ${o.out}) exited ${exit.code ?? exit.signal}: ${error || proc.stderrTail().slice(-5).join(' | ')}`,
    );
  }
  const last = latestCheckpoint(o.out);
  if (!last) throw new UserError(`${o.out}: sdt-native train finished without a checkpoint.`);
  return { ckpt: last.path, losses, rowsFromDistill: counts.distill, rowsFromAnchor: counts.anchor };
}

/** The special ids a checkpoint's config.json names (<|del|> defaults to the tokenizer's id 4). */
export async function specialsFromCheckpoint(ckpt: string): Promise<CorruptSpecials> {
  const c = await readCheckpointConfig(ckpt);
  if (typeof c.mask_token_id !== 'number')
    throw new UserError(`${ckpt}/config.json: no mask_token_id; not a diffusion checkpoint.`);
  return checkpointSpecials(c);
}
