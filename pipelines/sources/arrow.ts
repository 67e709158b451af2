import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { RecordBatchReader } from 'apache-arrow';
import { UserError } from '../../common/errors.ts';
import { type RowFields, rowToRecord } from './row.ts';
import type { SourceRecord } from './types.ts';

/** Rows of an Arrow IPC file (file or stream format), one record batch at a time. */
export async function* openArrowSource(path: string, fields: RowFields): AsyncGenerator<SourceRecord> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r');
  } catch {
    throw new UserError(`source ${path} does not exist; pass an existing .arrow file to --source.`);
  }
  const name = basename(path);
  let rowIndex = 0;
  const fail = (err: unknown): never => {
    throw new UserError(
      `Arrow file ${path} is unreadable after row ${rowIndex}: ${(err as Error).message.split('\n')[0]} (is it truncated or not Arrow IPC?)`,
    );
  };
  try {
    const reader = await RecordBatchReader.from(handle).catch(fail);
    await Promise.resolve(reader.open()).catch(fail);
    if (!reader.schema) fail(new Error('no schema'));
    const columns = reader.schema.fields.map((f) => f.name);
    const wanted = [fields.textField, fields.splitField, fields.idField].filter((c): c is string => !!c);
    for (const c of wanted) {
      if (!columns.includes(c)) {
        throw new UserError(`Arrow file ${path} has no column "${c}" (columns: ${columns.join(', ')}).`);
      }
    }
    const it = reader[Symbol.asyncIterator]();
    for (;;) {
      const next = await it.next().catch(fail);
      if (next.done) break;
      const batch = next.value;
      const cols = wanted.map((c) => batch.getChild(c));
      for (let r = 0; r < batch.numRows; r++) {
        const row: Record<string, unknown> = {};
        wanted.forEach((c, i) => {
          row[c] = cols[i]?.get(r) ?? null;
        });
        yield rowToRecord(row, `${name}:${rowIndex}`, fields);
        rowIndex++;
      }
    }
  } finally {
    await handle.close();
  }
}
