import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  Field,
  Int32,
  List,
  makeData,
  RecordBatch,
  RecordBatchFileWriter,
  Struct,
  tableFromIPC,
  Uint8,
  Utf8,
} from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { AtomicChunkFile } from '../common/fs.ts';
import { encodeShard, SHARD_SCHEMA, ShardBuilder } from '../pipelines/dataset/columns.ts';
import { tableRows } from '../pipelines/dataset/read.ts';
import { globToRegExp, makePathFilter } from '../pipelines/sources/glob.ts';
import { languageOfPath } from '../pipelines/sources/language.ts';
import { pythonStdlibDir } from '../pipelines/sources/pystdlib.ts';
import { normaliseSplit, rowToRecord } from '../pipelines/sources/row.ts';
import { decodeStats, decodeText } from '../pipelines/steps/decode.ts';
import { ExactDedup } from '../pipelines/steps/dedup.ts';
import { checkSize, DEFAULT_SIZE_LIMITS, sizeReject } from '../pipelines/steps/filters.ts';
import { sha256Hex } from '../pipelines/steps/hash.ts';
import { chooseBands, estimatedJaccard, minhashSignature, NearDupIndex } from '../pipelines/steps/minhash.ts';
import { parseCode } from '../pipelines/steps/parse.ts';
import { withoutTsx } from '../pipelines/steps/pool.ts';
import { assignSplit, inShard } from '../pipelines/steps/split.ts';
import { tsAddon } from '../pipelines/steps/ts-addon.ts';
import { isReject } from '../pipelines/steps/types.ts';
import { mulberry32 as rng } from './prng.ts';

const reason = (v: unknown): string | undefined => (isReject(v) ? v.reason : undefined);

describe('decode', () => {
  it('accepts UTF-8 text and reports its byte length', () => {
    const r = decodeText(new TextEncoder().encode('x = "héllo😀"\n'));
    expect(isReject(r)).toBe(false);
    if (!isReject(r)) expect(r.nBytes).toBe(Buffer.byteLength('x = "héllo😀"\n'));
  });
  it('rejects invalid UTF-8, NUL bytes, control-character soup, empty input and lone surrogates', () => {
    expect(reason(decodeText(Uint8Array.of(0x61, 0xff, 0xfe, 0x62)))).toBe('invalid-utf8');
    expect(reason(decodeText(Uint8Array.of(0x61, 0x00, 0x62)))).toBe('binary');
    expect(reason(decodeText(new Uint8Array(100).fill(1)))).toBe('binary');
    expect(reason(decodeText(new Uint8Array(0)))).toBe('empty');
    expect(reason(decodeText('a\uD800b'))).toBe('invalid-utf8');
    expect(reason(decodeText('ok\0'))).toBe('binary');
  });
});

