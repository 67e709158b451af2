/**
 * A tiny block-diffusion checkpoint with a tokenizer (random weights, `sdt-native init`) for the `sdt serve`
 * tests, an engine of its own for reference completions, and small HTTP helpers.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EngineClient } from '../engine/client.ts';
import { saveTokenizer, trainBpe } from '../pipelines/tokenizer/index.ts';
import type { SampleSettings } from '../schemas/engine.ts';
import { tinyModelConfig } from './native-build.ts';

export const SERVE_CONFIG = tinyModelConfig({
  vocab_size: 300,
  max_position_embeddings: 96,
  attention_mode: 'block',
  block_size: 8,
});

export const PROMPTS = [
  'def add(a, b):',
  'for i in range(10):',
  'class A:',
  'def fold_parts(arr):\n    """Return True if every number"""',
  'x = [',
  'import os\nprint(',
];

/** Builds the checkpoint in a fresh temporary folder; `cleanup` removes it. */
export async function makeServeCheckpoint(
  bin: string,
): Promise<{ dir: string; ckpt: string; cleanup(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'sdt-serve-'));
  const config = join(dir, 'config.json');
  const tok = join(dir, 'tokenizer.json');
  writeFileSync(config, JSON.stringify(SERVE_CONFIG));
  const texts = [
    'def add(a, b):\n    return a + b\n',
    'for i in range(10):\n    print(i)\n',
    'class A:\n    pass\n',
    'def fold_parts(arr):\n    """Return True if every number in arr is greater than 5."""\n    return all(v > 5 for v in arr)\n',
    'import os\nx = [1, 2, 3]\nprint(x)\n',
  ];
  await saveTokenizer(tok, await trainBpe(texts, { vocabSize: 300, minFrequency: 1 }));
  const ckpt = join(dir, 'ckpt');
  const r = spawnSync(bin, ['init', '--config', config, '--out', ckpt, '--tokenizer', tok, '--seed', '7'], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`sdt-native init failed: ${r.stderr}`);
  return { dir, ckpt, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Reference completions: the same engine binary on the same checkpoint, each request alone (the text the
 * server must return whatever else it batched the request with).
 */
export class Reference {
  private constructor(readonly engine: EngineClient) {}

  static async start(ckpt: string, bin: string): Promise<Reference> {
    return new Reference(await EngineClient.start({ ckpt, binary: bin }));
  }

  async tokens(prompt: ArrayLike<number>, s: SampleSettings, copies = 1): Promise<number[][]> {
    const out = await this.engine.generateTokens(
      Array.from({ length: copies }, () => prompt),
      { block: SERVE_CONFIG.block_size as number, ...s },
    );
    return out.map((c) => Array.from(c.tokens));
  }

  async text(
    prompt: string,
    s: SampleSettings,
  ): Promise<{ text: string; tokens: number; passes: number; eos: boolean }> {
    const tok = this.engine.requireTokenizer();
    // EngineClient.generate puts <|bos|> before a text prompt, as sdt serve does.
    const [c] = await this.engine.generate([prompt], {
      block: SERVE_CONFIG.block_size as number,
      ...s,
    });
    return { text: tok.decode(c.tokens), tokens: c.tokens.length, passes: c.forwardPasses, eos: c.eos };
  }

  close(): Promise<void> {
    return this.engine.close();
  }
}

/** A JSON answer of sdt serve: a completion or an OpenAI-style error. */
export interface ApiReply {
  error?: { message: string; type: string; code: string | null };
  choices?: { text: string; index: number; finish_reason: string }[];
  raw?: string;
}

export async function postJson(
  url: string,
  body: unknown,
  signal?: AbortSignal,
): Promise<{ status: number; json: ApiReply }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal,
  });
  const text = await res.text();
  let json: ApiReply;
  try {
    json = JSON.parse(text) as ApiReply;
  } catch {
    json = { raw: text };
  }
  return { status: res.status, json };
}

/** The value of one un-labelled metric in Prometheus text. */
export function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`metric ${name} not found`);
  return Number(line.split(' ')[1]);
}
