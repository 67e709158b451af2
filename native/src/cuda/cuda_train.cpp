#ifdef SDT_HAVE_CUDA
#include "cuda/cuda_train.h"

#include "cuda/cublaslt.h"
#include "cuda/cuda_model.h"

namespace sdt::cuda {

namespace {

class CudaTrainBackend : public TrainBackend {
 public:
  CudaTrainBackend(Model& host, train::AdamW& adamw) : host_(host), adamw_(adamw), model_(host, lt_) {
    model_.upload_params(host.param_data());
    model_.upload_optimizer_state(adamw.exp_avg().data(), adamw.exp_avg_sq().data(), adamw.updates());
  }
  Device device() const override { return Device::Cuda; }
  void zero_grad() override { model_.zero_grad(); }
  LossStats forward_backward(const Batch& batch, double normalizer) override {
    return model_.forward_backward(batch, normalizer);
  }
  LossStats forward_loss(const Batch& batch, double normalizer) override { return model_.forward_loss(batch, normalizer); }
  double grad_norm() override { return model_.grad_norm(); }
  // optimizer_step clips by the norm it computes itself (the same reduction as grad_norm).
  void apply_update(double lr, double max_norm, double) override { model_.optimizer_step(adamw_.config(), lr, max_norm); }
  int64_t updates() const override { return model_.optimizer_updates(); }
  void sync_to_host() override {
    model_.download_params(host_.param_data());
    model_.download_optimizer_state(adamw_.exp_avg().data(), adamw_.exp_avg_sq().data());
    adamw_.set_updates(model_.optimizer_updates());
  }
  Gradients gradients() override {
    return {Device::Cuda, model_.grad_buffer(), static_cast<size_t>(model_.num_params()), model_.stream()};
  }

 private:
  Model& host_;
  train::AdamW& adamw_;
  CublasLt lt_;
  CudaModel model_;
};

}  // namespace

std::unique_ptr<TrainBackend> make_cuda_train_backend(Model& host, train::AdamW& adamw) {
  return std::make_unique<CudaTrainBackend>(host, adamw);
}

}  // namespace sdt::cuda
#endif  // SDT_HAVE_CUDA