describe.skipIf(!tsAddon())('decode and size filter on bytes (the native path)', () => {
  const stats = (b: Uint8Array, probe: number) => tsAddon()!.textStats(b, probe);
  const verdicts = (b: Uint8Array, limits = DEFAULT_SIZE_LIMITS) => {
    const js = decodeText(b);
    const native = decodeStats(b, stats);
    const jsSize = isReject(js) ? js : (checkSize(js.text, js.nBytes, limits) ?? 'kept');
    const nativeSize = isReject(native)
      ? native
      : (sizeReject(native.nBytes, native.length, native.longestLine, native.lines, limits) ?? 'kept');
    return { jsSize, nativeSize };
  };
  it('gives decodeText and checkSize verdicts, details included, on crafted and random bytes', () => {
    const enc = (t: string) => new TextEncoder().encode(t);
    const crafted = [
      enc('x = "héllo😀"\n'),
      enc('\ufeffimport os\r\n\tpass\f\n'),
      enc(`${'é'.repeat(999)}\nx\n`),
      enc(`${'😀'.repeat(500)}\n`),
      enc(`${'😀'.repeat(501)}\n`),
      enc(`${'a'.repeat(300)}\n${'b'.repeat(150)}`),
      enc('\u0001\u0002'.repeat(5000)),
      enc(`${'x'.repeat(70000)}${'\u0001'.repeat(700)}`),
      enc(`${'é'.repeat(65530)}${'\u0001'.repeat(700)}`),
      new Uint8Array(0),
      Uint8Array.of(0x61, 0x00, 0x62),
      Uint8Array.of(0x61, 0xff, 0xfe, 0x62),
      Uint8Array.of(0xc0, 0xaf), // overlong
      Uint8Array.of(0xe0, 0x80, 0xaf), // overlong
      Uint8Array.of(0xed, 0xa0, 0x80), // an encoded surrogate
      Uint8Array.of(0xf4, 0x90, 0x80, 0x80), // above U+10FFFF
      Uint8Array.of(0xe2, 0x82), // truncated
      Uint8Array.of(0xf0, 0x9f, 0x98, 0x80, 0x0a, 0x61),
    ];
    for (const b of crafted) {
      const { jsSize, nativeSize } = verdicts(b);
      expect(nativeSize).toEqual(jsSize);
    }
    const tight = { ...DEFAULT_SIZE_LIMITS, minBytes: 1, maxLineLength: 40, maxMeanLineLength: 12 };
    const r = rng(23);
    const enc8 = (t: string) => [...new TextEncoder().encode(t)];
    const good = ['a', ' ', '\n', '\t', '\u0001', '\r', 'é', '€', '😀', '\ufeff'].map(enc8);
    const bad = [[0xff], [0x80], [0xed, 0xa0, 0x80], [0xc3], [0xf0, 0x9f]];
    let kept = 0;
    for (let i = 0; i < 4000; i++) {
      const parts = Array.from({ length: Math.floor(r() * 60) }, () =>
        r() < 0.03 ? bad[Math.floor(r() * bad.length)] : good[Math.floor(r() * good.length)],
      );
      const { jsSize, nativeSize } = verdicts(Uint8Array.from(parts.flat()), tight);
      expect(nativeSize).toEqual(jsSize);
      if (jsSize === 'kept') kept++;
    }
    expect(kept).toBeGreaterThan(50);
  });
});

describe('size filter', () => {
  const check = (t: string) => checkSize(t, Buffer.byteLength(t), DEFAULT_SIZE_LIMITS);
  it('drops tiny, huge and long-line files and keeps normal code', () => {
    expect(check('x=1')?.reason).toBe('too-small');
    expect(check('a'.repeat(10_000_000))?.reason).toBe('too-large');
    expect(check(`x = ${'1+'.repeat(600)}1\n`)?.reason).toBe('long-line');
    expect(check('def f(x):\n    return x + 1\n')).toBeUndefined();
  });
});

describe('globs and languages', () => {
  it('matches like include lists are written', () => {
    expect(globToRegExp('*.py').test('a/b/c.py')).toBe(true);
    expect(globToRegExp('*.py').test('a/b/c.pyc')).toBe(false);
    expect(globToRegExp('json/*.py').test('json/x.py')).toBe(true);
    expect(globToRegExp('json/*.py').test('json/sub/x.py')).toBe(false);
    expect(globToRegExp('**/test/**').test('a/test/b/c.py')).toBe(true);
    expect(globToRegExp('src/**/*.{py,pyi}').test('src/x.pyi')).toBe(true);
    const keep = makePathFilter(['*.py'], ['**/vendor/**']);
    expect([keep('a.py'), keep('vendor/a.py'), keep('x/vendor/y/a.py'), keep('a.txt')]).toEqual([
      true,
      false,
      false,
      false,
    ]);
    expect([languageOfPath('a/b.py'), languageOfPath('x.rs'), languageOfPath('Makefile')]).toEqual([
      'python',
      'rust',
      'text',
    ]);
  });
});

