import { createHash } from 'node:crypto';
import {
  Field,
  Int32,
  List,
  makeData,
  RecordBatch,
  RecordBatchFileWriter,
  Schema,
  Struct,
  Uint8,
  Utf8,
} from 'apache-arrow';
import type { AtomicChunkFile } from '../../common/fs.ts';
import { DATASET_SCHEMA_VERSION, type Split } from '../../schemas/dataset.ts';

/** A row ready for a shard: spans as three parallel arrays, as stored. */
export interface ShardRow {
  id: string;
  origin: string;
  language: string;
  split: Split;
  /** The text, or its UTF-8 bytes (what the build read: no decode and encode again). */
  text: string | Uint8Array;
  tokens: Int32Array;
  spanKind: Uint8Array;
  spanStart: Int32Array;
  spanEnd: Int32Array;
  parseErrors: number;
  nBytes: number;
}

/** A column's values appended row by row into one growing buffer, with the row offsets. */
class FlatColumn<T extends Uint8Array | Int32Array> {
  private data: T;
  private used = 0;
  readonly offsets: number[] = [0];

  constructor(
    private readonly make: (n: number) => T,
    capacity = 4096,
  ) {
    this.data = make(Math.max(16, Math.ceil(capacity)));
  }

  append(values: ArrayLike<number>): void {
    if (this.used + values.length > this.data.length) {
      const grown = this.make(Math.max(2 * this.data.length, this.used + values.length));
      grown.set(this.data.subarray(0, this.used));
      this.data = grown;
    }
    this.data.set(values, this.used);
    this.used += values.length;
    this.offsets.push(this.used);
  }

  values(): T {
    return this.data.subarray(0, this.used) as T;
  }
}

function utf8Column(column: FlatColumn<Uint8Array>) {
  return makeData({
    type: new Utf8(),
    length: column.offsets.length - 1,
    nullCount: 0,
    valueOffsets: Int32Array.from(column.offsets),
    data: column.values(),
  });
}

function listColumn<T extends Int32 | Uint8>(
  itemType: T,
  column: FlatColumn<Int32Array> | FlatColumn<Uint8Array>,
) {
  const flat = column.values();
  const child = makeData({ type: itemType, length: flat.length, nullCount: 0, data: flat as never });
  return makeData({
    type: new List(new Field('item', itemType, false)),
    length: column.offsets.length - 1,
    nullCount: 0,
    valueOffsets: Int32Array.from(column.offsets),
    child,
  });
}

function int32Column(values: number[]) {
  return makeData({ type: new Int32(), length: values.length, nullCount: 0, data: Int32Array.from(values) });
}

const utf8 = new TextEncoder();
const bytesOf = (v: string | Uint8Array): Uint8Array => (typeof v === 'string' ? utf8.encode(v) : v);

/** Input text per record batch of a shard: a chunk's batches are encoded while the workers still run. */
export const SHARD_BATCH_TEXT_BYTES = 1 << 20;

/** The columns of one record batch, filled row by row. */
class BatchColumns {
  private readonly strings;
  private readonly tokens;
  private readonly spanKind;
  private readonly spanStart;
  private readonly spanEnd;
  private readonly parseErrors: number[] = [];
  private readonly nBytes: number[] = [];
  private readonly nTokens: number[] = [];
  rows = 0;
  textBytes = 0;

  /** Sized for `textBytes` of text (and a little more), so columns rarely grow and copy. */
  constructor(textBytes: number) {
    const bytes = (n: number) => new Uint8Array(n);
    const ints = (n: number) => new Int32Array(n);
    // Byte-level BPE on code: ~3.6 bytes per token and ~0.28 span entries per token on the stdlib.
    const tokens = textBytes / 2;
    this.strings = {
      id: new FlatColumn(bytes),
      origin: new FlatColumn(bytes),
      language: new FlatColumn(bytes),
      split: new FlatColumn(bytes),
      text: new FlatColumn(bytes, textBytes * 1.25),
    };
    this.tokens = new FlatColumn(ints, tokens);
    this.spanKind = new FlatColumn(bytes, tokens / 2);
    this.spanStart = new FlatColumn(ints, tokens / 2);
    this.spanEnd = new FlatColumn(ints, tokens / 2);
  }

  add(r: ShardRow): void {
    const text = bytesOf(r.text);
    this.strings.id.append(bytesOf(r.id));
    this.strings.origin.append(bytesOf(r.origin));
    this.strings.language.append(bytesOf(r.language));
    this.strings.split.append(bytesOf(r.split));
    this.strings.text.append(text);
    this.tokens.append(r.tokens);
    this.spanKind.append(r.spanKind);
    this.spanStart.append(r.spanStart);
    this.spanEnd.append(r.spanEnd);
    this.parseErrors.push(r.parseErrors);
    this.nBytes.push(r.nBytes);
    this.nTokens.push(r.tokens.length);
    this.rows++;
    this.textBytes += text.length;
  }

