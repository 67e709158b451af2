/**
 * `sdt eval <suite> --executor local --tasks N`: the merged results.jsonl and summaries equal the
 * in-process eval's except the timing fields, for 1 part and for 3, with a sampled model (the seeds of a
 * batch are the in-process run's) and with the oracle; a rerun runs only the parts without a marker.
 * test/jobs-slurm.test.ts runs the same on a throwaway Slurm cluster.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partRange } from '../eval/distributed.ts';
import { smallTokenizer, tempDir } from './data-helpers.ts';
import { evalOutputs, initCheckpoint, sdtSync, snapshot, synthTasks } from './jobs-helpers.ts';
import { builtNative, tinyModelConfig } from './native-build.ts';

const CHILD_PROCESS_TEST_MS = 400_000;
let work = '';
let synth = '';

beforeAll(async () => {
  work = await tempDir('jobs-eval');
  synth = synthTasks(join(work, 'synth'));
}, CHILD_PROCESS_TEST_MS);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('parts of an eval', () => {
  it('cover the tasks in order, in whole batches, for any number of parts', () => {
    for (const n of [1, 7, 8, 9, 20, 500])
      for (const parts of [1, 2, 3, 5, 70]) {
        const ranges = Array.from({ length: parts }, (_, r) => partRange(n, r, parts, 8));
        expect(ranges[0][0]).toBe(0);
        expect(ranges.at(-1)![1]).toBe(n);
        for (let r = 1; r < parts; r++) expect(ranges[r][0]).toBe(ranges[r - 1][1]);
        for (const [lo, hi] of ranges) {
          expect(lo % 8).toBe(0);
          expect(hi === n || hi % 8 === 0).toBe(true);
        }
      }
  });
});

const bin = builtNative();
describe('eval on the local executor', () => {
  it(
    'the oracle over 3 parts equals the in-process eval; a rerun runs only the part without a marker',
    () => {
      const args = ['eval', 'synth', '--oracle', '--data', synth, '--quiet'];
      const one = sdtSync([...args, '--out', join(work, 'oracle-one')]);
      expect(one.code, one.stderr).toBe(0);
      const three = join(work, 'oracle-three');
      const r = sdtSync([...args, '--out', three, '--tasks', '3', '--max-parallel', '2']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('20/20 tasks pass');
      expect(evalOutputs(three)).toEqual(evalOutputs(join(work, 'oracle-one')));

      const run = `${three}.run`;
      rmSync(join(run, 'completions', '00001'));
      rmSync(join(run, 'parts', 'part-00001'), { recursive: true });
      rmSync(three, { recursive: true });
      const again = sdtSync([...args, '--out', three, '--tasks', '3']);
      expect(again.code, again.stderr).toBe(0);
      const tasks = readFileSync(join(run, 'submissions.jsonl'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { role: string; ranks: number[] })
        .filter((s) => s.role === 'tasks');
      expect(tasks.map((s) => s.ranks)).toEqual([[0, 1, 2], [1]]);
      expect(evalOutputs(three)).toEqual(evalOutputs(join(work, 'oracle-one')));

      // Other settings for the same run directory: refused, nothing in it changed.
      const before = snapshot(run);
      const other = sdtSync([...args, '--out', three, '--tasks', '3', '--timeout', '5']);
      expect(other.code).toBe(2);
      expect(other.stderr).toContain(
        `run directory ${run} was made with other settings (differs in: timeout)`,
      );
      expect(snapshot(run)).toEqual(before);
    },
    CHILD_PROCESS_TEST_MS,
  );

  it.skipIf(!bin)(
    'a sampled model (temperature 0.8, 2 samples): 1 part and 3 parts give the in-process results',
    async () => {
      const ckpt = initCheckpoint(
        bin!,
        tinyModelConfig({ vocab_size: 600 }),
        await smallTokenizer(work),
        join(work, 'ckpt'),
      );
      const env = { ...process.env, SDT_NATIVE: bin };
      const args = ['eval', 'synth', '--ckpt', ckpt, '--data', synth, '--quiet'];
      args.push('--block', '4', '--max-new', '12', '--temperature', '0.8', '--seed', '5', '--n-samples', '2');
      const inproc = join(work, 'model-inproc');
      const a = sdtSync([...args, '--out', inproc], env);
      expect(a.code, a.stderr).toBe(0);
      const expected = evalOutputs(inproc);
      // Sampling at temperature 0.8 differs across samples: the seeds are exercised.
      const results = readFileSync(join(inproc, 'results.jsonl'), 'utf8').split('\n').filter(Boolean);
      const texts = results.map((l) => (JSON.parse(l) as { completion: string }).completion);
      expect(new Set(texts).size).toBeGreaterThan(texts.length / 2);
      for (const tasks of ['1', '3']) {
        const out = join(work, `model-${tasks}`);
        const r = sdtSync([...args, '--out', out, '--tasks', tasks, '--run-dir', `${out}.run`], env);
        expect(r.code, r.stderr).toBe(0);
        expect(evalOutputs(out)).toEqual(expected);
      }
      expect(existsSync(join(work, 'model-3.run', 'parts', 'part-00002', 'results.jsonl'))).toBe(true);
    },
    CHILD_PROCESS_TEST_MS,
  );

  it(
    'bad input before anything is written: no --out, a missing checkpoint, --detach without Slurm',
    () => {
      const args = ['eval', 'synth', '--data', synth, '--quiet', '--tasks', '2'];
      const noOut = sdtSync([...args, '--oracle']);
      expect(noOut.code).toBe(2);
      expect(noOut.stderr).toMatch(/--out DIR is needed with --executor or --tasks/);
      const out = join(work, 'never');
      const noCkpt = sdtSync([...args, '--ckpt', join(work, 'nowhere'), '--out', out]);
      expect(noCkpt.code).toBe(2);
      expect(noCkpt.stderr).toContain(`--ckpt ${join(work, 'nowhere')}: no such directory`);
      const detach = sdtSync([...args, '--oracle', '--out', out, '--detach']);
      expect(detach.code).toBe(2);
      expect(detach.stderr).toContain('--detach needs --executor slurm');
      expect(existsSync(out)).toBe(false);
    },
    CHILD_PROCESS_TEST_MS,
  );
});