describe('tabular rows', () => {
  const fields = { textField: 'content', splitField: 'split', language: 'python' };
  it('maps split labels and rejects rows without text or with an unknown split', () => {
    expect(normaliseSplit('Valid')).toBe('validation');
    expect(rowToRecord({ content: 'x', split: 'test' }, 'f:1', fields).split).toBe('validation');
    expect(rowToRecord({ text: 'x', split: 'train' }, 'f:1', fields).reject?.reason).toBe('missing-text');
    expect(rowToRecord({ content: 'x', split: 'holdout' }, 'f:1', fields).reject?.reason).toBe(
      'unknown-split',
    );
  });
});

/** Exact Jaccard of the shingle sets the signature estimates, computed independently with strings. */
function trueJaccard(a: string, b: string, k = 5): number {
  const shingles = (t: string) => {
    const w = t.match(/[A-Za-z0-9_]+|[^\sA-Za-z0-9_]/g) ?? [];
    const s = new Set<string>();
    for (let i = 0; i + k <= w.length; i++) s.add(w.slice(i, i + k).join('\u0001'));
    return s;
  };
  const sa = shingles(a);
  const sb = shingles(b);
  let inter = 0;
  for (const x of sa) if (sb.has(x)) inter++;
  return inter / (sa.size + sb.size - inter);
}

function program(seed: number, n = 60): string {
  const lines: string[] = [];
  for (let i = 0; i < n; i++)
    lines.push(`def f_${seed}_${i}(x, y):\n    return x * ${seed + i} + y - ${i * 7}\n`);
  return lines.join('\n');
}

describe('near-dedup (MinHash + LSH)', () => {
  it('estimates Jaccard similarity within sampling error', () => {
    const a = program(1);
    const lines = a.split('\n');
    for (const keep of [0.9, 0.7, 0.5]) {
      const b = lines.map((l, i) => (i / lines.length < keep ? l : `${l} # edited ${i}`)).join('\n');
      const est = estimatedJaccard(minhashSignature(a), minhashSignature(b));
      // 128 permutations: standard error <= 0.045; allow 3.5 sigma.
      expect(Math.abs(est - trueJaccard(a, b))).toBeLessThan(0.16);
    }
  });
  it('is unbiased on average over many pairs, short texts included', () => {
    let err = 0;
    let n = 0;
    for (let seed = 0; seed < 24; seed++) {
      const lines = program(seed * 31 + 5, 4 + seed * 3).split('\n');
      const keep = (seed % 8) / 8 + 0.05;
      const b = lines.map((l, i) => (((i * 7919 + seed) % 100) / 100 < keep ? l : `${l} # v${i}`)).join('\n');
      const a = lines.join('\n');
      err += Math.abs(estimatedJaccard(minhashSignature(a), minhashSignature(b)) - trueJaccard(a, b));
      n++;
    }
    expect(err / n).toBeLessThan(0.06);
    expect(estimatedJaccard(minhashSignature('x = 1'), minhashSignature('x = 1'))).toBe(1);
  });
  it('catches near-copies and keeps distinct files', () => {
    const index = new NearDupIndex(0.85);
    const originals = Array.from({ length: 30 }, (_, i) => program(i * 1000 + 7));
    for (const [i, t] of originals.entries())
      expect(index.checkAndAdd(`orig${i}`, minhashSignature(t))).toBeUndefined();
    // A near-copy: one line changed and whitespace reformatted.
    let caught = 0;
    for (const [i, t] of originals.entries()) {
      const copy = t.replace(`return x * ${i * 1000 + 7}`, 'return x * 0').replaceAll('    ', '  ');
      expect(trueJaccard(t, copy)).toBeGreaterThan(0.9);
      const hit = index.checkAndAdd(`copy${i}`, minhashSignature(copy));
      if (hit?.id === `orig${i}`) caught++;
    }
    expect(caught).toBeGreaterThanOrEqual(29);
    expect(index.size).toBe(30 + (30 - caught));
  });
  it.skipIf(!tsAddon())('native signatures (the data build) equal the JS ones, astral text included', () => {
    const addon = tsAddon()!;
    const texts = [
      '',
      '   \n\t',
      'x',
      'x = 1',
      'naïve_größe = "héllo 😀 wörld" # 日本語\r\n',
      '😀😀 a😀b \u{10348}_x',
      ...Array.from({ length: 40 }, (_, i) => program(i * 13 + 1, 2 + i)),
    ];
    const dir = join(pythonStdlibDir(), 'email');
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.py')))
      texts.push(readFileSync(join(dir, f), 'utf8'));
    for (const [numPerm, shingle] of [
      [128, 5],
      [1, 3],
      [64, 1],
      [256, 9],
    ]) {
      for (const t of texts) {
        const want = minhashSignature(t, { numPerm, shingle });
        expect([...addon.minhash(Buffer.from(t, 'utf8'), numPerm, shingle)]).toEqual([...want]);
      }
    }
  });
  it('puts the LSH S-curve below the threshold', () => {
    const { bands, rows } = chooseBands(128, 0.85);
    expect(bands * rows).toBe(128);
    expect(1 - (1 - 0.85 ** rows) ** bands).toBeGreaterThan(0.99);
  });
});

