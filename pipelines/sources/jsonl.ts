import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import { UserError } from '../../common/errors.ts';
import { type RowFields, rowToRecord } from './row.ts';
import type { SourceRecord } from './types.ts';

/** One record per line of a JSON Lines file; a bad line is a counted reject, never a crash. */
export async function* openJsonlSource(path: string, fields: RowFields): AsyncGenerator<SourceRecord> {
  try {
    await stat(path);
  } catch {
    throw new UserError(`source ${path} does not exist; pass an existing .jsonl file to --source.`);
  }
  const name = basename(path);
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Number.POSITIVE_INFINITY });
  let lineNo = 0;
  for await (const line of lines) {
    lineNo++;
    if (line.trim() === '') continue;
    const origin = `${name}:${lineNo}`;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (err) {
      yield {
        id: origin,
        origin,
        language: fields.language,
        reject: { reason: 'bad-json', detail: (err as Error).message },
      };
      continue;
    }
    yield rowToRecord(row as Record<string, unknown>, origin, fields);
  }
}
