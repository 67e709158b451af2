import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type CommandSpec, list, num, optNum, optStr, str } from '../../common/cli.ts';
import { UserError } from '../../common/errors.ts';
import { atomicWriteFile } from '../../common/fs.ts';
import { COMMIT_ORDERS, type CommitOrder } from '../../schemas/engine.ts';
import { openSamplerClient } from '../generators/model.ts';
import { DEFAULT_DATA_DIR, REPO_ROOT } from '../paths.ts';
import { type GridSetting, gridSettings, runGrid } from '../report/grid.ts';
import {
  accuracyUnderParallelism,
  chooseQuality,
  type ParetoRow,
  paretoFront,
  paretoMarkdown,
  qualityOf,
  type SpeedAxis,
  speedOf,
} from '../report/pareto.ts';
import { paretoSvg } from '../report/svg.ts';
import { SUITES } from '../suites/index.ts';
import { selectTasks } from './eval.ts';

const numbers = (xs: string[], flag: string) =>
  xs.map((x) => {
    const v = Number(x);
    if (!Number.isFinite(v)) throw new UserError(`--${flag} expects numbers; got ${JSON.stringify(x)}.`);
    return v;
  });

/** Read rows written by an earlier run (rows.jsonl), checking the fields the report needs. */
async function readRows(path: string): Promise<ParetoRow[]> {
  const text = await readFile(path, 'utf8').catch(() => {
    throw new UserError(`--rows: cannot read ${path}.`);
  });
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l, i) => {
      let r: ParetoRow;
      try {
        r = JSON.parse(l) as ParetoRow;
      } catch {
        throw new UserError(`${path}:${i + 1}: not valid JSON.`);
      }
      if (
        typeof r.label !== 'string' ||
        typeof r.tokensPerSecond !== 'number' ||
        typeof r.pass1 !== 'number'
      ) {
        throw new UserError(`${path}:${i + 1}: a row needs label, tokensPerSecond and pass1.`);
      }
      return r;
    });
}

