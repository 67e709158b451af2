/**
 * `sdt traj score`: ELBO under a checkpoint, the Levenshtein surrogate, |tau| and the verifier for every
 * trajectory; the scores fill the reserved columns (elbo, lev_surrogate, tau, verifier) and a few more
 * (SCORE_EXTRA_COLUMNS) are added; the result is a new Arrow file written atomically.
 */
import { readFile } from 'node:fs/promises';
import {
  Bool,
  Float64,
  Int32,
  Table,
  tableFromIPC,
  tableToIPC,
  type Vector,
  vectorFromArray,
} from 'apache-arrow';
import { withDigest } from '../../common/arrow-digest.ts';
import { UserError } from '../../common/errors.ts';
import { atomicWriteFile } from '../../common/fs.ts';
import { EngineClient } from '../../engine/client.ts';
import type { Tokenizer } from '../../pipelines/tokenizer/types.ts';
import { type TrajectoryRow, type Verifier, verdictValue } from '../../schemas/trajectory.ts';
import { elboOfTrajectories } from './elbo.ts';
import { levSurrogate } from './lev.ts';
import { readTrajectories, trajectoriesToTable } from './record.ts';

/** Columns beyond the trajectory contract, null until scored. */
export const SCORE_EXTRA_COLUMNS = ['lev_mean_jump', 'elbo_positions', 'syntax_ok', 'tests_pass'] as const;

export interface ScoreExtras {
  /** Mean d_lev between consecutive states. */
  levMeanJump: number | null;
  /** Committed positions that entered the ELBO. */
  elboPositions: number | null;
  syntaxOk: boolean | null;
  /** null: no tests for this prompt (or not scored). */
  testsPass: boolean | null;
}

export type ScoredRow = TrajectoryRow & { extras: ScoreExtras };

/** The prompt a trajectory answers: its id up to the last '#' (`sdt traj generate` writes PROMPT#K). */
export function promptKey(row: { id: string }): string {
  const i = row.id.lastIndexOf('#');
  return i < 0 ? row.id : row.id.slice(0, i);
}

export function scoredToTable(rows: ScoredRow[]): Table {
  const base = trajectoriesToTable(rows);
  const cols: Record<string, Vector> = {};
  for (const f of base.schema.fields) cols[f.name] = base.getChild(f.name)!;
  cols.lev_mean_jump = vectorFromArray(
    rows.map((r) => r.extras.levMeanJump),
    new Float64(),
  );
  cols.elbo_positions = vectorFromArray(
    rows.map((r) => r.extras.elboPositions),
    new Int32(),
  );
  cols.syntax_ok = vectorFromArray(
    rows.map((r) => r.extras.syntaxOk),
    new Bool(),
  );
  cols.tests_pass = vectorFromArray(
    rows.map((r) => r.extras.testsPass),
    new Bool(),
  );
  return new Table(cols);
}

export async function writeScored(path: string, rows: ScoredRow[]): Promise<void> {
  await atomicWriteFile(path, tableToIPC(withDigest(scoredToTable(rows)), 'file'));
}

/** Reads a trajectory file, scored or not (the extra columns are null where absent). */
export async function readScored(path: string): Promise<ScoredRow[]> {
  const rows = await readTrajectories(path);
  const table = tableFromIPC(await readFile(path));
  const get = (name: string, i: number): unknown => table.getChild(name)?.get(i) ?? null;
  return rows.map((r, i) => {
    const n = (v: unknown) => (v == null ? null : Number(v));
    const b = (v: unknown) => (v == null ? null : Boolean(v));
    return {
      ...r,
      extras: {
        levMeanJump: n(get('lev_mean_jump', i)),
        elboPositions: n(get('elbo_positions', i)),
        syntaxOk: b(get('syntax_ok', i)),
        testsPass: b(get('tests_pass', i)),
      },
    };
  });
}

export interface ScoreOptions {
  /** Checkpoint that computes the ELBO (one engine for every row); without one the ELBO stays null. */
  ckpt?: string;
  bin?: string;
  device?: 'cpu' | 'cuda';
  /** Decodes prompts (and completions when the rows have no text) for the verifier. */
  tokenizer?: Tokenizer;
  /** Judges completions (eval/verify.ts makeVerifier); required unless noVerifier. */
  verifier?: Verifier;
  /** <|mask|> id when no checkpoint is given (the surrogate counts it as a token). */
  maskId?: number;
  /** Skip the verifier (no tokenizer at hand, or only ELBO/surrogate wanted). */
  noVerifier?: boolean;
  onProgress?: (done: number) => void;
}

export async function scoreTrajectories(rows: TrajectoryRow[], opts: ScoreOptions): Promise<ScoredRow[]> {
  let mask: number;
  let elbo: ({ elbo: number; positions: number } | null)[];
  if (opts.ckpt) {
    // Batch scoring uses every core (OpenMP's default), as `sdt-native score` did.
    const engine = await EngineClient.start({
      ckpt: opts.ckpt,
      binary: opts.bin,
      device: opts.device,
      threads: 0,
    });
    try {
      mask = engine.info.mask_token_id;
      elbo = await elboOfTrajectories(rows, engine);
    } finally {
      await engine.close();
    }
  } else {
    mask = opts.maskId ?? maskFromRows(rows);
    elbo = rows.map(() => null);
  }
  const out: ScoredRow[] = [];
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    const lev = levSurrogate(r, mask);
    let verdict = null;
    if (!opts.noVerifier) {
      if (!opts.tokenizer)
        throw new UserError('the verifier needs a tokenizer (--tokenizer FILE or CKPT/tokenizer.json).');
      const promptText = opts.tokenizer.decode(r.prompt);
      const completion = r.text || opts.tokenizer.decode(r.tokens);
      if (!opts.verifier) throw new Error('scoreTrajectories: no verifier given (pass one, or noVerifier)');
      verdict = await opts.verifier(promptText, completion, promptKey(r), !r.eos);
    }
    const e = elbo[i];
    out.push({
      ...r,
      elbo: e ? e.elbo : r.elbo,
      levSurrogate: lev.meanInverse,
      tau: r.steps.length,
      verifier: verdict ? verdictValue(verdict) : r.verifier,
      extras: {
        levMeanJump: lev.meanJump,
        elboPositions: e ? e.positions : null,
        syntaxOk: verdict ? verdict.syntaxOk : null,
        testsPass: verdict ? verdict.testsPass : null,
      },
    });
    opts.onProgress?.(i + 1);
  }
  return out;
}

/** Without a checkpoint, the mask id is read from the recorded settings ("mask" field) or must be given. */
function maskFromRows(rows: TrajectoryRow[]): number {
  for (const r of rows) {
    const s = JSON.parse(r.settings || '{}') as { mask_token_id?: number };
    if (typeof s.mask_token_id === 'number') return s.mask_token_id;
  }
  throw new UserError(
    'no mask token id: --ckpt may be omitted only when the trajectories record theirs (settings.mask_token_id), and these do not; pass --ckpt DIR (its config.json names <|mask|>).',
  );
}
