// The CPU backend: sdt::Model (native/src/model) behind the Backend interface; a cache row per
// sequence of a lockstep group.
#pragma once

#include "backend/backend.h"
#include "model/model.h"

namespace sdt::sampler {

class ModelLM : public Backend {
 public:
  // Borrows `model`; Model calls must not overlap, so one ModelLM decodes one sequence at a time.
  explicit ModelLM(Model& model, int del_token_id = -1) : model_(model), del_(del_token_id) {}

  const ModelConfig& config() const override { return model_.config(); }
  std::unique_ptr<LMCache> new_cache(int batch) const override;
  // Lockstep groups larger than this gain little and their caches grow linearly.
  int max_batch() const override { return 16; }
  bool padded_rows() const override { return true; }
  bool ragged_chunks() const override { return true; }
  std::vector<int32_t> never_emit() const override {
    std::vector<int32_t> ids = LanguageModel::never_emit();
    ids.push_back(del_);
    return ids;
  }
  void forward_chunk(LMCache& cache, const int32_t* ids, int n, int start_pos, AttentionMode within,
                     float* logits, bool append, int own_block = 0,
                     const uint8_t* logit_rows = nullptr) const override;
  void forward_full(const int32_t* ids, int n, AttentionMode mode, float* logits) const override;
  Device device() const override { return Device::Cpu; }
  LossStats forward_loss(const Batch& batch, double normalizer, float* token_ce) const override {
    return model_.forward_loss(batch, normalizer, token_ce);
  }
  void forward_batch_logits(const int32_t* ids, int B, int T, AttentionMode mode, const int32_t* segment_ids,
                            float* logits) const override {
    model_.forward_logits(ids, B, T, mode, segment_ids, logits);
  }

 private:
  Model& model_;
  int del_;
};

}  // namespace sdt::sampler
