import { join } from 'node:path';
import { UserError } from '../../common/errors.ts';
import { verifySynthDir } from '../../pipelines/synth/manifest.ts';
import { humanEvalTask } from './humaneval.ts';
import { readJsonl, requireStrings } from './jsonl.ts';
import type { EvalTask, LoadOptions, Suite } from './types.ts';

interface SynthRow {
  id: string;
  prompt: string;
  completion: string;
  test: string;
  entry_point: string;
}

/**
 * The synthetic code world's tasks (`sdt data synth`), scored by the tests made from their reference.
 * --variant picks the split: test or validation (held-out compositions never seen in training) or
 * train. Without a variant (trajectory scoring, on-policy rounds) every split is loaded, train first, so
 * a pool drawn from the first tasks learns from train while validation ids still find their tests.
 */
export const synth: Suite = {
  name: 'synth',
  async load({ dataDir, variant }: LoadOptions): Promise<EvalTask[]> {
    const splits = variant === undefined ? ['train', 'validation', 'test'] : [variant];
    for (const s of splits)
      if (!['train', 'validation', 'test'].includes(s))
        throw new UserError(`synth: --variant must be test, validation or train; got ${s}.`);
    await verifySynthDir(dataDir);
    const tasks: EvalTask[] = [];
    for (const split of splits) {
      const path = join(dataDir, `${split}.jsonl`);
      const rows = await readJsonl<SynthRow>(path);
      if (rows.length === 0 && variant !== undefined)
        throw new UserError(`${path} holds no tasks; generate some with \`sdt data synth --${split} N\`.`);
      for (const r of rows) {
        requireStrings(path, r as never, ['id', 'prompt', 'completion', 'test', 'entry_point']);
        tasks.push(humanEvalTask(r.id, r.prompt, r.completion, r.test, r.entry_point));
      }
    }
    return tasks;
  },
};
