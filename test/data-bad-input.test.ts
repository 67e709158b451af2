import { spawnSync } from 'node:child_process';
import { mkdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../common/errors.ts';
import { openDataset } from '../pipelines/dataset/read.ts';
import { type BuildOptions, buildDataset } from '../pipelines/run.ts';
import { openSource } from '../pipelines/sources/index.ts';
import type { SourceRecord, SourceSpec } from '../pipelines/sources/types.ts';
import { DEFAULT_SIZE_LIMITS } from '../pipelines/steps/filters.ts';
import type { Split } from '../schemas/dataset.ts';
import { smallTokenizer, tempDir } from './data-helpers.ts';

let work: string;
let tokPath: string;
const GOOD = [
  'def add(a, b):\n    return a + b\n',
  'class Point:\n    def __init__(self, x):\n        self.x = x\n',
];

async function collect(spec: SourceSpec): Promise<SourceRecord[]> {
  const out: SourceRecord[] = [];
  for await (const r of openSource(spec)) out.push(r);
  return out;
}

const build = (source: SourceSpec, out: string, extra: Partial<BuildOptions> = {}) =>
  buildDataset({
    source,
    out,
    tokenizerPath: tokPath,
    limits: DEFAULT_SIZE_LIMITS,
    nearDupThreshold: 0.85,
    keepParseErrors: false,
    validationFraction: 0,
    shardRecords: 100,
    workers: 0,
    quiet: true,
    ...extra,
  });

async function texts(dir: string): Promise<string[]> {
  const ds = await openDataset(dir);
  const out: string[] = [];
  for (const s of ['train', 'validation'] as Split[]) for await (const r of ds.rows(s)) out.push(r.text);
  return out;
}

async function writeParquet(path: string, codec: string, rows: string[]): Promise<void> {
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  const values = rows.map(
    (t, i) => `(${i}, '${t.replaceAll("'", "''")}', '${i % 2 ? 'validation' : 'train'}', [${i}, ${i + 1}])`,
  );
  await c.run(
    `COPY (SELECT * FROM (VALUES ${values.join(',')}) t(n, content, split, nums)) TO '${path}' (FORMAT parquet, COMPRESSION ${codec})`,
  );
  c.closeSync();
  db.closeSync();
}

beforeAll(async () => {
  work = await tempDir('bad');
  tokPath = await smallTokenizer(work, 400);
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('bad files in a directory source', () => {
  it('rejects each with a counted reason and keeps the good ones', async () => {
    const src = join(work, 'src');
    await mkdir(src, { recursive: true });
    await writeFile(join(src, 'good1.py'), GOOD[0]);
    await writeFile(join(src, 'good2.py'), GOOD[1]);
    await writeFile(join(src, 'latin1.py'), Buffer.from('s = "caf\xe9"\n', 'latin1'));
    await writeFile(join(src, 'binary.py'), Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 0, 1, 2, 3]));
    await writeFile(join(src, 'empty.py'), '');
    await writeFile(join(src, 'nul.py'), 'x = 1\n\0y = 2\n');
    await writeFile(join(src, 'huge.py'), `x = "${'a'.repeat(10 * 1024 * 1024)}"`);
    await writeFile(join(src, 'broken.py'), 'def f(:\n    return (\n');
    const out = join(work, 'ds-bad');
    const rejectsOut = join(work, 'bad-rejects.jsonl');
    const r = await build({ kind: 'dir', root: src, include: ['*.py'], exclude: [] }, out, { rejectsOut });
    expect(r.manifest.rejects).toEqual({
      binary: 2,
      empty: 1,
      'invalid-utf8': 1,
      'parse-error': 1,
      'too-large': 1,
    });
    expect((await texts(out)).sort()).toEqual([...GOOD].sort());
    const lines = (await readFile(rejectsOut, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.find((l) => l.origin === 'huge.py').detail).toMatch(/max-bytes/);
    // With a higher size limit the 10 MB one-line file is read and dropped for its line length.
    const out2 = join(work, 'ds-bad2');
    const r2 = await build({ kind: 'dir', root: src, include: ['huge.py', 'good1.py'], exclude: [] }, out2, {
      limits: { ...DEFAULT_SIZE_LIMITS, maxBytes: 20_000_000 },
    });
    expect(r2.manifest.rejects).toEqual({ 'long-line': 1 });
  });

  it('a malformed tokenizer is a clear error naming it, whether workers or this thread load it', async () => {
    const bad = join(work, 'bad-tokenizer.json');
    await writeFile(bad, '{"model": 1}');
    for (const workers of [0, 2]) {
      const err = await build(
        { kind: 'dir', root: join(work, 'src'), include: ['good*.py'], exclude: [] },
        join(work, `ds-badtok-${workers}`),
        {
          tokenizerPath: bad,
          workers,
        },
      ).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UserError);
      expect((err as Error).message).toMatch(/bad-tokenizer\.json: no "model" object/);
    }
    // --overwrite of a dataset built with a good tokenizer: the bad one fails before anything is deleted.
    const src: SourceSpec = { kind: 'dir', root: join(work, 'src'), include: ['good*.py'], exclude: [] };
    const out = join(work, 'ds-badtok-overwrite');
    const first = await build(src, out, { workers: 2 });
    const err = await build(src, out, { tokenizerPath: bad, workers: 2, overwrite: true }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UserError);
    const kept = await openDataset(out);
    expect(kept.manifest.shards).toEqual(first.manifest.shards);
  });

  it('a missing source path is a clear error', async () => {
    await expect(
      collect({ kind: 'dir', root: join(work, 'nope'), include: [], exclude: [] }),
    ).rejects.toThrow(/nope does not exist/);
    const cli = spawnSync(
      'node',
      ['bin/sdt.js', 'data', 'build', '--source', join(work, 'nope'), '--tokenizer', tokPath],
      {
        encoding: 'utf8',
      },
    );
    expect(cli.status).toBe(2);
    expect(cli.stderr).toMatch(/--source .*nope does not exist/);
  });

  it('an unknown flag names the flag and points at --help', () => {
    const cli = spawnSync('node', ['bin/sdt.js', 'data', 'build', '--near-dupe', '0.9'], {
      encoding: 'utf8',
    });
    expect(cli.status).toBe(2);
    expect(cli.stderr).toMatch(/near-dupe/);
    expect(cli.stderr).toMatch(/--help/);
  });
});

describe('tabular sources', () => {
  it('reads Parquet written with snappy and with zstd, including a split column', async () => {
    for (const codec of ['snappy', 'zstd']) {
      const path = join(work, `code-${codec}.parquet`);
      await writeParquet(path, codec, [...GOOD, "print('ünïcode ok')\n"]);
      const recs = await collect({
        kind: 'parquet',
        path,
        textField: 'content',
        splitField: 'split',
        language: 'python',
      });
      expect(recs.map((r) => r.text)).toEqual([...GOOD, "print('ünïcode ok')\n"]);
      expect(recs.map((r) => r.split)).toEqual(['train', 'validation', 'train']);
      expect(recs[2].id).toBe(`code-${codec}.parquet:2`);
    }
  });

  it('a truncated Parquet or Arrow file is an error naming the file; the dataset already written survives', async () => {
    const pq = join(work, 'trunc.parquet');
    await writeParquet(pq, 'zstd', GOOD);
    const out = join(work, 'ds-pq');
    await build({ kind: 'parquet', path: pq, textField: 'content', language: 'python' }, out);
    const before = await texts(out);
    const size = (await readFile(pq)).length;
    await truncate(pq, Math.floor(size / 2));
    const err = await build(
      { kind: 'parquet', path: pq, textField: 'content', language: 'python' },
      out,
    ).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toContain(pq);
    expect(await texts(out)).toEqual(before);

    const arrow = join(work, 'rows.arrow');
    await writeFile(arrow, tableToIPC(tableFromArrays({ content: [GOOD[0], GOOD[1], 'x = 1\n'] }), 'file'));
    const recs = await collect({ kind: 'arrow', path: arrow, textField: 'content', language: 'python' });
    expect(recs.map((r) => r.text)).toEqual([GOOD[0], GOOD[1], 'x = 1\n']);
    await truncate(arrow, 100);
    await expect(
      collect({ kind: 'arrow', path: arrow, textField: 'content', language: 'python' }),
    ).rejects.toThrow(new RegExp(`${arrow}.*(truncated|unreadable)`));
  });

  it('JSONL: a bad line or a missing field is a counted reject and the rest is built', async () => {
    const path = join(work, 'rows.jsonl');
    await writeFile(
      path,
      [
        JSON.stringify({ content: GOOD[0] }),
        '{not json',
        JSON.stringify({ text: 'x' }),
        JSON.stringify({ content: GOOD[1] }),
      ].join('\n'),
    );
    const out = join(work, 'ds-jsonl');
    const r = await build({ kind: 'jsonl', path, textField: 'content', language: 'python' }, out);
    expect(r.manifest.rejects).toEqual({ 'bad-json': 1, 'missing-text': 1 });
    expect((await texts(out)).sort()).toEqual([...GOOD].sort());
    const unknownColumn = await collect({
      kind: 'parquet',
      path: join(work, 'code-zstd.parquet'),
      textField: 'body',
      language: 'python',
    }).catch((e) => e);
    expect(unknownColumn.message).toMatch(/no column "body" \(columns: n, content, split, nums\)/);
  });
});

describe('damaged dataset', () => {
  it('a truncated shard is an error naming the shard file', async () => {
    const out = join(work, 'ds-jsonl');
    const ds = await openDataset(out);
    const shard = ds.manifest.shards[0];
    await truncate(join(out, shard.file), 200);
    const read = async () => {
      for await (const _ of (await openDataset(out)).rows(shard.split)) {
        // drain
      }
    };
    // The manifest's sha256 catches it before the Arrow decoder sees it.
    await expect(read()).rejects.toThrow(
      new RegExp(`${shard.file} does not match its recorded sha256.*rerun .sdt data build`),
    );
  });
});
