/**
 * Materialised examples as an Arrow IPC file, for inspection (`sdt data corrupt`). One row per example:
 *   index: Int32, kind: Utf8, t: Float32, rows: Utf8 (ids of the packed dataset rows, comma-separated),
 *   input, target, segment: List<Int32>, weight: List<Float32>,
 *   masked: Int32 (mask examples: number of masked tokens, else null),
 *   edit_distance, edit_budget: Int32 (edit examples: measured token Levenshtein distance and k, else null),
 *   edited_length: Int32 (edit examples: length of the edited sequence before the canvas cut, else null),
 *   missing_before, missing_tokens: List<Int32> (aligned edit targets: deleted x0 tokens and the input
 *   position they belong before; empty otherwise).
 */
import {
  type Data,
  Field,
  Float32,
  Int32,
  List,
  makeData,
  RecordBatch,
  RecordBatchFileWriter,
  Schema,
  Struct,
  Table,
  tableToIPC,
  Utf8,
} from 'apache-arrow';
import { AtomicWriteStream } from '../../common/fs.ts';
import type { CorruptedExample } from './corrupt.ts';
import type { EditExample } from './targets.ts';

export const CORRUPT_ARROW_COLUMNS = [
  'index',
  'kind',
  't',
  'rows',
  'input',
  'target',
  'weight',
  'segment',
  'masked',
  'edit_distance',
  'edit_budget',
  'edited_length',
  'missing_before',
  'missing_tokens',
] as const;

export interface CorruptRecord {
  index: number;
  rowIds: string[];
  example: CorruptedExample;
}

function utf8Column(values: string[]): Data {
  const bytes = values.map((v) => new TextEncoder().encode(v));
  const offsets = new Int32Array(values.length + 1);
  for (let i = 0; i < bytes.length; i++) offsets[i + 1] = offsets[i] + bytes[i].length;
  const data = new Uint8Array(offsets[values.length]);
  for (let i = 0; i < bytes.length; i++) data.set(bytes[i], offsets[i]);
  return makeData({ type: new Utf8(), length: values.length, nullCount: 0, valueOffsets: offsets, data });
}

function listOffsets(values: ArrayLike<number>[]): Int32Array {
  const offsets = new Int32Array(values.length + 1);
  for (let i = 0; i < values.length; i++) offsets[i + 1] = offsets[i] + values[i].length;
  return offsets;
}

function int32List(values: Int32Array[]): Data {
  const offsets = listOffsets(values);
  const flat = new Int32Array(offsets[values.length]);
  for (let i = 0; i < values.length; i++) flat.set(values[i], offsets[i]);
  const child = makeData({ type: new Int32(), length: flat.length, nullCount: 0, data: flat });
  const type = new List(new Field('item', new Int32(), false));
  return makeData({ type, length: values.length, nullCount: 0, valueOffsets: offsets, child });
}

function float32List(values: Float32Array[]): Data {
  const offsets = listOffsets(values);
  const flat = new Float32Array(offsets[values.length]);
  for (let i = 0; i < values.length; i++) flat.set(values[i], offsets[i]);
  const child = makeData({ type: new Float32(), length: flat.length, nullCount: 0, data: flat });
  const type = new List(new Field('item', new Float32(), false));
  return makeData({ type, length: values.length, nullCount: 0, valueOffsets: offsets, child });
}

/** Int32 column where `undefined` is null (validity bitmap). */
function nullableInt32(values: (number | undefined)[]): Data {
  const data = new Int32Array(values.length);
  const valid = new Uint8Array(Math.ceil(values.length / 8));
  let nulls = 0;
  values.forEach((v, i) => {
    if (v === undefined) nulls++;
    else {
      data[i] = v;
      valid[i >> 3] |= 1 << (i & 7);
    }
  });
  return makeData({ type: new Int32(), length: values.length, nullCount: nulls, data, nullBitmap: valid });
}