export const command: CommandSpec = {
  name: 'report pareto',
  summary:
    'speed against quality over a grid of sampler settings: markdown table and SVG with the Pareto front',
  description:
    'For a checkpoint, samples the suite once per setting (block sizes x thresholds, plus the AR baseline with ' +
    '--ar) and records tokens/s, forward passes per token, pass@1 and the syntax-valid rate (tree-sitter: no ' +
    'ERROR or MISSING node in prompt + completion). The quality axis is pass@1, or syntax validity when every ' +
    'pass@1 is near zero (--quality auto). With --rows it only renders rows from an earlier run.',
  options: {
    ckpt: { type: 'string', arg: 'DIR', description: 'checkpoint to sample from (unless --rows)' },
    rows: {
      type: 'list',
      arg: 'FILE',
      description:
        'rows.jsonl of earlier runs: rendered together (repeatable; with --ckpt, added to the new rows)',
    },
    label: { type: 'string', description: 'put before every new row label (e.g. "student ")', default: '' },
    fixed: {
      type: 'list',
      arg: 'K,...',
      description: 'also the fixed rule at K tokens per step, for every block size',
      default: [],
    },
    x: {
      type: 'string',
      description: 'speed axis: tokens/s, or tokens per forward pass',
      choices: ['speed', 'parallelism'],
      default: 'speed',
    },
    variant: { type: 'string', description: 'suite variant [default: test for synth]' },
    suite: { type: 'string', description: 'benchmark', choices: Object.keys(SUITES), default: 'humaneval' },
    data: { type: 'string', arg: 'DIR', description: 'benchmark data folder', default: DEFAULT_DATA_DIR },
    blocks: { type: 'list', arg: 'N,...', description: 'block sizes', default: ['4', '8', '16', '32'] },
    thresholds: {
      type: 'list',
      arg: 'P,...',
      description: 'commit thresholds',
      default: ['0.5', '0.7', '0.9'],
    },
    orders: {
      type: 'list',
      arg: 'ORDER,...',
      description: 'commit orders of the threshold rule, each at every block and threshold (docs/sample.md)',
      choices: COMMIT_ORDERS,
      default: ['confidence'],
    },
    'error-budgets': {
      type: 'list',
      arg: 'E,...',
      description:
        'error budgets of the threshold rule (docs/sample.md), each at every block, order and threshold; 0 = none',
      default: ['0'],
    },
    ar: {
      type: 'boolean',
      description: "add AR decoding of --ckpt (one token per pass, the checkpoint's own)",
    },
    'ar-ckpt': {
      type: 'string',
      arg: 'DIR',
      description: 'add the AR baseline: this causal checkpoint, decoded token by token',
    },
    'max-new': {
      type: 'number',
      min: 1,
      integer: true,
      arg: 'N',
      description: 'tokens to generate at most',
      default: 256,
    },
    limit: { type: 'number', min: 1, integer: true, arg: 'N', description: 'tasks per setting', default: 40 },
    'val-loss': {
      type: 'number',
      min: 0,
      arg: 'X',
      description: "the checkpoint's validation loss, shown in the table",
    },
    quality: {
      type: 'string',
      description: 'quality axis',
      choices: ['auto', 'pass1', 'syntax'],
      default: 'auto',
    },
    concurrency: {
      type: 'number',
      min: 1,
      integer: true,
      arg: 'N',
      description: 'candidates executed in parallel',
      default: 2,
    },
    out: {
      type: 'string',
      output: 'dir',
      arg: 'DIR',
      description: 'output folder (default runs/report/pareto-<time>)',
    },
  },
  examples: [
    'sdt report pareto --ckpt runs/ckpt --blocks 8,16,32 --thresholds 0.7,0.9 --ar --limit 40',
    'sdt report pareto --rows runs/report/pareto-x/rows.jsonl --out runs/report/again',
  ],
  async run(o) {
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const outDir = optStr(o, 'out') ?? join(REPO_ROOT, 'runs', 'report', `pareto-${stamp}`);
    const suite = str(o, 'suite');
    const rows: ParetoRow[] = [];
    for (const path of list(o, 'rows')) rows.push(...(await readRows(path)));
    const ckpt = optStr(o, 'ckpt');
    if (!ckpt && !optStr(o, 'ar-ckpt') && rows.length === 0)
      throw new UserError(
        'pass --ckpt DIR (or --ar-ckpt DIR) to run the grid, or --rows FILE to render earlier rows.',
      );
    const arCkpt = optStr(o, 'ar-ckpt');
    if (ckpt || arCkpt) {
      const variant = optStr(o, 'variant') ?? (suite === 'synth' ? 'test' : undefined);
      const tasks = selectTasks(
        await SUITES[suite].load({ dataDir: str(o, 'data'), variant }),
        [],
        optNum(o, 'limit'),
      );
      const grid = async (dir: string, settings: GridSetting[], labelPrefix: string) => {
        const client = await openSamplerClient(dir);
        try {
          return await runGrid({
            client,
            ckpt: dir,
            suite,
            tasks,
            settings,
            labelPrefix,
            base: { maxNew: num(o, 'max-new'), temperature: 0, topP: 1, seed: 0 },
            concurrency: num(o, 'concurrency'),
            valLoss: optNum(o, 'val-loss') ?? null,
            outDir,
          });
        } finally {
          await client.close();
        }
      };
      const fresh: ParetoRow[] = [];
      if (ckpt) {
        const settings = gridSettings(
          numbers(list(o, 'blocks'), 'blocks'),
          numbers(list(o, 'thresholds'), 'thresholds'),
          Boolean(o.ar),
          numbers(list(o, 'fixed'), 'fixed'),
          list(o, 'orders') as CommitOrder[],
          numbers(list(o, 'error-budgets'), 'error-budgets'),
        );
        fresh.push(...(await grid(ckpt, settings, str(o, 'label'))));
      }
      // The AR baseline is its own causal checkpoint: AR decoding of a diffusion checkpoint is not it.
      if (arCkpt) fresh.push(...(await grid(arCkpt, gridSettings([], [], true), '')));
      await atomicWriteFile(
        join(outDir, 'rows.jsonl'),
        `${fresh.map((r) => JSON.stringify(r)).join('\n')}\n`,
      );
      rows.push(...fresh);
    }
    if (rows.length === 0) throw new UserError('no rows to report.');
    const quality = chooseQuality(rows, str(o, 'quality') as 'auto' | 'pass1' | 'syntax');
    const axis = str(o, 'x') as SpeedAxis;
    const md = paretoMarkdown(rows, quality, suite, axis);
    await atomicWriteFile(join(outDir, 'pareto.md'), md);
    await atomicWriteFile(
      join(outDir, 'pareto.svg'),
      paretoSvg(
        rows,
        quality,
        `${axis === 'speed' ? 'Speed' : 'Parallelism'} against quality (${suite})`,
        axis,
      ),
    );
    process.stdout.write(md);
    const front = paretoFront(rows.map((r) => ({ x: speedOf(r, axis), y: qualityOf(r, quality) })));
    process.stdout.write(
      `front: ${front.map((i) => rows[i].label).join(' -> ')}\naccuracy under parallelism: ${accuracyUnderParallelism(rows, quality).toFixed(3)}\nwritten to ${outDir}\n`,
    );
    return 0;
  },
};
