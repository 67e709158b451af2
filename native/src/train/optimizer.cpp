#include "train/optimizer.h"

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
  for (ParamView& p : params) {
    const float decay = p.decay ? static_cast<float>(1.0 - lr * cfg_.weight_decay) : 1.0f;
    float* m = m_.data() + p.offset;
    float* v = v_.data() + p.offset;
    float* w = p.data;
    const float* g = p.grad;
    const int64_t n = p.numel;
#pragma omp parallel for schedule(static)
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
  constexpr int64_t kChunk = 1 << 14;
  double total = 0.0;
  for (const ParamView& p : params) {
    const int64_t chunks = (p.numel + kChunk - 1) / kChunk;
    std::vector<double> partial(static_cast<size_t>(chunks), 0.0);
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t end = std::min(p.numel, (c + 1) * kChunk);
      double s = 0.0;
      for (int64_t i = c * kChunk; i < end; ++i) s += static_cast<double>(p.grad[i]) * p.grad[i];
      partial[static_cast<size_t>(c)] = s;
    }
    for (const double s : partial) total += s;
  }
  return std::sqrt(total);
}

void scale_grads(std::vector<ParamView>& params, float scale) {
  for (ParamView& p : params) {
    float* g = p.grad;
    const int64_t n = p.numel;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) g[i] *= scale;
  }
}

float clip_factor(double norm, double max_norm) {
  if (max_norm <= 0.0 || !(norm > max_norm)) return 1.0f;
  return static_cast<float>(max_norm / norm);
}

}  // namespace sdt::train
