/**
 * The loss curve of a run as a self-contained SVG: training loss per step (light) with a moving average,
 * validation curves per group, the unigram-entropy baseline and the mask -> edit stage boundary. Losses are
 * drawn in bits per token so training and validation share one axis.
 */
import { renderChart } from '../common/svg.ts';

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
  const xs = spec.series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = [
    ...spec.series.flatMap((s) => s.points.map((p) => p[1])),
    ...(spec.hlines ?? []).map((h) => h[0]),
  ].filter(Number.isFinite);
  // Losses are positive: the axis pads the data by 5% but never goes below 0.
  const yMin = ys.length ? Math.min(...ys) : 0;
  const yPad = ys.length ? (Math.max(...ys) - yMin) * 0.05 || 0.5 : 0;
  return renderChart({
    title: spec.title,
    width: spec.width,
    height: spec.height,
    x: { label: spec.xLabel, min: Math.min(0, ...xs) },
    y: { label: spec.yLabel, min: Math.max(0, yMin - yPad) },
    series: spec.series,
    hlines: (spec.hlines ?? []).map(([y, label]) => ({ y, label })),
    vlines: (spec.vlines ?? []).map(([x, label]) => ({ x, label })),
  });
}
