import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { bool, type CommandSpec, num, type OptionValues, str } from '../../common/cli.ts';
import { UserError } from '../../common/errors.ts';
import { atomicWriteFile, atomicWriteJson } from '../../common/fs.ts';
import { Progress } from '../../common/progress.ts';
import { sha256Hex } from '../steps/hash.ts';
import { allCompositions } from '../synth/families.ts';
import {
  compositionSplits,
  generateTasks,
  leakageReport,
  type SynthSplit,
  type SynthTask,
} from '../synth/generate.ts';
import { SYNTH_MANIFEST, verifySynthDir } from '../synth/manifest.ts';

const SPLITS: SynthSplit[] = ['train', 'validation', 'test'];

/** What a synth directory was made with; a rerun with other settings is refused. */
export interface SynthSettings {
  seed: number;
  split_seed: number;
  validation_fraction: number;
  test_fraction: number;
  counts: Record<SynthSplit, number>;
}

export function taskRow(t: SynthTask): Record<string, unknown> {
  return {
    id: t.id,
    split: t.split,
    family: t.family,
    composition: t.composition,
    style: t.style,
    entry_point: t.entry,
    prompt: t.prompt,
    completion: t.body,
    test: t.test,
    text: `${t.prompt}${t.body}\n`,
  };
}

function fractionOption(o: OptionValues, k: string): number {
  const v = num(o, k);
  if (!(v >= 0 && v < 1)) throw new UserError(`--${k} must be in [0, 1); got ${v}.`);
  return v;
}

function countOption(o: OptionValues, k: string, min: number): number {
  const v = num(o, k);
  if (!Number.isInteger(v) || v < min) throw new UserError(`--${k} must be an integer >= ${min}; got ${v}.`);
  return v;
}

function settingsFrom(o: OptionValues): SynthSettings {
  const s: SynthSettings = {
    seed: countOption(o, 'seed', 0),
    split_seed: countOption(o, 'split-seed', 0),
    validation_fraction: fractionOption(o, 'validation-fraction'),
    test_fraction: fractionOption(o, 'test-fraction'),
    counts: {
      train: countOption(o, 'train', 1),
      validation: countOption(o, 'validation', 0),
      test: countOption(o, 'test', 0),
    },
  };
  if (s.validation_fraction + s.test_fraction >= 1)
    throw new UserError(
      '--validation-fraction plus --test-fraction must stay below 1: train needs compositions.',
    );
  return s;
}

