// The sampler's LanguageModel over CudaModel: the block sampler (native/src/sampler) decodes with
// the GPU forward while its rules stay on the host, so the CPU and GPU backends share one decoder.
#pragma once

#include <memory>
#include <vector>

#include "backend/backend.h"
#include "cuda/cuda_model.h"

namespace sdt::cuda {

class CudaLM : public Backend {
 public:
  // Borrows `model`; calls must not overlap (one decoding loop at a time).
  explicit CudaLM(CudaModel& model, int del_token_id = -1) : model_(model), del_(del_token_id) {}

  const ModelConfig& config() const override { return model_.config(); }
  std::unique_ptr<sampler::LMCache> new_cache(int batch) const override;
  int max_batch() const override { return 16; }
  bool padded_rows() const override { return true; }
  std::vector<int32_t> never_emit() const override {
    std::vector<int32_t> ids = LanguageModel::never_emit();
    ids.push_back(del_);
    return ids;
  }
  void forward_chunk(sampler::LMCache& cache, const int32_t* ids, int n, int start_pos, AttentionMode within,
                     float* logits, bool append, int own_block = 0,
                     const uint8_t* logit_rows = nullptr) const override;
  void forward_full(const int32_t* ids, int n, AttentionMode mode, float* logits) const override;
  Device device() const override { return Device::Cuda; }
  LossStats forward_loss(const Batch& batch, double normalizer, float* token_ce) const override {
    return model_.forward_loss(batch, normalizer, token_ce);
  }
  void forward_batch_logits(const int32_t* ids, int B, int T, AttentionMode mode, const int32_t* segment_ids,
                            float* logits) const override {
    model_.forward_logits(ids, B, T, mode, segment_ids, logits);
  }

 private:
  CudaModel& model_;
  int del_;
};

// The CUDA backend of make_backend (backend/backend.h): `host`'s weights uploaded to device 0, with the
// cuBLASLt handle and the CudaModel it runs on owned by the result.
std::unique_ptr<Backend> make_cuda_backend(std::unique_ptr<Model> host, int del_token_id);

}  // namespace sdt::cuda
