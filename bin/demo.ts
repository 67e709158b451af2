import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type CommandSpec, num, str } from '../common/cli.ts';
import { UserError } from '../common/errors.ts';
import { formatDuration } from '../common/progress.ts';
import { latestCheckpoint } from '../schemas/checkpoint.ts';

/**
 * `sdt demo`: the README's main job, end to end on the default data. Each stage is the ordinary command a
 * user would run (so the demo shows how to chain them), and each is skipped or resumed when its output is
 * already there, so a rerun after Ctrl-C continues instead of starting over.
 */
interface Stage {
  title: string;
  /** Output that proves the stage is done; the stage is skipped when it exists. */
  doneWhen?: string;
  argv: () => string[];
}

async function runStage(stage: Stage, index: number, total: number): Promise<void> {
  const { main } = await import('./main.ts');
  const header = `\n== [${index + 1}/${total}] ${stage.title}`;
  if (stage.doneWhen && existsSync(stage.doneWhen)) {
    process.stderr.write(`${header}: already done (${stage.doneWhen}), skipped\n`);
    return;
  }
  const argv = stage.argv();
  process.stderr.write(`${header}\n   sdt ${argv.join(' ')}\n`);
  const t0 = performance.now();
  const code = await main(argv);
  if (code !== 0)
    throw new UserError(
      `demo stage "${stage.title}" failed (exit ${code}); fix it and rerun \`sdt demo\`: finished stages are kept.`,
    );
  process.stderr.write(`   done in ${formatDuration((performance.now() - t0) / 1000)}\n`);
}

/** Train, or resume a stopped run in the same directory. */
function trainArgs(run: string, extra: string[]): string[] {
  return existsSync(join(run, 'checkpoints')) && latestCheckpoint(run)
    ? ['train', '--resume', run]
    : ['train', ...extra, '--out', run];
}

export const command: CommandSpec = {
  name: 'demo',
  summary: 'the whole pipeline on the default data: tokenizer, dataset, diffusion + AR training, sampling',
  description: `Runs, in order (each an ordinary sdt command, skipped or resumed when its output exists):
  1. sdt tokenizer train        BPE on the python3 standard library (test folders held out)
  2. sdt data build             Arrow shards with tree-sitter spans
  3. sdt train --objective ar   the autoregressive baseline (causal attention)
  4. sdt train --init-from AR   the diffusion model, adapted from the AR weights: mask stage, then edit stage
  5. sdt bench sample           block-parallel decoding against AR: tokens/s and syntax validity
A diffusion model trained from scratch for the same few minutes stays near the unigram level (measured:
docs/train.md), so the demo adapts the AR model instead; the diffusion model has then seen twice the
tokens of the AR baseline, which the sampling table should be read with.`,
  options: {
    out: {
      type: 'string',
      description: 'directory for everything the demo writes',
      default: 'runs/demo',
      arg: 'DIR',
    },
    config: {
      type: 'string',
      description: 'train config for both models',
      default: 'data/configs/demo.json',
      arg: 'FILE',
    },
    steps: { type: 'number', description: "optimizer steps per model (0: the config's)", default: 1200 },
    'vocab-size': { type: 'number', description: 'tokenizer vocabulary size', default: 4096 },
    prompts: {
      type: 'number',
      description: 'held-out function headers completed in the sampling stage',
      default: 16,
    },
    'max-new': { type: 'number', description: 'tokens generated per prompt', default: 48 },
  },
  async run(opts) {
    const out = str(opts, 'out');
    const tokenizer = join(out, 'tokenizer.json');
    const data = join(out, 'data');
    const diffusion = join(out, 'diffusion');
    const ar = join(out, 'ar');
    const steps = num(opts, 'steps');
    const common = [
      '--config',
      str(opts, 'config'),
      '--dataset',
      data,
      ...(steps > 0 ? ['--steps', String(steps)] : []),
    ];
    const stages: Stage[] = [
      {
        title: 'tokenizer',
        doneWhen: tokenizer,
        argv: () => [
          'tokenizer',
          'train',
          '--out',
          tokenizer,
          '--vocab-size',
          String(num(opts, 'vocab-size')),
        ],
      },
      { title: 'dataset', argv: () => ['data', 'build', '--tokenizer', tokenizer, '--out', data] },
      {
        title: 'AR baseline (causal, same size and data)',
        doneWhen: join(ar, 'summary.json'),
        argv: () => trainArgs(ar, [...common, '--objective', 'ar']),
      },
      {
        title: 'diffusion model adapted from the AR model (mask stage, then edit stage)',
        doneWhen: join(diffusion, 'summary.json'),
        argv: () => {
          const init = latestCheckpoint(ar);
          if (!init) throw new UserError(`no complete checkpoint in ${ar}; rerun \`sdt demo\`.`);
          return trainArgs(diffusion, [...common, '--objective', 'diffusion', '--init-from', init.path]);
        },
      },
      {
        title: 'block-parallel sampling against AR',
        argv: () => {
          const d = latestCheckpoint(diffusion);
          const a = latestCheckpoint(ar);
          if (!d || !a)
            throw new UserError(`no complete checkpoint in ${diffusion} or ${ar}; rerun \`sdt demo\`.`);
          return [
            'bench',
            'sample',
            '--ckpt',
            d.path,
            '--ar-ckpt',
            a.path,
            '--blocks',
            '4,8,16,32',
            '--thresholds',
            '0.9',
            '--batch',
            '8',
            '--prompts',
            String(num(opts, 'prompts')),
            '--max-new',
            String(num(opts, 'max-new')),
            '--out',
            join(out, 'bench'),
          ];
        },
      },
    ];
    const t0 = performance.now();
    for (const [i, s] of stages.entries()) await runStage(s, i, stages.length);
    process.stderr.write(
      `\nsdt demo: finished in ${formatDuration((performance.now() - t0) / 1000)}; outputs in ${out}/\n`,
    );
    return 0;
  },
};
