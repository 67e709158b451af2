/** One sampler setting measured on a suite: a row of the Pareto report. */
export interface ParetoRow {
  label: string;
  mode: 'diffusion' | 'ar';
  block: number | null;
  threshold: number | null;
  /** Set for the fixed rule: tokens committed per step (threshold is then null). */
  tokensPerStep?: number | null;
  /** Commit order of the threshold rule (absent in rows written before orders were recorded). */
  order?: string | null;
  /** Error budget of the threshold rule (docs/sample.md); absent or 0: none. */
  errorBudget?: number | null;
  tokensPerSecond: number;
  forwardPassesPerToken: number | null;
  pass1: number;
  /** Share of completions whose prompt + completion parses without ERROR or MISSING nodes. */
  syntaxValid: number | null;
  valLoss: number | null;
}

export interface XY {
  x: number;
  y: number;
}

/**
 * Indices of the points no other point dominates, both axes maximised: p is dominated when some q has
 * q.x >= p.x and q.y >= p.y with one of them strict. Equal points are all kept. Sorted by x ascending.
 */
export function paretoFront(points: XY[]): number[] {
  const front: number[] = [];
  points.forEach((p, i) => {
    const dominated = points.some((q) => q.x >= p.x && q.y >= p.y && (q.x > p.x || q.y > p.y));
    if (!dominated) front.push(i);
  });
  return front.sort((a, b) => points[a].x - points[b].x || points[b].y - points[a].y);
}

export type QualityMetric = 'pass1' | 'syntax';

/** The speed axis: generated tokens per second, or tokens per forward pass (parallelism, machine-free). */
export type SpeedAxis = 'speed' | 'parallelism';

export function speedOf(r: ParetoRow, axis: SpeedAxis): number {
  if (axis === 'speed') return r.tokensPerSecond;
  return r.forwardPassesPerToken ? 1 / r.forwardPassesPerToken : 0;
}

/**
 * Accuracy under parallelism, one number for a curve: the area under the Pareto front's step function of
 * quality against tokens per forward pass, from 0 to the most parallel front point. At each parallelism
 * x the curve is the best quality any setting reaches with at least x tokens per pass, so a model keeping
 * pass@1 0.6 up to 5 tokens per pass scores 3.0; AR alone scores its pass@1.
 */
export function accuracyUnderParallelism(rows: ParetoRow[], quality: QualityMetric): number {
  const pts = rows.map((r) => ({ x: speedOf(r, 'parallelism'), y: qualityOf(r, quality) }));
  const front = paretoFront(pts);
  let area = 0;
  let prevX = 0;
  for (const i of front) {
    area += (pts[i].x - prevX) * pts[i].y;
    prevX = pts[i].x;
  }
  return area;
}

/**
 * The quality axis: pass@1, unless every setting scores (near) zero there, as small models do, in which case
 * the syntax-validity rate still separates them.
 */
export function chooseQuality(
  rows: ParetoRow[],
  requested: QualityMetric | 'auto',
  nearZero = 0.02,
): QualityMetric {
  if (requested !== 'auto') return requested;
  const best = Math.max(0, ...rows.map((r) => r.pass1));
  return best < nearZero && rows.every((r) => r.syntaxValid !== null) ? 'syntax' : 'pass1';
}

export function qualityOf(r: ParetoRow, q: QualityMetric): number {
  return q === 'pass1' ? r.pass1 : (r.syntaxValid ?? 0);
}

const pct = (x: number | null) => (x === null ? 'n/a' : `${(100 * x).toFixed(1)}%`);
const fixed = (x: number | null, d: number) => (x === null ? 'n/a' : x.toFixed(d));

/** The markdown table, front rows marked with a star, sorted by speed. */
export function paretoMarkdown(
  rows: ParetoRow[],
  quality: QualityMetric,
  suite: string,
  axis: SpeedAxis = 'speed',
): string {
  const front = new Set(paretoFront(rows.map((r) => ({ x: speedOf(r, axis), y: qualityOf(r, quality) }))));
  const order = rows.map((_, i) => i).sort((a, b) => speedOf(rows[a], axis) - speedOf(rows[b], axis));
  const lines = [
    `# Speed against quality on ${suite} (quality axis: ${quality === 'pass1' ? 'pass@1' : 'syntax validity'})`,
    '',
    '| front | setting | mode | block | threshold | tokens/s | forward passes/token | pass@1 | syntax valid | val loss |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...order.map((i) => {
      const r = rows[i];
      return `| ${front.has(i) ? '★' : ''} | ${r.label} | ${r.mode} | ${r.block ?? '-'} | ${r.threshold ?? '-'} | ${fixed(r.tokensPerSecond, 1)} | ${fixed(r.forwardPassesPerToken, 3)} | ${pct(r.pass1)} | ${pct(r.syntaxValid)} | ${fixed(r.valLoss, 4)} |`;
    }),
    '',
    `★ = on the Pareto front (no other setting has both more ${axis === 'speed' ? 'tokens/s' : 'tokens per forward pass'} and at least the quality).`,
    `Accuracy under parallelism (area under the front of ${quality === 'pass1' ? 'pass@1' : 'syntax validity'} against tokens per forward pass): ${accuracyUnderParallelism(rows, quality).toFixed(3)}`,
  ];
  return `${lines.join('\n')}\n`;
}
