// Finite-difference gradient checks of every op, plus forward checks against direct formulas.
// Tolerances: fp32 central differences with eps = 1e-2 on O(1) inputs have truncation error
// ~eps^2 and rounding error ~1e-7/eps, so entries must agree within 1e-3 + 2e-2 relative.
#include <cmath>
#include <limits>
#include <vector>

#include "ops/ops.h"
#include "test_model_util.h"

using sdt_test::check_gradient;
using sdt_test::random_vector;
using sdt_test::TestRng;
using sdt_test::weighted_sum;

namespace {
constexpr float kEps = 1e-2f;
constexpr double kRtol = 2e-2;
constexpr double kAtol = 1e-3;
}  // namespace

TEST(ops_embedding_forward_and_grad) {
  TestRng rng(11);
  const int V = 5, D = 4, N = 6;
  auto table = random_vector(V * D, rng);
  const std::vector<int32_t> ids = {3, 1, 3, 0, 4, 3};  // repeated ids must accumulate
  std::vector<float> out(N * D);
  sdt::embedding_forward(table.data(), D, ids.data(), N, out.data());
  for (int n = 0; n < N; ++n)
    for (int d = 0; d < D; ++d) CHECK_EQ(out[n * D + d], table[ids[n] * D + d]);
  const auto r = random_vector(N * D, rng);
  std::vector<float> grad(V * D, 0.0f);
  sdt::embedding_backward(ids.data(), N, D, r.data(), grad.data());
  auto f = [&] {
    sdt::embedding_forward(table.data(), D, ids.data(), N, out.data());
    return weighted_sum(out, r);
  };
  CHECK_EQ(check_gradient("embedding.table", table, grad, f, kEps, kRtol, kAtol, 1000), 0);
}

TEST(ops_rmsnorm_grad) {
  TestRng rng(12);
  const int N = 5, D = 7;
  auto x = random_vector(N * D, rng);
  auto w = random_vector(D, rng);
  const auto r = random_vector(N * D, rng);
  std::vector<float> y(N * D), inv(N);
  sdt::rmsnorm_forward(x.data(), w.data(), N, D, 1e-5f, y.data(), inv.data());
  // Forward against the formula.
  for (int n = 0; n < N; ++n) {
    double ss = 0;
    for (int d = 0; d < D; ++d) ss += static_cast<double>(x[n * D + d]) * x[n * D + d];
    const double rr = 1.0 / std::sqrt(ss / D + 1e-5);
    for (int d = 0; d < D; ++d) CHECK_NEAR(y[n * D + d], w[d] * x[n * D + d] * rr, 1e-5);
  }
  std::vector<float> dx(N * D, 0.5f), dw(D, 0.25f);  // non-zero start: backward must accumulate
  sdt::rmsnorm_backward(x.data(), w.data(), inv.data(), r.data(), N, D, dx.data(), dw.data());
  for (auto& v : dx) v -= 0.5f;
  for (auto& v : dw) v -= 0.25f;
  auto f = [&] {
    sdt::rmsnorm_forward(x.data(), w.data(), N, D, 1e-5f, y.data(), inv.data());
    return weighted_sum(y, r);
  };
  CHECK_EQ(check_gradient("rmsnorm.x", x, dx, f, kEps, kRtol, kAtol, 1000), 0);
  CHECK_EQ(check_gradient("rmsnorm.w", w, dw, f, kEps, kRtol, kAtol, 1000), 0);
}

