/**
 * Stopping and failing: Ctrl-C (SIGINT to `sdt train`) makes sdt-native checkpoint and stop, and the run
 * resumes; a native process that dies is reported with its last stderr lines and the run stays resumable.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { main } from '../bin/main.ts';
import { repoRoot } from '../common/native.ts';
import { readLog } from '../trainer/run-log.ts';
import { nativeOrBuild, stdlibDataset, tempDir } from './train-helpers.ts';

const bin = nativeOrBuild();
let dir = '';
let dataset = '';

const args = (out: string, steps: number): string[] => [
  'train',
  '--dataset',
  dataset,
  '--model',
  'tiny',
  '--steps',
  String(steps),
  '--batch-size',
  '2',
  '--seq-len',
  '32',
  '--val-every',
  '0',
  '--val-batches',
  '1',
  '--checkpoint-every',
  '4',
  '--threads',
  '1',
  '--workers',
  '0',
  '--out',
  out,
];

async function waitFor(cond: () => boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const stepCount = (run: string): number =>
  existsSync(join(run, 'log.jsonl')) ? readLog(run).filter((r) => r.type === 'step').length : 0;

describe.skipIf(!bin)('sdt train stops and failures', () => {
  beforeAll(async () => {
    dir = await tempDir('train-signals');
    dataset = await stdlibDataset(dir, ['json/*.py'], 400);
  });

  it('Ctrl-C checkpoints, stops cleanly and resumes', async () => {
    const run = join(dir, 'sigint');
    const child = spawn('node', [join(repoRoot, 'bin', 'sdt.js'), ...args(run, 300)], {
      env: { ...process.env, SDT_NATIVE: bin },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    const exited = new Promise<number | null>((res) => child.on('close', res));
    await waitFor(() => stepCount(run) >= 3);
    child.kill('SIGINT');
    // Checkpointed and stopped, yet interrupted: the shell sees 130 (128 + SIGINT), not success.
    expect(await exited).toBe(130);
    expect(out).toContain(`sdt train --resume ${run}`);
    const summary = JSON.parse(readFileSync(join(run, 'summary.json'), 'utf8'));
    expect(summary.status).toBe('stopped');
    expect(summary.last_checkpoint).toMatch(/step-\d+$/);
    expect(existsSync(join(summary.last_checkpoint, 'COMPLETE'))).toBe(true);
    const state = JSON.parse(readFileSync(join(summary.last_checkpoint, 'trainer_state.json'), 'utf8'));
    expect(state.step).toBe(summary.steps_done);
    expect(summary.steps_done).toBeLessThan(300);
    expect(await main(['train', '--resume', run, '--quiet'])).toBe(0);
    const resumed = JSON.parse(readFileSync(join(run, 'summary.json'), 'utf8'));
    expect(resumed.status).toBe('complete');
    expect(
      readLog(run)
        .filter((r) => r.type === 'step')
        .map((r) => r.step),
    ).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
  });

  it('a native crash is reported with its stderr, and the run resumes to the same losses', async () => {
    // A wrapper that runs the real binary and kills it (SIGKILL) once its first checkpoint is complete.
    const wrapper = join(dir, 'crashing-native.sh');
    writeFileSync(
      wrapper,
      `#!/bin/sh
# A background job's stdin is /dev/null unless it comes from another descriptor.
exec 3<&0
"${bin}" "$@" <&3 &
pid=$!
out=""; prev=""
for a in "$@"; do [ "$prev" = "--out" ] && out="$a"; prev="$a"; done
until ls "$out"/checkpoints/step-*/COMPLETE >/dev/null 2>&1; do
  kill -0 $pid 2>/dev/null || exit 1
  sleep 0.01
done
echo "crash-test: killing sdt-native" >&2
kill -9 $pid
wait $pid
exit 137
`,
    );
    chmodSync(wrapper, 0o755);
    const run = join(dir, 'crash');
    process.env.SDT_NATIVE = wrapper;
    const errors: string[] = [];
    const origWrite = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => {
      errors.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    let code: number;
    try {
      code = await main([...args(run, 60), '--quiet']);
    } finally {
      process.stderr.write = origWrite;
      process.env.SDT_NATIVE = bin;
    }
    expect(code).toBe(2);
    const msg = errors.join('');
    expect(msg).toMatch(/sdt-native exited with status 137/);
    expect(msg).toContain('crash-test: killing sdt-native');
    expect(msg).toContain(`sdt train --resume ${run}`);
    const failed = JSON.parse(readFileSync(join(run, 'summary.json'), 'utf8'));
    expect(failed.status).toBe('failed');
    expect(failed.steps_done).toBeLessThan(60);

    expect(await main(['train', '--resume', run, '--quiet'])).toBe(0);
    const full = join(dir, 'uninterrupted');
    expect(await main([...args(full, 60), '--quiet'])).toBe(0);
    const losses = (r: string) =>
      readLog(r)
        .filter((x) => x.type === 'step')
        .map((x) => [x.step, (x as { loss: number }).loss]);
    expect(losses(run)).toEqual(losses(full));
  });
});
