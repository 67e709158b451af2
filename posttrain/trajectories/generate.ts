/**
 * `sdt traj generate`: a teacher checkpoint writes K trajectories per prompt through EngineClient, in Arrow
 * shards (schemas/trajectory.ts rows, ids PROMPT#K) that a rerun skips, so a killed job resumes.
 * Prompts: a JSONL file, an eval suite, or function headers + docstrings cut from a dataset's held-out split.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type CommandSpec, num, type OptionValues, optStr, str } from '../../common/cli.ts';
import { UserError } from '../../common/errors.ts';
import { atomicWriteJson } from '../../common/fs.ts';
import { Progress } from '../../common/progress.ts';
import { EngineClient } from '../../engine/client.ts';
import { deviceFromOptions, SAMPLER_OPTIONS, settingsFromOptions } from '../../engine/settings.ts';
import { SUITE_DATA_DIR_OPTION } from '../../eval/paths.ts';
import { SUITES } from '../../eval/suites/index.ts';
import { runDistributed } from '../../jobs/executor.ts';
import { EXECUTOR_FLAGS, executorOptions, isDistributed } from '../../jobs/flags.ts';
import type { JobKind } from '../../jobs/kinds.ts';
import { openDataset } from '../../pipelines/dataset/read.ts';
import { type SampleSettings, settingsToWire } from '../../schemas/engine.ts';
import type { TrajectoryRow } from '../../schemas/trajectory.ts';
import { type PromptItem, readPromptFile } from '../sample/prompts.ts';
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

export async function suitePrompts(suite: string, dataDir: string, limit: number): Promise<PromptItem[]> {
  const s = SUITES[suite];
  if (!s) throw new UserError(`--suite ${suite}: unknown; one of ${Object.keys(SUITES).join(', ')}.`);
  return (await s.load({ dataDir })).slice(0, limit).map((t) => ({ id: t.id, prompt: t.prompt }));
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

export const command: CommandSpec = {
  name: 'traj generate',
  summary: 'K trajectories per prompt from a teacher checkpoint, in resumable Arrow shards',
  description: `
Prompts come from --prompts (JSONL, as sdt sample), --suite (an eval suite's prompts; ids are task ids, so
\`sdt traj score --suite\` can run their tests) or --dataset (top-level function headers with docstrings cut
from the validation split). Trajectory k of a prompt samples with seed --seed + k (use --temperature > 0 for
distinct trajectories). --order picks the commit order (confidence, margin, entropy, random,
left-to-right; docs/sample.md). A rerun with the same settings skips finished shards.`,
  options: {
    ckpt: { type: 'string', arg: 'DIR', description: 'teacher checkpoint', required: true },
    out: {
      type: 'string',
      output: 'dir',
      arg: 'DIR',
      description: 'output directory (shard-NNNNN.arrow, manifest.json)',
      required: true,
    },
    prompts: {
      type: 'string',
      arg: 'FILE',
      description: 'JSONL prompts ("..." or {"id","prompt"} per line)',
    },
    suite: {
      type: 'string',
      arg: 'NAME',
      description: 'eval suite as prompt set',
      choices: Object.keys(SUITES),
    },
    'data-dir': SUITE_DATA_DIR_OPTION,
    dataset: {
      type: 'string',
      arg: 'DIR',
      description: 'dataset whose validation split gives function prompts',
    },
    limit: {
      type: 'number',
      min: 1,
      integer: true,
      arg: 'N',
      description: 'at most N prompts',
      default: 1000,
    },
    k: {
      type: 'number',
      min: 1,
      integer: true,
      arg: 'K',
      description: 'trajectories per prompt',
      default: 4,
    },
    'shard-prompts': {
      type: 'number',
      min: 1,
      integer: true,
      arg: 'N',
      description: 'prompts per shard file',
      default: 64,
    },
    batch: {
      type: 'number',
      min: 1,
      integer: true,
      arg: 'N',
      description: 'prompts per sampler request',
      default: 8,
    },
    ...SAMPLER_OPTIONS,
    tokenizer: { type: 'string', arg: 'FILE', description: 'tokenizer.json [default: CKPT/tokenizer.json]' },
    ...EXECUTOR_FLAGS,
  },
  examples: [
    'sdt traj generate --ckpt runs/demo/checkpoints/step-000400 --dataset data/py --k 8 --temperature 0.8 --out runs/traj/pool',
    'sdt traj generate --ckpt CKPT --suite humaneval --k 4 --temperature 0.7 --block 16 --out runs/traj/he',
  ],
  async run(o) {
    const ex = executorOptions(o, `${str(o, 'out')}.run`);
    if (isDistributed(ex, optStr(o, 'run-dir') !== undefined)) {
      checkGenerateOptions(o);
      const settings = Object.fromEntries(Object.entries(o).filter(([k]) => !(k in EXECUTOR_FLAGS)));
      const say = (line: string) => process.stderr.write(`traj generate: ${line}\n`);
      await runDistributed({ kind: 'traj generate', tasks: ex.tasks, settings }, ex, say);
      return 0;
    }
    await generateFromOptions(o);
    return 0;
  },
};

function checkGenerateOptions(o: OptionValues): void {
  const sources = ['prompts', 'suite', 'dataset'].filter((s) => optStr(o, s) !== undefined);
  if (sources.length !== 1)
    throw new UserError('sdt traj generate: give exactly one of --prompts, --suite, --dataset.');
  const k = num(o, 'k');
  if (!Number.isInteger(k) || k < 1)
    throw new UserError('sdt traj generate: --k must be a positive integer.');
  for (const f of ['shard-prompts', 'batch']) {
    if (!(num(o, f) >= 1)) throw new UserError(`sdt traj generate: --${f} must be >= 1.`);
  }
}

/** `sdt traj generate` with parsed options; `part` makes it one task of a distributed run. */
export async function generateFromOptions(
  o: OptionValues,
  part?: { rank: number; tasks: number },
): Promise<number> {
  checkGenerateOptions(o);
  const limit = num(o, 'limit');
  const k = num(o, 'k');
  let prompts: PromptItem[];
  if (optStr(o, 'prompts')) prompts = (await readPromptFile(str(o, 'prompts'))).slice(0, limit);
  else if (optStr(o, 'suite')) prompts = await suitePrompts(str(o, 'suite'), str(o, 'data-dir'), limit);
  else prompts = await datasetPrompts(str(o, 'dataset'), limit);
  const settings = settingsFromOptions(o);
  const client = await EngineClient.start({
    ckpt: str(o, 'ckpt'),
    tokenizer: optStr(o, 'tokenizer'),
    device: deviceFromOptions(o),
  });
  client.requireTokenizer();
  const progress = new Progress({
    label: 'traj generate',
    total: prompts.length * k,
    unit: 'trajectories',
  });
  try {
    const shards = await generateTrajectories({
      client,
      prompts,
      settings,
      k,
      outDir: str(o, 'out'),
      shardPrompts: num(o, 'shard-prompts'),
      batch: num(o, 'batch'),
      onProgress: (n) => progress.tick(n),
      part,
    });
    progress.done();
    if (!part)
      process.stdout.write(
        `${prompts.length * k} trajectories (${prompts.length} prompts x ${k}) in ${shards.length} shards under ${str(o, 'out')}\n`,
      );
  } finally {
    await client.close();
  }
  return prompts.length * k;
}

/** The distributed `sdt traj generate` (jobs/kinds.ts): task r writes shards r, r+N, ...; the merge the manifest. */
export const trajGenerateJob: JobKind = {
  async task(record, _run, rank) {
    return {
      trajectories: await generateFromOptions(record.settings as OptionValues, { rank, tasks: record.tasks }),
    };
  },
  async merge(record) {
    return { trajectories: await generateFromOptions(record.settings as OptionValues) };
  },
  async outputDone(record) {
    const path = join(String(record.settings.out), 'manifest.json');
    return existsSync(path) && JSON.parse(await readFile(path, 'utf8')).complete === true;
  },
};
