/**
 * `sdt report speedup RUN_DIR`: speedup of an on-policy run over its starting model against training
 * step, from RUN/onpolicy.jsonl. Speedup = forward passes per generated token of round 0 / of round r
 * (same prompts, same sampler settings), drawn as an SVG next to the verifier pass rate.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../../common/errors.ts';
import { escapeXml } from '../../common/svg.ts';
import type { RoundRecord } from '../stages/onpolicy.ts';

export interface SpeedupPoint {
  round: number;
  step: number;
  speedup: number;
  forwardPassesPerToken: number;
  stepsPerBlock: number;
  verifierPassRate: number;
  validationLoss: number | null;
}

export async function readRounds(runDir: string): Promise<RoundRecord[]> {
  const path = join(runDir, 'onpolicy.jsonl');
  if (!existsSync(path)) {
    throw new UserError(`${path} not found; run \`sdt train --stage onpolicy --out ${runDir}\` first.`);
  }
  const lines = (await readFile(path, 'utf8')).split('\n');
  const out: RoundRecord[] = [];
  lines.forEach((l, i) => {
    if (!l.trim()) return;
    try {
      out.push(JSON.parse(l) as RoundRecord);
    } catch {
      throw new UserError(
        `${path} line ${i + 1}: not JSON; the log is damaged (rerun the stage into a new --out).`,
      );
    }
  });
  if (out.length === 0) throw new UserError(`${path}: no rounds recorded yet.`);
  return out;
}

/** Held-out metrics when every round has them (what the speedup is judged on), else the training pool's. */
export function measuredOn(rounds: RoundRecord[]): 'heldout' | 'pool' {
  return rounds.every((r) => r.heldout) ? 'heldout' : 'pool';
}

export function speedupPoints(rounds: RoundRecord[]): SpeedupPoint[] {
  const on = measuredOn(rounds);
  const metrics = (r: RoundRecord) => (on === 'heldout' ? r.heldout! : r);
  const base = metrics(rounds[0]).forward_passes_per_token;
  return rounds.map((r) => {
    const m = metrics(r);
    return {
      round: r.round,
      step: r.step,
      speedup: m.forward_passes_per_token > 0 ? base / m.forward_passes_per_token : 0,
      forwardPassesPerToken: m.forward_passes_per_token,
      stepsPerBlock: m.steps_per_block,
      verifierPassRate: m.verifier_pass_rate,
      validationLoss: r.validation_loss,
    };
  });
}

const esc = escapeXml;

/** A line chart: speedup (left axis) and verifier pass rate (right axis, 0..1) against training step. */
export function speedupSvg(points: SpeedupPoint[], title: string): string {
  const W = 640;
  const H = 360;
  const m = { l: 60, r: 60, t: 40, b: 50 };
  const xs = points.map((p) => p.step);
  const xMax = Math.max(1, ...xs);
  const yMax = Math.max(1.1, ...points.map((p) => p.speedup)) * 1.1;
  const x = (v: number) => m.l + (v / xMax) * (W - m.l - m.r);
  const y = (v: number) => H - m.b - (v / yMax) * (H - m.t - m.b);
  const yr = (v: number) => H - m.b - v * (H - m.t - m.b);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`,
    `<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="black"/>`,
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="black"/>`,
    `<line x1="${W - m.r}" y1="${m.t}" x2="${W - m.r}" y2="${H - m.b}" stroke="#888"/>`,
    `<text x="${W / 2}" y="${H - 12}" text-anchor="middle">training step</text>`,
    `<text x="16" y="${H / 2}" transform="rotate(-90 16 ${H / 2})" text-anchor="middle" fill="#1f77b4">speedup (forward passes/token vs round 0)</text>`,
    `<text x="${W - 16}" y="${H / 2}" transform="rotate(90 ${W - 16} ${H / 2})" text-anchor="middle" fill="#2ca02c">verifier pass rate</text>`,
    `<line x1="${m.l}" y1="${y(1)}" x2="${W - m.r}" y2="${y(1)}" stroke="#ccc" stroke-dasharray="4 3"/>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4;
    parts.push(`<text x="${m.l - 6}" y="${y(v) + 4}" text-anchor="end">${v.toFixed(2)}</text>`);
    parts.push(`<text x="${W - m.r + 6}" y="${yr(i / 4) + 4}">${(i / 4).toFixed(2)}</text>`);
    const s = (xMax * i) / 4;
    parts.push(`<text x="${x(s)}" y="${H - m.b + 16}" text-anchor="middle">${Math.round(s)}</text>`);
  }
  const line = (pts: [number, number][], color: string) =>
    `<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(' ')}"/>` +
    pts.map(([a, b]) => `<circle cx="${a.toFixed(1)}" cy="${b.toFixed(1)}" r="3" fill="${color}"/>`).join('');
  parts.push(
    line(
      points.map((p) => [x(p.step), y(p.speedup)]),
      '#1f77b4',
    ),
  );
  parts.push(
    line(
      points.map((p) => [x(p.step), yr(p.verifierPassRate)]),
      '#2ca02c',
    ),
  );
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
