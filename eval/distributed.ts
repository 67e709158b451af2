/**
 * `sdt eval <suite> --executor local|slurm --tasks N`: the suite's selected tasks are cut into N parts of
 * whole sampler batches; task r samples and runs part r's tasks into RUN/parts/part-NNNNN/ (results.jsonl,
 * summary.json, summary.md, each written atomically; the completion marker last), and the merge writes
 * --out from the parts with the same code as the local eval (eval/run.ts summarize, writeOutputs).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { OptionValues } from '../common/cli.ts';
import { UserError } from '../common/errors.ts';
import { runDistributed } from '../jobs/executor.ts';
import type { ExecutorOptions } from '../jobs/flags.ts';
import type { JobKind } from '../jobs/kinds.ts';
import type { RunDir } from '../jobs/run-dir.ts';
import { EVAL_EXECUTOR_FLAGS, type EvalPlan, evalPlan, makeGenerator } from './commands/eval.ts';
import { PROMPTS_PER_BATCH } from './generators/model.ts';
import { type EvalSummary, runEval, type SampleResult, summarize, writeOutputs } from './run.ts';
import { DEFAULT_LIMITS } from './sandbox/types.ts';
import type { EvalTask } from './suites/types.ts';

/**
 * Tasks [lo, hi) of part `rank`: whole batches of `batch` prompts, so every sampler request (and the seed
 * of each sequence in it, which mixes the request seed with the index in the batch) is the local run's.
 */
export function partRange(
  n: number,
  rank: number,
  parts: number,
  batch = PROMPTS_PER_BATCH,
): [number, number] {
  const batches = Math.ceil(n / batch);
  const at = (r: number) => Math.min(n, Math.floor((r * batches) / parts) * batch);
  return [at(rank), at(rank + 1)];
}

/** A digest of what the selected tasks are: a rerun or a task that loads other data is refused. */
export function selectionDigest(tasks: EvalTask[]): string {
  const h = createHash('sha256');
  for (const t of tasks)
    h.update(JSON.stringify([t.id, t.prompt, t.suffix ?? null, t.reference, t.stop, t.program('')]));
  return h.digest('hex');
}

const partDir = (run: RunDir, rank: number) => run.path('parts', `part-${String(rank).padStart(5, '0')}`);

/** What task r's completion marker records. */
interface PartSummary {
  first: number;
  tasks: number;
  samples: number;
  passed: number;
  selection: string;
}

async function plannedSelection(suite: string, o: OptionValues): Promise<EvalPlan> {
  const plan = await evalPlan(suite, o);
  const digest = selectionDigest(plan.tasks);
  if (digest !== o.selection)
    throw new UserError(
      `the tasks of --data ${String(o.data)} are not the ones this run was submitted with (selection digest ${digest.slice(0, 12)}, run ${String(o.selection).slice(0, 12)}); restore the data, or start over with another --run-dir.`,
    );
  return plan;
}

