/**
 * The OpenAI completions API on top of the engine: a request body checked and turned into token rows and
 * sampler settings, results turned back into `text_completion` objects, and the live text of a row while
 * it decodes (diffusion commits positions out of order; a stream may only append, so it carries the
 * committed prefix). Errors are `ApiError`s with the HTTP status and OpenAI's error shape.
 */
import { promptIds } from '../engine/client.ts';
import type { Tokenizer } from '../pipelines/tokenizer/types.ts';
import {
  COMMIT_ORDERS,
  type ReadyInfo,
  type SampleSettings,
  type WireResult,
  type WireStepEvent,
} from '../schemas/engine.ts';

/** Most completions one request may ask for (prompts x n), and most n. */
export const MAX_ROWS = 64;
export const MAX_N = 16;
const MAX_STOPS = 4;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type = 'invalid_request_error',
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }

  body() {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** OpenAI fields that are accepted only at the value that means "off" (this server does not implement them). */
const INERT_FIELDS: Record<string, (v: unknown) => boolean> = {
  user: (v) => typeof v === 'string',
  echo: (v) => v === false,
  logprobs: (v) => v === null || v === 0,
  best_of: (v) => v === null || v === 1,
  presence_penalty: (v) => v === 0 || v === null,
  frequency_penalty: (v) => v === 0 || v === null,
  logit_bias: (v) => v === null || (typeof v === 'object' && Object.keys(v as object).length === 0),
  stream_options: (v) => v === null || typeof v === 'object',
};

const SDT_FIELDS = [
  'block',
  'threshold',
  'rule',
  'order',
  'revise_passes',
  'revise_threshold',
  'mode',
  'max_per_step',
  'error_budget',
  'tokens_per_step',
  'steps_per_block',
  'refresh_every',
  'return_steps',
] as const;

const KNOWN_FIELDS = new Set([
  'model',
  'prompt',
  'suffix',
  'max_tokens',
  'temperature',
  'top_p',
  'seed',
  'stop',
  'n',
  'stream',
  ...Object.keys(INERT_FIELDS),
  ...SDT_FIELDS,
]);

export interface CompletionRequest {
  /** One entry per prompt: its token ids (FIM markers included). */
  prompts: Int32Array[];
  n: number;
  stop: string[];
  stream: boolean;
  includeUsage: boolean;
  /** Send each decoding step to the client (the playground). */
  returnSteps: boolean;
  settings: SampleSettings & { maxNew: number };
}

function bad(message: string, param: string | null = null, code: string | null = null): ApiError {
  return new ApiError(400, message, 'invalid_request_error', param, code);
}

function intIn(body: Record<string, unknown>, k: string, lo: number, hi: number): number | undefined {
  const v = body[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) {
    throw bad(`"${k}" must be an integer in [${lo}, ${hi}]; got ${JSON.stringify(v)}`, k);
  }
  return v;
}

function numIn(
  body: Record<string, unknown>,
  k: string,
  lo: number,
  hi: number,
  openLo = false,
): number | undefined {
  const v = body[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi || (openLo && v === lo)) {
    throw bad(`"${k}" must be a number in ${openLo ? '(' : '['}${lo}, ${hi}]; got ${JSON.stringify(v)}`, k);
  }
  return v;
}

function oneOf<T extends string>(
  body: Record<string, unknown>,
  k: string,
  choices: readonly T[],
): T | undefined {
  const v = body[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || !choices.includes(v as T)) {
    throw bad(`"${k}" must be one of ${choices.join(', ')}; got ${JSON.stringify(v)}`, k);
  }
  return v as T;
}

/**
 * The prompts as token ids: a text prompt after <|bos|>, as every training document starts (and as
 * EngineClient.generate sends text); token-id prompts as given.
 */
function promptList(v: unknown, tok: Tokenizer, info: ReadyInfo, fim: boolean): Int32Array[] {
  const vocab = info.vocab_size;
  // Inside FIM markers the prefix is plain text, as eval's infilling prompts are.
  const text = (p: string) => (fim ? tok.encode(p) : promptIds(tok, p, info.bos_token_id));
  const isIds = (x: unknown): x is number[] =>
    Array.isArray(x) && x.length > 0 && x.every((t) => Number.isInteger(t) && t >= 0 && t < vocab);
  if (typeof v === 'string') return [text(v)];
  if (isIds(v)) return [Int32Array.from(v)];
  if (Array.isArray(v) && v.length > 0) {
    return v.map((p, i) => {
      if (typeof p === 'string') return text(p);
      if (isIds(p)) return Int32Array.from(p);
      throw bad(`"prompt[${i}]" must be a string or an array of token ids below ${vocab}`, 'prompt');
    });
  }
  throw bad(
    '"prompt" must be a string, a list of strings, or token ids (a list, or a list of lists)',
    'prompt',
  );
}

/** Checks a /v1/completions body and turns it into rows and settings for the engine. */
export function parseCompletionRequest(
  body: unknown,
  info: ReadyInfo,
  tok: Tokenizer,
  modelName: string,
): CompletionRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw bad('the body must be a JSON object');
  const b = body as Record<string, unknown>;
  for (const k of Object.keys(b)) {
    if (!KNOWN_FIELDS.has(k)) {
      throw bad(`unknown field "${k}" (sdt's own fields: ${SDT_FIELDS.join(', ')})`, k, 'unknown_field');
    }
    const inert = INERT_FIELDS[k];
    if (inert && b[k] !== undefined && !inert(b[k])) {
      throw bad(
        `"${k}" is not supported by sdt serve (send it unset or at its default)`,
        k,
        'unsupported_field',
      );
    }
  }
  if (b.model !== undefined && b.model !== modelName) {
    throw new ApiError(
      404,
      `model "${String(b.model)}" is not served here; GET /v1/models lists "${modelName}"`,
      'invalid_request_error',
      'model',
      'model_not_found',
    );
  }
  if (b.prompt === undefined) throw bad('missing field "prompt"', 'prompt');
  const fim = b.suffix !== undefined && b.suffix !== null;
  let prompts = promptList(b.prompt, tok, info, fim);
  if (fim) {
    if (typeof b.suffix !== 'string') throw bad('"suffix" must be a string', 'suffix');
    // Fill in the middle as the model was trained: <|fim_prefix|> prefix <|fim_suffix|> suffix <|fim_middle|>,
    // with the special ids (tokenizing the marker text would give ordinary bytes).
    const { fimPrefix, fimSuffix, fimMiddle } = tok.special;
    const suffix = tok.encode(b.suffix);
    prompts = prompts.map((p) => Int32Array.from([fimPrefix, ...p, fimSuffix, ...suffix, fimMiddle]));
  }
  const context = info.max_position_embeddings;
  const n = intIn(b, 'n', 1, MAX_N) ?? 1;
  if (prompts.length * n > MAX_ROWS) {
    throw bad(
      `${prompts.length} prompts x n=${n} = ${prompts.length * n} completions; at most ${MAX_ROWS} per request`,
      'n',
    );
  }
  const maxNew = intIn(b, 'max_tokens', 1, context - 1) ?? 16;
  prompts.forEach((p, i) => {
    if (p.length === 0) throw bad(`prompt ${i} is empty`, 'prompt');
    if (p.length + maxNew > context) {
      throw bad(
        `prompt ${i} has ${p.length} tokens and max_tokens is ${maxNew}: together over the model's context of ` +
          `${context} tokens; shorten the prompt or lower max_tokens`,
        'prompt',
        'context_length_exceeded',
      );
    }
  });
  let stop: string[] = [];
  if (b.stop !== undefined && b.stop !== null) {
    stop = typeof b.stop === 'string' ? [b.stop] : (b.stop as string[]);
    if (
      !Array.isArray(stop) ||
      stop.length > MAX_STOPS ||
      stop.some((s) => typeof s !== 'string' || s === '')
    ) {
      throw bad(`"stop" must be a non-empty string or a list of up to ${MAX_STOPS} of them`, 'stop');
    }
  }
  for (const k of ['stream', 'return_steps']) {
    if (b[k] !== undefined && b[k] !== null && typeof b[k] !== 'boolean')
      throw bad(`"${k}" must be true or false`, k);
  }
  const so = b.stream_options as { include_usage?: unknown } | null | undefined;
  const mode =
    oneOf(b, 'mode', ['diffusion', 'ar'] as const) ?? (info.attention_mode === 'causal' ? 'ar' : 'diffusion');
  const settings: CompletionRequest['settings'] = {
    mode,
    maxNew,
    temperature: numIn(b, 'temperature', 0, 2),
    topP: numIn(b, 'top_p', 0, 1, true),
    seed: intIn(b, 'seed', 0, Number.MAX_SAFE_INTEGER),
    block: intIn(b, 'block', 1, context) ?? (info.attention_mode === 'block' ? info.block_size : undefined),
    threshold: numIn(b, 'threshold', 0, 1),
    rule: oneOf(b, 'rule', ['threshold', 'fixed', 'remask'] as const),
    order: oneOf(b, 'order', COMMIT_ORDERS),
    revisePasses: intIn(b, 'revise_passes', 0, 64),
    reviseThreshold: numIn(b, 'revise_threshold', 0, 1),
    maxPerStep: intIn(b, 'max_per_step', 0, context),
    errorBudget: numIn(b, 'error_budget', 0, 1e6),
    tokensPerStep: intIn(b, 'tokens_per_step', 1, context),
    stepsPerBlock: intIn(b, 'steps_per_block', 0, context),
    refreshEvery: intIn(b, 'refresh_every', 0, context),
  };
  for (const k of Object.keys(settings) as (keyof SampleSettings)[])
    if (settings[k] === undefined) delete settings[k];
  return {
    prompts,
    n,
    stop,
    stream: b.stream === true,
    includeUsage: so?.include_usage === true,
    returnSteps: b.return_steps === true,
    settings,
  };
}

