/**
 * The loss curve of a run as a self-contained SVG: training loss per step (light) with a moving average,
 * validation curves per group, the unigram-entropy baseline and the mask -> edit stage boundary. Losses are
 * drawn in bits per token so training and validation share one axis.
 */
import { escapeXml, niceTicks } from '../common/svg.ts';

export interface Series {
  label: string;
  color: string;
  points: [number, number][];
  width?: number;
  opacity?: number;
  dash?: string;
}

export interface PlotSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Vertical markers: [x, label]. */
  vlines?: [number, string][];
  /** Horizontal markers: [y, label]. */
  hlines?: [number, string][];
  width?: number;
  height?: number;
}

const esc = escapeXml;

export function movingAverage(points: [number, number][], window: number): [number, number][] {
  const out: [number, number][] = [];
  let sum = 0;
  for (let i = 0; i < points.length; i++) {
    sum += points[i][1];
    if (i >= window) sum -= points[i - window][1];
    out.push([points[i][0], sum / Math.min(i + 1, window)]);
  }
  return out;
}

export function renderSvg(spec: PlotSpec): string {
  const W = spec.width ?? 760;
  const H = spec.height ?? 460;
  const m = { l: 62, r: 20, t: 36, b: 88 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const xs = spec.series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = [
    ...spec.series.flatMap((s) => s.points.map((p) => p[1])),
    ...(spec.hlines ?? []).map((h) => h[0]),
  ].filter(Number.isFinite);
  const x0 = Math.min(0, ...xs);
  const x1 = Math.max(x0 + 1, ...xs);
  let y0 = Math.min(...ys, Number.POSITIVE_INFINITY);
  let y1 = Math.max(...ys, Number.NEGATIVE_INFINITY);
  if (!Number.isFinite(y0)) [y0, y1] = [0, 1];
  const pad = (y1 - y0) * 0.05 || 0.5;
  y0 = Math.max(0, y0 - pad);
  y1 += pad;
  const sx = (x: number): number => m.l + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number): number => m.t + ph - ((y - y0) / (y1 - y0)) * ph;
  const f = (v: number): string => v.toFixed(1);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(spec.title)}</text>`,
  ];
  for (const t of niceTicks(y0, y1)) {
    out.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${f(sy(t))}" y2="${f(sy(t))}" stroke="#eee"/>`);
    out.push(`<text x="${m.l - 6}" y="${f(sy(t) + 4)}" text-anchor="end">${t}</text>`);
  }
  for (const t of niceTicks(x0, x1)) {
    out.push(`<line x1="${f(sx(t))}" x2="${f(sx(t))}" y1="${m.t + ph}" y2="${m.t + ph + 4}" stroke="#333"/>`);
    out.push(`<text x="${f(sx(t))}" y="${m.t + ph + 17}" text-anchor="middle">${t}</text>`);
  }
  out.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${m.l + pw / 2}" y="${m.t + ph + 34}" text-anchor="middle">${esc(spec.xLabel)}</text>`);
  out.push(
    `<text transform="translate(16 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">${esc(spec.yLabel)}</text>`,
  );
  for (const [y, label] of spec.hlines ?? []) {
    out.push(
      `<line x1="${m.l}" x2="${m.l + pw}" y1="${f(sy(y))}" y2="${f(sy(y))}" stroke="#888" stroke-dasharray="6 4"/>`,
    );
    out.push(
      `<text x="${m.l + pw - 4}" y="${f(sy(y) - 4)}" text-anchor="end" fill="#555">${esc(label)}</text>`,
    );
  }
  for (const [x, label] of spec.vlines ?? []) {
    out.push(
      `<line x1="${f(sx(x))}" x2="${f(sx(x))}" y1="${m.t}" y2="${m.t + ph}" stroke="#c33" stroke-dasharray="4 3"/>`,
    );
    out.push(`<text x="${f(sx(x) + 4)}" y="${m.t + 14}" fill="#c33">${esc(label)}</text>`);
  }
  for (const s of spec.series) {
    if (s.points.length === 0) continue;
    const d = s.points
      .filter((p) => Number.isFinite(p[1]))
      .map((p, i) => `${i === 0 ? 'M' : 'L'}${f(sx(p[0]))},${f(sy(p[1]))}`)
      .join(' ');
    out.push(
      `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="${s.width ?? 1.5}" stroke-opacity="${s.opacity ?? 1}"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`,
    );
    if (s.points.length <= 40)
      for (const p of s.points)
        out.push(`<circle cx="${f(sx(p[0]))}" cy="${f(sy(p[1]))}" r="2.5" fill="${s.color}"/>`);
  }
  // Legend below the plot, wrapped onto as many rows as it needs.
  let lx = m.l;
  let ly = m.t + ph + 52;
  for (const s of spec.series) {
    const w = 40 + s.label.length * 6.5;
    if (lx > m.l && lx + w > W - m.r) {
      lx = m.l;
      ly += 16;
    }
    out.push(
      `<line x1="${lx}" x2="${lx + 22}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2.5"/>`,
    );
    out.push(`<text x="${lx + 27}" y="${ly}">${esc(s.label)}</text>`);
    lx += w;
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
