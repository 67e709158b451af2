/** `sdt train`: train a diffusion (or AR baseline) model with sdt-native, fed by corrupted batches. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { bool, type CommandSpec, num, type OptionValues, optStr, str } from '../../common/cli.ts';
import { UserError } from '../../common/errors.ts';
import { nativeBinary } from '../../common/native.ts';
import { launchTraining, TRAIN_LAUNCH_FLAGS, trainLaunchOptions } from '../../jobs/train-launch.ts';
import {
  applyFlags,
  configOptions,
  defaultConfig,
  explicitFlags,
  loadConfigFile,
  type TrainConfig,
  validateConfig,
} from '../config.ts';
import { loadTrainData } from '../data.ts';
import { dryRun, formatDryRun } from '../dry-run.ts';
import { partLayout } from '../feed-part.ts';
import { runLocalRanks } from '../local-ranks.ts';
import { hasCheckpoints } from '../resume.ts';
import { runTraining } from '../run.ts';

/** Flags that may change when a run is resumed: they do not change what is computed. */
const RESUMABLE_FLAGS = new Set(['threads', 'workers']);

async function resolveConfig(opts: OptionValues): Promise<{ cfg: TrainConfig; resume: boolean }> {
  const explicit = explicitFlags(opts);
  const resumeDir = optStr(opts, 'resume');
  if (resumeDir) {
    const path = join(resumeDir, 'config.json');
    if (!existsSync(path)) {
      throw new UserError(
        `--resume ${resumeDir}: ${path} not found; is this a run directory written by \`sdt train\`?`,
      );
    }
    if (optStr(opts, 'config'))
      throw new UserError("--resume uses the run's own config.json; drop --config.");
    const changed = [...explicit].filter((f) => !RESUMABLE_FLAGS.has(f));
    if (changed.length > 0) {
      throw new UserError(
        `--resume ${resumeDir}: ${changed.map((f) => `--${f}`).join(', ')} cannot change when resuming (the run's settings are in ${path}); only --threads and --workers can.`,
      );
    }
    const base = await loadConfigFile(path);
    const cfg = validateConfig(applyFlags(base, opts, explicit), 'flags');
    cfg.out = resumeDir;
    return { cfg, resume: true };
  }
  const file = optStr(opts, 'config');
  const base = file ? await loadConfigFile(file) : defaultConfig();
  return {
    cfg: validateConfig(applyFlags(base, opts, explicit), file ? `${file} + flags` : 'flags'),
    resume: false,
  };
}

