/**
 * The one SVG chart helper, renderChart (axes, ticks, series, marker lines, legend), which draws every chart of
 * the project (training loss, Pareto front, on-policy speedup, sampler bench); and what it shares with the
 * trajectory pictures: text escaping and round tick positions.
 */

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * Round tick positions (steps of 1, 2 or 5 times a power of ten, about `target` of them) inside [lo, hi];
 * with `cover`, from at or below lo to at or above hi, so an axis drawn from the first to the last tick holds
 * every value.
 */
export function niceTicks(lo: number, hi: number, target = 6, cover = false): number[] {
  if (!(hi > lo)) {
    if (!cover) return [lo];
    hi = lo + 1;
  }
  const raw = (hi - lo) / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  const start = (cover ? Math.floor(lo / step) : Math.ceil(lo / step)) * step;
  for (let t = start; t <= hi + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  if (cover && ticks[ticks.length - 1] < hi)
    ticks.push(Number((ticks[ticks.length - 1] + step).toPrecision(12)));
  return ticks;
}

/** Marker of a series' points. */
export interface ChartMarker {
  fill?: string;
  stroke?: string;
  r?: number;
  /** A class on every marker (so a reader of the SVG can find them). */
  className?: string;
}

export interface ChartSeries {
  label: string;
  color: string;
  points: [number, number][];
  /** 'right': drawn against the chart's second y axis. */
  axis?: 'left' | 'right';
  width?: number;
  opacity?: number;
  dash?: string;
  /** How points join: a polyline (default), steps (across, then down or up: a Pareto front), none (a scatter). */
  join?: 'line' | 'steps' | 'none';
  /** Point markers; default: drawn when the series has at most 40 points. */
  markers?: boolean;
  marker?: ChartMarker;
  /** Text beside each point (also its tooltip). */
  pointLabels?: string[];
  /** A class on the joining line. */
  className?: string;
}

export interface ChartAxis {
  label: string;
  /** The range's ends; by default the data's, widened to round ticks (y: padded by 5% first). */
  min?: number;
  max?: number;
  /** Tick values; by default round ones (niceTicks) covering the range, which then spans them. */
  ticks?: number[];
  /** Positions at log2 of the value (sizes that double). */
  log2?: boolean;
  format?: (v: number) => string;
  color?: string;
}

export interface ChartSpec {
  title: string;
  width?: number;
  height?: number;
  x: ChartAxis;
  y: ChartAxis;
  /** A second y axis on the right, for series with axis: 'right'. */
  y2?: ChartAxis;
  series: ChartSeries[];
  /** Horizontal markers against the left axis, labelled at their right end; dashed. */
  hlines?: { y: number; label: string; color?: string }[];
  /** Vertical markers, labelled at their top; dashed. */
  vlines?: { x: number; label: string }[];
}

/** A range and its ticks: given ticks fix both; otherwise round ticks covering [lo, hi] set the range. */
function axisScale(
  axis: ChartAxis,
  values: number[],
  pad: number,
): { lo: number; hi: number; ticks: number[] } {
  const t = (v: number) => (axis.log2 ? Math.log2(v) : v);
  if (axis.ticks && axis.ticks.length > 0) {
    const all = [...axis.ticks, ...values].filter(Number.isFinite).map(t);
    const lo = axis.min !== undefined ? t(axis.min) : Math.min(...all);
    const hi = axis.max !== undefined ? t(axis.max) : Math.max(...all);
    return { lo, hi: hi > lo ? hi : lo + 1, ticks: axis.ticks };
  }
  const finite = values.filter(Number.isFinite);
  let lo = axis.min ?? (finite.length ? Math.min(...finite) : 0);
  let hi = axis.max ?? (finite.length ? Math.max(...finite) : 1);
  const p = (hi - lo) * pad || (pad > 0 ? 0.5 : 0);
  if (axis.min === undefined) lo -= p;
  if (axis.max === undefined) hi += p;
  const ticks = niceTicks(lo, hi, 6, true);
  return { lo: ticks[0], hi: ticks[ticks.length - 1], ticks };
}

const fmt = (v: number): string => v.toFixed(1);
const defaultFormat = (v: number): string => String(Number(v.toPrecision(6)));

/**
 * A self-contained SVG line or scatter chart: title, axes with round ticks and grid lines, an optional second
 * y axis, series as polylines, step lines or scatters with markers and point labels, dashed marker lines, and
 * a legend below, wrapped onto as many rows as it needs. Every chart of the project draws through this.
 */
export function renderChart(spec: ChartSpec): string {
  const W = spec.width ?? 760;
  const H = spec.height ?? 460;
  const m = { l: 64, r: spec.y2 ? 64 : 24, t: 40 };
  // Legend rows first: the plot takes what they leave.
  const legend: { x: number; row: number; s: ChartSeries }[] = [];
  let lx = m.l;
  let row = 0;
  for (const s of spec.series) {
    const w = 40 + s.label.length * 6.5;
    if (lx > m.l && lx + w > W - m.r) {
      lx = m.l;
      row++;
    }
    legend.push({ x: lx, row, s });
    lx += w;
  }
  const bottom = 50 + (legend.length ? (row + 1) * 16 : 0);
  const pw = W - m.l - m.r;
  const ph = H - m.t - bottom;
  const left = spec.series.filter((s) => s.axis !== 'right');
  const right = spec.series.filter((s) => s.axis === 'right');
  const xs = spec.series
    .flatMap((s) => s.points.map((p) => p[0]))
    .concat((spec.vlines ?? []).map((v) => v.x));
  const ys = left.flatMap((s) => s.points.map((p) => p[1])).concat((spec.hlines ?? []).map((h) => h.y));
  const X = axisScale(spec.x, xs, 0);
  const Y = axisScale(spec.y, ys, 0.05);
  const Y2 = spec.y2
    ? axisScale(
        spec.y2,
        right.flatMap((s) => s.points.map((p) => p[1])),
        0.05,
      )
    : Y;
  const tx = (v: number) => (spec.x.log2 ? Math.log2(v) : v);
  const sx = (v: number) => m.l + ((tx(v) - X.lo) / (X.hi - X.lo)) * pw;
  const syOf = (a: { lo: number; hi: number }) => (v: number) => m.t + ph - ((v - a.lo) / (a.hi - a.lo)) * ph;
  const sy = syOf(Y);
  const sy2 = syOf(Y2);
  const esc = escapeXml;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">${esc(spec.title)}</text>`,
  ];
  const xf = spec.x.format ?? defaultFormat;
  for (const t of X.ticks) {
    out.push(
      `<line x1="${fmt(sx(t))}" x2="${fmt(sx(t))}" y1="${m.t}" y2="${m.t + ph}" stroke="#eee"/>`,
      `<text x="${fmt(sx(t))}" y="${m.t + ph + 17}" text-anchor="middle">${esc(xf(t))}</text>`,
    );
  }
  const yf = spec.y.format ?? defaultFormat;
  for (const t of Y.ticks) {
    out.push(
      `<line x1="${m.l}" x2="${m.l + pw}" y1="${fmt(sy(t))}" y2="${fmt(sy(t))}" stroke="#eee"/>`,
      `<text x="${m.l - 6}" y="${fmt(sy(t) + 4)}" text-anchor="end">${esc(yf(t))}</text>`,
    );
  }
  out.push(
    `<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`,
    `<text x="${m.l + pw / 2}" y="${m.t + ph + 34}" text-anchor="middle">${esc(spec.x.label)}</text>`,
    `<text transform="translate(16 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle"${spec.y.color ? ` fill="${spec.y.color}"` : ''}>${esc(spec.y.label)}</text>`,
  );
  if (spec.y2) {
    const f2 = spec.y2.format ?? defaultFormat;
    for (const t of Y2.ticks)
      out.push(`<text x="${m.l + pw + 6}" y="${fmt(sy2(t) + 4)}">${esc(f2(t))}</text>`);
    out.push(
      `<text transform="translate(${W - 14} ${m.t + ph / 2}) rotate(90)" text-anchor="middle"${spec.y2.color ? ` fill="${spec.y2.color}"` : ''}>${esc(spec.y2.label)}</text>`,
    );
  }
  for (const h of spec.hlines ?? []) {
    const c = h.color ?? '#888';
    out.push(
      `<line x1="${m.l}" x2="${m.l + pw}" y1="${fmt(sy(h.y))}" y2="${fmt(sy(h.y))}" stroke="${c}" stroke-dasharray="6 4"/>`,
      `<text x="${m.l + pw - 4}" y="${fmt(sy(h.y) - 4)}" text-anchor="end" fill="${c}">${esc(h.label)}</text>`,
    );
  }
  for (const v of spec.vlines ?? []) {
    out.push(
      `<line x1="${fmt(sx(v.x))}" x2="${fmt(sx(v.x))}" y1="${m.t}" y2="${m.t + ph}" stroke="#c33" stroke-dasharray="4 3"/>`,
      `<text x="${fmt(sx(v.x) + 4)}" y="${m.t + 14}" fill="#c33">${esc(v.label)}</text>`,
    );
  }
  for (const s of spec.series) {
    const y = s.axis === 'right' ? sy2 : sy;
    const pts = s.points.filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1]));
    const at = pts.map(([a, b]) => [sx(a), y(b)]);
    const cls = s.className ? ` class="${s.className}"` : '';
    const stroke = `fill="none" stroke="${s.color}" stroke-width="${s.width ?? 1.5}" stroke-opacity="${s.opacity ?? 1}"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}`;
    const join = s.join ?? 'line';
    if (join === 'line' && at.length > 0)
      out.push(`<polyline${cls} ${stroke} points="${at.map(([a, b]) => `${fmt(a)},${fmt(b)}`).join(' ')}"/>`);
    if (join === 'steps' && at.length > 1) {
      const d = at
        .map(([a, b], i) => (i === 0 ? `M ${fmt(a)} ${fmt(b)}` : `H ${fmt(a)} V ${fmt(b)}`))
        .join(' ');
      out.push(`<path${cls} d="${d}" ${stroke}/>`);
    }
    if (s.markers ?? pts.length <= 40) {
      const mk = s.marker ?? {};
      pts.forEach((_, i) => {
        const [a, b] = at[i];
        const label = s.pointLabels?.[i];
        out.push(
          `<circle${mk.className ? ` class="${mk.className}"` : ''} cx="${fmt(a)}" cy="${fmt(b)}" r="${mk.r ?? 3}" fill="${mk.fill ?? s.color}"${mk.stroke ? ` stroke="${mk.stroke}" stroke-width="1.5"` : ''}>${label ? `<title>${esc(label)}</title>` : ''}</circle>`,
        );
        if (label)
          out.push(
            `<text x="${fmt(a + 7)}" y="${fmt(b - 7)}" font-size="10" fill="#333">${esc(label)}</text>`,
          );
      });
    }
  }
  for (const { x, row: r, s } of legend) {
    const ly = m.t + ph + 52 + 16 * r;
    const mk = s.marker ?? {};
    out.push(
      (s.join ?? 'line') === 'none'
        ? `<rect x="${x + 6}" y="${ly - 9}" width="10" height="10" rx="5" fill="${mk.fill ?? s.color}" stroke="${mk.stroke ?? s.color}"/>`
        : `<line x1="${x}" x2="${x + 22}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2.5"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`,
      `<text x="${x + 27}" y="${ly}">${esc(s.label)}</text>`,
    );
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
