// Helpers shared by the model and op tests: deterministic random data and finite-difference checks.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "model/config.h"
#include "test_framework.h"

namespace sdt_test {

struct TestRng {
  uint64_t s;
  explicit TestRng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ULL + 1) {}
  uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  // Uniform in [lo, hi).
  float uniform(float lo, float hi) {
    return lo + (hi - lo) * static_cast<float>(static_cast<double>(next() >> 11) / 9007199254740992.0);
  }
  int below(int n) { return static_cast<int>(next() % static_cast<uint64_t>(n)); }
};

inline std::vector<float> random_vector(size_t n, TestRng& rng, float scale = 1.0f) {
  std::vector<float> v(n);
  for (auto& x : v) x = rng.uniform(-scale, scale);
  return v;
}

// Central finite differences of a scalar function of `x` against an analytic gradient, on
// `checks` entries spread over x (all when checks >= x.size()). Passes an entry when
// |numeric - analytic| <= atol + rtol * max(|numeric|, |analytic|). Returns the number of failures.
inline int check_gradient(const std::string& what, std::vector<float>& x, const std::vector<float>& analytic,
                          const std::function<double()>& f, float eps, double rtol, double atol, size_t checks = 64) {
  int failures = 0;
  const size_t n = x.size();
  const size_t step = checks >= n ? 1 : n / checks;
  for (size_t i = 0; i < n; i += step) {
    const float saved = x[i];
    x[i] = saved + eps;
    const double up = f();
    x[i] = saved - eps;
    const double down = f();
    x[i] = saved;
    const double numeric = (up - down) / (2.0 * static_cast<double>(eps));
    const double a = analytic[i];
    if (!(std::fabs(numeric - a) <= atol + rtol * std::max(std::fabs(numeric), std::fabs(a)))) {
      ++failures;
      if (failures <= 5) {
        char buf[256];
        std::snprintf(buf, sizeof buf, "%s[%zu]: numeric %.7g vs analytic %.7g", what.c_str(), i, numeric, a);
        fail(__FILE__, __LINE__, buf);
      }
    }
  }
  return failures;
}

// sum_k r_k * y_k in double: a scalar "loss" whose gradient w.r.t. y is r.
inline double weighted_sum(const std::vector<float>& y, const std::vector<float>& r) {
  double s = 0.0;
  for (size_t i = 0; i < y.size(); ++i) s += static_cast<double>(y[i]) * static_cast<double>(r[i]);
  return s;
}

inline sdt::ModelConfig tiny_config(int kv_heads, bool tied, sdt::AttentionMode mode) {
  sdt::ModelConfig c;
  c.vocab_size = 13;
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = kv_heads;
  c.max_position_embeddings = 64;
  c.rms_norm_eps = 1e-5f;
  c.rope_theta = 10000.0f;
  c.tie_word_embeddings = tied;
  c.attention_mode = mode;
  c.block_size = 3;
  c.mask_token_id = 12;
  c.pad_token_id = 0;
  c.bos_token_id = 1;
  c.eos_token_id = 2;
  return c;
}

}  // namespace sdt_test
