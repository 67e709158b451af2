// The data-parallel world of more than one rank (train/data_parallel.h) on the CUDA backend: one
// NCCL communicator per process (ncclCommInitRank, the unique id from rank 0's TCP rendezvous) on
// GPU LOCAL_RANK; sums run on the training stream, in place.
#pragma once

#include <memory>

#include "ranks/rendezvous.h"
#include "train/data_parallel.h"

namespace sdt::cuda {

std::unique_ptr<train::DataParallel> make_nccl_data_parallel(const dist::RankEnv& env, int timeout_ms);

}  // namespace sdt::cuda
