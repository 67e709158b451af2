// Where a process stands in a multi-process run, and the one exchange the ranks need before NCCL
// can connect them: rank 0's ncclUniqueId (any opaque bytes here) sent to every other rank over
// TCP. No collective runs through this; NCCL does those. Plain C++ (no CUDA), so the CPU build
// tests it with real processes.
//
// Environment contract (docs/cuda.md), read once at start:
//   RANK, WORLD_SIZE, LOCAL_RANK       as torchrun sets them; LOCAL_RANK picks the GPU
//   SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID   used when RANK is unset (srun sets them)
//   MASTER_ADDR, MASTER_PORT           rank 0's host and a free TCP port; required when the
//                                      world is larger than 1 (MASTER_PORT defaults to 29500)
//   none of them                       a world of 1 (rank 0, no network)
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace sdt::dist {

struct RankEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr;
  int master_port = 29500;
  std::string source = "default";  // "torchrun", "slurm" or "default": which variables were read
};

// `get` returns a variable's value or nullptr (std::getenv in rank_env()). Throws
// std::invalid_argument naming the variable and what it should be.
RankEnv rank_env_from(const std::function<const char*(const char*)>& get);
RankEnv rank_env();

// Rank 0 listens on MASTER_PORT, waits until every other rank has connected and said who it is
// (rank, world size), then sends each of them `payload`; the others connect to
// MASTER_ADDR:MASTER_PORT (retrying while rank 0 is not up yet) and return what it sent. A world
// of 1 returns `payload` at once. Errors (a duplicate or out-of-range rank, a different world
// size, the deadline passing: with the ranks still missing) throw std::runtime_error naming the
// address and the ranks concerned.
std::vector<uint8_t> share_from_rank0(const RankEnv& env, const std::vector<uint8_t>& payload, int timeout_ms);

}  // namespace sdt::dist
