import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTokenizer } from '../pipelines/tokenizer/index.ts';

const run = promisify(execFile);
const SDT = join(import.meta.dirname, '..', 'bin', 'sdt.js');

async function sdt(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [SDT, ...args], { maxBuffer: 1 << 24 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const PY = [
  'def add(a, b):\n    return a + b\n',
  'class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = y\n',
  'for i in range(10):\n    print(i, "héllo")\n',
];

describe('sdt tokenizer commands', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sdt-tok-cli-'));
    await mkdir(join(dir, 'src', 'pkg'), { recursive: true });
    for (let i = 0; i < PY.length; i++)
      await writeFile(join(dir, 'src', 'pkg', `m${i}.py`), PY[i].repeat(20));
    // Not matched by --include: must not influence the tokenizer.
    await writeFile(join(dir, 'src', 'notes.txt'), 'zzzz qqqq '.repeat(500));
    await writeFile(
      join(dir, 'rows.jsonl'),
      `${PY.map((t) => JSON.stringify({ content: t.repeat(20) })).join('\n')}\n{"other": 1}\n`,
    );
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('trains from a directory with --include, and encode prints the ids the library gives', async () => {
    const out = join(dir, 'dir-tok.json');
    const train = await sdt([
      'tokenizer',
      'train',
      '--source',
      join(dir, 'src'),
      '--include',
      '**/*.py',
      '--vocab-size',
      '300',
      '--min-frequency',
      '1',
      '--out',
      out,
      '--quiet',
    ]);
    expect(train.stderr).toBe('');
    expect(train.code).toBe(0);
    expect(train.stdout).toMatch(/3 records/);
    const tok = await loadTokenizer(out);
    expect(tok.vocabSize).toBe(300);
    expect(train.stdout).toContain(tok.hash);
    // "zzzz" only occurs in the excluded file, so no merge builds it.
    expect(tok.encode('zzzz').length).toBe(4);
    const text = 'def add(x):\n    return x';
    const enc = await sdt(['tokenizer', 'encode', '--tokenizer', out, '--format', 'ids', text]);
    expect(enc.code).toBe(0);
    expect(enc.stdout.trim()).toBe([...tok.encode(text)].join(' '));
  });

  it('trains from JSONL with --text-field, counting rows without the field as rejects', async () => {
    const out = join(dir, 'jsonl-tok.json');
    const train = await sdt([
      'tokenizer',
      'train',
      '--source',
      join(dir, 'rows.jsonl'),
      '--text-field',
      'content',
      '--vocab-size',
      '280',
      '--out',
      out,
      '--quiet',
    ]);
    expect(train.code).toBe(0);
    expect(train.stdout).toMatch(/3 records.*missing-text 1/s);
    expect(JSON.parse(await readFile(out, 'utf8')).model.type).toBe('BPE');
    const bad = await sdt([
      'tokenizer',
      'train',
      '--source',
      join(dir, 'rows.jsonl'),
      '--text-field',
      'text',
      '--out',
      join(dir, 'x.json'),
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/no train text read from .*rows\.jsonl.*missing-text x4.*set --text-field/);
  });
});
