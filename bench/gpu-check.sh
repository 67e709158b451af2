#!/usr/bin/env bash
# The CUDA backend's checks in one call on a GPU machine, sized for a short lease: every check
# group and every benchmark part runs in its own process under `timeout`, so a crash, a sticky
# device fault or a hang costs that step alone; output is line-buffered and time-stamped; the
# tensor-core kernels and the step graphs (never run before) come after everything else; a compact summary is the
# last thing printed, and every log is packed into one archive.
#
# Usage: bench/gpu-check.sh [--dry-run] [--help]
#   --dry-run   print every step it would run, in order, with its limit, and run none of them
#               (proves the control flow on a machine without a GPU)
# Env:  OUT        where the archive and the summary go (default native/build-gpu/gpu-check-out);
#                  the logs themselves are written under WORK (default native/build-gpu/gpu-check-work)
#       BUDGET     seconds for the whole run (default 400): a step gets at most what is left, less
#                  15 s kept for the summary and the archive, and is skipped when under 10 s remain
#       GPU_CHECK_BIN  a prebuilt sdt-gpu-check (default native/build-gpu/sdt-gpu-check). When it
#                  is missing or does not start, the script builds one under native/build-gpu-fallback
#                  (warnings are not errors there: a newer compiler must not lose the run).
#       SEED       random seed (default: the clock)
#       CHECKPOINT a trained checkpoint for the decoding benchmark (default: random weights)
#       STEP_LIMIT seconds per check group (default 60); BENCH_LIMIT per bench part (default 90)
#       SDT_CUBLASLT / SDT_NCCL  library paths (found under python3's nvidia packages if unset)
# Exit: 0 when every step ran and passed, 1 when a check failed, crashed or timed out.
set -uo pipefail

usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }
dry=0
for a in "$@"; do
  case "$a" in
    --dry-run) dry=1 ;;
    --help | -h) usage; exit 0 ;;
    *) echo "gpu-check.sh: unknown argument \"$a\"; see --help" >&2; exit 2 ;;
  esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/native/build-gpu/gpu-check-out}
work=${WORK:-$root/native/build-gpu/gpu-check-work}
logs=$work/logs
budget=${BUDGET:-400}
bin=${GPU_CHECK_BIN:-$root/native/build-gpu/sdt-gpu-check}
seed=${SEED:-$(date +%s)}
step_limit=${STEP_LIMIT:-60}
bench_limit=${BENCH_LIMIT:-90}
rm -rf "$logs"
mkdir -p "$logs" "$out"
: >"$logs/steps.tsv"
t_start=$(date +%s)

stamp() { printf '%s +%ds' "$(date -u +%H:%M:%S)" $(($(date +%s) - t_start)); }
say() { printf '\n[%s] == %s\n' "$(stamp)" "$*"; }

# step NAME LIMIT CMD...: runs CMD under `timeout`, its output time-stamped on the console and
# kept in logs/NAME.log; records NAME, exit status and seconds in logs/steps.tsv.
step() {
  local name=$1 limit=$2
  shift 2
  if [ "$dry" = 1 ]; then
    printf '[%s] >> %s (limit %ss): %s\n' "$(stamp)" "$name" "$limit" "$*"
    printf '%s\tdry\t0\n' "$name" >>"$logs/steps.tsv"
    return 0
  fi
  local left=$((budget - 15 - ($(date +%s) - t_start)))
  if [ "$left" -lt 10 ]; then
    printf '[%s] -- %s skipped: the %ss budget is spent\n' "$(stamp)" "$name" "$budget"
    printf '%s\tskip\t0\n' "$name" >>"$logs/steps.tsv"
    return 125
  fi
  [ "$left" -lt "$limit" ] && limit=$left
  printf '[%s] >> %s (limit %ss): %s\n' "$(stamp)" "$name" "$limit" "$*"
  local t0 rc log=$logs/$name.log
  t0=$(date +%s)
  : >"$log"
  # The subshell's stderr is the shell's own ("Segmentation fault" job notices); the command's
  # stderr is merged into the log.
  (
    timeout -k 5 "$limit" stdbuf -oL -eL "$@" 2>&1 | while IFS= read -r line; do
      printf '%s\n' "$line" >>"$log"
      printf '  %(%H:%M:%S)T | %s\n' -1 "$line"
    done
    exit "${PIPESTATUS[0]}"
  ) 2>/dev/null
  rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$(($(date +%s) - t0))" >>"$logs/steps.tsv"
  case $rc in
    0) ;;
    124 | 137) printf '[%s] !! %s TIMED OUT after %ss\n' "$(stamp)" "$name" "$limit" ;;
    1) printf '[%s] !! %s reported failures\n' "$(stamp)" "$name" ;;
    *) printf '[%s] !! %s ended with status %s%s\n' "$(stamp)" "$name" "$rc" "$([ "$rc" -gt 128 ] && echo " (signal $((rc - 128)))")" ;;
  esac
  return "$rc"
}

