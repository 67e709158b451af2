// The trainer's data-parallel world: one rank per process, ranks named by the environment
// (ranks/rendezvous.h), gradients summed across ranks by NCCL on the CUDA backend. The trainer
// calls the same hooks at every world size; with one rank they change nothing, so the CPU build
// runs and tests that path. A world of more than one rank on the CPU backend, or on a binary
// without CUDA, is refused: the project has no collective of its own (NCCL does them).
//
// What makes N ranks train what one rank would: every rank reads its own part of each step's
// examples (the feed's rule, docs/train.md), the step's weight sum is summed over the ranks first
// and every rank divides its weighted cross-entropy by that global sum, so the ranks' gradients
// add up to the world-1 gradient of the whole step (a token-weighted mean: a plain mean of
// per-rank means would weigh a rank's tokens by its own weight sum).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend/train_backend.h"
#include "ranks/rendezvous.h"

namespace sdt::train {

class DataParallel {
 public:
  virtual ~DataParallel() = default;
  virtual int rank() const = 0;
  virtual int world() const = 0;
  // Sums `values` over the ranks, in place (the step's weight sum, tokens and votes, its loss).
  virtual void sum(std::vector<double>& values) = 0;
  // Sums the gradients `backend` accumulated over the ranks, in place, where they live.
  virtual void sum_gradients(TrainBackend& backend) = 0;
};

// Why `env`'s world cannot train on `device` with this binary; "" when it can.
std::string data_parallel_problem(const dist::RankEnv& env, Device device);

// The world `env` names. One rank: no network, no NCCL. More: selects GPU env.local_rank and joins
// the NCCL communicator (rank 0's unique id over the TCP rendezvous), blocking until every rank has
// joined or `timeout_ms` passed. Throws std::invalid_argument with data_parallel_problem().
std::unique_ptr<DataParallel> make_data_parallel(const dist::RankEnv& env, Device device, int timeout_ms);

}  // namespace sdt::train
