#include "train/optimizer.h"

#include <algorithm>
#include <cmath>

namespace sdt::train {

AdamW::AdamW(const AdamWConfig& cfg, int64_t num_params)
    : cfg_(cfg), m_(static_cast<size_t>(num_params), 0.0f), v_(static_cast<size_t>(num_params), 0.0f) {}

void AdamW::step(std::vector<ParamView>& params, double lr) {
  ++t_;
  const double bc1 = 1.0 - std::pow(cfg_.beta1, static_cast<double>(t_));
  const double bc2 = 1.0 - std::pow(cfg_.beta2, static_cast<double>(t_));
  const float b1 = static_cast<float>(cfg_.beta1);
  const float b2 = static_cast<float>(cfg_.beta2);
  // Fold the bias corrections into the step size and the epsilon:
  //   m_hat / (sqrt(v_hat) + eps) = (m / bc1) / (sqrt(v) / sqrt(bc2) + eps)
  const float step_size = static_cast<float>(lr / bc1);
  const float inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
  const float eps = static_cast<float>(cfg_.eps);
  // One parallel region for all tensors, no barrier between them: forking per tensor costs more
  // than the arithmetic on small models, and far more when the cores are shared.
  const int64_t np = static_cast<int64_t>(params.size());
#pragma omp parallel
  for (int64_t k = 0; k < np; ++k) {
    ParamView& p = params[static_cast<size_t>(k)];
    const float decay = p.decay ? static_cast<float>(1.0 - lr * cfg_.weight_decay) : 1.0f;
    float* m = m_.data() + p.offset;
    float* v = v_.data() + p.offset;
    float* w = p.data;
    const float* g = p.grad;
    const int64_t n = p.numel;
#pragma omp for schedule(static) nowait
    for (int64_t i = 0; i < n; ++i) {
      const float gi = g[i];
      m[i] = b1 * m[i] + (1.0f - b1) * gi;
      v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
      const float denom = std::sqrt(v[i]) * inv_sqrt_bc2 + eps;
      w[i] = w[i] * decay - step_size * m[i] / denom;
    }
  }
}

double global_grad_norm(const std::vector<ParamView>& params) {
  // Fixed chunks of each tensor, summed in a fixed order afterwards: the result does not depend
  // on the thread count or on which thread ran which chunk.
  constexpr int64_t kChunk = 1 << 14;
  struct Chunk {
    const float* g;
    int64_t n;
  };
  std::vector<Chunk> chunks;
  for (const ParamView& p : params) {
    for (int64_t at = 0; at < p.numel; at += kChunk) chunks.push_back({p.grad + at, std::min(kChunk, p.numel - at)});
  }
  std::vector<double> partial(chunks.size(), 0.0);
  const int64_t nc = static_cast<int64_t>(chunks.size());
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < nc; ++c) {
    const Chunk& ch = chunks[static_cast<size_t>(c)];
    double s = 0.0;
    for (int64_t i = 0; i < ch.n; ++i) s += static_cast<double>(ch.g[i]) * ch.g[i];
    partial[static_cast<size_t>(c)] = s;
  }
  double total = 0.0;
  for (const double s : partial) total += s;
  return std::sqrt(total);
}

void scale_grads(std::vector<ParamView>& params, float scale) {
  const int64_t np = static_cast<int64_t>(params.size());
#pragma omp parallel
  for (int64_t k = 0; k < np; ++k) {
    float* g = params[static_cast<size_t>(k)].grad;
    const int64_t n = params[static_cast<size_t>(k)].numel;
#pragma omp for schedule(static) nowait
    for (int64_t i = 0; i < n; ++i) g[i] *= scale;
  }
}

float clip_factor(double norm, double max_norm) {
  if (max_norm <= 0.0 || !(norm > max_norm)) return 1.0f;
  return static_cast<float>(max_norm / norm);
}

}  // namespace sdt::train
