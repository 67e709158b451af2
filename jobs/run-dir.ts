import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { UserError } from '../common/errors.ts';
import { atomicWriteJson } from '../common/fs.ts';

/**
 * A run directory: what a distributed job records so that any process (the one that submitted it, a
 * task on a compute node, `sdt jobs status`) can act on it.
 *
 *   run.json               the job: kind, task count, the settings that decide the output
 *   completions/NNNNN      task NNNNN finished (JSON summary); written last, after its part
 *   completions/prepare    the input was listed for the tasks (plan/)
 *   completions/merge      the merge finished
 *   plan/                  the input records of each task (data build of files: plan-NNNNN.jsonl)
 *   parts/                 the tasks' outputs (data build: part-NNNNN.bin)
 *   slurm/*.sbatch         the scripts submitted (Slurm executor)
 *   logs/                  one log per task attempt and per merge attempt
 *   submissions.jsonl      one line per submission: executor, job id, ranks, dependency, time
 */

/** What a run is: a rerun with another spec is refused (settings must match for parts to be reused). */
export interface RunSpec {
  kind: string;
  tasks: number;
  /** The settings that decide the output; compared as JSON. */
  settings: Record<string, unknown>;
}

export interface RunRecord extends RunSpec {
  version: 1;
  createdAt: string;
  /** Where the command was started: tasks run from here, so relative paths mean the same. */
  cwd: string;
}

export interface Submission {
  at: string;
  executor: 'local' | 'slurm';
  role: 'tasks' | 'merge';
  /** Slurm job id (an array job for tasks), or the pid of the local process that ran them. */
  jobId: string;
  ranks: number[];
  dependency?: string;
  script?: string;
}

export const RUN_FILE = 'run.json';
export const MERGE = 'merge';
/** Steps of a run besides its tasks: the preparation before them and the merge after. */
export type Step = typeof MERGE | 'prepare';

export class RunDirError extends UserError {
  override name = 'RunDirError';
}

export class RunDir {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = resolve(dir);
  }

  path(...parts: string[]): string {
    return join(this.dir, ...parts);
  }
  get partsDir(): string {
    return this.path('parts');
  }
  get logsDir(): string {
    return this.path('logs');
  }
  markerPath(rank: number | Step): string {
    return this.path('completions', typeof rank === 'string' ? rank : String(rank).padStart(5, '0'));
  }

  async record(): Promise<RunRecord | undefined> {
    let raw: string;
    try {
      raw = await readFile(this.path(RUN_FILE), 'utf8');
    } catch {
      return undefined;
    }
    try {
      return JSON.parse(raw) as RunRecord;
    } catch (err) {
      throw new RunDirError(`${this.path(RUN_FILE)} is not valid JSON (${(err as Error).message}).`);
    }
  }

  /** The run's record, or a named error when the directory holds none. */
  async load(): Promise<RunRecord> {
    const r = await this.record();
    if (!r) {
      throw new RunDirError(
        `${this.dir} is not a run directory (no ${RUN_FILE}); pass the --run-dir a distributed command wrote.`,
      );
    }
    return r;
  }

  /**
   * Refuses a run directory made with other settings (nothing is written or deleted); returns whether
   * the run exists already.
   */
  async check(spec: RunSpec): Promise<boolean> {
    const have = await this.record();
    if (!have) return false;
    const differs: string[] = [];
    if (have.kind !== spec.kind) differs.push(`command (${have.kind})`);
    if (have.tasks !== spec.tasks) differs.push(`--tasks (${have.tasks})`);
    const keys = new Set([...Object.keys(have.settings ?? {}), ...Object.keys(spec.settings)]);
    for (const k of [...keys].sort()) {
      if (JSON.stringify(have.settings?.[k]) !== JSON.stringify(spec.settings[k])) differs.push(k);
    }
    if (differs.length) {
      throw new RunDirError(
        `run directory ${this.dir} was made with other settings (differs in: ${differs.join(', ')}); use another --run-dir, or delete it to start over.`,
      );
    }
    return true;
  }

  async create(spec: RunSpec): Promise<RunRecord> {
    const record: RunRecord = {
      version: 1,
      ...spec,
      createdAt: new Date().toISOString(),
      cwd: process.cwd(),
    };
    for (const d of ['completions', 'parts', 'logs']) await mkdir(this.path(d), { recursive: true });
    await atomicWriteJson(this.path(RUN_FILE), record);
    return record;
  }

  async completion<T>(rank: number | Step): Promise<T | undefined> {
    try {
      return JSON.parse(await readFile(this.markerPath(rank), 'utf8')) as T;
    } catch {
      return undefined;
    }
  }

  async markComplete(rank: number | Step, summary: unknown): Promise<void> {
    await atomicWriteJson(this.markerPath(rank), summary);
  }

  /** Ranks without a completion marker. */
  async incomplete(tasks: number): Promise<number[]> {
    const out: number[] = [];
    for (let r = 0; r < tasks; r++) if ((await this.completion(r)) === undefined) out.push(r);
    return out;
  }

  async submissions(): Promise<Submission[]> {
    let raw = '';
    try {
      raw = await readFile(this.path('submissions.jsonl'), 'utf8');
    } catch {
      return [];
    }
    return raw
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as Submission);
  }

  async addSubmission(s: Submission): Promise<void> {
    await appendFile(this.path('submissions.jsonl'), `${JSON.stringify(s)}\n`);
  }
}
