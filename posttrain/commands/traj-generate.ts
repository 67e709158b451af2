/** `sdt traj generate`: flags and wiring; the work is in posttrain/trajectories/generate.ts. */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type CommandSpec, num, type OptionValues, optStr, str } from '../../common/cli.ts';
import { UserError } from '../../common/errors.ts';
import { Progress } from '../../common/progress.ts';
import { EngineClient } from '../../engine/client.ts';
import { deviceFromOptions, SAMPLER_OPTIONS, settingsFromOptions } from '../../engine/settings.ts';
import { SUITE_DATA_DIR_OPTION } from '../../eval/paths.ts';
import { SUITES, suitePrompts } from '../../eval/suites/index.ts';
import { runDistributed } from '../../jobs/executor.ts';
import { EXECUTOR_FLAGS, executorOptions, isDistributed } from '../../jobs/flags.ts';
import type { JobKind } from '../../jobs/kinds.ts';
import { type PromptItem, readPromptFile } from '../sample/prompts.ts';
import { datasetPrompts, generateTrajectories } from '../trajectories/generate.ts';

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
