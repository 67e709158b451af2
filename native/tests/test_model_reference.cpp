// The model's forward against an independent, naive double-precision implementation of the
// Hugging Face Llama forward (LlamaRMSNorm, rotate-half RoPE, repeat_kv GQA, SwiGLU MLP), written
// from the HF definitions without sharing any code with native/src.
#include <cmath>
#include <vector>

#include "model/model.h"
#include "test_model_util.h"

using sdt::AttentionMode;
using sdt_test::TestRng;

namespace {

using Mat = std::vector<double>;

// y[n, o] = sum_i x[n, i] W[o, i]
Mat matmul_t(const Mat& x, int N, int in, const float* W, int out) {
  Mat y(static_cast<size_t>(N) * out, 0.0);
  for (int n = 0; n < N; ++n)
    for (int o = 0; o < out; ++o) {
      double s = 0;
      for (int i = 0; i < in; ++i) s += x[static_cast<size_t>(n) * in + i] * W[static_cast<size_t>(o) * in + i];
      y[static_cast<size_t>(n) * out + o] = s;
    }
  return y;
}

Mat rms(const Mat& x, int N, int D, const float* w, double eps) {
  Mat y(x.size());
  for (int n = 0; n < N; ++n) {
    double ss = 0;
    for (int d = 0; d < D; ++d) ss += x[static_cast<size_t>(n) * D + d] * x[static_cast<size_t>(n) * D + d];
    const double r = 1.0 / std::sqrt(ss / D + eps);
    for (int d = 0; d < D; ++d) y[static_cast<size_t>(n) * D + d] = w[d] * x[static_cast<size_t>(n) * D + d] * r;
  }
  return y;
}

// One sequence (B = 1) through the HF Llama forward; returns logits [T, V] (mask column untouched).
Mat reference_forward(sdt::Model& m, const std::vector<int32_t>& ids, AttentionMode mode) {
  const sdt::ModelConfig& c = m.config();
  const int T = static_cast<int>(ids.size()), D = c.hidden_size, nh = c.num_attention_heads;
  const int nkv = c.num_key_value_heads, hd = D / nh, I = c.intermediate_size, V = c.vocab_size;
  auto P = [&](const std::string& name) { return m.find_param(name)->data; };
  Mat h(static_cast<size_t>(T) * D);
  for (int t = 0; t < T; ++t)
    for (int d = 0; d < D; ++d) h[static_cast<size_t>(t) * D + d] = P("model.embed_tokens.weight")[ids[t] * D + d];
  auto rope = [&](Mat& x, int heads) {
    for (int t = 0; t < T; ++t)
      for (int hh = 0; hh < heads; ++hh) {
        double* v = &x[(static_cast<size_t>(t) * heads + hh) * hd];
        std::vector<double> orig(v, v + hd);
        for (int i = 0; i < hd; ++i) {
          const int f = i % (hd / 2);  // emb = cat(freqs, freqs)
          const double ang = t * std::pow(static_cast<double>(c.rope_theta), -2.0 * f / hd);
          const double rot = i < hd / 2 ? -orig[i + hd / 2] : orig[i - hd / 2];  // rotate_half
          v[i] = orig[i] * std::cos(ang) + rot * std::sin(ang);
        }
      }
  };
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const std::string pre = "model.layers." + std::to_string(l) + ".";
    const Mat a = rms(h, T, D, P(pre + "input_layernorm.weight"), c.rms_norm_eps);
    Mat q = matmul_t(a, T, D, P(pre + "self_attn.q_proj.weight"), nh * hd);
    Mat k = matmul_t(a, T, D, P(pre + "self_attn.k_proj.weight"), nkv * hd);
    const Mat v = matmul_t(a, T, D, P(pre + "self_attn.v_proj.weight"), nkv * hd);
    rope(q, nh);
    rope(k, nkv);
    Mat att(static_cast<size_t>(T) * nh * hd, 0.0);
    for (int hh = 0; hh < nh; ++hh) {
      const int g = hh / (nh / nkv);  // repeat_kv
      for (int i = 0; i < T; ++i) {
        std::vector<double> s(T, -INFINITY);
        for (int j = 0; j < T; ++j) {
          const bool ok = mode == AttentionMode::Bidirectional ? true
                          : mode == AttentionMode::Causal      ? j <= i
                                                               : j / c.block_size <= i / c.block_size;
          if (!ok) continue;
          double d = 0;
          for (int e = 0; e < hd; ++e)
            d += q[(static_cast<size_t>(i) * nh + hh) * hd + e] * k[(static_cast<size_t>(j) * nkv + g) * hd + e];
          s[j] = d / std::sqrt(static_cast<double>(hd));
        }
        double mx = -INFINITY, z = 0;
        for (double x : s) mx = std::max(mx, x);
        for (double x : s) z += std::exp(x - mx);
        for (int j = 0; j < T; ++j)
          for (int e = 0; e < hd; ++e)
            att[(static_cast<size_t>(i) * nh + hh) * hd + e] +=
                std::exp(s[j] - mx) / z * v[(static_cast<size_t>(j) * nkv + g) * hd + e];
      }
    }
    const Mat o = matmul_t(att, T, nh * hd, P(pre + "self_attn.o_proj.weight"), D);
    for (size_t i = 0; i < h.size(); ++i) h[i] += o[i];
    const Mat b = rms(h, T, D, P(pre + "post_attention_layernorm.weight"), c.rms_norm_eps);
    const Mat gate = matmul_t(b, T, D, P(pre + "mlp.gate_proj.weight"), I);
    const Mat up = matmul_t(b, T, D, P(pre + "mlp.up_proj.weight"), I);
    Mat act(gate.size());
    for (size_t i = 0; i < act.size(); ++i) act[i] = gate[i] / (1.0 + std::exp(-gate[i])) * up[i];
    const Mat down = matmul_t(act, T, I, P(pre + "mlp.down_proj.weight"), D);
    for (size_t i = 0; i < h.size(); ++i) h[i] += down[i];
  }
  const Mat f = rms(h, T, D, P("model.norm.weight"), c.rms_norm_eps);
  const float* head = c.tie_word_embeddings ? P("model.embed_tokens.weight") : P("lm_head.weight");
  return matmul_t(f, T, D, head, V);
}

