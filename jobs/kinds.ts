import { UserError } from '../common/errors.ts';
import type { RunDir, RunRecord } from './run-dir.ts';

/** The work behind a distributed command: what one task does, and the merge after all of them. */
export interface JobKind {
  /** Runs task `rank`; returns the summary its completion marker records. */
  task(record: RunRecord, run: RunDir, rank: number, cpus: number): Promise<unknown>;
  /** Runs once every task has a marker; `summaries` are the markers, by rank. */
  merge(record: RunRecord, run: RunDir, summaries: unknown[]): Promise<unknown>;
  /** Runs once before the first submission (e.g. lists the input for the tasks); says what it did. */
  prepare?(record: RunRecord, run: RunDir): Promise<string>;
  /** Whether the merged output is still there (a finished run whose output was removed merges again). */
  outputDone(record: RunRecord, run: RunDir): Promise<boolean>;
}

/** Kinds by the command that writes them into run.json; loaded lazily, like the commands. */
const KINDS: Record<string, () => Promise<JobKind>> = {
  'data build': async () => (await import('../pipelines/dataset/parts.ts')).dataBuildJob,
  'traj generate': async () => (await import('../posttrain/commands/traj-generate.ts')).trajGenerateJob,
  'traj score': async () => (await import('../posttrain/commands/traj-score.ts')).trajScoreJob,
  ...Object.fromEntries(
    ['synth', 'humaneval', 'mbpp', 'infill', 'fix'].map((suite) => [
      `eval ${suite}`,
      async () => (await import('../eval/distributed.ts')).evalJob(suite),
    ]),
  ),
};

export async function jobKind(name: string): Promise<JobKind> {
  const load = KINDS[name];
  if (!load)
    throw new UserError(
      `run.json names kind "${name}", which this sdt does not run (${Object.keys(KINDS).join(', ')}).`,
    );
  return load();
}