/** The distributed `sdt eval <suite>` (jobs/kinds.ts). */
export function evalJob(suite: string): JobKind {
  return {
    async task(record, run, rank): Promise<PartSummary> {
      const o = record.settings as OptionValues;
      const plan = await plannedSelection(suite, o);
      const [lo, hi] = partRange(plan.tasks.length, rank, record.tasks);
      const base = { first: lo, tasks: hi - lo, selection: String(o.selection) };
      // A part past the last batch has nothing to sample: no engine is started, the merge skips it.
      if (hi === lo) return { ...base, samples: 0, passed: 0 };
      const generator = await makeGenerator(o);
      try {
        const { summary } = await runEval({
          ...plan,
          tasks: plan.tasks.slice(lo, hi),
          generator,
          outDir: partDir(run, rank),
        });
        return { ...base, samples: summary.tasks * summary.samples_per_task, passed: summary.samples_passed };
      } finally {
        await generator.close();
      }
    },

    async merge(record, run, markers) {
      const o = record.settings as OptionValues;
      const plan = await plannedSelection(suite, o);
      const parts = (markers as PartSummary[]).map((m, rank) => ({ m, rank })).filter(({ m }) => m.tasks > 0);
      const results: SampleResult[] = [];
      const summaries: EvalSummary[] = [];
      let next = 0;
      for (const { m, rank } of parts) {
        if (m.first !== next || m.selection !== o.selection)
          throw new UserError(
            `part ${rank} of ${run.dir} was not made for this run's tasks (from task ${m.first}, expected ${next}); delete its marker (completions/${String(rank).padStart(5, '0')}) and rerun.`,
          );
        next += m.tasks;
        const dir = partDir(run, rank);
        const lines = (await readFile(join(dir, 'results.jsonl'), 'utf8')).split('\n').filter(Boolean);
        if (lines.length !== m.samples)
          throw new UserError(
            `${join(dir, 'results.jsonl')} holds ${lines.length} samples, its marker ${m.samples}; delete the marker and rerun.`,
          );
        results.push(...lines.map((l) => JSON.parse(l) as SampleResult));
        summaries.push(JSON.parse(await readFile(join(dir, 'summary.json'), 'utf8')) as EvalSummary);
      }
      if (next !== plan.tasks.length)
        throw new UserError(`the parts of ${run.dir} cover ${next} of ${plan.tasks.length} tasks.`);
      const sum = (f: (s: EvalSummary) => number) => summaries.reduce((a, s) => a + f(s), 0);
      const first = summaries[0];
      // Nodes can differ in what the sandbox may use (namespaces, cgroups): say so rather than pick one.
      const modes = [...new Set(summaries.map((s) => s.sandbox.mode))];
      const summary = summarize(
        {
          ...plan,
          generator: { name: first.generator, settings: first.settings },
          taskIds: plan.tasks.map((t) => t.id),
        },
        results,
        {
          tokens: sum((s) => s.tokens),
          forwardPasses: sum((s) => s.forward_passes),
          seconds: sum((s) => s.generation_seconds),
          truncatedPrompts: sum((s) => s.prompts_truncated),
        },
        { mode: modes.join(' | '), limits: { ...DEFAULT_LIMITS, ...plan.limits } },
        sum((s) => s.execution_seconds),
      );
      await writeOutputs(plan.outDir, '', summary, results);
      return { parts: summaries.length, tasks: summary.tasks, samples: results.length };
    },

    async outputDone(record, run) {
      const out = String(record.settings.out);
      return existsSync(join(out, 'summary.md')) && (await run.completion('merge')) !== undefined;
    },
  };
}

/**
 * Runs the eval through the executor; returns the merged summary, or undefined when --detach left the jobs
 * queued. Everything that can be checked here (options, data, selection, --ckpt) is, before submitting.
 */
export async function runEvalDistributed(
  suite: string,
  o: OptionValues,
  plan: EvalPlan,
  ex: ExecutorOptions,
): Promise<EvalSummary | undefined> {
  if (plan.tasks.length === 0) throw new UserError(`eval ${suite}: no tasks selected; nothing to run.`);
  if (o.out === undefined)
    throw new UserError(
      '--out DIR is needed with --executor or --tasks: a rerun with the same --out resumes the run.',
    );
  if (!o.oracle) {
    if (o.ckpt === undefined)
      throw new UserError('pass --ckpt DIR to evaluate a model, or --oracle to run the reference solutions.');
    if (!existsSync(String(o.ckpt))) throw new UserError(`--ckpt ${String(o.ckpt)}: no such directory.`);
  }
  const settings: Record<string, unknown> = Object.fromEntries(
    Object.entries(o).filter(([k]) => !(k in EVAL_EXECUTOR_FLAGS) && k !== 'quiet'),
  );
  settings.selection = selectionDigest(plan.tasks);
  const say = (line: string) => process.stderr.write(`eval ${suite}: ${line}\n`);
  const outcome = await runDistributed({ kind: `eval ${suite}`, tasks: ex.tasks, settings }, ex, say);
  if (outcome === 'detached') return undefined;
  return JSON.parse(await readFile(join(plan.outDir, 'summary.json'), 'utf8')) as EvalSummary;
}
