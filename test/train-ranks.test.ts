/**
 * Data-parallel training on this CPU-only machine: the rank variables (the rules sdt-native applies),
 * the refusals of a world that cannot train here (TypeScript and sdt-native, nothing written), `sdt train
 * --gpus 2` starting two ranks that each reach sdt-native with their rank and are refused there (this
 * binary has no CUDA), a world of one named by RANK/WORLD_SIZE resuming to the losses of an uninterrupted
 * run, and the sbatch script of 2 nodes x 2 GPUs. Multi-rank training itself needs two GPUs.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { launchTraining, trainScript } from '../jobs/train-launch.ts';
import { ranksFromEnv } from '../trainer/ranks.ts';
import { readLog } from '../trainer/run-log.ts';
import { sdtSync } from './jobs-helpers.ts';
import { nativeOrBuild, stdlibDataset, tempDir, tinyTrainArgs } from './train-helpers.ts';

describe('rank variables', () => {
  it('RANK/WORLD_SIZE/LOCAL_RANK first, then Slurm, else a world of one; bad values are named', () => {
    expect(ranksFromEnv({})).toEqual({ rank: 0, world: 1, localRank: 0, source: 'default' });
    expect(
      ranksFromEnv({ RANK: '3', WORLD_SIZE: '4', LOCAL_RANK: '1', MASTER_ADDR: 'n1', SLURM_PROCID: '0' }),
    ).toEqual({ rank: 3, world: 4, localRank: 1, source: 'torchrun' });
    expect(
      ranksFromEnv({ SLURM_PROCID: '2', SLURM_NTASKS: '4', SLURM_LOCALID: '0', MASTER_ADDR: 'n1' }),
    ).toEqual({ rank: 2, world: 4, localRank: 0, source: 'slurm' });
    expect(() => ranksFromEnv({ RANK: '0' })).toThrow('WORLD_SIZE is not set (RANK is)');
    expect(() => ranksFromEnv({ RANK: '2', WORLD_SIZE: '2', MASTER_ADDR: 'x' })).toThrow(
      'rank 2 (from torchrun variables) is not below the world size 2',
    );
    expect(() => ranksFromEnv({ RANK: 'one', WORLD_SIZE: '2' })).toThrow(
      'RANK="one" is not an integer in [0, 1048576]',
    );
    expect(() => ranksFromEnv({ WORLD_SIZE: '2' })).toThrow('WORLD_SIZE is set but RANK is not');
    expect(() => ranksFromEnv({ RANK: '0', WORLD_SIZE: '2' })).toThrow(
      "MASTER_ADDR is not set (a world of more than one rank needs rank 0's host)",
    );
  });
});

describe('sdt train --executor slurm with several ranks', () => {
  const launch = {
    nodes: 2,
    gpusPerNode: 2,
    cpusPerTask: 8,
    partition: 'gpu',
    time: '12:00:00',
    sbatchArgs: ['--account=ml'],
    detach: true,
    pollSeconds: 1,
  };

  it('2 nodes x 2 GPUs: 4 tasks, one per GPU, srun sets each rank, --device cuda, resumes after a requeue', () => {
    const lines = trainScript('/runs/r', '/runs/r/slurm/train-config.json', launch, '/work').split('\n');
    for (const line of [
      '#SBATCH --nodes=2',
      '#SBATCH --ntasks-per-node=2',
      '#SBATCH --gpus-per-node=2',
      '#SBATCH --cpus-per-task=8',
      '#SBATCH --requeue',
      '#SBATCH --partition=gpu',
      '#SBATCH --time=12:00:00',
      '#SBATCH --account=ml',
      '#SBATCH --output=/runs/r/slurm/train.job-%j.log',
      'export MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a bash parameter expansion
      'export MASTER_PORT="${MASTER_PORT:-$((20000 + SLURM_JOB_ID % 20000))}"',
      "if compgen -G '/runs/r/checkpoints''/step-*/COMPLETE' >/dev/null; then",
      "  set -- train --resume '/runs/r'",
      "  set -- train --config '/runs/r/slurm/train-config.json' --out '/runs/r'",
      `srun --kill-on-bad-exit=1 bash -c 'export RANK=$SLURM_PROCID WORLD_SIZE=$SLURM_NTASKS LOCAL_RANK=$SLURM_LOCALID; exec "$SDT_NODE" "$SDT_JS" "$@" --device cuda --quiet' sdt-rank "$@"`,
    ])
      expect(lines, line).toContain(line);
    // One CPU rank per node keeps the plain device.
    const cpu = trainScript('/runs/r', '/c.json', { ...launch, nodes: 1, gpusPerNode: 0 }, '/work');
    expect(cpu).toContain('#SBATCH --ntasks-per-node=1');
    expect(cpu).not.toContain('--gpus-per-node');
    expect(cpu).not.toContain('--device cuda');
  });

  it('CPU ranks on several nodes are refused before Slurm is asked', async () => {
    const said: string[] = [];
    await expect(
      launchTraining({ out: '/nonexistent/run' }, false, { ...launch, gpusPerNode: 0 }, (l) => said.push(l)),
    ).rejects.toThrow(
      '--nodes 2 --gpus-per-node 0 makes 2 CPU ranks, but more than one rank needs GPUs (the gradients are summed by NCCL; sdt has no CPU collective). Ask for GPUs with --gpus-per-node G',
    );
    expect(said).toEqual([]);
    expect(existsSync('/nonexistent/run')).toBe(false);
  });
});

