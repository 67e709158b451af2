/**
 * SamplerClient: keeps `sdt-native serve` running on a checkpoint and turns prompts into completions.
 *
 *   const client = await SamplerClient.start({ ckpt: 'runs/x/ckpt-final' });
 *   const [c] = await client.generate(['def add(a, b):'], { maxNew: 64, block: 16, threshold: 0.9 });
 *   c.text, c.tokens, c.steps, c.forwardPasses, c.timings
 *   await client.close();
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { UserError } from '../../common/errors.ts';
import { nativeBinary } from '../../common/native.ts';
import { loadTokenizer } from '../tokenizer/index.ts';
import type { Tokenizer } from '../tokenizer/types.ts';
import {
  type ReadyInfo,
  type SampleSettings,
  settingsToWire,
  type WireBlock,
  type WireResponse,
  type WireResult,
  type WireStep,
  type WireStepEvent,
} from './protocol.ts';

export interface SamplerClientOptions {
  /** Checkpoint directory (config.json, model.safetensors, tokenizer.json). */
  ckpt?: string;
  /** Instead of a checkpoint: a randomly initialised model (tests, speed benchmarks). */
  randomInit?: { seed: number; config: string };
  /** tokenizer.json to use; default CKPT/tokenizer.json. Without one only generateTokens() works. */
  tokenizer?: string;
  /** sdt-native binary; default common/native.ts nativeBinary(). */
  binary?: string;
  /** Extra environment for the native process (e.g. OMP_NUM_THREADS). */
  env?: NodeJS.ProcessEnv;
}

export interface Completion {
  /** Detokenized generated tokens ('' when the client has no tokenizer). */
  text: string;
  tokens: Int32Array;
  promptTokens: Int32Array;
  /** Generation ended at <|eos|> (which is not part of `tokens`). */
  eos: boolean;
  /** How many of maxNew did not fit in the model's context. */
  contextClipped: number;
  /** Denoising steps (diffusion) or generated tokens (AR). */
  steps: number;
  /** Every model call, prompt prefill and cache writes included. */
  forwardPasses: number;
  blocks: WireBlock[];
  trajectory?: WireStep[];
  timings: { prefillMs: number; decodeMs: number; requestMs: number };
}

interface Pending {
  resolve: (r: WireResponse) => void;
  reject: (e: Error) => void;
  onStep?: (e: WireStepEvent) => void;
}

/**
 * The native process's environment. Without an explicit OMP_NUM_THREADS the sampler runs on one thread:
 * decoding small chunks is latency-bound, and OpenMP/OpenBLAS teams spin at every barrier, so a second
 * thread that shares its core with another job stalls every model call (measured: one 64-token completion
 * 2.2 s with one thread against 4.45 s with two, next to a 2-worker data build on 2 cores).
 */
function samplerThreadEnv(): NodeJS.ProcessEnv {
  const threads = process.env.OMP_NUM_THREADS ?? '1';
  return {
    ...process.env,
    OMP_NUM_THREADS: threads,
    OPENBLAS_NUM_THREADS: process.env.OPENBLAS_NUM_THREADS ?? threads,
  };
}

