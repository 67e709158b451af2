/** Pieces of `sdt bench sample`: the quality proxy, prompt selection, parameter counts, the chart. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pairedRatio } from '../bench/commands/bench-sample.ts';
import {
  type BenchRow,
  chartSvg,
  foldRuns,
  functionOf,
  generativeNll,
  heldOutHeaders,
  type Measured,
  median,
  paramCount,
  parsesAsFunction,
} from '../bench/sample.ts';
import { EngineClient } from '../engine/client.ts';
import { builtNative, tinyModelConfig } from './native-build.ts';
import { readNpyFloat32, writeNpy } from './train-npy.ts';

const dir = mkdtempSync(join(tmpdir(), 'sdt-bench-sample-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('bench sample helpers', () => {
  it('cut a completion at the end of the function and judge its syntax', () => {
    const h = 'def f(x):';
    expect(functionOf(h, '\n    return x\nprint(1)\n')).toBe('def f(x):\n    return x');
    expect(functionOf(h, ' return x\nprint(1)\n')).toBe('def f(x): return x');
    expect(parsesAsFunction(h, '\n    return x\nthis is( not code')).toBe(true);
    expect(parsesAsFunction(h, '\n    return (x\n')).toBe(false);
    expect(parsesAsFunction(h, '\ngarbage at column 0')).toBe(false); // empty body
    expect(parsesAsFunction(h, '\n   \n')).toBe(false);
    // Comments and docstrings parse but do nothing: not a function body.
    expect(parsesAsFunction(h, '\n    # the the the\n    # the\n')).toBe(false);
    expect(parsesAsFunction(h, '\n    """Doc."""\n    # todo\n')).toBe(false);
    expect(parsesAsFunction(h, '\n    """Doc."""\n    pass\n')).toBe(true);
  });

  it('pick held-out headers of one token length', async () => {
    const { headers, tokens } = await heldOutHeaders(6, (t) => new Uint8Array(t.length));
    expect(headers.length).toBe(6);
    for (const h of headers) {
      expect(h).toMatch(/^def \w+\(.*\).*:$/);
      expect(h.length).toBe(tokens);
    }
  });

  it('draw one line per threshold and batch, AR dashed', () => {
    const row = (block: number | null, threshold: number | null, batch: number, ms: number): BenchRow => ({
      model: block === null ? 'ar' : 'diffusion',
      block,
      threshold,
      order: block === null ? null : 'confidence',
      batch,
      requests: 1,
      generatedTokens: 10,
      tokensPerSecond: 1000 / ms,
      msPerToken: ms,
      forwardPassesPerRequest: 5,
      tokensPerForwardPass: 2,
      latencyMs: 10 * ms,
      parseOk: 0.5,
      pass1: null,
      genNll: null,
      valLoss: null,
    });
    const svg = chartSvg([
      row(4, 0.9, 1, 3),
      row(16, 0.9, 1, 2),
      row(4, 0.7, 1, 2.5),
      row(16, 0.7, 1, 1),
      row(null, null, 1, 4),
    ]);
    expect(svg.match(/<polyline /g)).toHaveLength(2);
    expect(svg).toContain('stroke-dasharray');
    expect(svg).toContain('τ=0.9 batch 1');
  });
});

// Empty when sdt-native cannot be built here (no CMake): the native tests skip.
const bin = builtNative() ?? '';
describe.skipIf(bin === '')('parameter count', () => {
  it('equals what sdt-native reports for the same config', () => {
    const config = {
      vocab_size: 120,
      hidden_size: 48,
      intermediate_size: 80,
      num_hidden_layers: 3,
      num_attention_heads: 6,
      num_key_value_heads: 2,
      max_position_embeddings: 64,
      attention_mode: 'block',
      block_size: 8,
      mask_token_id: 3,
      tie_word_embeddings: false,
    };
    const path = join(dir, 'config.json');
    writeFileSync(path, JSON.stringify(config));
    const r = spawnSync(bin, ['init', '--config', path, '--out', join(dir, 'ckpt')], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(paramCount(config)).toBe(JSON.parse(r.stdout.trim().split('\n').at(-1)!).parameters);
  });
  it('generative NLL equals the mean next-token log-loss of a causal forward, in bits', async () => {
    const config = tinyModelConfig({ attention_mode: 'causal', block_size: 8, tie_word_embeddings: false });
    const path = join(dir, 'causal.json');
    writeFileSync(path, JSON.stringify(config));
    const ckpt = join(dir, 'causal');
    expect(spawnSync(bin, ['init', '--config', path, '--out', ckpt, '--seed', '5']).status).toBe(0);
    const samples = [
      { prompt: [5, 6, 7], tokens: Int32Array.from([8, 9, 10, 11]) },
      { prompt: [12], tokens: Int32Array.from([13, 14]) },
      { prompt: [15, 16], tokens: new Int32Array(0) }, // nothing generated: not counted
    ];
    const engine = await EngineClient.start({ ckpt, binary: bin });
    const got = await generativeNll(samples, engine).finally(() => engine.close());
    // Reference: logits of each whole sequence from `sdt-native forward`, log-softmax by hand.
    let sum = 0;
    let n = 0;
    for (const s of samples.filter((x) => x.tokens.length > 0)) {
      const ids = Int32Array.from([...s.prompt, ...s.tokens]);
      await writeNpy(join(dir, 'ids.npy'), ids, [1, ids.length]);
      const r = spawnSync(bin, [
        'forward',
        '--ckpt',
        ckpt,
        '--tokens',
        join(dir, 'ids.npy'),
        '--out',
        join(dir, 'lg.npy'),
      ]);
      expect(r.status, String(r.stderr)).toBe(0);
      const { data } = await readNpyFloat32(join(dir, 'lg.npy'));
      const V = config.vocab_size;
      for (let t = s.prompt.length - 1; t < ids.length - 1; t++) {
        const row = Array.from(data.subarray(t * V, (t + 1) * V)).filter(Number.isFinite);
        const max = Math.max(...row);
        const lse = max + Math.log(row.reduce((a, x) => a + Math.exp(x - max), 0));
        sum += lse - data[t * V + ids[t + 1]];
        n++;
      }
    }
    expect(got).not.toBeNull();
    expect(got!).toBeCloseTo(sum / n / Math.LN2, 4);
  });
});

describe('prompt boundaries', () => {
  it('a line break and the indentation after it are one pre-token, so prompts end before the break', async () => {
    const { pretokenize } = await import('../pipelines/tokenizer/index.ts');
    const { functionPrompts } = await import('../posttrain/trajectories/generate.ts');
    const src = 'def f(x):\n    """Twice."""\n    return 2 * x\n';
    // No token of any BPE over these pieces starts between "\n" and "    ": a prompt ending in "\n" would
    // leave the model a boundary the training data never had.
    expect(pretokenize(src)).toContain('\n    ');
    expect(
      pretokenize(src)
        .slice(0, -1)
        .some((p) => p === '\n'),
    ).toBe(false); // the last is the file's end
    const [prompt] = functionPrompts(src);
    expect(prompt).toBe('def f(x):\n    """Twice."""');
    expect(src.startsWith(prompt)).toBe(true);
    expect(pretokenize(src.slice(prompt.length))[0]).toBe('\n    ');
  });
});

describe('repeated timed runs', () => {
  const run = (tps: number, tokens = 600): Measured => ({
    batch: 1,
    requests: 10,
    generatedTokens: tokens,
    tokensPerSecond: tps,
    msPerToken: 1000 / tps,
    forwardPassesPerRequest: 12,
    tokensPerForwardPass: tokens / 120,
    latencyMs: (tokens / 10 / tps) * 1000,
    parseOk: 1,
  });
  const row = (model: 'ar' | 'diffusion', runs: number[]): BenchRow => ({
    model,
    block: null,
    threshold: null,
    order: null,
    genNll: null,
    pass1: null,
    valLoss: null,
    ...foldRuns(runs.map((t) => run(t))),
  });

  it('fold to the median of each timing, keeping the counts and every run', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    const folded = foldRuns([run(100), run(300), run(120)]);
    expect(folded.tokensPerSecond).toBe(120);
    expect(folded.msPerToken).toBeCloseTo(1000 / 120, 9);
    expect(folded.latencyMs).toBeCloseTo(run(120).latencyMs, 9);
    expect(folded.generatedTokens).toBe(600);
    expect(folded.runs).toEqual([100, 300, 120]);
    // Runs that decoded different text are a determinism bug, not noise.
    expect(() => foldRuns([run(100), run(100, 599)])).toThrow(/different text/);
  });

  it('take the ratio to AR within each repetition, then the median', () => {
    // The machine ran twice as fast in the second repetition: the ratio is taken within each repetition
    // (3.00, 3.50, 2.82), not between the medians (310 / 110 = 2.82).
    const d = row('diffusion', [300, 700, 310]);
    const a = row('ar', [100, 200, 110]);
    expect(pairedRatio(d, a)).toBe('3.00x (median of 3 paired runs, 2.82-3.50x)');
    expect(d.tokensPerSecond / a.tokensPerSecond).toBeCloseTo(2.82, 2);
    expect(pairedRatio(row('diffusion', [250]), row('ar', [100]))).toBe('2.50x');
  });
});
