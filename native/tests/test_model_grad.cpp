// Whole-model gradient checks: every parameter tensor is probed by central finite differences
// of forward_loss, and a random direction over all parameters checks grad . d, for the three
// attention modes, GQA on and off, tied and untied embeddings, with segments and positions.
#include <cmath>
#include <string>
#include <vector>

#include "model/model.h"
#include "test_model_util.h"

using sdt::AttentionMode;
using sdt_test::TestRng;

namespace {

struct BatchData {
  int B = 2, T = 7;
  std::vector<int32_t> ids, targets, seg, pos;
  std::vector<float> w;
  sdt::Batch batch(AttentionMode mode, bool segments, bool positions) const {
    sdt::Batch b;
    b.B = B;
    b.T = T;
    b.input_ids = ids.data();
    b.target_ids = targets.data();
    b.weights = w.data();
    b.segment_ids = segments ? seg.data() : nullptr;
    b.position_ids = positions ? pos.data() : nullptr;
    b.mode = mode;
    return b;
  }
};

BatchData random_batch(const sdt::ModelConfig& c, TestRng& rng) {
  BatchData d;
  const int n = d.B * d.T;
  for (int i = 0; i < n; ++i) {
    d.ids.push_back(rng.below(4) == 0 ? c.mask_token_id : rng.below(c.vocab_size - 1));
    d.targets.push_back(rng.below(5) == 0 ? -1 : rng.below(c.vocab_size - 1));
    d.w.push_back(rng.uniform(0.5f, 2.0f));
  }
  d.seg = {0, 0, 0, 1, 1, 1, -1, 5, 5, 5, 5, 2, 2, -1};
  d.pos = {0, 1, 2, 0, 1, 2, 0, 0, 1, 2, 3, 0, 1, 4};
  return d;
}

// Larger-than-default weights make every gradient clearly non-zero, so relative errors mean something.
void init_for_gradcheck(sdt::Model& m, TestRng& rng) {
  m.init(7);
  for (auto& p : m.params()) {
    for (int64_t i = 0; i < p.numel; ++i)
      p.data[i] = p.shape.size() == 1 ? 1.0f + rng.uniform(-0.3f, 0.3f) : p.data[i] * 12.0f;
  }
}

void check_model(AttentionMode mode, int kv, bool tied, bool segments, bool positions, uint64_t seed) {
  TestRng rng(seed);
  const auto cfg = sdt_test::tiny_config(kv, tied, mode);
  sdt::Model m(cfg);
  init_for_gradcheck(m, rng);
  const BatchData d = random_batch(cfg, rng);
  const sdt::Batch b = d.batch(mode, segments, positions);
  const double norm = 9.0;
  m.zero_grad();
  const auto st = m.forward_backward(b, norm);
  CHECK(std::isfinite(st.loss) && st.loss > 0);
  const std::vector<float> grad(m.grad_data(), m.grad_data() + m.num_params());

  const std::string tag = std::string(sdt::attention_mode_name(mode)) + ",kv=" + std::to_string(kv) +
                          (tied ? ",tied" : ",untied") + (segments ? ",seg" : "") + (positions ? ",pos" : "");
  auto loss = [&] { return m.forward_loss(b, norm).loss; };
  // The same forward is what forward_backward reported.
  CHECK_NEAR(loss(), st.loss, 1e-6);

  float* data = m.param_data();
  int failures = 0;
  for (const auto& p : m.params()) {
    // A few entries of each tensor; for embeddings only rows of tokens that occur matter.
    std::vector<float> x(p.data, p.data + p.numel);
    std::vector<float> g(grad.begin() + p.offset, grad.begin() + p.offset + p.numel);
    auto f = [&] {
      std::copy(x.begin(), x.end(), data + p.offset);
      return loss();
    };
    failures += sdt_test::check_gradient(tag + ":" + p.name, x, g, f, 1e-2f, 3e-2, 3e-4, 7);
    std::copy(x.begin(), x.end(), data + p.offset);
  }
  CHECK_EQ(failures, 0);

  // Directional derivative over all parameters at once.
  const auto dir = sdt_test::random_vector(grad.size(), rng);
  const std::vector<float> base(data, data + m.num_params());
  auto at = [&](float t) {
    for (size_t i = 0; i < base.size(); ++i) data[i] = base[i] + t * dir[i];
    return loss();
  };
  const float eps = 2e-3f;
  const double numeric = (at(eps) - at(-eps)) / (2.0 * eps);
  at(0.0f);
  double analytic = 0.0;
  for (size_t i = 0; i < grad.size(); ++i) analytic += static_cast<double>(grad[i]) * dir[i];
  CHECK_CLOSE(numeric, analytic, 2e-2, 1e-3);
}

}  // namespace

TEST(model_grad_bidirectional) {
  check_model(AttentionMode::Bidirectional, 4, false, false, false, 31);
  check_model(AttentionMode::Bidirectional, 2, true, true, false, 32);
}

TEST(model_grad_causal) {
  check_model(AttentionMode::Causal, 2, false, false, false, 33);
  check_model(AttentionMode::Causal, 1, true, true, true, 34);
  check_model(AttentionMode::Causal, 4, true, false, false, 35);
}

TEST(model_grad_block) {
  check_model(AttentionMode::Block, 4, true, false, false, 36);
  check_model(AttentionMode::Block, 2, false, true, true, 37);
  check_model(AttentionMode::Block, 1, false, false, false, 38);
}

TEST(model_gradients_accumulate_over_micro_batches) {
  // Two half batches with the global normalizer add up to the full batch's gradient.
  TestRng rng(39);
  const auto cfg = sdt_test::tiny_config(2, false, AttentionMode::Block);
  sdt::Model m(cfg);
  m.init(3);
  const BatchData d = random_batch(cfg, rng);
  const sdt::Batch full = d.batch(AttentionMode::Block, false, false);
  m.zero_grad();
  const double full_loss = m.forward_backward(full, 14.0).loss;
  const std::vector<float> g_full(m.grad_data(), m.grad_data() + m.num_params());
  m.zero_grad();
  double acc_loss = 0.0;
  for (int r = 0; r < 2; ++r) {
    sdt::Batch half = full;
    half.B = 1;
    half.input_ids += r * d.T;
    half.target_ids += r * d.T;
    half.weights += r * d.T;
    acc_loss += m.forward_backward(half, 14.0).loss;
  }
  CHECK_NEAR(acc_loss, full_loss, 1e-5);
  int bad = 0;
  for (int64_t i = 0; i < m.num_params(); ++i)
    bad += std::fabs(m.grad_data()[i] - g_full[static_cast<size_t>(i)]) > 1e-6 + 1e-4 * std::fabs(g_full[static_cast<size_t>(i)]);
  CHECK_EQ(bad, 0);
}
