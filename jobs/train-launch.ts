import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { list, num, type OptionSpec, type OptionValues, optStr } from '../common/cli.ts';
import { UserError } from '../common/errors.ts';
import { atomicWriteJson } from '../common/fs.ts';
import { sdtCli } from '../common/native.ts';
import { EXECUTOR_FLAGS } from './flags.ts';
import { isLive, sbatch, showJob, slurmPreflight } from './slurm.ts';

/**
 * `sdt train --executor slurm`: one sbatch script that srun's one rank per GPU (one CPU rank per node
 * without GPUs), the rendezvous taken from Slurm's variables, requeued on preemption. Every start of the
 * script (the first, and each requeue) resumes from the run's latest complete checkpoint when there is
 * one, so a preempted run continues exactly where its last checkpoint left it (the trainer checkpoints
 * on the SIGTERM Slurm sends first).
 */

const pick = (names: string[]): Record<string, OptionSpec> =>
  Object.fromEntries(names.map((n) => [n, EXECUTOR_FLAGS[n]]));

export const TRAIN_LAUNCH_FLAGS: Record<string, OptionSpec> = {
  executor: {
    type: 'string',
    description: 'run here, or submit an sbatch script that srun-s the ranks (see docs/scale-out.md)',
    choices: ['local', 'slurm'],
    default: 'local',
  },
  nodes: { type: 'number', min: 1, integer: true, arg: 'N', description: 'Slurm: nodes', default: 1 },
  'gpus-per-node': {
    type: 'number',
    min: 0,
    integer: true,
    arg: 'G',
    description: 'Slurm: GPUs per node, one rank each (0: one CPU rank per node)',
    default: 0,
  },
  ...pick(['partition', 'time', 'cpus-per-task', 'mem', 'sbatch-arg', 'detach', 'poll-seconds']),
};

export interface TrainLaunch {
  nodes: number;
  gpusPerNode: number;
  cpusPerTask: number;
  partition?: string;
  time?: string;
  mem?: string;
  sbatchArgs: string[];
  detach: boolean;
  pollSeconds: number;
}

export function trainLaunchOptions(opts: OptionValues): TrainLaunch | undefined {
  if (opts.executor !== 'slurm') return undefined;
  const whole = (flag: string, min: number): number => {
    const v = num(opts, flag);
    if (!Number.isInteger(v) || v < min)
      throw new UserError(`--${flag} must be a whole number >= ${min}; got ${v}.`);
    return v;
  };
  return {
    nodes: whole('nodes', 1),
    gpusPerNode: whole('gpus-per-node', 0),
    cpusPerTask: whole('cpus-per-task', 1),
    partition: optStr(opts, 'partition'),
    time: optStr(opts, 'time'),
    mem: optStr(opts, 'mem'),
    sbatchArgs: list(opts, 'sbatch-arg'),
    detach: Boolean(opts.detach),
    pollSeconds: num(opts, 'poll-seconds'),
  };
}

