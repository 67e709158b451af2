#include "device.cuh"
#include "internal/check.cuh"
#include "internal/warp.cuh"
#include "rmsnorm.cuh"

namespace sdt::cuda {
namespace {

using detail::block_sum;
using detail::store_bf16;

constexpr int kThreads = 256;
constexpr int kDwRows = 64;  // rows summed by one block of the dw kernel before its atomic add

__global__ void rmsnorm_forward_kernel(const float* x, const float* w, int D, float eps, bf16* y, float* inv_rms) {
  __shared__ float scratch[32];
  const long n = blockIdx.x;
  const float* xr = x + n * D;
  float ss = 0.0f;
  for (int d = threadIdx.x; d < D; d += blockDim.x) ss += xr[d] * xr[d];
  ss = block_sum(ss, scratch);
  const float r = 1.0f / sqrtf(ss / static_cast<float>(D) + eps);
  if (threadIdx.x == 0) inv_rms[n] = r;
  for (int d = threadIdx.x; d < D; d += blockDim.x) store_bf16(y, n * D + d, w[d] * (xr[d] * r));
}

// dx for one row per block: dx += r * (dy w - x r mean(dy w xhat)).
__global__ void rmsnorm_backward_dx_kernel(const float* x, const float* w, const float* inv_rms, const float* dy,
                                           int D, float* dx) {
  __shared__ float scratch[32];
  const long n = blockIdx.x;
  const float* xr = x + n * D;
  const float* dyr = dy + n * D;
  float* dxr = dx + n * D;
  const float r = inv_rms[n];
  float dot = 0.0f;
  for (int d = threadIdx.x; d < D; d += blockDim.x) dot += dyr[d] * w[d] * (xr[d] * r);
  dot = block_sum(dot, scratch);
  const float mean_dot = dot / static_cast<float>(D);
  for (int d = threadIdx.x; d < D; d += blockDim.x) dxr[d] += r * (dyr[d] * w[d] - xr[d] * r * mean_dot);
}

// dw[d] += sum_n dy[n, d] * x[n, d] * inv_rms[n]: a 32-column x 8-row thread block walks
// kDwRows rows (coalesced along d), reduces over its 8 row lanes in shared memory, then adds.
__global__ void rmsnorm_backward_dw_kernel(const float* x, const float* inv_rms, const float* dy, int N, int D,
                                           float* dw) {
  __shared__ float part[8][33];
  const int d = blockIdx.x * 32 + threadIdx.x;
  const int n0 = blockIdx.y * kDwRows;
  const int n1 = min(N, n0 + kDwRows);
  float s = 0.0f;
  if (d < D) {
    for (int n = n0 + threadIdx.y; n < n1; n += 8) {
      const long i = static_cast<long>(n) * D + d;
      s += dy[i] * x[i] * inv_rms[n];
    }
  }
  part[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && d < D) {
    float t = 0.0f;
    for (int k = 0; k < 8; ++k) t += part[k][threadIdx.x];
    atomicAdd(dw + d, t);
  }
}

}  // namespace

void rmsnorm_forward(const float* x, const float* w, int N, int D, float eps, bf16* y, float* inv_rms, Stream stream) {
  if (N <= 0) return;
  rmsnorm_forward_kernel<<<N, kThreads, 0, detail::as_stream(stream)>>>(x, w, D, eps, y, inv_rms);
  check_launch("rmsnorm_forward");
}

void rmsnorm_backward(const float* x, const float* w, const float* inv_rms, const float* dy, int N, int D, float* dx,
                      float* dw, Stream stream) {
  if (N <= 0) return;
  cudaStream_t s = detail::as_stream(stream);
  rmsnorm_backward_dx_kernel<<<N, kThreads, 0, s>>>(x, w, inv_rms, dy, D, dx);
  check_launch("rmsnorm_backward (dx)");
  const dim3 grid(static_cast<unsigned>((D + 31) / 32), static_cast<unsigned>((N + kDwRows - 1) / kDwRows));
  rmsnorm_backward_dw_kernel<<<grid, dim3(32, 8), 0, s>>>(x, inv_rms, dy, N, D, dw);
  check_launch("rmsnorm_backward (dw)");
}

}  // namespace sdt::cuda
