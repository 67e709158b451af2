/**
 * `sdt traj filter`: per prompt, keep the top-k trajectories by one score among those that pass
 * thresholds on others (e.g. highest ELBO among verifier-accepted). Deterministic: ties break on the
 * trajectory id, then on the input order.
 */
import { UserError } from '../../common/errors.ts';
import { promptKey, type ScoredRow } from './score.ts';

/** Score keys and the direction that counts as better. */
export const SCORE_KEYS = {
  elbo: { get: (r: ScoredRow) => r.elbo, better: 'high' },
  tau: { get: (r: ScoredRow) => r.tau, better: 'low' },
  lev: { get: (r: ScoredRow) => r.levSurrogate, better: 'low' },
  jump: { get: (r: ScoredRow) => r.extras.levMeanJump, better: 'high' },
  verifier: { get: (r: ScoredRow) => r.verifier, better: 'high' },
  'forward-passes': { get: (r: ScoredRow) => r.forwardPasses, better: 'low' },
  'elbo-per-token': {
    get: (r: ScoredRow) =>
      r.elbo === null || !r.extras.elboPositions ? null : r.elbo / r.extras.elboPositions,
    better: 'high',
  },
} as const satisfies Record<string, { get: (r: ScoredRow) => number | null; better: 'high' | 'low' }>;
export type ScoreKey = keyof typeof SCORE_KEYS;

export interface Threshold {
  key: ScoreKey;
  op: '>=' | '<=' | '>' | '<' | '==';
  value: number;
}

export function parseThreshold(text: string): Threshold {
  const m = /^\s*([a-z-]+)\s*(>=|<=|==|>|<)\s*(-?[0-9.eE+-]+)\s*$/.exec(text);
  if (!m || !(m[1] in SCORE_KEYS) || !Number.isFinite(Number(m[3]))) {
    throw new UserError(
      `--require ${JSON.stringify(text)}: expected KEY OP NUMBER with KEY one of ${Object.keys(SCORE_KEYS).join(', ')} and OP one of >= <= > < == (e.g. verifier>=1).`,
    );
  }
  return { key: m[1] as ScoreKey, op: m[2] as Threshold['op'], value: Number(m[3]) };
}

const formatThreshold = (t: Threshold) => `${t.key}${t.op}${t.value}`;

function passes(v: number | null, t: Threshold): boolean {
  if (v === null) return false;
  switch (t.op) {
    case '>=':
      return v >= t.value;
    case '<=':
      return v <= t.value;
    case '>':
      return v > t.value;
    case '<':
      return v < t.value;
    case '==':
      return v === t.value;
  }
}

export interface FilterOptions {
  by: ScoreKey;
  topK: number;
  require: Threshold[];
}

export interface PromptReport {
  prompt: string;
  candidates: number;
  /** Trajectories dropped by each threshold (the first one they failed), and for a missing score. */
  rejected: Record<string, number>;
  kept: { id: string; score: number }[];
}

export interface FilterResult {
  kept: ScoredRow[];
  report: PromptReport[];
}

export function filterTrajectories(rows: ScoredRow[], opts: FilterOptions): FilterResult {
  const key = SCORE_KEYS[opts.by];
  const groups = new Map<string, { row: ScoredRow; index: number }[]>();
  rows.forEach((row, index) => {
    const k = promptKey(row);
    const g = groups.get(k);
    if (g) g.push({ row, index });
    else groups.set(k, [{ row, index }]);
  });
  const kept: ScoredRow[] = [];
  const report: PromptReport[] = [];
  for (const prompt of [...groups.keys()].sort()) {
    const cands = groups.get(prompt)!;
    const rejected: Record<string, number> = {};
    const ok = cands.filter(({ row }) => {
      for (const t of opts.require) {
        if (!passes(SCORE_KEYS[t.key].get(row), t)) {
          const why = formatThreshold(t);
          rejected[why] = (rejected[why] ?? 0) + 1;
          return false;
        }
      }
      if (key.get(row) === null) {
        rejected[`no ${opts.by} score`] = (rejected[`no ${opts.by} score`] ?? 0) + 1;
        return false;
      }
      return true;
    });
    const sign = key.better === 'high' ? -1 : 1;
    ok.sort((a, b) => {
      const d = sign * ((key.get(a.row) as number) - (key.get(b.row) as number));
      if (d !== 0) return d;
      if (a.row.id !== b.row.id) return a.row.id < b.row.id ? -1 : 1;
      return a.index - b.index;
    });
    const top = ok.slice(0, opts.topK);
    kept.push(...top.map((c) => c.row));
    report.push({
      prompt,
      candidates: cands.length,
      rejected,
      kept: top.map((c) => ({ id: c.row.id, score: key.get(c.row) as number })),
    });
  }
  return { kept, report };
}
