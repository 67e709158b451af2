#!/usr/bin/env bash
# GPU checks of the CUDA backend in one call on a fresh GPU machine (CMake + nvcc, no Node):
# builds sdt-gpu-check, runs the kernel parity table on two seeds with the cuBLASLt GEMM and
# copy-bandwidth ceilings, then compute-sanitizer memcheck (all checks) and racecheck (attention)
# on a short run. Well under 10 minutes on a 16-core H100 machine (the build dominates).
#
# Usage: bench/gpu-check.sh [build-dir]      (default native/build-gpu)
# Env:   SEED (default: the clock), OUT (logs; default <build-dir>/gpu-check-logs),
#        CHECKPOINT (a trained checkpoint directory for the decoding benchmark; default random weights),
#        SDT_CUBLASLT / SDT_NCCL (library paths; found under the python3 nvidia packages if unset).
# Exit:  0 when every parity check passes and the sanitizers (where they run) report nothing.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/native/build-gpu}
out=${OUT:-$build/gpu-check-logs}
seed=${SEED:-$(date +%s)}
mkdir -p "$out"
status=0

say() { printf '\n== %s\n' "$*"; }

# The toolkit is often installed off the PATH.
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH="/usr/local/cuda/bin:$PATH"; fi
command -v nvcc >/dev/null || { echo "gpu-check.sh: nvcc not found on PATH or in /usr/local/cuda/bin; install the CUDA toolkit" >&2; exit 2; }
command -v cmake >/dev/null || { echo "gpu-check.sh: cmake not found on PATH" >&2; exit 2; }

say "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv 2>&1 | tee "$out/nvidia-smi.txt"
nvcc --version | tail -1

# cuBLASLt and NCCL are loaded at run time; pip-installed CUDA libraries are off the loader path.
find_lib() {  # $1: file name pattern
  local dirs=(/usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu)
  if command -v python3 >/dev/null; then
    while IFS= read -r d; do dirs+=("$d"); done < <(python3 -c 'import nvidia, glob
for p in nvidia.__path__:
    for d in glob.glob(p + "/*/lib"): print(d)' 2>/dev/null)
  fi
  for d in "${dirs[@]}"; do
    for f in "$d"/$1; do [ -e "$f" ] && { echo "$f"; return 0; }; done
  done
  return 1
}
if [ -z "${SDT_CUBLASLT:-}" ]; then SDT_CUBLASLT=$(find_lib 'libcublasLt.so.1[0-9]*') && export SDT_CUBLASLT; fi
if [ -z "${SDT_NCCL:-}" ]; then SDT_NCCL=$(find_lib 'libnccl.so.2*') && export SDT_NCCL; fi
# Their own dependencies (e.g. libcublas next to libcublasLt) resolve through the same directories.
for lib in "${SDT_CUBLASLT:-}" "${SDT_NCCL:-}"; do
  [ -n "$lib" ] && export LD_LIBRARY_PATH="$(dirname "$lib")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
echo "cuBLASLt: ${SDT_CUBLASLT:-not found, the default loader search applies}"
echo "NCCL:     ${SDT_NCCL:-not found, the default loader search applies}"

say "build (Release, sm_90, warnings as errors)"
start=$(date +%s)
if ! cmake -S "$root/native" -B "$build" -DSDT_CUDA=ON -DSDT_WERROR=ON -DCMAKE_BUILD_TYPE=Release \
    >"$out/cmake-configure.txt" 2>&1; then
  tail -30 "$out/cmake-configure.txt"; echo "gpu-check.sh: CMake configure failed" >&2; exit 2
fi
if ! cmake --build "$build" --target sdt-gpu-check -j"$(nproc)" >"$out/build.txt" 2>&1; then
  grep -E "error|warning" "$out/build.txt" | head -40; echo "gpu-check.sh: build failed (log: $out/build.txt)" >&2; exit 2
fi
echo "built in $(( $(date +%s) - start )) s"
bin="$build/sdt-gpu-check"
if command -v cuobjdump >/dev/null; then
  cuobjdump --dump-resource-usage "$bin" >"$out/resource-usage.txt" 2>&1 || true
  echo "kernel resource usage: $out/resource-usage.txt"
fi

say "parity, seed $seed, with ceilings"
bench_args=(--bench)
[ -n "${CHECKPOINT:-}" ] && bench_args+=(--checkpoint "$CHECKPOINT")
"$bin" --seed "$seed" "${bench_args[@]}" 2>&1 | tee "$out/parity-seed1.txt"
rc=${PIPESTATUS[0]}
if [ "$rc" -eq 2 ]; then echo "gpu-check.sh: sdt-gpu-check could not start (see above)" >&2; exit 2; fi
[ "$rc" -eq 0 ] || status=1

say "parity, seed $((seed + 1))"
"$bin" --seed "$((seed + 1))" 2>&1 | tee "$out/parity-seed2.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
if [ -n "$sanitizer" ]; then
  say "compute-sanitizer memcheck (every group but the 200-step run, no bench)"
  groups=embedding,rmsnorm,rope,swiglu,attention,chunk,cross_entropy,adamw,sampler,gemm,model,decode
  "$sanitizer" --tool memcheck --error-exitcode 3 "$bin" --seed "$seed" --only "$groups" >"$out/memcheck.txt" 2>&1
  rc=$?
  grep -E "ERROR SUMMARY|checks, .* failed|Device not supported" "$out/memcheck.txt"
  if [ "$rc" -eq 3 ]; then status=1; echo "memcheck found errors (log: $out/memcheck.txt)"; fi
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then echo "memcheck did not complete (exit $rc; log: $out/memcheck.txt)"; fi

  say "compute-sanitizer racecheck (attention: shared-memory tiles)"
  "$sanitizer" --tool racecheck --error-exitcode 3 "$bin" --seed "$seed" --only attention >"$out/racecheck.txt" 2>&1
  rc=$?
  grep -E "RACECHECK SUMMARY|ERROR SUMMARY|checks, .* failed" "$out/racecheck.txt"
  if [ "$rc" -eq 3 ]; then status=1; echo "racecheck found hazards (log: $out/racecheck.txt)"; fi
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then echo "racecheck did not complete (exit $rc; log: $out/racecheck.txt)"; fi
else
  echo "compute-sanitizer not found: memcheck NOT run"
fi

say "result: $([ $status -eq 0 ] && echo PASS || echo FAIL) (logs in $out)"
exit $status
