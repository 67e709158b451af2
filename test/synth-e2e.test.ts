/**
 * End to end on the synthetic code world: generate tasks, train a tokenizer, build a dataset, train tiny AR
 * and block-diffusion models for a few steps, then score held-out tasks by their tests through `eval synth`
 * and `bench sample --suite synth`. A tiny model passes nothing; what is checked is the plumbing, against
 * independent expectations: the oracle passes every task, a wrong completion fails, and every number is
 * computed from real runs (pass@1 in [0, 1], rows for each setting).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { main } from '../bin/main.ts';
import { latestCheckpoint } from '../schemas/checkpoint.ts';
import { nativeOrBuild, tempDir } from './train-helpers.ts';

const bin = nativeOrBuild();
let dir = '';
let synth = '';

/** Runs `sdt ARGV` in-process with its output captured; returns the exit code and stderr. */
const run = async (argv: string[]): Promise<{ code: number; stderr: string }> => {
  const write = process.stdout.write;
  const errWrite = process.stderr.write;
  let stderr = '';
  process.stdout.write = (() => true) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    return { code: await main(argv), stderr };
  } finally {
    process.stdout.write = write;
    process.stderr.write = errWrite;
  }
};
const quietMain = async (argv: string[]): Promise<number> => (await run(argv)).code;

/** The tasks every test here shares: 400 train, 20 validation, 20 test; `extra` flags go last. */
const synthArgv = (out: string, extra: string[] = []): string[] => [
  'data',
  'synth',
  '--out',
  out,
  '--train',
  '400',
  '--validation',
  '20',
  '--test',
  '20',
  '--quiet',
  ...extra,
];

describe.skipIf(!bin)('synthetic world end to end', () => {
  beforeAll(async () => {
    dir = await tempDir('synth-e2e');
    synth = join(dir, 'synth');
    expect(await quietMain(synthArgv(synth))).toBe(0);
  }, 120_000);

  it('writes the splits, the corpus and a manifest that proves no leakage', () => {
    const m = JSON.parse(readFileSync(join(synth, 'manifest.json'), 'utf8'));
    expect(m.tasks).toEqual({ train: 400, validation: 20, test: 20 });
    expect(m.leakage.heldOutCompositionsInTrain).toBe(0);
    expect(m.leakage.heldOutBodiesInTrain).toBe(0);
    expect(m.settings.seed).toBe(1);
    const corpus = readFileSync(join(synth, 'corpus.jsonl'), 'utf8').trim().split('\n');
    expect(corpus).toHaveLength(420);
    const test = readFileSync(join(synth, 'test.jsonl'), 'utf8').trim().split('\n');
    const testIds = new Set(test.map((l) => JSON.parse(l).id));
    for (const l of corpus) expect(testIds.has(JSON.parse(l).id)).toBe(false);
  });

  it('refuses other settings on an existing output, skips the same ones, and notices damage', async () => {
    const other = await run(synthArgv(synth, ['--seed', '2']));
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/other settings.*--overwrite/);
    expect(await quietMain(synthArgv(synth))).toBe(0);
    const copy = join(dir, 'damaged');
    await quietMain([
      'data',
      'synth',
      '--out',
      copy,
      '--train',
      '50',
      '--validation',
      '5',
      '--test',
      '5',
      '--quiet',
    ]);
    const path = join(copy, 'test.jsonl');
    writeFileSync(path, readFileSync(path, 'utf8').replace('assert', 'assert 1 or'));
    const damaged = await run(['eval', 'synth', '--oracle', '--data', copy, '--quiet']);
    expect(damaged.code).toBe(2);
    expect(damaged.stderr).toMatch(/test\.jsonl does not match manifest\.json/);
  }, 60_000);

  it('the oracle passes every held-out task through the sandbox', async () => {
    const out = join(dir, 'oracle');
    expect(await quietMain(['eval', 'synth', '--oracle', '--data', synth, '--out', out, '--quiet'])).toBe(0);
    const s = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    expect(s.tasks).toBe(20);
    expect(s.tasks_passed).toBe(20);
  }, 120_000);

  it('trains tiny AR and block-diffusion models and scores them by tests', async () => {
    const tok = join(dir, 'tokenizer.json');
    const data = join(dir, 'data');
    const corpus = join(synth, 'corpus.jsonl');
    const table = ['--text-field', 'text', '--split-field', 'split'];
    expect(
      await quietMain([
        'tokenizer',
        'train',
        '--source',
        corpus,
        ...table,
        '--vocab-size',
        '300',
        '--out',
        tok,
        '--quiet',
      ]),
    ).toBe(0);
    expect(
      await quietMain([
        'data',
        'build',
        '--source',
        corpus,
        ...table,
        '--id-field',
        'id',
        '--near-dup-threshold',
        '0',
        '--tokenizer',
        tok,
        '--out',
        data,
        '--quiet',
      ]),
    ).toBe(0);
    const train = (out: string, extra: string[]) =>
      quietMain([
        'train',
        '--dataset',
        data,
        '--model',
        'tiny',
        '--steps',
        '4',
        '--batch-size',
        '4',
        '--seq-len',
        '160',
        '--val-every',
        '0',
        '--val-batches',
        '1',
        '--checkpoint-every',
        '4',
        '--threads',
        '1',
        '--warmup',
        '1',
        '--out',
        out,
        '--quiet',
        ...extra,
      ]);
    expect(await train(join(dir, 'ar'), ['--objective', 'ar'])).toBe(0);
    expect(await train(join(dir, 'diff'), ['--attention', 'block', '--block-size', '8'])).toBe(0);
    const ar = latestCheckpoint(join(dir, 'ar'))!.path;
    const diff = latestCheckpoint(join(dir, 'diff'))!.path;

    const evalOut = join(dir, 'eval-ar');
    expect(
      await quietMain([
        'eval',
        'synth',
        '--ckpt',
        ar,
        '--ar',
        '--data',
        synth,
        '--limit',
        '4',
        '--max-new',
        '16',
        '--out',
        evalOut,
        '--quiet',
      ]),
    ).toBe(0);
    const s = JSON.parse(readFileSync(join(evalOut, 'summary.json'), 'utf8'));
    expect(s.tasks).toBe(4);
    expect(s.pass_at_k['pass@1']).toBeGreaterThanOrEqual(0);
    expect(s.pass_at_k['pass@1']).toBeLessThanOrEqual(1);

    const benchOut = join(dir, 'bench');
    const b = await run([
      'bench',
      'sample',
      '--ckpt',
      diff,
      '--ar-ckpt',
      ar,
      '--suite',
      'synth',
      '--data-dir',
      synth,
      '--prompts',
      '3',
      '--blocks',
      '8',
      '--thresholds',
      '0.9',
      '--batch',
      '1',
      '--max-new',
      '16',
      '--out',
      benchOut,
    ]);
    expect(b.code, b.stderr).toBe(0);
    const bench = JSON.parse(readFileSync(join(benchOut, 'bench-sample.json'), 'utf8'));
    expect(bench.rows.map((r: { model: string }) => r.model)).toEqual(['diffusion', 'ar']);
    for (const r of bench.rows) {
      expect(r.pass1).toBeGreaterThanOrEqual(0);
      expect(r.pass1).toBeLessThanOrEqual(1);
      expect(r.generatedTokens).toBeGreaterThan(0);
    }
    expect(existsSync(join(benchOut, 'bench-sample.svg'))).toBe(true);
  }, 300_000);
});
