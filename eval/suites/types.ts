/** One benchmark problem, ready for a generator and for the sandbox. */
export interface EvalTask {
  id: string;
  /** What the model sees: the prompt, or for infilling the text before the gap. */
  prompt: string;
  /** Infilling only: the text after the gap. */
  suffix?: string;
  /** The reference completion (what the oracle generator returns). */
  reference: string;
  /** HumanEvalFix only: the buggy completion, which must fail the tests. */
  buggy?: string;
  /** Completions are cut at the first of these. */
  stop: string[];
  /** Stops that stay in the completion when it is cut (the newline ending a single-line infill). */
  keepStop?: string[];
  /** The Python program that runs the suite's tests on a completion. */
  program(completion: string): string;
  /** The code as a module, for syntax checks: prompt + completion (+ suffix). */
  source(completion: string): string;
}

export interface LoadOptions {
  dataDir: string;
  /** Suite-specific variant (infilling: single-line, multi-line, random-span, random-span-light). */
  variant?: string;
  /** MBPP: number of few-shot examples in the prompt (0 or up to 3). */
  shots?: number;
}

export interface Suite {
  name: string;
  load(opts: LoadOptions): Promise<EvalTask[]>;
}
