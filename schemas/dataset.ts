/**
 * The tokenized dataset contract (docs/formats.md, docs/data.md). A dataset is a directory:
 *   manifest.json                 see DatasetManifest
 *   train/shard-00000.arrow ...   Arrow IPC (file format) shards of DatasetRow
 *   validation/shard-00000.arrow
 * Spans are token ranges [start, end) into `tokens`, produced from tree-sitter nodes.
 */
export const DATASET_SCHEMA_VERSION = 1;

export const SPAN_KINDS = ['identifier', 'expression', 'statement', 'block', 'function'] as const;
export type SpanKind = (typeof SPAN_KINDS)[number];
/** Stored as a Uint8 code: the index in SPAN_KINDS. */
export const spanKindCode = (k: SpanKind): number => SPAN_KINDS.indexOf(k);

export interface Span {
  kind: SpanKind;
  /** First token index (inclusive). */
  start: number;
  /** Last token index (exclusive). */
  end: number;
}

export type Split = 'train' | 'validation';

/** One row as the TS side sees it. Arrow columns: see DATASET_COLUMNS. */
export interface DatasetRow {
  /** Stable id: derived from the origin (path, or source file + row), never from the row order. */
  id: string;
  /** Where it came from: a path relative to the source root, or "file.jsonl:123". */
  origin: string;
  language: string;
  split: Split;
  text: string;
  /** Token ids (no BOS/EOS added). */
  tokens: Int32Array;
  spans: Span[];
  /** Number of ERROR and MISSING nodes tree-sitter found. */
  parseErrors: number;
}

/**
 * Arrow columns of a shard, in order:
 *   id: Utf8, origin: Utf8, language: Utf8, split: Utf8, text: Utf8,
 *   tokens: List<Int32>, span_kind: List<Uint8>, span_start: List<Int32>, span_end: List<Int32>,
 *   parse_errors: Int32, n_bytes: Int32, n_tokens: Int32
 */
export const DATASET_COLUMNS = [
  'id',
  'origin',
  'language',
  'split',
  'text',
  'tokens',
  'span_kind',
  'span_start',
  'span_end',
  'parse_errors',
  'n_bytes',
  'n_tokens',
] as const;

export interface ShardInfo {
  split: Split;
  /** The input chunk this shard holds the kept rows of (see ChunkInfo). */
  chunk: number;
  /** Path relative to the dataset directory. */
  file: string;
  rows: number;
  tokens: number;
  bytes: number;
  /** sha256 of the shard file: a rerun must reproduce it. */
  sha256: string;
  complete: boolean;
}

/**
 * Input records (after --shard i/N), in the source's stable order, are cut into chunks of
 * `settings.shardRecords`; chunk k's kept rows become train/shard-k and validation/shard-k (a split with
 * no rows gets no file). A chunk is the unit of resume: a rerun skips chunks listed here.
 */
export interface ChunkInfo {
  index: number;
  /** Input records the chunk covered, kept or not; its first and last record ids (resume checks them). */
  records: number;
  firstId: string;
  lastId: string;
  rejects: Record<string, number>;
  /** Files (relative) of this chunk: its shards and its rejects list. */
  files: string[];
}

export interface DatasetManifest {
  schemaVersion: number;
  createdBy: string;
  /** sha256 of the tokenizer.json used. */
  tokenizerHash: string;
  tokenizerPath: string;
  source: unknown;
  /** The pipeline's settings, so a rerun with other settings is refused rather than mixed. */
  settings: Record<string, unknown>;
  shard?: { index: number; count: number };
  counts: Record<Split, { rows: number; tokens: number; bytes: number }>;
  /** Dropped records by reason, e.g. { "invalid-utf8": 3, "near-duplicate": 12 }. */
  rejects: Record<string, number>;
  shards: ShardInfo[];
  chunks: ChunkInfo[];
  /** False while a build runs or after it was killed: rerun the same command to resume. */
  complete: boolean;
}
