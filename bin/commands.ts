import type { CommandSpec } from '../common/cli.ts';

/**
 * The one registry: every subcommand, loaded lazily so `sdt --help` stays fast. Each module exports
 * `command: CommandSpec` and lives at `<package>/commands/<the command's words joined by ->.ts`
 * (docs/architecture.md; test/layout.test.ts checks it). Add one entry per command.
 */
export interface CommandEntry {
  name: string;
  summary: string;
  load: () => Promise<{ command: CommandSpec }>;
}

export const commands: CommandEntry[] = [
  {
    name: 'demo',
    summary: 'the whole pipeline on the default data: tokenizer, dataset, training, sampling',
    load: () => import('./commands/demo.ts'),
  },
  {
    name: 'tokenizer train',
    summary: 'train a byte-level BPE tokenizer (tokenizer.json)',
    load: () => import('../pipelines/commands/tokenizer-train.ts'),
  },
  {
    name: 'tokenizer encode',
    summary: 'show the tokens of a text or file',
    load: () => import('../pipelines/commands/tokenizer-encode.ts'),
  },
  {
    name: 'tokenizer stats',
    summary: 'bytes/token of a tokenizer on a corpus split',
    load: () => import('../pipelines/commands/tokenizer-stats.ts'),
  },
  {
    name: 'data build',
    summary: 'build a tokenized dataset with dedup and tree-sitter spans',
    load: () => import('../pipelines/commands/data-build.ts'),
  },
  {
    name: 'data synth',
    summary: 'generate the synthetic code world: Python tasks with docstrings, references and tests',
    load: () => import('../pipelines/commands/data-synth.ts'),
  },
  {
    name: 'data inspect',
    summary: 'show dataset rows and their spans',
    load: () => import('../pipelines/commands/data-inspect.ts'),
  },
  {
    name: 'data export',
    summary: 'export a dataset to Parquet or JSONL',
    load: () => import('../pipelines/commands/data-export.ts'),
  },
  {
    name: 'data corrupt',
    summary: 'write mask/edit corruptions of a dataset to Arrow and show one as a diff',
    load: () => import('../pipelines/commands/data-corrupt.ts'),
  },
  {
    name: 'train',
    summary: 'train a model (mask then edit curriculum, or AR) through sdt-native',
    load: () => import('../trainer/commands/train.ts'),
  },
  {
    name: 'eval synth',
    summary: 'synthetic code world pass@k on held-out compositions',
    load: () => import('../eval/commands/eval-synth.ts'),
  },
  {
    name: 'eval humaneval',
    summary: 'HumanEval pass@k in the sandbox',
    load: () => import('../eval/commands/eval-humaneval.ts'),
  },
  {
    name: 'eval mbpp',
    summary: 'MBPP (test split 11-510) pass@k in the sandbox',
    load: () => import('../eval/commands/eval-mbpp.ts'),
  },
  {
    name: 'eval infill',
    summary: 'HumanEval-Infilling pass@k (single-line, multi-line, random-span)',
    load: () => import('../eval/commands/eval-infill.ts'),
  },
  {
    name: 'eval fix',
    summary: 'HumanEvalFix (Python) pass@k: repair buggy functions',
    load: () => import('../eval/commands/eval-fix.ts'),
  },
  {
    name: 'report pareto',
    summary: 'speed against quality over a grid of sampler settings: table and SVG',
    load: () => import('../eval/commands/report-pareto.ts'),
  },
  {
    name: 'sample',
    summary: 'complete prompts with a checkpoint (block diffusion or AR)',
    load: () => import('../posttrain/commands/sample.ts'),
  },
  {
    name: 'serve',
    summary: 'serve a checkpoint over HTTP: OpenAI completions API, metrics, a decoding playground',
    load: () => import('../serve/commands/serve.ts'),
  },
  {
    name: 'traj show',
    summary: 'replay a sampling trajectory; write it as SVG or HTML',
    load: () => import('../posttrain/commands/traj-show.ts'),
  },
  {
    name: 'traj generate',
    summary: 'K trajectories per prompt from a teacher checkpoint (resumable Arrow shards)',
    load: () => import('../posttrain/commands/traj-generate.ts'),
  },
  {
    name: 'traj score',
    summary: 'score trajectories: ELBO, Levenshtein surrogate, |tau|, verifier',
    load: () => import('../posttrain/commands/traj-score.ts'),
  },
  {
    name: 'traj filter',
    summary: 'keep the top-k trajectories per prompt by a score, with thresholds',
    load: () => import('../posttrain/commands/traj-filter.ts'),
  },
  {
    name: 'train --stage',
    summary: 'post-training stages: distill (constrained order), onpolicy (step reduction)',
    load: () => import('../posttrain/commands/train-stage.ts'),
  },
  {
    name: 'report speedup',
    summary: 'speedup of an on-policy run over its starting model vs training step (SVG)',
    load: () => import('../posttrain/commands/report-speedup.ts'),
  },
  {
    name: 'jobs status',
    summary: "a distributed run's tasks and merge: done, running, pending, failed (exit code, log)",
    load: () => import('../jobs/commands/jobs-status.ts'),
  },
  {
    name: 'jobs cancel',
    summary: "cancel a distributed run's queued and running jobs (finished parts are kept)",
    load: () => import('../jobs/commands/jobs-cancel.ts'),
  },
  {
    name: 'jobs task',
    summary: 'run one task or the merge of a distributed run (what the sbatch scripts call)',
    load: () => import('../jobs/commands/jobs-task.ts'),
  },
  {
    name: 'bench sample',
    summary: 'sampler speed vs block size and threshold, AR baseline',
    load: () => import('../bench/commands/bench-sample.ts'),
  },
];
