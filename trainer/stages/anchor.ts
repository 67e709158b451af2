/**
 * Ordinary data for the stages: token windows from a dataset split (the anchor that keeps a stage close
 * to the pretraining distribution) and a fixed-seed masked validation loss measured with `sdt-native forward`.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../../common/errors.ts';
import { maskCorrupt } from '../../pipelines/corrupt/mask.ts';
import { Rng } from '../../pipelines/corrupt/rng.ts';
import type { CorruptSpecials } from '../../pipelines/corrupt/types.ts';
import { openDataset } from '../../pipelines/dataset/read.ts';
import { writeNpy } from '../../pipelines/trajectories/npy.ts';
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
 * Mask-objective loss (nats per weighted token, weights 1/t) of `windows` at t = 0.25, 0.5, 0.75 with a
 * fixed seed: the same positions are masked for every checkpoint, so rounds compare like with like.
 */
export async function maskedValidationLoss(
  bin: string,
  ckpt: string,
  windows: Int32Array[],
  specials: CorruptSpecials,
  seed = 12345,
): Promise<number | null> {
  if (windows.length === 0) return null;
  const T = Math.max(...windows.map((w) => w.length));
  const rows: { input: Int32Array; target: Int32Array; weight: Float32Array; n: number }[] = [];
  windows.forEach((w, i) => {
    for (const t of [0.25, 0.5, 0.75]) {
      const m = maskCorrupt(w, [], new Rng(seed, i, Math.round(t * 100)), { specials, t });
      rows.push({ input: m.input, target: m.target, weight: m.weight, n: w.length });
    }
  });
  const B = rows.length;
  const ids = new Int32Array(B * T).fill(specials.pad);
  const tgt = new Int32Array(B * T).fill(-1);
  const wt = new Float32Array(B * T);
  const seg = new Int32Array(B * T).fill(-1);
  rows.forEach((r, i) => {
    ids.set(r.input, i * T);
    tgt.set(r.target, i * T);
    wt.set(r.weight, i * T);
    seg.fill(0, i * T, i * T + r.n);
  });
  const dir = await mkdtemp(join(tmpdir(), 'sdt-val-'));
  try {
    await writeNpy(join(dir, 'i.npy'), ids, [B, T]);
    await writeNpy(join(dir, 't.npy'), tgt, [B, T]);
    await writeNpy(join(dir, 'w.npy'), wt, [B, T]);
    await writeNpy(join(dir, 's.npy'), seg, [B, T]);
    const out = await new Promise<string>((resolve, reject) => {
      const args = [
        'forward',
        '--ckpt',
        ckpt,
        '--tokens',
        join(dir, 'i.npy'),
        '--targets',
        join(dir, 't.npy'),
      ];
      args.push('--weights', join(dir, 'w.npy'), '--segments', join(dir, 's.npy'));
      const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let so = '';
      let se = '';
      child.stdout.on('data', (d) => {
        so += d;
      });
      child.stderr.on('data', (d) => {
        se += d;
      });
      child.on('error', (e) => reject(new UserError(`cannot start ${bin}: ${e.message}`)));
      child.on('close', (code) =>
        code === 0 ? resolve(so) : reject(new UserError(`sdt-native forward: ${se.trim()}`)),
      );
    });
    const j = JSON.parse(out.trim().split('\n').pop()!) as { loss: number };
    return j.loss;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
