import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { UserError } from '../common/errors.ts';
import { sdtCli } from '../common/native.ts';
import type { ExecutorOptions } from './flags.ts';
import { jobKind } from './kinds.ts';
import { MERGE, RunDir, type RunRecord, type RunSpec, type Submission } from './run-dir.ts';
import {
  isLive,
  isRunning,
  isWaiting,
  type SlurmJob,
  sbatch,
  scancel,
  showJob,
  slurmPreflight,
} from './slurm.ts';

/**
 * Executors own a distributed command's parallelism and its completion markers: they run every task
 * (rank 0..tasks-1) that has no marker yet, then the merge, and retry what failed. Tasks and the merge run
 * `sdt jobs task RUN_DIR`, which does the kind's work (jobs/kinds.ts) and writes the marker last. The
 * local executor runs them as child processes here; the Slurm executor submits one array job for the
 * tasks and a merge job that depends on it (afterok).
 */

export type TaskState =
  | { kind: 'done' }
  | { kind: 'unsubmitted' }
  | { kind: 'pending' | 'running'; job: string }
  | { kind: 'failed'; job: string; state: string; exitCode: string; log: string };

export interface RunStatus {
  ranks: TaskState[];
  /** Submissions that included each rank. */
  attempts: number[];
  merge: TaskState;
  mergeAttempts: number;
}

const logFor = (run: RunDir, s: Submission, rank: number | typeof MERGE): string =>
  s.executor === 'slurm'
    ? run.path('logs', rank === MERGE ? `merge.job-${s.jobId}.log` : `task-${rank}.job-${s.jobId}.log`)
    : run.path('logs', rank === MERGE ? `merge.local-${s.jobId}.log` : `task-${rank}.local-${s.jobId}.log`);

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** What each task and the merge are doing, from the markers, the submissions and Slurm's queue. */
export async function runStatus(run: RunDir, record: RunRecord): Promise<RunStatus> {
  const subs = await run.submissions();
  const cache = new Map<string, Promise<SlurmJob[] | undefined>>();
  const jobs = (id: string) => {
    if (!cache.has(id)) cache.set(id, showJob(id));
    return cache.get(id)!;
  };
  const stateOf = async (s: Submission, rank: number | typeof MERGE): Promise<TaskState> => {
    const log = logFor(run, s, rank);
    if (s.executor === 'local') {
      return pidAlive(Number(s.jobId))
        ? { kind: 'running', job: `local ${s.jobId}` }
        : { kind: 'failed', job: `local ${s.jobId}`, state: 'ENDED', exitCode: '?', log };
    }
    const all = await jobs(s.jobId);
    const j = rank === MERGE ? all?.[0] : all?.find((x) => x.ranks.includes(rank));
    const job = rank === MERGE ? s.jobId : `${s.jobId}_${rank}`;
    if (!j) return { kind: 'failed', job, state: 'UNKNOWN (no longer known to Slurm)', exitCode: '?', log };
    if (isWaiting(j.state)) return { kind: 'pending', job };
    if (isRunning(j.state)) return { kind: 'running', job };
    // The marker was looked for before Slurm was asked: a task that finished in between has written it.
    if ((await run.completion(rank)) !== undefined) return { kind: 'done' };
    const state = j.state === 'COMPLETED' ? 'COMPLETED without a completion marker' : j.state;
    return { kind: 'failed', job, state, exitCode: j.exitCode, log: j.log || log };
  };
  const ranks: TaskState[] = [];
  const attempts: number[] = [];
  for (let r = 0; r < record.tasks; r++) {
    const mine = subs.filter((s) => s.role === 'tasks' && s.ranks.includes(r));
    attempts.push(mine.length);
    if ((await run.completion(r)) !== undefined) ranks.push({ kind: 'done' });
    else if (!mine.length) ranks.push({ kind: 'unsubmitted' });
    else ranks.push(await stateOf(mine[mine.length - 1], r));
  }
  const merges = subs.filter((s) => s.role === 'merge');
  let merge: TaskState;
  if ((await run.completion(MERGE)) !== undefined) merge = { kind: 'done' };
  else if (!merges.length) merge = { kind: 'unsubmitted' };
  else merge = await stateOf(merges[merges.length - 1], MERGE);
  return { ranks, attempts, merge, mergeAttempts: merges.length };
}