describe('exact dedup, splits and shards', () => {
  it('keeps the first of identical contents', () => {
    const d = new ExactDedup();
    expect(d.checkAndAdd('a', 'h1')).toBeUndefined();
    expect(d.checkAndAdd('b', 'h2')).toBeUndefined();
    expect(d.checkAndAdd('c', 'h1')).toBe('a');
  });
  it('splits by a stable hash near the asked fraction and honours a given split', () => {
    const ids = Array.from({ length: 4000 }, (_, i) => `pkg/file_${i}.py`);
    const val = ids.filter((id) => assignSplit(id, undefined, 0.1) === 'validation').length;
    expect(val / ids.length).toBeGreaterThan(0.08);
    expect(val / ids.length).toBeLessThan(0.12);
    expect(ids.map((id) => assignSplit(id, undefined, 0.1))).toEqual(
      ids.map((id) => assignSplit(id, undefined, 0.1)),
    );
    expect(assignSplit('x', 'validation', 0)).toBe('validation');
  });
  it('--shard i/N partitions ids exactly', () => {
    const ids = Array.from({ length: 1000 }, (_, i) => `r${i}`);
    const parts = [0, 1, 2].map((index) => ids.filter((id) => inShard(id, { index, count: 3 })));
    expect(parts.reduce((n, p) => n + p.length, 0)).toBe(ids.length);
    expect(new Set(parts.flat()).size).toBe(ids.length);
    for (const p of parts) expect(p.length).toBeGreaterThan(250);
  });
});

describe('worker options', () => {
  it('drops the tsx loader from the options of bundled workers and keeps the rest', () => {
    const argv = [
      '--require',
      '/r/node_modules/tsx/dist/preflight.cjs',
      '--cpu-prof',
      '--import',
      'file:///r/node_modules/tsx/dist/loader.mjs',
      '--import=file:///r/node_modules/tsx/dist/loader.mjs',
      '--import',
      './other.mjs',
      '--import',
      'tsx',
      '--import=tsx/esm',
      '--max-old-space-size=100',
    ];
    expect(withoutTsx(argv)).toEqual(['--cpu-prof', '--import', './other.mjs', '--max-old-space-size=100']);
  });
});

describe('parse', () => {
  it('counts ERROR and MISSING nodes', () => {
    expect(parseCode('def f(x):\n    return x\n', 'python')?.errors).toBe(0);
    expect(parseCode('def f(:\n  return\n', 'python')!.errors).toBeGreaterThan(0);
    expect(parseCode('x = (1 + \n', 'python')!.errors).toBeGreaterThan(0);
    expect(parseCode('hello', 'text')).toBeUndefined();
  });
});

