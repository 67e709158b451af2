// Training-level behaviour: a tiny model overfits one batch; packing with segments is
// equivalent to separate rows; the <|mask|> logit never matters; bad inputs are named.
#include <cmath>
#include <string>
#include <vector>

#include "model/model.h"
#include "test_model_util.h"

using sdt::AttentionMode;
using sdt_test::TestRng;

TEST(model_overfits_one_batch_with_adam) {
  TestRng rng(51);
  auto cfg = sdt_test::tiny_config(2, true, AttentionMode::Bidirectional);
  sdt::Model m(cfg);
  m.init(51);
  const int B = 2, T = 10, N = B * T;
  std::vector<int32_t> x0(N), ids(N), targets(N);
  std::vector<float> w(N);
  for (int i = 0; i < N; ++i) {
    x0[i] = rng.below(cfg.vocab_size - 1);
    const bool masked = rng.below(2) == 0;  // the masked-diffusion setting: predict masked tokens
    ids[i] = masked ? cfg.mask_token_id : x0[i];
    targets[i] = masked ? x0[i] : -1;
    w[i] = masked ? 2.0f : 0.0f;
  }
  sdt::Batch b;
  b.B = B;
  b.T = T;
  b.input_ids = ids.data();
  b.target_ids = targets.data();
  b.weights = w.data();
  b.mode = AttentionMode::Bidirectional;

  // Adam, written out here (the trainer's optimizer is not this module's).
  const size_t P = static_cast<size_t>(m.num_params());
  std::vector<float> mom(P, 0.0f), var(P, 0.0f);
  const float lr = 1e-2f, b1 = 0.9f, b2 = 0.999f;
  double first = 0.0, last = 0.0;
  for (int step = 1; step <= 200; ++step) {
    m.zero_grad();
    const auto st = m.forward_backward(b, 0.0);
    if (step == 1) first = st.loss / (st.weight_sum / N);
    last = st.loss / (st.weight_sum / N);
    const float c1 = 1.0f - std::pow(b1, static_cast<float>(step)), c2 = 1.0f - std::pow(b2, static_cast<float>(step));
    float* p = m.param_data();
    const float* g = m.grad_data();
    for (size_t i = 0; i < P; ++i) {
      mom[i] = b1 * mom[i] + (1 - b1) * g[i];
      var[i] = b2 * var[i] + (1 - b2) * g[i] * g[i];
      p[i] -= lr * (mom[i] / c1) / (std::sqrt(var[i] / c2) + 1e-8f);
    }
  }
  // Mean CE per target token: starts near log(12) ~ 2.5.
  CHECK(first > 2.0);
  CHECK(last < 0.02);
}

TEST(model_overfits_with_plain_sgd_causal) {
  TestRng rng(52);
  auto cfg = sdt_test::tiny_config(4, false, AttentionMode::Causal);
  sdt::Model m(cfg);
  m.init(52);
  const int T = 8;
  std::vector<int32_t> seq(T + 1);
  for (auto& s : seq) s = rng.below(cfg.vocab_size - 1);
  std::vector<int32_t> ids(seq.begin(), seq.end() - 1), targets(seq.begin() + 1, seq.end());
  sdt::Batch b;
  b.B = 1;
  b.T = T;
  b.input_ids = ids.data();
  b.target_ids = targets.data();
  b.mode = AttentionMode::Causal;
  double first = 0.0, last = 0.0;
  for (int step = 0; step < 300; ++step) {
    m.zero_grad();
    const double loss = m.forward_backward(b).loss;
    if (step == 0) first = loss;
    last = loss;
    for (int64_t i = 0; i < m.num_params(); ++i) m.param_data()[i] -= 0.5f * m.grad_data()[i];
  }
  CHECK(first > 2.0);
  CHECK(last < 0.1);
}