/** The text before the first stop sequence, and whether one was found. */
export function cutAtStop(text: string, stop: string[]): { text: string; stopped: boolean } {
  let at = -1;
  for (const s of stop) {
    const i = text.indexOf(s);
    if (i >= 0 && (at < 0 || i < at)) at = i;
  }
  return at < 0 ? { text, stopped: false } : { text: text.slice(0, at), stopped: true };
}

export interface FinishedRow {
  text: string;
  finishReason: 'stop' | 'length';
  tokens: number;
  forwardPasses: number;
  steps: number;
}

export function finishRow(r: WireResult, tok: Tokenizer, stop: string[]): FinishedRow {
  const cut = cutAtStop(tok.decode(r.tokens), stop);
  return {
    text: cut.text,
    finishReason: cut.stopped || r.eos ? 'stop' : 'length',
    tokens: r.tokens.length,
    forwardPasses: r.forward_passes,
    steps: r.steps,
  };
}

/**
 * The streamed text of one row: the decoded committed prefix (up to <|eos|>), less what may still turn
 * into a stop sequence or is half a UTF-8 character. Rules that take tokens back (remask, revision) stream
 * nothing before the end, since streamed text cannot be unsent.
 */
export class RowText {
  private readonly canvas: number[];
  private prefix = 0;
  private stopped = false;
  sent = '';

