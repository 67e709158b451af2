// The sampler on the real model (randomly initialised): the KV-cache paths it takes must give the
// logits a cache-free forward gives, and its decodes must equal the slow references.
#include <algorithm>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <vector>

#include "model/model.h"
#include "sampler/decode.h"
#include "sampler/model_lm.h"
#include "sampler_reference.h"
#include "test_framework.h"

using namespace sdt::sampler;
using sdt::AttentionMode;

namespace {

sdt::ModelConfig tiny_config(AttentionMode mode) {
  sdt::ModelConfig c;
  c.vocab_size = 40;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 64;
  c.attention_mode = mode;
  c.block_size = 4;
  c.pad_token_id = 0;
  c.bos_token_id = 1;
  c.eos_token_id = 2;
  c.mask_token_id = 3;
  return c;
}

// Random weights are nearly uniform; scaling them up gives the model opinions, so decodes
// depend on the context and confidences spread out.
std::unique_ptr<sdt::Model> tiny_model(AttentionMode mode, uint64_t seed) {
  auto m = std::make_unique<sdt::Model>(tiny_config(mode));
  m->init(seed);
  for (auto& p : m->params()) {
    if (p.decay)
      for (int64_t i = 0; i < p.numel; ++i) p.data[i] *= 6.0f;
  }
  return m;
}

// Wraps a model, mirrors what each cache holds and checks every chunk's logits against a full
// forward of (cache contents + chunk) under `reference_mode`.
class CheckingLM : public LanguageModel {
 public:
  CheckingLM(const LanguageModel& inner, AttentionMode reference_mode) : inner_(inner), mode_(reference_mode) {}
  const sdt::ModelConfig& config() const override { return inner_.config(); }
  std::unique_ptr<LMCache> new_cache(int batch) const override {
    mirror_.clear();
    return inner_.new_cache(batch);
  }
  void forward_chunk(LMCache& cache, const int32_t* ids, int n, int start, AttentionMode within, float* logits,
                     bool append, int own_block, const uint8_t* logit_rows) const override {
    inner_.forward_chunk(cache, ids, n, start, within, logits, append, own_block, logit_rows);
    std::vector<int32_t> seq(mirror_.begin(), mirror_.begin() + start);
    seq.insert(seq.end(), ids, ids + n);
    if (logits != nullptr) {
      const size_t V = static_cast<size_t>(config().vocab_size);
      std::vector<float> full(seq.size() * V);
      inner_.forward_full(seq.data(), static_cast<int>(seq.size()), mode_, full.data());
      for (int i = own_block; i < n; ++i) {  // an own block's logit rows are not written
        if (logit_rows != nullptr && logit_rows[i] == 0) continue;  // nor are rows the caller does not read
        for (size_t v = 0; v < V; ++v) {
          const float a = logits[static_cast<size_t>(i) * V + v];
          const float b = full[(static_cast<size_t>(start + i)) * V + v];
          if (std::isinf(a) && std::isinf(b)) continue;
          max_diff = std::max(max_diff, static_cast<double>(std::fabs(a - b)));
        }
      }
      ++checked;
    }
    if (append) mirror_ = seq;
  }
  void forward_full(const int32_t* ids, int n, AttentionMode mode, float* logits) const override {
    inner_.forward_full(ids, n, mode, logits);
  }
  mutable double max_diff = 0.0;
  mutable int checked = 0;

 private:
  const LanguageModel& inner_;
  AttentionMode mode_;
  mutable std::vector<int32_t> mirror_;
};

// The model with every row's logits computed: the sampler's logit_rows hint dropped.
class AllRowsLM : public LanguageModel {
 public:
  explicit AllRowsLM(const LanguageModel& inner) : inner_(inner) {}
  const sdt::ModelConfig& config() const override { return inner_.config(); }
  std::unique_ptr<LMCache> new_cache(int batch) const override { return inner_.new_cache(batch); }
  int max_batch() const override { return inner_.max_batch(); }
  bool padded_rows() const override { return inner_.padded_rows(); }
  bool ragged_chunks() const override { return inner_.ragged_chunks(); }
  void forward_chunk(LMCache& cache, const int32_t* ids, int n, int start, AttentionMode within, float* logits,
                     bool append, int own_block, const uint8_t* logit_rows) const override {
    if (logit_rows != nullptr) ++hinted;
    inner_.forward_chunk(cache, ids, n, start, within, logits, append, own_block, nullptr);
  }
  void forward_full(const int32_t* ids, int n, AttentionMode mode, float* logits) const override {
    inner_.forward_full(ids, n, mode, logits);
  }
  mutable int hinted = 0;

