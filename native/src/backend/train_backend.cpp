#include "backend/train_backend.h"

#include <stdexcept>

#ifdef SDT_HAVE_CUDA
#include "cuda/cuda_train.h"
#endif

namespace sdt {

namespace {

// The reference: the steps the trainer always took on the host.
class CpuTrainBackend : public TrainBackend {
 public:
  CpuTrainBackend(Model& model, train::AdamW& adamw) : model_(model), adamw_(adamw) {}
  Device device() const override { return Device::Cpu; }
  void zero_grad() override { model_.zero_grad(); }
  LossStats forward_backward(const Batch& batch, double normalizer) override {
    return model_.forward_backward(batch, normalizer);
  }
  LossStats forward_loss(const Batch& batch, double normalizer) override { return model_.forward_loss(batch, normalizer); }
  double grad_norm() override { return train::global_grad_norm(model_.params()); }
  void apply_update(double lr, double max_norm, double norm) override {
    const float clip = train::clip_factor(norm, max_norm);
    if (clip < 1.0f) train::scale_grads(model_.params(), clip);
    adamw_.step(model_.params(), lr);
  }
  int64_t updates() const override { return adamw_.updates(); }
  void sync_to_host() override {}
  Gradients gradients() override {
    return {Device::Cpu, model_.grad_data(), static_cast<size_t>(model_.num_params()), nullptr};
  }

 private:
  Model& model_;
  train::AdamW& adamw_;
};

}  // namespace

std::unique_ptr<TrainBackend> make_train_backend(Device d, Model& model, train::AdamW& adamw) {
  const std::string problem = device_problem(d);
  if (!problem.empty()) throw std::runtime_error(problem);
#ifdef SDT_HAVE_CUDA
  if (d == Device::Cuda) return cuda::make_cuda_train_backend(model, adamw);
#endif
  return std::make_unique<CpuTrainBackend>(model, adamw);
}

}  // namespace sdt
