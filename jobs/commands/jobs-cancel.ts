import type { CommandSpec } from '../../common/cli.ts';
import { cancelRun } from '../executor.ts';
import { RunDir } from '../run-dir.ts';

export const command: CommandSpec = {
  name: 'jobs cancel',
  summary: "cancel a distributed run's queued and running jobs (finished parts are kept)",
  description: `
Cancels (scancel) every Slurm job the run submitted that is still queued or running, or stops the local
process running it. Completion markers and parts stay: rerunning the same command resubmits only the tasks
without a marker.`,
  options: {},
  positionals: [{ name: 'RUN_DIR', description: 'the --run-dir of the distributed command', required: true }],
  examples: ['sdt jobs cancel runs/data.run'],
  async run(_opts, [dir]) {
    const cancelled = await cancelRun(new RunDir(dir));
    process.stdout.write(
      cancelled.length ? `cancelled ${cancelled.join(', ')}\n` : 'nothing queued or running\n',
    );
    return 0;
  },
};