describe('per-record steps', () => {
  it('a step that throws rejects the record instead of ending the build', async () => {
    const { processRecord, toWorkItem } = await import('../pipelines/steps/record.ts');
    const { byteTokenizer } = await import('./data-helpers.ts');
    const tokenizer = {
      ...byteTokenizer(),
      encodeWithOffsets: () => {
        throw new Error('boom');
      },
    };
    const ctx = { limits: DEFAULT_SIZE_LIMITS, minhash: { numPerm: 128, shingle: 5 }, tokenizer };
    const w = processRecord(
      toWorkItem(0, { id: 'a.py', origin: 'a.py', language: 'python', text: 'def f(x):\n    return x\n' }),
      ctx,
      true,
    );
    expect(w.reject).toEqual({ reason: 'tokenize-failed', detail: 'boom' });
    const ok = processRecord(
      toWorkItem(1, { id: 'b.py', origin: 'b.py', language: 'python', text: 'def f(x):\n    return x\n' }),
      { ...ctx, tokenizer: byteTokenizer() },
      true,
    );
    expect(ok.reject).toBeUndefined();
    expect(ok.tokens?.length).toBe(Buffer.byteLength('def f(x):\n    return x\n'));
    expect(Array.from(ok.spanKind ?? []).length).toBeGreaterThan(3);
  });
});

describe('deferred file reads', () => {
  it('a listed file read by the record steps gives the same record as one read while listing; a vanished one is an unreadable reject', async () => {
    const { processRecord, toWorkItem } = await import('../pipelines/steps/record.ts');
    const { readFileRecord, statFileRecord } = await import('../pipelines/sources/directory.ts');
    const { byteTokenizer, tempDir, writeText } = await import('./data-helpers.ts');
    const dir = await tempDir('defer');
    const text = 'def f(x):\n    return x  # \u00e9\n';
    await writeText(join(dir, 'a.py'), text);
    const ctx = {
      limits: DEFAULT_SIZE_LIMITS,
      minhash: { numPerm: 128, shingle: 5 },
      tokenizer: byteTokenizer(),
    };
    const listed = statFileRecord(dir, 'a.py', 1 << 20);
    expect(listed.bytes).toBeUndefined();
    expect(listed.fileSize).toBe(Buffer.byteLength(text));
    const deferred = processRecord(toWorkItem(0, listed), ctx, true);
    const read = processRecord(toWorkItem(0, await readFileRecord(dir, 'a.py', 1 << 20)), ctx, true);
    expect(deferred.reject).toBeUndefined();
    expect(Buffer.from(deferred.utf8!).toString('utf8')).toBe(text);
    expect(Array.from(deferred.tokens!)).toEqual(Array.from(read.tokens!));
    expect(deferred.contentHash).toBe(read.contentHash);
    expect(deferred.nBytes).toBe(read.nBytes);

    const gone = statFileRecord(dir, 'a.py', 1 << 20);
    rmSync(join(dir, 'a.py'));
    const w = processRecord(toWorkItem(1, gone), ctx, true);
    expect(w.reject?.reason).toBe('unreadable');
    expect(w.reject?.detail).toMatch(/ENOENT/);
    expect(statFileRecord(dir, 'a.py', 1 << 20).reject?.reason).toBe('unreadable');
  });
});

describe('worker bundle cache', () => {
  it('is reused while its modules are unchanged and dropped when one changes', async () => {
    const { BUNDLE_INDEX, bundledWorkerEntry, cachedBundle } = await import(
      '../pipelines/steps/worker-bundle.ts'
    );
    const { tempDir } = await import('./data-helpers.ts');
    const bundle = await bundledWorkerEntry();
    if (!bundle) return; // esbuild missing or the cache not writable: workers start through tsx
    // A private copy of the index, so builds running beside this test are not disturbed: as recorded it
    // is current; with one module's mtime recorded otherwise it is stale.
    const index = JSON.parse(readFileSync(BUNDLE_INDEX, 'utf8'));
    const dir = await tempDir('bundle');
    const copy = join(dir, 'index.json');
    writeFileSync(copy, JSON.stringify(index));
    expect(cachedBundle(copy)?.href).toBe(bundle.href);
    expect(Object.keys(index.inputs)).toContain('pipelines/steps/record.ts');
    index.inputs['pipelines/steps/record.ts'].mtimeMs += 2000;
    writeFileSync(copy, JSON.stringify(index));
    expect(cachedBundle(copy)).toBeUndefined();
    index.inputs['pipelines/steps/record.ts'].mtimeMs -= 2000;
    index.inputs['pipelines/steps/record.ts'].size += 1;
    writeFileSync(copy, JSON.stringify(index));
    expect(cachedBundle(copy)).toBeUndefined();
    rmSync(dir, { recursive: true, force: true });
  });
});

