/**
 * The run's logs: every record as one JSON line in RUN/log.jsonl and, for spreadsheets, one CSV row per
 * record in RUN/log.csv with a fixed column set. Resumed runs append to both files, dropping the records past
 * the checkpoint the run resumed from (they are recomputed), so the log reads as one uninterrupted run.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { atomicWriteFile } from '../common/fs.ts';

export interface StepRecord {
  type: 'step';
  step: number;
  loss: number;
  lr: number;
  grad_norm: number;
  tokens: number;
  tokens_per_s: number;
  stage: string;
  skipped?: boolean;
  time: number;
}

export interface EvalRecord {
  type: 'eval';
  step: number;
  group: string;
  /** Bits per token (see trainer/validation.ts for what each group measures). */
  bits_per_token: number;
  /** Natural-log loss per token. */
  loss: number;
  tokens: number;
  time: number;
}

export interface EventRecord {
  type: 'checkpoint' | 'stage' | 'start' | 'end' | 'error' | 'resume';
  step: number;
  time: number;
  [k: string]: unknown;
}

export type LogRecord = StepRecord | EvalRecord | EventRecord;

const CSV_COLUMNS = [
  'type',
  'step',
  'stage',
  'group',
  'loss',
  'bits_per_token',
  'lr',
  'grad_norm',
  'tokens',
  'tokens_per_s',
  'time',
];

function csvCell(v: unknown): string {
  if (v === undefined || v === null) return '';
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

export function readLog(runDir: string): LogRecord[] {
  const path = join(runDir, 'log.jsonl');
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as LogRecord);
}

export class RunLog {
  readonly jsonl: string;
  readonly csv: string;

  private constructor(readonly runDir: string) {
    this.jsonl = join(runDir, 'log.jsonl');
    this.csv = join(runDir, 'log.csv');
  }

  /** A fresh log, or (resume) the existing one cut back to the records at or before `keepUpToStep`. */
  static async open(runDir: string, keepUpToStep?: number): Promise<RunLog> {
    const log = new RunLog(runDir);
    const kept =
      keepUpToStep === undefined
        ? []
        : readLog(runDir).filter((r) =>
            r.type === 'step' || r.type === 'eval' ? r.step <= keepUpToStep : r.step <= keepUpToStep,
          );
    await atomicWriteFile(log.jsonl, kept.map((r) => `${JSON.stringify(r)}\n`).join(''));
    await atomicWriteFile(log.csv, [CSV_COLUMNS.join(','), ...kept.map(csvRow)].join('\n') + '\n');
    return log;
  }

  write(rec: LogRecord): void {
    appendFileSync(this.jsonl, `${JSON.stringify(rec)}\n`);
    appendFileSync(this.csv, `${csvRow(rec)}\n`);
  }
}

function csvRow(rec: LogRecord): string {
  const r = rec as unknown as Record<string, unknown>;
  return CSV_COLUMNS.map((c) => csvCell(r[c])).join(',');
}