TEST(model_packed_segments_equal_separate_rows) {
  // Two sequences packed in one row (segment ids, positions restarting) give the same logits
  // as the same sequences in their own rows, in every mode.
  TestRng rng(53);
  for (auto mode : {AttentionMode::Bidirectional, AttentionMode::Causal, AttentionMode::Block}) {
    auto cfg = sdt_test::tiny_config(2, false, mode);
    sdt::Model m(cfg);
    m.init(53);
    const int L1 = 5, L2 = 4, T = L1 + L2 + 2, V = cfg.vocab_size;
    std::vector<int32_t> a(L1), bseq(L2);
    for (auto& t : a) t = rng.below(V);
    for (auto& t : bseq) t = rng.below(V);
    std::vector<int32_t> packed, seg, pos;
    for (int i = 0; i < L1; ++i) packed.push_back(a[static_cast<size_t>(i)]), seg.push_back(0), pos.push_back(i);
    for (int i = 0; i < L2; ++i) packed.push_back(bseq[static_cast<size_t>(i)]), seg.push_back(1), pos.push_back(i);
    for (int i = 0; i < 2; ++i) packed.push_back(0), seg.push_back(-1), pos.push_back(0);  // padding
    std::vector<float> lp(static_cast<size_t>(T) * V), la(static_cast<size_t>(L1) * V), lb(static_cast<size_t>(L2) * V);
    m.forward_logits(packed.data(), 1, T, mode, seg.data(), lp.data(), pos.data());
    m.forward_logits(a.data(), 1, L1, mode, nullptr, la.data());
    m.forward_logits(bseq.data(), 1, L2, mode, nullptr, lb.data());
    double d = 0.0;
    for (int i = 0; i < L1 * V; ++i)
      if (!std::isinf(la[static_cast<size_t>(i)])) d = std::max(d, static_cast<double>(std::fabs(lp[static_cast<size_t>(i)] - la[static_cast<size_t>(i)])));
    for (int i = 0; i < L2 * V; ++i)
      if (!std::isinf(lb[static_cast<size_t>(i)]))
        d = std::max(d, static_cast<double>(std::fabs(lp[static_cast<size_t>(L1 * V + i)] - lb[static_cast<size_t>(i)])));
    CHECK_NEAR(d, 0.0, 1e-5);
    for (float v : lp) CHECK(!std::isnan(v));
  }
}

TEST(model_mask_logit_is_excluded) {
  TestRng rng(54);
  auto cfg = sdt_test::tiny_config(2, false, AttentionMode::Bidirectional);
  sdt::Model m(cfg);
  m.init(54);
  const int T = 6;
  std::vector<int32_t> ids(T), targets(T);
  for (int i = 0; i < T; ++i) ids[i] = rng.below(cfg.vocab_size), targets[i] = rng.below(cfg.vocab_size - 1);
  sdt::Batch b;
  b.B = 1;
  b.T = T;
  b.input_ids = ids.data();
  b.target_ids = targets.data();
  m.zero_grad();
  const double before = m.forward_backward(b).loss;
  // The mask token's lm_head row gets no gradient and does not change the loss.
  sdt::ParamView* lm = m.find_param("lm_head.weight");
  CHECK(lm != nullptr);
  if (!lm) return;
  const int D = cfg.hidden_size;
  for (int d = 0; d < D; ++d) CHECK_EQ(lm->grad[cfg.mask_token_id * D + d], 0.0f);
  for (int d = 0; d < D; ++d) lm->data[cfg.mask_token_id * D + d] = 100.0f;
  CHECK_NEAR(m.forward_loss(b).loss, before, 1e-6);
  std::vector<float> logits(static_cast<size_t>(T) * cfg.vocab_size);
  m.forward_logits(ids.data(), 1, T, AttentionMode::Bidirectional, nullptr, logits.data());
  for (int t = 0; t < T; ++t) CHECK(std::isinf(logits[t * cfg.vocab_size + cfg.mask_token_id]));
  // A <|mask|> target is an error, not a silently infinite loss.
  targets[2] = cfg.mask_token_id;
  CHECK_THROWS(m.forward_backward(b));
}