export const command: CommandSpec = {
  name: 'data synth',
  summary: 'generate the synthetic code world: Python tasks with docstrings, reference bodies and tests',
  description: `
Each task is a function composed of typed primitives (number, string, word and dict operations; filters,
maps, aggregates, branches, early returns, helper calls), a docstring stating the behaviour in words, a
reference body in one of several styles (loop, comprehension, builtin, functional; names vary) and tests
made by running the reference on generated inputs (6 cases with at least 3 distinct outputs; both answers
for yes/no tasks). A task whose reference raises or never ends is dropped and listed in dropped.jsonl.
Splits hold out whole compositions (primitive choices, constants aside): validation and test compositions
never occur in train, which the manifest proves (leakage counts must be 0). Task i depends only on
(--seed, i), so the output is the same on every machine.

Writes to --out: train.jsonl, validation.jsonl, test.jsonl (task rows: id, split, family, composition,
style, entry_point, prompt, completion, test, text), corpus.jsonl (train and validation texts for
\`sdt tokenizer train\` and \`sdt data build\`), dropped.jsonl and manifest.json. See docs/synth.md.`,
  options: {
    out: {
      type: 'string',
      output: 'dir',
      arg: 'DIR',
      description: 'output directory',
      default: 'runs/synth',
    },
    train: { type: 'number', min: 1, integer: true, arg: 'N', description: 'train tasks', default: 100000 },
    validation: {
      type: 'number',
      min: 0,
      integer: true,
      arg: 'N',
      description: 'validation tasks (held-out compositions)',
      default: 1000,
    },
    test: {
      type: 'number',
      min: 0,
      integer: true,
      arg: 'N',
      description: 'test tasks (held-out compositions)',
      default: 500,
    },
    seed: { type: 'number', min: 0, integer: true, arg: 'N', description: 'task seed', default: 1 },
    'split-seed': {
      type: 'number',
      min: 0,
      integer: true,
      arg: 'N',
      description: 'which compositions are held out',
      default: 1,
    },
    'validation-fraction': {
      type: 'number',
      min: 0,
      max: 1,
      arg: 'F',
      description: 'share of compositions held out for validation',
      default: 0.05,
    },
    'test-fraction': {
      type: 'number',
      min: 0,
      max: 1,
      arg: 'F',
      description: 'share of compositions held out for test',
      default: 0.1,
    },
    python: {
      type: 'string',
      arg: 'PATH',
      description: 'interpreter that runs the references',
      default: 'python3',
    },
    overwrite: { type: 'boolean', description: 'replace an output made with other settings' },
    quiet: { type: 'boolean', description: 'no progress output' },
  },
  examples: [
    'sdt data synth --out runs/synth',
    'sdt data synth --out runs/synth-small --train 20000 --validation 200 --test 200',
    'sdt data build --source runs/synth/corpus.jsonl --text-field text --split-field split --id-field id --near-dup-threshold 0',
  ],
  async run(o) {
    const out = resolve(str(o, 'out'));
    const settings = settingsFrom(o);
    const manifestPath = join(out, SYNTH_MANIFEST);
    if (existsSync(manifestPath)) {
      const old = JSON.parse(await readFile(manifestPath, 'utf8')) as { settings: SynthSettings };
      if (JSON.stringify(old.settings) === JSON.stringify(settings)) {
        await verifySynthDir(out);
        process.stderr.write(
          `sdt data synth: ${out} already holds these tasks (checksums verified); nothing to do.\n`,
        );
        return 0;
      }
      if (!bool(o, 'overwrite'))
        throw new UserError(
          `${out} was generated with other settings (${JSON.stringify(old.settings)}); pass --overwrite to replace it, or choose another --out.`,
        );
      await rm(out, { recursive: true, force: true });
    }
    await mkdir(out, { recursive: true });
    const total = settings.counts.train + settings.counts.validation + settings.counts.test;
    const progress = new Progress({ label: 'synth', total, unit: 'tasks', quiet: bool(o, 'quiet') });
    let last = 0;
    const result = await generateTasks({
      seed: settings.seed,
      splits: {
        seed: settings.split_seed,
        validation: settings.validation_fraction,
        test: settings.test_fraction,
      },
      counts: settings.counts,
      python: str(o, 'python'),
      onProgress: (n) => {
        progress.tick(n - last);
        last = n;
      },
    });
    progress.done();
    const leakage = leakageReport(result.tasks);
    if (leakage.heldOutCompositionsInTrain > 0 || leakage.heldOutBodiesInTrain > 0)
      throw new Error(`synth split leaked: ${JSON.stringify(leakage)}`);
    const files: Record<string, { rows: number; bytes: number; sha256: string }> = {};
    const write = async (name: string, rows: Record<string, unknown>[]) => {
      const body = rows.map((r) => `${JSON.stringify(r)}\n`).join('');
      await atomicWriteFile(join(out, name), body);
      files[name] = { rows: rows.length, bytes: Buffer.byteLength(body), sha256: sha256Hex(body) };
    };
    for (const s of SPLITS) await write(`${s}.jsonl`, result.tasks[s].map(taskRow));
    await write(
      'corpus.jsonl',
      [...result.tasks.train, ...result.tasks.validation].map((t) => ({
        id: t.id,
        split: t.split,
        text: `${t.prompt}${t.body}\n`,
      })),
    );
    await write('dropped.jsonl', result.dropped as unknown as Record<string, unknown>[]);
    const comps = allCompositions();
    const compositionsBySplit: Record<string, number> = { train: 0, validation: 0, test: 0 };
    const splitSettings = {
      seed: settings.split_seed,
      validation: settings.validation_fraction,
      test: settings.test_fraction,
    };
    for (const split of compositionSplits(splitSettings).values()) compositionsBySplit[split]++;
    const droppedByReason: Record<string, number> = {};
    for (const d of result.dropped) droppedByReason[d.reason] = (droppedByReason[d.reason] ?? 0) + 1;
    await atomicWriteJson(manifestPath, {
      format: 'sdt-synth',
      version: 1,
      settings,
      compositions: { total: comps.length, ...compositionsBySplit },
      compositions_used: Object.fromEntries(
        SPLITS.map((s) => [s, new Set(result.tasks[s].map((t) => t.composition)).size]),
      ),
      tasks: Object.fromEntries(SPLITS.map((s) => [s, result.tasks[s].length])),
      drawn: result.drawn,
      dropped: droppedByReason,
      leakage,
      files,
    });
    process.stderr.write(
      `sdt data synth: ${SPLITS.map((s) => `${result.tasks[s].length} ${s}`).join(', ')} tasks from ` +
        `${comps.length} compositions (${compositionsBySplit.validation} validation, ${compositionsBySplit.test} test held out); ` +
        `dropped ${result.dropped.length} (${JSON.stringify(droppedByReason)}); leakage 0; ${out}\n`,
    );
    return 0;
  },
};
