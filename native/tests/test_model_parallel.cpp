// A model large enough that every op takes its OpenMP path: gradients agree with a one-thread
// run and with a finite-difference directional derivative.
#include <omp.h>

#include <cmath>
#include <vector>

#include "model/model.h"
#include "test_model_util.h"

using sdt::AttentionMode;
using sdt_test::TestRng;

TEST(model_parallel_paths_match_one_thread_and_finite_differences) {
  TestRng rng(61);
  sdt::ModelConfig cfg = sdt_test::tiny_config(2, false, AttentionMode::Block);
  cfg.vocab_size = 97;
  cfg.mask_token_id = 96;
  cfg.hidden_size = 64;
  cfg.intermediate_size = 96;
  cfg.max_position_embeddings = 256;
  cfg.block_size = 16;
  sdt::Model m(cfg);
  m.init(61);
  for (auto& p : m.params())
    if (p.shape.size() == 2)
      for (int64_t i = 0; i < p.numel; ++i) p.data[i] *= 5.0f;
  const int B = 4, T = 128, N = B * T;
  std::vector<int32_t> ids(N), targets(N), seg(N);
  std::vector<float> w(N);
  for (int i = 0; i < N; ++i) {
    ids[i] = rng.below(cfg.vocab_size);
    targets[i] = rng.below(6) == 0 ? -1 : rng.below(cfg.vocab_size - 1);
    w[i] = rng.uniform(0.0f, 2.0f);
    seg[i] = (i % T) < 100 ? 0 : ((i % T) < 120 ? 1 : -1);
  }
  sdt::Batch b;
  b.B = B;
  b.T = T;
  b.input_ids = ids.data();
  b.target_ids = targets.data();
  b.weights = w.data();
  b.segment_ids = seg.data();
  b.mode = AttentionMode::Block;

  const int threads = omp_get_max_threads();
  m.zero_grad();
  const double loss_mt = m.forward_backward(b).loss;
  const std::vector<float> g_mt(m.grad_data(), m.grad_data() + m.num_params());
  omp_set_num_threads(1);
  m.zero_grad();
  const double loss_1t = m.forward_backward(b).loss;
  omp_set_num_threads(threads);
  CHECK_NEAR(loss_mt, loss_1t, 1e-5);
  double max_rel = 0.0;
  for (int64_t i = 0; i < m.num_params(); ++i) {
    const double a = g_mt[static_cast<size_t>(i)], c = m.grad_data()[i];
    max_rel = std::max(max_rel, std::fabs(a - c) / (1e-4 + std::fabs(c)));
  }
  CHECK_NEAR(max_rel, 0.0, 1e-2);

  const auto dir = sdt_test::random_vector(g_mt.size(), rng);
  float* data = m.param_data();
  const std::vector<float> base(data, data + m.num_params());
  auto at = [&](float t) {
    for (size_t i = 0; i < base.size(); ++i) data[i] = base[i] + t * dir[i];
    return m.forward_loss(b).loss;
  };
  const float eps = 1e-3f;
  const double numeric = (at(eps) - at(-eps)) / (2.0 * eps);
  at(0.0f);
  double analytic = 0.0;
  for (size_t i = 0; i < g_mt.size(); ++i) analytic += static_cast<double>(g_mt[i]) * dir[i];
  CHECK_CLOSE(numeric, analytic, 2e-2, 1e-3);

  // The cache path at this size: block-by-block logits equal the full forward.
  const int T2 = 64, V = cfg.vocab_size;
  std::vector<float> full(static_cast<size_t>(2) * T2 * V), got(full.size());
  std::vector<int32_t> ids2(ids.begin(), ids.begin() + 2 * T2);
  m.forward_logits(ids2.data(), 2, T2, AttentionMode::Block, nullptr, full.data());
  auto cache = m.make_cache(2, T2);
  const int C = cfg.block_size;
  std::vector<float> lg(static_cast<size_t>(2) * C * V);
  for (int s = 0; s < T2; s += C) {
    std::vector<int32_t> chunk;
    for (int r = 0; r < 2; ++r) chunk.insert(chunk.end(), ids2.begin() + r * T2 + s, ids2.begin() + r * T2 + s + C);
    m.forward_chunk(cache, chunk.data(), C, s, AttentionMode::Block, lg.data(), true);
    for (int r = 0; r < 2; ++r)
      std::copy_n(lg.begin() + static_cast<long>(r) * C * V, C * V, got.begin() + (static_cast<long>(r) * T2 + s) * V);
  }
  double d = 0.0;
  for (size_t i = 0; i < full.size(); ++i)
    if (!std::isinf(full[i])) d = std::max(d, static_cast<double>(std::fabs(full[i] - got[i])));
  CHECK_NEAR(d, 0.0, 1e-4);
}
