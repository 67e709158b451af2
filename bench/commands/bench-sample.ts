/** `sdt bench sample`: flags and wiring; the work is in bench/sample.ts. */
import { join } from 'node:path';
import { type CommandSpec, list, num, optNum, optStr, str } from '../../common/cli.ts';
import { UserError } from '../../common/errors.ts';
import { atomicWriteFile, atomicWriteJson } from '../../common/fs.ts';
import { Progress } from '../../common/progress.ts';
import { EngineClient, type EngineOptions } from '../../engine/client.ts';
import { DEFAULT_DATA_DIR } from '../../eval/paths.ts';
import { SandboxPool } from '../../eval/sandbox/pool.ts';
import { DEFAULT_LIMITS } from '../../eval/sandbox/types.ts';
import type { EvalTask } from '../../eval/suites/types.ts';
import { COMMIT_ORDERS, type CommitOrder, type SampleSettings } from '../../schemas/engine.ts';
import {
  type BenchRow,
  chartSvg,
  foldRuns,
  generativeNll,
  heldOutHeaders,
  type Kept,
  type Measured,
  type ModelInfo,
  measure,
  median,
  modelInfo,
  passRate,
  suitePromptsFor,
  validationLoss,
} from '../sample.ts';

/**
 * The batch-1 row of the same model and setting: a larger batch decodes each prompt as it does alone
 * (tested natively), so it takes that row's scores.
 */
function aloneTwin(rows: BenchRow[], row: BenchRow): BenchRow | undefined {
  return rows.find(
    (r) =>
      r.batch === 1 &&
      r.model === row.model &&
      r.block === row.block &&
      r.threshold === row.threshold &&
      r.order === row.order &&
      (r.errorBudget ?? 0) === (row.errorBudget ?? 0),
  );
}

/**
 * A diffusion row's tokens/s over the AR row's: with several repetitions, the median of the ratios of the runs
 * made in the same repetition, and their range.
 */
export function pairedRatio(row: BenchRow, ar: BenchRow): string {
  const d = row.runs ?? [row.tokensPerSecond];
  const a = ar.runs ?? [ar.tokensPerSecond];
  if (d.length < 2 || d.length !== a.length)
    return `${(row.tokensPerSecond / ar.tokensPerSecond).toFixed(2)}x`;
  const ratios = d.map((x, i) => x / a[i]);
  return `${median(ratios).toFixed(2)}x (median of ${ratios.length} paired runs, ${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}x)`;
}

function table(rows: BenchRow[]): string {
  const head = [
    'model',
    'block',
    'tau',
    'order',
    'budget',
    'batch',
    'tok/s',
    'ms/tok',
    'passes/req',
    'tok/pass',
    'latency ms',
    'parse ok',
    'pass@1',
    'AR bits/tok',
    'val loss',
  ];
  const body = rows.map((r) => [
    r.model,
    r.block ?? '-',
    r.threshold ?? '-',
    r.order ?? '-',
    r.errorBudget || '-',
    r.batch,
    r.tokensPerSecond.toFixed(1),
    r.msPerToken.toFixed(2),
    r.forwardPassesPerRequest.toFixed(1),
    r.tokensPerForwardPass.toFixed(2),
    r.latencyMs.toFixed(0),
    `${(100 * r.parseOk).toFixed(0)}%`,
    r.pass1 == null ? '-' : `${(100 * r.pass1).toFixed(1)}%`,
    r.genNll == null ? '-' : r.genNll.toFixed(2),
    r.valLoss == null ? 'unknown' : r.valLoss.toFixed(3),
  ]);
  const all = [head, ...body].map((r) => r.map(String));
  const w = head.map((_, j) => Math.max(...all.map((r) => r[j].length)));
  return all.map((r) => r.map((c, j) => c.padStart(w[j])).join('  ')).join('\n');
}

function describeFamily(d: ModelInfo, a: ModelInfo): string {
  const same = (x: unknown, y: unknown) =>
    x == null || y == null ? 'unknown' : x === y ? 'same' : 'DIFFERENT';
  return [
    `diffusion: ${d.source} (${d.attention}, ${d.params.toLocaleString()} params, tokens seen ${d.tokensSeen ?? 'unknown'})`,
    `AR:        ${a.source} (${a.attention}, ${a.params.toLocaleString()} params, tokens seen ${a.tokensSeen ?? 'unknown'})`,
    `same size: ${same(d.params, a.params)}; same training tokens: ${same(d.tokensSeen, a.tokensSeen)}; same data: ${same(d.dataset, a.dataset)}`,
  ].join('\n');
}