/** One record batch of examples (the schema is the same for every batch). */
export function examplesToBatch(records: CorruptRecord[]): RecordBatch {
  const ex = records.map((r) => r.example);
  const n = ex.length;
  const empty = new Int32Array(0);
  const edits = (pick: (e: EditExample) => Int32Array | undefined) =>
    int32List(ex.map((e) => (e.kind === 'edit' ? (pick(e) ?? empty) : empty)));
  const editInt = (pick: (e: EditExample & CorruptedExample) => number) =>
    nullableInt32(ex.map((e) => (e.kind === 'edit' ? pick(e) : undefined)));
  const index = Int32Array.from(records, (r) => r.index);
  const t = Float32Array.from(ex, (e) => e.t ?? 0);
  const columns: [string, Data, boolean][] = [
    ['index', makeData({ type: new Int32(), length: n, nullCount: 0, data: index }), false],
    ['kind', utf8Column(ex.map((e) => e.kind)), false],
    ['t', makeData({ type: new Float32(), length: n, nullCount: 0, data: t }), false],
    ['rows', utf8Column(records.map((r) => r.rowIds.join(','))), false],
    ['input', int32List(ex.map((e) => e.input)), false],
    ['target', int32List(ex.map((e) => e.target)), false],
    ['weight', float32List(ex.map((e) => e.weight)), false],
    ['segment', int32List(ex.map((e) => e.segment ?? empty)), false],
    ['masked', nullableInt32(ex.map((e) => (e.kind === 'mask' ? e.masked : undefined))), true],
    ['edit_distance', editInt((e) => e.distance), true],
    ['edit_budget', editInt((e) => e.edit.budget), true],
    ['edited_length', editInt((e) => e.edit.edited.length), true],
    ['missing_before', edits((e) => e.missingBefore), false],
    ['missing_tokens', edits((e) => e.missingTokens), false],
  ];
  const fields = columns.map(([name, d, nullable]) => new Field(name, d.type, nullable));
  const schema = new Schema(fields);
  const children = columns.map(([, d]) => d);
  const struct = makeData({ type: new Struct(fields), length: n, nullCount: 0, children });
  return new RecordBatch(schema, struct);
}

/** All records as the bytes of one Arrow IPC file (small outputs, tests). */
export function examplesToArrow(records: CorruptRecord[]): Uint8Array {
  const batch = examplesToBatch(records);
  return tableToIPC(new Table(batch.schema, [batch]), 'file');
}

/**
 * Streams examples to an Arrow IPC file in batches, so memory stays bounded whatever --limit is; the file
 * appears under its name only on close() (atomic), and abort() leaves nothing behind.
 */
export class ArrowExampleWriter {
  private pending: CorruptRecord[] = [];
  private readonly writer = new RecordBatchFileWriter();
  private readonly pump: Promise<void>;
  private wrote = false;

  private constructor(
    private readonly sink: AtomicWriteStream,
    private readonly batchSize: number,
  ) {
    this.pump = (async () => {
      for await (const chunk of this.writer) await this.sink.write(chunk);
    })();
  }

  static async open(path: string, batchSize = 256): Promise<ArrowExampleWriter> {
    return new ArrowExampleWriter(await AtomicWriteStream.open(path), batchSize);
  }

  async add(record: CorruptRecord): Promise<void> {
    this.pending.push(record);
    if (this.pending.length >= this.batchSize) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    this.writer.write(examplesToBatch(this.pending));
    this.wrote = true;
    this.pending = [];
    // Let the pump drain what was just encoded before the caller builds the next batch.
    await new Promise((resolve) => setImmediate(resolve));
  }

  async close(): Promise<void> {
    await this.flush();
    if (!this.wrote) this.writer.write(examplesToBatch([]));
    this.writer.finish();
    await this.pump;
    await this.sink.commit();
  }

  async abort(): Promise<void> {
    this.writer.abort();
    await this.pump.catch(() => undefined);
    await this.sink.abort();
  }
}
