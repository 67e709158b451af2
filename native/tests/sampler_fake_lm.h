// A fake language model for the sampler tests: logits are a fixed pseudo-random function of the
// tokens and positions a query attends to, with the same cache semantics as sdt::Model. It is
// cheap, so decoding rules can be checked exhaustively, and it makes any attention leak visible.
#pragma once

#include <algorithm>
#include <cmath>
#include <memory>
#include <limits>
#include <stdexcept>
#include <vector>

#include "sampler/lm.h"
#include "sdt/splitmix64.h"

namespace sdt_test {

class FakeCache : public sdt::sampler::LMCache {
 public:
  explicit FakeCache(int batch) : rows(static_cast<size_t>(batch)) {}
  int batch() const override { return static_cast<int>(rows.size()); }
  int length() const override { return static_cast<int>(rows[0].size()); }
  void clear() override {
    for (auto& r : rows) r.clear();
  }
  bool keep_rows(const std::vector<int>& keep) override {
    std::vector<std::vector<int32_t>> out;
    for (int r : keep) out.push_back(rows[static_cast<size_t>(r)]);
    rows.swap(out);
    return true;
  }
  std::vector<std::vector<int32_t>> rows;  // the ids each row has appended
};

class FakeLM : public sdt::sampler::LanguageModel {
 public:
  FakeLM(int vocab, int ctx, sdt::AttentionMode mode, int block_size, float sharpness = 6.0f) : sharp_(sharpness) {
    cfg_.vocab_size = vocab;
    cfg_.max_position_embeddings = ctx;
    cfg_.attention_mode = mode;
    cfg_.block_size = block_size;
    cfg_.pad_token_id = 0;
    cfg_.bos_token_id = 1;
    cfg_.eos_token_id = 2;
    cfg_.mask_token_id = 3;
  }
  const sdt::ModelConfig& config() const override { return cfg_; }
  sdt::ModelConfig& mutable_config() { return cfg_; }
  std::unique_ptr<sdt::sampler::LMCache> new_cache(int batch) const override {
    return std::make_unique<FakeCache>(batch);
  }
  int max_batch() const override { return max_batch_; }
  int max_batch_ = 8;

  mutable int calls = 0;
  mutable long rows_run = 0;  // cache rows over all forward_chunk calls

  void forward_chunk(sdt::sampler::LMCache& cache, const int32_t* ids, int n, int start_pos, sdt::AttentionMode within,
                     float* logits, bool append, int own_block = 0,
                     const uint8_t* logit_rows = nullptr) const override {
    (void)logit_rows;  // a fake writes every row
    ++calls;
    auto& c = dynamic_cast<FakeCache&>(cache);
    rows_run += static_cast<long>(c.rows.size());
    if (start_pos > c.length()) throw std::logic_error("FakeLM: start_pos beyond the cache");
    const size_t V = static_cast<size_t>(cfg_.vocab_size);
    for (size_t b = 0; b < c.rows.size(); ++b) {
      std::vector<int32_t>& held = c.rows[b];
      held.resize(static_cast<size_t>(start_pos));
      const int32_t* chunk = ids + b * static_cast<size_t>(n);
      if (logits != nullptr) {
        for (int i = 0; i < n; ++i) {
          std::vector<std::pair<int32_t, int>> seen;
          for (int q = 0; q < start_pos; ++q) seen.push_back({held[static_cast<size_t>(q)], q});
          for (int j = 0; j < n; ++j) {
            if (within == sdt::AttentionMode::Causal && j > i) continue;
            if (i < own_block && j >= own_block) continue;
            seen.push_back({chunk[j], start_pos + j});
          }
          row(seen, start_pos + i, logits + (b * static_cast<size_t>(n) + static_cast<size_t>(i)) * V);
        }
      }
      if (append) held.insert(held.end(), chunk, chunk + n);
    }
  }

  void forward_full(const int32_t* ids, int n, sdt::AttentionMode mode, float* logits) const override {
    ++calls;
    for (int p = 0; p < n; ++p) {
      std::vector<std::pair<int32_t, int>> seen;
      for (int q = 0; q < n; ++q) {
        const bool ok = mode == sdt::AttentionMode::Bidirectional ||
                        (mode == sdt::AttentionMode::Causal && q <= p) ||
                        (mode == sdt::AttentionMode::Block && q / cfg_.block_size <= p / cfg_.block_size);
        if (ok) seen.push_back({ids[q], q});
      }
      row(seen, p, logits + static_cast<size_t>(p) * static_cast<size_t>(cfg_.vocab_size));
    }
  }

 private:
  // One SplitMix64 output from state z: a hash of z.
  static uint64_t mix(uint64_t z) { return sdt::splitmix64_next(z); }
  // Sum of pseudo-random contributions of each attended (token, position) to each vocab entry;
  // the order of `seen` does not matter, as with attention.
  void row(const std::vector<std::pair<int32_t, int>>& seen, int p, float* out) const {
    const int V = cfg_.vocab_size;
    std::vector<double> acc(static_cast<size_t>(V), 0.0);
    for (const auto& [tok, q] : seen) {
      const uint64_t key = mix(static_cast<uint64_t>(tok) * 1000003ULL + static_cast<uint64_t>(q) * 7919ULL +
                               static_cast<uint64_t>(p) * 104729ULL);
      for (int v = 0; v < V; ++v) {
        const uint64_t h = mix(key + static_cast<uint64_t>(v));
        acc[static_cast<size_t>(v)] += (static_cast<double>(h >> 11) * 0x1.0p-53) * 2.0 - 1.0;
      }
    }
    const double scale = sharp_ / std::sqrt(static_cast<double>(std::max<size_t>(seen.size(), 1)));
    for (int v = 0; v < V; ++v) out[v] = static_cast<float>(acc[static_cast<size_t>(v)] * scale);
    out[cfg_.mask_token_id] = -std::numeric_limits<float>::infinity();
  }

  sdt::ModelConfig cfg_;
  float sharp_;
};

}  // namespace sdt_test
