import { bool, list, num, type OptionSpec, type OptionValues, optNum, optStr, str } from '../common/cli.ts';
import { UserError } from '../common/errors.ts';

/** How a distributed command runs its tasks; the flags every such command shares. */
export interface ExecutorOptions {
  executor: 'local' | 'slurm';
  tasks: number;
  runDir: string;
  partition?: string;
  time?: string;
  cpusPerTask: number;
  mem?: string;
  /** At most this many tasks at once (Slurm: the array's %N; local: child processes). */
  maxParallel?: number;
  sbatchArgs: string[];
  retries: number;
  detach: boolean;
  pollSeconds: number;
  quiet: boolean;
}

export const EXECUTOR_FLAGS: Record<string, OptionSpec> = {
  executor: {
    type: 'string',
    description: 'where tasks run: this machine, or a Slurm array job plus a dependent merge job',
    choices: ['local', 'slurm'],
    default: 'local',
  },
  tasks: {
    type: 'number',
    min: 1,
    integer: true,
    arg: 'N',
    description: 'parts the input is cut into, one task each (local with 1: a single in-process run)',
    default: 1,
  },
  'run-dir': {
    type: 'string',
    output: 'dir',
    arg: 'DIR',
    description: 'where tasks record completions, parts, logs and submissions [default: OUT.run]',
  },
  partition: { type: 'string', arg: 'NAME', description: 'Slurm partition [default: the cluster default]' },
  time: { type: 'string', arg: 'D-HH:MM:SS', description: 'Slurm time limit per task' },
  'cpus-per-task': {
    type: 'number',
    min: 1,
    integer: true,
    arg: 'N',
    description: 'CPUs per task (the task runs this many worker threads)',
    default: 1,
  },
  mem: { type: 'string', arg: 'SIZE', description: 'Slurm memory per task, e.g. 4G' },
  'max-parallel': {
    type: 'number',
    min: 1,
    integer: true,
    arg: 'N',
    description: 'tasks running at once at most [default: no limit on Slurm, 1 locally]',
  },
  'sbatch-arg': {
    type: 'list',
    arg: 'ARG',
    description: 'extra sbatch option, written into the script (repeatable), e.g. --sbatch-arg=--account=ml',
  },
  retries: {
    type: 'number',
    min: 0,
    integer: true,
    arg: 'N',
    description: 'resubmit a failed or cancelled task up to N times',
    default: 0,
  },
  detach: { type: 'boolean', description: 'submit and return; follow with `sdt jobs status RUN_DIR`' },
  'poll-seconds': {
    type: 'number',
    min: 0,
    minExclusive: true,
    arg: 'S',
    description: 'how often the queue is read while waiting',
    default: 2,
  },
};

const positiveInt = (v: number, flag: string, min = 1): number => {
  if (!Number.isInteger(v) || v < min)
    throw new UserError(`--${flag} must be a whole number >= ${min}; got ${v}.`);
  return v;
};

export function executorOptions(opts: OptionValues, defaultRunDir: string): ExecutorOptions {
  const maxParallel = optNum(opts, 'max-parallel');
  const poll = num(opts, 'poll-seconds');
  if (!(poll > 0)) throw new UserError(`--poll-seconds must be positive; got ${poll}.`);
  return {
    executor: str(opts, 'executor') as 'local' | 'slurm',
    tasks: positiveInt(num(opts, 'tasks'), 'tasks'),
    runDir: optStr(opts, 'run-dir') ?? defaultRunDir,
    partition: optStr(opts, 'partition'),
    time: optStr(opts, 'time'),
    cpusPerTask: positiveInt(num(opts, 'cpus-per-task'), 'cpus-per-task'),
    mem: optStr(opts, 'mem'),
    maxParallel: maxParallel === undefined ? undefined : positiveInt(maxParallel, 'max-parallel'),
    sbatchArgs: list(opts, 'sbatch-arg'),
    retries: positiveInt(num(opts, 'retries'), 'retries', 0),
    detach: bool(opts, 'detach'),
    pollSeconds: poll,
    quiet: bool(opts, 'quiet'),
  };
}

/** Whether the command goes through an executor (else it runs in process as before). */
export function isDistributed(e: ExecutorOptions, runDirGiven: boolean): boolean {
  return e.executor === 'slurm' || e.tasks > 1 || runDirGiven;
}
