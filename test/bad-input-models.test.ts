/**
 * Bad input to the train, sample, eval, traj, report and bench commands: each gets a named error (exit 2)
 * before any work, and leaves every file under the work directory as it was (test/bad-input-helpers.ts).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { writeTrajectories } from '../posttrain/trajectories/record.ts';
import type { TrajectoryRow } from '../schemas/trajectory.ts';
import { type BadInputCase, runCase } from './bad-input-helpers.ts';
import { tempDir } from './data-helpers.ts';

let work: string;
const w = (...p: string[]) => join(work, ...p);

const unscored = (id: string): TrajectoryRow => ({
  id,
  checkpoint: 'ckpt/x',
  prompt: Int32Array.from([5, 6]),
  tokens: Int32Array.from([10, 11]),
  text: 'ab',
  eos: true,
  steps: [
    { block: 0, step: 0, kind: 'commit', positions: [0, 1], tokens: [10, 11], confidences: [0.9, 0.8] },
  ],
  forwardPasses: 1,
  settings: '{}',
  elbo: null,
  levSurrogate: null,
  tau: null,
  verifier: null,
});

beforeAll(async () => {
  work = await tempDir('bad-models');
  writeFileSync(w('afile'), 'x');
  mkdirSync(w('adir'));
  mkdirSync(w('data'));
  await writeTrajectories(w('pool.arrow'), [unscored('a'), unscored('b')]);
  await writeTrajectories(w('none.arrow'), []);
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const cases = (): BadInputCase[] => [
  {
    name: 'train --objective ar --attention block',
    argv: ['train', '--objective', 'ar', '--attention', 'block', '--dataset', w('data'), '--out', w('run')],
    message:
      /--attention block and --objective ar cannot be used together: the AR objective is always causal/,
  },
  {
    name: 'train --steps -5',
    argv: ['train', '--steps', '-5', '--out', w('run')],
    message: /--steps must be an integer >= \d; got -5/,
  },
  {
    name: 'train --out under a file',
    argv: ['train', '--dataset', w('data'), '--out', w('afile', 'run')],
    message: /afile is a file, so nothing can be written under it/,
  },
  {
    name: 'train --stage distill --steps 0',
    argv: ['train', '--stage', 'distill', '--steps', '0', '--ckpt', w('adir'), '--out', w('run')],
    message: /--steps must be an integer >= 1; got 0/,
  },
  {
    name: 'sample --record-trajectory a directory',
    argv: ['sample', '--ckpt', w('adir'), '--prompt', 'x', '--record-trajectory', w('adir')],
    message: /--record-trajectory .*adir is a directory; give a file path/,
  },
  {
    name: 'sample --threads -1',
    argv: ['sample', '--ckpt', w('adir'), '--prompt', 'x', '--threads', '-1'],
    message: /--threads must be an integer >= 0; got -1/,
  },
  {
    name: 'sample extra argument',
    argv: ['sample', '--ckpt', w('adir'), 'def f():'],
    message: /unexpected argument "def f\(\):" \(it takes no arguments/,
  },
  {
    name: 'eval humaneval --concurrency 0',
    argv: ['eval', 'humaneval', '--oracle', '--concurrency', '0'],
    message: /--concurrency must be an integer >= 1; got 0/,
  },
  {
    name: 'eval humaneval --k 10 with --n-samples 1',
    argv: ['eval', 'humaneval', '--oracle', '--k', '10', '--n-samples', '1'],
    message: /--k 10 needs at least that many samples per task, but --n-samples is 1/,
  },
  {
    name: 'eval humaneval --timeout 0',
    argv: ['eval', 'humaneval', '--oracle', '--timeout', '0'],
    message: /--timeout must be a number >= 0\.001; got 0/,
  },
  {
    name: 'report pareto --val-loss -1',
    argv: ['report', 'pareto', '--rows', w('afile'), '--val-loss', '-1'],
    message: /--val-loss must be a number >= 0; got -1/,
  },
  {
    name: 'bench sample --threads -2',
    argv: ['bench', 'sample', '--threads', '-2'],
    message: /--threads must be an integer >= 1; got -2/,
  },
  {
    name: 'traj filter X --out X',
    argv: ['traj', 'filter', w('pool.arrow'), '--out', w('pool.arrow')],
    message: /--out .*pool\.arrow is also the input IN; write to another path/,
  },
  {
    name: 'traj filter --report a directory (nothing written first)',
    argv: ['traj', 'filter', w('pool.arrow'), '--out', w('kept.arrow'), '--report', w('adir')],
    message: /--report .*adir is a directory/,
  },
  {
    name: 'traj filter of an unscored file',
    argv: ['traj', 'filter', w('pool.arrow'), '--out', w('kept.arrow')],
    message: /no trajectory of .*pool\.arrow has a elbo score: it is unscored.*sdt traj score/,
  },
  {
    name: 'traj score of no trajectories',
    argv: ['traj', 'score', w('none.arrow'), '--out', w('scored.arrow'), '--skip-verifier'],
    message: /none\.arrow holds no trajectories; nothing to score/,
  },
  {
    name: 'traj show --svg a directory',
    argv: ['traj', 'show', w('pool.arrow'), '--svg', w('adir')],
    message: /--svg .*adir is a directory/,
  },
  {
    name: 'jobs status extra argument',
    argv: ['jobs', 'status', w('adir'), 'more'],
    message: /unexpected argument "more" \(it takes RUN_DIR/,
  },
];

describe('bad input to train, sample, eval, traj, report and bench', () => {
  it('each gets a named error, exit 2, and nothing is written or changed', async () => {
    for (const c of cases()) await runCase(c, work);
  }, 120_000);
});
