#ifdef SDT_HAVE_CUDA
#include "cuda/nccl_data_parallel.h"

#include <stdexcept>
#include <string>

#include "cuda/nccl.h"
#include "device.cuh"

namespace sdt::cuda {

namespace {

class NcclDataParallel : public train::DataParallel {
 public:
  NcclDataParallel(const dist::RankEnv& env, int timeout_ms) : env_(env) {
    const int visible = device_count();
    // A launcher that binds each rank to its own GPU (CUDA_VISIBLE_DEVICES of one) leaves it device 0.
    const int device = visible == 1 ? 0 : env.local_rank;
    if (device >= visible) {
      throw std::invalid_argument("LOCAL_RANK=" + std::to_string(env.local_rank) + " but this node shows " +
                                  std::to_string(visible) + " CUDA devices: start at most one rank per visible GPU");
    }
    // Before any allocation: the model, its buffers and the communicator live on this rank's GPU.
    set_device(device);
    nccl_ = std::make_unique<Nccl>(env, timeout_ms);
  }
  int rank() const override { return env_.rank; }
  int world() const override { return env_.world_size; }

  void sum(std::vector<double>& values) override {
    if (values.empty()) return;
    if (scalars_.size() < values.size()) scalars_ = DeviceBuffer<double>(values.size());
    copy_to_device(scalars_.get(), values.data(), values.size() * sizeof(double));
    nccl_->all_reduce_sum(0, scalars_.get(), values.size(), nullptr);
    copy_to_host(values.data(), scalars_.get(), values.size() * sizeof(double));
  }

  void sum_gradients(TrainBackend& backend) override {
    const TrainBackend::Gradients g = backend.gradients();
    if (g.device != Device::Cuda)
      throw std::logic_error("NCCL data parallel: the gradients are not on the GPU (--device cuda)");
    nccl_->all_reduce_sum(0, g.data, g.count, g.stream);
    // The norm and the update that follow read the sums on the same stream; the host waits for
    // NCCL here so that a failure of a peer surfaces at this step.
    stream_synchronize(g.stream);
  }

 private:
  dist::RankEnv env_;
  std::unique_ptr<Nccl> nccl_;
  DeviceBuffer<double> scalars_;
};

}  // namespace

std::unique_ptr<train::DataParallel> make_nccl_data_parallel(const dist::RankEnv& env, int timeout_ms) {
  return std::make_unique<NcclDataParallel>(env, timeout_ms);
}

}  // namespace sdt::cuda
#endif  // SDT_HAVE_CUDA
