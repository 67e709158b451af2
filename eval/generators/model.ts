import { UserError } from '../../common/errors.ts';
import { EngineClient, withBos } from '../../engine/client.ts';
import type { SampleSettings } from '../../schemas/engine.ts';
import type { EvalTask } from '../suites/types.ts';
import type { GenerationStats, Generator, TaskGeneration } from './types.ts';

/** sdt-native's max_new when a request leaves it out. */
const DEFAULT_MAX_NEW = 128;

/** The sampler settings, exactly as the sampler client takes them. */
export type SamplerFlags = SampleSettings;

/** A plain prompt, or a fill-in-the-middle one (text before and after the gap). */
export type SamplerPrompt = { text: string } | { prefix: string; suffix: string };

/** One completion as the sampler reports it. */
export interface SamplerCompletion {
  text: string;
  tokens: number;
  forwardPasses: number;
}

/**
 * What eval needs from the sampler: generate(prompts, settings) -> completions with token and
 * forward-pass counts, plus the seconds the sampler spent. `openSamplerClient` adapts EngineClient.
 */
export interface SamplerClientLike {
  generate(
    prompts: SamplerPrompt[],
    settings: SamplerFlags,
  ): Promise<{ completions: SamplerCompletion[]; seconds: number; truncatedPrompts?: number }>;
  close(): Promise<void>;
}

/**
 * What the sampler is given for a task. A plain prompt loses its final line break: in the training data
 * a line break and the next line's indentation are one token, so a prompt ending in `\n` (as HumanEval's
 * do) leaves the model a token boundary it never saw; the completion then starts with that token, and
 * the program (the task's prompt + completion) only gains a blank line.
 */
export function promptFor(task: EvalTask): SamplerPrompt {
  if (task.suffix !== undefined) return { prefix: task.prompt, suffix: task.suffix };
  return { text: task.prompt.endsWith('\n') ? task.prompt.slice(0, -1) : task.prompt };
}

/**
 * Prompts per sampler request. A sequence's seed mixes the request seed with its index in the batch, so a
 * distributed eval cuts the suite at multiples of this (eval/distributed.ts) to keep every batch whole.
 */
export const PROMPTS_PER_BATCH = 8;

/**
 * Completions from a checkpoint through the sampler. Tasks go in batches of `batch` prompts; sample i of
 * a task uses seed + i so that n samples differ when the temperature is above zero.
 */
export class ModelGenerator implements Generator {
  readonly name = 'model';
  readonly settings: Record<string, unknown>;
  private totals: GenerationStats = { tokens: 0, forwardPasses: 0, seconds: 0, truncatedPrompts: 0 };

  constructor(
    private readonly client: SamplerClientLike,
    private readonly flags: SamplerFlags,
    ckpt: string,
    private readonly batch = PROMPTS_PER_BATCH,
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
      const flags = { ...this.flags, seed: (this.flags.seed ?? 0) + sample };
      for (let i = 0; i < tasks.length; i += this.batch) {
        const slice = tasks.slice(i, i + this.batch);
        const res = await this.client.generate(slice.map(promptFor), flags);
        if (res.completions.length !== slice.length) {
          throw new Error(
            `sampler returned ${res.completions.length} completions for ${slice.length} prompts`,
          );
        }
        this.totals.seconds += res.seconds;
        this.totals.truncatedPrompts! += res.truncatedPrompts ?? 0;
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
 * Token ids of a prompt that fit in `room` positions. A plain prompt starts with `bos` (when >= 0), as every
 * training document does and as the engine client sends text prompts, and keeps its end; a FIM prompt keeps
 * the text nearest the gap, dropping the start of the prefix and the end of the suffix, never the markers.
 */
export function fitPrompt(
  prefix: Int32Array,
  suffix: Int32Array | null,
  room: number,
  special: { fimPrefix: number; fimSuffix: number; fimMiddle: number },
  bos = -1,
): { ids: Int32Array; cut: boolean } {
  if (suffix === null) {
    const keep = bos >= 0 ? room - 1 : room;
    const cut = prefix.length > keep;
    return { ids: withBos(cut ? prefix.slice(prefix.length - keep) : prefix, bos), cut };
  }
  let pre = prefix;
  let suf = suffix;
  const over = pre.length + suf.length + 3 - room;
  if (over > 0) {
    const fromSuffix = Math.min(suf.length, Math.ceil(over / 2));
    suf = suf.slice(0, suf.length - fromSuffix);
    pre = pre.slice(Math.min(pre.length, over - fromSuffix));
  }
  const ids = Int32Array.from([special.fimPrefix, ...pre, special.fimSuffix, ...suf, special.fimMiddle]);
  return { ids, cut: over > 0 };
}

/**
 * Open the sampler (`sdt-native serve` behind EngineClient) on a checkpoint. Infilling prompts become
 * <|fim_prefix|> prefix <|fim_suffix|> suffix <|fim_middle|> with the special token ids (tokenizing the
 * marker text would give ordinary bytes).
 */
export async function openSamplerClient(
  ckpt: string,
  device: 'cpu' | 'cuda' = 'cpu',
): Promise<SamplerClientLike> {
  const client = await EngineClient.start({ ckpt, device });
  const tok = client.tokenizer;
  if (!tok) throw new UserError(`--ckpt ${ckpt}: no tokenizer.json there; eval needs text prompts.`);
  const context = client.info.max_position_embeddings;
  const encode = (p: SamplerPrompt, room: number) =>
    'text' in p
      ? fitPrompt(tok.encode(p.text), null, room, tok.special, client.info.bos_token_id)
      : fitPrompt(tok.encode(p.prefix), tok.encode(p.suffix), room, tok.special);
  return {
    async generate(prompts, settings) {
      // Leave room for the tokens to generate, but never less than half the context for the prompt.
      const room = Math.max(Math.floor(context / 2), context - (settings.maxNew ?? DEFAULT_MAX_NEW));
      const encoded = prompts.map((p) => encode(p, room));
      const t0 = performance.now();
      const out = await client.generateTokens(
        encoded.map((e) => e.ids),
        settings,
      );
      return {
        seconds: (performance.now() - t0) / 1000,
        truncatedPrompts: encoded.filter((e) => e.cut).length,
        completions: out.map((c) => ({
          text: c.text,
          tokens: c.tokens.length,
          forwardPasses: c.forwardPasses,
        })),
      };
    },
    close: () => client.close(),
  };
}