/** The sbatch script; `configFile` starts a fresh run, a complete checkpoint in `out` resumes it. */
export function trainScript(out: string, configFile: string, l: TrainLaunch, cwd: string): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const ranksPerNode = Math.max(1, l.gpusPerNode);
  return [
    '#!/bin/bash',
    '#SBATCH --job-name=sdt-train',
    `#SBATCH --nodes=${l.nodes}`,
    `#SBATCH --ntasks-per-node=${ranksPerNode}`,
    ...(l.gpusPerNode > 0 ? [`#SBATCH --gpus-per-node=${l.gpusPerNode}`] : []),
    `#SBATCH --cpus-per-task=${l.cpusPerTask}`,
    `#SBATCH --output=${join(out, 'slurm', 'train.job-%j.log')}`,
    '#SBATCH --open-mode=append',
    '#SBATCH --requeue',
    ...(l.partition ? [`#SBATCH --partition=${l.partition}`] : []),
    ...(l.time ? [`#SBATCH --time=${l.time}`] : []),
    ...(l.mem ? [`#SBATCH --mem=${l.mem}`] : []),
    ...l.sbatchArgs.map((a) => `#SBATCH ${a}`),
    '# Written by `sdt train --executor slurm`. Each start (the first, and every requeue after preemption)',
    '# resumes from the latest complete checkpoint when there is one.',
    'set -euo pipefail',
    `cd ${q(cwd)}`,
    `export SDT_NODE=${q(process.execPath)} SDT_JS=${q(sdtCli)}`,
    // The rendezvous contract the native trainer reads (docs/scale-out.md): rank 0's host and a port
    // derived from the job id; each rank's RANK/WORLD_SIZE/LOCAL_RANK come from srun's SLURM_* below.
    'export MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a bash parameter expansion
    'export MASTER_PORT="${MASTER_PORT:-$((20000 + SLURM_JOB_ID % 20000))}"',
    `if compgen -G ${q(join(out, 'checkpoints'))}'/step-*/COMPLETE' >/dev/null; then`,
    `  set -- train --resume ${q(out)}`,
    'else',
    `  set -- train --config ${q(configFile)} --out ${q(out)}`,
    'fi',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a bash parameter expansion
    'echo "sdt train: job $SLURM_JOB_ID start ${SLURM_RESTART_COUNT:-0} on $SLURM_JOB_NODELIST ($SLURM_NTASKS ranks): sdt $*"',
    // One rank per GPU, each on GPU LOCAL_RANK of its node; a rank that fails takes the others down
    // (a rank whose peer died would wait inside NCCL), and the requeue resumes every rank's part.
    `srun --kill-on-bad-exit=1 bash -c 'export RANK=$SLURM_PROCID WORLD_SIZE=$SLURM_NTASKS LOCAL_RANK=$SLURM_LOCALID; exec "$SDT_NODE" "$SDT_JS" "$@"${l.gpusPerNode > 0 ? ' --device cuda' : ''} --quiet' sdt-rank "$@"`,
    '',
  ].join('\n');
}

/**
 * Submits the training run and, unless detached, follows the job through requeues until it ends.
 * `cfg` is the resolved config (written for the first start); `resume` when the caller was given --resume.
 */
export async function launchTraining(
  cfg: { out: string },
  resume: boolean,
  l: TrainLaunch,
  say: (line: string) => void,
): Promise<number> {
  const world = l.nodes * Math.max(1, l.gpusPerNode);
  if (world > 1 && l.gpusPerNode === 0) {
    // Ranks sum their gradients through NCCL on GPUs; CPU ranks have no collective to do it with.
    throw new UserError(
      `--nodes ${l.nodes} --gpus-per-node 0 makes ${world} CPU ranks, but more than one rank needs GPUs (the gradients are summed by NCCL; sdt has no CPU collective). Ask for GPUs with --gpus-per-node G (one rank each, --device cuda), or train on CPU with --nodes 1.`,
    );
  }
  await slurmPreflight(l.partition);
  const out = resolve(cfg.out);
  const slurmDir = join(out, 'slurm');
  await mkdir(slurmDir, { recursive: true });
  const configFile = join(slurmDir, 'train-config.json');
  if (!resume) await atomicWriteJson(configFile, { ...cfg, out });
  const script = join(slurmDir, 'train.sbatch');
  await writeFile(script, trainScript(out, configFile, l, process.cwd()));
  const jobId = await sbatch(script, []);
  await appendFile(
    join(slurmDir, 'submissions.jsonl'),
    `${JSON.stringify({ at: new Date().toISOString(), executor: 'slurm', role: 'train', jobId, script })}\n`,
  );
  const log = join(slurmDir, `train.job-${jobId}.log`);
  say(`submitted job ${jobId}; log ${log}`);
  if (l.detach) return 0;
  let last = '';
  for (;;) {
    const j = (await showJob(jobId))?.[0];
    const state = j ? `${j.state}${j.reason && j.reason !== 'None' ? ` (${j.reason})` : ''}` : 'UNKNOWN';
    if (state !== last) say(`job ${jobId}: ${state}`);
    last = state;
    if (!j || !isLive(j.state)) {
      const summary = await readFile(join(out, 'summary.json'), 'utf8').then(JSON.parse, () => undefined);
      if (j?.state === 'COMPLETED' && summary?.status === 'complete') {
        say(`complete: ${summary.steps_done}/${summary.total_steps} steps; run directory ${out}`);
        return 0;
      }
      throw new UserError(
        `training job ${jobId} ended ${j ? `${j.state}, exit code ${j.exitCode}` : 'unknown to Slurm'}${summary ? ` (run ${summary.status} at step ${summary.steps_done})` : ''}; see ${log}. Resubmitting the same command resumes from the last checkpoint.`,
      );
    }
    await new Promise((r) => setTimeout(r, l.pollSeconds * 1000));
  }
}
