/** One sampler setting measured on a suite: a row of the Pareto report. */
export interface ParetoRow {
  label: string;
  mode: 'diffusion' | 'ar';
  block: number | null;
  threshold: number | null;
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
export function paretoMarkdown(rows: ParetoRow[], quality: QualityMetric, suite: string): string {
  const front = new Set(paretoFront(rows.map((r) => ({ x: r.tokensPerSecond, y: qualityOf(r, quality) }))));
  const order = rows.map((_, i) => i).sort((a, b) => rows[a].tokensPerSecond - rows[b].tokensPerSecond);
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
    '★ = on the Pareto front (no other setting is both faster and at least as good).',
  ];
  return `${lines.join('\n')}\n`;
}
