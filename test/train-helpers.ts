import { chmodSync, copyFileSync, mkdtempSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../bin/main.ts';
import { pythonStdlibDir } from '../pipelines/sources/pystdlib.ts';
import { builtNative } from './native-build.ts';

/**
 * A private copy of native/build/sdt-native (built on demand), so a rebuild of the shared build directory
 * while the tests run cannot swap the binary under them; undefined (the tests skip) when it cannot be built.
 */
export function nativeOrBuild(): string | undefined {
  const bin = builtNative();
  if (!bin) return undefined;
  const copy = join(mkdtempSync(join(tmpdir(), 'sdt-native-')), 'sdt-native');
  copyFileSync(bin, copy);
  chmodSync(copy, 0o755);
  return copy;
}

export const tempDir = (prefix: string): Promise<string> => mkdtemp(join(tmpdir(), `sdt-${prefix}-`));

async function sdt(args: string[]): Promise<void> {
  const code = await main(args);
  if (code !== 0) throw new Error(`sdt ${args.join(' ')} exited with ${code}`);
}

/**
 * A tokenizer and a dataset built by the real commands from the stdlib folders `include` (globs relative to
 * the stdlib root), with a third of the files held out for validation.
 */
export async function stdlibDataset(dir: string, include: string[], vocabSize: number): Promise<string> {
  const root = pythonStdlibDir();
  const tok = join(dir, 'tokenizer.json');
  const inc = include.flatMap((g) => ['--include', g]);
  await sdt([
    'tokenizer',
    'train',
    '--source',
    root,
    ...inc,
    '--vocab-size',
    String(vocabSize),
    '--out',
    tok,
    '--quiet',
  ]);
  const ds = join(dir, 'data');
  await sdt([
    'data',
    'build',
    '--source',
    root,
    ...inc,
    '--tokenizer',
    tok,
    '--out',
    ds,
    '--validation-fraction',
    '0.3',
    '--workers',
    '0',
    '--quiet',
  ]);
  return ds;
}

/**
 * `sdt train` of the tiny model on `dataset` into `out` for `steps` steps: 4 sequences of 32 tokens per step in
 * 2 micro-batches, validation every 2 steps, a checkpoint every 4, the edit stage from half-way, one thread.
 */
export const tinyTrainArgs = (
  dataset: string,
  out: string,
  steps: number,
  extra: string[] = [],
): string[] => [
  'train',
  '--dataset',
  dataset,
  '--model',
  'tiny',
  '--steps',
  String(steps),
  '--batch-size',
  '4',
  '--micro-batches',
  '2',
  '--seq-len',
  '32',
  '--val-every',
  '2',
  '--val-batches',
  '1',
  '--checkpoint-every',
  '4',
  '--mask-fraction',
  '0.5',
  '--threads',
  '1',
  '--warmup',
  '2',
  '--out',
  out,
  '--quiet',
  ...extra,
];