TEST(model_params_use_hf_names_and_shapes) {
  auto cfg = sdt_test::tiny_config(2, false, AttentionMode::Block);
  sdt::Model m(cfg);
  CHECK_EQ(m.num_params(), cfg.num_parameters());
  auto* q = m.find_param("model.layers.1.self_attn.q_proj.weight");
  auto* k = m.find_param("model.layers.1.self_attn.k_proj.weight");
  CHECK(q && k);
  if (q && k) {
    CHECK_EQ(q->shape[0], 16);
    CHECK_EQ(q->shape[1], 16);
    CHECK_EQ(k->shape[0], 8);  // 2 kv heads x head_dim 4
  }
  CHECK(m.find_param("lm_head.weight") != nullptr);
  CHECK(m.find_param("model.norm.weight") != nullptr);
  int64_t total = 0;
  for (const auto& p : m.params()) {
    CHECK_EQ(p.offset, total);  // contiguous, in order
    total += p.numel;
    CHECK_EQ(p.decay, p.shape.size() == 2);
  }
  CHECK_EQ(total, m.num_params());
  cfg.tie_word_embeddings = true;
  sdt::Model tied(cfg);
  CHECK(tied.find_param("lm_head.weight") == nullptr);
  CHECK_EQ(tied.num_params(), m.num_params() - 13 * 16);
}

TEST(model_init_is_deterministic_with_stated_scales) {
  auto cfg = sdt_test::tiny_config(4, false, AttentionMode::Bidirectional);
  cfg.hidden_size = 64;
  cfg.intermediate_size = 128;
  cfg.vocab_size = 300;
  cfg.mask_token_id = 299;
  sdt::Model a(cfg), b(cfg);
  a.init(9);
  b.init(9);
  CHECK(std::equal(a.param_data(), a.param_data() + a.num_params(), b.param_data()));
  b.init(10);
  CHECK(!std::equal(a.param_data(), a.param_data() + a.num_params(), b.param_data()));
  auto stdev = [](const sdt::ParamView& p) {
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < p.numel; ++i) s += p.data[i], s2 += static_cast<double>(p.data[i]) * p.data[i];
    const double count = static_cast<double>(p.numel);
    const double mean = s / count;
    return std::sqrt(s2 / count - mean * mean);
  };
  CHECK_CLOSE(stdev(*a.find_param("model.embed_tokens.weight")), 0.02, 0.05, 0.0);
  CHECK_CLOSE(stdev(*a.find_param("model.layers.0.mlp.up_proj.weight")), 0.02, 0.05, 0.0);
  CHECK_CLOSE(stdev(*a.find_param("model.layers.0.mlp.down_proj.weight")), 0.02 / std::sqrt(4.0), 0.05, 0.0);
  CHECK_CLOSE(stdev(*a.find_param("model.layers.1.self_attn.o_proj.weight")), 0.02 / std::sqrt(4.0), 0.05, 0.0);
  const auto* n = a.find_param("model.layers.0.input_layernorm.weight");
  for (int64_t i = 0; i < n->numel; ++i) CHECK_EQ(n->data[i], 1.0f);
}

TEST(model_config_validation_names_the_field) {
  auto cfg = sdt_test::tiny_config(3, false, AttentionMode::Block);
  CHECK(cfg.validate().find("num_key_value_heads") != std::string::npos);
  cfg = sdt_test::tiny_config(2, false, AttentionMode::Block);
  CHECK(cfg.validate().empty());
  cfg.mask_token_id = 13;
  CHECK(cfg.validate().find("mask_token_id") != std::string::npos);
  CHECK_THROWS(sdt::Model(cfg));
  cfg = sdt_test::tiny_config(2, false, AttentionMode::Block);
  cfg.hidden_size = 18;  // not divisible by 4 heads
  CHECK(cfg.validate().find("hidden_size") != std::string::npos);
  sdt::AttentionMode mode;
  CHECK(sdt::parse_attention_mode("block", &mode) && mode == AttentionMode::Block);
  CHECK(!sdt::parse_attention_mode("Block ", &mode));
}

