/**
 * End to end: train a tokenizer and build a dataset from a few small Python files, run
 * `sdt data corrupt` for both processes, and check the Arrow output against the dataset's text.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../bin/main.ts';
import { applyAlignedTargets, tokenDistance } from '../pipelines/corrupt/align.ts';
import { openDataset } from '../pipelines/dataset/read.ts';
import { loadTokenizer } from '../pipelines/tokenizer/index.ts';

const FILES: Record<string, string> = {
  'geometry.py': `import math


def area(radius):
    """Area of a circle."""
    return math.pi * radius ** 2


def perimeter(width, height):
    if width < 0 or height < 0:
        raise ValueError("negative side")
    return 2 * (width + height)
`,
  'stack.py': `class Stack:
    def __init__(self):
        self.items = []

    def push(self, item):
        self.items.append(item)

    def pop(self):
        if not self.items:
            raise IndexError("pop from empty stack")
        return self.items.pop()

    def __len__(self):
        return len(self.items)
`,
  'counter.py': `def count_words(text):
    counts = {}
    for word in text.split():
        word = word.lower()
        counts[word] = counts.get(word, 0) + 1
    return counts


def most_common(counts, n=3):
    pairs = sorted(counts.items(), key=lambda kv: kv[1], reverse=True)
    return pairs[:n]
`,
};

/** Arrow list cells are Vectors (iterable, not indexable): copy them to plain arrays. */
const ints = (v: Iterable<number>): number[] => Array.from(v);

let dir: string;
let out = '';
async function sdt(...argv: string[]): Promise<number> {
  out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  try {
    return await main(argv);
  } finally {
    spy.mockRestore();
    err.mockRestore();
  }
}

describe('sdt data corrupt', () => {
  let texts: string[];
  let tokPath: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sdt-corrupt-'));
    const src = join(dir, 'src');
    await mkdir(src);
    for (const [name, text] of Object.entries(FILES)) await writeFile(join(src, name), text);
    tokPath = join(dir, 'tok.json');
    expect(
      await sdt('tokenizer', 'train', '--source', src, '--out', tokPath, '--vocab-size', '400', '--quiet'),
    ).toBe(0);
    const data = join(dir, 'data');
    const args = ['--source', src, '--tokenizer', tokPath, '--out', data, '--workers', '0', '--quiet'];
    expect(await sdt('data', 'build', ...args, '--validation-fraction', '0')).toBe(0);
    texts = [];
    for await (const row of (await openDataset(data)).rows('train')) texts.push(row.text);
    expect(texts.length).toBe(3);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Decoded documents of a clean window: each must be a piece of one dataset row. */
  async function checkDocuments(x0: number[]): Promise<void> {
    const tok = await loadTokenizer(tokPath);
    const docs: number[][] = [[]];
    for (const t of x0) {
      if (t === tok.special.bos) docs.push([]);
      else if (t === tok.special.eos) docs.push([]);
      else if (t !== tok.special.pad) docs[docs.length - 1].push(t);
    }
    for (const d of docs.filter((x) => x.length > 0)) {
      const text = tok.decode(d);
      expect(texts.some((t) => t.includes(text))).toBe(true);
    }
  }

  it('edit, aligned: targets rebuild clean windows of the dataset; distance measured and <= k', async () => {
    const file = join(dir, 'edit.arrow');
    const argv = ['data', 'corrupt', join(dir, 'data'), '--kind', 'edit', '--structure', '--seq-len', '48'];
    argv.push('--canvas', '64', '--alpha', '0.1', '--limit', '6', '--out', file, '--color', 'never');
    const code = await sdt(...argv);
    expect(code, out).toBe(0);
    expect(out).toMatch(/\{\+.*\+\}|\[-.*-\]/); // the diff shows insertions or deletions
    const table = tableFromIPC(await readFile(file));
    expect(table.numRows).toBe(6);
    const tok = await loadTokenizer(tokPath);
    for (let r = 0; r < table.numRows; r++) {
      const row = table.get(r)!.toJSON();
      expect(row.kind).toBe('edit');
      const weight = Array.from(row.weight as Iterable<number>);
      const len = weight.filter((w) => w > 0).length;
      expect(len).toBe(row.edited_length); // the 64-token canvas leaves room for the insertions
      const input = ints(row.input).slice(0, len);
      const x0 = Array.from(
        applyAlignedTargets(
          ints(row.target),
          ints(row.missing_before),
          ints(row.missing_tokens),
          tok.special.del,
          len,
        ),
      );
      expect(row.edit_distance).toBe(tokenDistance(x0, input));
      expect(row.edit_distance).toBeLessThanOrEqual(row.edit_budget);
      await checkDocuments(x0);
    }
  });

  it('mask: weights 1/p on <|mask|> positions, targets are clean windows, reruns are byte-identical', async () => {
    const a = join(dir, 'mask-a.arrow');
    const b = join(dir, 'mask-b.arrow');
    const args = [
      'data',
      'corrupt',
      join(dir, 'data'),
      '--kind',
      'mask',
      '--structure',
      '--seq-len',
      '40',
      '--limit',
      '15',
    ];
    expect(await sdt(...args, '--out', a, '--t-mode', 'block', '--block-size', '8')).toBe(0);
    expect(out).toContain('[M:');
    expect(await sdt(...args, '--out', b, '--t-mode', 'block', '--block-size', '8')).toBe(0);
    expect(Buffer.compare(await readFile(a), await readFile(b))).toBe(0);
    const tok = await loadTokenizer(tokPath);
    const table = tableFromIPC(await readFile(a));
    for (let r = 0; r < table.numRows; r++) {
      const row = table.get(r)!.toJSON();
      const input = ints(row.input);
      const weight = Array.from(row.weight as Iterable<number>);
      const masked = input.filter((t) => t === tok.special.mask).length;
      expect(row.masked).toBe(masked);
      expect(weight.filter((w) => w > 0).length).toBe(masked);
      for (const w of weight) if (w > 0) expect(w).toBeLessThanOrEqual(8 + 1e-4); // block clip: p >= 1/8
      await checkDocuments(ints(row.target));
    }
  });

  it('errors name the dataset or tokenizer at fault', async () => {
    expect(await sdt('data', 'corrupt', join(dir, 'missing'), '--out', join(dir, 'x.arrow'))).toBe(2);
    expect(out).toMatch(/missing.*manifest\.json/);
    const other = join(dir, 'other.json');
    await writeFile(other, (await readFile(tokPath, 'utf8')).replace('"<|pad|>"', '"<|pad|>" '));
    expect(
      await sdt('data', 'corrupt', join(dir, 'data'), '--out', join(dir, 'x.arrow'), '--tokenizer', other),
    ).toBe(2);
    expect(out).toContain('other.json');
  });
});