export function describeFailure(label: string, s: TaskState & { kind: 'failed' }): string {
  return `${label} (job ${s.job}): ${s.state}, exit code ${s.exitCode}, log ${s.log}`;
}

function summary(st: RunStatus): string {
  const n = (k: TaskState['kind']) => st.ranks.filter((s) => s.kind === k).length;
  return `tasks ${st.ranks.length}: ${n('pending') + n('unsubmitted')} pending, ${n('running')} running, ${n('done')} done, ${n('failed')} failed; merge ${st.merge.kind}`;
}

/** Slurm job ids of this run that still have elements queued or running. */
export async function liveJobs(run: RunDir): Promise<string[]> {
  const out: string[] = [];
  for (const s of await run.submissions()) {
    if (s.executor !== 'slurm') continue;
    const jobs = await showJob(s.jobId);
    if (jobs?.some((j) => isLive(j.state))) out.push(s.jobId);
  }
  return out;
}

/** "0,1,2,5" -> "0-2,5" (sbatch --array). */
export function arraySpec(ranks: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < ranks.length; ) {
    let j = i;
    while (j + 1 < ranks.length && ranks[j + 1] === ranks[j] + 1) j++;
    parts.push(i === j ? `${ranks[i]}` : `${ranks[i]}-${ranks[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

function sbatchScript(run: RunDir, record: RunRecord, ex: ExecutorOptions, role: 'tasks' | 'merge'): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const lines = [
    '#!/bin/bash',
    `#SBATCH --job-name=sdt-${record.kind.replace(/\s+/g, '-')}${role === 'merge' ? '-merge' : ''}`,
    `#SBATCH --output=${run.path('logs', role === 'merge' ? 'merge.job-%j.log' : 'task-%a.job-%A.log')}`,
    `#SBATCH --cpus-per-task=${role === 'merge' ? 1 : ex.cpusPerTask}`,
    ...(ex.partition ? [`#SBATCH --partition=${ex.partition}`] : []),
    ...(ex.time ? [`#SBATCH --time=${ex.time}`] : []),
    ...(ex.mem ? [`#SBATCH --mem=${ex.mem}`] : []),
    ...ex.sbatchArgs.map((a) => `#SBATCH ${a}`),
    `# Written by sdt ${record.kind} for ${run.dir}; submitted ${role === 'merge' ? 'with --dependency=afterok:<task array>' : 'with --array=<ranks without a completion marker>'}.`,
    'set -euo pipefail',
    `cd ${q(record.cwd)}`,
    `export SDT_TASK_CPUS="\${SLURM_CPUS_PER_TASK:-${ex.cpusPerTask}}"`,
    `exec ${q(process.execPath)} ${q(sdtCli)} jobs task ${q(run.dir)} ${role === 'merge' ? '--merge' : '--rank "$SLURM_ARRAY_TASK_ID"'}`,
    '',
  ];
  return lines.join('\n');
}

export type Say = (line: string) => void;

/**
 * Runs (or resumes) a distributed command: refuses a run directory made with other settings and checks
 * the executor before anything is written; then runs the tasks without a completion marker and the merge.
 * Returns 'detached' when --detach left the jobs queued.
 */
