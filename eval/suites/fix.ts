import { dataFile } from '../paths.ts';
import { readJsonl, requireStrings } from './jsonl.ts';
import { HUMANEVAL_STOP } from './stop.ts';
import type { EvalTask, LoadOptions, Suite } from './types.ts';

interface FixRow {
  task_id: string;
  declaration: string;
  buggy_solution: string;
  canonical_solution: string;
  test: string;
  entry_point: string;
}

/**
 * The HumanEvalFix prompt ("tests" variant of HumanEvalPack): the buggy function and its unit tests, an
 * instruction, then the fixed function's declaration for the model to continue with a corrected body.
 */
export function fixPrompt(r: FixRow): string {
  return (
    `${r.declaration}${r.buggy_solution}\n${r.test.trim()}\n\n` +
    `# Fix bugs in ${r.entry_point}. The corrected function:\n${r.declaration}`
  );
}

/** The HumanEvalPack tests already end with check(entry_point); add the call where a row lacks it. */
function testWithCall(r: FixRow): string {
  const call = `check(${r.entry_point})`;
  return r.test.trimEnd().endsWith(call) ? r.test : `${r.test}\n\n${call}\n`;
}

export const fix: Suite = {
  name: 'fix',
  async load({ dataDir }: LoadOptions): Promise<EvalTask[]> {
    const path = dataFile(dataDir, 'humanevalfix-python', 'humanevalpack-python.jsonl');
    const rows = await readJsonl<FixRow>(path);
    return rows.map((r) => {
      requireStrings(path, r as never, [
        'task_id',
        'declaration',
        'buggy_solution',
        'canonical_solution',
        'test',
        'entry_point',
      ]);
      return {
        id: r.task_id,
        prompt: fixPrompt(r),
        reference: r.canonical_solution,
        buggy: r.buggy_solution,
        stop: HUMANEVAL_STOP,
        program: (c: string) => `${r.declaration}${c}\n\n${testWithCall(r)}\n`,
        source: (c: string) => r.declaration + c,
      };
    });
  },
};