 private:
  const LanguageModel& inner_;
};

std::vector<int32_t> prompt_of(int n) {
  std::vector<int32_t> p;
  for (int i = 0; i < n; ++i) p.push_back(5 + (i * 11) % 30);
  return p;
}

// Settings of the batch-against-alone tests: threshold decoding of blocks of 4 without <|eos|>, with
// cache refreshes for bidirectional checkpoints and AR decoding for causal ones.
SamplerSettings lockstep_settings(AttentionMode mode, int max_new) {
  SamplerSettings s;
  s.block_size = 4;
  s.max_new = max_new;
  s.threshold = 0.7f;
  s.eos_id = -1;
  s.refresh_every = mode == AttentionMode::Bidirectional ? 2 : 0;
  if (mode == AttentionMode::Causal) s.mode = DecodeMode::Autoregressive;
  return s;
}

}  // namespace

TEST(sampler_model_block_cache_equals_recompute) {
  auto model = tiny_model(AttentionMode::Block, 11);
  const ModelLM lm(*model);
  const CheckingLM checking(lm, AttentionMode::Block);
  for (int plen : {5, 8}) {
    SamplerSettings s;
    s.block_size = 4;
    s.max_new = 14;
    s.threshold = 0.6f;
    s.eos_id = -1;
    const Generation g = generate(checking, prompt_of(plen), s);
    CHECK_EQ(g.tokens.size(), static_cast<size_t>(14));
  }
  CHECK(checking.checked > 8);
  CHECK(checking.max_diff < 1e-3);
}

TEST(sampler_model_threshold_one_matches_slow_reference) {
  auto model = tiny_model(AttentionMode::Block, 12);
  const ModelLM lm(*model);
  SamplerSettings s;
  s.block_size = 4;
  s.max_new = 13;
  s.threshold = 1.0f;
  s.max_per_step = 1;
  s.eos_id = -1;
  for (int plen : {3, 8}) {
    const auto prompt = prompt_of(plen);
    const Generation g = generate(lm, prompt, s);
    CHECK(g.tokens == sdt_test::slow_reference(lm, prompt, 13, -1));
    CHECK_EQ(g.steps, 13);
  }
}

TEST(sampler_model_ar_matches_full_causal_argmax) {
  auto model = tiny_model(AttentionMode::Causal, 13);
  const ModelLM lm(*model);
  const CheckingLM checking(lm, AttentionMode::Causal);
  SamplerSettings s;
  s.mode = DecodeMode::Autoregressive;
  s.max_new = 12;
  s.eos_id = -1;
  const auto prompt = prompt_of(6);
  const Generation g = generate(checking, prompt, s);
  std::vector<int32_t> seq(prompt);
  std::vector<float> logits;
  const size_t V = 40;
  for (int k = 0; k < 12; ++k) {
    logits.assign(seq.size() * V, 0.0f);
    lm.forward_full(seq.data(), static_cast<int>(seq.size()), AttentionMode::Causal, logits.data());
    seq.push_back(sdt_test::greedy(logits.data() + (seq.size() - 1) * V, lm.config()).first);
  }
  CHECK(g.tokens == std::vector<int32_t>(seq.begin() + 6, seq.end()));
  CHECK(checking.max_diff < 1e-3);
}

TEST(sampler_model_bidirectional_refresh_costs_one_pass_per_refresh) {
  auto model = tiny_model(AttentionMode::Bidirectional, 14);
  const ModelLM lm(*model);
  SamplerSettings s;
  s.block_size = 4;
  s.max_new = 16;
  s.eos_id = -1;
  const Generation plain = generate(lm, prompt_of(5), s);
  s.refresh_every = 1;
  // Without refresh each block is written to the cache by the next block's first step; a refresh is a
  // call of its own, after every block but the last. Either way it stays deterministic.
  const Generation refreshed = generate(lm, prompt_of(5), s);
  CHECK_EQ(plain.tokens.size(), refreshed.tokens.size());
  CHECK_EQ(plain.forward_passes + 3, refreshed.forward_passes);
  CHECK(generate(lm, prompt_of(5), s).tokens == refreshed.tokens);
}

