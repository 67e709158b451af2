// Gradient all-reduce across the GPUs of one process through NCCL, loaded at run time (no NCCL
// headers or libraries at build time). One communicator per device, created together
// (ncclCommInitAll); the caller issues all_reduce_sum for every rank inside one group.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "types.cuh"

namespace sdt::cuda {

class Nccl {
 public:
  // Loads libnccl ($SDT_NCCL, then .so.2, .so) and creates one communicator per device in `devices`.
  // Throws naming the library when it is missing or the call fails (with NCCL's own message).
  explicit Nccl(const std::vector<int>& devices);
  ~Nccl();
  Nccl(const Nccl&) = delete;
  Nccl& operator=(const Nccl&) = delete;

  int ranks() const;
  // In-place sum of `count` fp32 values on rank `rank` (its device buffer), enqueued on `stream`.
  // With more than one rank, call it for every rank between group_start() and group_end().
  void all_reduce_sum(int rank, float* buffer, size_t count, Stream stream);
  void group_start();
  void group_end();
  // "2.21.5" from ncclGetVersion.
  std::string version() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sdt::cuda
