/**
 * `sdt traj score`: ELBO under a checkpoint, the Levenshtein surrogate, |tau| and the verifier for every
 * trajectory; the scores fill the reserved columns (elbo, lev_surrogate, tau, verifier) and a few more
 * (SCORE_EXTRA_COLUMNS) are added; the result is a new Arrow file written atomically.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
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
import { bool, type CommandSpec, num, type OptionValues, optStr, str } from '../../common/cli.ts';
import { UserError } from '../../common/errors.ts';
import { atomicWriteFile } from '../../common/fs.ts';
import { Progress } from '../../common/progress.ts';
import { EngineClient } from '../../engine/client.ts';
import { SUITE_DATA_DIR_OPTION } from '../../eval/paths.ts';
import { SandboxPool } from '../../eval/sandbox/pool.ts';
import { DEFAULT_LIMITS } from '../../eval/sandbox/types.ts';
import { SUITES } from '../../eval/suites/index.ts';
import { loadSuiteTasks, makeVerifier } from '../../eval/verify.ts';
import { runDistributed } from '../../jobs/executor.ts';
import { EXECUTOR_FLAGS, executorOptions, isDistributed } from '../../jobs/flags.ts';
import type { JobKind } from '../../jobs/kinds.ts';
import { loadTokenizer } from '../../pipelines/tokenizer/index.ts';
import type { Tokenizer } from '../../pipelines/tokenizer/types.ts';
import { type TrajectoryRow, type Verifier, verdictValue } from '../../schemas/trajectory.ts';
import { elboOfTrajectories } from './elbo.ts';
import { readTrajectoryInput } from './generate.ts';
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

export const command: CommandSpec = {
  name: 'traj score',
  summary: 'score trajectories: ELBO, Levenshtein surrogate, |tau|, verifier (new Arrow file)',
  description: `
ELBO: sum over commit steps of log p(committed tokens | state before the step) under --ckpt, computed by
\`sdt-native score\` in batches (natural log). lev_surrogate: mean of 1/d_lev between consecutive canvas states
(<|mask|> counts as a token); lev_mean_jump: mean d_lev. tau: steps. verifier: 1 when tree-sitter-python finds
no ERROR/MISSING node in prompt + completion and, with --suite, the task's tests pass in the sandbox.`,
  positionals: [
    {
      name: 'IN',
      description: 'trajectory Arrow file or `sdt traj generate` directory',
      required: true,
    },
  ],
  options: {
    out: {
      type: 'string',
      output: 'file',
      arg: 'OUT',
      description: 'scored Arrow file to write',
      required: true,
    },
    ckpt: {
      type: 'string',
      arg: 'DIR',
      description:
        "checkpoint that scores the ELBO and names <|mask|> (omit: no ELBO, and the mask id comes from the rows' settings)",
    },
    tokenizer: { type: 'string', arg: 'FILE', description: 'tokenizer.json [default: CKPT/tokenizer.json]' },
    suite: {
      type: 'string',
      arg: 'NAME',
      description: 'eval suite whose tests verify completions (ids match prompts)',
      choices: Object.keys(SUITES),
    },
    'data-dir': SUITE_DATA_DIR_OPTION,
    concurrency: {
      type: 'number',
      min: 1,
      integer: true,
      arg: 'N',
      description: 'sandbox runs in parallel',
      default: 2,
    },
    'skip-verifier': { type: 'boolean', description: 'skip syntax and tests' },
    device: {
      type: 'string',
      description: 'where the engine computes the ELBO (sdt-native serve --device)',
      default: 'cpu',
      choices: ['cpu', 'cuda'],
    },
    ...EXECUTOR_FLAGS,
  },
  examples: [
    'sdt traj score runs/traj/pool.arrow --ckpt runs/demo/checkpoints/step-000400 --out runs/traj/scored.arrow',
    'sdt traj score pool.arrow --ckpt CKPT --suite humaneval --out scored.arrow',
  ],
  async run(o, pos) {
    const ex = executorOptions(o, `${str(o, 'out')}.run`);
    if (isDistributed(ex, optStr(o, 'run-dir') !== undefined)) {
      const settings = Object.fromEntries(Object.entries(o).filter(([k]) => !(k in EXECUTOR_FLAGS)));
      const say = (line: string) => process.stderr.write(`traj score: ${line}\n`);
      await runDistributed(
        { kind: 'traj score', tasks: ex.tasks, settings: { ...settings, input: pos[0] } },
        ex,
        say,
      );
      return 0;
    }
    await scoreFromOptions(o, pos[0]);
    return 0;
  },
};

/** `sdt traj score` with parsed options; `part` scores one task's slice of the rows into its own file. */
export async function scoreFromOptions(
  o: OptionValues,
  input: string,
  part?: { rank: number; tasks: number; out: string },
): Promise<number> {
  const all = await readTrajectoryInput(input);
  if (all.length === 0 && !part)
    throw new UserError(
      `${input} holds no trajectories; nothing to score (generate some with \`sdt traj generate\`).`,
    );
  // One task of a distributed run scores a contiguous slice of the rows into its part file.
  const rows = part
    ? all.slice(
        Math.floor((part.rank * all.length) / part.tasks),
        Math.floor(((part.rank + 1) * all.length) / part.tasks),
      )
    : all;
  const out = part?.out ?? str(o, 'out');
  const ckpt = optStr(o, 'ckpt');
  const tokPath = optStr(o, 'tokenizer') ?? (ckpt ? join(ckpt, 'tokenizer.json') : undefined);
  const noVerifier = bool(o, 'skip-verifier');
  if (!noVerifier && (!tokPath || !existsSync(tokPath))) {
    throw new UserError(
      'sdt traj score: the verifier needs a tokenizer; pass --tokenizer FILE (or --skip-verifier).',
    );
  }
  const suite = optStr(o, 'suite');
  const tasks = suite ? await loadSuiteTasks(suite, str(o, 'data-dir')) : undefined;
  const pool = suite
    ? new SandboxPool({ concurrency: num(o, 'concurrency'), limits: DEFAULT_LIMITS })
    : undefined;
  const progress = new Progress({ label: 'traj score', total: rows.length, unit: 'trajectories' });
  const scored = await scoreTrajectories(rows, {
    ckpt,
    device: str(o, 'device') === 'cuda' ? 'cuda' : 'cpu',
    tokenizer: noVerifier ? undefined : await loadTokenizer(tokPath!),
    verifier: noVerifier ? undefined : makeVerifier(tasks, pool),
    noVerifier,
    onProgress: () => progress.tick(1),
  });
  progress.done();
  await writeScored(out, scored);
  if (part) return scored.length;
  const mean = (f: (r: ScoredRow) => number | null) => {
    const v = scored.map(f).filter((x): x is number => x !== null);
    return v.length ? v.reduce((a, b) => a + b, 0) / v.length : Number.NaN;
  };
  process.stdout.write(
    `scored ${scored.length} trajectories -> ${out}: mean ELBO ${mean((r) => r.elbo).toFixed(3)} nats, ` +
      `mean |tau| ${mean((r) => r.tau).toFixed(2)}, mean 1/d_lev ${mean((r) => r.levSurrogate).toFixed(3)}, ` +
      `mean jump ${mean((r) => r.extras.levMeanJump).toFixed(2)}, verifier pass ${(100 * mean((r) => r.verifier)).toFixed(1)}%\n`,
  );
  return scored.length;
}

/** The distributed `sdt traj score` (jobs/kinds.ts): task r scores the r-th slice; the merge concatenates. */
export const trajScoreJob: JobKind = {
  async task(record, run, rank) {
    const out = join(run.partsDir, `scored-${String(rank).padStart(5, '0')}.arrow`);
    const o = record.settings as OptionValues;
    return { rows: await scoreFromOptions(o, String(o.input), { rank, tasks: record.tasks, out }) };
  },
  async merge(record, run) {
    const rows: ScoredRow[] = [];
    for (let r = 0; r < record.tasks; r++)
      rows.push(...(await readScored(join(run.partsDir, `scored-${String(r).padStart(5, '0')}.arrow`))));
    await writeScored(String(record.settings.out), rows);
    return { rows: rows.length };
  },
  async outputDone(record, run) {
    return existsSync(String(record.settings.out)) && (await run.completion('merge')) !== undefined;
  },
};
