// The independent slow reference decoder the sampler tests compare against.
#pragma once

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "sampler/lm.h"

namespace sdt_test {

using sdt::AttentionMode;
using sdt::sampler::LanguageModel;

// Greedy pick over the tokens the sampler may emit, with its softmax probability.
inline std::pair<int32_t, double> greedy(const float* row, const sdt::ModelConfig& c) {
  double m = -1e300;
  int32_t best = -1;
  for (int v = 0; v < c.vocab_size; ++v) {
    if (v == c.mask_token_id || v == c.pad_token_id || v == c.bos_token_id) continue;
    if (row[v] > m) {
      m = row[v];
      best = v;
    }
  }
  double z = 0;
  for (int v = 0; v < c.vocab_size; ++v) {
    if (v == c.mask_token_id || v == c.pad_token_id || v == c.bos_token_id) continue;
    z += std::exp(static_cast<double>(row[v]) - m);
  }
  return {best, 1.0 / z};
}

// How the reference ranks a masked position from its logits row, computed in double from scratch.
enum class RefOrder { Confidence, Margin, Entropy, LeftToRight };

inline double reference_score(const float* row, const sdt::ModelConfig& c, RefOrder order, int position) {
  if (order == RefOrder::LeftToRight) return -position;
  std::vector<double> p;
  double m = -1e300;
  for (int v = 0; v < c.vocab_size; ++v) {
    if (v == c.mask_token_id || v == c.pad_token_id || v == c.bos_token_id) continue;
    m = std::max(m, static_cast<double>(row[v]));
  }
  double z = 0;
  for (int v = 0; v < c.vocab_size; ++v) {
    if (v == c.mask_token_id || v == c.pad_token_id || v == c.bos_token_id) continue;
    p.push_back(std::exp(static_cast<double>(row[v]) - m));
    z += p.back();
  }
  for (double& x : p) x /= z;
  std::sort(p.begin(), p.end(), [](double a, double b) { return a > b; });
  if (order == RefOrder::Confidence) return p[0];
  if (order == RefOrder::Margin) return p[0] - (p.size() > 1 ? p[1] : 0.0);
  double h = 0;
  for (double x : p)
    if (x > 0) h -= x * std::log(x);
  return 1.0 - h / std::log(static_cast<double>(p.size()));
}

// The slow reference: block-aligned blocks, one greedy token per step (the masked position ranked
// first by `order`), every step a full forward of the sequence so far under block attention, no cache.
inline std::vector<int32_t> slow_reference(const LanguageModel& m, const std::vector<int32_t>& prompt, int total,
                                    int32_t eos, RefOrder order = RefOrder::Confidence) {
  const auto& c = m.config();
  const int B = c.block_size;
  const int P = static_cast<int>(prompt.size());
  std::vector<int32_t> seq(prompt);
  std::vector<float> logits;
  int pos = P;
  while (pos < P + total) {
    const int end = std::min((pos / B + 1) * B, P + total);
    seq.resize(static_cast<size_t>(end), c.mask_token_id);
    std::vector<bool> done(static_cast<size_t>(end), true);
    for (int i = pos; i < end; ++i) done[static_cast<size_t>(i)] = false;
    for (;;) {
      bool work = false;
      for (int i = pos; i < end; ++i) {
        if (!done[static_cast<size_t>(i)]) {
          work = true;
          break;
        }
        if (seq[static_cast<size_t>(i)] == eos) break;
      }
      if (!work) break;
      logits.assign(static_cast<size_t>(end) * static_cast<size_t>(c.vocab_size), 0.0f);
      m.forward_full(seq.data(), end, AttentionMode::Block, logits.data());
      int best_pos = -1;
      int32_t best_tok = -1;
      double best_p = -1e300;
      for (int i = pos; i < end; ++i) {
        if (done[static_cast<size_t>(i)]) continue;
        const float* row = logits.data() + static_cast<size_t>(i) * static_cast<size_t>(c.vocab_size);
        const int32_t tok = greedy(row, c).first;
        const double p = reference_score(row, c, order, i);
        if (p > best_p) {
          best_p = p;
          best_pos = i;
          best_tok = tok;
        }
      }
      seq[static_cast<size_t>(best_pos)] = best_tok;
      done[static_cast<size_t>(best_pos)] = true;
    }
    for (int i = pos; i < end; ++i) {
      if (seq[static_cast<size_t>(i)] == eos) return {seq.begin() + P, seq.begin() + i};
    }
    pos = end;
  }
  return {seq.begin() + P, seq.end()};
}

// The slow reference of the left-to-right threshold rule: every step a full forward of the sequence so
// far under block attention, no cache; the leftmost masked position is committed, then the next ones while
// their greedy probability (as float, as the sampler compares it) is >= threshold.
inline std::vector<int32_t> slow_prefix_reference(const LanguageModel& m, const std::vector<int32_t>& prompt,
                                                  int total, float threshold) {
  const auto& c = m.config();
  const int B = c.block_size;
  const int P = static_cast<int>(prompt.size());
  std::vector<int32_t> seq(prompt);
  std::vector<float> logits;
  for (int pos = P; pos < P + total;) {
    const int end = std::min((pos / B + 1) * B, P + total);
    seq.resize(static_cast<size_t>(end), c.mask_token_id);
    for (int next = pos; next < end;) {
      logits.assign(static_cast<size_t>(end) * static_cast<size_t>(c.vocab_size), 0.0f);
      m.forward_full(seq.data(), end, AttentionMode::Block, logits.data());
      const int first = next;
      for (; next < end; ++next) {
        const auto [tok, p] = greedy(logits.data() + static_cast<size_t>(next) * static_cast<size_t>(c.vocab_size), c);
        if (next > first && static_cast<float>(p) < threshold) break;
        seq[static_cast<size_t>(next)] = tok;
      }
    }
    pos = end;
  }
  return {seq.begin() + P, seq.end()};
}

}  // namespace sdt_test
