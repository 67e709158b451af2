import { join } from 'node:path';
import { atomicWriteFile } from '../../common/fs.ts';
import type { ChunkInfo, ShardInfo, Split } from '../../schemas/dataset.ts';
import type { ShardBuilder } from './columns.ts';

export interface RejectLine {
  id: string;
  origin: string;
  reason: string;
  detail: string;
}

export const shardFile = (split: Split, chunk: number): string =>
  `${split}/shard-${String(chunk).padStart(5, '0')}.arrow`;
export const rejectsFile = (chunk: number): string => `rejects/chunk-${String(chunk).padStart(5, '0')}.jsonl`;

/**
 * Write one chunk: a shard per split that has rows, and the chunk's rejects list. Each file is written
 * atomically; the chunk counts as done only once the manifest lists it (run.ts writes that last).
 */
export async function writeChunk(
  dir: string,
  index: number,
  records: { count: number; firstId: string; lastId: string },
  parts: Record<Split, ShardBuilder>,
  rejects: RejectLine[],
): Promise<{ chunk: ChunkInfo; shards: ShardInfo[] }> {
  const shards: ShardInfo[] = [];
  for (const split of ['train', 'validation'] as const) {
    const part = parts[split];
    if (part.rows === 0) continue;
    const file = shardFile(split, index);
    // The builders write their shards themselves, batch by batch (run.ts gives each its file).
    const { chunks, sha256 } = await part.finish();
    if (chunks.length > 0)
      throw new Error(`writeChunk: ${file} was encoded by a shard builder without a file`);
    shards.push({
      split,
      chunk: index,
      file,
      rows: part.rows,
      tokens: part.tokenCount,
      bytes: part.byteCount,
      sha256,
      complete: true,
    });
  }
  const counts: Record<string, number> = {};
  for (const r of rejects) counts[r.reason] = (counts[r.reason] ?? 0) + 1;
  const rejectPath = rejectsFile(index);
  await atomicWriteFile(join(dir, rejectPath), rejects.map((r) => `${JSON.stringify(r)}\n`).join(''));
  return {
    chunk: {
      index,
      records: records.count,
      firstId: records.firstId,
      lastId: records.lastId,
      rejects: sortKeys(counts),
      files: [...shards.map((s) => s.file), rejectPath],
    },
    shards,
  };
}

export function sortKeys(o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
