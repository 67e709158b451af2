#include "cross_entropy.cuh"
#include "device.cuh"
#include "internal/check.cuh"
#include "internal/warp.cuh"

namespace sdt::cuda {
namespace {

using detail::load_bf16;
using detail::store_bf16;

constexpr int kThreads = 512;

// Merges two (max, sum of exp(x - max)) pairs.
__device__ __forceinline__ void merge(float& m, float& s, float m2, float s2) {
  const float mn = fmaxf(m, m2);
  if (mn == -INFINITY) return;
  s = s * __expf(m - mn) + s2 * __expf(m2 - mn);
  m = mn;
}

// One block per row: an online (max, sum) pass, then the gradient pass.
__global__ void __launch_bounds__(kThreads) cross_entropy_kernel(const bf16* logits, int V, const int32_t* targets,
                                                                 const float* w, int mask_id, float grad_scale,
                                                                 float* ce_out, float* weighted, bf16* dlogits) {
  __shared__ float sm[32], ss[32];
  __shared__ float row_lse;
  const long n = blockIdx.x;
  const bf16* row = logits + n * V;
  const int target = targets ? targets[n] : -1;
  if (target < 0) {
    if (threadIdx.x == 0) {
      ce_out[n] = 0.0f;
      weighted[n] = 0.0f;
    }
    if (dlogits)
      for (int v = threadIdx.x; v < V; v += blockDim.x) store_bf16(dlogits, n * V + v, 0.0f);
    return;
  }
  float m = -INFINITY, s = 0.0f;
  for (int v = threadIdx.x; v < V; v += blockDim.x) {
    if (v == mask_id) continue;
    const float x = load_bf16(row, v);
    if (x == -INFINITY) continue;  // contributes nothing; would make exp(-inf - -inf) a NaN
    if (x > m) {
      s = s * __expf(m - x) + 1.0f;
      m = x;
    } else {
      s += __expf(x - m);
    }
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float m2 = __shfl_xor_sync(detail::kFullMask, m, o);
    const float s2 = __shfl_xor_sync(detail::kFullMask, s, o);
    merge(m, s, m2, s2);
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) {
    sm[warp] = m;
    ss[warp] = s;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    float M = sm[0], S = ss[0];
    for (int k = 1; k < static_cast<int>(blockDim.x >> 5); ++k) merge(M, S, sm[k], ss[k]);
    const float lse = M + logf(S);
    row_lse = lse;
    const bool bad = target >= V || target == mask_id;
    const float ce = bad ? NAN : lse - load_bf16(row, target);
    ce_out[n] = ce;
    weighted[n] = (w ? w[n] : 1.0f) * ce;
  }
  __syncthreads();
  if (!dlogits) return;
  const float g = grad_scale * (w ? w[n] : 1.0f);
  const float lse = row_lse;
  // Every thread reads its element before writing it, so dlogits may alias logits.
  for (int v = threadIdx.x; v < V; v += blockDim.x) {
    float d = 0.0f;
    if (v != mask_id) {
      d = g * __expf(load_bf16(row, v) - lse);
      if (v == target) d -= g;
    }
    store_bf16(dlogits, n * V + v, d);
  }
}

// Fixed-order sum of N floats in double by one block: thread t sums a strided slice, then a
// tree over the threads.
__global__ void sum_rows_kernel(const float* x, int N, double* out) {
  __shared__ double part[1024];
  double s = 0.0;
  for (int i = threadIdx.x; i < N; i += blockDim.x) s += static_cast<double>(x[i]);
  part[threadIdx.x] = s;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half >>= 1) {
    if (static_cast<int>(threadIdx.x) < half) part[threadIdx.x] += part[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) *out = part[0];
}

}  // namespace

void cross_entropy(const bf16* logits, int N, int V, const int32_t* targets, const float* w, int mask_id,
                   float grad_scale, float* ce_out, double* loss_sum, bf16* dlogits, float* workspace,
                   Stream stream) {
  cudaStream_t s = detail::as_stream(stream);
  if (N <= 0) {
    SDT_CUDA_CHECK(cudaMemsetAsync(loss_sum, 0, sizeof(double), s));
    return;
  }
  cross_entropy_kernel<<<N, kThreads, 0, s>>>(logits, V, targets, w, mask_id, grad_scale, ce_out, workspace,
                                              grad_scale != 0.0f ? dlogits : nullptr);
  check_launch("cross_entropy");
  sum_rows_kernel<<<1, 1024, 0, s>>>(workspace, N, loss_sum);
  check_launch("cross_entropy (sum)");
}

}  // namespace sdt::cuda