export async function runDistributed(
  spec: RunSpec,
  ex: ExecutorOptions,
  say: Say,
): Promise<'done' | 'detached'> {
  const run = new RunDir(ex.runDir);
  const exists = await run.check(spec);
  if (ex.executor === 'slurm') await slurmPreflight(ex.partition);
  else if (ex.detach)
    throw new UserError('--detach needs --executor slurm (local tasks run in this process).');
  if (exists) {
    const live = await liveJobs(run);
    if (live.length) {
      throw new UserError(
        `run-in-progress: jobs ${live.join(', ')} of ${run.dir} are still queued or running; follow them with \`sdt jobs status ${run.dir}\` or stop them with \`sdt jobs cancel ${run.dir}\`.`,
      );
    }
    for (const s of await run.submissions()) {
      if (s.executor === 'local' && pidAlive(Number(s.jobId)) && Number(s.jobId) !== process.pid) {
        throw new UserError(`run-in-progress: process ${s.jobId} is running ${run.dir} on this machine.`);
      }
    }
  }
  const record = exists ? await run.load() : await run.create(spec);
  const kind = await jobKind(record.kind);
  if (kind.prepare && (await run.completion('prepare')) === undefined) {
    const t0 = performance.now();
    const what = await kind.prepare(record, run);
    const seconds = (performance.now() - t0) / 1000;
    await run.markComplete('prepare', { what, seconds });
    say(`prepared in ${seconds.toFixed(1)} s: ${what}`);
  }
  if ((await run.completion(MERGE)) !== undefined && (await kind.outputDone(record, run))) {
    say(`${run.dir}: already complete`);
    return 'done';
  }
  // The merge runs again (a task had lost its marker, or the output was removed): a marker left by an
  // earlier merge would read as this one finished.
  await rm(run.markerPath(MERGE), { force: true });
  return ex.executor === 'slurm' ? slurmRun(run, record, ex, say) : localRun(run, record, ex, say);
}

async function slurmRun(
  run: RunDir,
  record: RunRecord,
  ex: ExecutorOptions,
  say: Say,
): Promise<'done' | 'detached'> {
  await mkdir(run.path('slurm'), { recursive: true });
  const taskScript = run.path('slurm', 'tasks.sbatch');
  const mergeScript = run.path('slurm', 'merge.sbatch');
  await writeFile(taskScript, sbatchScript(run, record, ex, 'tasks'));
  await writeFile(mergeScript, sbatchScript(run, record, ex, 'merge'));

  const submitTasks = async (ranks: number[]): Promise<string> => {
    const array = `${arraySpec(ranks)}${ex.maxParallel ? `%${ex.maxParallel}` : ''}`;
    const jobId = await sbatch(taskScript, [`--array=${array}`]);
    await run.addSubmission({
      at: new Date().toISOString(),
      executor: 'slurm',
      role: 'tasks',
      jobId,
      ranks,
      script: taskScript,
    });
    say(`submitted array job ${jobId} (tasks ${array} of ${record.tasks})`);
    return jobId;
  };
  const submitMerge = async (dependency: string | undefined): Promise<string> => {
    const args = dependency ? [`--dependency=${dependency}`, '--kill-on-invalid-dep=yes'] : [];
    const jobId = await sbatch(mergeScript, args);
    await run.addSubmission({
      at: new Date().toISOString(),
      executor: 'slurm',
      role: 'merge',
      jobId,
      ranks: [],
      dependency,
      script: mergeScript,
    });
    say(`submitted merge job ${jobId}${dependency ? ` (${dependency})` : ''}`);
    return jobId;
  };

  const todo = await run.incomplete(record.tasks);
  const taskJob = todo.length ? await submitTasks(todo) : undefined;
  let mergeJob = await submitMerge(taskJob ? `afterok:${taskJob}` : undefined);
  if (ex.detach) {
    say(`detached; follow with: sdt jobs status ${run.dir}`);
    return 'detached';
  }

  let last = '';
  let mergeFailures = 0;
  for (;;) {
    const st = await runStatus(run, record);
    const line = summary(st);
    if (line !== last && !ex.quiet) say(line);
    last = line;
    if (st.merge.kind === 'done') return 'done';
    const failed = st.ranks.flatMap((s, r) => (s.kind === 'failed' ? [{ r, s }] : []));
    if (failed.length) {
      await scancel([mergeJob]);
      for (const { r, s } of failed) {
        const retry =
          st.attempts[r] <= ex.retries ? `; resubmitting (retry ${st.attempts[r]} of ${ex.retries})` : '';
        say(describeFailure(`task ${r}`, s) + retry);
      }
      const spent = failed.filter(({ r }) => st.attempts[r] > ex.retries);
      if (spent.length) {
        throw new UserError(
          `tasks ${spent.map((f) => f.r).join(', ')} of ${run.dir} failed (${spent.length === failed.length ? 'no retries left' : 'some with no retries left'}); rerun the same command to resubmit only the tasks without a completion marker, or pass --retries N.`,
        );
      }
      const live = (await liveJobs(run)).filter((j) => j !== mergeJob);
      const newJob = await submitTasks(failed.map((f) => f.r));
      // Tasks still running from earlier submissions must end before the merge reads their parts.
      mergeJob = await submitMerge([`afterok:${newJob}`, ...live.map((j) => `afterany:${j}`)].join(','));
    } else if (st.merge.kind === 'failed' && st.ranks.every((s) => s.kind === 'done')) {
      say(describeFailure('merge', st.merge));
      if (++mergeFailures > ex.retries) {
        throw new UserError(
          `the merge of ${run.dir} failed; see its log above, then rerun the same command (the tasks' parts are kept).`,
        );
      }
      mergeJob = await submitMerge(undefined);
    }
    await new Promise((r) => setTimeout(r, ex.pollSeconds * 1000));
  }
}

