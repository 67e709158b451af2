import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportDataset } from '../pipelines/dataset/export.ts';
import { formatRow } from '../pipelines/dataset/inspect.ts';
import { openDataset } from '../pipelines/dataset/read.ts';
import { type BuildOptions, buildDataset } from '../pipelines/run.ts';
import { DEFAULT_SIZE_LIMITS } from '../pipelines/steps/filters.ts';
import { loadTokenizer } from '../pipelines/tokenizer/index.ts';
import type { Tokenizer } from '../pipelines/tokenizer/types.ts';
import type { DatasetRow, Split } from '../schemas/dataset.ts';
import { smallTokenizer, stdlibSubset, tempDir } from './data-helpers.ts';

let work: string;
let tokPath: string;
let tok: Tokenizer;
const subset = stdlibSubset();

const options = (out: string, extra: Partial<BuildOptions> = {}): BuildOptions => ({
  source: { kind: 'dir', root: subset.root, include: subset.include, exclude: [] },
  out,
  tokenizerPath: tokPath,
  limits: DEFAULT_SIZE_LIMITS,
  nearDupThreshold: 0.85,
  keepParseErrors: false,
  validationFraction: 0.15,
  shardRecords: 8,
  workers: 0,
  quiet: true,
  ...extra,
});

async function allRows(dir: string): Promise<DatasetRow[]> {
  const ds = await openDataset(dir);
  const rows: DatasetRow[] = [];
  for (const split of ['train', 'validation'] as Split[]) for await (const r of ds.rows(split)) rows.push(r);
  return rows;
}

/** Every file of a dataset dir, name -> bytes, for byte-identity checks. */
function snapshot(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string, rel: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name), `${rel}${e.name}/`);
      else out.set(`${rel}${e.name}`, readFileSync(join(d, e.name)));
    }
  };
  walk(dir, '');
  return out;
}

