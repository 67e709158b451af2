// sdt-gpu-check: `sdt-native gpu-check` as a binary of its own, so a GPU machine can build and run
// the parity harness (bench/gpu-check.sh) whatever the state of the main binary's dispatch table.
#include "cuda/commands.h"

int main(int argc, char** argv) { return sdt::cuda::cmd_gpu_check(argc, argv); }
