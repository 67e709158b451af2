import { join } from 'node:path';
import { AtomicWriteStream, atomicWriteFile, atomicWriteJson } from '../common/fs.ts';
import { Progress } from '../common/progress.ts';
import type { GenerationStats, Generator } from './generators/types.ts';
import { meanPassAtK } from './passk.ts';
import { describeCapabilities } from './sandbox/capabilities.ts';
import { SandboxPool } from './sandbox/pool.ts';
import { DEFAULT_LIMITS, type ErrorKind, type SandboxLimits } from './sandbox/types.ts';
import { truncateAtStop } from './suites/stop.ts';
import type { EvalTask } from './suites/types.ts';

/** One executed sample: a line of results.jsonl. */
export interface SampleResult {
  task_id: string;
  sample: number;
  completion: string;
  status: 'passed' | 'failed';
  error_kind: ErrorKind | null;
  error: string | null;
  time_ms: number;
  tokens?: number;
  forward_passes?: number;
}

export interface EvalSummary {
  suite: string;
  variant?: string;
  generator: string;
  settings: Record<string, unknown>;
  tasks: number;
  samples_per_task: number;
  pass_at_k: Record<string, number>;
  tasks_passed: number;
  samples_passed: number;
  error_kinds: Record<string, number>;
  /** Tasks none of whose samples passed. */
  failing_task_ids: string[];
  tokens: number;
  forward_passes: number;
  generation_seconds: number;
  /** Prompts the generator had to shorten to fit the model's context. */
  prompts_truncated: number;
  tokens_per_second: number | null;
  forward_passes_per_token: number | null;
  execution_seconds: number;
  sandbox: { mode: string; limits: SandboxLimits; concurrency: number };
}

export interface EvalRunOptions {
  suite: string;
  variant?: string;
  tasks: EvalTask[];
  generator: Generator;
  nSamples: number;
  ks: number[];
  concurrency: number;
  limits?: Partial<SandboxLimits>;
  python?: string;
  /** Write results.jsonl, summary.json and summary.md here (file names prefixed by `prefix`). */
  outDir?: string;
  prefix?: string;
  quiet?: boolean;
}

/** Apply a task's stop sequences to a raw completion. */
export function cutCompletion(task: EvalTask, raw: string): string {
  return truncateAtStop(raw, task.stop, task.keepStop ?? []);
}

/** Generate, cut at stop sequences, execute every sample in the sandbox, score, and write the results. */
export async function runEval(
  opts: EvalRunOptions,
): Promise<{ summary: EvalSummary; results: SampleResult[] }> {
  const limits = { ...DEFAULT_LIMITS, ...opts.limits };
  const pool = new SandboxPool({ concurrency: opts.concurrency, limits, python: opts.python });
  const total = opts.tasks.length * opts.nSamples;
  const progress = new Progress({ label: `eval ${opts.suite}`, total, unit: 'samples', quiet: opts.quiet });
  const byId = new Map(opts.tasks.map((t) => [t.id, t]));
  const pending: Promise<SampleResult>[] = [];
  const started = performance.now();
  let passed = 0;
  // Execution starts as soon as a task's completions arrive, so generation and execution overlap.
  const generations = await opts.generator.generate(opts.tasks, opts.nSamples, (g) => {
    const task = byId.get(g.taskId);
    if (!task) throw new Error(`generator returned unknown task ${g.taskId}`);
    g.completions.forEach((raw, sample) => {
      const completion = cutCompletion(task, raw);
      pending.push(
        pool.run(task.program(completion)).then((r) => {
          if (r.passed) passed++;
          progress.note(`passed ${passed}`);
          progress.tick();
          return {
            task_id: task.id,
            sample,
            completion,
            status: r.passed ? 'passed' : 'failed',
            error_kind: r.errorKind,
            error: r.error,
            time_ms: Math.round(r.durationMs),
            ...(g.tokens ? { tokens: g.tokens[sample] } : {}),
            ...(g.forwardPasses ? { forward_passes: g.forwardPasses[sample] } : {}),
          } satisfies SampleResult;
        }),
      );
    });
  });
  if (generations.length !== opts.tasks.length) {
    throw new Error(`generator returned ${generations.length} tasks for ${opts.tasks.length}`);
  }
  const results = await Promise.all(pending);
  progress.done();
  const order = new Map(opts.tasks.map((t, i) => [t.id, i]));
  results.sort((a, b) => order.get(a.task_id)! - order.get(b.task_id)! || a.sample - b.sample);
  const summary = summarize(
    { ...opts, taskIds: opts.tasks.map((t) => t.id) },
    results,
    opts.generator.stats(),
    { mode: describeCapabilities(pool.capabilities), limits },
    (performance.now() - started) / 1000,
  );
  if (opts.outDir) await writeOutputs(opts.outDir, opts.prefix ?? '', summary, results);
  return { summary, results };
}

