import {
  Field,
  Int32,
  List,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Table,
  tableToIPC,
  Uint8,
  Utf8,
} from 'apache-arrow';
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

  constructor(private readonly make: (n: number) => T) {
    this.data = make(4096);
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

/**
 * One shard's columns, filled as rows arrive: the copying into flat column buffers happens while the
 * workers still run, not all at once when the chunk closes. For a chunk of 8 MB (22 MB of shard) that
 * left 5-15 ms of encoding after its last record instead of 20-32 ms, which the last chunk adds to
 * every build's wall time.
 */
export class ShardBuilder {
  private readonly strings = {
    id: new FlatColumn((n) => new Uint8Array(n)),
    origin: new FlatColumn((n) => new Uint8Array(n)),
    language: new FlatColumn((n) => new Uint8Array(n)),
    split: new FlatColumn((n) => new Uint8Array(n)),
    text: new FlatColumn((n) => new Uint8Array(n)),
  };
  private readonly tokens = new FlatColumn((n) => new Int32Array(n));
  private readonly spanKind = new FlatColumn((n) => new Uint8Array(n));
  private readonly spanStart = new FlatColumn((n) => new Int32Array(n));
  private readonly spanEnd = new FlatColumn((n) => new Int32Array(n));
  private readonly parseErrors: number[] = [];
  private readonly nBytes: number[] = [];
  private readonly nTokens: number[] = [];
  /** Totals for the manifest. */
  rows = 0;
  tokenCount = 0;
  byteCount = 0;

  add(r: ShardRow): void {
    this.strings.id.append(bytesOf(r.id));
    this.strings.origin.append(bytesOf(r.origin));
    this.strings.language.append(bytesOf(r.language));
    this.strings.split.append(bytesOf(r.split));
    this.strings.text.append(bytesOf(r.text));
    this.tokens.append(r.tokens);
    this.spanKind.append(r.spanKind);
    this.spanStart.append(r.spanStart);
    this.spanEnd.append(r.spanEnd);
    this.parseErrors.push(r.parseErrors);
    this.nBytes.push(r.nBytes);
    this.nTokens.push(r.tokens.length);
    this.rows++;
    this.tokenCount += r.tokens.length;
    this.byteCount += r.nBytes;
  }

  /**
   * The bytes of one Arrow IPC file (columns: schemas/dataset.ts DATASET_COLUMNS). The encoding is a pure
   * function of the rows, which is what makes a rerun byte-identical.
   */
  encode(): Uint8Array {
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
    return encodeColumns(children, this.rows);
  }
}

/** Rows to the bytes of one Arrow IPC file (ShardBuilder.encode). */
export function encodeShard(rows: ShardRow[]): Uint8Array {
  const b = new ShardBuilder();
  for (const r of rows) b.add(r);
  return b.encode();
}

function encodeColumns(children: ReturnType<typeof makeData>[], length: number): Uint8Array {
  const fields = [
    new Field('id', new Utf8(), false),
    new Field('origin', new Utf8(), false),
    new Field('language', new Utf8(), false),
    new Field('split', new Utf8(), false),
    new Field('text', new Utf8(), false),
    new Field('tokens', children[5].type, false),
    new Field('span_kind', children[6].type, false),
    new Field('span_start', children[7].type, false),
    new Field('span_end', children[8].type, false),
    new Field('parse_errors', new Int32(), false),
    new Field('n_bytes', new Int32(), false),
    new Field('n_tokens', new Int32(), false),
  ];
  const schema = new Schema(
    fields,
    new Map([['sdt.dataset.schema_version', String(DATASET_SCHEMA_VERSION)]]),
  );
  const struct = makeData({ type: new Struct(fields), length, nullCount: 0, children });
  const batch = new RecordBatch(schema, struct);
  return tableToIPC(new Table(schema, [batch]), 'file');
}