export const command: CommandSpec = {
  name: 'train',
  summary: 'train a model: mask then edit curriculum (or an AR baseline) through sdt-native',
  description: `
Streams corrupted batches from the dataset (worker threads) into \`sdt-native train\`. The first
mask-fraction of the steps uses mask corruption, the rest mixes edit corruption in (edit-mix);
--objective ar trains the same architecture causally on next-token targets. Validation runs on the held-out
split: the ELBO in bits/token (mask objective, t stratified over U(0,1), weights 1/t) and the edit loss for
diffusion, the NLL for AR, next to the unigram entropy of the training data.
Writes RUN/config.json, RUN/checkpoints/, RUN/log.jsonl, RUN/log.csv, RUN/loss.svg, RUN/summary.json.
Ctrl-C checkpoints and stops; \`sdt train --resume RUN\` continues exactly where it stopped.
Settings come from the defaults, then --config FILE, then flags.`,
  options: {
    // Routed by bin/main.ts to posttrain/commands/train-stage.ts, whose --help lists the stage's options.
    stage: {
      type: 'string',
      arg: 'NAME',
      description:
        'post-training stage instead of pretraining: distill | onpolicy (sdt train --stage NAME --help)',
    },
    config: { type: 'string', arg: 'FILE', description: 'train config JSON (see data/configs/demo.json)' },
    device: {
      type: 'string',
      description: 'where sdt-native train runs the steps; cuda needs a CUDA build and a GPU',
      default: 'cpu',
      choices: ['cpu', 'cuda'],
    },
    resume: {
      type: 'string',
      arg: 'RUN_DIR',
      description: 'continue a stopped run from its latest checkpoint',
    },
    'dry-run': {
      type: 'boolean',
      description: 'print parameters, FLOPs per token, tokens and an estimated time (measured), then exit',
    },
    'stop-after': {
      type: 'number',
      min: 0,
      integer: true,
      arg: 'N',
      description: 'checkpoint and stop after N steps of this invocation (0: run to the end)',
      default: 0,
    },
    quiet: { type: 'boolean', description: 'no progress output' },
    gpus: {
      type: 'number',
      min: 1,
      integer: true,
      arg: 'N',
      description:
        'ranks on this machine, one per GPU, each with --device cuda (data parallel: each trains batch-size/N sequences of every step; docs/train.md); 1: one process as --device says',
      default: 1,
    },
    ...configOptions(),
    ...TRAIN_LAUNCH_FLAGS,
  },
  examples: [
    'sdt train --config data/configs/demo.json',
    'sdt train --model tiny --steps 50 --out runs/tiny --dry-run',
    'sdt train --objective ar --out runs/ar-baseline',
    'sdt train --resume runs/demo',
    'sdt train --config data/configs/demo.json --gpus 2',
    'sdt train --config data/configs/demo.json --executor slurm --partition gpu --nodes 2 --gpus-per-node 4 --time 12:00:00',
  ],
  conflicts: [['gpus', 'executor=slurm', 'a Slurm launch asks for --nodes and --gpus-per-node instead']],
  async run(opts) {
    const { cfg, resume } = await resolveConfig(opts);
    const quiet = bool(opts, 'quiet');
    const data = await loadTrainData(cfg.data.dataset, cfg.data.seq_len);
    if (bool(opts, 'dry-run')) {
      let bin: string | undefined;
      try {
        bin = nativeBinary();
      } catch {
        bin = undefined;
      }
      process.stdout.write(formatDryRun(cfg, await dryRun(cfg, data, bin)));
      return 0;
    }
    if (!resume && hasCheckpoints(cfg.out)) {
      throw new UserError(
        `${cfg.out} already holds checkpoints; continue it with \`sdt train --resume ${cfg.out}\` or choose another --out.`,
      );
    }
    const launch = trainLaunchOptions(opts);
    const say = (l: string): boolean => process.stderr.write(`train: ${l}\n`);
    // A batch the ranks cannot share is refused before anything is submitted or started.
    if (launch) {
      partLayout(cfg, launch.nodes * Math.max(1, launch.gpusPerNode));
      return launchTraining(cfg, resume, launch, say);
    }
    const gpus = num(opts, 'gpus');
    if (gpus > 1) {
      partLayout(cfg, gpus);
      const extraArgs = ['--stop-after', String(num(opts, 'stop-after')), ...(quiet ? ['--quiet'] : [])];
      return runLocalRanks(cfg, resume, { gpus, extraArgs, graceSeconds: 30 }, say);
    }
    const summary = await runTraining({
      cfg,
      data,
      runDir: cfg.out,
      nativeBin: nativeBinary(),
      resume,
      stopAfterSteps: num(opts, 'stop-after'),
      quiet,
      device: str(opts, 'device') === 'cuda' ? 'cuda' : 'cpu',
    });
    const val = Object.entries(summary.final_validation)
      .map(([g, v]) => `${g} ${v.toFixed(3)}`)
      .join(', ');
    process.stdout.write(
      `${summary.status}: ${summary.steps_done}/${summary.total_steps} steps, ${summary.tokens_seen} tokens in ${summary.elapsed_s.toFixed(1)} s; ` +
        `validation bits/token: ${val || 'none'} (unigram: entropy ${summary.unigram_entropy_bits.toFixed(3)}, on validation ${summary.unigram_validation_xent_bits.toFixed(3)}); run directory ${cfg.out}\n`,
    );
    if (summary.status === 'stopped') process.stdout.write(`continue with: sdt train --resume ${cfg.out}\n`);
    return 0;
  },
};