TEST(sampler_model_lockstep_batch_equals_one_by_one) {
  for (AttentionMode mode : {AttentionMode::Block, AttentionMode::Bidirectional, AttentionMode::Causal}) {
    auto model = tiny_model(mode, 15);
    const ModelLM lm(*model);
    const SamplerSettings s = lockstep_settings(mode, 10);
    std::vector<std::vector<int32_t>> prompts;
    for (int k = 0; k < 4; ++k) {
      std::vector<int32_t> p = prompt_of(6);
      p[static_cast<size_t>(k)] = 4 + k;  // same length, different text
      prompts.push_back(p);
    }
    const auto batch = generate_batch(lm, prompts, s);
    for (size_t i = 0; i < prompts.size(); ++i) CHECK(batch[i].tokens == generate(lm, prompts[i], s, i).tokens);
  }
}

// Prompts of different lengths share a batch, left-padded: each row decodes exactly as it does alone
// (tokens, steps, forward passes), for block (aligned blocks), bidirectional (with cache refreshes) and
// causal (AR) checkpoints.
TEST(sampler_model_mixed_length_batch_equals_one_by_one) {
  for (AttentionMode mode : {AttentionMode::Block, AttentionMode::Bidirectional, AttentionMode::Causal}) {
    auto model = tiny_model(mode, 16);
    const ModelLM lm(*model);
    CHECK(lm.padded_rows());
    const SamplerSettings s = lockstep_settings(mode, 11);
    std::vector<std::vector<int32_t>> prompts;
    for (int len : {6, 1, 9, 3, 5, 13, 2, 7}) {
      std::vector<int32_t> p = prompt_of(len);
      p[0] = 4 + len % 7;
      prompts.push_back(p);
    }
    if (mode != AttentionMode::Causal) prompts.push_back({});  // an empty prompt decodes from nothing
    const auto batch = generate_batch(lm, prompts, s);
    for (size_t i = 0; i < prompts.size(); ++i) {
      const Generation alone = generate(lm, prompts[i], s, i);
      CHECK(batch[i].tokens == alone.tokens);
      CHECK_EQ(batch[i].steps, alone.steps);
      CHECK_EQ(batch[i].forward_passes, alone.forward_passes);
      CHECK_EQ(batch[i].blocks.size(), alone.blocks.size());
    }
  }
}

// Left-padded rows give the logits each row gives alone: the prompt prefill (as a cache-free forward)
// and a block step over the cache.
TEST(sampler_model_padded_rows_match_their_unpadded_forward) {
  for (AttentionMode mode : {AttentionMode::Bidirectional, AttentionMode::Causal}) {
    auto model = tiny_model(AttentionMode::Block, 17);
    const ModelLM lm(*model);
    const int V = lm.config().vocab_size, L = 7, N = 4;
    const std::vector<std::vector<int32_t>> rows = {prompt_of(7), prompt_of(3), prompt_of(1)};
    const int R = static_cast<int>(rows.size());
    std::vector<int32_t> ids, block;
    std::vector<int> starts;
    for (int r = 0; r < R; ++r) {
      const auto& p = rows[static_cast<size_t>(r)];
      starts.push_back(L - static_cast<int>(p.size()));
      ids.insert(ids.end(), static_cast<size_t>(starts.back()), 0);
      ids.insert(ids.end(), p.begin(), p.end());
      for (int i = 0; i < N; ++i) block.push_back(i == r ? 9 + r : lm.config().mask_token_id);
    }
    auto cache = lm.new_cache(R);
    cache->set_row_starts(starts);
    std::vector<float> prefill(static_cast<size_t>(R) * L * V), step(static_cast<size_t>(R) * N * V);
    lm.forward_chunk(*cache, ids.data(), L, 0, mode, prefill.data(), true);
    lm.forward_chunk(*cache, block.data(), N, L, mode, step.data(), false);
    for (int r = 0; r < R; ++r) {
      const auto& p = rows[static_cast<size_t>(r)];
      const int P = static_cast<int>(p.size());
      auto alone = lm.new_cache(1);
      std::vector<float> a_prefill(static_cast<size_t>(P) * V), a_step(static_cast<size_t>(N) * V);
      lm.forward_chunk(*alone, p.data(), P, 0, mode, a_prefill.data(), true);
      lm.forward_chunk(*alone, block.data() + static_cast<long>(r) * N, N, P, mode, a_step.data(), false);
      double diff = 0.0;
      auto cmp = [&](const float* a, const float* b, size_t n) {
        for (size_t k = 0; k < n; ++k)
          if (!std::isinf(a[k]) || !std::isinf(b[k])) diff = std::max(diff, static_cast<double>(std::fabs(a[k] - b[k])));
      };
      cmp(prefill.data() + (static_cast<size_t>(r) * L + static_cast<size_t>(L - P)) * V, a_prefill.data(),
          static_cast<size_t>(P) * V);
      cmp(step.data() + static_cast<size_t>(r) * N * V, a_step.data(), static_cast<size_t>(N) * V);
      CHECK_NEAR(diff, 0.0, 1e-4);
    }
    // Starts out of range are refused.
    bool threw = false;
    try {
      cache->set_row_starts({0, 1});
    } catch (const std::invalid_argument&) {
      threw = true;
    }
    CHECK(threw);
  }
}

