import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../common/native.ts';

/**
 * A binary of native/build (sdt-native or sdt-native-tests), built on demand with scripts/build-native.js;
 * undefined, so the calling tests skip with a warning, when CMake is missing. $SDT_NATIVE overrides sdt-native.
 */
export function builtNative(name: 'sdt-native' | 'sdt-native-tests' = 'sdt-native'): string | undefined {
  const bin =
    name === 'sdt-native' && process.env.SDT_NATIVE
      ? process.env.SDT_NATIVE
      : join(repoRoot, 'native', 'build', name);
  if (existsSync(bin)) return bin;
  if (spawnSync('cmake', ['--version']).error) {
    console.warn(`native tests skipped: cmake is not installed (needed to build ${name})`);
    return undefined;
  }
  spawnSync('node', [join(repoRoot, 'scripts', 'build-native.js')], { stdio: 'inherit' });
  return existsSync(bin) ? bin : undefined;
}
