/**
 * Drives every native unit test (native/tests/*.cpp) through the sdt-native-tests binary, one filter per
 * group so a failure names its group. The sampler group runs in sample-native.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { builtNative } from './native-build.ts';

const bin = builtNative('sdt-native-tests');
const groups = {
  GEMM: 'gemm_',
  'ops (finite-difference gradients)': 'ops_',
  'model (gradients, overfit, KV cache, HF reference)': 'model_',
  'trajectory scoring': 'score_',
  'CRC-32': 'crc32_',
  JSON: 'json_',
  safetensors: 'safetensors_',
  npy: 'npy_',
  'trainer stream': 'stream_round_trip',
  AdamW: 'adamw_',
  'LR schedule': 'lr_schedule_',
  clipping: 'clipping_',
  'training loop (resume, non-finite, eval, checkpoints)': 'train_',
};

describe.skipIf(!bin)('native unit tests', () => {
  for (const [name, filter] of Object.entries(groups)) {
    it(name, () => {
      const r = spawnSync(bin as string, [filter], { encoding: 'utf8' });
      const summary = /(\d+) passed, (\d+) failed/.exec(r.stdout);
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(Number(summary?.[1] ?? 0), `no native test matched ${filter}`).toBeGreaterThan(0);
    });
  }
});
