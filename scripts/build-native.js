#!/usr/bin/env node
// Builds native/ (the sdt-native binary) with CMake into native/build. Runs on `npm install`.
// Env: SDT_NATIVE_BUILD_DIR (default native/build), SDT_CUDA (AUTO|ON|OFF, default OFF here so that an
// install stays quick; CI compiles the kernels in a separate build), SDT_BLAS (OWN|AUTO|OPENBLAS, default OWN: docs/model.md).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'native');
const build = resolve(root, process.env.SDT_NATIVE_BUILD_DIR ?? 'native/build');

if (!existsSync(join(src, 'src', 'main.cpp'))) {
  console.log('sdt: native/src/main.cpp not present yet; skipping the native build');
  process.exit(0);
}

function run(cmd, args) {
  console.log(`sdt: ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.error) {
    console.error(
      `sdt: could not run ${cmd} (${r.error.message}). Install CMake >= 3.20 and a C++17 compiler.`,
    );
    process.exit(1);
  }
  if (r.status !== 0) {
    console.error(`sdt: native build failed (${cmd} exited ${r.status}); see the compiler output above.`);
    process.exit(r.status ?? 1);
  }
}

const configure = [
  '-S',
  src,
  '-B',
  build,
  '-DCMAKE_BUILD_TYPE=Release',
  `-DSDT_CUDA=${process.env.SDT_CUDA ?? 'OFF'}`,
  `-DSDT_BLAS=${process.env.SDT_BLAS ?? 'OWN'}`,
  // Node's headers, for the data build's tree-sitter addon (native/node).
  `-DSDT_NODE_INCLUDE=${resolve(dirname(process.execPath), '..', 'include', 'node')}`,
];
if (process.argv.includes('--force') || !existsSync(join(build, 'CMakeCache.txt'))) run('cmake', configure);
run('cmake', ['--build', build, '-j', String(Math.max(1, cpus().length))]);
