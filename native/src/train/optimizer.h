// AdamW with decoupled weight decay (Loshchilov & Hutter) over the model's named parameters, and
// gradient clipping by global L2 norm. Parameters whose `decay` flag is false (norm weights,
// biases) get no weight decay.
#pragma once

#include <cstdint>
#include <vector>

#include "model/model.h"

namespace sdt::train {

struct AdamWConfig {
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
};

class AdamW {
 public:
  AdamW(const AdamWConfig& cfg, int64_t num_params);

  // One update of every parameter at learning rate lr:
  //   t += 1; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2
  //   p -= lr * wd * p           (decay params only; uses p before the Adam update)
  //   p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
  // Moments are indexed like the model's flat parameter buffer (ParamView::offset).
  void step(std::vector<ParamView>& params, double lr);

  const AdamWConfig& config() const { return cfg_; }
  int64_t updates() const { return t_; }
  void set_updates(int64_t t) { t_ = t; }
  std::vector<float>& exp_avg() { return m_; }
  std::vector<float>& exp_avg_sq() { return v_; }
  const std::vector<float>& exp_avg() const { return m_; }
  const std::vector<float>& exp_avg_sq() const { return v_; }

 private:
  AdamWConfig cfg_;
  int64_t t_ = 0;
  std::vector<float> m_;
  std::vector<float> v_;
};

// L2 norm of all gradients, accumulated in double over fixed chunks summed in a fixed order, so
// the result is bitwise reproducible whatever the thread count (exact resume relies on it).
double global_grad_norm(const std::vector<ParamView>& params);

// Multiplies every gradient by `scale`.
void scale_grads(std::vector<ParamView>& params, float scale);

// Clip factor for a norm: min(1, max_norm / norm); 1 when max_norm <= 0 (clipping off).
float clip_factor(double norm, double max_norm);

}  // namespace sdt::train
