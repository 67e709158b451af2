// The training path of the model on one GPU: the CPU Model's forward, loss, backward and AdamW
// step composed from the kernels in kernels/ and cuBLASLt GEMMs. Same parameter layout as
// sdt::Model (one flat buffer in params() order), same loss definition, same update rule; the CPU
// Model is the reference (`sdt-native gpu-check`, group "model").
// Precision: fp32 master weights, gradients and AdamW moments; bf16 weight copy and bf16
// activations into every GEMM; fp32 residual stream. Not thread-safe; one instance per device.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/model.h"
#include "device.cuh"
#include "train/optimizer.h"

namespace sdt::cuda {

class CublasLt;

// Keys and values of committed positions on the device, bf16, layout
// [layer][b][kv_head][max_len][head_dim] (K after RoPE), as sdt::KVCache.
struct CudaKVCache {
  int batch = 0;
  int max_len = 0;
  int length = 0;  // positions [0, length) hold valid K/V
  DeviceBuffer<bf16> k, v;
  std::vector<int> row_start;  // as KVCache::row_start
};

class CudaModel {
 public:
  // Takes the architecture and the parameter layout from `layout` (weights are not copied: call
  // upload_params). `lt` must outlive this object.
  CudaModel(const Model& layout, CublasLt& lt);
  ~CudaModel();
  CudaModel(const CudaModel&) = delete;
  CudaModel& operator=(const CudaModel&) = delete;

  const ModelConfig& config() const;
  int64_t num_params() const;

  // Host <-> device copies of the flat fp32 buffers (num_params() floats each).
  void upload_params(const float* host);  // also refreshes the bf16 copy
  void download_params(float* host) const;
  void download_grads(float* host) const;
  void upload_optimizer_state(const float* exp_avg, const float* exp_avg_sq, int64_t updates);
  void download_optimizer_state(float* exp_avg, float* exp_avg_sq) const;
  void zero_grad();
  // The device gradient buffer (num_params() floats) and the stream every step runs on: the
  // data-parallel sum (train/data_parallel.h) adds the other ranks' gradients into it there.
  float* grad_buffer();
  Stream stream() const;

  // As Model::forward_backward / forward_loss: the batch's pointers are HOST arrays (they are
  // checked as the CPU model checks them, then copied). Gradients are ADDED to the device
  // gradient buffer. token_ce (host, nullable, [B*T]) receives the unweighted CE per position.
  LossStats forward_backward(const Batch& batch, double normalizer = 0.0);
  LossStats forward_loss(const Batch& batch, double normalizer = 0.0, float* token_ce = nullptr);

  // Inference, as Model::forward_logits / make_cache / forward_chunk (host ids and logits; the
  // <|mask|> logit is -inf). forward_chunk with logits_out == nullptr skips the vocabulary
  // projection (cache writes only); with append_to_cache false the cache is left as it was, even
  // where the chunk overlaps committed positions; with it true a start_pos below the length rewinds.
  void forward_logits(const int32_t* ids, int B, int T, AttentionMode mode, const int32_t* segment_ids,
                      float* logits_out, const int32_t* position_ids = nullptr);
  CudaKVCache make_cache(int batch, int max_len) const;
  void forward_chunk(CudaKVCache& cache, const int32_t* ids, int C, int start_pos, AttentionMode mode,
                     float* logits_out, bool append_to_cache, int own_block = 0);

  // Clips by global norm (max_norm <= 0: off) and applies one AdamW update at `lr` to every
  // parameter (decay per ParamView::decay). Returns the gradient norm before clipping.
  double optimizer_step(const train::AdamWConfig& cfg, double lr, double max_norm);
  // The gradients' global L2 norm (the reduction optimizer_step clips by), without updating anything:
  // the trainer skips the update of a step whose norm is not finite.
  double grad_norm();
  int64_t optimizer_updates() const;

  // CUDA graphs for forward_backward / forward_loss: with `on`, the second step of a given shape
  // (batch size, length, mask, weights, normalizer) is recorded and later ones replay it (the
  // batch upload and the loss download stay outside). A recording that fails turns graphs off;
  // graph_status() says so and why. Off by default.
  void use_graphs(bool on);
  std::string graph_status() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sdt::cuda
