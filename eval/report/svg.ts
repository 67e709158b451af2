import { escapeXml, niceTicks } from '../../common/svg.ts';
import {
  type ParetoRow,
  paretoFront,
  type QualityMetric,
  qualityOf,
  type SpeedAxis,
  speedOf,
} from './pareto.ts';

const esc = escapeXml;

/**
 * A scatter of quality (y) against tokens/s (x), one point per setting, the Pareto front drawn as a step
 * line through its points (filled); the others are hollow. Self-contained SVG, no scripts or fonts.
 */
export function paretoSvg(
  rows: ParetoRow[],
  quality: QualityMetric,
  title: string,
  axis: SpeedAxis = 'speed',
): string {
  const W = 760;
  const H = 460;
  const m = { left: 70, right: 30, top: 50, bottom: 60 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const pts = rows.map((r) => ({ x: speedOf(r, axis), y: qualityOf(r, quality) }));
  const xs = niceTicks(0, Math.max(1e-9, ...pts.map((p) => p.x)), 5, true);
  const ys = niceTicks(0, Math.max(1e-9, ...pts.map((p) => p.y)), 5, true);
  const [x0, x1] = [xs[0], xs[xs.length - 1]];
  const [y0, y1] = [ys[0], ys[ys.length - 1]];
  const sx = (x: number) => m.left + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => m.top + ph - ((y - y0) / (y1 - y0)) * ph;
  const front = paretoFront(pts);
  const onFront = new Set(front);
  const yLabel = quality === 'pass1' ? 'pass@1' : 'syntax-valid rate';
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="15">${esc(title)}</text>`,
  ];
  for (const t of xs) {
    out.push(
      `<line x1="${sx(t)}" y1="${m.top}" x2="${sx(t)}" y2="${m.top + ph}" stroke="#e5e5e5"/>`,
      `<text x="${sx(t)}" y="${m.top + ph + 18}" text-anchor="middle">${t}</text>`,
    );
  }
  for (const t of ys) {
    out.push(
      `<line x1="${m.left}" y1="${sy(t)}" x2="${m.left + pw}" y2="${sy(t)}" stroke="#e5e5e5"/>`,
      `<text x="${m.left - 8}" y="${sy(t) + 4}" text-anchor="end">${t}</text>`,
    );
  }
  out.push(
    `<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`,
    `<text x="${m.left + pw / 2}" y="${H - 18}" text-anchor="middle">${axis === 'speed' ? 'tokens/s' : 'tokens per forward pass'}</text>`,
    `<text transform="translate(18 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`,
  );
  if (front.length > 1) {
    // Step line: from each front point, across at its quality, then down to the next (faster, worse) one.
    const d = front
      .map((i, j) => {
        const p = pts[i];
        if (j === 0) return `M ${sx(p.x)} ${sy(p.y)}`;
        return `H ${sx(p.x)} V ${sy(p.y)}`;
      })
      .join(' ');
    out.push(
      `<path class="front" d="${d}" fill="none" stroke="#c0392b" stroke-width="1.5" stroke-dasharray="5 3"/>`,
    );
  }
  rows.forEach((r, i) => {
    const p = pts[i];
    const f = onFront.has(i);
    out.push(
      `<circle class="${f ? 'front-point' : 'point'}" cx="${sx(p.x)}" cy="${sy(p.y)}" r="5" ` +
        `fill="${f ? '#c0392b' : 'white'}" stroke="${f ? '#c0392b' : '#2c3e50'}" stroke-width="1.5"><title>${esc(r.label)}</title></circle>`,
      `<text x="${sx(p.x) + 7}" y="${sy(p.y) - 7}" font-size="10" fill="#333">${esc(r.label)}</text>`,
    );
  });
  out.push(
    `<g font-size="11"><circle cx="${m.left + 12}" cy="${m.top + 12}" r="5" fill="#c0392b"/>` +
      `<text x="${m.left + 22}" y="${m.top + 16}">Pareto front</text>` +
      `<circle cx="${m.left + 112}" cy="${m.top + 12}" r="5" fill="white" stroke="#2c3e50" stroke-width="1.5"/>` +
      `<text x="${m.left + 122}" y="${m.top + 16}">dominated</text></g>`,
    '</svg>',
  );
  return `${out.join('\n')}\n`;
}
