// Gradient all-reduce through NCCL, loaded at run time (no NCCL headers or libraries at build
// time). Two ways to build the communicators: every GPU of one process together
// (ncclCommInitAll; the caller issues all_reduce_sum for every rank inside one group), or one
// rank per process (ncclGetUniqueId on rank 0, the id handed over by dist::share_from_rank0,
// ncclCommInitRank everywhere), the ranks named by the environment (ranks/rendezvous.h).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "ranks/rendezvous.h"
#include "types.cuh"

namespace sdt::cuda {

class Nccl {
 public:
  // Loads libnccl ($SDT_NCCL, then .so.2, .so) and creates one communicator per device in `devices`.
  // Throws naming the library when it is missing or the call fails (with NCCL's own message).
  explicit Nccl(const std::vector<int>& devices);
  // This process's rank of `env`'s world, on the current CUDA device (set it from
  // env.local_rank first). Blocks until every rank has joined or `timeout_ms` passes.
  Nccl(const dist::RankEnv& env, int timeout_ms);
  ~Nccl();
  Nccl(const Nccl&) = delete;
  Nccl& operator=(const Nccl&) = delete;

  int ranks() const;  // communicators in this process
  int world() const;  // ranks in the whole job
  // In-place sum of `count` fp32 values on local communicator `rank` (0 for a per-process rank),
  // enqueued on `stream`.
  // With more than one rank, call it for every rank between group_start() and group_end().
  void all_reduce_sum(int rank, float* buffer, size_t count, Stream stream);
  // The same for fp64 (the trainer's per-step scalars: weight sums, votes, losses).
  void all_reduce_sum(int rank, double* buffer, size_t count, Stream stream);
  void group_start();
  void group_end();
  // "2.21.5" from ncclGetVersion.
  std::string version() const;

 private:
  void all_reduce(int rank, void* buffer, size_t count, int type, Stream stream);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sdt::cuda
