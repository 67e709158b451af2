/**
 * `sdt report speedup RUN_DIR`: speedup of an on-policy run over its starting model against training
 * step, from RUN/onpolicy.jsonl. Speedup = forward passes per generated token of round 0 / of round r
 * (same prompts, same sampler settings), drawn as an SVG next to the verifier pass rate.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../../common/errors.ts';
import { renderChart } from '../../common/svg.ts';
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

/** A line chart: speedup (left axis) and verifier pass rate (right axis, 0..1) against training step. */
export function speedupSvg(points: SpeedupPoint[], title: string): string {
  return renderChart({
    title,
    width: 640,
    height: 360,
    x: { label: 'training step', min: 0 },
    y: { label: 'speedup (forward passes/token vs round 0)', min: 0, color: '#1f77b4' },
    y2: { label: 'verifier pass rate', min: 0, max: 1, color: '#2ca02c' },
    series: [
      { label: 'speedup', color: '#1f77b4', width: 2, points: points.map((p) => [p.step, p.speedup]) },
      {
        label: 'verifier pass rate',
        color: '#2ca02c',
        width: 2,
        axis: 'right',
        points: points.map((p) => [p.step, p.verifierPassRate]),
      },
    ],
    hlines: [{ y: 1, label: 'round 0', color: '#bbb' }],
  });
}
