import { createHash } from 'node:crypto';
import { Field, Int32, List, Schema, Uint8, Utf8 } from 'apache-arrow';
import type { AtomicChunkFile } from '../../common/fs.ts';
import { DATASET_SCHEMA_VERSION, type Split } from '../../schemas/dataset.ts';
import {
  ArrowPiecesWriter,
  EMPTY_BUFFER,
  type PieceBatch,
  type PieceBuffer,
  pieceBuffer,
} from './arrow-pieces.ts';

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

const utf8 = new TextEncoder();
const bytesOf = (v: string | Uint8Array): Uint8Array => (typeof v === 'string' ? utf8.encode(v) : v);
const viewBytes = (a: Int32Array | Uint8Array): Uint8Array =>
  a instanceof Uint8Array ? a : new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Input text per record batch of a shard: a chunk's batches are encoded while the workers still run. */
export const SHARD_BATCH_TEXT_BYTES = 1 << 20;

/** Offsets of a variable-length column: where each row's values start, then the total. */
function offsetsOf(lengths: number[]): Int32Array {
  const out = new Int32Array(lengths.length + 1);
  for (let i = 0; i < lengths.length; i++) out[i + 1] = out[i] + lengths[i];
  return out;
}

/**
 * The rows of one record batch, kept as they came until the batch is encoded: the large columns (text,
 * tokens, spans) go to the file as the rows' own arrays (arrow-pieces.ts); only the short strings and the
 * offsets are new buffers.
 */
class BatchRows {
  private readonly rowsIn: ShardRow[] = [];
  private readonly texts: Uint8Array[] = [];
  textBytes = 0;

  get rows(): number {
    return this.rowsIn.length;
  }

  add(r: ShardRow): void {
    const text = bytesOf(r.text);
    this.rowsIn.push(r);
    this.texts.push(text);
    this.textBytes += text.length;
  }

  /** The batch in the columns of SHARD_SCHEMA, in the order the IPC format lays out nodes and buffers. */
  toPieces(): PieceBatch {
    const rows = this.rowsIn;
    const n = rows.length;
    const nodeLengths: number[] = [];
    const buffers: PieceBuffer[] = [];
    // Short strings are joined into one piece; the text goes as a piece per row.
    const utf8Column = (values: Uint8Array[], join = true) => {
      nodeLengths.push(n);
      buffers.push(EMPTY_BUFFER, pieceBuffer([viewBytes(offsetsOf(values.map((v) => v.length)))]));
      buffers.push(pieceBuffer(join ? [Buffer.concat(values)] : values));
    };
    const listColumn = (values: (Int32Array | Uint8Array)[]) => {
      const offsets = offsetsOf(values.map((v) => v.length));
      nodeLengths.push(n, offsets[n]);
      buffers.push(EMPTY_BUFFER, pieceBuffer([viewBytes(offsets)]), EMPTY_BUFFER);
      buffers.push(pieceBuffer(values.map(viewBytes)));
    };
    const int32Column = (values: number[]) => {
      nodeLengths.push(n);
      buffers.push(EMPTY_BUFFER, pieceBuffer([viewBytes(Int32Array.from(values))]));
    };
    utf8Column(rows.map((r) => bytesOf(r.id)));
    utf8Column(rows.map((r) => bytesOf(r.origin)));
    utf8Column(rows.map((r) => bytesOf(r.language)));
    utf8Column(rows.map((r) => bytesOf(r.split)));
    utf8Column(this.texts, false);
    listColumn(rows.map((r) => r.tokens));
    listColumn(rows.map((r) => r.spanKind));
    listColumn(rows.map((r) => r.spanStart));
    listColumn(rows.map((r) => r.spanEnd));
    int32Column(rows.map((r) => r.parseErrors));
    int32Column(rows.map((r) => r.nBytes));
    int32Column(rows.map((r) => r.tokens.length));
    return { rows: n, nodeLengths, buffers };
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
  private batch = new BatchRows();
  private readonly writer: ArrowPiecesWriter;
  /** Encoded pieces not handed to the file yet (all of them without a file). */
  private chunks: Uint8Array[] = [];
  private readonly hash = createHash('sha256');
  private byteLength = 0;
  private batches = 0;
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
    this.writer = new ArrowPiecesWriter(SHARD_SCHEMA, (pieces) => {
      for (const p of pieces) {
        this.hash.update(p);
        this.byteLength += p.byteLength;
      }
      this.chunks.push(...pieces);
    });
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
    this.writer.write(this.batch.toPieces());
    this.batches++;
    this.batch = new BatchRows();
    this.handOver();
  }

  /**
   * The bytes of one Arrow IPC file (columns: schemas/dataset.ts DATASET_COLUMNS). The encoding is a pure
   * function of the rows, which is what makes a rerun byte-identical. Call once, after the last add.
   */
  async finish(): Promise<EncodedShard> {
    // A shard without rows still holds one (empty) batch, as Arrow's writer wrote it.
    if (this.batch.rows > 0 || this.batches === 0) this.flushBatch();
    this.writer.finish();
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

export const SHARD_SCHEMA = new Schema(
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
