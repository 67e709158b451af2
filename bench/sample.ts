/**
 * `sdt bench sample`: sampler speed against block size and threshold on this machine, with the AR baseline
 * of the same family, in one run. Every row: generated tokens/s (prompt tokens not counted), forward passes
 * per request, tokens per forward pass, latency per request, and a quality proxy (the share of completed
 * held-out function headers that parse without tree-sitter errors) next to the validation loss when known.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../common/errors.ts';
import { renderChart } from '../common/svg.ts';
import type { EngineClient, EngineOptions } from '../engine/client.ts';
import { promptFor } from '../eval/generators/model.ts';
import { functionWritesCode, isSyntaxValid } from '../eval/report/syntax.ts';
import type { SandboxPool } from '../eval/sandbox/pool.ts';
import { SUITES } from '../eval/suites/index.ts';
import { truncateAtStop } from '../eval/suites/stop.ts';
import type { EvalTask } from '../eval/suites/types.ts';
import { listStdlibCorpus } from '../pipelines/sources/pystdlib.ts';
import { type StepRow, scoreStepRows } from '../posttrain/trajectories/elbo.ts';
import { CHECKPOINT_FILES, readCheckpointConfig, readModelConfigFile } from '../schemas/checkpoint.ts';
import type { SampleSettings } from '../schemas/engine.ts';

export interface BenchRow {
  model: 'diffusion' | 'ar';
  block: number | null;
  threshold: number | null;
  /** Commit order of the threshold rule (docs/sample.md); null for AR. */
  order: string | null;
  /** Error budget of the threshold rule (docs/sample.md); 0 = none, absent for AR. */
  errorBudget?: number | null;
  batch: number;
  requests: number;
  generatedTokens: number;
  tokensPerSecond: number;
  msPerToken: number;
  forwardPassesPerRequest: number;
  tokensPerForwardPass: number;
  latencyMs: number;
  parseOk: number;
  /**
   * Share of completions that pass their task's tests (--suite); null for prompts without tests, where
   * the parse proxy and the AR bits are all there is.
   */
  pass1: number | null;
  /**
   * Bits per generated token under the AR checkpoint (generative NLL): the parse proxy passes degenerate
   * text such as `self.set()()()()...`; a text the AR model finds improbable is not quality kept. Null
   * without an AR checkpoint.
   */
  genNll: number | null;
  valLoss: number | null;
  /** Tokens/s of each timed run (--repeat), in run order; tokensPerSecond is their median. */
  runs?: number[];
}

export interface ModelInfo {
  source: string;
  attention: string;
  params: number;
  tokensSeen: number | null;
  dataset: string | null;
}

/**
 * `count` top-level one-line `def` headers of held-out (test-folder) stdlib files, all of the same token
 * length (the most common one). A header ends at its colon: the line break and the body's indentation
 * are one token in the training data (the pre-tokenizer keeps `\n` and the spaces after it together),
 * so a prompt ending in `\n` asks the model to go on after a token boundary it never saw. With the
 * break in the prompt, the 6000-step demo AR model wrote docstrings at column 0; without it, indented
 * bodies.
 */
export async function heldOutHeaders(
  count: number,
  encode: (text: string) => ArrayLike<number>,
): Promise<{ headers: string[]; tokens: number }> {
  const files = (await listStdlibCorpus()).filter((f) => f.split === 'validation');
  const byLength = new Map<number, string[]>();
  const re = /^def [A-Za-z_]\w*\([^()\n]*\)(?: -> [^:\n]+)?:[ \t]*$/gm;
  for (const f of files) {
    const text = await readFile(f.path, 'utf8').catch(() => '');
    for (const m of text.matchAll(re)) {
      const h = m[0].trimEnd();
      const n = encode(h).length;
      byLength.set(n, [...(byLength.get(n) ?? []), h]);
    }
  }
  let best: [number, string[]] = [0, []];
  for (const [n, hs] of [...byLength].sort((x, y) => x[0] - y[0]))
    if (hs.length > best[1].length) best = [n, hs];
  const [tokens, pool] = best;
  // Spread the picks over the pool (it is in corpus order) so one file does not dominate.
  const step = Math.max(1, Math.floor(pool.length / count));
  const headers: string[] = [];
  for (let i = 0; i < pool.length && headers.length < count; i += step) headers.push(pool[i]);
  return { headers, tokens };
}

/**
 * The function a completion gives a header: its lines up to the first one back at column 0. The
 * completion goes on from the header's last line (usually with the line break).
 */
export function functionOf(header: string, completion: string): string {
  const [rest, ...lines] = completion.split('\n');
  const body: string[] = [rest];
  for (const l of lines) {
    if (l.length > 0 && !/^\s/.test(l)) break;
    body.push(l);
  }
  return header + body.join('\n');
}

/**
 * The quality proxy: the header plus its completed body parses without tree-sitter errors, and the body
 * holds a statement besides comments and docstrings. An empty body fails (tree-sitter-python accepts
 * `def f():` alone, Python does not); so does a body of comments.
 */