  constructor(
    private readonly tok: Tokenizer,
    maxNew: number,
    private readonly eos: number,
    private readonly stop: string[],
    private readonly live: boolean,
  ) {
    this.canvas = new Array(maxNew).fill(-1);
  }

  /** Applies a step; returns the new text to send ('' if none). */
  step(e: WireStepEvent): string {
    if (!this.live || this.stopped) return '';
    e.positions.forEach((p, i) => {
      if (p < this.canvas.length) this.canvas[p] = e.tokens[i];
    });
    const start = this.prefix;
    while (
      this.prefix < this.canvas.length &&
      this.canvas[this.prefix] >= 0 &&
      this.canvas[this.prefix] !== this.eos
    ) {
      this.prefix++;
    }
    if (this.prefix === start) return '';
    const cut = cutAtStop(this.tok.decode(this.canvas.slice(0, this.prefix)), this.stop);
    let safe = cut.text;
    if (cut.stopped) this.stopped = true;
    else {
      const hold = Math.max(0, ...this.stop.map((s) => s.length - 1));
      safe = safe.slice(0, safe.length - hold);
    }
    while (safe.endsWith('\uFFFD')) safe = safe.slice(0, -1);
    if (!safe.startsWith(this.sent) || safe.length <= this.sent.length) return '';
    const delta = safe.slice(this.sent.length);
    this.sent = safe;
    return delta;
  }

  /** The rest of the final text, given what was sent. */
  finish(final: string): string {
    const delta = final.startsWith(this.sent) ? final.slice(this.sent.length) : '';
    this.sent = final;
    return delta;
  }
}

export function completionId(): string {
  return `cmpl-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;
}

/** `forwardPasses`: the engine's model calls of the lockstep groups the rows decoded in (groupPasses). */
export function usageOf(rows: FinishedRow[], promptTokens: number, forwardPasses: number) {
  const completion = rows.reduce((n, r) => n + r.tokens, 0);
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completion,
    total_tokens: promptTokens + completion,
    forward_passes: forwardPasses,
  };
}
