import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { UserError } from '../../common/errors.ts';
import { type RowFields, rowToRecord } from './row.ts';
import type { SourceRecord } from './types.ts';

const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`;

/**
 * Rows of a Parquet file through DuckDB, one data chunk (about 2k rows) at a time, so the file is never
 * held in memory. DuckDB reads every codec pyarrow writes (snappy, zstd, gzip, lz4, brotli) and nested
 * types; see docs/data.md for why not parquetjs-lite.
 */
export async function* openParquetSource(path: string, fields: RowFields): AsyncGenerator<SourceRecord> {
  try {
    await stat(path);
  } catch {
    throw new UserError(`source ${path} does not exist; pass an existing .parquet file to --source.`);
  }
  // Loaded on use: the DuckDB library costs tens of MB of memory that other sources do not need.
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const instance = await DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  const name = basename(path);
  try {
    let columns: string[];
    try {
      const described = await conn.runAndReadAll('DESCRIBE SELECT * FROM read_parquet($1)', [path]);
      columns = described.getRowObjectsJS().map((r) => String(r.column_name));
    } catch (err) {
      throw new UserError(
        `cannot read Parquet file ${path}: ${(err as Error).message.split('\n')[0]} (is it truncated or not Parquet?)`,
      );
    }
    const wanted = [fields.textField, fields.splitField, fields.idField].filter((c): c is string => !!c);
    for (const c of wanted) {
      if (!columns.includes(c)) {
        throw new UserError(`Parquet file ${path} has no column "${c}" (columns: ${columns.join(', ')}).`);
      }
    }
    const result = await conn.stream(`SELECT ${wanted.map(quoteIdent).join(', ')} FROM read_parquet($1)`, [
      path,
    ]);
    let rowIndex = 0;
    for (;;) {
      let chunk: Awaited<ReturnType<typeof result.fetchChunk>>;
      try {
        chunk = await result.fetchChunk();
      } catch (err) {
        throw new UserError(
          `Parquet file ${path} is unreadable after row ${rowIndex}: ${(err as Error).message.split('\n')[0]}`,
        );
      }
      if (!chunk || chunk.rowCount === 0) break;
      const cols = wanted.map((_, i) => chunk.getColumnValues(i));
      for (let r = 0; r < chunk.rowCount; r++) {
        const row: Record<string, unknown> = {};
        wanted.forEach((c, i) => {
          row[c] = cols[i][r];
        });
        yield rowToRecord(row, `${name}:${rowIndex}`, fields);
        rowIndex++;
      }
    }
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}