# passed NAME: the step ran and exited 0.
passed() { awk -F'\t' -v n="$1" '$1 == n && $2 == "0" { ok = 1 } END { exit ok ? 0 : 1 }' "$logs/steps.tsv"; }

say "machine"
if [ "$dry" = 0 ]; then
  { nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv 2>&1 || echo "nvidia-smi not found"; } | tee "$logs/nvidia-smi.txt"
  { command -v nvcc >/dev/null && nvcc --version | tail -2; } || echo "nvcc not on PATH"
  uname -a
fi
gpu_name=$(sed -n 2p "$logs/nvidia-smi.txt" 2>/dev/null | cut -d, -f1)
# Datasheet dense bf16 rates (no sparsity); MFU against peak is printed only for known parts.
case "$gpu_name" in
  *H200* | *"H100 80GB HBM3"* | *H100*SXM*) peak=989 ;;
  *H100*PCIe*) peak=756 ;;
  *) peak=0 ;;
esac

# cuBLASLt and NCCL are opened at run time; pip-installed CUDA libraries are off the loader path.
find_lib() {
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
if [ "$dry" = 0 ]; then
  [ -n "${SDT_CUBLASLT:-}" ] || { SDT_CUBLASLT=$(find_lib 'libcublasLt.so.1[0-9]*') && export SDT_CUBLASLT; }
  [ -n "${SDT_NCCL:-}" ] || { SDT_NCCL=$(find_lib 'libnccl.so.2*') && export SDT_NCCL; }
  for lib in "${SDT_CUBLASLT:-}" "${SDT_NCCL:-}"; do
    [ -n "$lib" ] && export LD_LIBRARY_PATH="$(dirname "$lib")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  done
  echo "cuBLASLt: ${SDT_CUBLASLT:-not found, the default loader search applies}"
  echo "NCCL:     ${SDT_NCCL:-not found, the default loader search applies}"
fi

say "binary"
if [ "$dry" = 0 ] && ! "$bin" --help >/dev/null 2>&1; then
  echo "$bin is missing or does not start here ($("$bin" --help 2>&1 | head -1)); building one"
  [ -x /usr/local/cuda/bin/nvcc ] && export PATH="/usr/local/cuda/bin:$PATH"
  fb=$root/native/build-gpu-fallback
  step build 400 bash -c "cmake -S '$root/native' -B '$fb' -DSDT_CUDA=ON -DSDT_WERROR=OFF -DSDT_BLAS=OWN \
    -DSDT_PORTABLE=ON -DCMAKE_BUILD_TYPE=Release && cmake --build '$fb' --target sdt-gpu-check -j\$(nproc)"
  bin=$fb/sdt-gpu-check
  "$bin" --help >/dev/null 2>&1 || { echo "gpu-check.sh: no usable sdt-gpu-check (see $logs/build.log)" >&2; }
fi
echo "binary: $bin"
if [ "$dry" = 0 ] && command -v cuobjdump >/dev/null; then
  cuobjdump --dump-resource-usage "$bin" >"$logs/resource-usage.txt" 2>&1 || true
fi

g() { step "check-$1" "$step_limit" "$bin" --seed "$seed" --only "$1"; }
b() { step "bench-$1" "$bench_limit" "$bin" --seed "$seed" --bench "$1" "${@:2}"; }
result() { grep -h "^RESULT $1 " "$logs"/bench-*.log 2>/dev/null | tail -1 | awk '{print $3}'; }

say "parity: one process per group (seed $seed)"
for group in embedding rmsnorm rope swiglu attention chunk cross_entropy adamw sampler gemm nccl; do
  g "$group"
done
# The model on the CUDA-core attention kernels here, on the tensor-core ones further down.
for group in model decode train; do
  step "check-$group" "$step_limit" "$bin" --seed "$seed" --only "$group" --attention scalar
done

say "benchmarks: one process per part"
b gemm
b copy
ceil=(--gemm-tflops "$(result gemm_tflops)" --copy-gbs "$(result copy_gbs)" --peak-tflops "$peak")
[ "$dry" = 1 ] && ceil=(--gemm-tflops G --copy-gbs C --peak-tflops "$peak")
b attention
step bench-train "$bench_limit" "$bin" --seed "$seed" --bench train --attention scalar "${ceil[@]}"
step bench-decode "$bench_limit" "$bin" --seed "$seed" --bench decode --attention scalar "${ceil[@]}" \
  ${CHECKPOINT:+--checkpoint "$CHECKPOINT"}

say "compute-sanitizer"
sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
if [ -n "$sanitizer" ] || [ "$dry" = 1 ]; then
  sanitizer=${sanitizer:-compute-sanitizer}
  # A few seconds tell whether it works on this machine (gVisor refuses devices) before it is trusted.
  if step sanitizer-probe 30 "$sanitizer" --tool memcheck --error-exitcode 3 "$bin" --seed "$seed" --only embedding; then
    step memcheck 120 "$sanitizer" --tool memcheck --error-exitcode 3 "$bin" --seed "$seed" \
      --only embedding,rmsnorm,rope,swiglu,attention,chunk,cross_entropy,adamw,sampler
  else
    echo "compute-sanitizer does not work here (see $logs/sanitizer-probe.log): memcheck NOT run"
  fi
else
  echo "compute-sanitizer not found: memcheck NOT run"
fi

say "tensor-core attention (never run before this script)"
g attention_tc
b attention_tc
if passed check-attention_tc || [ "$dry" = 1 ]; then
  step check-model-tc "$step_limit" "$bin" --seed "$seed" --only model,decode,train --attention tc
  step bench-train-tc "$bench_limit" "$bin" --seed "$seed" --bench train --attention tc "${ceil[@]}"
else
  echo "attention_tc failed or did not finish: the model step and training bench on tensor cores are skipped"
fi
if passed sanitizer-probe || [ "$dry" = 1 ]; then
  step memcheck-tc 120 "${sanitizer:-compute-sanitizer}" --tool memcheck --error-exitcode 3 "$bin" --seed "$seed" --only attention_tc
  step racecheck-tc 120 "${sanitizer:-compute-sanitizer}" --tool racecheck --error-exitcode 3 "$bin" --seed "$seed" --only attention_tc
fi

say "CUDA graphs of the training step (never run before this script)"
g graphs
step bench-train-graphs "$bench_limit" "$bin" --seed "$seed" --bench train --graphs --attention scalar "${ceil[@]}"
if passed check-attention_tc || [ "$dry" = 1 ]; then
  step bench-train-tc-graphs "$bench_limit" "$bin" --seed "$seed" --bench train --graphs --attention tc "${ceil[@]}"
  step bench-decode-tc "$bench_limit" "$bin" --seed "$seed" --bench decode --attention tc "${ceil[@]}" \
    ${CHECKPOINT:+--checkpoint "$CHECKPOINT"}
fi

say "parity, second seed (all groups in one process)"
step check-seed2 $((step_limit * 2)) "$bin" --seed $((seed + 1)) \
  --only embedding,rmsnorm,rope,swiglu,attention,chunk,cross_entropy,adamw,sampler,gemm,model,decode,attention_tc

# The summary: what failed, then the figures. Last on the console, also in summary.txt.
summary() {
  echo "== gpu-check summary ($(date -u +%Y-%m-%dT%H:%M:%SZ), seed $seed, ${gpu_name:-unknown GPU}, $(($(date +%s) - t_start)) s)"
  echo "steps: $(awk -F'\t' '{n++; if ($2 == "0" || $2 == "dry") ok++} END {printf "%d of %d passed", ok, n}' "$logs/steps.tsv")"
  awk -F'\t' '$2 != "0" && $2 != "dry" {
    why = $2 == "skip" ? "skipped (budget spent)" : ($2 == 124 || $2 == 137) ? "timed out" : ($2 == 1 ? "failures" : ($2 > 128 ? "signal " $2 - 128 : "status " $2))
    printf "  step %s: %s (%s s)\n", $1, why, $3 }' "$logs/steps.tsv"
  local fails
  fails=$(grep -h -E ' (FAIL|FAIL: .*)$' "$logs"/check-*.log 2>/dev/null | sort -u)
  if [ -n "$fails" ]; then
    echo "failing rows:"
    echo "$fails" | sed 's/^/  /'
  fi
  grep -h "ERROR SUMMARY\|RACECHECK SUMMARY" "$logs"/memcheck*.log "$logs"/racecheck*.log 2>/dev/null | sed 's/^/  sanitizer: /'
  grep -h "FAILED:" "$logs"/bench-*.log 2>/dev/null | sed 's/^/  /'
  grep -h "NCCL: not checked" "$logs"/check-nccl.log 2>/dev/null | sed 's/^/  /'
  local gemm copy
  gemm=$(result gemm_tflops)
  copy=$(result copy_gbs)
  echo "ceilings: cuBLASLt bf16 GEMM ${gemm:-?} TFLOP/s, device copy ${copy:-?} GB/s; datasheet bf16 peak ${peak} TFLOP/s (0: unknown part)"
  for k in scalar tc; do
    local f b fc bc
    f=$(result "attention_${k}_bidirectional_fwd_ms")
    b=$(result "attention_${k}_bidirectional_bwd_ms")
    fc=$(result "attention_${k}_causal_fwd_ms")
    bc=$(result "attention_${k}_causal_bwd_ms")
    [ -n "$f$b" ] && echo "attention $k B8 T1024 h12 d64: bidirectional fwd ${f:-?} ms bwd ${b:-?} ms, causal fwd ${fc:-?} ms bwd ${bc:-?} ms"
  done
  for f in bench-train bench-train-tc bench-train-graphs bench-train-tc-graphs; do
    [ -f "$logs/$f.log" ] || continue
    local line
    line=$(awk 'function f(k) { return (k in v) ? v[k] : "?" }
      /^RESULT /{v[$2]=$3} END {
      if (!("train_step_ms" in v)) exit
      printf "step %s ms, %s TFLOP/s model, MFU %s%% of GEMM, %s%% of peak; forward %s ms, backward %s ms, optimizer %s ms, zero_grad %s ms",
        f("train_step_ms"), f("train_model_tflops"), f("train_mfu_pct_of_gemm"), f("train_mfu_pct_of_peak"),
        f("train_forward_ms"), f("train_backward_ms"), f("train_optimizer_ms"), f("train_zero_grad_ms") }' "$logs/$f.log")
    [ -n "$line" ] && echo "${f#bench-} 125M B8 T1024: $line"
  done
  for f in bench-decode bench-decode-tc; do
    [ -f "$logs/$f.log" ] || continue
    local line
    line=$(awk 'function f(k) { return (k in v) ? v[k] : "?" }
      /^RESULT /{v[$2]=$3} END {
      if (!("decode_ar_tokens_per_s" in v)) exit
      printf "autoregressive %s tok/s = %s%% of the bandwidth bound %s tok/s; block decoding %s tok/s",
        f("decode_ar_tokens_per_s"), f("decode_ar_pct_of_bound"), f("decode_bound_tokens_per_s"),
        f("decode_block_tokens_per_s") }' "$logs/$f.log")
    [ -n "$line" ] && echo "${f#bench-} batch 1: $line"
  done
  echo "logs: $out/gpu-check-logs.tar.gz"
}

say "archive"
summary >"$logs/summary.txt" 2>&1
cp "$logs/summary.txt" "$out/summary.txt"
tar -czf "$out/gpu-check-logs.tar.gz" -C "$work" logs
echo
cat "$out/summary.txt"
if [ "$dry" = 1 ]; then exit 0; fi
awk -F'\t' '$2 != "0" { bad = 1 } END { exit bad ? 1 : 0 }' "$logs/steps.tsv"
