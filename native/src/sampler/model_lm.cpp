#include "sampler/model_lm.h"

#include <stdexcept>
#include <utility>
#include <vector>

namespace sdt::sampler {

namespace {

class ModelCache : public LMCache {
 public:
  explicit ModelCache(KVCache cache) : kv(std::move(cache)) {}
  int batch() const override { return kv.batch; }
  int length() const override { return kv.length; }
  void clear() override { kv.clear(); }
  void set_row_starts(const std::vector<int>& starts) override {
    check_row_starts(starts, kv.batch, kv.max_len);
    kv.row_start = starts;
  }
  bool keep_rows(const std::vector<int>& keep) override {
    kv.keep_rows(keep);
    return true;
  }
  void set_chunk_lengths(const std::vector<int>& lengths) override {
    if (static_cast<int>(lengths.size()) != kv.batch)
      throw std::invalid_argument("chunk lengths: " + std::to_string(lengths.size()) + " given for a cache of " +
                                  std::to_string(kv.batch) + " rows");
    kv.chunk_len = lengths;
  }
  KVCache kv;
};

}  // namespace

std::unique_ptr<LMCache> ModelLM::new_cache(int batch) const {
  return std::make_unique<ModelCache>(model_.make_cache(batch, model_.config().max_position_embeddings));
}

void ModelLM::forward_chunk(LMCache& cache, const int32_t* ids, int n, int start_pos, AttentionMode within,
                            float* logits, bool append, int own_block, const uint8_t* logit_rows) const {
  auto* c = dynamic_cast<ModelCache*>(&cache);
  if (c == nullptr) throw std::logic_error("ModelLM::forward_chunk: cache was not made by this model");
  if (n == 0) return;
  model_.forward_chunk(c->kv, ids, n, start_pos, within, logits, append, own_block, logit_rows);
}

void ModelLM::forward_full(const int32_t* ids, int n, AttentionMode mode, float* logits) const {
  model_.forward_logits(ids, 1, n, mode, nullptr, logits);
}

}  // namespace sdt::sampler
