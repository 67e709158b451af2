import { describe, expect, it } from 'vitest';
import { gridSettings, settingLabel } from '../eval/report/grid.ts';
import { accuracyUnderParallelism, type ParetoRow, paretoMarkdown, speedOf } from '../eval/report/pareto.ts';
import { paretoSvg } from '../eval/report/svg.ts';

const row = (label: string, passesPerToken: number, pass1: number): ParetoRow => ({
  label,
  mode: label === 'AR' ? 'ar' : 'diffusion',
  block: label === 'AR' ? null : 16,
  threshold: null,
  tokensPerSecond: 100 / passesPerToken,
  forwardPassesPerToken: passesPerToken,
  pass1,
  syntaxValid: null,
  valLoss: null,
});

describe('parallelism axis and accuracy under parallelism', () => {
  it('takes tokens per forward pass as the inverse of passes per token', () => {
    expect(speedOf(row('a', 0.25, 0.5), 'parallelism')).toBeCloseTo(4);
    expect(speedOf(row('a', 0.25, 0.5), 'speed')).toBeCloseTo(400);
  });

  it('integrates the front as a step function (hand-computed areas)', () => {
    // AR alone: 1 token per pass at 0.6 -> 0.6.
    expect(accuracyUnderParallelism([row('AR', 1, 0.6)], 'pass1')).toBeCloseTo(0.6);
    // Front (1, 0.6), (2, 0.55), (5, 0.3); (3, 0.2) is dominated by (5, 0.3).
    // Area = 1*0.6 + (2-1)*0.55 + (5-2)*0.3 = 2.05.
    const rows = [row('AR', 1, 0.6), row('a', 0.5, 0.55), row('b', 1 / 3, 0.2), row('c', 0.2, 0.3)];
    expect(accuracyUnderParallelism(rows, 'pass1')).toBeCloseTo(2.05);
    expect(paretoMarkdown(rows, 'pass1', 'synth', 'parallelism')).toContain('2.050');
    expect(paretoSvg(rows, 'pass1', 't', 'parallelism')).toContain('tokens per forward pass');
  });

  it('adds fixed-rule settings per block and labels rows with a prefix', () => {
    const s = gridSettings([8, 16], [0.9], true, [2, 4]);
    expect(s.map((x) => settingLabel(x, 'student '))).toEqual([
      'student B8 t0.9',
      'student B8 k2',
      'student B8 k4',
      'student B16 t0.9',
      'student B16 k2',
      'student B16 k4',
      'student AR',
    ]);
  });

  it('repeats the threshold settings under each commit order and passes the order to the sampler', () => {
    const s = gridSettings([16], [0.9, 0.7], false, [], ['confidence', 'left-to-right']);
    expect(s.map((x) => settingLabel(x))).toEqual([
      'B16 t0.9',
      'B16 t0.7',
      'B16 t0.9 left-to-right',
      'B16 t0.7 left-to-right',
    ]);
    expect(s.map((x) => x.order)).toEqual([undefined, undefined, 'left-to-right', 'left-to-right']);
  });
});
