#include <cmath>

#include "adamw.cuh"
#include "device.cuh"
#include "internal/check.cuh"
#include "internal/warp.cuh"

namespace sdt::cuda {
namespace {

using detail::store_bf16;

constexpr int kThreads = 256;

// Block b sums the squares of a fixed strided set of elements: the partition depends only on n,
// never on timing, so the result is bitwise reproducible.
__global__ void __launch_bounds__(kThreads) grad_sumsq_kernel(const float* g, long n, double* partials) {
  __shared__ double part[kThreads / 32];
  double s = 0.0;
  for (long i = blockIdx.x * static_cast<long>(kThreads) + threadIdx.x; i < n;
       i += static_cast<long>(gridDim.x) * kThreads) {
    const double x = g[i];
    s += x * x;
  }
  s = detail::warp_sum_double(s);
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = s;
  __syncthreads();
  if (threadIdx.x == 0) {
    double t = 0.0;
    for (int k = 0; k < kThreads / 32; ++k) t += part[k];
    partials[blockIdx.x] = t;
  }
}

__global__ void grad_norm_finish_kernel(const double* partials, int count, double max_norm, double* norm_out,
                                        float* clip_out) {
  if (threadIdx.x != 0) return;
  double t = 0.0;
  for (int k = 0; k < count; ++k) t += partials[k];
  const double norm = sqrt(t);
  *norm_out = norm;
  *clip_out = (max_norm > 0.0 && norm > max_norm) ? static_cast<float>(max_norm / norm) : 1.0f;
}

__global__ void __launch_bounds__(kThreads)
    adamw_kernel(float* p, const float* grad, float* m, float* v, long n, float b1, float b2, float eps, float decay,
                 float step_size, float inv_sqrt_bc2, const float* clip, bf16* copy) {
  const float c = clip ? *clip : 1.0f;
  for (long i = blockIdx.x * static_cast<long>(kThreads) + threadIdx.x; i < n;
       i += static_cast<long>(gridDim.x) * kThreads) {
    const float g = grad[i] * c;
    const float mi = b1 * m[i] + (1.0f - b1) * g;
    const float vi = b2 * v[i] + (1.0f - b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    const float denom = sqrtf(vi) * inv_sqrt_bc2 + eps;
    const float w = p[i] * decay - step_size * mi / denom;
    p[i] = w;
    if (copy) store_bf16(copy, i, w);
  }
}

__global__ void to_bf16_kernel(const float* src, long n, bf16* dst) {
  for (long i = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long>(gridDim.x) * blockDim.x)
    store_bf16(dst, i, src[i]);
}

}  // namespace

void global_grad_norm(const float* grad, size_t n, double max_norm, double* workspace, double* norm_out,
                      float* clip_out, Stream stream) {
  cudaStream_t s = detail::as_stream(stream);
  grad_sumsq_kernel<<<kGradNormPartials, kThreads, 0, s>>>(grad, static_cast<long>(n), workspace);
  check_launch("global_grad_norm (partials)");
  grad_norm_finish_kernel<<<1, 32, 0, s>>>(workspace, kGradNormPartials, max_norm, norm_out, clip_out);
  check_launch("global_grad_norm (finish)");
}

void adamw_update(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, size_t n, const AdamWStep& st,
                  const float* clip, bf16* bf16_copy, Stream stream) {
  if (n == 0) return;
  // The same folding of the bias corrections as the CPU optimizer, computed in double.
  const double t = static_cast<double>(st.step);
  const double bc1 = 1.0 - std::pow(static_cast<double>(st.beta1), t);
  const double bc2 = 1.0 - std::pow(static_cast<double>(st.beta2), t);
  const float step_size = static_cast<float>(static_cast<double>(st.lr) / bc1);
  const float inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
  const float decay = static_cast<float>(1.0 - static_cast<double>(st.lr) * static_cast<double>(st.weight_decay));
  const long count = static_cast<long>(n);
  adamw_kernel<<<detail::grid_for(count, kThreads), kThreads, 0, detail::as_stream(stream)>>>(
      param, grad, exp_avg, exp_avg_sq, count, st.beta1, st.beta2, st.eps, decay, step_size, inv_sqrt_bc2, clip,
      bf16_copy);
  check_launch("adamw_update");
}

void to_bf16(const float* src, size_t n, bf16* dst, Stream stream) {
  if (n == 0) return;
  const long count = static_cast<long>(n);
  to_bf16_kernel<<<detail::grid_for(count, 256), 256, 0, detail::as_stream(stream)>>>(src, count, dst);
  check_launch("to_bf16");
}

}  // namespace sdt::cuda
