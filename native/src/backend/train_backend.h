// The trainer's side of a backend: forward/backward, the gradient norm and the AdamW update, on the CPU
// Model (the reference) or on CudaModel, chosen by `sdt-native train --device`. The host Model and AdamW
// stay the record checkpoints are written from and restored into; a device backend copies them in when it
// is made and back on sync_to_host().
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "backend/backend.h"
#include "model/model.h"
#include "train/optimizer.h"

namespace sdt {

class TrainBackend {
 public:
  virtual ~TrainBackend() = default;
  virtual Device device() const = 0;
  virtual void zero_grad() = 0;
  // As Model::forward_backward / forward_loss (host batches; gradients are added).
  virtual LossStats forward_backward(const Batch& batch, double normalizer) = 0;
  virtual LossStats forward_loss(const Batch& batch, double normalizer) = 0;
  // L2 norm of the accumulated gradients, before clipping.
  virtual double grad_norm() = 0;
  // Clips to `max_norm` (<= 0: off) given the gradients' `norm`, then one AdamW update at `lr`.
  virtual void apply_update(double lr, double max_norm, double norm) = 0;
  // AdamW updates applied so far (restored ones included).
  virtual int64_t updates() const = 0;
  // Weights, optimizer moments and the update count back into the host Model and AdamW.
  virtual void sync_to_host() = 0;
  // The flat fp32 buffer the steps accumulate gradients in (params() order): host memory on cpu,
  // device memory on cuda with the stream the steps run on. The data-parallel sum works on it in place.
  struct Gradients {
    Device device;
    float* data;
    size_t count;
    void* stream;  // nullptr on cpu
  };
  virtual Gradients gradients() = 0;
};

// Trains `model` with `adamw` (both on the host, weights and moments already initialised or restored) on
// `d`; both must outlive the result. Throws std::runtime_error with device_problem(d) when `d` cannot run.
std::unique_ptr<TrainBackend> make_train_backend(Device d, Model& model, train::AdamW& adamw);

}  // namespace sdt
