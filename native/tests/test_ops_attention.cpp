// Attention against a naive double-precision reference with an explicit mask, and its gradient
// by finite differences, in all three modes, with and without GQA, segments and positions.
#include <cmath>
#include <string>
#include <vector>

#include "ops/ops.h"
#include "test_model_util.h"

using sdt::AttentionMode;
using sdt_test::random_vector;
using sdt_test::TestRng;

namespace {

bool reference_visible(const sdt::AttentionMask& m, int T, int b, int i, int j) {
  const int32_t* seg = m.segment ? m.segment + b * T : nullptr;
  const int32_t* pos = m.pos ? m.pos + b * T : nullptr;
  if (seg && (seg[i] < 0 || seg[j] < 0)) return i == j;
  if (seg && seg[i] != seg[j]) return false;
  if (m.mode == AttentionMode::BlockTwoStream) {
    // Rows are [noisy 0..H-1 | clean 0..H-1]; spelled out per stream pair.
    const int H = T / 2;
    const int bi = (pos ? pos[i] : i % H) / m.block_size, bj = (pos ? pos[j] : j % H) / m.block_size;
    if (i < H && j < H) return bi == bj;   // noisy -> noisy: its own block only
    if (i < H && j >= H) return bj < bi;   // noisy -> clean: earlier blocks only
    if (i >= H && j < H) return false;     // clean never sees noise
    return bj <= bi;                       // clean -> clean: block-causal
  }
  const int pi = pos ? pos[i] : i, pj = pos ? pos[j] : j;
  if (m.mode == AttentionMode::Causal) return pj <= pi;
  if (m.mode == AttentionMode::Block) return pj / m.block_size <= pi / m.block_size;
  return true;
}

std::vector<double> reference_attention(const std::vector<float>& qkv, int S, int B, int T, int nh, int nkv, int hd,
                                        const sdt::AttentionMask& m) {
  std::vector<double> out(static_cast<size_t>(B) * T * nh * hd, 0.0);
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < nh; ++h) {
      const int g = h / (nh / nkv);
      for (int i = 0; i < T; ++i) {
        std::vector<double> s(T, -1e300);
        double mx = -1e300;
        for (int j = 0; j < T; ++j) {
          if (!reference_visible(m, T, b, i, j)) continue;
          double d = 0;
          for (int e = 0; e < hd; ++e)
            d += static_cast<double>(qkv[(b * T + i) * S + h * hd + e]) * qkv[(b * T + j) * S + (nh + g) * hd + e];
          s[j] = d * scale;
          mx = std::max(mx, s[j]);
        }
        double z = 0;
        for (int j = 0; j < T; ++j)
          if (s[j] > -1e299) z += std::exp(s[j] - mx);
        for (int j = 0; j < T; ++j) {
          if (s[j] <= -1e299) continue;
          const double p = std::exp(s[j] - mx) / z;
          for (int e = 0; e < hd; ++e)
            out[((b * T + i) * nh + h) * hd + e] += p * qkv[(b * T + j) * S + (nh + nkv + g) * hd + e];
        }
      }
    }
  return out;
}

void check_attention(AttentionMode mode, int nkv, bool segments, bool positions, uint64_t seed) {
  TestRng rng(seed);
  const bool two = mode == AttentionMode::BlockTwoStream;
  // Two-stream rows: 7 noisy then the same 7 positions clean, segments repeated per stream.
  const int B = 2, T = two ? 14 : 7, nh = 4, hd = 4, S = (nh + 2 * nkv) * hd;
  const std::vector<int32_t> seg = two ? std::vector<int32_t>{0, 0, 0, 1, 1, 1, -1, 0, 0, 0, 1, 1, 1, -1,
                                                              5, 5, 5, 5, 2, 2, -1, 5, 5, 5, 5, 2, 2, -1}
                                       : std::vector<int32_t>{0, 0, 0, 1, 1, 1, -1, 5, 5, 5, 5, 2, 2, -1};
  const std::vector<int32_t> pos = two ? std::vector<int32_t>{0, 1, 2, 0, 1, 2, 0, 0, 1, 2, 0, 1, 2, 0,
                                                              0, 1, 2, 3, 0, 1, 4, 0, 1, 2, 3, 0, 1, 4}
                                       : std::vector<int32_t>{0, 1, 2, 0, 1, 2, 0, 0, 1, 2, 3, 0, 1, 4};
  sdt::AttentionMask m{mode, two ? 2 : 3, segments ? seg.data() : nullptr, positions ? pos.data() : nullptr};
  auto qkv = random_vector(static_cast<size_t>(B) * T * S, rng, 1.5f);
  std::vector<float> out(static_cast<size_t>(B) * T * nh * hd), lse(static_cast<size_t>(B) * nh * T);
  sdt::attention_forward(qkv.data(), S, B, T, nh, nkv, hd, m, out.data(), lse.data());
  const auto ref = reference_attention(qkv, S, B, T, nh, nkv, hd, m);
  int bad = 0;
  for (size_t i = 0; i < out.size(); ++i) bad += std::fabs(out[i] - ref[i]) > 1e-5 ? 1 : 0;
  CHECK_EQ(bad, 0);

  const auto r = random_vector(out.size(), rng);
  std::vector<float> dqkv(qkv.size(), 123.0f);  // garbage: the backward must overwrite
  sdt::attention_backward(qkv.data(), S, out.data(), lse.data(), r.data(), B, T, nh, nkv, hd, m, dqkv.data());
  auto f = [&] {
    sdt::attention_forward(qkv.data(), S, B, T, nh, nkv, hd, m, out.data(), lse.data());
    return sdt_test::weighted_sum(out, r);
  };
  const std::string what = std::string("attention[") + sdt::attention_mode_name(mode) + ", kv=" +
                           std::to_string(nkv) + (segments ? ", segments" : "") + (positions ? ", positions" : "") +
                           "].qkv";
  CHECK_EQ(sdt_test::check_gradient(what, qkv, dqkv, f, 1e-2f, 2e-2, 1e-3, 100000), 0);
}

}  // namespace

TEST(ops_attention_bidirectional) {
  check_attention(AttentionMode::Bidirectional, 4, false, false, 21);
  check_attention(AttentionMode::Bidirectional, 2, false, false, 22);
  check_attention(AttentionMode::Bidirectional, 1, true, false, 23);
}

TEST(ops_attention_causal) {
  check_attention(AttentionMode::Causal, 4, false, false, 24);
  check_attention(AttentionMode::Causal, 2, true, false, 25);
  check_attention(AttentionMode::Causal, 2, true, true, 26);
}

TEST(ops_attention_block) {
  check_attention(AttentionMode::Block, 4, false, false, 27);
  check_attention(AttentionMode::Block, 2, false, false, 28);
  check_attention(AttentionMode::Block, 1, true, true, 29);
  check_attention(AttentionMode::Block, 4, false, true, 30);
}

TEST(ops_attention_block_two_stream) {
  check_attention(AttentionMode::BlockTwoStream, 4, false, false, 31);
  check_attention(AttentionMode::BlockTwoStream, 2, true, false, 32);
  check_attention(AttentionMode::BlockTwoStream, 1, true, true, 33);
  check_attention(AttentionMode::BlockTwoStream, 4, false, true, 34);
}
