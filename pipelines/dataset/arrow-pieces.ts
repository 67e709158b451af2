/**
 * An Arrow IPC file whose record batches are given as column buffers made of pieces: the rows' own arrays,
 * written one after another, never joined into one buffer. Arrow's RecordBatchFileWriter needs each buffer
 * contiguous, which cost the build's main thread a copy of every shard byte (text, tokens, spans) and the
 * garbage collections its fresh buffers set off. The flatbuffer metadata (message headers, footer) comes
 * from apache-arrow's own encoders, so the bytes are those RecordBatchFileWriter writes for the same
 * columns (test/data-steps.test.ts compares them).
 */
import { MetadataVersion, type Schema } from 'apache-arrow';
import { FileBlock, Footer } from 'apache-arrow/ipc/metadata/file';
import {
  BufferRegion,
  FieldNode,
  Message,
  RecordBatch as RecordBatchHeader,
} from 'apache-arrow/ipc/metadata/message';

/** One buffer of a record batch body: pieces whose bytes follow each other. */
export interface PieceBuffer {
  pieces: Uint8Array[];
  byteLength: number;
}

/** A record batch as the IPC format lays it out: a node per column (and list child), buffers in order. */
export interface PieceBatch {
  rows: number;
  /** Per node: its length (a null count of 0 is implied: shard columns have no nulls). */
  nodeLengths: number[];
  buffers: PieceBuffer[];
}

const MAGIC = new TextEncoder().encode('ARROW1');
/** Zero bytes for padding to 8. */
const ZEROS = new Uint8Array(8);
const pad8 = (n: number): number => (n + 7) & ~7;
const bytesOf = (a: Int32Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

export const pieceBuffer = (pieces: Uint8Array[]): PieceBuffer => ({
  pieces,
  byteLength: pieces.reduce((n, p) => n + p.byteLength, 0),
});

/** A buffer with no bytes: the validity bitmap of a column without nulls. */
export const EMPTY_BUFFER: PieceBuffer = { pieces: [], byteLength: 0 };

/**
 * Writes the file's bytes through `emit`, in order, as batches come: the magic, each batch's message and
 * body, then the footer on finish().
 */
export class ArrowPiecesWriter {
  private position = 0;
  private readonly blocks: FileBlock[] = [];

  constructor(
    private readonly schema: Schema,
    private readonly emit: (pieces: Uint8Array[]) => void,
  ) {
    this.out([MAGIC, ZEROS.subarray(0, 2)]);
  }

  private out(pieces: Uint8Array[]): void {
    for (const p of pieces) this.position += p.byteLength;
    this.emit(pieces.filter((p) => p.byteLength > 0));
  }

  write(batch: PieceBatch): void {
    const regions: BufferRegion[] = [];
    let bodyLength = 0;
    for (const b of batch.buffers) {
      regions.push(new BufferRegion(bodyLength, pad8(b.byteLength)));
      bodyLength += pad8(b.byteLength);
    }
    const nodes = batch.nodeLengths.map((n) => new FieldNode(n, 0));
    const header = new RecordBatchHeader(batch.rows, nodes, regions, null);
    const meta = Message.encode(Message.from(header, bodyLength));
    // Continuation marker and length, then the flatbuffer padded so that the body starts 8-aligned.
    const metaLength = pad8(8 + meta.byteLength);
    this.blocks.push(new FileBlock(metaLength, bodyLength, this.position));
    const pieces: Uint8Array[] = [
      bytesOf(Int32Array.of(-1, metaLength - 8)),
      meta,
      ZEROS.subarray(0, metaLength - 8 - meta.byteLength),
    ];
    for (const b of batch.buffers) {
      if (b.byteLength === 0) continue;
      pieces.push(...b.pieces, ZEROS.subarray(0, pad8(b.byteLength) - b.byteLength));
    }
    this.out(pieces);
  }

  finish(): void {
    const footer = Footer.encode(new Footer(this.schema, MetadataVersion.V5, this.blocks, []));
    // End-of-stream marker for readers that read the file as a stream, then the footer and its length.
    this.out([bytesOf(Int32Array.of(-1, 0)), footer, bytesOf(Int32Array.of(footer.byteLength)), MAGIC]);
  }
}