beforeAll(async () => {
  work = await tempDir('build');
  tokPath = await smallTokenizer(work);
  tok = await loadTokenizer(tokPath);
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('end-to-end build of a stdlib subset', () => {
  let dir: string;
  beforeAll(async () => {
    dir = join(work, 'ds');
    await buildDataset(options(dir, { rejectsOut: join(work, 'rejects.jsonl') }));
  });

  it('writes rows whose tokens round-trip to their text and whose spans are in range', async () => {
    const ds = await openDataset(dir, { tokenizerHash: tok.hash });
    const rows = await allRows(dir);
    const m = ds.manifest;
    expect(m.complete).toBe(true);
    expect(rows.length).toBe(m.counts.train.rows + m.counts.validation.rows);
    expect(rows.length).toBeGreaterThan(20);
    expect(m.counts.validation.rows).toBeGreaterThan(0);
    expect(rows.reduce((n, r) => n + r.tokens.length, 0)).toBe(
      m.counts.train.tokens + m.counts.validation.tokens,
    );
    for (const r of rows) {
      expect(tok.decode(r.tokens)).toBe(r.text);
      expect(readFileSync(join(subset.root, r.origin), 'utf8')).toBe(r.text);
      expect(r.spans.length).toBeGreaterThan(0);
      for (const s of r.spans) expect(s.start >= 0 && s.end > s.start && s.end <= r.tokens.length).toBe(true);
      expect(r.parseErrors).toBe(0);
    }
    // Functions span text that starts with "def" (or a decorator / async) once decoded.
    const r0 = rows.find((r) => r.spans.some((s) => s.kind === 'function'))!;
    const fn = r0.spans.find((s) => s.kind === 'function')!;
    expect(tok.decode(r0.tokens.subarray(fn.start, fn.end)).trimStart()).toMatch(/^(async\s+)?def /);
  });

  it('counts every input file exactly once: kept or rejected with a reason', async () => {
    const ds = await openDataset(dir);
    const m = ds.manifest;
    const rejectLines = (await readFile(join(work, 'rejects.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .filter(Boolean);
    const rejected = Object.values(m.rejects).reduce((a, b) => a + b, 0);
    expect(rejectLines.length).toBe(rejected);
    const records = m.chunks.reduce((n, c) => n + c.records, 0);
    expect(records).toBe(m.counts.train.rows + m.counts.validation.rows + rejected);
    const files =
      readdirSync(join(subset.root, 'json')).filter((f) => f.endsWith('.py')).length +
      readdirSync(join(subset.root, 'email')).filter((f) => f.endsWith('.py')).length;
    expect(records).toBe(files);
  });

  it('is byte-identical with 2 workers, and a rerun skips every chunk and changes nothing', async () => {
    const dir2 = join(work, 'ds-workers');
    const r2 = await buildDataset(options(dir2, { workers: 2 }));
    expect(r2.writtenChunks).toBeGreaterThan(2);
    const a = snapshot(dir);
    const b = snapshot(dir2);
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    for (const [k, v] of a) expect(b.get(k)!.equals(v), k).toBe(true);
    const again = await buildDataset(options(dir2, { workers: 1 }));
    expect(again.writtenChunks).toBe(0);
    expect(again.skippedChunks).toBe(r2.writtenChunks);
    const c = snapshot(dir2);
    for (const [k, v] of a) expect(c.get(k)!.equals(v), k).toBe(true);
  });

  it('refuses to mix settings and rebuilds a damaged shard', async () => {
    await expect(buildDataset(options(dir, { nearDupThreshold: 0.5 }))).rejects.toThrow(/--overwrite/);
    const m = (await openDataset(dir)).manifest;
    const victim = m.shards[1];
    await writeFile(join(dir, victim.file), 'garbage');
    const r = await buildDataset(options(dir));
    expect(r.writtenChunks).toBe(1);
    expect(readFileSync(join(dir, victim.file)).length).toBeGreaterThan(100);
    expect((await allRows(dir)).length).toBe(m.counts.train.rows + m.counts.validation.rows);
  });

  it('chunks also close at --shard-mb input bytes, without changing the rows', async () => {
    const d = join(work, 'small-chunks');
    const r = await buildDataset(options(d, { shardBytes: 60_000, shardRecords: 1000 }));
    const ref = await openDataset(join(work, 'ds'));
    expect(r.manifest.chunks.length).toBeGreaterThan(ref.manifest.chunks.length);
    for (const c of r.manifest.chunks) {
      const files = r.manifest.shards.filter((s) => s.chunk === c.index);
      const kept = files.reduce((n, s) => n + s.bytes, 0);
      // Kept bytes are at most the chunk's input bytes; a chunk goes over only when one record does.
      expect(c.records === 1 || kept <= 60_000).toBe(true);
    }
    const key = (rows: DatasetRow[]) => rows.map((x) => `${x.split}:${x.id}:${x.tokens.length}`).sort();
    expect(key(await allRows(d))).toEqual(key(await allRows(join(work, 'ds'))));
    expect(r.manifest.rejects).toEqual(ref.manifest.rejects);
  });

  it('--shard i/N builds partition the records exactly', async () => {
    const noDedup = { nearDupThreshold: 0 };
    const full = await allRows(join(work, 'ds'));
    const ids: string[][] = [];
    for (let i = 0; i < 3; i++) {
      const d = join(work, `part-${i}`);
      await buildDataset(options(d, { ...noDedup, shard: { index: i, count: 3 } }));
      ids.push((await allRows(d)).map((r) => r.id));
    }
    const union = ids.flat();
    expect(new Set(union).size).toBe(union.length);
    const fullNoDedup = await allRows(
      (await buildDataset(options(join(work, 'nodedup'), noDedup))) && join(work, 'nodedup'),
    );
    expect(new Set(union)).toEqual(new Set(fullNoDedup.map((r) => r.id)));
    expect(full.length).toBeLessThanOrEqual(fullNoDedup.length);
  });

  it('exports Parquet that DuckDB reads back, and inspect shows spans with their text', async () => {
    const ds = await openDataset(dir);
    const out = join(work, 'export.parquet');
    const n = await exportDataset(ds, ['train', 'validation'], 'parquet', out);
    const rows = await allRows(dir);
    expect(n).toBe(rows.length);
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    const res = await conn.runAndReadAll(
      `SELECT id, len(tokens) AS n, tokens[1] AS t0, len(spans) AS s, spans[1].kind AS k FROM read_parquet('${out}') ORDER BY id`,
    );
    const got = res.getRowObjectsJS();
    conn.closeSync();
    db.closeSync();
    const byId = new Map(rows.map((r) => [r.id, r]));
    expect(got.length).toBe(rows.length);
    for (const g of got) {
      const r = byId.get(String(g.id))!;
      expect(Number(g.n)).toBe(r.tokens.length);
      expect(Number(g.t0)).toBe(r.tokens[0]);
      expect(Number(g.s)).toBe(r.spans.length);
      expect(g.k).toBe(r.spans[0].kind);
    }
    const text = formatRow(rows[0], 0, { tokenizer: tok, maxSpans: 50 });
    expect(text).toContain(rows[0].id);
    expect(text).toMatch(/identifier +\[\d+, \d+\) +"/);
    // rows lists train first, so a train row's index in it is its index in the split.
    const withFn = rows.findIndex((r) => r.split === 'train' && r.spans.some((s) => s.kind === 'function'));
    const cli = spawnSync(
      'node',
      ['bin/sdt.js', 'data', 'inspect', dir, '--row', String(withFn), '--kinds', 'function'],
      {
        encoding: 'utf8',
      },
    );
    expect(cli.status, cli.stderr).toBe(0);
    expect(cli.stdout).toContain(rows[withFn].id);
    expect(cli.stdout).toMatch(/function +\[\d+, \d+\) +"(\\n| )*(async )?def /);
  });
});

describe('resume after a kill', () => {
  it('a build SIGKILLed after 2 chunks, then killed again while resuming, ends byte-identical to an uninterrupted one', async () => {
    const dir = join(work, 'killed');
    const args = [
      'bin/sdt.js',
      'data',
      'build',
      '--source',
      subset.root,
      '--include',
      subset.include.join(','),
      '--out',
      dir,
      '--tokenizer',
      tokPath,
      '--shard-records',
      '8',
      '--validation-fraction',
      '0.15',
      '--workers',
      '1',
      '--quiet',
    ];
    const killed = spawnSync('node', args, {
      env: { ...process.env, SDT_DATA_KILL_AFTER_CHUNKS: '2' },
      encoding: 'utf8',
    });
    expect(killed.signal).toBe('SIGKILL');
    const partial = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    expect(partial.complete).toBe(false);
    expect(partial.chunks.length).toBe(2);
    await expect(openDataset(dir)).rejects.toThrow(/incomplete/);
    // Damage chunk 0 and kill the resume right after it redoes that chunk: chunk 1 must stay listed.
    await writeFile(join(dir, partial.shards[0].file), 'torn');
    const again = spawnSync('node', args, {
      env: { ...process.env, SDT_DATA_KILL_AFTER_CHUNKS: '1' },
      encoding: 'utf8',
    });
    expect(again.signal).toBe('SIGKILL');
    const partial2 = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    expect(partial2.chunks.map((c: { index: number }) => c.index)).toEqual([0, 1]);
    const resumed = spawnSync('node', args, { encoding: 'utf8' });
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/2 already complete/);
    const reference = snapshot(join(work, 'ds'));
    const got = snapshot(dir);
    for (const [k, v] of reference) expect(got.get(k)?.equals(v), k).toBe(true);
    await rm(dir, { recursive: true, force: true });
  });
});
