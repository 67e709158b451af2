import type { EvalTask } from '../suites/types.ts';

/** What a generator wrote for one task: n completions, raw (before stop sequences are applied). */
export interface TaskGeneration {
  taskId: string;
  completions: string[];
  /** Tokens generated per completion, when the generator counts them. */
  tokens?: number[];
  /** Forward passes spent per completion, when known. */
  forwardPasses?: number[];
}

export interface GenerationStats {
  tokens: number;
  forwardPasses: number;
  /** Seconds spent generating (not executing). */
  seconds: number;
  /** Prompts shortened to fit the model's context. */
  truncatedPrompts?: number;
}

/** A source of completions: the oracle (reference solutions) or a model behind the sampler. */
export interface Generator {
  readonly name: string;
  /** Settings recorded in the summary (sampler flags, checkpoint...). */
  readonly settings: Record<string, unknown>;
  generate(
    tasks: EvalTask[],
    nSamples: number,
    onTask?: (g: TaskGeneration) => void,
  ): Promise<TaskGeneration[]>;
  stats(): GenerationStats;
  close(): Promise<void>;
}
