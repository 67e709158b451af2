/**
 * The distillation dataset (docs/distill.md): every step state of a kept
 * trajectory becomes a training example in the trainer's terms. Input: the prompt and the canvas up to the
 * end of the step's block, <|mask|> where the trajectory had not committed yet. Target: the trajectory's
 * final tokens x0 at those masked positions, weighted lambda = 1/t with t the masked fraction of the block
 * (the mask objective's weight). Edit augmentation substitutes some visible tokens (pipelines/corrupt
 * editTokens) and puts unit-weight loss on every visible canvas token, so the model keeps learning that
 * visible tokens can be wrong.
 */
import { readFile } from 'node:fs/promises';
import {
  Field,
  Float32,
  Float64,
  Int32,
  List,
  Table,
  tableFromIPC,
  tableToIPC,
  Utf8,
  vectorFromArray,
} from 'apache-arrow';
import { checkDigest, withDigest } from '../../common/arrow-digest.ts';
import { UserError } from '../../common/errors.ts';
import { atomicWriteFile } from '../../common/fs.ts';
import { editTokens } from '../../pipelines/corrupt/edit.ts';
import { Rng } from '../../pipelines/corrupt/rng.ts';
import type { CorruptSpecials } from '../../pipelines/corrupt/types.ts';
import type { EditVocabulary } from '../../pipelines/corrupt/vocab.ts';
import type { TrajectoryRow } from '../../schemas/trajectory.ts';
import { replayStates } from './record.ts';

export const DISTILL_SCHEMA_VERSION = 1;

export interface DistillExample {
  /** Trajectory id and step index the state comes from. */
  source: string;
  step: number;
  /** Masked fraction of the block in this state. */
  t: number;
  input: Int32Array;
  target: Int32Array;
  weight: Float32Array;
  /** Visible tokens substituted by the augmentation. */
  edited: number;
}

export interface DistillOptions {
  specials: CorruptSpecials;
  vocab: EditVocabulary;
  /** Share of states that get edit augmentation. */
  augmentShare: number;
  /** alpha of the substitutions on visible tokens (k = floor(visible * alpha)). */
  alpha: number;
  seed: number;
  maxPositions?: number;
  /** Clip of t from below (as the mask objective's eps), so 1/t stays bounded. */
  tMin?: number;
}

export function distillExamples(row: TrajectoryRow, opts: DistillOptions): DistillExample[] {
  const mask = opts.specials.mask;
  const after = replayStates(row, mask);
  if (after.length === 0) return [];
  const x0 = after[after.length - 1];
  const blockStart = new Map<number, number>();
  const blockEnd = new Map<number, number>();
  for (const s of row.steps) {
    for (const p of s.positions) {
      blockStart.set(s.block, Math.min(blockStart.get(s.block) ?? p, p));
      blockEnd.set(s.block, Math.max(blockEnd.get(s.block) ?? 0, p + 1));
    }
  }
  const rng = new Rng(opts.seed, hashId(row.id));
  const out: DistillExample[] = [];
  for (let i = 0; i < row.steps.length; i++) {
    const s = row.steps[i];
    if (s.kind !== 'commit' || s.positions.length === 0) continue;
    const before = i === 0 ? new Int32Array(x0.length).fill(mask) : after[i - 1];
    const b0 = blockStart.get(s.block) ?? 0;
    const b1 = blockEnd.get(s.block) ?? x0.length;
    const canvas = before.slice(0, b1);
    let masked = 0;
    for (let p = b0; p < b1; p++) if (canvas[p] === mask) masked++;
    const t = Math.max(opts.tMin ?? 1e-3, masked / Math.max(1, b1 - b0));
    const clip = Math.max(0, row.prompt.length + canvas.length - (opts.maxPositions ?? 1 << 30));
    const prompt = row.prompt.subarray(Math.min(clip, row.prompt.length));
    const n = prompt.length + canvas.length;
    const input = new Int32Array(n);
    const target = new Int32Array(n).fill(-1);
    const weight = new Float32Array(n);
    input.set(prompt, 0);
    let edited = 0;
    if (rng.float() < opts.augmentShare) {
      const visible: number[] = [];
      for (let p = 0; p < canvas.length; p++) if (canvas[p] !== mask) visible.push(p);
      if (visible.length > 0) {
        const res = editTokens(
          Int32Array.from(visible, (p) => canvas[p]),
          [],
          rng,
          {
            specials: opts.specials,
            vocab: opts.vocab,
            alpha: opts.alpha,
            opWeights: { substitute: 1 },
          },
        );
        visible.forEach((p, k) => {
          if (res.edited[k] !== canvas[p]) edited++;
          canvas[p] = res.edited[k];
          if (x0[p] === mask) return;
          target[prompt.length + p] = x0[p];
          weight[prompt.length + p] = 1;
        });
      }
    }
    input.set(canvas, prompt.length);
    for (let p = b0; p < b1; p++) {
      // Positions the trajectory never filled (after <|eos|> in its last block) have no x0 to learn.
      if (canvas[p] !== mask || x0[p] === mask) continue;
      target[prompt.length + p] = x0[p];
      weight[prompt.length + p] = 1 / t;
    }
    out.push({ source: row.id, step: i, t, input, target, weight, edited });
  }
  return out;
}

