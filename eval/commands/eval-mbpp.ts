import { makeEvalCommand } from './eval.ts';

export const command = makeEvalCommand({
  suite: 'mbpp',
  summary:
    'MBPP: solve short Python tasks from a description and three test asserts (test split, ids 11-510)',
  description:
    'Loads mbpp/mbpp.jsonl under --data, builds the benchmark\'s prompt ("You are an expert Python programmer, ' +
    'and here is your task: ... Your code should pass these tests: ... [BEGIN]") after --shots solved examples ' +
    '(tasks 2, 3, 4), cuts completions at [DONE], and runs completion + test_setup_code + test_list.',
  extra: {
    shots: {
      type: 'number',
      min: 0,
      max: 3,
      integer: true,
      arg: 'N',
      description: 'few-shot examples in the prompt (0-3)',
      default: 3,
    },
  },
  examples: ['sdt eval mbpp --oracle', 'sdt eval mbpp --ckpt runs/ckpt --shots 0 --limit 50'],
});
