import { join } from 'node:path';
import {
  bool,
  type CommandSpec,
  list,
  num,
  type OptionSpec,
  type OptionValues,
  optNum,
  optStr,
  str,
} from '../../common/cli.ts';
import { UserError } from '../../common/errors.ts';
import { deviceFromOptions, SAMPLER_OPTIONS, settingsFromOptions } from '../../engine/settings.ts';
import { EXECUTOR_FLAGS, executorOptions, isDistributed } from '../../jobs/flags.ts';
import { ModelGenerator, openSamplerClient } from '../generators/model.ts';
import { OracleGenerator } from '../generators/oracle.ts';
import type { Generator } from '../generators/types.ts';
import { DEFAULT_DATA_DIR, REPO_ROOT } from '../paths.ts';
import { type EvalRunOptions, type EvalSummary, runEval } from '../run.ts';
import { SUITES } from '../suites/index.ts';
import type { EvalTask } from '../suites/types.ts';

/** The sampler's own flags (engine/settings.ts) plus eval's. */
export const EVAL_OPTIONS: Record<string, OptionSpec> = {
  ...SAMPLER_OPTIONS,
  data: { type: 'string', arg: 'DIR', description: 'benchmark data folder', default: DEFAULT_DATA_DIR },
  oracle: { type: 'boolean', description: 'execute the reference solutions instead of a model' },
  ckpt: { type: 'string', arg: 'DIR', description: 'checkpoint to sample from (needed unless --oracle)' },
  'n-samples': {
    type: 'number',
    min: 1,
    integer: true,
    arg: 'N',
    description: 'samples per task',
    default: 1,
  },
  k: {
    type: 'list',
    arg: 'K,...',
    description: 'pass@k values to report (k <= n-samples)',
    default: ['1', '10', '100'],
  },
  limit: { type: 'number', min: 1, integer: true, arg: 'N', description: 'evaluate only the first N tasks' },
  'task-ids': {
    type: 'list',
    arg: 'ID,...',
    description: 'evaluate only these tasks (full id or its number)',
  },
  out: {
    type: 'string',
    output: 'dir',
    arg: 'DIR',
    description: 'output folder (default runs/eval/<suite>-<time>)',
  },
  concurrency: {
    type: 'number',
    min: 1,
    integer: true,
    arg: 'N',
    description: 'candidates executed in parallel',
    default: 2,
  },
  timeout: {
    type: 'number',
    min: 0.001,
    arg: 'SEC',
    description: 'wall-clock limit per candidate',
    default: 10,
  },
  'memory-mb': {
    type: 'number',
    min: 1,
    arg: 'MB',
    description: 'address-space limit per candidate',
    default: 1024,
  },
  python: { type: 'string', arg: 'PATH', description: 'interpreter for candidates', default: 'python3' },
  quiet: { type: 'boolean', description: 'no progress output' },
};

/** The executors' flags (jobs/flags.ts); --tasks cuts the suite into parts of whole sampler batches. */
export const EVAL_EXECUTOR_FLAGS: Record<string, OptionSpec> = {
  ...EXECUTOR_FLAGS,
  tasks: {
    ...EXECUTOR_FLAGS.tasks,
    description:
      'parts the suite is cut into (whole batches of 8 prompts), one job task each (local with 1: in process)',
  },
  'run-dir': {
    ...EXECUTOR_FLAGS['run-dir'],
    description: 'where parts, markers and logs go [default: OUT.run]',
  },
  'cpus-per-task': {
    ...EXECUTOR_FLAGS['cpus-per-task'],
    description: 'CPUs per task (Slurm); a part runs --concurrency candidates at once, so match them',
  },
};

function positiveInt(o: OptionValues, k: string): number {
  const v = num(o, k);
  if (!Number.isInteger(v) || v < 1) throw new UserError(`--${k} must be a positive integer; got ${v}.`);
  return v;
}

/** Keep tasks named by --task-ids (exact id, a trailing number like "12", or an id prefix) and --limit. */
export function selectTasks(tasks: EvalTask[], ids: string[], limit: number | undefined): EvalTask[] {
  let out = tasks;
  if (ids.length > 0) {
    const matches = (t: EvalTask, x: string) =>
      t.id === x || t.id.endsWith(`/${x}`) || t.id.startsWith(`${x}/`);
    const unknown = ids.filter((x) => !tasks.some((t) => matches(t, x)));
    if (unknown.length > 0) {
      throw new UserError(
        `--task-ids: no task matches ${unknown.join(', ')} (ids look like ${tasks[0]?.id}).`,
      );
    }
    out = tasks.filter((t) => ids.some((x) => matches(t, x)));
  }
  if (limit !== undefined) {
    if (!Number.isInteger(limit) || limit < 1)
      throw new UserError(`--limit must be a positive integer; got ${limit}.`);
    out = out.slice(0, limit);
  }
  return out;
}

export async function makeGenerator(o: OptionValues, buggy = false): Promise<Generator> {
  if (bool(o, 'oracle')) return new OracleGenerator(buggy ? 'buggy' : 'reference');
  const ckpt = optStr(o, 'ckpt');
  if (!ckpt)
    throw new UserError('pass --ckpt DIR to evaluate a model, or --oracle to run the reference solutions.');
  const client = await openSamplerClient(ckpt, deviceFromOptions(o));
  return new ModelGenerator(client, settingsFromOptions(o), ckpt);
}

