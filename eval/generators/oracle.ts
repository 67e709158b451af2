import type { EvalTask } from '../suites/types.ts';
import type { GenerationStats, Generator, TaskGeneration } from './types.ts';

/**
 * Returns each task's reference completion (or, with `buggy`, HumanEvalFix's buggy one) n times: a check
 * of the suite's prompts, programs and sandbox, which must score the references as the benchmark does.
 */
export class OracleGenerator implements Generator {
  readonly name: string;
  readonly settings: Record<string, unknown>;
  constructor(private readonly which: 'reference' | 'buggy' = 'reference') {
    this.name = which === 'buggy' ? 'oracle-buggy' : 'oracle';
    this.settings = { generator: this.name };
  }
  async generate(
    tasks: EvalTask[],
    nSamples: number,
    onTask?: (g: TaskGeneration) => void,
  ): Promise<TaskGeneration[]> {
    return tasks.map((t) => {
      const text = this.which === 'buggy' ? t.buggy : t.reference;
      if (text === undefined) throw new Error(`task ${t.id} has no ${this.which} solution`);
      const g = { taskId: t.id, completions: Array.from({ length: nSamples }, () => text) };
      onTask?.(g);
      return g;
    });
  }
  stats(): GenerationStats {
    return { tokens: 0, forwardPasses: 0, seconds: 0 };
  }
  async close(): Promise<void> {}
}
