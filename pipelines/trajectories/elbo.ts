/**
 * ELBO of trajectories under a checkpoint: every commit step becomes one row (the state the sampler saw,
 * the tokens it committed), scored natively in batches by `sdt-native score`; a trajectory's ELBO is the
 * sum of its steps' log-probabilities (natural log). Where the binary predates `score`, the same numbers
 * come from `sdt-native forward` logits and a log-softmax here.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../../common/errors.ts';
import type { TrajectoryRow } from '../../schemas/trajectory.ts';
import { readNpyFloat32, writeNpy } from './npy.ts';
import { replayStates } from './record.ts';

export interface CheckpointIds {
  mask: number;
  pad: number;
  maxPositions: number;
  vocab: number;
}

export function checkpointIds(ckpt: string): CheckpointIds {
  const path = join(ckpt, 'config.json');
  let cfg: Record<string, unknown>;
  try {
    cfg = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new UserError(
      `${path}: ${(err as Error).message}; point --ckpt at a checkpoint written by sdt train.`,
    );
  }
  const mask = cfg.mask_token_id;
  if (typeof mask !== 'number') throw new UserError(`${path}: no mask_token_id; not a diffusion checkpoint.`);
  return {
    mask,
    pad: typeof cfg.pad_token_id === 'number' && cfg.pad_token_id >= 0 ? cfg.pad_token_id : 0,
    maxPositions: Number(cfg.max_position_embeddings ?? 1 << 30),
    vocab: Number(cfg.vocab_size ?? 32768),
  };
}

/** One scoring row: the model input before a commit step and the tokens committed (-1 elsewhere). */
export interface StepRow {
  input: Int32Array;
  targets: Int32Array;
}

/**
 * The commit steps of a trajectory as scoring rows. The input is the prompt and the canvas up to the end
 * of the step's block (later blocks do not exist yet for a block-wise sampler), with <|mask|> where
 * nothing is committed; a prompt too long for the context loses its first tokens, as in the sampler.
 */
export function stepRows(row: TrajectoryRow, mask: number, maxPositions = 1 << 30): StepRow[] {
  const after = replayStates(row, mask);
  const blockEnd = new Map<number, number>();
  for (const s of row.steps) {
    let end = blockEnd.get(s.block) ?? 0;
    for (const p of s.positions) end = Math.max(end, p + 1);
    blockEnd.set(s.block, end);
  }
  const width = after.length > 0 ? after[0].length : 0;
  const out: StepRow[] = [];
  for (let i = 0; i < row.steps.length; i++) {
    const s = row.steps[i];
    if (s.kind !== 'commit' || s.positions.length === 0) continue;
    const before = i === 0 ? new Int32Array(width).fill(mask) : after[i - 1];
    const canvas = before.subarray(0, blockEnd.get(s.block) ?? width);
    const clip = Math.max(0, row.prompt.length + canvas.length - maxPositions);
    const prompt = row.prompt.subarray(Math.min(clip, row.prompt.length));
    const input = new Int32Array(prompt.length + canvas.length);
    input.set(prompt, 0);
    input.set(canvas, prompt.length);
    const targets = new Int32Array(input.length).fill(-1);
    for (let k = 0; k < s.positions.length; k++) targets[prompt.length + s.positions[k]] = s.tokens[k];
    out.push({ input, targets });
  }
  return out;
}

const scoreSupport = new Map<string, boolean>();

/** Whether this sdt-native build has the `score` subcommand (native/src/score). */
export function hasNativeScore(bin: string): boolean {
  let known = scoreSupport.get(bin);
  if (known === undefined) {
    const r = spawnSync(bin, ['--help'], { encoding: 'utf8' });
    known = /^\s+score\s/m.test(r.stdout ?? '');
    scoreSupport.set(bin, known);
  }
  return known;
}