export class SamplerClient {
  private nextId = 0;
  private readonly pending = new Map<string, Pending>();
  private stderrTail: string[] = [];
  private exited: Error | null = null;

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    readonly info: ReadyInfo,
    readonly tokenizer: Tokenizer | null,
  ) {}

  static async start(opts: SamplerClientOptions): Promise<SamplerClient> {
    const args = ['serve'];
    if (opts.ckpt) {
      if (!existsSync(join(opts.ckpt, 'config.json'))) {
        throw new UserError(
          `--ckpt ${opts.ckpt}: no config.json there; point it at a checkpoint written by \`sdt train\`.`,
        );
      }
      args.push('--ckpt', opts.ckpt);
    } else if (opts.randomInit) {
      args.push('--random-init', String(opts.randomInit.seed), '--config', opts.randomInit.config);
    } else {
      throw new UserError('SamplerClient needs a checkpoint (--ckpt DIR).');
    }
    const tokPath = opts.tokenizer ?? (opts.ckpt ? join(opts.ckpt, 'tokenizer.json') : undefined);
    const tokenizer = tokPath && existsSync(tokPath) ? await loadTokenizer(tokPath) : null;
    if (opts.tokenizer && !tokenizer) throw new UserError(`tokenizer ${opts.tokenizer} not found.`);
    const child = spawn(opts.binary ?? nativeBinary(), args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...samplerThreadEnv(), ...opts.env },
    });
    const lines = createInterface({ input: child.stdout });
    const stderrTail: string[] = [];
    createInterface({ input: child.stderr }).on('line', (l) => {
      stderrTail.push(l);
      if (stderrTail.length > 20) stderrTail.shift();
    });
    const info = await new Promise<ReadyInfo>((resolve, reject) => {
      const onExit = (code: number | null) =>
        reject(
          new UserError(`sdt-native serve exited (${code}) before it was ready:\n${stderrTail.join('\n')}`),
        );
      child.once('exit', onExit);
      child.once('error', (e) => reject(new UserError(`cannot start sdt-native: ${e.message}`)));
      lines.once('line', (l) => {
        child.off('exit', onExit);
        try {
          const j = JSON.parse(l);
          if (j.event !== 'ready') throw new Error(`unexpected first line ${l}`);
          resolve(j as ReadyInfo);
        } catch (e) {
          reject(e as Error);
        }
      });
    });
    const client = new SamplerClient(child, info, tokenizer);
    client.stderrTail = stderrTail;
    lines.on('line', (l) => client.onLine(l));
    child.on('exit', (code, signal) => {
      client.exited = new Error(
        `sdt-native serve exited (${code ?? signal}); last stderr:\n${client.stderrTail.join('\n')}`,
      );
      for (const p of client.pending.values()) p.reject(client.exited);
      client.pending.clear();
    });
    return client;
  }

  private onLine(line: string): void {
    let msg: WireResponse | WireStepEvent;
    try {
      msg = JSON.parse(line) as WireResponse | WireStepEvent;
    } catch {
      return;
    }
    const key = String(msg.id);
    const p = this.pending.get(key);
    if (!p) return;
    if ('event' in msg) {
      p.onStep?.(msg);
      return;
    }
    this.pending.delete(key);
    p.resolve(msg);
  }

  /**
   * Sends one raw request object (an "id" is added) and returns the raw response, errors included.
   * With `onStep` the request streams: each step arrives as it happens, before the response.
   */
  request(fields: Record<string, unknown>, onStep?: (e: WireStepEvent) => void): Promise<WireResponse> {
    if (this.exited) return Promise.reject(this.exited);
    const id = `r${this.nextId++}`;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onStep });
      this.child.stdin.write(`${JSON.stringify({ id, ...fields, ...(onStep ? { stream: true } : {}) })}\n`);
    });
  }

  /** Sends a raw line as is (tests of malformed input); resolves with the next response for `id`. */
  sendRaw(line: string, id: string | null): Promise<WireResponse> {
    return new Promise((resolve, reject) => {
      this.pending.set(String(id), { resolve, reject });
      this.child.stdin.write(`${line}\n`);
    });
  }

  /** Decodes token prompts as one batch; `onStep` sees every step live (event.sequence = prompt index). */
  async generateTokens(
    prompts: ArrayLike<number>[],
    settings: SampleSettings = {},
    onStep?: (e: WireStepEvent) => void,
  ): Promise<Completion[]> {
    if (prompts.length === 0) return [];
    const t0 = performance.now();
    const res = await this.request(
      { prompts: prompts.map((p) => Array.from(p)), ...settingsToWire(settings) },
      onStep,
    );
    if (!res.ok) throw new UserError(`sampler: ${res.error}`);
    const requestMs = performance.now() - t0;
    return res.results.map((r: WireResult, i) => ({
      text: this.tokenizer ? this.tokenizer.decode(r.tokens) : '',
      tokens: Int32Array.from(r.tokens),
      promptTokens: Int32Array.from(prompts[i]),
      eos: r.eos,
      contextClipped: r.context_clipped,
      steps: r.steps,
      forwardPasses: r.forward_passes,
      blocks: r.blocks,
      trajectory: r.trajectory,
      timings: { prefillMs: r.timings.prefill_ms, decodeMs: r.timings.decode_ms, requestMs },
    }));
  }

  /** Tokenizes text prompts with the checkpoint's tokenizer, decodes them, detokenizes the results. */
  async generate(
    prompts: string[],
    settings: SampleSettings = {},
    onStep?: (e: WireStepEvent) => void,
  ): Promise<Completion[]> {
    const tok = this.requireTokenizer();
    return this.generateTokens(
      prompts.map((p) => tok.encode(p)),
      settings,
      onStep,
    );
  }

  requireTokenizer(): Tokenizer {
    if (!this.tokenizer) {
      throw new UserError('no tokenizer: the checkpoint has no tokenizer.json; pass one (--tokenizer FILE).');
    }
    return this.tokenizer;
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const done = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGTERM'), 5000);
    await done;
    clearTimeout(timer);
  }
}
