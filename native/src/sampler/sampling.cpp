#include "sampler/sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>

#include "sdt/splitmix64.h"

namespace sdt::sampler {

uint64_t Rng::next_u64() { return splitmix64_next(state_); }

double Rng::next_double() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

uint64_t sequence_seed(uint64_t seed, uint64_t index) {
  Rng mix(seed ^ (index * 0xD1B54A32D192ED03ULL));
  return mix.next_u64();
}

BannedTokens::BannedTokens(int vocab_size, const std::vector<int32_t>& ids)
    : flags_(static_cast<size_t>(vocab_size), 0) {
  for (int32_t id : ids) {
    if (id >= 0 && id < vocab_size) flags_[static_cast<size_t>(id)] = 1;
  }
}

namespace {

// Largest allowed logit / temperature, so exp() below never overflows.
float max_scaled(const float* logits, int vocab, const BannedTokens& banned, float inv_t) {
  float m = -std::numeric_limits<float>::infinity();
  for (int v = 0; v < vocab; ++v) {
    if (!banned.banned(v)) m = std::max(m, logits[v] * inv_t);
  }
  if (!std::isfinite(m)) throw std::runtime_error("no allowed token has a finite logit");
  return m;
}

// Margin and normalised certainty of the distribution whose unnormalised probabilities are in `e`
// (exp(logit * inv_t - m), 0 for banned tokens), summing to z.
void describe_distribution(const float* logits, int vocab, const BannedTokens& banned, float inv_t, float m,
                           const std::vector<float>& e, double z, TokenChoice& out) {
  float p1 = 0.0f, p2 = 0.0f;
  double weighted = 0.0;  // sum of e * (logit * inv_t - m)
  int allowed = 0;
  for (int v = 0; v < vocab; ++v) {
    if (banned.banned(v)) continue;
    ++allowed;
    const float ev = e[static_cast<size_t>(v)];
    if (ev > p1) {
      p2 = p1;
      p1 = ev;
    } else if (ev > p2) {
      p2 = ev;
    }
    if (ev > 0.0f) weighted += static_cast<double>(ev) * static_cast<double>(logits[v] * inv_t - m);
  }
  out.margin = static_cast<float>((static_cast<double>(p1) - static_cast<double>(p2)) / z);
  // H = ln z - E[logit * inv_t - m]
  const double entropy = std::max(0.0, std::log(z) - weighted / z);
  out.certainty = allowed > 1 ? static_cast<float>(std::clamp(1.0 - entropy / std::log(static_cast<double>(allowed)), 0.0, 1.0))
                              : 1.0f;
}

}  // namespace

float token_probability(const float* logits, int vocab, const BannedTokens& banned, float temperature,
                        int32_t token) {
  if (token < 0 || token >= vocab || banned.banned(token)) return 0.0f;
  const float inv_t = temperature > 0.0f ? 1.0f / temperature : 1.0f;
  const float m = max_scaled(logits, vocab, banned, inv_t);
  double z = 0.0;
  for (int v = 0; v < vocab; ++v) {
    if (!banned.banned(v)) z += std::exp(static_cast<double>(logits[v] * inv_t - m));
  }
  return static_cast<float>(std::exp(static_cast<double>(logits[token] * inv_t - m)) / z);
}

TokenChoice choose_token(const float* logits, int vocab, const BannedTokens& banned,
                         const ChoiceRule& rule, Rng& rng, std::vector<float>& scratch) {
  const bool greedy = rule.temperature <= 0.0f;
  const float inv_t = greedy ? 1.0f : 1.0f / rule.temperature;
  const float m = max_scaled(logits, vocab, banned, inv_t);
  scratch.assign(static_cast<size_t>(vocab), 0.0f);
  double z = 0.0;
  int32_t best = -1;
  for (int v = 0; v < vocab; ++v) {
    if (banned.banned(v)) continue;
    const float e = std::exp(logits[v] * inv_t - m);
    scratch[static_cast<size_t>(v)] = e;
    z += e;
    if (best < 0 || logits[v] > logits[best]) best = v;
  }
  TokenChoice out;
  if (rule.describe) describe_distribution(logits, vocab, banned, inv_t, m, scratch, z, out);
  if (greedy) {
    out.token = best;
    out.confidence = static_cast<float>(scratch[static_cast<size_t>(best)] / z);
    return out;
  }
  // Nucleus: the most probable tokens whose mass first reaches top_p, then sample among them.
  double keep_mass = z;
  std::vector<int32_t> order;
  if (rule.top_p < 1.0f) {
    order.reserve(static_cast<size_t>(vocab));
    for (int v = 0; v < vocab; ++v) {
      if (scratch[static_cast<size_t>(v)] > 0.0f) order.push_back(v);
    }
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
      const float pa = scratch[static_cast<size_t>(a)], pb = scratch[static_cast<size_t>(b)];
      return pa != pb ? pa > pb : a < b;
    });
    double acc = 0.0;
    size_t n = 0;
    const double target = static_cast<double>(std::max(rule.top_p, 0.0f)) * z;
    while (n < order.size()) {
      acc += scratch[static_cast<size_t>(order[n])];
      ++n;
      if (acc >= target) break;
    }
    order.resize(std::max<size_t>(n, 1));
    keep_mass = acc;
  }
  const double u = rng.next_double() * keep_mass;
  double acc = 0.0;
  int32_t pick = -1;
  if (!order.empty()) {
    for (int32_t v : order) {
      acc += scratch[static_cast<size_t>(v)];
      pick = v;
      if (u < acc) break;
    }
  } else {
    for (int v = 0; v < vocab; ++v) {
      if (scratch[static_cast<size_t>(v)] <= 0.0f) continue;
      acc += scratch[static_cast<size_t>(v)];
      pick = v;
      if (u < acc) break;
    }
  }
  out.token = pick;
  out.confidence = static_cast<float>(scratch[static_cast<size_t>(pick)] / z);
  return out;
}

}  // namespace sdt::sampler
