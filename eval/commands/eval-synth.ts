import { makeEvalCommand } from './eval.ts';

export const command = makeEvalCommand({
  suite: 'synth',
  summary: 'the synthetic code world: held-out compositions, scored by their tests (pass@k)',
  description:
    'Loads DIR/test.jsonl (or validation.jsonl with --variant validation) written by `sdt data synth`, after ' +
    "checking the files against the directory's manifest. Prompts with each task's signature and docstring " +
    '(ending at its closing quotes), cuts completions at the HumanEval stop sequences and runs prompt + ' +
    'completion + check(entry_point) in the sandbox. Writes results.jsonl, summary.json and summary.md to --out.',
  extra: {
    data: {
      type: 'string',
      arg: 'DIR',
      description: 'task directory from `sdt data synth`',
      default: 'runs/synth',
    },
    variant: {
      type: 'string',
      description: 'which held-out split',
      default: 'test',
      choices: ['test', 'validation', 'train'],
    },
  },
  examples: [
    'sdt eval synth --oracle',
    'sdt eval synth --oracle --out runs/eval/synth-oracle --executor slurm --tasks 8 --partition cpu',
    'sdt eval synth --ckpt runs/recipe/ar/checkpoints/step-000600 --ar --data runs/recipe/synth',
    'sdt eval synth --ckpt runs/recipe/diffusion/checkpoints/step-002500 --data runs/recipe/synth --block 16 --max-new 96 --threshold 0.9 --order left-to-right',
  ],
});
