import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { UserError } from '../common/errors.ts';

/** Slurm's client commands, run with the caller's environment (SLURM_CONF picks the cluster). */

export class SlurmError extends UserError {
  override name = 'SlurmError';
  constructor(
    readonly code: 'slurm-not-found' | 'slurm-unreachable' | 'slurm-partition' | 'slurm-submit',
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

const CLIENTS = ['sbatch', 'squeue', 'scontrol', 'scancel', 'sinfo'] as const;

export function findOnPath(name: string, path = process.env.PATH ?? ''): string | undefined {
  for (const d of path.split(delimiter)) {
    if (!d) continue;
    try {
      accessSync(join(d, name), constants.X_OK);
      return join(d, name);
    } catch {}
  }
  return undefined;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export function runClient(cmd: string, args: string[], timeoutMs = 30_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({
        code,
        stdout: String(stdout),
        stderr: String(stderr) || (err && !stdout ? err.message : ''),
      });
    });
  });
}

/**
 * What can fail before anything is submitted: the client commands on PATH, the controller answering, the
 * partition existing. Each is a named error; nothing is written before these pass.
 */
export async function slurmPreflight(partition: string | undefined): Promise<void> {
  const missing = CLIENTS.filter((c) => !findOnPath(c));
  if (missing.length) {
    throw new SlurmError(
      'slurm-not-found',
      `${missing.join(', ')} not found on PATH; run from a Slurm login node, install Slurm's client commands (Debian: slurm-client), or use --executor local.`,
    );
  }
  const ping = await runClient('scontrol', ['ping'], 60_000);
  if (ping.code !== 0 || !/\bUP\b/.test(ping.stdout)) {
    const said = `${ping.stdout} ${ping.stderr}`.trim().replace(/\s+/g, ' ');
    throw new SlurmError(
      'slurm-unreachable',
      `the Slurm controller does not answer (scontrol ping: ${said || `exit ${ping.code}`}); check SLURM_CONF${process.env.SLURM_CONF ? `=${process.env.SLURM_CONF}` : ''} and that slurmctld runs.`,
    );
  }
  if (partition !== undefined) {
    const show = await runClient('scontrol', ['show', 'partition', '-o', partition]);
    if (show.code !== 0 || !show.stdout.includes(`PartitionName=${partition}`)) {
      const all = await runClient('sinfo', ['-h', '-o', '%R']);
      const names = [...new Set(all.stdout.split('\n').filter(Boolean))].join(', ');
      throw new SlurmError(
        'slurm-partition',
        `--partition ${partition} does not exist on this cluster; its partitions: ${names || 'none listed'}.`,
      );
    }
  }
}

/** sbatch --parsable; returns the job id. */
export async function sbatch(script: string, args: string[]): Promise<string> {
  const r = await runClient('sbatch', ['--parsable', ...args, script], 60_000);
  const id = r.stdout.trim().split(';')[0];
  if (r.code !== 0 || !/^\d+$/.test(id)) {
    throw new SlurmError(
      'slurm-submit',
      `sbatch ${[...args, script].join(' ')} failed: ${r.stderr.trim() || r.stdout.trim()}`,
    );
  }
  return id;
}

export async function scancel(ids: string[]): Promise<void> {
  if (ids.length) await runClient('scancel', ids);
}

/** One job, or one element (or a pending range of elements) of an array job, as scontrol shows it. */
export interface SlurmJob {
  jobId: string;
  arrayJobId?: string;
  /** The array elements this record covers (pending elements are shown as one record). */
  ranks: number[];
  state: string;
  /** "exit:signal", e.g. 0:15 for a task ended by SIGTERM. */
  exitCode: string;
  reason: string;
  log: string;
}

/** "0-3%2", "1,3,5-6" -> [0,1,2,3] ... */
export function parseArrayIds(spec: string): number[] {
  const out: number[] = [];
  for (const part of spec.replace(/%\d+$/, '').split(',')) {
    const m = /^(\d+)(?:-(\d+))?(?::(\d+))?$/.exec(part);
    if (!m) continue;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    const step = m[3] === undefined ? 1 : Number(m[3]);
    for (let i = a; i <= b; i += step) out.push(i);
  }
  return out;
}

function field(line: string, name: string): string {
  const m = new RegExp(`(?:^|\\s)${name}=(\\S*)`).exec(line);
  return m ? m[1] : '';
}

export function parseScontrolJobs(text: string): SlurmJob[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('JobId='))
    .map((l) => {
      const arrayTask = field(l, 'ArrayTaskId');
      return {
        jobId: field(l, 'JobId'),
        arrayJobId: field(l, 'ArrayJobId') || undefined,
        ranks: arrayTask ? parseArrayIds(arrayTask) : [],
        state: field(l, 'JobState'),
        exitCode: field(l, 'ExitCode'),
        reason: field(l, 'Reason'),
        log: field(l, 'StdOut'),
      };
    });
}

/** The records of a job (every element of an array job); undefined when Slurm no longer knows it. */
export async function showJob(jobId: string): Promise<SlurmJob[] | undefined> {
  const r = await runClient('scontrol', ['show', 'job', '-o', jobId]);
  if (r.code !== 0) {
    if (/invalid job id/i.test(r.stderr)) return undefined;
    throw new SlurmError(
      'slurm-unreachable',
      `scontrol show job ${jobId} failed (${r.stderr.trim() || `exit ${r.code}`}); check SLURM_CONF and that slurmctld runs.`,
    );
  }
  const jobs = parseScontrolJobs(r.stdout);
  return jobs.length ? jobs : undefined;
}

const WAITING = new Set([
  'PENDING',
  'CONFIGURING',
  'REQUEUED',
  'REQUEUE_HOLD',
  'REQUEUE_FED',
  'RESV_DEL_HOLD',
  'SUSPENDED',
]);
const RUNNING = new Set(['RUNNING', 'COMPLETING', 'STAGE_OUT', 'SIGNALING', 'RESIZING']);

export function isWaiting(state: string): boolean {
  return WAITING.has(state);
}
export function isRunning(state: string): boolean {
  return RUNNING.has(state);
}
export function isLive(state: string): boolean {
  return WAITING.has(state) || RUNNING.has(state);
}
