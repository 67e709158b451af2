/**
 * Files damaged in place after they were written are refused by every reader, with a named error and exit 2:
 * a dataset shard (data export, data inspect, data corrupt, train) and a checkpoint (sample through the engine
 * client, the TypeScript config reader). A tokenizer that is not the model's or the dataset's is refused too.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../common/native.ts';
import { readManifest } from '../pipelines/dataset/manifest.ts';
import { buildDataset } from '../pipelines/run.ts';
import { DEFAULT_SIZE_LIMITS } from '../pipelines/steps/filters.ts';
import { readScored, writeScored } from '../posttrain/trajectories/score.ts';
import { readCheckpointConfig } from '../schemas/checkpoint.ts';
import { resumePoint } from '../trainer/resume.ts';
import { smallTokenizer, stdlibSubset, tempDir } from './data-helpers.ts';
import { nativeOrBuild } from './train-helpers.ts';

let work: string;
let tokPath: string;
let dataDir: string;
const bin = nativeOrBuild();

const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

/** Overwrite 4 KB in the middle of a file with random bytes: same size, other content. */
async function damageInPlace(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  const { size } = await fh.stat();
  const n = Math.min(4096, Math.floor(size / 2));
  await fh.write(randomBytes(n), 0, n, Math.floor((size - n) / 2));
  await fh.close();
}

function sdt(args: string[]) {
  return spawnSync('node', [join(repoRoot, 'bin', 'sdt.js'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...(bin ? { SDT_NATIVE: bin } : {}) },
  });
}

beforeAll(async () => {
  work = await tempDir('integrity');
  tokPath = await smallTokenizer(work, 400);
  dataDir = join(work, 'data');
  const { root, include } = stdlibSubset();
  await buildDataset({
    source: { kind: 'dir', root, include, exclude: [] },
    out: dataDir,
    tokenizerPath: tokPath,
    limits: DEFAULT_SIZE_LIMITS,
    nearDupThreshold: 0.85,
    keepParseErrors: false,
    validationFraction: 0.3,
    shardRecords: 1000,
    workers: 0,
    quiet: true,
  });
}, 120_000);
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('a dataset shard damaged in place', () => {
  it('is read by every reader while intact, and refused by every reader once damaged', async () => {
    const before = sdt(['data', 'export', dataDir, '--out', join(work, 'ok.jsonl'), '--quiet']);
    expect(before.status, before.stderr).toBe(0);
    const manifest = (await readManifest(dataDir))!;
    const shard = join(dataDir, manifest.shards.find((s) => s.split === 'train')!.file);
    await damageInPlace(shard);
    const damaged = readFileSync(shard);
    const out = join(work, 'damaged.jsonl');
    const runs = {
      export: sdt(['data', 'export', dataDir, '--out', out, '--quiet']),
      inspect: sdt(['data', 'inspect', dataDir]),
      corrupt: sdt(['data', 'corrupt', dataDir, '--out', join(work, 'corrupt.arrow')]),
      train: sdt([
        'train',
        '--dataset',
        dataDir,
        '--model',
        'tiny',
        '--steps',
        '2',
        '--out',
        join(work, 'run'),
        '--dry-run',
      ]),
    };
    for (const [name, r] of Object.entries(runs)) {
      expect(r.status, `${name}: ${r.stderr}`).toBe(2);
      expect(r.stderr, name).toContain(shard);
      expect(r.stderr, name).toMatch(/does not match its recorded sha256.*rerun `sdt data build`/);
    }
    expect(existsSync(out)).toBe(false);
    // Refusing it touched nothing.
    expect(readFileSync(shard).equals(damaged)).toBe(true);
  }, 120_000);
});

