/**
 * Unbiased pass@k (Chen et al. 2021): with n samples of which c pass, the chance that at least one of k
 * drawn without replacement passes is 1 - C(n-c, k) / C(n, k). The ratio is computed as the product
 * prod_{i=n-c+1..n} (1 - k/i), which never forms the huge binomials.
 */
export function passAtK(n: number, c: number, k: number): number {
  if (
    !Number.isInteger(n) ||
    !Number.isInteger(c) ||
    !Number.isInteger(k) ||
    n < 1 ||
    c < 0 ||
    c > n ||
    k < 1
  ) {
    throw new RangeError(`passAtK: need integers n >= 1, 0 <= c <= n, k >= 1; got n=${n} c=${c} k=${k}`);
  }
  if (k > n) throw new RangeError(`passAtK: k=${k} exceeds the ${n} samples per task`);
  if (n - c < k) return 1;
  let fail = 1;
  for (let i = n - c + 1; i <= n; i++) fail *= 1 - k / i;
  return 1 - fail;
}

/** Mean pass@k over tasks; tasks are (samples, passed) pairs. Ks larger than the smallest n are skipped. */
export function meanPassAtK(tasks: { n: number; c: number }[], ks: number[]): Record<string, number> {
  const out: Record<string, number> = {};
  if (tasks.length === 0) return out;
  const minN = Math.min(...tasks.map((t) => t.n));
  for (const k of ks) {
    if (k > minN) continue;
    out[`pass@${k}`] = tasks.reduce((s, t) => s + passAtK(t.n, t.c, k), 0) / tasks.length;
  }
  return out;
}
