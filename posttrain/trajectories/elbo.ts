/**
 * ELBO of trajectories under a checkpoint: every commit step becomes one row (the state the sampler saw,
 * the tokens it committed), scored in batches by the engine's score op (schemas/engine.md); a trajectory's
 * ELBO is the sum of its steps' log-probabilities (natural log).
 */
import { type EngineClient, packRows } from '../../engine/client.ts';
import type { TrajectoryRow } from '../../schemas/trajectory.ts';
import { replayStates } from './record.ts';

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

/**
 * Sum of log p(committed tokens | state) for each step row. Rows of similar length share a request, so
 * little compute goes into padding; a request's rows are bounded so its [rows, T, vocab] logits would stay
 * near 256 MiB (the engine itself runs 16 rows per model call).
 */
export async function scoreStepRows(rows: StepRow[], engine: EngineClient): Promise<Float64Array> {
  const out = new Float64Array(rows.length);
  if (rows.length === 0) return out;
  const pad = Math.max(engine.info.pad_token_id, 0);
  const T = Math.max(1, ...rows.map((r) => r.input.length));
  const chunk = Math.min(
    512,
    Math.max(1, Math.floor((256 << 20) / (4 * T * Math.max(1, engine.info.vocab_size)))),
  );
  const byLength = rows.map((_, i) => i).sort((a, b) => rows[a].input.length - rows[b].input.length || a - b);
  for (let r0 = 0; r0 < rows.length; r0 += chunk) {
    const idx = byLength.slice(r0, r0 + chunk);
    const { logprob } = await engine.score(
      packRows(
        idx.map((i) => rows[i]),
        pad,
      ),
    );
    for (let i = 0; i < idx.length; i++) out[idx[i]] = logprob[i];
  }
  return out;
}

export interface TrajectoryElbo {
  elbo: number;
  /** Committed positions that entered the sum. */
  positions: number;
  /** Per commit step log-probabilities. */
  steps: number[];
}

/** ELBO of each trajectory under the engine's checkpoint, all steps of all trajectories in shared batches. */
export async function elboOfTrajectories(
  rows: TrajectoryRow[],
  engine: EngineClient,
): Promise<TrajectoryElbo[]> {
  const perRow = rows.map((r) => stepRows(r, engine.info.mask_token_id, engine.info.max_position_embeddings));
  const flat = perRow.flat();
  const lp = await scoreStepRows(flat, engine);
  let at = 0;
  return perRow.map((steps) => {
    const s = Array.from(lp.subarray(at, at + steps.length));
    at += steps.length;
    let positions = 0;
    for (const r of steps) for (const t of r.targets) if (t >= 0) positions++;
    return { elbo: s.reduce((a, b) => a + b, 0), positions, steps: s };
  });
}
