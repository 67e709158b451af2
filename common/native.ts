import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from './errors.ts';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The sdt CLI's entry, for processes that run sdt again (Slurm tasks, training ranks). */
export const sdtCli = join(repoRoot, 'bin', 'sdt.js');

/** Path of the sdt-native binary: $SDT_NATIVE, or native/build/sdt-native as `npm install` builds it. */
export function nativeBinary(): string {
  const path = process.env.SDT_NATIVE ?? join(repoRoot, 'native', 'build', 'sdt-native');
  if (!existsSync(path)) {
    throw new UserError(
      `sdt-native not found at ${path}. Build it with \`npm run build:native\` (needs CMake and g++).`,
    );
  }
  return path;
}
