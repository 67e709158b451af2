import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Data, type Table, tableFromIPC } from 'apache-arrow';
import { UserError } from '../../common/errors.ts';
import { verifyBuffer } from '../../common/integrity.ts';
import {
  DATASET_COLUMNS,
  type DatasetManifest,
  type DatasetRow,
  type ShardInfo,
  SPAN_KINDS,
  type Span,
  type Split,
} from '../../schemas/dataset.ts';
import { readManifest } from './manifest.ts';

export interface OpenDatasetOptions {
  /** Refuse a dataset tokenized with another tokenizer (sha256 of tokenizer.json). */
  tokenizerHash?: string;
  /** Read what a killed or running build has written so far (inspect does; training must not). */
  allowIncomplete?: boolean;
}

export interface Dataset {
  dir: string;
  manifest: DatasetManifest;
  /** Rows of a split, shard by shard in manifest order, one shard in memory at a time. */
  rows(split: Split): AsyncIterable<DatasetRow>;
}

/** Open a dataset directory written by `sdt data build`. */
export async function openDataset(dir: string, opts: OpenDatasetOptions = {}): Promise<Dataset> {
  const manifest = await readManifest(dir);
  if (!manifest) {
    throw new UserError(
      `${join(dir, 'manifest.json')} not found: build the dataset with \`sdt data build --out ${dir}\`.`,
    );
  }
  if (!manifest.complete && !opts.allowIncomplete) {
    throw new UserError(
      `${join(dir, 'manifest.json')}: the build is incomplete (killed or still running); rerun the same \`sdt data build\` command to finish it.`,
    );
  }
  if (opts.tokenizerHash && manifest.tokenizerHash !== opts.tokenizerHash) {
    throw new UserError(
      `${dir} was tokenized with tokenizer ${manifest.tokenizerHash.slice(0, 12)} (${manifest.tokenizerPath}), not ${opts.tokenizerHash.slice(0, 12)}; rebuild it with this tokenizer or use the one it was built with.`,
    );
  }
  return {
    dir,
    manifest,
    async *rows(split: Split) {
      for (const shard of manifest.shards.filter((s) => s.split === split && s.complete)) {
        yield* readShard(dir, shard);
      }
    },
  };
}

/**
 * Decode one shard file; a truncated or corrupt file is an error naming it and saying what to run. With the
 * manifest's sha256 the bytes are checked first (once per file per process; see common/integrity.ts).
 */
export async function loadShardTable(path: string, expectedRows?: number, sha256?: string): Promise<Table> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch {
    throw new UserError(
      `shard ${path} is missing; rerun \`sdt data build\` with the same options to rebuild it.`,
    );
  }
  if (sha256)
    await verifyBuffer(
      path,
      buf,
      { sha256 },
      'delete it and rerun `sdt data build` with the same options to rebuild it.',
    );
  let table: Table;
  try {
    table = tableFromIPC(buf);
    // The IPC reader is lazy about the footer: force every column so damage surfaces here.
    for (const c of DATASET_COLUMNS) if (!table.getChild(c)) throw new Error(`no column "${c}"`);
  } catch (err) {
    throw new UserError(
      `shard ${path} is truncated or corrupt (${(err as Error).message}); delete it and rerun \`sdt data build\` with the same options.`,
    );
  }
  if (expectedRows !== undefined && table.numRows !== expectedRows) {
    throw new UserError(
      `shard ${path} has ${table.numRows} rows but the manifest says ${expectedRows}; delete it and rerun \`sdt data build\`.`,
    );
  }
  return table;
}

function listSlice<T extends Int32Array | Uint8Array>(data: Data, row: number): T {
  const offsets = data.valueOffsets as Int32Array;
  const values = data.children[0].values as T;
  return values.subarray(offsets[row], offsets[row + 1]) as T;
}

/** The rows of a decoded shard table. Token arrays are views into the shard's buffers (no copy). */
export function* tableRows(table: Table): Generator<DatasetRow> {
  const col = (name: string) => table.getChild(name)!;
  const [id, origin, language, split, text] = ['id', 'origin', 'language', 'split', 'text'].map(col);
  const parseErrors = col('parse_errors');
  let base = 0;
  for (let b = 0; b < table.batches.length; b++) {
    const batch = table.batches[b];
    const tokens = batch.getChild('tokens')!.data[0];
    const kinds = batch.getChild('span_kind')!.data[0];
    const starts = batch.getChild('span_start')!.data[0];
    const ends = batch.getChild('span_end')!.data[0];
    for (let r = 0; r < batch.numRows; r++) {
      const k = listSlice<Uint8Array>(kinds, r);
      const s = listSlice<Int32Array>(starts, r);
      const e = listSlice<Int32Array>(ends, r);
      const spans: Span[] = new Array(k.length);
      for (let i = 0; i < k.length; i++) spans[i] = { kind: SPAN_KINDS[k[i]], start: s[i], end: e[i] };
      const g = base + r;
      yield {
        id: id.get(g),
        origin: origin.get(g),
        language: language.get(g),
        split: split.get(g),
        text: text.get(g),
        tokens: listSlice<Int32Array>(tokens, r),
        spans,
        parseErrors: parseErrors.get(g),
      };
    }
    base += batch.numRows;
  }
}

export async function* readShard(dir: string, shard: ShardInfo): AsyncGenerator<DatasetRow> {
  yield* tableRows(await loadShardTable(join(dir, shard.file), shard.rows, shard.sha256));
}