/** What a summary is about besides its results: the run's settings and the tasks, in order. */
export interface SummaryScope {
  suite: string;
  variant?: string;
  generator: { name: string; settings: Record<string, unknown> };
  taskIds: string[];
  nSamples: number;
  ks: number[];
  concurrency: number;
}

/**
 * The summary of `results` (in task order). A distributed eval (eval/distributed.ts) calls this with the
 * parts' results concatenated and their generation stats summed, so its summary is the local one's.
 */
export function summarize(
  opts: SummaryScope,
  results: SampleResult[],
  stats: GenerationStats,
  sandbox: { mode: string; limits: SandboxLimits },
  seconds: number,
): EvalSummary {
  const perTask = new Map<string, { n: number; c: number }>(opts.taskIds.map((id) => [id, { n: 0, c: 0 }]));
  const kinds: Record<string, number> = {};
  for (const r of results) {
    const t = perTask.get(r.task_id)!;
    t.n++;
    if (r.status === 'passed') t.c++;
    else kinds[r.error_kind ?? 'unknown'] = (kinds[r.error_kind ?? 'unknown'] ?? 0) + 1;
  }
  return {
    suite: opts.suite,
    ...(opts.variant ? { variant: opts.variant } : {}),
    generator: opts.generator.name,
    settings: opts.generator.settings,
    tasks: opts.taskIds.length,
    samples_per_task: opts.nSamples,
    pass_at_k: meanPassAtK([...perTask.values()], opts.ks),
    tasks_passed: [...perTask.values()].filter((t) => t.c > 0).length,
    samples_passed: results.filter((r) => r.status === 'passed').length,
    error_kinds: kinds,
    failing_task_ids: [...perTask.entries()].filter(([, t]) => t.c === 0).map(([id]) => id),
    tokens: stats.tokens,
    forward_passes: stats.forwardPasses,
    generation_seconds: stats.seconds,
    prompts_truncated: stats.truncatedPrompts ?? 0,
    tokens_per_second: stats.seconds > 0 && stats.tokens > 0 ? stats.tokens / stats.seconds : null,
    forward_passes_per_token: stats.tokens > 0 ? stats.forwardPasses / stats.tokens : null,
    execution_seconds: seconds,
    sandbox: { mode: sandbox.mode, limits: sandbox.limits, concurrency: opts.concurrency },
  };
}

const fmt = (x: number | null, digits = 2) => (x === null ? 'n/a' : x.toFixed(digits));

export function summaryMarkdown(s: EvalSummary): string {
  const lines = [
    `# Evaluation: ${s.suite}${s.variant ? ` (${s.variant})` : ''}, generator ${s.generator}`,
    '',
    '| metric | value |',
    '|---|---|',
    ...Object.entries(s.pass_at_k).map(([k, v]) => `| ${k} | ${(100 * v).toFixed(2)}% |`),
    `| tasks passed (any sample) | ${s.tasks_passed} / ${s.tasks} |`,
    `| samples passed | ${s.samples_passed} / ${s.tasks * s.samples_per_task} |`,
    `| tokens/s | ${fmt(s.tokens_per_second, 1)} |`,
    `| forward passes per token | ${fmt(s.forward_passes_per_token, 3)} |`,
    `| generation time | ${s.generation_seconds.toFixed(1)} s |`,
    `| prompts cut to fit the context | ${s.prompts_truncated} |`,
    `| wall time | ${s.execution_seconds.toFixed(1)} s |`,
    '',
    '## Settings',
    '',
    ...Object.entries(s.settings).map(([k, v]) => `- ${k}: ${JSON.stringify(v)}`),
    `- sandbox: ${s.sandbox.mode}; concurrency ${s.sandbox.concurrency}; ` +
      `timeout ${s.sandbox.limits.timeoutMs} ms, memory ${s.sandbox.limits.memoryBytes >> 20} MiB`,
    '',
    '## Failures by kind',
    '',
    ...(Object.keys(s.error_kinds).length === 0
      ? ['none']
      : Object.entries(s.error_kinds).map(([k, v]) => `- ${k}: ${v}`)),
  ];
  if (s.failing_task_ids.length > 0) {
    lines.push(
      '',
      `## Tasks with no passing sample (${s.failing_task_ids.length})`,
      '',
      s.failing_task_ids.join(', '),
    );
  }
  return `${lines.join('\n')}\n`;
}

export async function writeOutputs(
  dir: string,
  prefix: string,
  s: EvalSummary,
  results: SampleResult[],
): Promise<void> {
  const out = await AtomicWriteStream.open(join(dir, `${prefix}results.jsonl`));
  try {
    for (const r of results) await out.write(`${JSON.stringify(r)}\n`);
    await out.commit();
  } catch (err) {
    await out.abort();
    throw err;
  }
  await atomicWriteJson(join(dir, `${prefix}summary.json`), s);
  await atomicWriteFile(join(dir, `${prefix}summary.md`), summaryMarkdown(s));
}