  toRecordBatch(schema: Schema): RecordBatch {
    const children = [
      utf8Column(this.strings.id),
      utf8Column(this.strings.origin),
      utf8Column(this.strings.language),
      utf8Column(this.strings.split),
      utf8Column(this.strings.text),
      listColumn(new Int32(), this.tokens),
      listColumn(new Uint8(), this.spanKind),
      listColumn(new Int32(), this.spanStart),
      listColumn(new Int32(), this.spanEnd),
      int32Column(this.parseErrors),
      int32Column(this.nBytes),
      int32Column(this.nTokens),
    ];
    const struct = makeData({ type: new Struct(schema.fields), length: this.rows, nullCount: 0, children });
    return new RecordBatch(schema, struct);
  }
}

/** A finished shard: its size and sha256, and its pieces when no file took them (encodeShard). */
export interface EncodedShard {
  chunks: Uint8Array[];
  byteLength: number;
  sha256: string;
}

/**
 * One shard, encoded as rows arrive: every SHARD_BATCH_TEXT_BYTES of text close a record batch, which is
 * encoded and hashed at once, so the last chunk of a build leaves only its last batch and the footer to
 * do after the last record (8 MB chunk: 45 ms of encoding and hashing at the end of every build before,
 * on the path to its end). Batch boundaries depend on the rows alone, so a rerun is byte-identical.
 */
export class ShardBuilder {
  private batch: BatchColumns;
  private writer: RecordBatchFileWriter | undefined;
  /** Encoded pieces not handed to the file yet (all of them without a file). */
  private chunks: Uint8Array[] = [];
  private readonly hash = createHash('sha256');
  private byteLength = 0;
  private draining: Promise<void> | undefined;
  /** Totals for the manifest. */
  rows = 0;
  tokenCount = 0;
  byteCount = 0;

  /**
   * `file`: where the shard goes; its batches are then written as they are encoded (the last chunk of a
   * build left 12-52 ms of writing after its last record otherwise, and its bytes stayed in memory until
   * then). Without it, finish() returns the pieces.
   */
  constructor(
    private readonly file?: AtomicChunkFile,
    private readonly batchTextBytes = SHARD_BATCH_TEXT_BYTES,
  ) {
    this.batch = new BatchColumns(batchTextBytes);
  }

  /** Drops what was written of the shard (a build that fails or is interrupted). */
  async abort(): Promise<void> {
    await this.file?.abort();
  }

  private handOver(): void {
    if (!this.file) return;
    // Fire and forget: errors surface in commit(), which awaits the same queue.
    this.file.write(this.chunks).catch(() => undefined);
    this.chunks = [];
  }

  add(r: ShardRow): void {
    this.batch.add(r);
    this.rows++;
    this.tokenCount += r.tokens.length;
    this.byteCount += r.nBytes;
    if (this.batch.textBytes >= this.batchTextBytes) this.flushBatch();
  }

  private flushBatch(): void {
    if (!this.writer) {
      this.writer = new RecordBatchFileWriter();
      const writer = this.writer;
      // The writer queues its output; this drains the queue as it fills (a microtask after each batch).
      this.draining = (async () => {
        for await (const chunk of writer) {
          this.hash.update(chunk);
          this.chunks.push(chunk);
          this.byteLength += chunk.byteLength;
        }
      })();
    }
    this.writer.write(this.batch.toRecordBatch(SHARD_SCHEMA));
    this.batch = new BatchColumns(this.batchTextBytes);
    // The pieces of earlier batches are drained by now (the drain loop ran between adds).
    this.handOver();
  }

  /**
   * The bytes of one Arrow IPC file (columns: schemas/dataset.ts DATASET_COLUMNS). The encoding is a pure
   * function of the rows, which is what makes a rerun byte-identical. Call once, after the last add.
   */
  async finish(): Promise<EncodedShard> {
    if (this.batch.rows > 0 || !this.writer) this.flushBatch();
    this.writer!.finish();
    await this.draining;
    if (!this.file)
      return { chunks: this.chunks, byteLength: this.byteLength, sha256: this.hash.digest('hex') };
    this.handOver();
    await this.file.commit();
    return { chunks: [], byteLength: this.byteLength, sha256: this.hash.digest('hex') };
  }
}

/** Rows to the bytes of one Arrow IPC file (ShardBuilder, joined). */
export async function encodeShard(rows: ShardRow[], batchTextBytes?: number): Promise<Uint8Array> {
  const b = new ShardBuilder(undefined, batchTextBytes);
  for (const r of rows) b.add(r);
  return Buffer.concat((await b.finish()).chunks);
}

const SHARD_SCHEMA = new Schema(
  [
    new Field('id', new Utf8(), false),
    new Field('origin', new Utf8(), false),
    new Field('language', new Utf8(), false),
    new Field('split', new Utf8(), false),
    new Field('text', new Utf8(), false),
    new Field('tokens', new List(new Field('item', new Int32(), false)), false),
    new Field('span_kind', new List(new Field('item', new Uint8(), false)), false),
    new Field('span_start', new List(new Field('item', new Int32(), false)), false),
    new Field('span_end', new List(new Field('item', new Int32(), false)), false),
    new Field('parse_errors', new Int32(), false),
    new Field('n_bytes', new Int32(), false),
    new Field('n_tokens', new Int32(), false),
  ],
  new Map([['sdt.dataset.schema_version', String(DATASET_SCHEMA_VERSION)]]),
);
