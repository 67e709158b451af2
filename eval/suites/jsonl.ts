import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { UserError } from '../../common/errors.ts';

/** Read a JSON-lines file, gzipped when its name ends in .gz; a bad line is reported by file and line. */
export async function readJsonl<T = Record<string, unknown>>(path: string): Promise<T[]> {
  let buf = await readFile(path);
  if (path.endsWith('.gz')) buf = gunzipSync(buf);
  const rows: T[] = [];
  const lines = buf.toString('utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line.length === 0) continue;
    try {
      rows.push(JSON.parse(line) as T);
    } catch (err) {
      throw new UserError(
        `${path}:${i + 1}: not valid JSON (${(err as Error).message}); is the file intact?`,
      );
    }
  }
  return rows;
}

/** Check that a row has the string fields a suite needs, naming file and task when not. */
export function requireStrings(path: string, row: Record<string, unknown>, fields: string[]): void {
  for (const f of fields) {
    if (typeof row[f] !== 'string') {
      const id = typeof row.task_id === 'string' || typeof row.task_id === 'number' ? row.task_id : '?';
      throw new UserError(`${path}: task ${id} has no string field "${f}"; is this the right file?`);
    }
  }
}
