import { type CommandSpec, str } from '../../common/cli.ts';
import { Progress } from '../../common/progress.ts';
import type { Split } from '../../schemas/dataset.ts';
import { exportDataset } from '../dataset/export.ts';
import { openDataset } from '../dataset/read.ts';

export const command: CommandSpec = {
  name: 'data export',
  summary: 'export a dataset to Parquet or JSONL (readable by DuckDB, pandas)',
  positionals: [
    { name: 'DIR', description: 'dataset directory written by `sdt data build`', required: true },
  ],
  options: {
    format: {
      type: 'string',
      description: 'output format',
      choices: ['parquet', 'jsonl'],
      default: 'parquet',
    },
    out: { type: 'string', output: 'file', arg: 'FILE', description: 'output file', required: true },
    split: {
      type: 'string',
      description: 'which rows',
      choices: ['train', 'validation', 'all'],
      default: 'all',
    },
    quiet: { type: 'boolean', description: 'no progress output' },
  },
  examples: ['sdt data export runs/data --format parquet --out data.parquet'],
  async run(opts, [dir]) {
    const ds = await openDataset(dir);
    const split = str(opts, 'split');
    const splits: Split[] = split === 'all' ? ['train', 'validation'] : [split as Split];
    const total = splits.reduce((n, s) => n + ds.manifest.counts[s].rows, 0);
    const progress = new Progress({ label: 'data export', unit: 'rows', total, quiet: Boolean(opts.quiet) });
    const format = str(opts, 'format') as 'parquet' | 'jsonl';
    const n = await exportDataset(ds, splits, format, str(opts, 'out'), () => progress.tick());
    progress.done();
    process.stdout.write(`wrote ${str(opts, 'out')}: ${n} rows (${format})\n`);
    return 0;
  },
};
