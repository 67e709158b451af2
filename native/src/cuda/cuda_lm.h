// The sampler's LanguageModel over CudaModel: the block sampler (native/src/sampler) decodes with
// the GPU forward while its rules stay on the host, so the CPU and GPU backends share one decoder.
#pragma once

#include <memory>
#include <vector>

#include "cuda/cuda_model.h"
#include "sampler/lm.h"

namespace sdt::cuda {

class CudaLM : public sampler::LanguageModel {
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
                     float* logits, bool append, int own_block = 0) const override;
  void forward_full(const int32_t* ids, int n, AttentionMode mode, float* logits) const override;

 private:
  CudaModel& model_;
  int del_;
};

}  // namespace sdt::cuda
