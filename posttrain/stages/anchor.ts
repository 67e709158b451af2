/**
 * Ordinary data for the stages: token windows from a dataset split (the anchor that keeps a stage close
 * to the pretraining distribution) and a fixed-seed masked validation loss measured by the engine.
 */
import { type EngineClient, packRows } from '../../engine/client.ts';
import { maskCorrupt } from '../../pipelines/corrupt/mask.ts';
import { Rng } from '../../pipelines/corrupt/rng.ts';
import type { CorruptSpecials } from '../../pipelines/corrupt/types.ts';
import { openDataset } from '../../pipelines/dataset/read.ts';
import type { Split } from '../../schemas/dataset.ts';

/** Up to `limit` windows of `len` tokens cut from a split, in dataset order (deterministic). */
export async function anchorWindows(
  dir: string,
  split: Split,
  len: number,
  limit: number,
): Promise<Int32Array[]> {
  const ds = await openDataset(dir);
  const out: Int32Array[] = [];
  for await (const row of ds.rows(split)) {
    for (let a = 0; a + 8 <= row.tokens.length && out.length < limit; a += len) {
      out.push(Int32Array.from(row.tokens.subarray(a, a + len)));
    }
    if (out.length >= limit) break;
  }
  return out;
}

/**
 * One anchor training row cut from an ordinary window `x0`. A bidirectional model (`blockSize`
 * undefined) gets the mask process over the whole window. A block-attention model gets what block-wise
 * decoding shows it: a clean prefix of whole blocks, then one block under the mask process, and nothing
 * after it. Masking every block of the window instead would train each block on a noisy prefix that decoding
 * never produces, which is the mismatch that left a block model's bodies ignoring their prompt
 * (docs/synth.md).
 */
export function anchorExample(
  x0: Int32Array,
  rng: Rng,
  specials: CorruptSpecials,
  blockSize?: number,
): { input: Int32Array; target: Int32Array; weight: Float32Array } {
  if (!blockSize) return maskCorrupt(x0, [], rng, { specials });
  const blocks = Math.ceil(x0.length / blockSize);
  const start = Math.floor(rng.float() * blocks) * blockSize;
  const end = Math.min(x0.length, start + blockSize);
  // Block mode masks at least one position of the block, as the trainer's block masking does.
  const noisy = maskCorrupt(x0.subarray(start, end), [], rng, { specials, mode: 'block', blockSize });
  const input = x0.slice(0, end);
  const weight = new Float32Array(end);
  input.set(noisy.input, start);
  weight.set(noisy.weight, start);
  return { input, target: x0.slice(0, end), weight };
}

/**
 * Mask-objective loss (nats per weighted token, weights 1/t) of `windows` at t = 0.25, 0.5, 0.75 with a
 * fixed seed: the same positions are masked for every checkpoint, so rounds compare like with like.
 */
export async function maskedValidationLoss(
  engine: EngineClient,
  windows: Int32Array[],
  specials: CorruptSpecials,
  seed = 12345,
): Promise<number | null> {
  if (windows.length === 0) return null;
  const rows = windows.flatMap((w, i) =>
    [0.25, 0.5, 0.75].map((t) => {
      const m = maskCorrupt(w, [], new Rng(seed, i, Math.round(t * 100)), { specials, t });
      return { input: m.input, targets: m.target, weights: m.weight };
    }),
  );
  return (await engine.loss(packRows(rows, specials.pad))).loss;
}
