import { renderChart } from '../../common/svg.ts';
import {
  type ParetoRow,
  paretoFront,
  type QualityMetric,
  qualityOf,
  type SpeedAxis,
  speedOf,
} from './pareto.ts';

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
  const pts = rows.map((r): [number, number] => [speedOf(r, axis), qualityOf(r, quality)]);
  const front = paretoFront(pts.map(([x, y]) => ({ x, y })));
  const onFront = new Set(front);
  const others = rows.map((_, i) => i).filter((i) => !onFront.has(i));
  return renderChart({
    title,
    x: { label: axis === 'speed' ? 'tokens/s' : 'tokens per forward pass', min: 0 },
    y: { label: quality === 'pass1' ? 'pass@1' : 'syntax-valid rate', min: 0 },
    series: [
      {
        // Step line: from each front point, across at its quality, then down to the next (faster, worse) one.
        label: 'Pareto front',
        color: '#c0392b',
        points: front.map((i) => pts[i]),
        join: 'steps',
        dash: '5 3',
        className: 'front',
        markers: true,
        marker: { r: 5, className: 'front-point' },
        pointLabels: front.map((i) => rows[i].label),
      },
      {
        label: 'dominated',
        color: '#2c3e50',
        points: others.map((i) => pts[i]),
        join: 'none',
        markers: true,
        marker: { r: 5, fill: 'white', stroke: '#2c3e50', className: 'point' },
        pointLabels: others.map((i) => rows[i].label),
      },
    ],
  });
}