/** A stable 32-bit hash of an id, so a trajectory's augmentation does not depend on its position in a file. */
function hashId(id: string): number {
  let h = 2166136261;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619) >>> 0;
  return h;
}

export function buildDistillSet(rows: TrajectoryRow[], opts: DistillOptions): DistillExample[] {
  return rows.flatMap((r) => distillExamples(r, opts));
}

const listOf = (t: Int32 | Float32) => new List(new Field('item', t, true));

export async function writeDistillSet(path: string, examples: DistillExample[]): Promise<void> {
  const table = new Table({
    schema_version: vectorFromArray(
      examples.map(() => DISTILL_SCHEMA_VERSION),
      new Int32(),
    ),
    source: vectorFromArray(
      examples.map((e) => e.source),
      new Utf8(),
    ),
    step: vectorFromArray(
      examples.map((e) => e.step),
      new Int32(),
    ),
    t: vectorFromArray(
      examples.map((e) => e.t),
      new Float64(),
    ),
    edited: vectorFromArray(
      examples.map((e) => e.edited),
      new Int32(),
    ),
    input: vectorFromArray(
      examples.map((e) => Array.from(e.input)),
      listOf(new Int32()),
    ),
    target: vectorFromArray(
      examples.map((e) => Array.from(e.target)),
      listOf(new Int32()),
    ),
    weight: vectorFromArray(
      examples.map((e) => Array.from(e.weight)),
      listOf(new Float32()),
    ),
  });
  await atomicWriteFile(path, tableToIPC(withDigest(table), 'file'));
}

export async function readDistillSet(path: string): Promise<DistillExample[]> {
  let table: Table;
  try {
    table = tableFromIPC(await readFile(path));
  } catch (err) {
    throw new UserError(
      `${path}: not a distillation set (${(err as Error).message}); build one with sdt train --stage distill.`,
    );
  }
  checkDigest(path, table, 'rebuild it with sdt train --stage distill --write-set.');
  for (const c of ['schema_version', 'source', 'step', 't', 'edited', 'input', 'target', 'weight']) {
    if (!table.getChild(c)) throw new UserError(`${path}: column "${c}" missing; not a distillation set.`);
  }
  const col = (n: string) => table.getChild(n)!;
  const arr = (v: unknown) => (v as { toArray(): ArrayLike<number> }).toArray();
  const out: DistillExample[] = [];
  for (let i = 0; i < table.numRows; i++) {
    const v = col('schema_version').get(i);
    if (v !== DISTILL_SCHEMA_VERSION) {
      throw new UserError(
        `${path} row ${i}: distillation schema version ${v}, this sdt reads ${DISTILL_SCHEMA_VERSION}; rebuild it.`,
      );
    }
    out.push({
      source: col('source').get(i),
      step: col('step').get(i),
      t: col('t').get(i),
      edited: col('edited').get(i),
      input: Int32Array.from(arr(col('input').get(i))),
      target: Int32Array.from(arr(col('target').get(i))),
      weight: Float32Array.from(arr(col('weight').get(i))),
    });
  }
  return out;
}
