/**
 * The verifier V of on-policy training (docs/distill.md): tree-sitter finds no ERROR/MISSING node in prompt +
 * completion, and where the prompt comes from a suite with unit tests, the tests pass in the sandbox.
 * Without tests, the function's body must also hold a statement besides comments and its docstring:
 * on-policy training rewards few steps, and a body of repeated comment lines is both cheap to decode and
 * valid syntax (measured: a run that could keep such bodies collapsed to them).
 */
import { functionWritesCode, isSyntaxValid } from '../../eval/report/syntax.ts';
import { cutCompletion } from '../../eval/run.ts';
import type { SandboxPool } from '../../eval/sandbox/pool.ts';
import type { EvalTask } from '../../eval/suites/types.ts';

export interface Verdict {
  syntaxOk: boolean;
  /** null: the prompt carries no tests. */
  testsPass: boolean | null;
}

/** 1 when everything that could be checked passed, else 0. */
export const verdictValue = (v: Verdict): number => (v.syntaxOk && v.testsPass !== false ? 1 : 0);

/**
 * The body of a function prompt: the completion up to the first line that starts at column 0 (the model
 * went on past the function). When generation stopped at the token limit inside the body, its last line
 * may be cut in the middle, so it is dropped.
 */
export function functionBody(completion: string, hitLimit: boolean): string {
  const lines = completion.split('\n');
  const end = lines.findIndex((l, i) => i > 0 && l.length > 0 && !/^[ \t]/.test(l));
  if (end >= 0) return `${lines.slice(0, end).join('\n')}\n`;
  if (hitLimit && lines.length > 1) return `${lines.slice(0, -1).join('\n')}\n`;
  return completion;
}

export async function verify(
  promptText: string,
  completion: string,
  task: EvalTask | undefined,
  pool: SandboxPool | undefined,
  hitLimit = false,
): Promise<Verdict> {
  if (!task) {
    const fn = promptText + functionBody(completion, hitLimit);
    return { syntaxOk: isSyntaxValid(fn) && functionWritesCode(fn), testsPass: null };
  }
  const cut = cutCompletion(task, completion);
  const syntaxOk = isSyntaxValid(task.source(cut));
  if (!pool) return { syntaxOk, testsPass: null };
  // Code that does not parse cannot pass; skip the sandbox run.
  if (!syntaxOk) return { syntaxOk, testsPass: false };
  const r = await pool.run(task.program(cut));
  return { syntaxOk, testsPass: r.passed };
}