export function parsesAsFunction(header: string, completion: string): boolean {
  const fn = functionOf(header, completion);
  if (fn.slice(header.length).trim() === '') return false;
  return isSyntaxValid(fn) && functionWritesCode(fn);
}

/**
 * Validation loss of a checkpoint RUN/checkpoints/step-N from the run's log (RUN/log.jsonl, the trainer's
 * latest eval event at or before step N; the trainer's final validation is logged at step N-1): the first of
 * `groups` present, else the first group logged. Null when unknown.
 */
export function validationLoss(ckpt: string | undefined, groups: string[]): number | null {
  if (!ckpt) return null;
  const statePath = join(ckpt, 'trainer_state.json');
  const logPath = join(ckpt, '..', '..', 'log.jsonl');
  if (!existsSync(statePath) || !existsSync(logPath)) return null;
  try {
    const step = JSON.parse(readFileSync(statePath, 'utf8')).step;
    const evals = readFileSync(logPath, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"eval"'))
      .map((l) => JSON.parse(l) as { type: string; step: number; group?: string; loss?: number })
      .filter((e) => e.type === 'eval' && e.step <= step && typeof e.loss === 'number');
    const last = Math.max(...evals.map((e) => e.step));
    const atLast = evals.filter((e) => e.step === last);
    const pick = groups.map((g) => atLast.find((e) => e.group === g)).find(Boolean) ?? atLast[0];
    return pick ? pick.loss! : null;
  } catch {
    return null;
  }
}

/** Parameter count from a config.json (embeddings, layers, final norm, untied head). */
export function paramCount(c: Record<string, unknown>): number {
  const V = c.vocab_size as number;
  const H = c.hidden_size as number;
  const I = c.intermediate_size as number;
  const L = c.num_hidden_layers as number;
  const heads = c.num_attention_heads as number;
  const kv = (c.num_key_value_heads as number) || heads;
  const hd = H / heads;
  const layer = 2 * H + H * heads * hd + 2 * H * kv * hd + heads * hd * H + 3 * H * I;
  return V * H + L * layer + H + (c.tie_word_embeddings ? 0 : V * H);
}

export async function modelInfo(opts: EngineOptions, attention: string): Promise<ModelInfo> {
  const configPath = opts.ckpt ? join(opts.ckpt, CHECKPOINT_FILES.config) : opts.randomInit!.config;
  const config = opts.ckpt ? await readCheckpointConfig(opts.ckpt) : await readModelConfigFile(configPath);
  let tokensSeen: number | null = null;
  let dataset: string | null = null;
  if (opts.ckpt && existsSync(join(opts.ckpt, 'trainer_state.json'))) {
    const st = JSON.parse(readFileSync(join(opts.ckpt, 'trainer_state.json'), 'utf8'));
    tokensSeen = typeof st.tokens_seen === 'number' ? st.tokens_seen : null;
    const data = st.train_config?.stream ?? st.train_config?.data ?? null;
    dataset = typeof data === 'string' ? data : null;
  }
  return {
    source: opts.ckpt ?? `random-init ${opts.randomInit!.seed} (${configPath})`,
    attention,
    params: paramCount(config as unknown as Record<string, unknown>),
    tokensSeen,
    dataset,
  };
}

/** A completion kept for scoring: the prompt's ids and the generated ids. */
interface Sampled {
  prompt: ArrayLike<number>;
  tokens: Int32Array;
}

/** A completion as measure() keeps it: the prompt's text (encoded once the AR tokenizer is known). */
export interface Kept {
  prompt: string;
  text: string;
  tokens: Int32Array;
}

export type Measured = Awaited<ReturnType<typeof measure>>;

export function median(values: number[]): number {
  if (values.length === 0) throw new Error('median of no values');
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * Timed runs of one row as one: the median tokens/s, ms/token and latency. Decoding is deterministic (greedy,
 * or seeded per sequence), so every run generates the same tokens in the same passes; a run that did not is a
 * bug, not noise, and is refused.
 */
export function foldRuns(runs: Measured[]): Measured & { runs: number[] } {
  const [first] = runs;
  if (!first) throw new Error('foldRuns: no runs');
  const differs = runs.find(
    (r) =>
      r.generatedTokens !== first.generatedTokens || r.tokensPerForwardPass !== first.tokensPerForwardPass,
  );
  if (differs)
    throw new Error(
      `timed runs of one bench row generated different text (${first.generatedTokens} and ${differs.generatedTokens} tokens): decoding should be deterministic`,
    );
  return {
    ...first,
    tokensPerSecond: median(runs.map((r) => r.tokensPerSecond)),
    msPerToken: median(runs.map((r) => r.msPerToken)),
    latencyMs: median(runs.map((r) => r.latencyMs)),
    runs: runs.map((r) => r.tokensPerSecond),
  };
}

export async function measure(
  client: EngineClient,
  prompts: string[],
  settings: SampleSettings,
  batch: number,
  keep?: Kept[],
): Promise<Omit<BenchRow, 'model' | 'block' | 'threshold' | 'order' | 'valLoss' | 'genNll' | 'pass1'>> {
  let generated = 0;
  let passes = 0;
  let ok = 0;
  let requests = 0;
  let latency = 0;
  const t0 = performance.now();
  for (let i = 0; i < prompts.length; i += batch) {
    const chunk = prompts.slice(i, i + batch);
    const t = performance.now();
    const done = await client.generate(chunk, settings);
    latency += performance.now() - t;
    requests++;
    done.forEach((c, k) => {
      generated += c.tokens.length;
      passes += c.forwardPasses;
      if (parsesAsFunction(chunk[k], c.text)) ok++;
      keep?.push({ prompt: chunk[k], text: c.text, tokens: c.tokens });
    });
  }
  const seconds = (performance.now() - t0) / 1000;
  return {
    batch,
    requests,
    generatedTokens: generated,
    tokensPerSecond: generated / seconds,
    msPerToken: generated > 0 ? (seconds * 1000) / generated : Number.NaN,
    forwardPassesPerRequest: passes / prompts.length,
    tokensPerForwardPass: passes > 0 ? generated / passes : 0,
    latencyMs: latency / requests,
    parseOk: ok / prompts.length,
  };
}

/** Share of completions whose program (task prompt + completion cut at its stops + tests) passes. */
export async function passRate(
  tasks: EvalTask[],
  kept: Kept[],
  pool: SandboxPool,
  onDone?: () => void,
): Promise<number> {
  const results = await Promise.all(
    kept.map(async (k, i) => {
      const r = await pool.run(tasks[i].program(truncateAtStop(k.text, tasks[i].stop, tasks[i].keepStop)));
      onDone?.();
      return r;
    }),
  );
  return results.filter((r) => r.passed).length / Math.max(1, kept.length);
}

/** Prompts of a suite's first `count` tasks, as eval sends them (no trailing line break). */
export async function suitePromptsFor(
  suite: string,
  dataDir: string,
  variant: string | undefined,
  count: number,
): Promise<{ tasks: EvalTask[]; prompts: string[] }> {
  const s = SUITES[suite];
  if (!s)
    throw new UserError(
      `bench sample: --suite ${suite} is unknown; one of ${Object.keys(SUITES).join(', ')}.`,
    );
  const tasks = (
    await s.load({ dataDir, variant: variant ?? (suite === 'synth' ? 'test' : undefined) })
  ).slice(0, count);
  const prompts = tasks.map((t) => {
    const p = promptFor(t);
    if (!('text' in p))
      throw new UserError(`bench sample: ${suite} is a fill-in-the-middle suite; use sdt eval infill.`);
    return p.text;
  });
  return { tasks, prompts };
}

/**
 * Mean bits per generated token of completions under a causal checkpoint (the engine's score op): each row is
 * prompt + completion, the targets the next tokens of the completion.
 */
export async function generativeNll(samples: Sampled[], engine: EngineClient): Promise<number | null> {
  const rows: StepRow[] = [];
  let count = 0;
  for (const s of samples) {
    if (s.tokens.length === 0) continue;
    const all = Int32Array.from([...Array.from(s.prompt), ...s.tokens]);
    const targets = new Int32Array(all.length - 1).fill(-1);
    for (let t = s.prompt.length - 1; t < all.length - 1; t++) targets[t] = all[t + 1];
    rows.push({ input: all.subarray(0, all.length - 1), targets });
    count += s.tokens.length;
  }
  if (rows.length === 0) return null;
  const lp = await scoreStepRows(rows, engine);
  let sum = 0;
  for (const v of lp) sum += v;
  return -sum / count / Math.LN2;
}

/** Block size (x, log2) against milliseconds per generated token (y), one line per threshold and batch. */
export function chartSvg(rows: BenchRow[]): string {
  const diff = rows.filter((r) => r.model === 'diffusion' && Number.isFinite(r.msPerToken));
  const ar = rows.filter((r) => r.model === 'ar' && Number.isFinite(r.msPerToken));
  const blocks = [...new Set(diff.map((r) => r.block!))].sort((a, b) => a - b);
  const colors = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
  const series = new Map<string, BenchRow[]>();
  for (const r of diff) {
    const key = `τ=${r.threshold}${r.order === 'confidence' ? '' : ` ${r.order}`} batch ${r.batch}`;
    series.set(key, [...(series.get(key) ?? []), r]);
  }
  return renderChart({
    title: 'Sampler: time per generated token against block size',
    width: 640,
    height: 400,
    x: {
      label: 'block size',
      log2: true,
      ticks: blocks.length ? blocks : [4, 8],
      min: Math.min(...blocks, 4),
      max: Math.max(...blocks, 8),
    },
    y: { label: 'ms per generated token', min: 0 },
    series: [...series].map(([label, rs], i) => ({
      label,
      color: colors[i % colors.length],
      points: rs.sort((a, b) => a.block! - b.block!).map((r): [number, number] => [r.block!, r.msPerToken]),
      width: 2,
    })),
    hlines: ar.map((r) => ({ y: r.msPerToken, label: `AR batch ${r.batch}`, color: '#555' })),
  });
}
