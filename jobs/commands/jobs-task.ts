import { hostname } from 'node:os';
import { bool, type CommandSpec, optNum } from '../../common/cli.ts';
import { UserError } from '../../common/errors.ts';
import { jobKind } from '../kinds.ts';
import { MERGE, RunDir } from '../run-dir.ts';

export const command: CommandSpec = {
  name: 'jobs task',
  summary: 'run one task (or the merge) of a distributed run: what the sbatch scripts call',
  description: `
Runs task --rank of the run in RUN_DIR (Slurm passes SLURM_ARRAY_TASK_ID), or the merge once every task
has its completion marker, and writes the marker last. CPUs come from SDT_TASK_CPUS (the executors set it).`,
  options: {
    rank: {
      type: 'number',
      min: 0,
      integer: true,
      arg: 'R',
      description: 'the task to run (0 <= R < tasks)',
    },
    merge: { type: 'boolean', description: 'run the merge instead' },
  },
  positionals: [{ name: 'RUN_DIR', description: 'the run directory', required: true }],
  examples: ['sdt jobs task runs/data.run --rank 3'],
  async run(opts, [dir]) {
    const run = new RunDir(dir);
    const record = await run.load();
    process.chdir(record.cwd);
    const kind = await jobKind(record.kind);
    const cpus = Math.max(1, Number(process.env.SDT_TASK_CPUS) || 1);
    const started = new Date().toISOString();
    // What the marker records besides the kind's summary: where and how long, CPU time, peak memory.
    const usage = () => {
      const u = process.resourceUsage();
      return {
        started,
        ended: new Date().toISOString(),
        host: process.env.SLURMD_NODENAME ?? hostname(),
        cpuSeconds: (u.userCPUTime + u.systemCPUTime) / 1e6,
        maxRssMB: Math.round(u.maxRSS / 1024),
      };
    };
    if (bool(opts, 'merge')) {
      const summaries: unknown[] = [];
      for (let r = 0; r < record.tasks; r++) {
        const s = await run.completion(r);
        if (s === undefined)
          throw new UserError(`task ${r} of ${run.dir} has no completion marker; run it first.`);
        summaries.push(s);
      }
      const summary = await kind.merge(record, run, summaries);
      await run.markComplete(MERGE, { ...usage(), summary });
      return 0;
    }
    const rank = optNum(opts, 'rank');
    if (rank === undefined || !Number.isInteger(rank) || rank < 0 || rank >= record.tasks) {
      throw new UserError(`--rank must be a whole number in [0, ${record.tasks}); got ${rank}.`);
    }
    const summary = await kind.task(record, run, rank, cpus);
    await run.markComplete(rank, { ...usage(), ...(summary as object) });
    return 0;
  },
};
