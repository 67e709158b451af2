import { statSync } from 'node:fs';
import { join } from 'node:path';
import { walkFiles } from './directory.ts';
import { makePathFilter } from './glob.ts';
import { listStdlibCorpus } from './pystdlib.ts';
import type { SourceSpec } from './types.ts';

/** Rough totals for progress and ETA: files and bytes of a directory, the size of a JSONL file. */
export async function estimateSource(spec: SourceSpec): Promise<{ items?: number; bytes?: number }> {
  try {
    if (spec.kind === 'stdlib') {
      const files = await listStdlibCorpus(spec.root);
      let bytes = 0;
      for (const f of files) bytes += statSync(f.path).size;
      return { items: files.length, bytes };
    }
    if (spec.kind === 'dir') {
      let items = 0;
      let bytes = 0;
      for await (const rel of walkFiles(spec.root, makePathFilter(spec.include, spec.exclude))) {
        items++;
        // Blocking stats: over 57k files, 0.5 s against 3.6 s (3.0 s of CPU) with one awaited stat each.
        bytes += statSync(join(spec.root, rel)).size;
      }
      return { items, bytes };
    }
    if (spec.kind === 'jsonl') return { bytes: statSync(spec.path).size };
  } catch {
    // The source itself reports a missing path with a clear message; an estimate is optional.
  }
  return {};
}
