import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { pythonStdlibDir } from '../pipelines/sources/pystdlib.ts';
import { nativeEncoder, tsAddon } from '../pipelines/steps/ts-addon.ts';
import { type BpeTokenizer, trainBpe } from '../pipelines/tokenizer/index.ts';
import type { Encoding } from '../pipelines/tokenizer/types.ts';
import { mulberry32 as rng } from './prng.ts';

// Pieces that exercise every branch of the split scanner: letters led by punctuation, marks, digit runs,
// punctuation led by a space, line breaks with indentation, lone spaces before words, tabs, CR, Unicode
// spaces and letters, and a character outside the BMP (which the native encoder leaves to JS).
const PARTS = [
  'def ',
  'self',
  '.x',
  '(a',
  '_n',
  '  ',
  '   ',
  '\n',
  '\n    ',
  '\r\n',
  '\t',
  ' \n\n  ',
  '12345',
  '٣٤',
  ' ==',
  '):',
  '__',
  '#',
  '"',
  "'",
  'é',
  'e\u0301',
  'ü',
  '日本',
  '\u00a0',
  '\u2003x',
  '\u3000',
  ',',
  ' ',
  '\ufeff',
  'Ωμέγα',
  '😀',
];

describe.skipIf(!tsAddon())('native BPE encoder (data build)', () => {
  let tok: BpeTokenizer;
  let encode: (utf8: Uint8Array) => Encoding | undefined;
  beforeAll(async () => {
    const root = join(pythonStdlibDir(), 'json');
    const texts = readdirSync(root)
      .filter((f) => f.endsWith('.py'))
      .map((f) => readFileSync(join(root, f), 'utf8'));
    tok = (await trainBpe([...texts, PARTS.join(' ').repeat(20)], { vocabSize: 1200 })).tokenizer;
    encode = nativeEncoder(tok)!;
  });

  const same = (text: string): boolean => {
    const bytes = Buffer.from(text, 'utf8');
    const got = encode(bytes);
    if (got === undefined) return false;
    const want = tok.encodeWithOffsets(text);
    // Byte comparison first: a deep equality over 600k numbers takes seconds.
    const eq = (a: Int32Array, b: Int32Array): boolean =>
      Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
        Buffer.from(b.buffer, b.byteOffset, b.byteLength),
      );
    if (!eq(got.ids, want.ids)) expect([...got.ids]).toEqual([...want.ids]);
    if (!eq(got.byteOffsets, want.byteOffsets)) expect([...got.byteOffsets]).toEqual([...want.byteOffsets]);
    return true;
  };

  it('gives the JS encoder ids and offsets on stdlib files', () => {
    const dirs = ['email', 'json', 'encodings', 'unittest'].map((d) => join(pythonStdlibDir(), d));
    let files = 0;
    for (const d of dirs.filter((x) => existsSync(x))) {
      for (const f of readdirSync(d).filter((x) => x.endsWith('.py'))) {
        const text = readFileSync(join(d, f), 'utf8');
        if (same(text)) files++;
      }
    }
    expect(files).toBeGreaterThan(50);
  });

  it('gives the JS encoder ids on random text of the scanner branches; leaves astral text to JS', () => {
    const r = rng(17);
    let native = 0;
    let left = 0;
    for (let i = 0; i < 3000; i++) {
      const n = 1 + Math.floor(r() * 40);
      const text = Array.from({ length: n }, () => PARTS[Math.floor(r() * PARTS.length)]).join('');
      if (same(text)) native++;
      else {
        expect(text).toContain('😀');
        left++;
      }
    }
    expect(native).toBeGreaterThan(1000);
    expect(left).toBeGreaterThan(100);
  });

  it('leaves pieces over 1 KB to JS and encodes the empty text', () => {
    expect(encode(Buffer.from(`x = ${'='.repeat(2000)}\n`))).toBeUndefined();
    expect(same('')).toBe(true);
    expect(same(`x = ${'='.repeat(1000)}\n`)).toBe(true);
  });

  it('encodes the same after its piece cache fills and is cleared (300k distinct words)', () => {
    const r = rng(19);
    const letters = 'abcdefghijklmnopqrstuvwxyzé';
    const words = Array.from({ length: 300_000 }, () =>
      Array.from({ length: 3 + Math.floor(r() * 10) }, () => letters[Math.floor(r() * letters.length)]).join(
        '',
      ),
    );
    expect(same(words.join(' '))).toBe(true);
    expect(same(words.reverse().join('\n'))).toBe(true);
  });
});

describe.skipIf(!tsAddon())('cached encoder tables (data workers)', () => {
  it('round-trip, encode like the tokenizer they came from, and a damaged file is no cache', async () => {
    const { readBpeTablesCache, writeBpeTablesCache } = await import(
      '../pipelines/steps/bpe-tables-cache.ts'
    );
    const { nativeEncoderFromTables } = await import('../pipelines/steps/ts-addon.ts');
    const root = join(pythonStdlibDir(), 'json');
    const texts = readdirSync(root)
      .filter((f) => f.endsWith('.py'))
      .map((f) => readFileSync(join(root, f), 'utf8'));
    const tok = (await trainBpe([...texts, PARTS.join(' ')], { vocabSize: 700 })).tokenizer;
    // A hash of its own, so this test's file never stands for a real tokenizer's.
    const hash = `test${process.pid}${Date.now()}`.padEnd(64, '0');
    const tables = tok.nativeTables()!;
    expect(readBpeTablesCache(hash)).toBeUndefined();
    writeBpeTablesCache(hash, tables);
    const back = readBpeTablesCache(hash)!;
    for (const k of Object.keys(tables) as (keyof typeof tables)[]) expect(back[k]).toEqual(tables[k]);
    const encode = nativeEncoderFromTables(back)!;
    const text = `${texts.join('\n')}\n${PARTS.filter((p) => p !== '😀').join(' ')}`;
    expect([...encode(Buffer.from(text))!.ids]).toEqual([...tok.encode(text)]);
    const file = readdirSync(join(import.meta.dirname, '../node_modules/.cache/sdt')).find((f) =>
      f.startsWith(`bpe-${hash.slice(0, 32)}`),
    )!;
    const path = join(import.meta.dirname, '../node_modules/.cache/sdt', file);
    try {
      writeFileSync(path, readFileSync(path).subarray(0, 100));
      expect(readBpeTablesCache(hash)).toBeUndefined();
    } finally {
      rmSync(path, { force: true });
    }
  });
});