/** Shard rows of random sizes: text as a string or as bytes, tokens and spans of random lengths. */
function randomShardRows(count: number, seed: number) {
  const r = rng(seed);
  return Array.from({ length: count }, (_, i) => {
    const n = 1 + Math.floor(r() * 300);
    const text = `# row ${i} \u00e9\n${'x = 1\n'.repeat(Math.floor(r() * 50))}`;
    const spans = Math.floor(r() * 5);
    return {
      id: `f${i}.py`,
      origin: `dir/f${i}.py`,
      language: 'python',
      split: 'train' as const,
      text: i % 2 ? text : new TextEncoder().encode(text),
      tokens: Int32Array.from({ length: n }, () => Math.floor(r() * 8192)),
      spanKind: Uint8Array.from({ length: spans }, () => Math.floor(r() * 5)),
      spanStart: Int32Array.from({ length: spans }, (_, k) => k),
      spanEnd: Int32Array.from({ length: spans }, (_, k) => k + 1),
      parseErrors: i % 3,
      nBytes: Buffer.byteLength(text),
    };
  });
}

type TestRow = ReturnType<typeof randomShardRows>[number];

/**
 * The reference encoding: Arrow's own RecordBatchFileWriter on contiguous columns, cut into record
 * batches by the same rule (a batch closes once its text reaches batchTextBytes).
 */