// Under aligned blocks, prompts of every length (not only of one length modulo the block) decode as one
// lockstep group on a model that takes chunk lengths per row, and each row gives exactly what it gives
// alone (tokens, steps, forward passes), whatever the rule, order, revision, sampling or early <|eos|>;
// max_new 2 makes many rows' first block their last, shorter than the group's chunk.
TEST(sampler_model_every_length_shares_one_aligned_group) {
  auto model = tiny_model(AttentionMode::Block, 18);
  const ModelLM lm(*model);
  CHECK(lm.ragged_chunks());
  std::vector<std::vector<int32_t>> prompts;
  for (int len : {6, 1, 9, 3, 5, 13, 2, 7, 0, 10}) {
    std::vector<int32_t> p = prompt_of(len);
    if (len > 0) p[0] = 4 + len % 7;
    prompts.push_back(p);
  }
  std::vector<SamplerSettings> variants;
  SamplerSettings s = lockstep_settings(AttentionMode::Block, 11);
  variants.push_back(s);
  s.eos_id = generate(lm, prompts[2], s, 2).tokens[4];  // rows end at different blocks
  variants.push_back(s);
  SamplerSettings remask = s;
  remask.rule = CommitRule::Remask;
  remask.steps_per_block = 3;
  variants.push_back(remask);
  SamplerSettings revise = s;
  revise.rule = CommitRule::Fixed;
  revise.tokens_per_step = 2;
  revise.revise_passes = 2;
  revise.revise_threshold = 0.3f;
  variants.push_back(revise);
  SamplerSettings sampled = s;
  sampled.temperature = 1.0f;
  sampled.seed = 3;
  sampled.order = CommitOrder::Margin;
  variants.push_back(sampled);
  SamplerSettings short_run = lockstep_settings(AttentionMode::Block, 2);
  variants.push_back(short_run);
  for (size_t v = 0; v < variants.size(); ++v) {
    const SamplerSettings& settings = variants[v];
    const auto batch = generate_batch(lm, prompts, settings);
    int alone_passes = 0;
    for (size_t i = 0; i < prompts.size(); ++i) {
      const Generation alone = generate(lm, prompts[i], settings, i);
      alone_passes += alone.forward_passes;
      if (batch[i].tokens != alone.tokens)
        sdt_test::fail(__FILE__, __LINE__, "variant " + std::to_string(v) + " prompt " + std::to_string(i));
      CHECK_EQ(batch[i].hit_eos, alone.hit_eos);
      CHECK_EQ(batch[i].steps, alone.steps);
      CHECK_EQ(batch[i].forward_passes, alone.forward_passes);
      CHECK_EQ(batch[i].group, 0);
    }
    CHECK(batch[0].group_forward_passes < alone_passes);
  }
}

