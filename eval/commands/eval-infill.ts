import { INFILL_VARIANTS } from '../suites/infill.ts';
import { makeEvalCommand } from './eval.ts';

export const command = makeEvalCommand({
  suite: 'infill',
  summary:
    'HumanEval-Infilling: fill the gap between a prefix and a suffix (single-line, multi-line, random-span)',
  description:
    'Loads humaneval-infilling/<variant> under --data. The model sees <|fim_prefix|>prefix<|fim_suffix|>suffix' +
    '<|fim_middle|>; single-line middles are cut after their first newline; prefix + middle + suffix must pass ' +
    "HumanEval's tests.",
  extra: {
    variant: {
      type: 'string',
      description: 'which infilling set',
      choices: Object.keys(INFILL_VARIANTS),
      default: 'single-line',
    },
  },
  examples: [
    'sdt eval infill --oracle --variant multi-line',
    'sdt eval infill --ckpt runs/ckpt --variant random-span',
  ],
});
