/**
 * Drives the sampler's native tests (native/tests/test_sampler*.cpp) through sdt-native-tests: decoding
 * rules against a slow cache-free reference, KV cache against recomputation, AR against full causal argmax,
 * EOS, lockstep batches against one-by-one decoding, and the serve protocol.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { builtNative } from './native-build.ts';

const bin = builtNative('sdt-native-tests');

describe.skipIf(!bin)('sampler native tests', () => {
  for (const [group, filter] of [
    ['every sampler test', 'sampler_'],
    ['the real-model group alone', 'sampler_model_'],
  ] as const) {
    it(group, () => {
      const r = spawnSync(bin!, [filter], { encoding: 'utf8' });
      const out = `${r.stdout}${r.stderr}`;
      expect(out, out).toMatch(/\b0 failed/);
      expect(out).not.toMatch(/^0 passed/m);
      expect(r.status, out).toBe(0);
    });
  }
});