// A row whose chunk is shorter than the group's (set_chunk_lengths) gets, at its real positions, the
// logits its shorter chunk gets alone, also written to the cache ahead of a committed block (own_block).
TEST(sampler_model_short_chunks_match_their_own_forward) {
  auto model = tiny_model(AttentionMode::Block, 19);
  const ModelLM lm(*model);
  const int V = lm.config().vocab_size, P = 8, N = 4;
  const std::vector<int> lens = {2, 4, 1};
  const int R = static_cast<int>(lens.size());
  for (int own : {0, 3}) {
    const int C = own + N;
    std::vector<int32_t> prompt, chunk;
    for (int r = 0; r < R; ++r) {
      const auto p = prompt_of(P + r);
      prompt.insert(prompt.end(), p.begin() + r, p.end());  // P ids per row, different texts
      for (int i = 0; i < C; ++i) chunk.push_back(i < own + lens[static_cast<size_t>(r)] ? 5 + (i * 3 + r) % 30 : 3);
    }
    auto cache = lm.new_cache(R);
    lm.forward_chunk(*cache, prompt.data(), P, 0, AttentionMode::Bidirectional, nullptr, true);
    std::vector<int> limits;
    for (int n : lens) limits.push_back(own + n);
    cache->set_chunk_lengths(limits);
    std::vector<float> got(static_cast<size_t>(R) * C * V);
    lm.forward_chunk(*cache, chunk.data(), C, P, AttentionMode::Bidirectional, got.data(), false, own);
    for (int r = 0; r < R; ++r) {
      const int len = own + lens[static_cast<size_t>(r)];
      auto alone = lm.new_cache(1);
      std::vector<float> want(static_cast<size_t>(len) * V);
      lm.forward_chunk(*alone, prompt.data() + static_cast<long>(r) * P, P, 0, AttentionMode::Bidirectional, nullptr,
                       true);
      lm.forward_chunk(*alone, chunk.data() + static_cast<long>(r) * C, len, P, AttentionMode::Bidirectional,
                       want.data(), false, own);
      double diff = 0.0;
      for (int i = own; i < len; ++i)
        for (int v = 0; v < V; ++v) {
          const float a = got[(static_cast<size_t>(r) * C + static_cast<size_t>(i)) * V + static_cast<size_t>(v)];
          const float b = want[static_cast<size_t>(i) * V + static_cast<size_t>(v)];
          if (!std::isinf(a) || !std::isinf(b)) diff = std::max(diff, static_cast<double>(std::fabs(a - b)));
        }
      CHECK_NEAR(diff, 0.0, 1e-5);
    }
  }
}

// The sampler asks for the logits of the positions it reads only (ModelLM then skips the others' last layer
// and vocabulary rows): every decode is the same as with all rows computed, down to the trajectory's
// confidences, for each commit rule and order, alone and in a batch of mixed lengths.
TEST(sampler_model_reading_only_masked_rows_changes_no_decode) {
  auto model = tiny_model(AttentionMode::Block, 17);
  const ModelLM lm(*model);
  const AllRowsLM all(lm);
  std::vector<SamplerSettings> grid;
  for (CommitOrder order : {CommitOrder::Confidence, CommitOrder::LeftToRight}) {
    SamplerSettings s;
    s.block_size = 4;
    s.max_new = 13;
    s.threshold = 0.5f;
    s.order = order;
    s.eos_id = -1;
    s.record_trajectory = true;
    grid.push_back(s);
    s.temperature = 0.8f;
    grid.push_back(s);
  }
  SamplerSettings fixed = grid[0];
  fixed.rule = CommitRule::Fixed;
  fixed.tokens_per_step = 2;
  grid.push_back(fixed);
  SamplerSettings remask = grid[0];
  remask.rule = CommitRule::Remask;
  remask.steps_per_block = 3;
  grid.push_back(remask);
  const std::vector<std::vector<int32_t>> prompts = {prompt_of(5), prompt_of(8), prompt_of(11)};
  for (const SamplerSettings& s : grid) {
    const auto fast = generate_batch(lm, prompts, s);
    const auto reference = generate_batch(all, prompts, s);
    for (size_t i = 0; i < prompts.size(); ++i) {
      CHECK(fast[i].tokens == reference[i].tokens);
      CHECK_EQ(fast[i].steps, reference[i].steps);
      CHECK_EQ(fast[i].forward_passes, reference[i].forward_passes);
      CHECK_EQ(fast[i].trajectory.size(), reference[i].trajectory.size());
      for (size_t k = 0; k < std::min(fast[i].trajectory.size(), reference[i].trajectory.size()); ++k) {
        CHECK(fast[i].trajectory[k].tokens == reference[i].trajectory[k].tokens);
        CHECK(fast[i].trajectory[k].confidences == reference[i].trajectory[k].confidences);
      }
    }
  }
  CHECK(all.hinted > 0);  // the sampler did ask for some rows only
}