const bin = nativeOrBuild();

describe.skipIf(!bin)('several ranks on this CPU-only machine', () => {
  let dir = '';
  let dataset = '';
  let env: NodeJS.ProcessEnv = {};
  const tiny = (out: string, extra: string[] = []): string[] => tinyTrainArgs(dataset, out, 6, extra);

  beforeAll(async () => {
    dir = await tempDir('train-ranks');
    dataset = await stdlibDataset(dir, ['json/*.py'], 400);
    const clean = { ...process.env };
    for (const k of ['RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_LOCALID'])
      delete clean[k];
    env = { ...clean, SDT_NATIVE: bin };
  });

  it('a world of 2 on CPU is refused by sdt train and by sdt-native, naming the fix; nothing is written', () => {
    const out = join(dir, 'cpu-world');
    const world = { ...env, RANK: '1', WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: '29999' };
    const r = sdtSync(tiny(out), world);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      'rank 1 of 2 (from the torchrun variables): a world of more than one rank needs --device cuda',
    );
    expect(existsSync(out)).toBe(false);
    const native = spawnSync(bin!, ['train', '--stream', '-', '--config', 'none.json', '--out', out], {
      env: world,
      encoding: 'utf8',
    });
    expect(native.status).toBe(2);
    expect(native.stderr).toContain(
      'sdt-native train: a world of 2 ranks (from the torchrun variables: rank 1) needs --device cuda',
    );
    const cuda = spawnSync(
      bin!,
      ['train', '--stream', '-', '--config', 'none.json', '--out', out, '--device', 'cuda'],
      {
        env: world,
        encoding: 'utf8',
      },
    );
    expect(cuda.status).toBe(2);
    expect(cuda.stderr).toMatch(/needs a CUDA build of sdt-native|no CUDA device is visible/);
    expect(existsSync(out)).toBe(false);
  });

  it('--gpus 2 starts two ranks with their variables and --device cuda; a refused rank stops the run', () => {
    const out = join(dir, 'gpus');
    const r = sdtSync(tiny(out, ['--gpus', '2']), env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/2 ranks on this machine, rendezvous 127\.0\.0\.1:\d+/);
    expect(r.stderr).toMatch(/rank [01] of 2 exited with code 2 .*the other ranks were stopped/);
    // Each rank reached sdt-native with its own RANK in a world of 2 and was refused there: this binary has
    // no CUDA (or no GPU is visible). The rank that failed first says so; rank 1's output is in its log.
    const said = `${r.stderr}\n${readFileSync(join(out, 'ranks', 'rank-1', 'sdt.log'), 'utf8')}`;
    expect(said).toMatch(
      /a world of 2 ranks \(from the torchrun variables: rank [01]\) needs a CUDA build|no CUDA device is visible/,
    );
    const cfg = JSON.parse(readFileSync(join(out, 'ranks', 'train-config.json'), 'utf8'));
    expect(cfg.batch).toEqual({ batch_size: 4, micro_batches: 2 });
    expect(existsSync(join(out, 'checkpoints'))).toBe(false);
  });

  it('a world of one named by RANK/WORLD_SIZE, stopped and resumed, logs the losses of an uninterrupted run', () => {
    const one = { ...env, RANK: '0', WORLD_SIZE: '1', LOCAL_RANK: '0' };
    const full = join(dir, 'full');
    expect(sdtSync(tiny(full), one).code).toBe(0);
    const run = join(dir, 'resumed');
    expect(sdtSync(tiny(run, ['--stop-after', '3']), one).code).toBe(0);
    expect(readdirSync(join(run, 'checkpoints'))).toEqual(['step-000003']);
    const resumed = sdtSync(['train', '--resume', run, '--quiet'], one);
    expect(resumed.code, resumed.stderr).toBe(0);
    const losses = (r: string) =>
      readLog(r)
        .filter((x) => x.type === 'step' || x.type === 'eval')
        .map((x) =>
          x.type === 'step' ? ['step', x.step, x.loss, x.grad_norm] : ['eval', x.step, x.group, x.loss],
        );
    expect(losses(run)).toEqual(losses(full));
    expect(losses(full).filter((x) => x[0] === 'step')).toHaveLength(6);
    expect(existsSync(join(run, 'ranks'))).toBe(false);
  });
});
