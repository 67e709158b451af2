/**
 * `sdt traj generate`: a teacher checkpoint writes K trajectories per prompt through EngineClient, in Arrow
 * shards (schemas/trajectory.ts rows, ids PROMPT#K) that a rerun skips, so a killed job resumes.
 * Prompts: a JSONL file, an eval suite's (eval/suites/index.ts suitePrompts, which the command passes in), or
 * function headers + docstrings cut from a dataset's held-out split.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../../common/errors.ts';
import { atomicWriteJson } from '../../common/fs.ts';
import type { EngineClient } from '../../engine/client.ts';
import { openDataset } from '../../pipelines/dataset/read.ts';
import { type SampleSettings, settingsToWire } from '../../schemas/engine.ts';
import type { TrajectoryRow } from '../../schemas/trajectory.ts';
import type { PromptItem } from '../sample/prompts.ts';
import { completionToRow, readTrajectories, writeTrajectories } from './record.ts';

const HEADER =
  /^([ \t]*)(?:async[ \t]+)?def[ \t]+\w+[ \t]*\([^)]*\)[^:\n]*:[ \t]*\n([ \t]+)("""|''')[\s\S]*?\3[ \t]*\n/gm;

/**
 * Function headers with their docstrings, cut from source text: each a prompt whose body is to be written.
 * A prompt ends at the docstring's closing quotes: the line break and the next line's indentation are
 * one token in the training data, which the completion then starts with (see bench/sample.ts
 * heldOutHeaders).
 */
export function functionPrompts(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(HEADER)) {
    // Only top-level functions: the prompt must be valid on its own.
    if (m[1] !== '') continue;
    out.push(m[0].replace(/[ \t]*\n$/, ''));
  }
  return out;
}

/**
 * Up to `limit` prompts from a split of a dataset (validation by default: held-out files), in a stable order.
 * On-policy training samples the train split and measures on the validation split, so the two never share a
 * file.
 */
export async function datasetPrompts(
  dir: string,
  limit: number,
  split: 'train' | 'validation' = 'validation',
): Promise<PromptItem[]> {
  const ds = await openDataset(dir);
  const items: PromptItem[] = [];
  for await (const row of ds.rows(split)) {
    functionPrompts(row.text).forEach((p, i) => {
      if (items.length < limit) items.push({ id: `${row.id}:${i}`, prompt: p });
    });
    if (items.length >= limit) break;
  }
  if (items.length === 0) throw new UserError(`${dir}: no function with a docstring in the ${split} split.`);
  return items;
}

export interface GenerateOptions {
  client: EngineClient;
  /** With `tokens`, a prompt is sent as ids (no tokenizer needed). */
  prompts: (PromptItem & { tokens?: Int32Array })[];
  settings: SampleSettings;
  /** Trajectories per prompt; trajectory k uses seed settings.seed + k. */
  k: number;
  outDir: string;
  /** Prompts per shard file. */
  shardPrompts: number;
  /** Prompts per sampler request. */
  batch: number;
  onProgress?: (trajectories: number) => void;
  /** One task of a distributed run (jobs/): only shards s with s mod tasks = rank; the merge completes the manifest. */
  part?: { rank: number; tasks: number };
}

const shardName = (i: number) => `shard-${String(i).padStart(5, '0')}.arrow`;

/** Generates the pool; returns the shard paths (existing complete shards are kept, not regenerated). */
export async function generateTrajectories(opts: GenerateOptions): Promise<string[]> {
  await mkdir(opts.outDir, { recursive: true });
  const manifestPath = join(opts.outDir, 'manifest.json');
  const identity = {
    source: opts.client.info.source,
    settings: settingsToWire(opts.settings),
    k: opts.k,
    shard_prompts: opts.shardPrompts,
    prompts: opts.prompts.map((p) => p.id),
  };
  if (existsSync(manifestPath)) {
    const old = JSON.parse(await readFile(manifestPath, 'utf8'));
    if (JSON.stringify(old.identity) !== JSON.stringify(identity)) {
      throw new UserError(
        `${opts.outDir} holds trajectories of other settings, prompts or checkpoint; choose another --out or delete it.`,
      );
    }
  } else {
    await atomicWriteJson(manifestPath, { identity, complete: false });
  }
  const paths: string[] = [];
  for (let s = 0; s * opts.shardPrompts < opts.prompts.length; s++) {
    const path = join(opts.outDir, shardName(s));
    paths.push(path);
    if (opts.part && s % opts.part.tasks !== opts.part.rank) continue;
    const shard = opts.prompts.slice(s * opts.shardPrompts, (s + 1) * opts.shardPrompts);
    if (existsSync(path)) {
      opts.onProgress?.(shard.length * opts.k);
      continue;
    }
    const rows: TrajectoryRow[] = [];
    for (let k = 0; k < opts.k; k++) {
      const settings = { ...opts.settings, seed: (opts.settings.seed ?? 0) + k, trajectory: true };
      for (let b = 0; b < shard.length; b += opts.batch) {
        const part = shard.slice(b, b + opts.batch);
        const done = part.every((p) => p.tokens)
          ? await opts.client.generateTokens(
              part.map((p) => p.tokens!),
              settings,
            )
          : await opts.client.generate(
              part.map((p) => p.prompt),
              settings,
            );
        done.forEach((c, i) => {
          rows.push(completionToRow(`${part[i].id}#${k}`, opts.client.info.source, c, settings));
        });
        opts.onProgress?.(part.length);
      }
    }
    // Group a prompt's K trajectories together: readers see PROMPT#0..K-1 in a row.
    const order = new Map(shard.map((p, i) => [p.id, i]));
    rows.sort((a, b) => {
      const [pa, ka] = splitId(a.id);
      const [pb, kb] = splitId(b.id);
      return order.get(pa)! - order.get(pb)! || ka - kb;
    });
    await writeTrajectories(path, rows);
  }
  if (opts.part) return paths;
  await atomicWriteJson(manifestPath, {
    identity,
    complete: true,
    shards: paths.map((p) => p.slice(opts.outDir.length + 1)),
  });
  return paths;
}

function splitId(id: string): [string, number] {
  const i = id.lastIndexOf('#');
  return [id.slice(0, i), Number(id.slice(i + 1))];
}

/** Rows of a trajectory file, or of every shard of a `sdt traj generate` directory in order. */
export async function readTrajectoryInput(path: string): Promise<TrajectoryRow[]> {
  if (!existsSync(path))
    throw new UserError(`${path}: not found; write it with \`sdt traj generate --out ${path}\`.`);
  if (!path.endsWith('.arrow') && existsSync(join(path, 'manifest.json'))) {
    const names = (await readdir(path)).filter((n) => /^shard-\d+\.arrow$/.test(n)).sort();
    const rows: TrajectoryRow[] = [];
    for (const n of names) rows.push(...(await readTrajectories(join(path, n))));
    return rows;
  }
  return readTrajectories(path);
}
