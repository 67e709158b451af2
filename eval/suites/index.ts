import { UserError } from '../../common/errors.ts';
import { fix } from './fix.ts';
import { humaneval } from './humaneval.ts';
import { infill } from './infill.ts';
import { mbpp } from './mbpp.ts';
import { synth } from './synth.ts';
import type { Suite } from './types.ts';

export const SUITES: Record<string, Suite> = { humaneval, mbpp, infill, fix, synth };

/** A suite by its name; an unknown name is a bad input that lists the known ones. */
export function suiteByName(name: string): Suite {
  const s = SUITES[name];
  if (!s) throw new UserError(`--suite ${name}: unknown; one of ${Object.keys(SUITES).join(', ')}.`);
  return s;
}

/** The prompts of a suite's first `limit` tasks, with the task ids (what the suite's verifier looks tasks up by). */
export async function suitePrompts(
  name: string,
  dataDir: string,
  limit: number,
): Promise<{ id: string; prompt: string }[]> {
  return (await suiteByName(name).load({ dataDir }))
    .slice(0, limit)
    .map((t) => ({ id: t.id, prompt: t.prompt }));
}
