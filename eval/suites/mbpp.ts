import { UserError } from '../../common/errors.ts';
import { dataFile } from '../paths.ts';
import { readJsonl, requireStrings } from './jsonl.ts';
import { MBPP_STOP } from './stop.ts';
import type { EvalTask, LoadOptions, Suite } from './types.ts';

interface MbppRow {
  task_id: number;
  text: string;
  code: string;
  test_setup_code: string;
  test_list: string[];
}

/** The test split of the upstream README: task ids 11-510. */
export const MBPP_TEST_IDS = { first: 11, last: 510 };
/** The few-shot examples of the paper's prompt: task ids 2, 3 and 4 (from the prompt split). */
export const MBPP_SHOT_IDS = [2, 3, 4];

const lf = (s: string) => s.replace(/\r\n/g, '\n');

/** One task in the benchmark's prompt format (Austin et al. 2021, upstream README). */
function question(r: MbppRow): string {
  return (
    `You are an expert Python programmer, and here is your task: ${r.text} ` +
    `Your code should pass these tests:\n\n${r.test_list.join('\n')}\n`
  );
}

/** The standard prompt: `shots` solved examples, then the task, ending in [BEGIN] for the model to answer. */
export function mbppPrompt(r: MbppRow, shots: MbppRow[]): string {
  const examples = shots.map((s) => `${question(s)}[BEGIN]\n${lf(s.code)}\n[DONE]\n`).join('');
  return `${examples}${question(r)}[BEGIN]\n`;
}

export const mbpp: Suite = {
  name: 'mbpp',
  async load({ dataDir, shots = 3 }: LoadOptions): Promise<EvalTask[]> {
    if (!Number.isInteger(shots) || shots < 0 || shots > MBPP_SHOT_IDS.length) {
      throw new UserError(`--shots must be an integer from 0 to ${MBPP_SHOT_IDS.length}; got ${shots}.`);
    }
    const path = dataFile(dataDir, 'mbpp', 'mbpp.jsonl');
    const rows = await readJsonl<MbppRow>(path);
    const byId = new Map(rows.map((r) => [r.task_id, r]));
    const examples = MBPP_SHOT_IDS.slice(0, shots).map((id) => {
      const r = byId.get(id);
      if (!r) throw new UserError(`${path}: few-shot example task ${id} is missing.`);
      return r;
    });
    const tasks: EvalTask[] = [];
    for (const r of rows) {
      if (r.task_id < MBPP_TEST_IDS.first || r.task_id > MBPP_TEST_IDS.last) continue;
      requireStrings(path, r as never, ['text', 'code', 'test_setup_code']);
      if (!Array.isArray(r.test_list)) throw new UserError(`${path}: task ${r.task_id} has no test_list.`);
      const setup = lf(r.test_setup_code);
      const tests = r.test_list.map(lf).join('\n');
      tasks.push({
        id: `mbpp/${r.task_id}`,
        prompt: mbppPrompt(r, examples),
        reference: lf(r.code),
        stop: MBPP_STOP,
        // Setup code may use what the solution defines (task 367 builds trees of its Node class), so it
        // runs after the completion.
        program: (c: string) => `${c}\n\n${setup}\n\n${tests}\n`,
        source: (c: string) => c,
      });
    }
    return tasks;
  },
};
