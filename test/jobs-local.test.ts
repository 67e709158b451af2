/**
 * The executor machinery without a scheduler: a distributed data build run by the local executor equals
 * the in-process build byte for byte, a rerun runs only the tasks without a completion marker, and a run
 * directory made with other settings is refused. (test/jobs-slurm.test.ts runs the same on Slurm.)
 */
import { rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arraySpec } from '../jobs/executor.ts';
import { parseArrayIds, parseScontrolJobs } from '../jobs/slurm.ts';
import { pythonStdlibDir } from '../pipelines/sources/pystdlib.ts';
import { readScored, type ScoredRow } from '../posttrain/trajectories/score.ts';
import { smallTokenizer, tempDir } from './data-helpers.ts';
import { initCheckpoint, sdtSync, snapshot } from './jobs-helpers.ts';
import { builtNative, tinyModelConfig } from './native-build.ts';
import { mulberry32 } from './prng.ts';

// Every check runs sdt in child processes; under a loaded CI machine they take minutes.
const CHILD_PROCESS_TEST_MS = 400_000;
let work = '';
let base: string[] = [];

beforeAll(async () => {
  work = await tempDir('jobs-local');
  const tok = await smallTokenizer(work);
  base = ['data', 'build', '--tokenizer', tok, '--quiet', '--source', pythonStdlibDir()];
  base.push(
    '--include',
    'json/*.py',
    '--include',
    'email/*.py',
    '--shard-records',
    '6',
    '--validation-fraction',
    '0.2',
  );
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('local executor', () => {
  it(
    '3 tasks and a merge equal the in-process build; a rerun runs only the tasks without a marker',
    async () => {
      const local = join(work, 'inproc');
      const dist = join(work, 'dist');
      const run = join(work, 'dist-run');
      expect(sdtSync([...base, '--out', local, '--workers', '1']).code).toBe(0);
      const r = sdtSync([...base, '--out', dist, '--tasks', '3', '--max-parallel', '2', '--run-dir', run]);
      expect(r.code, r.stderr).toBe(0);
      expect(snapshot(dist)).toEqual(snapshot(local));

      // Task 1's marker and part gone, the merged output gone: only task 1 and the merge run again.
      rmSync(join(run, 'completions', '00001'));
      rmSync(join(run, 'parts', 'part-00001.bin'));
      rmSync(dist, { recursive: true });
      const again = sdtSync([...base, '--out', dist, '--tasks', '3', '--run-dir', run]);
      expect(again.code, again.stderr).toBe(0);
      const subs = (await readFile(join(run, 'submissions.jsonl'), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(subs.filter((s) => s.role === 'tasks').map((s) => s.ranks)).toEqual([[0, 1, 2], [1]]);
      expect(snapshot(dist)).toEqual(snapshot(local));

      const before = snapshot(run);
      const other = sdtSync([
        ...base,
        '--out',
        join(work, 'other'),
        '--tasks',
        '3',
        '--run-dir',
        run,
        '--min-bytes',
        '10',
      ]);
      expect(other.code).toBe(2);
      expect(other.stderr).toContain(
        `run directory ${run} was made with other settings (differs in: limits, out)`,
      );
      expect(snapshot(run)).toEqual(before);
    },
    CHILD_PROCESS_TEST_MS,
  );
});

const bin = builtNative();
describe.skipIf(!bin)('traj generate on the local executor', () => {
  it(
    '2 tasks (shards r, r+2, ...) and the merge equal the in-process pool byte for byte',
    async () => {
      const ckpt = initCheckpoint(
        bin!,
        tinyModelConfig({ vocab_size: 600, attention_mode: 'block' }),
        join(work, 'tokenizer.json'),
        join(work, 'ckpt'),
      );
      const prompts = join(work, 'prompts.jsonl');
      writeFileSync(
        prompts,
        ['def add(a, b):\n', 'import os\n', 'class A:\n', 'x = [', 'for i in range(3):\n']
          .map((p) => `${JSON.stringify(p)}\n`)
          .join(''),
      );
      const args = [
        'traj',
        'generate',
        '--ckpt',
        ckpt,
        '--prompts',
        prompts,
        '--k',
        '2',
        '--shard-prompts',
        '2',
      ];
      args.push('--batch', '2', '--max-new', '12', '--block', '4', '--temperature', '0.8');
      const env = { ...process.env, SDT_NATIVE: bin };
      const one = sdtSync([...args, '--out', join(work, 'pool-one')], env);
      expect(one.code, one.stderr).toBe(0);
      const two = sdtSync(
        [...args, '--out', join(work, 'pool-two'), '--tasks', '2', '--max-parallel', '2'],
        env,
      );
      expect(two.code, two.stderr).toBe(0);
      expect(snapshot(join(work, 'pool-two'))).toEqual(snapshot(join(work, 'pool-one')));
      expect([...snapshot(join(work, 'pool-one')).keys()].sort()).toEqual([
        'manifest.json',
        'shard-00000.arrow',
        'shard-00001.arrow',
        'shard-00002.arrow',
      ]);
    },
    CHILD_PROCESS_TEST_MS,
  );
});

describe.skipIf(!bin)('traj score on the local executor', () => {
  it(
    '3 slices scored apart and concatenated: the same rows, ELBO equal up to float32 batching',
    async () => {
      const pool = join(work, 'pool-one');
      const ckpt = join(work, 'ckpt');
      const env = { ...process.env, SDT_NATIVE: bin };
      const args = ['traj', 'score', pool, '--ckpt', ckpt];
      const one = sdtSync([...args, '--out', join(work, 'scored-one.arrow')], env);
      expect(one.code, one.stderr).toBe(0);
      const three = sdtSync([...args, '--out', join(work, 'scored-three.arrow'), '--tasks', '3'], env);
      expect(three.code, three.stderr).toBe(0);
      const a = await readScored(join(work, 'scored-one.arrow'));
      const b = await readScored(join(work, 'scored-three.arrow'));
      expect(b.length).toBe(10);
      const plain = (r: ScoredRow) =>
        JSON.stringify({ ...r, elbo: null }, (_k, v) =>
          ArrayBuffer.isView(v) ? Array.from(v as Int32Array) : v,
        );
      expect(b.map(plain)).toEqual(a.map(plain));
      // Step rows of every trajectory share the engine's batches, so a slice's batches differ from the
      // whole input's: float32 sums in another order.
      for (let i = 0; i < a.length; i++)
        expect(Math.abs(b[i].elbo! - a[i].elbo!)).toBeLessThan(1e-5 * Math.abs(a[i].elbo!));
    },
    CHILD_PROCESS_TEST_MS,
  );
});

describe('Slurm array notation', () => {
  it('arraySpec and parseArrayIds round-trip any set of ranks', () => {
    const rand = mulberry32(7);
    for (let t = 0; t < 200; t++) {
      const ranks = [
        ...new Set(Array.from({ length: 1 + Math.floor(rand() * 20) }, () => Math.floor(rand() * 40))),
      ].sort((a, b) => a - b);
      expect(parseArrayIds(`${arraySpec(ranks)}%4`)).toEqual(ranks);
    }
  });

  it('reads array elements, pending ranges and exit codes from scontrol -o lines', () => {
    const text = [
      'JobId=12 ArrayJobId=11 ArrayTaskId=1 JobName=x JobState=CANCELLED Reason=None ExitCode=0:15 StdOut=/r/logs/task-1.job-11.log',
      'JobId=11 ArrayJobId=11 ArrayTaskId=2-3%2 JobName=x JobState=PENDING Reason=JobArrayTaskLimit ExitCode=0:0 StdOut=/r/logs/task-%a.job-%A.log',
    ].join('\n');
    const jobs = parseScontrolJobs(text);
    expect(jobs.map((j) => [j.jobId, j.ranks, j.state, j.exitCode])).toEqual([
      ['12', [1], 'CANCELLED', '0:15'],
      ['11', [2, 3], 'PENDING', '0:0'],
    ]);
    expect(jobs[0].log).toBe('/r/logs/task-1.job-11.log');
  });
});
