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

export const humaneval: Suite = {
  name: 'humaneval',
  async load({ dataDir }: LoadOptions): Promise<EvalTask[]> {
    const path = dataFile(dataDir, 'humaneval', 'HumanEval.jsonl.gz');
    const rows = await readJsonl<HumanEvalRow>(path);
    return rows.map((r) => {
      requireStrings(path, r as never, ['task_id', 'prompt', 'canonical_solution', 'test', 'entry_point']);
      return {
        id: r.task_id,
        prompt: r.prompt,
        reference: r.canonical_solution,
        stop: HUMANEVAL_STOP,
        program: (c: string) => humanEvalProgram(r.prompt, c, r.test, r.entry_point),
        source: (c: string) => r.prompt + c,
      };
    });
  },
};