describe.skipIf(!bin)('a checkpoint', () => {
  let ckpt: string;
  let otherTok: string;
  beforeAll(async () => {
    ckpt = join(work, 'ckpt');
    const config = join(work, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({
        vocab_size: 400,
        hidden_size: 32,
        intermediate_size: 64,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        max_position_embeddings: 64,
        mask_token_id: 3,
      }),
    );
    const init = spawnSync(bin!, ['init', '--config', config, '--out', ckpt, '--tokenizer', tokPath], {
      encoding: 'utf8',
    });
    expect(init.status, init.stderr).toBe(0);
    const other = await tempDir('integrity-tok');
    otherTok = await smallTokenizer(other, 300);
  }, 60_000);

  it('records the size and sha256 of every file and its tokenizer in COMPLETE', () => {
    const marker = JSON.parse(readFileSync(join(ckpt, 'COMPLETE'), 'utf8'));
    for (const name of ['config.json', 'model.safetensors', 'tokenizer.json']) {
      const p = join(ckpt, name);
      expect(marker.files[name]).toEqual({ bytes: readFileSync(p).length, sha256: sha(p) });
    }
    expect(marker.tokenizer_sha256).toBe(sha(tokPath));
  });

  it('refuses a tokenizer that is not the model’s', () => {
    const ok = sdt(['sample', '--ckpt', ckpt, '--prompt', 'def f(', '--max-new', '4', '--block', '4']);
    expect(ok.status, ok.stderr).toBe(0);
    const r = sdt([
      'sample',
      '--ckpt',
      ckpt,
      '--tokenizer',
      otherTok,
      '--prompt',
      'def f(',
      '--max-new',
      '4',
    ]);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/is not the one checkpoint .* was trained with/);
    expect(r.stdout).toBe('');
  }, 60_000);

  it('train --resume on a damaged latest checkpoint names the newest intact one instead of itself', async () => {
    const run = join(work, 'run-resume');
    for (const step of ['step-000001', 'step-000002']) {
      const r = spawnSync(
        bin!,
        ['init', '--config', join(work, 'config.json'), '--out', join(run, 'checkpoints', step)],
        {
          encoding: 'utf8',
        },
      );
      expect(r.status, r.stderr).toBe(0);
    }
    await damageInPlace(join(run, 'checkpoints', 'step-000002', 'model.safetensors'));
    const err = await resumePoint(run).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.name).toBe('IntegrityError');
    expect(err?.message).toMatch(/step-000002.*cannot resume from .*step-000002\. Move it aside/);
    expect(err?.message).toMatch(/continue from .*step-000001, the newest intact checkpoint/);
  }, 60_000);

  it('refuses a checkpoint whose tokenizer.json was replaced, then one whose weights were damaged', async () => {
    const copy = join(work, 'ckpt-tok');
    spawnSync('cp', ['-r', ckpt, copy]);
    copyFileSync(otherTok, join(copy, 'tokenizer.json'));
    const r = sdt(['sample', '--ckpt', copy, '--prompt', 'def f(', '--max-new', '4']);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain(join(copy, 'tokenizer.json'));

    await damageInPlace(join(ckpt, 'model.safetensors'));
    const damaged = sdt(['sample', '--ckpt', ckpt, '--prompt', 'def f(', '--max-new', '4']);
    expect(damaged.status, damaged.stderr).toBe(2);
    expect(damaged.stderr).toMatch(/model\.safetensors does not match its recorded sha256/);
    expect(damaged.stdout).toBe('');
    await expect(readCheckpointConfig(ckpt)).rejects.toThrow(/IntegrityError|recorded sha256/);
  }, 60_000);
});

describe('a trajectory file damaged in place', () => {
  it('is refused by traj show, score and filter; its digest does not change what an intact file reads as', async () => {
    const path = join(work, 'scored.arrow');
    const row = {
      id: 'r1',
      checkpoint: 'ckpt/x',
      prompt: Int32Array.from([5, 6]),
      tokens: Int32Array.from(Array.from({ length: 3000 }, (_, i) => 10 + (i % 50))),
      text: 'y'.repeat(3000),
      eos: true,
      steps: [
        { block: 0, step: 0, kind: 'commit' as const, positions: [0], tokens: [10], confidences: [0.5] },
      ],
      forwardPasses: 1,
      settings: '{}',
      elbo: -3,
      levSurrogate: 0.5,
      tau: 1,
      verifier: 1,
      extras: { levMeanJump: 0.5, elboPositions: 1, syntaxOk: true, testsPass: null },
    };
    await writeScored(path, [row]);
    const [back] = await readScored(path);
    expect(back.id).toBe('r1');
    expect(Array.from(back.tokens)).toEqual(Array.from(row.tokens));
    await damageInPlace(path);
    const damaged = readFileSync(path);
    const runs = {
      show: sdt(['traj', 'show', path]),
      score: sdt(['traj', 'score', path, '--out', join(work, 'rescored.arrow'), '--skip-verifier']),
      filter: sdt(['traj', 'filter', path, '--out', join(work, 'kept.arrow')]),
    };
    for (const [name, r] of Object.entries(runs)) {
      expect(r.status, `${name}: ${r.stderr}`).toBe(2);
      expect(r.stderr, name).toMatch(/scored\.arrow does not match the sha256 its writer recorded/);
    }
    expect(existsSync(join(work, 'kept.arrow'))).toBe(false);
    expect(readFileSync(path).equals(damaged)).toBe(true);
  }, 60_000);
});
