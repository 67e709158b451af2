import { makeEvalCommand } from './eval.ts';

export const command = makeEvalCommand({
  suite: 'humaneval',
  summary: 'HumanEval: write function bodies from signatures and docstrings, scored by unit tests (pass@k)',
  description:
    "Loads humaneval/HumanEval.jsonl.gz under --data, prompts with each task's prompt, cuts completions at the " +
    'stop sequences (\\ndef , \\nclass , \\nif __name__, \\nprint(, \\n#, \\n@, \\n```) and runs prompt + completion + ' +
    'check(entry_point) in the sandbox. Writes results.jsonl, summary.json and summary.md to --out.',
  examples: [
    'sdt eval humaneval --oracle',
    'sdt eval humaneval --ckpt runs/ckpt --block 32 --threshold 0.9 --limit 20',
  ],
});