TEST(ops_rope_grad_and_properties) {
  TestRng rng(13);
  const int hd = 8, heads = 3, N = 6, T = 3, stride = heads * hd + 5;
  const sdt::RopeTable rope(hd, 16, 10000.0f);
  const std::vector<int32_t> pos = {0, 5, 2, 9, 1, 15};
  auto x = random_vector(static_cast<size_t>(N) * stride, rng);
  const auto r = random_vector(x.size(), rng);
  // Gradient: the transpose rotation of r.
  auto grad = r;
  sdt::rope_backward(rope, grad.data(), N, stride, heads, pos.data(), T);
  // Columns past the heads are untouched, so their gradient is the identity.
  auto f = [&] {
    auto y = x;
    sdt::rope_forward(rope, y.data(), N, stride, heads, pos.data(), T);
    return weighted_sum(y, r);
  };
  CHECK_EQ(check_gradient("rope.x", x, grad, f, kEps, kRtol, kAtol, 1000), 0);

  // Rotation: inverse is the backward, norms are kept, and q.k depends only on the offset.
  auto y = x;
  sdt::rope_forward(rope, y.data(), N, stride, heads, pos.data(), T);
  auto back = y;
  sdt::rope_backward(rope, back.data(), N, stride, heads, pos.data(), T);
  for (size_t i = 0; i < x.size(); ++i) CHECK_NEAR(back[i], x[i], 1e-5);
  auto q = random_vector(hd, rng), k = random_vector(hd, rng);
  auto rotated_dot = [&](int pq, int pk) {
    auto qq = q, kk = k;
    const int32_t a = pq, b = pk;
    sdt::rope_forward(rope, qq.data(), 1, hd, 1, &a, 1);
    sdt::rope_forward(rope, kk.data(), 1, hd, 1, &b, 1);
    double s = 0;
    for (int i = 0; i < hd; ++i) s += static_cast<double>(qq[i]) * kk[i];
    return s;
  };
  CHECK_NEAR(rotated_dot(7, 3), rotated_dot(11, 7), 1e-5);
  CHECK_NEAR(rotated_dot(2, 9), rotated_dot(5, 12), 1e-5);
  // Pair i rotates by pos * theta^(-2i/hd) (HF rotate-half: pairs are (i, i + hd/2)).
  std::vector<float> e(hd, 0.0f);
  e[1] = 1.0f;
  const int32_t p3 = 3;
  sdt::rope_forward(rope, e.data(), 1, hd, 1, &p3, 1);
  const double ang = 3.0 * std::pow(10000.0, -2.0 / hd);
  CHECK_NEAR(e[1], std::cos(ang), 1e-6);
  CHECK_NEAR(e[1 + hd / 2], std::sin(ang), 1e-6);
}

TEST(ops_swiglu_grad) {
  TestRng rng(14);
  const int N = 4, I = 6;
  auto gu = random_vector(N * 2 * I, rng, 2.0f);
  const auto r = random_vector(N * I, rng);
  std::vector<float> h(N * I), dgu(N * 2 * I);
  sdt::swiglu_forward(gu.data(), N, I, h.data());
  for (int n = 0; n < N; ++n)
    for (int i = 0; i < I; ++i) {
      const double g = gu[n * 2 * I + i], u = gu[n * 2 * I + I + i];
      CHECK_NEAR(h[n * I + i], g / (1 + std::exp(-g)) * u, 1e-5);
    }
  sdt::swiglu_backward(gu.data(), r.data(), N, I, dgu.data());
  auto f = [&] {
    sdt::swiglu_forward(gu.data(), N, I, h.data());
    return weighted_sum(h, r);
  };
  CHECK_EQ(check_gradient("swiglu.gu", gu, dgu, f, kEps, kRtol, kAtol, 1000), 0);
}

TEST(ops_cross_entropy_excludes_mask_and_grad) {
  TestRng rng(15);
  const int N = 5, V = 7, mask = 4;
  auto logits = random_vector(N * V, rng, 3.0f);
  const std::vector<int32_t> targets = {0, 6, -1, 3, 2};
  const std::vector<float> w = {1.0f, 0.5f, 9.0f, 2.0f, 0.0f};
  // Reference in double, softmax over v != mask.
  double want = 0;
  std::vector<double> ce_ref(N, 0.0);
  for (int n = 0; n < N; ++n) {
    if (targets[n] < 0) continue;
    double mx = -1e30, s = 0;
    for (int v = 0; v < V; ++v)
      if (v != mask) mx = std::max(mx, static_cast<double>(logits[n * V + v]));
    for (int v = 0; v < V; ++v)
      if (v != mask) s += std::exp(logits[n * V + v] - mx);
    ce_ref[n] = mx + std::log(s) - logits[n * V + targets[n]];
    want += w[n] * ce_ref[n];
  }
  auto work = logits;
  std::vector<float> ce(N);
  const double got = sdt::cross_entropy(work.data(), N, V, targets.data(), w.data(), mask, 0.0f, ce.data());
  CHECK_NEAR(got, want, 1e-5);
  for (int n = 0; n < N; ++n) CHECK_NEAR(ce[n], ce_ref[n], 1e-5);
  for (int n = 0; n < N; ++n) CHECK(std::isinf(work[n * V + mask]) && work[n * V + mask] < 0);

  const float scale = 0.3f;
  auto grad = logits;
  sdt::cross_entropy(grad.data(), N, V, targets.data(), w.data(), mask, scale, nullptr);
  for (int n = 0; n < N; ++n) CHECK_EQ(grad[n * V + mask], 0.0f);
  auto f = [&] {
    auto l = logits;
    return scale * sdt::cross_entropy(l.data(), N, V, targets.data(), w.data(), mask, 0.0f, nullptr);
  };
  CHECK_EQ(check_gradient("cross_entropy.logits", logits, grad, f, kEps, kRtol, kAtol, 1000), 0);
}
