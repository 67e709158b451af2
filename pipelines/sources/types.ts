import type { Split } from '../../schemas/dataset.ts';

/**
 * One record of a source, before any step ran. Sources never throw on a bad record: they yield it with
 * `reject` set so the build counts it and goes on (a bad line in a JSONL file must not stop a corpus).
 */
export interface SourceRecord {
  /** Stable id: from the origin (path, or file + row), never from the order of the stream. */
  id: string;
  /** Where it came from, for people: a path relative to the source root, or "file.jsonl:123". */
  origin: string;
  /** Raw bytes (files) or text (tabular sources); the decode step turns either into checked text. */
  bytes?: Uint8Array;
  text?: string;
  /**
   * With deferred reads (OpenSourceOptions), a file's path instead of its bytes: whoever processes the
   * record reads it (readRecordFile), so a build's main thread does not. `fileSize` is its size when
   * listed, which is what chunking uses.
   */
  file?: string;
  fileSize?: number;
  language: string;
  /** Set when the source knows the split (held-out folders, a split column). */
  split?: Split;
  /** Set when the source already knows this record must be dropped: reason code and detail. */
  reject?: { reason: string; detail: string };
}

export type SourceSpec =
  | { kind: 'stdlib'; root?: string; maxValidationFiles: number; maxBytes?: number }
  | { kind: 'dir'; root: string; include: string[]; exclude: string[]; maxBytes?: number }
  | {
      kind: 'jsonl' | 'parquet' | 'arrow';
      path: string;
      textField: string;
      splitField?: string;
      idField?: string;
      language: string;
    };

export interface OpenSourceOptions {
  /** Files come as paths with their sizes (SourceRecord.file), not as bytes. */
  deferFileReads?: boolean;
}
