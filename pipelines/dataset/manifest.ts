import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../../common/errors.ts';
import { DATASET_SCHEMA_VERSION, type DatasetManifest } from '../../schemas/dataset.ts';

export const MANIFEST_FILE = 'manifest.json';

/** The manifest of a dataset directory, or undefined when there is none yet. */
export async function readManifest(dir: string): Promise<DatasetManifest | undefined> {
  const path = join(dir, MANIFEST_FILE);
  let raw: string;
  try {
    raw = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  let m: DatasetManifest;
  try {
    m = JSON.parse(raw) as DatasetManifest;
  } catch (err) {
    throw new UserError(
      `${path} is not valid JSON (${(err as Error).message}); rebuild with \`sdt data build\`.`,
    );
  }
  if (m.schemaVersion !== DATASET_SCHEMA_VERSION) {
    throw new UserError(
      `${path} has dataset schema version ${m.schemaVersion}; this sdt reads version ${DATASET_SCHEMA_VERSION}. Rebuild it with \`sdt data build\`.`,
    );
  }
  if (!Array.isArray(m.shards) || !Array.isArray(m.chunks) || typeof m.counts !== 'object') {
    throw new UserError(`${path} lacks shards, chunks or counts; rebuild with \`sdt data build\`.`);
  }
  return m;
}

/** Sum of per-reason counts. */
export function addCounts(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}
