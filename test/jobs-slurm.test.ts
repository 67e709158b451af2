/**
 * Distributed builds and training on a real, throwaway single-node Slurm cluster
 * (scripts/slurm-cluster.sh: munged, slurmctld and slurmd from Debian's packages, under a temporary
 * directory). Skipped, with the reason printed, where the packages are not installed.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findOnPath } from '../jobs/slurm.ts';
import { pythonStdlibDir } from '../pipelines/sources/pystdlib.ts';
import { latestCheckpoint } from '../schemas/checkpoint.ts';
import { smallTokenizer, tempDir } from './data-helpers.ts';
import { evalOutputs, sdtAsync, sdtSync, snapshot, synthTasks, waitFor } from './jobs-helpers.ts';
import { nativeOrBuild, tinyTrainArgs } from './train-helpers.ts';

const CLUSTER = join(import.meta.dirname, '..', 'scripts', 'slurm-cluster.sh');
const searchPath = `${process.env.PATH}:/usr/sbin`;
const missing = ['munged', 'slurmctld', 'slurmd', 'sbatch', 'scontrol'].filter(
  (b) => !findOnPath(b, searchPath),
);
if (missing.length) {
  process.stderr.write(
    `test/jobs-slurm.test.ts skipped: ${missing.join(', ')} not installed (Debian packages slurmctld slurmd slurm-client munge; .ci/run installs them when run as root)\n`,
  );
}

// Jobs queue behind each other on a shared 2-core machine (CI runs other test files at the same time).
const SLURM_TEST_MS = 600_000;
let work = '';
let cluster = '';
let tok = '';
let env: NodeJS.ProcessEnv = {};

const submissions = (runDir: string) =>
  readFileSync(join(runDir, 'submissions.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { role: string; jobId: string; ranks: number[] });

function expectSame(a: string, b: string): void {
  expect(snapshot(b)).toEqual(snapshot(a));
}

describe.skipIf(missing.length > 0)('Slurm executor on a throwaway cluster', () => {
  beforeAll(async () => {
    work = await tempDir('slurm');
    cluster = join(work, 'cluster');
    const started = spawnSync(CLUSTER, ['start', cluster], {
      encoding: 'utf8',
      env: { ...process.env, PATH: searchPath },
    });
    if (started.status !== 0)
      throw new Error(`slurm-cluster.sh start failed: ${started.stderr}${started.stdout}`);
    env = { ...process.env, PATH: searchPath, SLURM_CONF: join(cluster, 'slurm.conf') };
    tok = await smallTokenizer(work);
  });

  afterAll(() => {
    if (cluster) spawnSync(CLUSTER, ['stop', cluster], { env: { ...process.env, PATH: searchPath } });
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it(
    'the default corpus through 4 array tasks and a merge equals the local build byte for byte',
    async () => {
      const local = join(work, 'default-local');
      const dist = join(work, 'default-slurm');
      const base = ['data', 'build', '--tokenizer', tok, '--quiet'];
      const l = sdtSync([...base, '--out', local, '--workers', '1'], env);
      expect(l.code, l.stderr).toBe(0);
      const s = await sdtAsync(
        [...base, '--out', dist, '--executor', 'slurm', '--tasks', '4', '--poll-seconds', '0.3'],
        env,
      );
      expect(s.code, s.stderr).toBe(0);
      expectSame(local, dist);
      const run = `${dist}.run`;
      expect(readdirSync(join(run, 'completions')).sort()).toEqual([
        '00000',
        '00001',
        '00002',
        '00003',
        'merge',
        'prepare',
      ]);
      const subs = submissions(run);
      expect(subs.map((x) => x.role)).toEqual(['tasks', 'merge']);
      const script = readFileSync(join(run, 'slurm', 'merge.sbatch'), 'utf8');
      expect(script).toContain('jobs task');
      // The merge waited on the array job: it was submitted with afterok on it.
      expect(readFileSync(join(run, 'submissions.jsonl'), 'utf8')).toContain(
        `"dependency":"afterok:${subs[0].jobId}"`,
      );

      // A rerun of a finished run submits nothing.
      const again = sdtSync([...base, '--out', dist, '--executor', 'slurm', '--tasks', '4'], env);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).toContain('already complete');
      expect(submissions(run)).toHaveLength(2);

      // A run directory made with other settings is refused before anything is submitted or deleted.
      const before = snapshot(run);
      const other = sdtSync([...base, '--out', dist, '--executor', 'slurm', '--tasks', '3'], env);
      expect(other.code).toBe(2);
      expect(other.stderr).toMatch(/made with other settings \(differs in: --tasks/);
      const other2 = sdtSync(
        [...base, '--out', dist, '--executor', 'slurm', '--tasks', '4', '--near-dup-threshold', '0.9'],
        env,
      );
      expect(other2.code).toBe(2);
      expect(snapshot(run)).toEqual(before);
      expectSame(local, dist);
    },
    SLURM_TEST_MS,
  );

  it(
    'an array element cancelled mid-write is listed, resubmitted (--retries) and the build ends with the same bytes',
    async () => {
      const root = pythonStdlibDir();
      const src = [
        '--source',
        root,
        '--include',
        'json/*.py',
        '--include',
        'email/*.py',
        '--shard-records',
        '8',
      ];
      const base = ['data', 'build', '--tokenizer', tok, '--quiet', ...src];
      const local = join(work, 'subset-local');
      const dist = join(work, 'subset-slurm');
      const run = `${dist}.run`;
      const l = sdtSync([...base, '--out', local, '--workers', '1'], env);
      expect(l.code, l.stderr).toBe(0);
      const stall = join(work, 'stalled');
      const building = sdtAsync(
        [
          ...base,
          '--out',
          dist,
          '--executor',
          'slurm',
          '--tasks',
          '3',
          '--retries',
          '1',
          '--poll-seconds',
          '0.3',
        ],
        { ...env, SDT_PART_STALL: `1:${stall}` },
      );
      // Task 1 has written part of its part file and waits: cancel that array element.
      await waitFor(() => existsSync(stall), 'task 1 to start writing');
      const jobId = submissions(run)[0].jobId;
      const partial = readdirSync(join(run, 'parts')).filter((n) => n.includes('part-00001'));
      expect(partial.every((n) => n.startsWith('.part-00001.bin.tmp-'))).toBe(true);
      expect(spawnSync('scancel', [`${jobId}_1`], { env }).status).toBe(0);
      const s = await building;
      expect(s.code, s.stderr).toBe(0);
      expect(s.stderr).toMatch(
        new RegExp(
          `task 1 \\(job ${jobId}_1\\): CANCELLED, exit code \\d+:\\d+, log ${run}/logs/task-1\\.job-${jobId}\\.log; resubmitting`,
        ),
      );
      expectSame(local, dist);
      const subs = submissions(run);
      expect(subs.filter((x) => x.role === 'tasks').map((x) => x.ranks)).toEqual([[0, 1, 2], [1]]);
      // No partial part: the cancelled attempt's temporary file is gone, every part is whole.
      expect(readdirSync(join(run, 'parts')).sort()).toEqual([
        'part-00000.bin',
        'part-00001.bin',
        'part-00002.bin',
      ]);
      const status = sdtSync(['jobs', 'status', run], env);
      expect(status.code).toBe(0);
      expect(status.stdout).toContain('done 3, running 0, pending 0, failed 0');
      expect(status.stdout).toContain('task 1: done (2 submissions)');
    },
    SLURM_TEST_MS,
  );

  it(
    'a failed task with no retries left fails the build naming it; a rerun resubmits only that task',
    async () => {
      const root = pythonStdlibDir();
      const base = [
        'data',
        'build',
        '--tokenizer',
        tok,
        '--quiet',
        '--source',
        root,
        '--include',
        'json/*.py',
        '--shard-records',
        '4',
      ];
      const dist = join(work, 'fail-slurm');
      const run = `${dist}.run`;
      const stall = join(work, 'stalled-2');
      const building = sdtAsync(
        [...base, '--out', dist, '--executor', 'slurm', '--tasks', '2', '--poll-seconds', '0.3'],
        {
          ...env,
          SDT_PART_STALL: `0:${stall}`,
        },
      );
      await waitFor(() => existsSync(stall), 'task 0 to start writing');
      const cancel = sdtSync(['jobs', 'cancel', run], env);
      expect(cancel.code).toBe(0);
      expect(cancel.stdout).toMatch(/cancelled slurm job/);
      const s = await building;
      expect(s.code).toBe(2);
      expect(s.stderr).toMatch(/task 0 \(job \d+_0\): CANCELLED/);
      expect(s.stderr).toMatch(/rerun the same command/);
      const done = readdirSync(join(run, 'completions'));
      const rerun = sdtSync(
        [...base, '--out', dist, '--executor', 'slurm', '--tasks', '2', '--poll-seconds', '0.3'],
        env,
      );
      expect(rerun.code, rerun.stderr).toBe(0);
      const tasks = submissions(run).filter((x) => x.role === 'tasks');
      expect(tasks.at(-1)!.ranks).toEqual([0, 1].filter((r) => !done.includes(String(r).padStart(5, '0'))));
      const local = join(work, 'fail-local');
      expect(sdtSync([...base, '--out', local, '--workers', '1'], env).code).toBe(0);
      expectSame(local, dist);
    },
    SLURM_TEST_MS,
  );

  it(
    'no Slurm on PATH, an unreachable controller, a missing partition: named errors, nothing written',
    () => {
      const base = ['data', 'build', '--tokenizer', tok, '--quiet', '--executor', 'slurm', '--tasks', '2'];
      const out = join(work, 'never');
      const noSlurm = sdtSync([...base, '--out', out], { ...env, PATH: '/nonexistent' });
      expect(noSlurm.code).toBe(2);
      expect(noSlurm.stderr).toMatch(
        /slurm-not-found: sbatch, squeue, scontrol, scancel, sinfo not found on PATH/,
      );
      const conf = join(work, 'closed.conf');
      const port = 1 + Math.floor(Math.random() * 1000);
      writeFileSync(
        conf,
        readFileSync(env.SLURM_CONF!, 'utf8').replace(/^SlurmctldPort=\d+/m, `SlurmctldPort=${port}`),
      );
      const down = sdtSync([...base, '--out', out], { ...env, SLURM_CONF: conf });
      expect(down.code).toBe(2);
      expect(down.stderr).toMatch(/slurm-unreachable: the Slurm controller does not answer/);
      const part = sdtSync([...base, '--out', out, '--partition', 'nosuch'], env);
      expect(part.code).toBe(2);
      expect(part.stderr).toMatch(
        /slurm-partition: --partition nosuch does not exist on this cluster; its partitions: debug/,
      );
      expect(existsSync(out)).toBe(false);
      expect(existsSync(`${out}.run`)).toBe(false);
    },
    SLURM_TEST_MS,
  );

  it(
    'sdt eval over 3 array tasks and a merge equals the in-process eval; a rerun resubmits only the part without a marker',
    async () => {
      const synth = synthTasks(join(work, 'synth'));
      const args = ['eval', 'synth', '--oracle', '--data', synth, '--quiet'];
      const local = join(work, 'eval-local');
      const l = sdtSync([...args, '--out', local], env);
      expect(l.code, l.stderr).toBe(0);
      const dist = join(work, 'eval-slurm');
      const slurm = [...args, '--out', dist, '--executor', 'slurm', '--tasks', '3', '--poll-seconds', '0.3'];
      const s = await sdtAsync(slurm, env);
      expect(s.code, s.stderr).toBe(0);
      expect(s.stdout).toContain('20/20 tasks pass');
      expect(evalOutputs(dist)).toEqual(evalOutputs(local));
      const run = `${dist}.run`;
      const subs = submissions(run);
      expect(subs.map((x) => x.role)).toEqual(['tasks', 'merge']);
      expect(readFileSync(join(run, 'submissions.jsonl'), 'utf8')).toContain(
        `"dependency":"afterok:${subs[0].jobId}"`,
      );
      expect(existsSync(join(run, 'logs', `task-2.job-${subs[0].jobId}.log`))).toBe(true);

      rmSync(join(run, 'completions', '00002'));
      rmSync(dist, { recursive: true });
      const again = await sdtAsync(slurm, env);
      expect(again.code, again.stderr).toBe(0);
      expect(
        submissions(run)
          .filter((x) => x.role === 'tasks')
          .map((x) => x.ranks),
      ).toEqual([[0, 1, 2], [2]]);
      expect(evalOutputs(dist)).toEqual(evalOutputs(local));

      // A partition the cluster lacks: a named error before anything is written or submitted.
      const never = join(work, 'eval-never');
      const bad = sdtSync(
        [...args, '--out', never, '--executor', 'slurm', '--tasks', '3', '--partition', 'nosuch'],
        env,
      );
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(
        /slurm-partition: --partition nosuch does not exist on this cluster; its partitions: debug/,
      );
      expect(existsSync(never)).toBe(false);
      expect(existsSync(`${never}.run`)).toBe(false);
    },
    SLURM_TEST_MS,
  );

  const bin = nativeOrBuild();
  it.skipIf(!bin)(
    'sdt train under sbatch: a requeue mid-run resumes from the checkpoint to the same model',
    async () => {
      const data = join(work, 'default-local');
      if (!existsSync(join(data, 'manifest.json'))) {
        expect(
          sdtSync(['data', 'build', '--tokenizer', tok, '--quiet', '--out', data, '--workers', '1'], env)
            .code,
        ).toBe(0);
      }
      // Long enough (about 7 s here) that the requeue lands while the job still runs.
      const steps = 1000;
      const args = (out: string) => tinyTrainArgs(data, out, steps, ['--val-every', '100']);
      const trainEnv = { ...env, SDT_NATIVE: bin };
      const run = join(work, 'train-slurm');
      const training = sdtAsync([...args(run), '--executor', 'slurm', '--poll-seconds', '0.3'], trainEnv);
      // Any complete checkpoint: a fixed early one is pruned (keep 2) within a few steps, faster than the poll.
      await waitFor(() => latestCheckpoint(run) !== undefined, 'the first checkpoint');
      const jobId = (
        JSON.parse(readFileSync(join(run, 'slurm', 'submissions.jsonl'), 'utf8').split('\n')[0]) as {
          jobId: string;
        }
      ).jobId;
      expect(spawnSync('scontrol', ['requeue', jobId], { env }).status).toBe(0);
      // Slurm holds a requeued batch job for 120 s (EligibleTime); an administrator's StartTime=now
      // lifts that, so the test need not wait.
      const state = () =>
        spawnSync('scontrol', ['show', 'job', '-o', jobId], { env, encoding: 'utf8' }).stdout;
      await waitFor(() => /JobState=PENDING/.test(state()), 'the requeued job to wait');
      expect(spawnSync('scontrol', ['update', `JobId=${jobId}`, 'StartTime=now'], { env }).status).toBe(0);
      const t = await training;
      expect(t.code, t.stderr).toBe(0);
      const log = readFileSync(join(run, 'slurm', `train.job-${jobId}.log`), 'utf8');
      expect(log).toMatch(/start 0 on .*sdt train --config/);
      expect(log).toMatch(/start 1 on .*sdt train --resume/);
      const plain = join(work, 'train-local');
      expect(sdtSync(args(plain), trainEnv).code).toBe(0);
      const last = `checkpoints/step-${String(steps).padStart(6, '0')}/model.safetensors`;
      expect(readFileSync(join(run, last)).equals(readFileSync(join(plain, last)))).toBe(true);
    },
    SLURM_TEST_MS,
  );
});
