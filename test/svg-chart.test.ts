/**
 * renderChart (common/svg.ts), the chart helper every plot draws through: where it puts the points, checked
 * against the axes it draws (the plot frame and the tick labels), and that an independent XML parser reads it
 * (test/xml-check.ts).
 */
import { describe, expect, it } from 'vitest';
import { renderChart } from '../common/svg.ts';
import { mulberry32 } from './prng.ts';
import { expectWellFormedXml } from './xml-check.ts';

const polylines = (svg: string): [number, number][][] =>
  [...svg.matchAll(/<polyline [^>]*points="([^"]*)"/g)].map((m) =>
    m[1].split(' ').map((p) => p.split(',').map(Number) as [number, number]),
  );

/** The plot frame: the unfilled rectangle. */
function frame(svg: string): { x: number; y: number; w: number; h: number } {
  const m = /<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)" fill="none"/.exec(svg)!;
  return { x: Number(m[1]), y: Number(m[2]), w: Number(m[3]), h: Number(m[4]) };
}

/** Tick labels under the frame (x) and left of it (y): value -> position. */
function ticks(svg: string, f: ReturnType<typeof frame>): { x: Map<number, number>; y: Map<number, number> } {
  const x = new Map<number, number>();
  const y = new Map<number, number>();
  for (const m of svg.matchAll(
    /<text x="([\d.-]+)" y="([\d.-]+)" text-anchor="(middle|end)">([-\d.e]+)<\/text>/g,
  )) {
    const [px, py, v] = [Number(m[1]), Number(m[2]), Number(m[4])];
    if (m[3] === 'middle' && Math.abs(py - (f.y + f.h + 17)) < 0.01) x.set(v, px);
    if (m[3] === 'end' && Math.abs(px - (f.x - 6)) < 0.01) y.set(v, py - 4);
  }
  return { x, y };
}

/** Position of value v on an axis given two of its ticks, linear in v (or in log2 v). */
function expected(t: Map<number, number>, v: number, log2 = false): number {
  const [[a, pa], [b, pb]] = [...t].slice(0, 2);
  const tr = (u: number) => (log2 ? Math.log2(u) : u);
  return pa + ((tr(v) - tr(a)) / (tr(b) - tr(a))) * (pb - pa);
}

describe('renderChart', () => {
  it('puts every point where its axes say, inside the frame', () => {
    const rand = mulberry32(7);
    for (let trial = 0; trial < 20; trial++) {
      const n = 2 + Math.floor(rand() * 30);
      const series = [0, 1].map((k) => ({
        label: `s${k}`,
        color: '#000',
        points: Array.from({ length: n }, (_, i): [number, number] => [
          i * (1 + rand() * 50),
          -20 + rand() * 300 * (trial + 1),
        ]),
      }));
      const svg = renderChart({ title: 't', x: { label: 'x' }, y: { label: 'y' }, series });
      const f = frame(svg);
      const t = ticks(svg, f);
      expect(t.x.size).toBeGreaterThanOrEqual(2);
      expect(t.y.size).toBeGreaterThanOrEqual(2);
      const lines = polylines(svg);
      expect(lines).toHaveLength(2);
      lines.forEach((line, k) => {
        line.forEach(([px, py], i) => {
          const [vx, vy] = series[k].points[i];
          expect(px).toBeCloseTo(expected(t.x, vx), 0);
          expect(py).toBeCloseTo(expected(t.y, vy), 0);
          expect(px).toBeGreaterThanOrEqual(f.x - 0.05);
          expect(px).toBeLessThanOrEqual(f.x + f.w + 0.05);
          expect(py).toBeGreaterThanOrEqual(f.y - 0.05);
          expect(py).toBeLessThanOrEqual(f.y + f.h + 0.05);
        });
      });
    }
  });

  it('spaces a log2 axis by ratios, and a right-axis series runs from its min (bottom) to its max (top)', () => {
    const svg = renderChart({
      title: 't',
      x: { label: 'block', log2: true, ticks: [4, 8, 16, 32] },
      y: { label: 'ms', min: 0 },
      y2: { label: 'rate', min: 0, max: 1 },
      series: [
        {
          label: 'a',
          color: '#000',
          points: [
            [4, 1],
            [8, 2],
            [32, 3],
          ],
        },
        {
          label: 'b',
          color: '#111',
          axis: 'right',
          points: [
            [4, 0],
            [32, 1],
          ],
        },
      ],
    });
    const f = frame(svg);
    const [a, b] = polylines(svg);
    expect(a[1][0] - a[0][0]).toBeCloseTo((a[2][0] - a[1][0]) / 2, 0);
    expect(a[0][0]).toBeCloseTo(f.x, 0);
    expect(a[2][0]).toBeCloseTo(f.x + f.w, 0);
    expect(b[0][1]).toBeCloseTo(f.y + f.h, 0);
    expect(b[1][1]).toBeCloseTo(f.y, 0);
  });

  it('writes XML a parser independent of ours accepts, with labels escaped and in the legend', () => {
    const svg = renderChart({
      title: 'a < b & "c"',
      x: { label: 'x <1>' },
      y: { label: 'y' },
      series: [
        {
          label: 'front <&>',
          color: '#c00',
          join: 'steps',
          className: 'front',
          points: [
            [1, 3],
            [2, 2],
          ],
          pointLabels: ['p<1>', 'p&2'],
        },
        { label: 'dots', color: '#00c', join: 'none', points: [[1.5, 1]] },
      ],
      hlines: [{ y: 2.5, label: 'ref <x>' }],
      vlines: [{ x: 1.2, label: 'stage' }],
    });
    expectWellFormedXml(svg);
    for (const text of [
      'a &lt; b &amp; &quot;c&quot;',
      'x &lt;1&gt;',
      'front &lt;&amp;&gt;',
      'p&lt;1&gt;',
      'ref &lt;x&gt;',
    ])
      expect(svg).toContain(text);
    expect(svg).toContain('<path class="front" d="M ');
    expect(svg.match(/<circle /g)).toHaveLength(3);
    expect(svg).toContain('>dots</text>');
  });
});