export const command: CommandSpec = {
  name: 'bench sample',
  summary: 'sampler speed vs block size and threshold, AR baseline',
  description: `
Runs the diffusion checkpoint at every block size and threshold, and the causal AR checkpoint of the same
family, at batch 1 and --batch, on held-out function headers of the default corpus (python stdlib test
folders), or with --suite on a suite's tasks, whose completions then also run their tests (pass@1, after
the timed runs). Prints a table, writes OUT/bench-sample.json and OUT/bench-sample.svg (block size against time per
generated token). Random-weight models (--random-init) measure speed only: their quality column is noise.`,
  options: {
    ckpt: { type: 'string', description: 'diffusion checkpoint (block or bidirectional)', arg: 'DIR' },
    'ar-ckpt': { type: 'string', description: 'causal AR checkpoint of the same size and data', arg: 'DIR' },
    blocks: { type: 'list', description: 'block sizes', default: ['4', '8', '16', '32', '64'] },
    thresholds: { type: 'list', description: 'confidence thresholds', default: ['0.7', '0.9'] },
    orders: {
      type: 'list',
      description: 'commit orders of the threshold rule, each at every block and threshold (docs/sample.md)',
      choices: COMMIT_ORDERS,
      default: ['confidence'],
    },
    'error-budgets': {
      type: 'list',
      description:
        'error budgets of the threshold rule (docs/sample.md), each at every block, order and threshold; 0 = none',
      default: ['0'],
    },
    batch: {
      type: 'number',
      min: 1,
      integer: true,
      description: 'the larger batch (batch 1 always runs)',
      default: 8,
    },
    prompts: {
      type: 'number',
      min: 1,
      integer: true,
      description: 'prompts to complete (held-out headers, or the first tasks of --suite)',
      default: 16,
    },
    suite: {
      type: 'string',
      description:
        'take prompts from a suite with tests and report pass@1 (e.g. synth); default: stdlib headers',
      arg: 'NAME',
    },
    'data-dir': { type: 'string', description: 'data of --suite', default: DEFAULT_DATA_DIR, arg: 'DIR' },
    variant: { type: 'string', description: '--suite variant [default: test for synth]' },
    'max-new': {
      type: 'number',
      min: 1,
      integer: true,
      description: 'tokens to generate per prompt',
      default: 64,
    },
    'val-loss': {
      type: 'number',
      min: 0,
      description: 'validation loss of --ckpt [default: its eval in RUN/log.jsonl, when there]',
    },
    'ar-val-loss': {
      type: 'number',
      min: 0,
      description: 'validation loss of --ar-ckpt [default: its eval in RUN/log.jsonl, when there]',
    },
    out: {
      type: 'string',
      output: 'dir',
      description: 'output directory',
      default: 'runs/bench',
      arg: 'DIR',
    },
    'random-init': {
      type: 'number',
      min: 0,
      integer: true,
      description: 'speed only: random models of --config / --ar-config',
      arg: 'SEED',
    },
    config: { type: 'string', description: 'config.json of the random diffusion model', arg: 'FILE' },
    'ar-config': { type: 'string', description: 'config.json of the random AR model', arg: 'FILE' },
    tokenizer: { type: 'string', description: 'tokenizer.json [default: CKPT/tokenizer.json]', arg: 'FILE' },
    repeat: {
      type: 'number',
      min: 1,
      integer: true,
      description:
        'timed runs of every row, each repetition running all rows and then AR; tok/s is the median, and the ratio to AR the median of the ratios within a repetition',
      default: 1,
      arg: 'N',
    },
    threads: {
      type: 'number',
      min: 1,
      integer: true,
      description:
        'OpenMP/OpenBLAS threads of sdt-native (spinning threads on a busy machine cost far more than they give)',
      default: 1,
      arg: 'N',
    },
  },
  examples: [
    'sdt bench sample --ckpt runs/block/checkpoints/step-002000 --ar-ckpt runs/ar/checkpoints/step-002000',
    'npm run bench:sample -- --ckpt CKPT --ar-ckpt AR_CKPT --blocks 8,32 --thresholds 0.9',
  ],
  async run(o) {
    const seed = optNum(o, 'random-init');
    let dOpts: EngineOptions;
    let aOpts: EngineOptions;
    const tokenizer = optStr(o, 'tokenizer');
    if (seed !== undefined) {
      if (!optStr(o, 'config') || !optStr(o, 'ar-config')) {
        throw new UserError('bench sample: --random-init needs --config and --ar-config.');
      }
      if (!tokenizer) throw new UserError('bench sample: --random-init needs --tokenizer FILE.');
      dOpts = { randomInit: { seed, config: str(o, 'config') }, tokenizer };
      aOpts = { randomInit: { seed, config: str(o, 'ar-config') }, tokenizer };
    } else {
      if (!optStr(o, 'ckpt') || !optStr(o, 'ar-ckpt')) {
        throw new UserError(
          'bench sample: --ckpt DIR and --ar-ckpt DIR are required (or --random-init for speed only).',
        );
      }
      dOpts = { ckpt: str(o, 'ckpt'), tokenizer };
      aOpts = { ckpt: str(o, 'ar-ckpt'), tokenizer };
    }
    const blocks = list(o, 'blocks').map(Number);
    const thresholds = list(o, 'thresholds').map(Number);
    const orders = list(o, 'orders') as CommitOrder[];
    const budgets = list(o, 'error-budgets').map(Number);
    for (const [flag, vals] of [
      ['--blocks', blocks],
      ['--thresholds', thresholds],
      ['--error-budgets', budgets],
    ] as const) {
      if (vals.some((v) => !Number.isFinite(v)))
        throw new UserError(`bench sample: ${flag} must be numbers.`);
    }
    if (budgets.some((v) => v < 0))
      throw new UserError('bench sample: --error-budgets must be >= 0 (0 = none).');
    const threads = String(num(o, 'threads'));
    const env = { OMP_NUM_THREADS: threads, OPENBLAS_NUM_THREADS: threads };
    dOpts.env = env;
    aOpts.env = env;
    const batch = num(o, 'batch');
    const maxNew = num(o, 'max-new');
    const batches = batch > 1 ? [1, batch] : [1];
    const dValLoss = optNum(o, 'val-loss') ?? validationLoss(dOpts.ckpt, ['elbo']);

    const repeat = num(o, 'repeat');
    type Setting = Pick<BenchRow, 'model' | 'block' | 'threshold' | 'order' | 'errorBudget' | 'valLoss'>;
    const grid: { setting: Setting; sample: SampleSettings }[] = [];
    for (const block of blocks)
      for (const order of orders)
        for (const errorBudget of budgets)
          for (const threshold of thresholds)
            grid.push({
              setting: { model: 'diffusion', block, threshold, order, errorBudget, valLoss: dValLoss },
              sample: { maxNew, block, threshold, order, ...(errorBudget > 0 ? { errorBudget } : {}) },
            });
    const arValLoss = optNum(o, 'ar-val-loss') ?? validationLoss(aOpts.ckpt, ['nll', 'ar', 'causal', 'elbo']);
    grid.push({
      setting: { model: 'ar', block: null, threshold: null, order: null, valLoss: arValLoss },
      sample: { mode: 'ar', maxNew },
    });

    const rows: BenchRow[] = [];
    // Batch 1 completions of each row, scored by the AR checkpoint once it is known; larger batches take
    // their scores from these rows (aloneTwin).
    const samples = new Map<BenchRow, Kept[]>();
    const progress = new Progress({
      label: 'bench sample',
      total: repeat * batches.length * grid.length,
      unit: 'runs',
    });
    // Both engines stay up, so that every repetition times each diffusion row and the AR row next to each
    // other: a machine that runs slower for a while then slows both sides of a ratio.
    const diffusion = await EngineClient.start(dOpts);
    let ar: EngineClient | undefined;
    let dInfo: ModelInfo;
    let aInfo: ModelInfo;
    let prompts: string[] = [];
    let promptTokens = 0;
    let tasks: EvalTask[] | undefined;
    const suite = optStr(o, 'suite');
    try {
      ar = await EngineClient.start(aOpts);
      dInfo = await modelInfo(dOpts, diffusion.info.attention_mode);
      aInfo = await modelInfo(aOpts, ar.info.attention_mode);
      if (ar.info.attention_mode !== 'causal') {
        process.stderr.write(`warning: --ar-ckpt is a ${ar.info.attention_mode} checkpoint, not causal\n`);
      }
      const tok = diffusion.requireTokenizer();
      if (suite) {
        ({ tasks, prompts } = await suitePromptsFor(
          suite,
          str(o, 'data-dir'),
          optStr(o, 'variant'),
          num(o, 'prompts'),
        ));
        promptTokens = prompts.reduce((n, p) => n + tok.encode(p).length, 0) / Math.max(1, prompts.length);
      } else {
        ({ headers: prompts, tokens: promptTokens } = await heldOutHeaders(num(o, 'prompts'), (t) =>
          tok.encode(t),
        ));
      }
      if (prompts.length === 0) {
        throw new UserError('bench sample: found no held-out function headers in the corpus.');
      }
      const engineOf = (g: (typeof grid)[number]) => (g.setting.model === 'ar' ? ar! : diffusion);
      // Warm-up at the first setting over a few prompts: with only a short one, the first measured
      // setting ran up to 1.7x slower per forward pass than the same setting measured later in the run.
      await measure(diffusion, prompts.slice(0, 16), grid[0].sample, 1);
      await measure(ar, prompts.slice(0, 16), { mode: 'ar', maxNew }, 1);
      const runs = new Map<string, Measured[]>();
      const kept = new Map<string, Kept[]>();
      for (let rep = 0; rep < repeat; rep++)
        for (const b of batches)
          for (const [k, g] of grid.entries()) {
            const key = `${b}/${k}`;
            if (rep === 0) {
              kept.set(key, []);
              runs.set(key, []);
            }
            const m = await measure(engineOf(g), prompts, g.sample, b, rep === 0 ? kept.get(key) : undefined);
            runs.get(key)!.push(m);
            progress.tick();
          }
      for (const b of batches)
        for (const [k, g] of grid.entries()) {
          const key = `${b}/${k}`;
          const row: BenchRow = { ...g.setting, genNll: null, pass1: null, ...foldRuns(runs.get(key)!) };
          rows.push(row);
          if (b === 1) samples.set(row, kept.get(key)!);
        }
      progress.done();
      // The AR checkpoint's own engine scores every kept completion (one engine per checkpoint).
      if (aOpts.ckpt && ar.info.attention_mode === 'causal') {
        const encode = ar.requireTokenizer().encode.bind(ar.requireTokenizer());
        for (const [row, completions] of samples) {
          const ids = completions.map((c) => ({ prompt: encode(c.prompt), tokens: c.tokens }));
          row.genNll = await generativeNll(ids, ar);
        }
        for (const row of rows.filter((r) => r.batch !== 1))
          row.genNll = aloneTwin(rows, row)?.genNll ?? null;
      }
    } finally {
      await diffusion.close();
      await ar?.close();
    }

    if (tasks) {
      // Tests run after timing, so the sandbox never competes with the sampler for the cores.
      const pool = new SandboxPool({ concurrency: 2, limits: DEFAULT_LIMITS });
      const testing = new Progress({
        label: 'bench sample tests',
        total: [...samples.values()].reduce((n, kept) => n + kept.length, 0),
        unit: 'programs',
      });
      for (const [row, kept] of samples) row.pass1 = await passRate(tasks, kept, pool, () => testing.tick());
      testing.done();
      for (const row of rows.filter((r) => r.batch !== 1)) row.pass1 = aloneTwin(rows, row)?.pass1 ?? null;
    }
    const family = describeFamily(dInfo, aInfo);
    const arBest = rows.filter((r) => r.model === 'ar' && r.batch === 1)[0];
    const out = str(o, 'out');
    const report = {
      machine: {
        cpus: (await import('node:os')).cpus().length,
        platform: process.platform,
        threads: Number(threads),
      },
      family: { diffusion: dInfo, ar: aInfo, note: family },
      prompts: prompts.length,
      promptTokens,
      maxNew,
      rows,
    };
    await atomicWriteJson(join(out, 'bench-sample.json'), report);
    await atomicWriteFile(join(out, 'bench-sample.svg'), chartSvg(rows));
    process.stdout.write(
      `${family}\n${prompts.length} ${suite ? `${suite} tasks (prompts of ${promptTokens.toFixed(1)} tokens on average)` : `held-out function headers of ${promptTokens} tokens`}, up to ${maxNew} new tokens each; ${threads} native thread(s)\n\n`,
    );
    process.stdout.write(`${table(rows)}\n\n`);
    if (arBest) {
      for (const r of rows.filter((x) => x.model === 'diffusion' && x.batch === 1)) {
        process.stdout.write(
          `block ${r.block} tau ${r.threshold}${r.order === 'confidence' ? '' : ` ${r.order}`}${r.errorBudget ? ` budget ${r.errorBudget}` : ''}: ${pairedRatio(r, arBest)} AR tokens/s (batch 1), ${r.tokensPerForwardPass.toFixed(2)} tokens/pass` +
            (r.pass1 != null && arBest.pass1 != null
              ? `, pass@1 ${(100 * r.pass1).toFixed(1)}% (AR ${(100 * arBest.pass1).toFixed(1)}%)`
              : '') +
            '\n',
        );
      }
    }
    process.stdout.write(`wrote ${join(out, 'bench-sample.json')} and ${join(out, 'bench-sample.svg')}\n`);
    return 0;
  },
};
