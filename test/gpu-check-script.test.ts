/**
 * bench/gpu-check.sh's control flow on a machine without a GPU: the dry run's plan, and a run
 * against a stand-in binary (test/fixtures/fake-gpu-check.sh) that fails one group, crashes one
 * and hangs one, so the isolation, the ordering and the summary are checked for real.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');
const script = join(root, 'bench/gpu-check.sh');
const fake = join(root, 'test/fixtures/fake-gpu-check.sh');
const dir = mkdtempSync(join(tmpdir(), 'sdt-gpu-check-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[], env: Record<string, string>) {
  const r = spawnSync('bash', [script, ...args], {
    encoding: 'utf8',
    env: { ...process.env, SEED: '7', ...env },
    timeout: 120_000,
  });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

// The step names in the order the script announces them (`>> name (limit ...)`).
function stepOrder(out: string): string[] {
  return [...out.matchAll(/>> (\S+) \(limit/g)].map((m) => m[1] ?? '');
}

function tarList(archive: string): string[] {
  const r = spawnSync('tar', ['-tzf', archive], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((s) => s.length > 0);
}

describe('bench/gpu-check.sh', () => {
  it('--dry-run plans every step, the never-run ones (tensor cores, graphs) after all others but the second seed', () => {
    const out = join(dir, 'dry');
    const r = run(['--dry-run'], {
      OUT: out,
      WORK: join(dir, 'dry-work'),
      GPU_CHECK_BIN: '/nonexistent/sdt-gpu-check',
    });
    expect(r.status).toBe(0);
    const steps = stepOrder(r.out);
    for (const s of [
      'check-embedding',
      'check-model',
      'check-train',
      'bench-gemm',
      'bench-train',
      'bench-decode',
    ]) {
      expect(steps).toContain(s);
    }
    expect(steps).toContain('memcheck');
    expect(steps).toContain('check-graphs');
    const fresh = (s: string) => s.includes('_tc') || s.endsWith('-tc') || s.includes('graphs');
    const firstTc = steps.findIndex(fresh);
    const lastPlain = steps.findLastIndex((s) => !fresh(s) && s !== 'check-seed2');
    expect(firstTc).toBeGreaterThan(0);
    expect(lastPlain).toBeLessThan(firstTc);
    // Nothing ran, yet the summary and the archive are there.
    expect(r.out).toContain('== gpu-check summary');
    expect(existsSync(join(out, 'summary.txt'))).toBe(true);
    expect(tarList(join(out, 'gpu-check-logs.tar.gz'))).toContain('logs/steps.tsv');
  });

  it('isolates a failing, a crashing and a hanging group and summarises the figures', () => {
    const out = join(dir, 'fake');
    const calls = join(dir, 'calls.txt');
    const r = run([], {
      OUT: out,
      WORK: join(dir, 'fake-work'),
      GPU_CHECK_BIN: fake,
      FAKE_CALLS: calls,
      STEP_LIMIT: '2',
      BENCH_LIMIT: '5',
    });
    expect(r.status).toBe(1);
    const summary = readFileSync(join(out, 'summary.txt'), 'utf8');
    expect(summary).toMatch(/step check-rope: failures/);
    expect(summary).toMatch(/step check-chunk: signal 11/);
    expect(summary).toMatch(/step check-sampler: timed out/);
    expect(summary).toMatch(/rope_forward .* FAIL/);
    // The groups after the crash and the hang still ran, each in its own process.
    const ran = readFileSync(calls, 'utf8').split('\n');
    expect(ran.indexOf('only=train bench= attention=scalar')).toBeGreaterThan(
      ran.indexOf('only=sampler bench= attention=scalar'),
    );
    // Ceilings, MFU and decode figures come from the bench processes' RESULT lines.
    expect(summary).toContain('cuBLASLt bf16 GEMM 700 TFLOP/s, device copy 4000 GB/s');
    expect(summary).toMatch(/^train 125M B8 T1024: step 400 ms, 70 TFLOP\/s model, MFU 10% of GEMM/m);
    // attention_tc passed, so the training bench ran again on the tensor-core kernels.
    expect(summary).toMatch(/^train-tc 125M B8 T1024: step 100 ms/m);
    expect(ran).toContain('only=model,decode,train bench= attention=tc');
    expect(summary).toContain(
      'decode batch 1: autoregressive 150 tok/s = 0.9% of the bandwidth bound 16000 tok/s',
    );
    // The summary is the console's last block; every log is in the archive.
    expect(r.out.trimEnd().endsWith(summary.trimEnd())).toBe(true);
    expect(r.err).toBe('');
    const files = tarList(join(out, 'gpu-check-logs.tar.gz'));
    expect(files).toContain('logs/check-rope.log');
    expect(files).toContain('logs/bench-train-tc.log');
  });

  it('skips what the time budget no longer allows, and still writes the summary and the archive', () => {
    const out = join(dir, 'budget');
    const r = run([], {
      OUT: out,
      WORK: join(dir, 'budget-work'),
      GPU_CHECK_BIN: fake,
      FAKE_CALLS: join(dir, 'budget-calls.txt'),
      STEP_LIMIT: '2',
      BENCH_LIMIT: '5',
      BUDGET: '27',
    });
    expect(r.status).toBe(1);
    const summary = readFileSync(join(out, 'summary.txt'), 'utf8');
    expect(summary).toMatch(/step check-seed2: skipped \(budget spent\)/);
    expect(r.out).toMatch(/-- check-seed2 skipped: the 27s budget is spent/);
    expect(tarList(join(out, 'gpu-check-logs.tar.gz'))).toContain('logs/steps.tsv');
  });
});
