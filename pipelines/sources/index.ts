import { openArrowSource } from './arrow.ts';
import { openDirectorySource } from './directory.ts';
import { openJsonlSource } from './jsonl.ts';
import { openParquetSource } from './parquet.ts';
import { openStdlibSource } from './pystdlib.ts';
import type { OpenSourceOptions, SourceRecord, SourceSpec } from './types.ts';

export { languageOfPath } from './language.ts';
export type { OpenSourceOptions, SourceRecord, SourceSpec } from './types.ts';

/**
 * Every record of a source, in a stable order (sorted paths, file rows in order), streamed: nothing
 * holds the whole corpus. Records the source already knows are bad come with `reject` set.
 */
export function openSource(spec: SourceSpec, opts: OpenSourceOptions = {}): AsyncIterable<SourceRecord> {
  const defer = opts.deferFileReads ?? false;
  switch (spec.kind) {
    case 'stdlib':
      return openStdlibSource(spec.root, spec.maxValidationFiles, spec.maxBytes, defer);
    case 'dir':
      return openDirectorySource(spec.root, spec.include, spec.exclude, spec.maxBytes, defer);
    case 'jsonl':
      return openJsonlSource(spec.path, spec);
    case 'parquet':
      return openParquetSource(spec.path, spec);
    case 'arrow':
      return openArrowSource(spec.path, spec);
  }
}

/** The source kind a --source path implies: a directory, or a file by its extension. */
export function sourceKindOfPath(path: string, isDirectory: boolean): SourceSpec['kind'] | undefined {
  if (isDirectory) return 'dir';
  if (/\.(jsonl|ndjson)$/i.test(path)) return 'jsonl';
  if (/\.parquet$/i.test(path)) return 'parquet';
  if (/\.(arrow|feather|ipc|arrows)$/i.test(path)) return 'arrow';
  return undefined;
}
