/**
 * A self-check for Arrow IPC files written whole (trajectories, scored and distillation sets): the writer
 * stores the sha256 of the table's record batches (encoded as an IPC stream, without metadata) in the schema
 * metadata, and every reader recomputes it, so a file damaged or edited in place is refused by name.
 * Files written before the digest existed carry none and are read as they are.
 */
import { createHash } from 'node:crypto';
import { RecordBatch, Schema, Table, tableToIPC } from 'apache-arrow';
import { IntegrityError } from './integrity.ts';

export const DIGEST_KEY = 'sdt.sha256';

function withSchema(table: Table, schema: Schema): Table {
  return new Table(
    schema,
    table.batches.map((b) => new RecordBatch(schema, b.data)),
  );
}

function digest(table: Table): string {
  const plain = withSchema(table, new Schema(table.schema.fields));
  return createHash('sha256').update(tableToIPC(plain, 'stream')).digest('hex');
}

/** The table with its digest in the schema metadata (other metadata kept). */
export function withDigest(table: Table): Table {
  const metadata = new Map(table.schema.metadata);
  metadata.set(DIGEST_KEY, digest(table));
  return withSchema(table, new Schema(table.schema.fields, metadata));
}

/** Refuse a table whose content is not what its writer recorded. */
export function checkDigest(path: string, table: Table, fix: string): void {
  const recorded = table.schema.metadata.get(DIGEST_KEY);
  if (recorded === undefined) return;
  if (digest(table) !== recorded)
    throw new IntegrityError(
      `${path} does not match the sha256 its writer recorded: it was damaged or changed after it was written; ${fix}`,
    );
}
