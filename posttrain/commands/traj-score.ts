/** `sdt traj score`: flags and wiring; the work is in posttrain/trajectories/score.ts. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { bool, type CommandSpec, num, type OptionValues, optStr, str } from '../../common/cli.ts';
import { UserError } from '../../common/errors.ts';
import { Progress } from '../../common/progress.ts';
import { SUITE_DATA_DIR_OPTION } from '../../eval/paths.ts';
import { SandboxPool } from '../../eval/sandbox/pool.ts';
import { DEFAULT_LIMITS } from '../../eval/sandbox/types.ts';
import { SUITES } from '../../eval/suites/index.ts';
import { loadSuiteTasks, makeVerifier } from '../../eval/verify.ts';
import { runDistributed } from '../../jobs/executor.ts';
import { EXECUTOR_FLAGS, executorOptions, isDistributed } from '../../jobs/flags.ts';
import type { JobKind } from '../../jobs/kinds.ts';
import { loadTokenizer } from '../../pipelines/tokenizer/index.ts';
import { readTrajectoryInput } from '../trajectories/generate.ts';
import { readScored, type ScoredRow, scoreTrajectories, writeScored } from '../trajectories/score.ts';

export const command: CommandSpec = {
  name: 'traj score',
  summary: 'score trajectories: ELBO, Levenshtein surrogate, |tau|, verifier (new Arrow file)',
  description: `
ELBO: sum over commit steps of log p(committed tokens | state before the step) under --ckpt, computed by
\`sdt-native score\` in batches (natural log). lev_surrogate: mean of 1/d_lev between consecutive canvas states
(<|mask|> counts as a token); lev_mean_jump: mean d_lev. tau: steps. verifier: 1 when tree-sitter-python finds
no ERROR/MISSING node in prompt + completion and, with --suite, the task's tests pass in the sandbox.`,
  positionals: [
    {
      name: 'IN',
      description: 'trajectory Arrow file or `sdt traj generate` directory',
      required: true,
    },
  ],
  options: {
    out: {
      type: 'string',
      output: 'file',
      arg: 'OUT',
      description: 'scored Arrow file to write',
      required: true,
    },
    ckpt: {
      type: 'string',
      arg: 'DIR',
      description:
        "checkpoint that scores the ELBO and names <|mask|> (omit: no ELBO, and the mask id comes from the rows' settings)",
    },
    tokenizer: { type: 'string', arg: 'FILE', description: 'tokenizer.json [default: CKPT/tokenizer.json]' },
    suite: {
      type: 'string',
      arg: 'NAME',
      description: 'eval suite whose tests verify completions (ids match prompts)',
      choices: Object.keys(SUITES),
    },
    'data-dir': SUITE_DATA_DIR_OPTION,
    concurrency: {
      type: 'number',
      min: 1,
      integer: true,
      arg: 'N',
      description: 'sandbox runs in parallel',
      default: 2,
    },
    'skip-verifier': { type: 'boolean', description: 'skip syntax and tests' },
    device: {
      type: 'string',
      description: 'where the engine computes the ELBO (sdt-native serve --device)',
      default: 'cpu',
      choices: ['cpu', 'cuda'],
    },
    ...EXECUTOR_FLAGS,
  },
  examples: [
    'sdt traj score runs/traj/pool.arrow --ckpt runs/demo/checkpoints/step-000400 --out runs/traj/scored.arrow',
    'sdt traj score pool.arrow --ckpt CKPT --suite humaneval --out scored.arrow',
  ],
  async run(o, pos) {
    const ex = executorOptions(o, `${str(o, 'out')}.run`);
    if (isDistributed(ex, optStr(o, 'run-dir') !== undefined)) {
      const settings = Object.fromEntries(Object.entries(o).filter(([k]) => !(k in EXECUTOR_FLAGS)));
      const say = (line: string) => process.stderr.write(`traj score: ${line}\n`);
      await runDistributed(
        { kind: 'traj score', tasks: ex.tasks, settings: { ...settings, input: pos[0] } },
        ex,
        say,
      );
      return 0;
    }
    await scoreFromOptions(o, pos[0]);
    return 0;
  },
};

/** `sdt traj score` with parsed options; `part` scores one task's slice of the rows into its own file. */
export async function scoreFromOptions(
  o: OptionValues,
  input: string,
  part?: { rank: number; tasks: number; out: string },
): Promise<number> {
  const all = await readTrajectoryInput(input);
  if (all.length === 0 && !part)
    throw new UserError(
      `${input} holds no trajectories; nothing to score (generate some with \`sdt traj generate\`).`,
    );
  // One task of a distributed run scores a contiguous slice of the rows into its part file.
  const rows = part
    ? all.slice(
        Math.floor((part.rank * all.length) / part.tasks),
        Math.floor(((part.rank + 1) * all.length) / part.tasks),
      )
    : all;
  const out = part?.out ?? str(o, 'out');
  const ckpt = optStr(o, 'ckpt');
  const tokPath = optStr(o, 'tokenizer') ?? (ckpt ? join(ckpt, 'tokenizer.json') : undefined);
  const noVerifier = bool(o, 'skip-verifier');
  if (!noVerifier && (!tokPath || !existsSync(tokPath))) {
    throw new UserError(
      'sdt traj score: the verifier needs a tokenizer; pass --tokenizer FILE (or --skip-verifier).',
    );
  }
  const suite = optStr(o, 'suite');
  const tasks = suite ? await loadSuiteTasks(suite, str(o, 'data-dir')) : undefined;
  const pool = suite
    ? new SandboxPool({ concurrency: num(o, 'concurrency'), limits: DEFAULT_LIMITS })
    : undefined;
  const progress = new Progress({ label: 'traj score', total: rows.length, unit: 'trajectories' });
  const scored = await scoreTrajectories(rows, {
    ckpt,
    device: str(o, 'device') === 'cuda' ? 'cuda' : 'cpu',
    tokenizer: noVerifier ? undefined : await loadTokenizer(tokPath!),
    verifier: noVerifier ? undefined : makeVerifier(tasks, pool),
    noVerifier,
    onProgress: () => progress.tick(1),
  });
  progress.done();
  await writeScored(out, scored);
  if (part) return scored.length;
  const mean = (f: (r: ScoredRow) => number | null) => {
    const v = scored.map(f).filter((x): x is number => x !== null);
    return v.length ? v.reduce((a, b) => a + b, 0) / v.length : Number.NaN;
  };
  process.stdout.write(
    `scored ${scored.length} trajectories -> ${out}: mean ELBO ${mean((r) => r.elbo).toFixed(3)} nats, ` +
      `mean |tau| ${mean((r) => r.tau).toFixed(2)}, mean 1/d_lev ${mean((r) => r.levSurrogate).toFixed(3)}, ` +
      `mean jump ${mean((r) => r.extras.levMeanJump).toFixed(2)}, verifier pass ${(100 * mean((r) => r.verifier)).toFixed(1)}%\n`,
  );
  return scored.length;
}

/** The distributed `sdt traj score` (jobs/kinds.ts): task r scores the r-th slice; the merge concatenates. */
export const trajScoreJob: JobKind = {
  async task(record, run, rank) {
    const out = join(run.partsDir, `scored-${String(rank).padStart(5, '0')}.arrow`);
    const o = record.settings as OptionValues;
    return { rows: await scoreFromOptions(o, String(o.input), { rank, tasks: record.tasks, out }) };
  },
  async merge(record, run) {
    const rows: ScoredRow[] = [];
    for (let r = 0; r < record.tasks; r++)
      rows.push(...(await readScored(join(run.partsDir, `scored-${String(r).padStart(5, '0')}.arrow`))));
    await writeScored(String(record.settings.out), rows);
    return { rows: rows.length };
  },
  async outputDone(record, run) {
    return existsSync(String(record.settings.out)) && (await run.completion('merge')) !== undefined;
  },
};