/** Runs `sdt jobs task` here; resolves with its exit code. */
function runTaskHere(run: RunDir, args: string[], log: string, cpus: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const fd = openSync(log, 'a');
    const child = spawn(process.execPath, [sdtCli, 'jobs', 'task', run.dir, ...args], {
      stdio: ['ignore', fd, fd],
      env: { ...process.env, SDT_TASK_CPUS: String(cpus) },
    });
    children.add(child.pid!);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      children.delete(child.pid!);
      resolve(code ?? (signal ? 128 + 15 : 1));
    });
  });
}

const children = new Set<number>();

async function localRun(run: RunDir, record: RunRecord, ex: ExecutorOptions, say: Say): Promise<'done'> {
  const stop = () => {
    for (const pid of children) process.kill(pid, 'SIGTERM');
    process.exit(143);
  };
  process.once('SIGTERM', stop);
  try {
    const me = String(process.pid);
    const todo = await run.incomplete(record.tasks);
    if (todo.length)
      await run.addSubmission({
        at: new Date().toISOString(),
        executor: 'local',
        role: 'tasks',
        jobId: me,
        ranks: todo,
      });
    const queue = [...todo];
    const failures: string[] = [];
    let done = record.tasks - todo.length;
    const worker = async () => {
      for (let r = queue.shift(); r !== undefined; r = queue.shift()) {
        for (let attempt = 0; ; attempt++) {
          const log = run.path('logs', `task-${r}.local-${me}.log`);
          const code = await runTaskHere(run, ['--rank', String(r)], log, ex.cpusPerTask);
          if (code === 0) {
            if (!ex.quiet) say(`task ${r} done (${++done} of ${record.tasks})`);
            break;
          }
          const msg = `task ${r} (local ${me}): exit code ${code}, log ${log}`;
          if (attempt < ex.retries) say(`${msg}; retrying (${attempt + 1} of ${ex.retries})`);
          else {
            failures.push(msg);
            break;
          }
        }
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(ex.maxParallel ?? 1, Math.max(1, todo.length)) }, worker),
    );
    if (failures.length) {
      for (const f of failures) say(f);
      throw new UserError(
        `${failures.length} task(s) of ${run.dir} failed; rerun the same command to run only the tasks without a completion marker.`,
      );
    }
    await run.addSubmission({
      at: new Date().toISOString(),
      executor: 'local',
      role: 'merge',
      jobId: me,
      ranks: [],
    });
    const log = run.path('logs', `merge.local-${me}.log`);
    const code = await runTaskHere(run, ['--merge'], log, 1);
    if (code !== 0) throw new UserError(`the merge of ${run.dir} failed with exit code ${code}; see ${log}.`);
    return 'done';
  } finally {
    process.off('SIGTERM', stop);
  }
}

/** Cancels what a run has queued or running; markers and parts stay, so a rerun resumes. */
export async function cancelRun(run: RunDir): Promise<string[]> {
  await run.load();
  const cancelled: string[] = [];
  const live = await liveJobs(run);
  await scancel(live);
  cancelled.push(...live.map((j) => `slurm job ${j}`));
  for (const s of await run.submissions()) {
    const pid = Number(s.jobId);
    if (s.executor === 'local' && pid !== process.pid && pidAlive(pid)) {
      process.kill(pid, 'SIGTERM');
      cancelled.push(`local process ${pid}`);
    }
  }
  return [...new Set(cancelled)];
}
