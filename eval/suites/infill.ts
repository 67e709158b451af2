import { UserError } from '../../common/errors.ts';
import { dataFile } from '../paths.ts';
import { humanEvalProgram } from './humaneval.ts';
import { readJsonl, requireStrings } from './jsonl.ts';
import { SINGLE_LINE_STOP } from './stop.ts';
import type { EvalTask, LoadOptions, Suite } from './types.ts';

interface InfillRow {
  task_id: string;
  prompt: string;
  suffix: string;
  canonical_solution: string;
  test: string;
  entry_point: string;
}

export const INFILL_VARIANTS: Record<string, string> = {
  'single-line': 'HumanEval-SingleLineInfilling.jsonl.gz',
  'multi-line': 'HumanEval-MultiLineInfilling.jsonl.gz',
  'random-span': 'HumanEval-RandomSpanInfilling.jsonl.gz',
  'random-span-light': 'HumanEval-RandomSpanInfillingLight.jsonl.gz',
};

/**
 * HumanEval-Infilling (Bavarian et al. 2022): the model sees the text before and after a gap and writes
 * the middle; prefix + middle + suffix must pass HumanEval's tests. Single-line middles end at their first
 * newline; multi-line and random-span middles end where the generator stops (end of sequence).
 */
export const infill: Suite = {
  name: 'infill',
  async load({ dataDir, variant = 'single-line' }: LoadOptions): Promise<EvalTask[]> {
    const file = INFILL_VARIANTS[variant];
    if (!file) {
      throw new UserError(
        `--variant must be one of ${Object.keys(INFILL_VARIANTS).join(', ')}; got ${JSON.stringify(variant)}.`,
      );
    }
    const path = dataFile(dataDir, 'humaneval-infilling', file);
    const rows = await readJsonl<InfillRow>(path);
    const single = variant === 'single-line';
    return rows.map((r) => {
      requireStrings(path, r as never, [
        'task_id',
        'prompt',
        'suffix',
        'canonical_solution',
        'test',
        'entry_point',
      ]);
      return {
        id: r.task_id,
        prompt: r.prompt,
        suffix: r.suffix,
        reference: r.canonical_solution,
        stop: single ? SINGLE_LINE_STOP : [],
        keepStop: single ? SINGLE_LINE_STOP : [],
        program: (c: string) => humanEvalProgram(r.prompt, c + r.suffix, r.test, r.entry_point),
        source: (c: string) => r.prompt + c + r.suffix,
      };
    });
  },
};
