import { dataFile } from '../paths.ts';
import { readJsonl, requireStrings } from './jsonl.ts';
import { HUMANEVAL_STOP } from './stop.ts';
import type { EvalTask, LoadOptions, Suite } from './types.ts';

interface HumanEvalRow {
  task_id: string;
  prompt: string;
  canonical_solution: string;
  test: string;
  entry_point: string;
}

/** The HumanEval check: prompt + completion defines the function, `check(entry_point)` tests it. */
export function humanEvalProgram(prefix: string, completion: string, test: string, entry: string): string {
  return `${prefix}${completion}\n\n${test}\n\ncheck(${entry})\n`;
}

/** A task of the HumanEval shape: a prompt the completion continues, scored by `check(entry)`. */
export function humanEvalTask(
  id: string,
  prompt: string,
  reference: string,
  test: string,
  entry: string,
): EvalTask {
  return {
    id,
    prompt,
    reference,
    stop: HUMANEVAL_STOP,
    program: (c: string) => humanEvalProgram(prompt, c, test, entry),
    source: (c: string) => prompt + c,
  };
}

export const humaneval: Suite = {
  name: 'humaneval',
  async load({ dataDir }: LoadOptions): Promise<EvalTask[]> {
    const path = dataFile(dataDir, 'humaneval', 'HumanEval.jsonl.gz');
    const rows = await readJsonl<HumanEvalRow>(path);
    return rows.map((r) => {
      requireStrings(path, r as never, ['task_id', 'prompt', 'canonical_solution', 'test', 'entry_point']);
      return humanEvalTask(r.task_id, r.prompt, r.canonical_solution, r.test, r.entry_point);
    });
  },
};
