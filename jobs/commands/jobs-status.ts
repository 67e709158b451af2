import type { CommandSpec } from '../../common/cli.ts';
import { describeFailure, runStatus, type TaskState } from '../executor.ts';
import { MERGE, RunDir } from '../run-dir.ts';

function describe(label: string, s: TaskState, attempts: number): string {
  const tries = attempts > 1 ? ` (${attempts} submissions)` : '';
  if (s.kind === 'failed') return `  ${describeFailure(label, s)}${tries}`;
  if (s.kind === 'pending' || s.kind === 'running') return `  ${label}: ${s.kind} (job ${s.job})${tries}`;
  return `  ${label}: ${s.kind}${tries}`;
}

export const command: CommandSpec = {
  name: 'jobs status',
  summary: "what a distributed run's tasks and merge are doing, from its run directory and the queue",
  description: `
Reads RUN_DIR (run.json, completions/, submissions.jsonl) and asks Slurm (scontrol) about the jobs it
submitted. A task is done once its completion marker exists; a failed or cancelled one is listed with its
Slurm state, exit code (exit:signal) and log file. See docs/scale-out.md.`,
  options: {},
  positionals: [{ name: 'RUN_DIR', description: 'the --run-dir of the distributed command', required: true }],
  examples: ['sdt jobs status runs/data.run'],
  async run(_opts, [dir]) {
    const run = new RunDir(dir);
    const record = await run.load();
    const st = await runStatus(run, record);
    const subs = await run.submissions();
    const count = (k: TaskState['kind']) => st.ranks.filter((s) => s.kind === k).length;
    const lines = [
      `${run.dir}: ${record.kind}, ${record.tasks} tasks, created ${record.createdAt}`,
      `  done ${count('done')}, running ${count('running')}, pending ${count('pending')}, failed ${count('failed')}, not submitted ${count('unsubmitted')}`,
      ...st.ranks.map((s, r) => describe(`task ${r}`, s, st.attempts[r])),
      describe(MERGE, st.merge, st.mergeAttempts),
      `  submissions: ${subs.map((s) => `${s.role} ${s.executor === 'slurm' ? `job ${s.jobId}` : `local pid ${s.jobId}`}`).join(', ') || 'none'}`,
      '',
    ];
    process.stdout.write(lines.join('\n'));
    return 0;
  },
};
