import { rm } from 'node:fs/promises';
import { DuckDBInstance } from '@duckdb/node-api';
import { AtomicWriteStream, tempPathFor } from '../../common/fs.ts';
import type { DatasetRow, Split } from '../../schemas/dataset.ts';
import type { Dataset } from './read.ts';

/** A row as plain JSON: spans as {kind, start, end} objects, tokens as a number list. */
export function rowToJson(r: DatasetRow): Record<string, unknown> {
  return {
    id: r.id,
    origin: r.origin,
    language: r.language,
    split: r.split,
    text: r.text,
    tokens: Array.from(r.tokens),
    spans: r.spans,
    parse_errors: r.parseErrors,
  };
}

async function writeJsonl(ds: Dataset, splits: Split[], path: string, onRow: () => void): Promise<number> {
  const out = await AtomicWriteStream.open(path);
  let n = 0;
  try {
    for (const split of splits) {
      for await (const row of ds.rows(split)) {
        await out.write(`${JSON.stringify(rowToJson(row))}\n`);
        n++;
        onRow();
      }
    }
    await out.commit();
  } catch (err) {
    await out.abort();
    throw err;
  }
  return n;
}

const PARQUET_COLUMNS = `{id: 'VARCHAR', origin: 'VARCHAR', language: 'VARCHAR', split: 'VARCHAR', text: 'VARCHAR',
  tokens: 'INTEGER[]', spans: 'STRUCT(kind VARCHAR, "start" INTEGER, "end" INTEGER)[]', parse_errors: 'INTEGER'}`;

/**
 * Export rows to JSONL, or to Parquet (zstd) through DuckDB: rows are streamed to a temporary JSONL that
 * DuckDB converts with explicit column types, then renamed into place.
 */
export async function exportDataset(
  ds: Dataset,
  splits: Split[],
  format: 'jsonl' | 'parquet',
  outPath: string,
  onRow: () => void = () => {},
): Promise<number> {
  if (format === 'jsonl') return writeJsonl(ds, splits, outPath, onRow);
  const tmpJson = tempPathFor(`${outPath}.jsonl`);
  const tmpParquet = tempPathFor(outPath);
  try {
    const n = await writeJsonl(ds, splits, tmpJson, onRow);
    const instance = await DuckDBInstance.create(':memory:');
    const conn = await instance.connect();
    try {
      const q = (s: string): string => `'${s.replaceAll("'", "''")}'`;
      await conn.run(
        `COPY (SELECT * FROM read_json(${q(tmpJson)}, format = 'newline_delimited', maximum_object_size = 1073741824, columns = ${PARQUET_COLUMNS}))
         TO ${q(tmpParquet)} (FORMAT parquet, COMPRESSION zstd)`,
      );
    } finally {
      conn.closeSync();
      instance.closeSync();
    }
    const { rename } = await import('node:fs/promises');
    await rename(tmpParquet, outPath);
    return n;
  } finally {
    await rm(tmpJson, { force: true });
    await rm(tmpParquet, { force: true });
  }
}
