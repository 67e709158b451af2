/** `sdt report speedup`: flags and wiring; the work is in posttrain/trajectories/report-speedup.ts. */
import { join } from 'node:path';
import { type CommandSpec, optStr } from '../../common/cli.ts';
import { atomicWriteFile } from '../../common/fs.ts';
import { measuredOn, readRounds, speedupPoints, speedupSvg } from '../trajectories/report-speedup.ts';

export const command: CommandSpec = {
  name: 'report speedup',
  summary: 'speedup of an on-policy run over its starting model against training step (SVG)',
  positionals: [
    { name: 'RUN_DIR', description: 'run directory of sdt train --stage onpolicy', required: true },
  ],
  options: {
    out: {
      type: 'string',
      output: 'file',
      arg: 'FILE',
      description: 'SVG to write [default: RUN_DIR/speedup.svg]',
    },
  },
  examples: ['sdt report speedup runs/onpolicy'],
  async run(o, pos) {
    const run = pos[0];
    const rounds = await readRounds(run);
    const points = speedupPoints(rounds);
    process.stdout.write(
      measuredOn(rounds) === 'heldout'
        ? `measured on ${rounds[0].heldout!.prompts} held-out prompts, greedy, the run's sampler settings\n`
        : 'measured on the training pool (the run has no held-out prompts)\n',
    );
    process.stdout.write('round  step  fwd/token  steps/block  speedup  verifier  val_loss\n');
    for (const p of points) {
      process.stdout.write(
        `${String(p.round).padStart(5)} ${String(p.step).padStart(5)} ${p.forwardPassesPerToken.toFixed(4).padStart(10)} ${p.stepsPerBlock.toFixed(3).padStart(12)} ` +
          `${p.speedup.toFixed(3).padStart(8)} ${(100 * p.verifierPassRate).toFixed(1).padStart(8)}% ${p.validationLoss === null ? '     n/a' : p.validationLoss.toFixed(4).padStart(9)}\n`,
      );
    }
    const out = optStr(o, 'out') ?? join(run, 'speedup.svg');
    await atomicWriteFile(out, speedupSvg(points, `On-policy step reduction: ${run}`));
    process.stdout.write(`wrote ${out}\n`);
    return 0;
  },
};