function printSummary(s: EvalSummary, label = ''): void {
  const pk = Object.entries(s.pass_at_k)
    .map(([k, v]) => `${k} ${(100 * v).toFixed(2)}%`)
    .join('  ');
  process.stdout.write(
    `${label}${s.suite}${s.variant ? `/${s.variant}` : ''} [${s.generator}]: ${s.tasks_passed}/${s.tasks} tasks pass  ${pk}\n`,
  );
  if (Object.keys(s.error_kinds).length > 0) {
    process.stdout.write(`  failures by kind: ${JSON.stringify(s.error_kinds)}\n`);
  }
  if (s.failing_task_ids.length > 0 && s.failing_task_ids.length <= 40) {
    process.stdout.write(`  failing tasks: ${s.failing_task_ids.join(', ')}\n`);
  }
  if (s.tokens_per_second !== null) {
    process.stdout.write(
      `  ${s.tokens_per_second.toFixed(1)} tokens/s, ${s.forward_passes_per_token?.toFixed(3)} forward passes/token\n`,
    );
  }
}

export interface SuiteCommandConfig {
  suite: string;
  summary: string;
  description: string;
  extra?: Record<string, OptionSpec>;
  examples: string[];
}

/** An eval as its options describe it: the selected tasks and what runEval takes besides a generator. */
export type EvalPlan = Omit<EvalRunOptions, 'generator' | 'outDir'> & { outDir: string };

/** Reads and checks an eval's options and loads the suite's selected tasks; starts no model. */
export async function evalPlan(suiteName: string, o: OptionValues): Promise<EvalPlan> {
  const suite = SUITES[suiteName];
  const variant = optStr(o, 'variant');
  const nSamples = positiveInt(o, 'n-samples');
  const ks = list(o, 'k').map((k) => {
    const v = Number(k);
    if (!Number.isInteger(v) || v < 1) throw new UserError(`--k expects positive integers; got ${k}.`);
    return v;
  });
  // The default list is trimmed to what --n-samples allows; a k the user asked for is never dropped.
  const askedK = JSON.stringify(list(o, 'k')) !== JSON.stringify(EVAL_OPTIONS.k.default);
  const tooLarge = ks.filter((k) => k > nSamples);
  if (askedK && tooLarge.length > 0)
    throw new UserError(
      `--k ${tooLarge.join(',')} needs at least that many samples per task, but --n-samples is ${nSamples}; raise --n-samples or lower --k.`,
    );
  const all = await suite.load({ dataDir: str(o, 'data'), variant, shots: optNum(o, 'shots') });
  const tasks = selectTasks(all, list(o, 'task-ids'), optNum(o, 'limit'));
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const outDir =
    optStr(o, 'out') ??
    join(REPO_ROOT, 'runs', 'eval', `${suiteName}${variant ? `-${variant}` : ''}-${stamp}`);
  return {
    suite: suiteName,
    variant,
    tasks,
    nSamples,
    ks,
    concurrency: positiveInt(o, 'concurrency'),
    limits: {
      timeoutMs: Math.round(num(o, 'timeout') * 1000),
      cpuSeconds: Math.max(1, Math.ceil(num(o, 'timeout'))),
      memoryBytes: Math.round(num(o, 'memory-mb') * 1024 * 1024),
    },
    python: str(o, 'python'),
    outDir,
    quiet: bool(o, 'quiet'),
  };
}

export function makeEvalCommand(cfg: SuiteCommandConfig): CommandSpec {
  return {
    name: `eval ${cfg.suite}`,
    summary: cfg.summary,
    description: cfg.description,
    options: { ...EVAL_OPTIONS, ...EVAL_EXECUTOR_FLAGS, ...cfg.extra },
    examples: cfg.examples,
    async run(o) {
      const common = await evalPlan(cfg.suite, o);
      const { outDir } = common;
      let summary: EvalSummary;
      const ex = executorOptions(o, `${outDir}.run`);
      if (isDistributed(ex, optStr(o, 'run-dir') !== undefined)) {
        const { runEvalDistributed } = await import('../distributed.ts');
        const merged = await runEvalDistributed(cfg.suite, o, common, ex);
        if (!merged) return 0;
        summary = merged;
      } else {
        const generator = await makeGenerator(o);
        try {
          summary = (await runEval({ ...common, generator })).summary;
        } finally {
          await generator.close();
        }
      }
      printSummary(summary);
      const runs = summary.tasks * summary.samples_per_task;
      if (runs > 0 && (summary.error_kinds.timeout ?? 0) === runs)
        throw new UserError(
          `every one of the ${runs} samples timed out (--timeout ${num(o, 'timeout')} s): pass@k measures the limit, not the model; raise --timeout (results kept in ${outDir}).`,
        );
      // HumanEvalFix's oracle also runs the buggy solutions: each must fail its tests.
      if (cfg.suite === 'fix' && bool(o, 'oracle')) {
        const buggy = await runEval({ ...common, generator: await makeGenerator(o, true), prefix: 'buggy-' });
        printSummary(buggy.summary, 'buggy solutions: ');
        const wrong = buggy.summary.tasks_passed;
        process.stdout.write(`  buggy solutions that pass their tests (should be 0): ${wrong}\n`);
      }
      process.stdout.write(`results in ${outDir}\n`);
      return 0;
    },
  };
}