void check_against_reference(AttentionMode mode, int kv, bool tied, uint64_t seed) {
  TestRng rng(seed);
  auto cfg = sdt_test::tiny_config(kv, tied, mode);
  sdt::Model m(cfg);
  m.init(seed);
  for (auto& p : m.params())
    for (int64_t i = 0; i < p.numel; ++i)
      p.data[i] = p.shape.size() == 1 ? rng.uniform(0.5f, 1.5f) : p.data[i] * 15.0f;
  const int T = 9, V = cfg.vocab_size;
  std::vector<int32_t> ids(T);
  for (auto& t : ids) t = rng.below(V);
  std::vector<float> got(static_cast<size_t>(T) * V);
  m.forward_logits(ids.data(), 1, T, mode, nullptr, got.data());
  const Mat want = reference_forward(m, ids, mode);
  double err = 0, scale = 0;
  for (int i = 0; i < T * V; ++i) {
    if (i % V == cfg.mask_token_id) {
      CHECK(std::isinf(got[static_cast<size_t>(i)]));
      continue;
    }
    err = std::max(err, std::fabs(got[static_cast<size_t>(i)] - want[static_cast<size_t>(i)]));
    scale = std::max(scale, std::fabs(want[static_cast<size_t>(i)]));
  }
  CHECK(scale > 0.1);  // the comparison is not between two near-zero tensors
  CHECK_NEAR(err, 0.0, 1e-4 * std::max(1.0, scale));
}

}  // namespace

TEST(model_forward_matches_reference_llama) {
  check_against_reference(AttentionMode::Bidirectional, 4, false, 71);
  check_against_reference(AttentionMode::Causal, 2, true, 72);
  check_against_reference(AttentionMode::Block, 1, false, 73);
  check_against_reference(AttentionMode::Block, 2, true, 74);
}