function arrowWriterShard(rows: TestRow[], batchTextBytes: number): Uint8Array {
  const enc = new TextEncoder();
  const bytes = (v: string | Uint8Array) => (typeof v === 'string' ? enc.encode(v) : v);
  const offsets = (parts: ArrayLike<number>[]) => {
    const o = new Int32Array(parts.length + 1);
    parts.forEach((p, i) => {
      o[i + 1] = o[i] + p.length;
    });
    return o;
  };
  const joined = <T extends Uint8Array | Int32Array>(parts: T[], make: (n: number) => T): T => {
    const out = make(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  };
  const utf8 = (values: Uint8Array[]) =>
    makeData({
      type: new Utf8(),
      length: values.length,
      nullCount: 0,
      valueOffsets: offsets(values),
      data: joined(values, (n) => new Uint8Array(n)),
    });
  const list = <T extends Int32 | Uint8>(type: T, values: (Int32Array | Uint8Array)[]) => {
    const flat =
      type instanceof Uint8
        ? joined(values as Uint8Array[], (n) => new Uint8Array(n))
        : joined(values as Int32Array[], (n) => new Int32Array(n));
    return makeData({
      type: new List(new Field('item', type, false)),
      length: values.length,
      nullCount: 0,
      valueOffsets: offsets(values),
      child: makeData({ type, length: flat.length, nullCount: 0, data: flat as never }),
    });
  };
  const int32 = (values: number[]) =>
    makeData({ type: new Int32(), length: values.length, nullCount: 0, data: Int32Array.from(values) });
  const batchOf = (b: TestRow[]) => {
    const children = [
      utf8(b.map((r) => bytes(r.id))),
      utf8(b.map((r) => bytes(r.origin))),
      utf8(b.map((r) => bytes(r.language))),
      utf8(b.map((r) => bytes(r.split))),
      utf8(b.map((r) => bytes(r.text))),
      ...(
        [
          ['tokens', new Int32()],
          ['spanKind', new Uint8()],
          ['spanStart', new Int32()],
          ['spanEnd', new Int32()],
        ] as const
      ).map(([key, type]) =>
        list(
          type,
          b.map((r) => r[key]),
        ),
      ),
      int32(b.map((r) => r.parseErrors)),
      int32(b.map((r) => r.nBytes)),
      int32(b.map((r) => r.tokens.length)),
    ];
    const struct = makeData({
      type: new Struct(SHARD_SCHEMA.fields),
      length: b.length,
      nullCount: 0,
      children,
    });
    return new RecordBatch(SHARD_SCHEMA, struct);
  };
  const batches: TestRow[][] = [];
  let current: TestRow[] = [];
  let text = 0;
  for (const r of rows) {
    current.push(r);
    text += bytes(r.text).length;
    if (text >= batchTextBytes) {
      batches.push(current);
      current = [];
      text = 0;
    }
  }
  if (current.length > 0 || batches.length === 0) batches.push(current);
  const writer = new RecordBatchFileWriter();
  for (const b of batches) writer.write(batchOf(b));
  return writer.finish().toUint8Array(true);
}

describe('shard encoding', () => {
  it("is byte for byte what Arrow's RecordBatchFileWriter writes for the same batches", async () => {
    const rows = randomShardRows(40, 11);
    // Rows without tokens or spans, and a shard without rows, take the same paths.
    rows[3].tokens = new Int32Array(0);
    rows[4].spanKind = new Uint8Array(0);
    rows[4].spanStart = new Int32Array(0);
    rows[4].spanEnd = new Int32Array(0);
    for (const [subset, batchBytes] of [
      [rows, 1 << 20],
      [rows, 500],
      [rows.slice(0, 1), 500],
      [[], 500],
    ] as const) {
      const b = new ShardBuilder(undefined, batchBytes);
      for (const r of subset) b.add(r);
      const { chunks } = await b.finish();
      expect(Buffer.compare(Buffer.concat(chunks), arrowWriterShard([...subset], batchBytes))).toBe(0);
    }
  });

  it('record batches closed as rows arrive read back as the same rows, byte-identical on every run', async () => {
    const rows = randomShardRows(40, 7);
    const oneBatch = tableFromIPC(await encodeShard(rows));
    const small = await encodeShard(rows, 500);
    const many = tableFromIPC(small);
    expect(oneBatch.batches.length).toBe(1);
    expect(many.batches.length).toBeGreaterThan(5);
    expect([...tableRows(many)]).toEqual([...tableRows(oneBatch)]);
    expect(Buffer.compare(await encodeShard(rows, 500), small)).toBe(0);
    const b = new ShardBuilder(undefined, 500);
    for (const row of rows) b.add(row);
    const { chunks, byteLength, sha256 } = await b.finish();
    expect(byteLength).toBe(small.length);
    expect(sha256).toBe(sha256Hex(small));
    expect(Buffer.compare(Buffer.concat(chunks), small)).toBe(0);
  });
});

describe('shard files', () => {
  it('a shard written batch by batch is the bytes encodeShard gives; an aborted one leaves nothing', async () => {
    const { tempDir } = await import('./data-helpers.ts');
    const dir = await tempDir('shardfile');
    const rows = randomShardRows(30, 8);
    const path = join(dir, 'train', 'shard-00000.arrow');
    const file = new AtomicChunkFile(path);
    const b = new ShardBuilder(file, 200);
    // Rows arrive between turns of the event loop, as in a build: the drained batches go to the file.
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    for (const r of rows) {
      b.add(r);
      await turn();
    }
    await file.written();
    expect(readdirSync(join(dir, 'train')).some((n) => n.includes('.tmp-'))).toBe(true);
    // Earlier batches are on their way to a temporary file; the shard itself appears only on finish.
    expect(existsSync(path)).toBe(false);
    const { sha256, byteLength, chunks } = await b.finish();
    const expected = await encodeShard(rows, 200);
    expect(chunks).toEqual([]);
    expect(Buffer.compare(readFileSync(path), expected)).toBe(0);
    expect(byteLength).toBe(expected.length);
    expect(sha256).toBe(sha256Hex(expected));
    expect(readdirSync(join(dir, 'train'))).toEqual(['shard-00000.arrow']);

    const aborted = new ShardBuilder(new AtomicChunkFile(join(dir, 'validation', 'shard-00000.arrow')), 200);
    for (const r of rows) {
      aborted.add(r);
      await turn();
    }
    await aborted.abort();
    expect(readdirSync(join(dir, 'validation'))).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  });
});
