// sdt-native subcommands of the CUDA backend (compiled when SDT_HAVE_CUDA is defined).
#pragma once

namespace sdt::cuda {

// `sdt-native gpu-check`: every kernel against the CPU reference on fresh random inputs, a table
// on stdout; exit 0 when all pass, 1 on any failure, 2 when no CUDA device is visible.
int cmd_gpu_check(int argc, char** argv);

}  // namespace sdt::cuda
