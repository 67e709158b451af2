#include "train/data_parallel.h"

#include <stdexcept>

#ifdef SDT_HAVE_CUDA
#include "cuda/nccl_data_parallel.h"
#endif

namespace sdt::train {

namespace {

// A world of one: every sum over the ranks is the rank's own value.
class SingleRank : public DataParallel {
 public:
  int rank() const override { return 0; }
  int world() const override { return 1; }
  void sum(std::vector<double>&) override {}
  void sum_gradients(TrainBackend&) override {}
};

}  // namespace

std::string data_parallel_problem(const dist::RankEnv& env, Device device) {
  if (env.world_size <= 1) return "";
  const std::string world = "a world of " + std::to_string(env.world_size) + " ranks (from the " + env.source +
                            " variables: rank " + std::to_string(env.rank) + ")";
  if (device != Device::Cuda) {
    return world + " needs --device cuda: gradients are summed across ranks by NCCL on the GPUs, and sdt has no "
                   "CPU collective. Train on CPU with one rank (unset RANK/WORLD_SIZE, or sdt train without "
                   "--gpus), or run the ranks on GPUs with --device cuda";
  }
#ifndef SDT_HAVE_CUDA
  return world + " needs a CUDA build of sdt-native (NCCL is loaded by it at run time); this one was built "
                 "without CUDA: rebuild with SDT_CUDA=ON on a machine with the CUDA toolkit (npm run build:native)";
#else
  return "";
#endif
}

std::unique_ptr<DataParallel> make_data_parallel(const dist::RankEnv& env, Device device, int timeout_ms) {
  if (const std::string problem = data_parallel_problem(env, device); !problem.empty())
    throw std::invalid_argument(problem);
  if (env.world_size <= 1) return std::make_unique<SingleRank>();
#ifdef SDT_HAVE_CUDA
  return cuda::make_nccl_data_parallel(env, timeout_ms);
#else
  (void)timeout_ms;
  throw std::logic_error("unreachable: data_parallel_problem refuses more than one rank without CUDA");
#endif
}

}  // namespace sdt::train
