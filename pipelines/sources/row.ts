import type { Split } from '../../schemas/dataset.ts';
import type { SourceRecord } from './types.ts';

/** Which fields of a tabular row (JSONL object, Parquet or Arrow row) hold what. */
export interface RowFields {
  textField: string;
  splitField?: string;
  idField?: string;
  language: string;
}

const SPLIT_NAMES: Record<string, Split> = {
  train: 'train',
  training: 'train',
  validation: 'validation',
  valid: 'validation',
  val: 'validation',
  dev: 'validation',
  test: 'validation',
};

/** Map a source's split label to ours; undefined when the label is unknown. */
export function normaliseSplit(value: unknown): Split | undefined {
  return typeof value === 'string' ? SPLIT_NAMES[value.trim().toLowerCase()] : undefined;
}

export function rowToRecord(row: Record<string, unknown>, origin: string, fields: RowFields): SourceRecord {
  const idValue = fields.idField ? row[fields.idField] : undefined;
  const id = idValue === undefined || idValue === null ? origin : String(idValue);
  const base: SourceRecord = { id, origin, language: fields.language };
  const text = row?.[fields.textField];
  if (typeof text !== 'string') {
    const detail =
      text === undefined
        ? `no field "${fields.textField}" (fields: ${Object.keys(row ?? {}).join(', ')}); set --text-field`
        : `field "${fields.textField}" is ${text === null ? 'null' : typeof text}, not a string`;
    return { ...base, reject: { reason: 'missing-text', detail } };
  }
  if (fields.splitField) {
    const label = row[fields.splitField];
    const split = normaliseSplit(label);
    if (!split) {
      return {
        ...base,
        reject: {
          reason: 'unknown-split',
          detail: `split field "${fields.splitField}" is ${JSON.stringify(label)}; expected train or validation (valid, val, dev, test)`,
        },
      };
    }
    return { ...base, text, split };
  }
  return { ...base, text };
}
