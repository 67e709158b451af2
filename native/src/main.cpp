// sdt-native: the native side of sdt. One binary, one subcommand per job; see docs/native.md.
#include <cstdio>
#include <cstring>
#include <string>

#include "gemm/gemm.h"
#include "train/commands.h"

#if __has_include("sampler/commands.h")
#include "sampler/commands.h"
#define SDT_HAVE_SAMPLER 1
#endif

#if defined(SDT_HAVE_CUDA) && __has_include("cuda/commands.h")
#include "cuda/commands.h"
#define SDT_HAVE_GPU_CHECK 1
#endif

namespace {

struct Subcommand {
  const char* name;
  int (*run)(int, char**);
  const char* summary;
};

const Subcommand kCommands[] = {
    {"train", sdt::train::cmd_train, "train from a trainer stream (JSON-line events on stdout)"},
    {"init", sdt::train::cmd_init, "write a randomly initialised checkpoint"},
    {"forward", sdt::train::cmd_forward, "logits (and loss) of a batch of token ids from .npy"},
    {"score", sdt::train::cmd_score, "per-row log-probability of target tokens (trajectory ELBO terms)"},
    {"stream-check", sdt::train::cmd_stream_check, "validate a trainer stream and print a JSON digest"},
    {"bench-train", sdt::train::cmd_bench_train, "training-step throughput against the GEMM backend"},
#ifdef SDT_HAVE_SAMPLER
    {"serve", cmd_serve, "serve generation requests (JSON lines on stdin/stdout)"},
    {"generate", cmd_generate, "generate from a prompt with the block diffusion sampler"},
#endif
#ifdef SDT_HAVE_GPU_CHECK
    {"gpu-check", sdt::cuda::cmd_gpu_check, "CUDA backend against the CPU backend (parity table)"},
#endif
};

void print_help() {
  std::printf("Usage: sdt-native <command> [options]\n\nCommands:\n");
  for (const Subcommand& c : kCommands) std::printf("  %-14s %s\n", c.name, c.summary);
  std::printf("\nRun `sdt-native <command> --help` for a command's options and defaults.\nGEMM backend: %s\n",
              sdt::gemm_backend_name());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0 ||
      std::strcmp(argv[1], "help") == 0) {
    print_help();
    return argc < 2 ? 2 : 0;
  }
  for (const Subcommand& c : kCommands) {
    if (std::strcmp(argv[1], c.name) == 0) return c.run(argc - 1, argv + 1);
  }
  std::fprintf(stderr, "sdt-native: unknown command \"%s\"; run `sdt-native --help` for the list\n", argv[1]);
  return 2;
}
