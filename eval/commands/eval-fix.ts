import { makeEvalCommand } from './eval.ts';

export const command = makeEvalCommand({
  suite: 'fix',
  summary: 'HumanEvalFix (Python): repair a buggy function given its unit tests',
  description:
    'Loads humanevalfix-python/humanevalpack-python.jsonl under --data. The prompt is the buggy function, its ' +
    'tests, the instruction "Fix bugs in <name>." and the declaration to continue; declaration + completion ' +
    'must pass the tests. With --oracle the fixed solutions must pass and the buggy ones must fail.',
  examples: ['sdt eval fix --oracle', 'sdt eval fix --ckpt runs/ckpt --limit 40'],
});
