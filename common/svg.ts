/**
 * The pieces every SVG chart of the project shares (training loss, Pareto front, on-policy speedup, sampler
 * bench, trajectory pictures): text escaping and round tick positions.
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
