/**
 * Bad input to the tokenizer and data commands: each gets a named error (exit 2) before any work, and leaves
 * every file under the work directory as it was (test/bad-input-helpers.ts).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../bin/main.ts';
import { buildDataset } from '../pipelines/run.ts';
import { DEFAULT_SIZE_LIMITS } from '../pipelines/steps/filters.ts';
import { type BadInputCase, runCase } from './bad-input-helpers.ts';
import { smallTokenizer, tempDir } from './data-helpers.ts';

let work: string;
let scratch: string;
let tok: string;
let data: string;
const w = (...p: string[]) => join(work, ...p);

beforeAll(async () => {
  work = await tempDir('bad-data');
  scratch = await tempDir('bad-data-out');
  tok = await smallTokenizer(work, 300);
  mkdirSync(w('src'));
  writeFileSync(w('src', 'a.py'), 'def add(a, b):\n    return a + b\n');
  writeFileSync(w('src', 'b.py'), 'class P:\n    def __init__(self, x):\n        self.x = x\n');
  writeFileSync(w('latin1.py'), Buffer.from('s = "caf\xe9"\n', 'latin1'));
  writeFileSync(w('rows.jsonl'), '{"body": "def f():\\n    pass\\n", "lang": "py"}\n');
  writeFileSync(w('afile'), 'x');
  mkdirSync(w('adir'));
  data = w('data');
  await buildDataset({
    source: { kind: 'dir', root: w('src'), include: ['*.py'], exclude: [] },
    out: data,
    tokenizerPath: tok,
    limits: DEFAULT_SIZE_LIMITS,
    nearDupThreshold: 0.85,
    keepParseErrors: false,
    validationFraction: 0,
    shardRecords: 100,
    workers: 0,
    quiet: true,
  });
}, 60_000);
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
  await rm(scratch, { recursive: true, force: true });
});

const cases = (): BadInputCase[] => [
  {
    name: 'tokenizer encode --file not UTF-8',
    argv: ['tokenizer', 'encode', '--tokenizer', tok, '--file', w('latin1.py')],
    message: /--file .*latin1\.py is not text \(invalid-utf8.*--lossy/,
  },
  {
    name: 'tokenizer train --vocab-size -5',
    argv: ['tokenizer', 'train', '--source', w('src'), '--vocab-size', '-5', '--out', w('t.json')],
    message: /--vocab-size must be an integer >= 1; got -5\./,
  },
  {
    name: 'tokenizer train --out a directory',
    argv: ['tokenizer', 'train', '--source', w('src'), '--out', w('adir')],
    message: /--out .*adir is a directory; give a file path/,
  },
  {
    name: 'data build --max-bytes -1',
    argv: ['data', 'build', '--source', w('src'), '--tokenizer', tok, '--max-bytes', '-1', '--out', w('d2')],
    message: /--max-bytes must be an integer >= 1; got -1/,
  },
  {
    name: 'data build --min-bytes above --max-bytes',
    argv: [
      'data',
      'build',
      '--source',
      w('src'),
      '--tokenizer',
      tok,
      '--min-bytes',
      '500',
      '--max-bytes',
      '100',
      '--out',
      w('d3'),
      '--workers',
      '0',
      '--quiet',
    ],
    message: /--min-bytes 500 is above --max-bytes 100/,
  },
  {
    name: 'data build --out under a file',
    argv: ['data', 'build', '--source', w('src'), '--tokenizer', tok, '--out', w('afile', 'd')],
    message: /afile is a file, so nothing can be written under it/,
  },
  {
    name: 'data build --shard-records 0',
    argv: [
      'data',
      'build',
      '--source',
      w('src'),
      '--tokenizer',
      tok,
      '--shard-records',
      '0',
      '--out',
      w('d4'),
    ],
    message: /--shard-records must be an integer >= 1; got 0/,
  },
  {
    name: 'data export --out a directory',
    argv: ['data', 'export', data, '--out', w('adir')],
    message: /--out .*adir is a directory/,
  },
  {
    name: 'data export extra argument',
    argv: ['data', 'export', data, 'extra', '--out', w('x.jsonl')],
    message: /unexpected argument "extra" \(it takes DIR/,
  },
  {
    name: 'data export --out the dataset itself',
    argv: ['data', 'export', data, '--out', data],
    message: /--out .* is a directory/,
  },
  {
    name: 'data inspect --limit -1',
    argv: ['data', 'inspect', data, '--limit', '-1'],
    message: /--limit must be an integer >= 0; got -1/,
  },
  {
    name: 'data corrupt --kind edit --t 0.5',
    argv: ['data', 'corrupt', data, '--kind', 'edit', '--t', '0.5', '--out', w('c.arrow')],
    message: /--kind edit and --t cannot be used together: --t is a mask-corruption setting/,
  },
  {
    name: 'data corrupt --alpha without --kind edit',
    argv: ['data', 'corrupt', data, '--alpha', '0.1', '--out', w('c.arrow')],
    message: /--kind mask and --alpha cannot be used together.*add --kind edit/,
  },
  {
    name: 'data corrupt --canvas below --seq-len',
    argv: [
      'data',
      'corrupt',
      data,
      '--kind',
      'edit',
      '--seq-len',
      '64',
      '--canvas',
      '8',
      '--out',
      w('c.arrow'),
    ],
    message: /--canvas 8 is below --seq-len 64/,
  },
  {
    name: 'data synth --validation-fraction 1.5',
    argv: ['data', 'synth', '--validation-fraction', '1.5', '--out', w('synth')],
    message: /--validation-fraction must be a number in \[0, 1\]; got 1\.5/,
  },
];

describe('bad input to tokenizer and data commands', () => {
  it('each gets a named error, exit 2, and nothing is written or changed', async () => {
    for (const c of cases()) await runCase(c, work);
  }, 120_000);

  it('a build that keeps no rows is an error naming the fields the source has', async () => {
    const out = join(scratch, 'empty');
    let stderr = '';
    const spy = (chunk: string | Uint8Array) => {
      stderr += String(chunk);
      return true;
    };
    const write = process.stderr.write;
    process.stderr.write = spy as typeof process.stderr.write;
    let code: number;
    try {
      code = await main([
        'data',
        'build',
        '--source',
        w('rows.jsonl'),
        '--tokenizer',
        tok,
        '--out',
        out,
        '--workers',
        '0',
        '--quiet',
      ]);
    } finally {
      process.stderr.write = write;
    }
    expect(code, stderr).toBe(2);
    expect(stderr).toMatch(
      /kept no rows \(rejected: missing-text 1\).*no field "content" \(fields: body, lang\); set --text-field/,
    );
    expect(readFileSync(w('rows.jsonl'), 'utf8')).toContain('"body"');
  }, 60_000);
});
