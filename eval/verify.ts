/**
 * The verifier V of on-policy training (docs/distill.md): tree-sitter finds no ERROR/MISSING node in prompt +
 * completion, and where the prompt comes from a suite with unit tests, the tests pass in the sandbox.
 * Without tests, the function's body must also hold a statement besides comments and its docstring:
 * on-policy training rewards few steps, and a body of repeated comment lines is both cheap to decode and
 * valid syntax (measured: a run that could keep such bodies collapsed to them).
 */
import type { Verdict, Verifier } from '../schemas/trajectory.ts';
import { functionWritesCode, isSyntaxValid } from './report/syntax.ts';
import { cutCompletion } from './run.ts';
import type { SandboxPool } from './sandbox/pool.ts';
import { suiteByName } from './suites/index.ts';
import type { EvalTask } from './suites/types.ts';

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

/** The verifier post-training takes as a parameter: eval tasks by prompt key run their tests in `pool`. */
export function makeVerifier(tasks?: Map<string, EvalTask>, pool?: SandboxPool): Verifier {
  return (prompt, completion, promptKey, hitLimit) =>
    verify(prompt, completion, tasks?.get(promptKey), pool, hitLimit);
}

/** A suite's tasks by id (the prompt keys of trajectories generated from that suite). */
export async function loadSuiteTasks(suite: string, dataDir: string): Promise<Map<string, EvalTask>> {
  const tasks = await suiteByName(suite).load({ dataDir });
  return new Map(tasks.map((t) => [t.id, t]));
}
