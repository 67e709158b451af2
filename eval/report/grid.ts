import { join } from 'node:path';
import type { CommitOrder } from '../../schemas/engine.ts';
import { ModelGenerator, type SamplerClientLike, type SamplerFlags } from '../generators/model.ts';
import { runEval } from '../run.ts';
import type { EvalTask } from '../suites/types.ts';
import type { ParetoRow } from './pareto.ts';
import { syntaxValidRate } from './syntax.ts';

export interface GridSetting {
  mode: 'diffusion' | 'ar';
  block: number | null;
  threshold: number | null;
  /** Fixed rule: this many tokens per step (threshold null). */
  tokensPerStep?: number | null;
  /** Commit order of the threshold rule; confidence when absent (docs/sample.md). */
  order?: CommitOrder;
  /** Error budget of the threshold rule; none when absent. */
  errorBudget?: number;
}

/**
 * Every block x threshold pair in diffusion mode (under each commit order and error budget; 0 = none),
 * every block x fixed step size (the fixed rule: K tokens per step), then the autoregressive baseline
 * when asked.
 */
export function gridSettings(
  blocks: number[],
  thresholds: number[],
  ar: boolean,
  fixed: number[] = [],
  orders: CommitOrder[] = ['confidence'],
  errorBudgets: number[] = [0],
): GridSetting[] {
  const out: GridSetting[] = [];
  for (const block of blocks) {
    for (const order of orders)
      for (const budget of errorBudgets)
        for (const threshold of thresholds)
          out.push({
            mode: 'diffusion',
            block,
            threshold,
            ...(order === 'confidence' ? {} : { order }),
            ...(budget > 0 ? { errorBudget: budget } : {}),
          });
    for (const k of fixed) out.push({ mode: 'diffusion', block, threshold: null, tokensPerStep: k });
  }
  if (ar) out.push({ mode: 'ar', block: null, threshold: null });
  return out;
}

export function settingLabel(s: GridSetting, prefix = ''): string {
  if (s.mode === 'ar') return `${prefix}AR`;
  return s.tokensPerStep
    ? `${prefix}B${s.block} k${s.tokensPerStep}`
    : `${prefix}B${s.block} t${s.threshold}${s.order ? ` ${s.order}` : ''}${s.errorBudget ? ` E${s.errorBudget}` : ''}`;
}

export interface GridRunOptions {
  client: SamplerClientLike;
  ckpt: string;
  suite: string;
  tasks: EvalTask[];
  settings: GridSetting[];
  base: Omit<SamplerFlags, 'mode' | 'block' | 'threshold'>;
  concurrency: number;
  valLoss: number | null;
  outDir: string;
  quiet?: boolean;
  /** Put before every label (e.g. "student "), so rows of several checkpoints can share a report. */
  labelPrefix?: string;
}

/** Evaluate each setting on the tasks (one greedy sample each) and measure speed, pass@1 and syntax. */
export async function runGrid(o: GridRunOptions): Promise<ParetoRow[]> {
  const rows: ParetoRow[] = [];
  for (const s of o.settings) {
    const label = settingLabel(s, o.labelPrefix);
    // AR decoding commits one token per forward pass: block and threshold do not apply.
    const flags: SamplerFlags =
      s.mode === 'ar'
        ? { ...o.base, mode: 'ar' }
        : s.tokensPerStep
          ? {
              ...o.base,
              mode: 'diffusion',
              block: s.block ?? undefined,
              rule: 'fixed',
              tokensPerStep: s.tokensPerStep,
            }
          : {
              ...o.base,
              mode: 'diffusion',
              block: s.block ?? undefined,
              threshold: s.threshold ?? undefined,
              ...(s.order ? { order: s.order } : {}),
              ...(s.errorBudget ? { errorBudget: s.errorBudget } : {}),
            };
    const generator = new ModelGenerator(o.client, flags, o.ckpt);
    const { summary, results } = await runEval({
      suite: o.suite,
      tasks: o.tasks,
      generator,
      nSamples: 1,
      ks: [1],
      concurrency: o.concurrency,
      outDir: join(o.outDir, label.replace(/\s+/g, '_')),
      quiet: o.quiet,
    });
    const byId = new Map(o.tasks.map((t) => [t.id, t]));
    const sources = results.map((r) => byId.get(r.task_id)!.source(r.completion));
    rows.push({
      label,
      mode: s.mode,
      block: s.block,
      threshold: s.threshold,
      tokensPerStep: s.tokensPerStep ?? null,
      order: s.order ?? (s.mode === 'ar' || s.tokensPerStep ? null : 'confidence'),
      ...(s.errorBudget ? { errorBudget: s.errorBudget } : {}),
      tokensPerSecond: summary.tokens_per_second ?? 0,
      forwardPassesPerToken: summary.forward_passes_per_token,
      pass1: summary.pass_at_k['pass@1'] ?? 0,
      syntaxValid: syntaxValidRate(sources),
      valLoss: o.valLoss,
    });
  }
  return rows;
}
