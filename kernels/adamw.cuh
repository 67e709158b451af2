// Fused AdamW with gradient-norm clipping on the GPU, over fp32 master weights, fp32 gradients and
// fp32 moments (the update rule of sdt::train::AdamW). The global norm is reduced on the device
// and the clip factor stays there: no host round trip between backward and update.
#pragma once

#include <cstddef>

#include "types.cuh"

namespace sdt::cuda {

// Workspace (doubles) that global_grad_norm needs.
constexpr int kGradNormPartials = 1024;

// norm_out (device double) = sqrt(sum grad^2) over n values, summed in double in a fixed order
// (reproducible); clip_out (device float) = min(1, max_norm / norm) when max_norm > 0 and
// norm > max_norm, else 1 (sdt::train::clip_factor). workspace: kGradNormPartials doubles.
void global_grad_norm(const float* grad, size_t n, double max_norm, double* workspace, double* norm_out,
                      float* clip_out, Stream stream);

struct AdamWStep {
  float lr = 0.0f;
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;  // 0 for parameters without decay (norms)
  long step = 1;              // the update count after this update (1 for the first)
};

// One update of n parameters (one contiguous range with one decay setting):
//   g = grad * clip; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2
//   p = p (1 - lr wd) - lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
// clip (device, nullable: 1) comes from global_grad_norm. bf16_copy (nullable) receives the
// updated weights rounded to bf16 for the next forward.
void adamw_update(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, size_t n, const AdamWStep& s,
                  const float* clip, bf16* bf16_copy, Stream stream);

// Rounds n fp32 values to bf16 (the bf16 weight copy after loading a checkpoint).
void to_bf16(const float* src, size_t n, bf16* dst, Stream stream);

}  // namespace sdt::cuda
