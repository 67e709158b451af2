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

const utf8 = new TextEncoder();

function utf8Column(values: (string | Uint8Array)[]) {
  const parts = values.map((v) => (typeof v === 'string' ? utf8.encode(v) : v));
  const offsets = new Int32Array(values.length + 1);
  let total = 0;
  parts.forEach((p, i) => {
    total += p.length;
    offsets[i + 1] = total;
  });
  const data = new Uint8Array(total);
  for (let i = 0; i < parts.length; i++) data.set(parts[i], offsets[i]);
  return makeData({ type: new Utf8(), length: values.length, nullCount: 0, valueOffsets: offsets, data });
}

function listColumn<T extends Int32 | Uint8>(
  itemType: T,
  arrays: (Int32Array | Uint8Array)[],
  Flat: Int32ArrayConstructor | Uint8ArrayConstructor,
) {
  const offsets = new Int32Array(arrays.length + 1);
  let total = 0;
  arrays.forEach((a, i) => {
    total += a.length;
    offsets[i + 1] = total;
  });
  const flat = new Flat(total);
  for (let i = 0; i < arrays.length; i++) flat.set(arrays[i], offsets[i]);
  const child = makeData({ type: itemType, length: total, nullCount: 0, data: flat as never });
  return makeData({
    type: new List(new Field('item', itemType, false)),
    length: arrays.length,
    nullCount: 0,
    valueOffsets: offsets,
    child,
  });
}

function int32Column(values: number[]) {
  return makeData({ type: new Int32(), length: values.length, nullCount: 0, data: Int32Array.from(values) });
}

/**
 * Rows to the bytes of one Arrow IPC file (columns: schemas/dataset.ts DATASET_COLUMNS). The encoding is a
 * pure function of the rows, which is what makes a rerun byte-identical.
 */
export function encodeShard(rows: ShardRow[]): Uint8Array {
  const children = [
    utf8Column(rows.map((r) => r.id)),
    utf8Column(rows.map((r) => r.origin)),
    utf8Column(rows.map((r) => r.language)),
    utf8Column(rows.map((r) => r.split)),
    utf8Column(rows.map((r) => r.text)),
    listColumn(
      new Int32(),
      rows.map((r) => r.tokens),
      Int32Array,
    ),
    listColumn(
      new Uint8(),
      rows.map((r) => r.spanKind),
      Uint8Array,
    ),
    listColumn(
      new Int32(),
      rows.map((r) => r.spanStart),
      Int32Array,
    ),
    listColumn(
      new Int32(),
      rows.map((r) => r.spanEnd),
      Int32Array,
    ),
    int32Column(rows.map((r) => r.parseErrors)),
    int32Column(rows.map((r) => r.nBytes)),
    int32Column(rows.map((r) => r.tokens.length)),
  ];
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
  const struct = makeData({ type: new Struct(fields), length: rows.length, nullCount: 0, children });
  const batch = new RecordBatch(schema, struct);
  return tableToIPC(new Table(schema, [batch]), 'file');
}
