/** RUN/loss.svg from the run's log records: train loss, validation per group, stage boundary, unigram line. */
import { type TrainConfig, totalSteps } from './config.ts';
import { editStageStart } from './curriculum.ts';
import { movingAverage, renderSvg, type Series } from './plot.ts';
import type { LogRecord } from './run-log.ts';

const GROUP_COLORS: Record<string, string> = { elbo: '#d62728', edit: '#2ca02c', nll: '#d62728' };
const GROUP_LABELS: Record<string, string> = {
  elbo: 'validation ELBO (bits/token)',
  edit: 'validation edit CE (bits/token)',
  nll: 'validation NLL (bits/token)',
};

export function renderLossPlot(
  records: LogRecord[],
  cfg: TrainConfig,
  unigramBits: number,
  unigramValBits: number,
): string {
  const train: [number, number][] = [];
  const val = new Map<string, [number, number][]>();
  for (const r of records) {
    if (r.type === 'step' && Number.isFinite(r.loss) && !r.skipped) train.push([r.step, r.loss / Math.LN2]);
    if (r.type === 'eval') {
      const pts = val.get(r.group) ?? [];
      pts.push([r.step, r.bits_per_token]);
      val.set(r.group, pts);
    }
  }
  const series: Series[] = [
    { label: 'train loss (bits)', color: '#1f77b4', points: train, width: 1, opacity: 0.3 },
    {
      label: 'train, moving average',
      color: '#1f77b4',
      points: movingAverage(train, Math.max(1, Math.round(train.length / 30))),
    },
  ];
  for (const [group, points] of val) {
    series.push({
      label: GROUP_LABELS[group] ?? group,
      color: GROUP_COLORS[group] ?? '#9467bd',
      points,
      width: 2,
    });
  }
  const boundary = editStageStart(cfg);
  const vlines: [number, string][] =
    cfg.objective === 'diffusion' && boundary < totalSteps(cfg) ? [[boundary, 'edit stage']] : [];
  return renderSvg({
    title: `sdt train (${cfg.objective}): loss per step`,
    xLabel: 'optimizer step',
    yLabel: 'bits per token',
    series,
    vlines,
    hlines: [
      [unigramBits, `unigram entropy (train) ${unigramBits.toFixed(2)}`],
      [unigramValBits, `unigram cross-entropy (validation) ${unigramValBits.toFixed(2)}`],
    ],
  });
}
