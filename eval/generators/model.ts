import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { UserError } from '../../common/errors.ts';
import { REPO_ROOT } from '../paths.ts';
import type { EvalTask } from '../suites/types.ts';
import type { GenerationStats, Generator, TaskGeneration } from './types.ts';

/** The sampler flags eval passes through (names as in `sdt-native serve`'s request settings). */
export interface SamplerFlags {
  mode: 'diffusion' | 'ar';
  block_size: number;
  threshold: number;
  max_new: number;
  temperature: number;
  top_p: number;
  seed: number;
}

/** One completion as the sampler client reports it. */
export interface SamplerCompletion {
  text: string;
  tokens: number;
  forwardPasses: number;
}

/**
 * The interface eval needs from the sampler's TS client (pipelines/sample/client.ts, SamplerClient):
 * generate(prompts, settings) -> completions with token and forward-pass counts, plus the time spent.
 */
export interface SamplerClientLike {
  generate(
    prompts: string[],
    settings: SamplerFlags,
  ): Promise<{ completions: SamplerCompletion[]; seconds: number }>;
  close(): Promise<void>;
}

/** Fill-in-the-middle prompts use the tokenizer's FIM tokens in prefix-suffix-middle order. */
export function fimPrompt(prefix: string, suffix: string): string {
  return `<|fim_prefix|>${prefix}<|fim_suffix|>${suffix}<|fim_middle|>`;
}

export function promptFor(task: EvalTask): string {
  return task.suffix === undefined ? task.prompt : fimPrompt(task.prompt, task.suffix);
}

/**
 * Completions from a checkpoint through the sampler. Tasks go in batches of `batch` prompts; sample i of
 * a task uses seed + i so that n samples differ when the temperature is above zero.
 */
export class ModelGenerator implements Generator {
  readonly name = 'model';
  readonly settings: Record<string, unknown>;
  private totals: GenerationStats = { tokens: 0, forwardPasses: 0, seconds: 0 };

  constructor(
    private readonly client: SamplerClientLike,
    private readonly flags: SamplerFlags,
    ckpt: string,
    private readonly batch = 8,
  ) {
    this.settings = { ckpt, ...flags };
  }

  async generate(
    tasks: EvalTask[],
    nSamples: number,
    onTask?: (g: TaskGeneration) => void,
  ): Promise<TaskGeneration[]> {
    const out: TaskGeneration[] = tasks.map((t) => ({
      taskId: t.id,
      completions: [],
      tokens: [],
      forwardPasses: [],
    }));
    for (let sample = 0; sample < nSamples; sample++) {
      const flags = { ...this.flags, seed: this.flags.seed + sample };
      for (let i = 0; i < tasks.length; i += this.batch) {
        const slice = tasks.slice(i, i + this.batch);
        const res = await this.client.generate(slice.map(promptFor), flags);
        if (res.completions.length !== slice.length) {
          throw new Error(
            `sampler returned ${res.completions.length} completions for ${slice.length} prompts`,
          );
        }
        this.totals.seconds += res.seconds;
        res.completions.forEach((c, j) => {
          const g = out[i + j];
          g.completions.push(c.text);
          g.tokens!.push(c.tokens);
          g.forwardPasses!.push(c.forwardPasses);
          this.totals.tokens += c.tokens;
          this.totals.forwardPasses += c.forwardPasses;
          if (sample === nSamples - 1) onTask?.(g);
        });
      }
    }
    return out;
  }

  stats(): GenerationStats {
    return { ...this.totals };
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

/**
 * Open the sampler client for a checkpoint. The client is another part's module; it is loaded at run time
 * so that eval (and its oracle) works before that part exists.
 */
export async function openSamplerClient(ckpt: string): Promise<SamplerClientLike> {
  const path = join(REPO_ROOT, 'pipelines', 'sample', 'client.ts');
  if (!existsSync(path)) {
    throw new UserError(
      `the model generator needs the sampler client (${path}), which is not built yet; use --oracle to check the harness.`,
    );
  }
  const mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  const open = (mod.openSamplerClient ?? (mod.SamplerClient as { open?: unknown } | undefined)?.open) as
    | ((ckpt: string) => Promise<SamplerClientLike>)
    | undefined;
  if (typeof open !== 'function') {
    throw new UserError(`${path} exports neither openSamplerClient(ckpt) nor SamplerClient.open(ckpt).`);
  }
  return open(ckpt);
}