function runNative(bin: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('error', (e) => reject(new UserError(`cannot start ${bin}: ${e.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else
        reject(
          new UserError(
            `sdt-native ${args[0]} failed (exit ${code}): ${err.trim().split('\n').slice(-3).join(' | ')}`,
          ),
        );
    });
  });
}

/** Pads rows to one width: pad id as input, -1 as target, segment -1 (attends to nothing) on padding. */
function padRows(
  rows: StepRow[],
  pad: number,
): { ids: Int32Array; tgt: Int32Array; seg: Int32Array; T: number } {
  const T = Math.max(1, ...rows.map((r) => r.input.length));
  const ids = new Int32Array(rows.length * T).fill(pad);
  const tgt = new Int32Array(rows.length * T).fill(-1);
  const seg = new Int32Array(rows.length * T).fill(-1);
  rows.forEach((r, i) => {
    ids.set(r.input, i * T);
    tgt.set(r.targets, i * T);
    seg.fill(0, i * T, i * T + r.input.length);
  });
  return { ids, tgt, seg, T };
}

export interface ScoreBackendOptions {
  bin: string;
  ckpt: string;
  pad: number;
  /** Vocabulary size (sizes the fallback's chunks); default 32768. */
  vocab?: number;
  /** Rows per native call (bounds the temporary files and, for the fallback, the logits in memory). */
  chunkRows?: number;
  /** Force the `forward` fallback (tests compare both). */
  forceForward?: boolean;
}

/** Sum of log p(committed tokens | state) for each step row. */
export async function scoreStepRows(rows: StepRow[], opts: ScoreBackendOptions): Promise<Float64Array> {
  const out = new Float64Array(rows.length);
  if (rows.length === 0) return out;
  const native = !opts.forceForward && hasNativeScore(opts.bin);
  // The fallback moves [rows, T, vocab] float32 logits through a file: keep that near 64 MiB.
  const T = Math.max(1, ...rows.map((r) => r.input.length));
  const logitsRow = 4 * T * Math.max(1, opts.vocab ?? 32768);
  const fallbackRows = Math.max(1, Math.floor((64 << 20) / logitsRow));
  // `sdt-native score` may hold a call's logits at once: bound them to ~256 MiB as well.
  const nativeRows = Math.min(512, Math.max(1, Math.floor((256 << 20) / logitsRow)));
  const chunk = opts.chunkRows ?? (native ? nativeRows : fallbackRows);
  const dir = await mkdtemp(join(tmpdir(), 'sdt-score-'));
  try {
    // Rows of similar length share a chunk, so little compute goes into padding.
    const byLength = rows
      .map((_, i) => i)
      .sort((a, b) => rows[a].input.length - rows[b].input.length || a - b);
    for (let r0 = 0; r0 < rows.length; r0 += chunk) {
      const idx = byLength.slice(r0, r0 + chunk);
      const part = idx.map((i) => rows[i]);
      const { ids, tgt, seg, T } = padRows(part, opts.pad);
      const shape = [part.length, T];
      await writeNpy(join(dir, 's.npy'), ids, shape);
      await writeNpy(join(dir, 'g.npy'), seg, shape);
      if (native) {
        await writeNpy(join(dir, 't.npy'), tgt, shape);
        await runNative(opts.bin, [
          'score',
          '--ckpt',
          opts.ckpt,
          '--states',
          join(dir, 's.npy'),
          '--targets',
          join(dir, 't.npy'),
          '--segments',
          join(dir, 'g.npy'),
          '--out',
          join(dir, 'lp.npy'),
        ]);
        const { data } = await readNpyFloat32(join(dir, 'lp.npy'));
        for (let i = 0; i < part.length; i++) out[idx[i]] = data[i];
      } else {
        await runNative(opts.bin, [
          'forward',
          '--ckpt',
          opts.ckpt,
          '--tokens',
          join(dir, 's.npy'),
          '--segments',
          join(dir, 'g.npy'),
          '--out',
          join(dir, 'logits.npy'),
        ]);
        const { data, shape: ls } = await readNpyFloat32(join(dir, 'logits.npy'));
        const V = ls[2];
        for (let i = 0; i < part.length; i++) {
          let lp = 0;
          for (let t = 0; t < T; t++) {
            const y = tgt[i * T + t];
            if (y < 0) continue;
            lp += logSoftmaxAt(data, (i * T + t) * V, V, y);
          }
          out[idx[i]] = lp;
        }
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return out;
}

function logSoftmaxAt(logits: Float32Array, off: number, V: number, y: number): number {
  let mx = Number.NEGATIVE_INFINITY;
  for (let v = 0; v < V; v++) if (logits[off + v] > mx) mx = logits[off + v];
  let z = 0;
  for (let v = 0; v < V; v++) {
    const l = logits[off + v];
    if (Number.isFinite(l)) z += Math.exp(l - mx);
  }
  return logits[off + y] - mx - Math.log(z);
}

export interface TrajectoryElbo {
  elbo: number;
  /** Committed positions that entered the sum. */
  positions: number;
  /** Per commit step log-probabilities. */
  steps: number[];
}

/** ELBO of each trajectory under the checkpoint, all steps of all trajectories in shared native batches. */
export async function elboOfTrajectories(
  rows: TrajectoryRow[],
  opts: Omit<ScoreBackendOptions, 'pad'>,
): Promise<TrajectoryElbo[]> {
  const ids = checkpointIds(opts.ckpt);
  const perRow = rows.map((r) => stepRows(r, ids.mask, ids.maxPositions));
  const flat = perRow.flat();
  const lp = await scoreStepRows(flat, { ...opts, pad: ids.pad, vocab: ids.vocab });
  let at = 0;
  return perRow.map((steps) => {
    const s = Array.from(lp.subarray(at, at + steps.length));
    at += steps.length;
    let positions = 0;
    for (const r of steps) for (const t of r.targets) if (t >= 0) positions++;
    return { elbo: s.reduce((a, b) => a + b, 0), positions, steps: s };
  });
}
