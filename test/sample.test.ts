/**
 * sdt-native serve through EngineClient: malformed requests get error results and serving goes on;
 * text prompts round-trip through the tokenizer; seeded sampling repeats; the CLI prints completions.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../common/native.ts';
import { EngineClient } from '../engine/client.ts';
import { saveTokenizer, trainBpe } from '../pipelines/tokenizer/index.ts';
import type { WireStepEvent } from '../schemas/engine.ts';
import { builtNative } from './native-build.ts';

// Empty when sdt-native cannot be built here (no CMake): the native tests skip.
const bin = builtNative() ?? '';
const haveNative = bin !== '';
if (!haveNative) console.warn(`sample tests skipped: ${bin} not built (npm run build:native)`);

const dir = mkdtempSync(join(tmpdir(), 'sdt-sample-'));
const configPath = join(dir, 'config.json');
const tokPath = join(dir, 'tokenizer.json');

const TINY_CONFIG = {
  vocab_size: 300,
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 96,
  attention_mode: 'block',
  block_size: 8,
  mask_token_id: 3,
  pad_token_id: 0,
  bos_token_id: 1,
  eos_token_id: 2,
};

beforeAll(async () => {
  writeFileSync(configPath, JSON.stringify(TINY_CONFIG));
  const texts = [
    'def add(a, b):\n    return a + b\n',
    'for i in range(10):\n    print(i)\n',
    'class A:\n    pass\n',
  ];
  await saveTokenizer(tokPath, await trainBpe(texts, { vocabSize: 300, minFrequency: 1 }));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!haveNative)('sdt-native serve', () => {
  let client: EngineClient;
  beforeAll(async () => {
    client = await EngineClient.start({
      randomInit: { seed: 5, config: configPath },
      tokenizer: tokPath,
      binary: bin,
    });
  });
  afterAll(async () => client?.close());

  it('reports the loaded model first', () => {
    expect(client.info.vocab_size).toBe(300);
    expect(client.info.attention_mode).toBe('block');
    expect(client.info.mask_token_id).toBe(3);
  });

  it('answers malformed requests with errors and keeps serving', async () => {
    const bad = await client.sendRaw('{this is not json', null);
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.error).toMatch(/malformed JSON/);
    const unknown = await client.sendRaw('{"id":"u1","prompt":[5,6],"colour":"red"}', 'u1');
    expect(unknown.ok).toBe(false);
    if (!unknown.ok) expect(unknown.error).toMatch(/unknown field "colour"/);
    const long = await client.request({ prompt: Array.from({ length: 96 }, () => 10) });
    expect(long.ok).toBe(false);
    if (!long.ok) expect(long.error).toMatch(/context holds 96/);
    const badValue = await client.request({ prompt: [5], threshold: 2 });
    expect(badValue.ok).toBe(false);
    if (!badValue.ok) expect(badValue.error).toMatch(/threshold/);
    const badToken = await client.request({ prompt: [5, 300] });
    expect(badToken.ok).toBe(false);
    // Still serving, and correctly.
    const good = await client.request({ prompt: [5, 6, 7], max_new: 10, block: 4, eos: -1 });
    expect(good.ok).toBe(true);
    if (good.ok) {
      expect(good.results[0].tokens).toHaveLength(10);
      // Block checkpoint: blocks are aligned at multiples of 4, so the first one completes the prompt's.
      expect(good.results[0].blocks.map((b) => b.size)).toEqual([1, 4, 4, 1]);
    }
  });

  it('matches concurrent requests to their responses by id', async () => {
    const prompts = [[5], [6, 7], [8, 9, 10]];
    const one = await Promise.all(
      prompts.map((p) => client.generateTokens([p], { maxNew: 6, block: 4, eos: -1 })),
    );
    const batch = await client.generateTokens(prompts, { maxNew: 6, block: 4, eos: -1 });
    for (let i = 0; i < prompts.length; i++) {
      expect(Array.from(one[i][0].promptTokens)).toEqual(prompts[i]);
      // Greedy decoding does not depend on which other prompts share the request.
      expect(Array.from(one[i][0].tokens)).toEqual(Array.from(batch[i].tokens));
    }
  });

  it('tokenizes text prompts and detokenizes completions', async () => {
    const [c] = await client.generate(['def add(a, b):'], { maxNew: 12, block: 8, threshold: 0.5, eos: -1 });
    expect(c.tokens.length).toBe(12);
    expect(c.text).toBe(client.requireTokenizer().decode(c.tokens));
    expect(c.forwardPasses).toBeGreaterThanOrEqual(c.steps);
    expect(c.steps).toBeGreaterThanOrEqual(2);
    expect(c.steps).toBeLessThanOrEqual(12);
  });

  it('passes the commit order through: left-to-right commits one position after another', async () => {
    const s = {
      maxNew: 12,
      block: 4,
      threshold: 1,
      eos: -1,
      trajectory: true,
      order: 'left-to-right' as const,
    };
    const [c] = await client.generateTokens([[5, 6, 7, 8]], s);
    expect(c.trajectory!.map((t) => t.positions)).toEqual(Array.from({ length: 12 }, (_, i) => [i]));
    const [byConfidence] = await client.generateTokens([[5, 6, 7, 8]], { ...s, order: 'confidence' });
    // The random model's most confident position is not always the leftmost one.
    expect(byConfidence.trajectory!.map((t) => t.positions[0])).not.toEqual(
      Array.from({ length: 12 }, (_, i) => i),
    );
    const bad = await client.request({ prompt: [5], order: 'sideways' });
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.error).toMatch(/"order"/);
  });

  it('passes the error budget through: every multi-token step stays within it', async () => {
    const s = { maxNew: 16, block: 8, threshold: 0, eos: -1, trajectory: true };
    const [open] = await client.generateTokens([[5, 6, 7]], s);
    const [tight] = await client.generateTokens([[5, 6, 7]], { ...s, errorBudget: 0.5 });
    for (const t of tight.trajectory!) {
      if (t.positions.length < 2) continue;
      expect(t.confidences.reduce((sum, c) => sum + (1 - c), 0)).toBeLessThanOrEqual(0.5 + 1e-6);
    }
    // Threshold 0 commits each block at once (3 blocks: the prompt's, then 8 and 3 positions); the budget
    // makes the random model take more steps.
    expect(open.steps).toBe(3);
    expect(tight.steps).toBeGreaterThan(open.steps);
    const bad = await client.request({ prompt: [5], error_budget: -1 });
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.error).toMatch(/error_budget/);
  });

  it('is deterministic for a seed when sampling', async () => {
    const s = { maxNew: 16, block: 8, temperature: 1, topP: 0.95, seed: 11, eos: -1 };
    const [a] = await client.generateTokens([[5, 6]], s);
    const [b] = await client.generateTokens([[5, 6]], s);
    expect(Array.from(a.tokens)).toEqual(Array.from(b.tokens));
    const others = await Promise.all([12, 13].map((seed) => client.generateTokens([[5, 6]], { ...s, seed })));
    expect(others.some(([o]) => o.tokens.join() !== a.tokens.join())).toBe(true);
  });

  it('streams every step live when asked, the same steps the trajectory records', async () => {
    const events: WireStepEvent[] = [];
    const s = { maxNew: 12, block: 4, threshold: 0.3, eos: -1, trajectory: true };
    const [c] = await client.generateTokens([[5, 6, 7]], s, (e) => events.push(e));
    expect(events.length).toBe(c.trajectory!.length);
    events.forEach((e, k) => {
      expect(e.sequence).toBe(0);
      expect(e.positions).toEqual(c.trajectory![k].positions);
      expect(e.tokens).toEqual(c.trajectory![k].tokens);
    });
  });

  it('AR mode generates token by token', async () => {
    const [c] = await client.generateTokens([[5, 6, 7]], { mode: 'ar', maxNew: 9, eos: -1 });
    expect(c.tokens.length).toBe(9);
    expect(c.steps).toBe(9);
  });
});

describe.skipIf(!haveNative)('sdt-native generate', () => {
  it('answers a file of requests, reports the bad line and writes every result', () => {
    const req = join(dir, 'req.jsonl');
    const out = join(dir, 'res.jsonl');
    writeFileSync(
      req,
      [
        '{"id":"a","prompt":[5,6,7],"max_new":5,"block":4,"eos":-1}',
        '',
        '{"id":"b","prompt":[5],"max_new":"lots"}',
        '{"id":"c","prompts":[[8],[9,10]],"max_new":4,"mode":"ar","eos":-1}',
      ].join('\n'),
    );
    const r = spawnSync(
      bin,
      ['generate', '--random-init', '1', '--config', configPath, '--requests', req, '--out', out],
      {
        encoding: 'utf8',
      },
    );
    expect(r.status).toBe(1); // one request failed
    expect(r.stderr).toMatch(/req\.jsonl line 3: .*max_new/);
    const lines = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.id, l.ok])).toEqual([
      ['a', true],
      ['b', false],
      ['c', true],
    ]);
    expect(lines[0].results[0].tokens).toHaveLength(5);
    expect(lines[2].results.map((x: { tokens: number[] }) => x.tokens.length)).toEqual([4, 4]);
  });
});

describe.skipIf(!haveNative)('sdt sample CLI', () => {
  it('prints completions as JSON lines', () => {
    const prompts = join(dir, 'prompts.jsonl');
    writeFileSync(prompts, '{"id":"a","prompt":"def f(x):"}\n"for i in"\n');
    const r = spawnSync(
      'node',
      [
        join(repoRoot, 'bin', 'sdt.js'),
        'sample',
        '--random-init',
        '3',
        '--config',
        configPath,
        '--tokenizer',
        tokPath,
        '--prompts',
        prompts,
        '--max-new',
        '8',
        '--block',
        '4',
        '--json',
      ],
      { encoding: 'utf8', env: { ...process.env, SDT_NATIVE: bin } },
    );
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.id)).toEqual(['a', '2']);
    for (const l of lines) expect(l.tokens).toBeLessThanOrEqual(8);
  });

  it('samples from a checkpoint directory with its tokenizer', () => {
    const ckpt = join(dir, 'ckpt');
    const init = spawnSync(bin, ['init', '--config', configPath, '--out', ckpt, '--tokenizer', tokPath], {
      encoding: 'utf8',
    });
    expect(init.status, init.stderr).toBe(0);
    const sdt = (args: string[]) =>
      spawnSync('node', [join(repoRoot, 'bin', 'sdt.js'), 'sample', '--ckpt', ckpt, ...args], {
        encoding: 'utf8',
        env: { ...process.env, SDT_NATIVE: bin },
      });
    const r = sdt(['--prompt', 'def add(a, b):', '--max-new', '6', '--block', '4', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.prompt).toBe('def add(a, b):');
    expect(out.tokens).toBeLessThanOrEqual(6);
    // Plain output is the prompt followed by the same completion (greedy decoding repeats).
    const plain = sdt(['--prompt', 'def add(a, b):', '--max-new', '6', '--block', '4']);
    expect(plain.stdout).toBe(`def add(a, b):${out.completion}\n`);
  });

  it('names the flag at fault', () => {
    const r = spawnSync('node', [join(repoRoot, 'bin', 'sdt.js'), 'sample', '--prompt', 'x'], {
      encoding: 'utf8',
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--ckpt/);
  });
});