TEST(model_rejects_out_of_range_ids_naming_the_position) {
  auto cfg = sdt_test::tiny_config(2, false, AttentionMode::Block);
  sdt::Model m(cfg);
  m.init(1);
  std::vector<int32_t> ids = {1, 2, 3, 4, 5, 13}, targets = {1, 2, 3, 4, 5, 6};
  sdt::Batch b;
  b.B = 2;
  b.T = 3;
  b.input_ids = ids.data();
  b.target_ids = targets.data();
  std::string msg;
  try {
    m.forward_backward(b);
  } catch (const std::invalid_argument& e) {
    msg = e.what();
  }
  CHECK(msg.find("input_ids[row 1, position 2]") != std::string::npos);
}

TEST(model_loss_matches_logits_and_token_ce) {
  // forward_loss's per-token CE equals -log softmax (mask excluded) of forward_logits, and the
  // loss is the weighted sum over the normalizer; an eval call between training steps is harmless.
  TestRng rng(55);
  auto cfg = sdt_test::tiny_config(2, false, AttentionMode::Block);
  sdt::Model m(cfg);
  m.init(55);
  for (auto& p : m.params())
    if (p.shape.size() == 2)
      for (int64_t i = 0; i < p.numel; ++i) p.data[i] *= 20.0f;
  const int B = 2, T = 6, N = B * T, V = cfg.vocab_size;
  std::vector<int32_t> ids(N), targets(N);
  std::vector<float> w(N);
  for (int i = 0; i < N; ++i) {
    ids[i] = rng.below(V);
    targets[i] = i % 4 == 0 ? -1 : rng.below(V - 1);
    w[i] = rng.uniform(0.1f, 3.0f);
  }
  sdt::Batch b;
  b.B = B;
  b.T = T;
  b.input_ids = ids.data();
  b.target_ids = targets.data();
  b.weights = w.data();
  b.mode = AttentionMode::Block;
  m.zero_grad();
  m.forward_backward(b, 5.0);
  const std::vector<float> g1(m.grad_data(), m.grad_data() + m.num_params());
  std::vector<float> ce(N, -1.0f);
  const auto st = m.forward_loss(b, 5.0, ce.data());
  std::vector<float> logits(static_cast<size_t>(N) * V);
  m.forward_logits(ids.data(), B, T, AttentionMode::Block, nullptr, logits.data());
  double wsum = 0.0, wce = 0.0;
  int targets_seen = 0;
  for (int i = 0; i < N; ++i) {
    if (targets[i] < 0) {
      CHECK_EQ(ce[i], 0.0f);
      continue;
    }
    double mx = -1e300, z = 0;
    for (int v = 0; v < V; ++v)
      if (v != cfg.mask_token_id) mx = std::max(mx, static_cast<double>(logits[static_cast<size_t>(i) * V + v]));
    for (int v = 0; v < V; ++v)
      if (v != cfg.mask_token_id) z += std::exp(logits[static_cast<size_t>(i) * V + v] - mx);
    const double want = mx + std::log(z) - logits[static_cast<size_t>(i) * V + targets[i]];
    CHECK_NEAR(ce[i], want, 1e-4);
    wce += w[i] * want;
    wsum += w[i];
    ++targets_seen;
  }
  CHECK_NEAR(st.weighted_ce_sum, wce, 1e-3);
  CHECK_NEAR(st.loss, wce / 5.0, 1e-3);
  CHECK_NEAR(st.weight_sum, wsum, 1e-4);
  CHECK_EQ(st.targets, targets_seen);
  CHECK_EQ(st.normalizer, 5.0);
  // The eval calls above did not disturb training: the same step gives the same gradient.
  m.zero_grad();
  m.forward_backward(b, 5.0);
  CHECK(std::equal(g1.begin(), g1.end(), m.grad_data()));
}
