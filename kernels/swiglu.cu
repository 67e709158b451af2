#include "device.cuh"
#include "internal/check.cuh"
#include "internal/warp.cuh"
#include "swiglu.cuh"

namespace sdt::cuda {
namespace {

using detail::load_bf16;
using detail::store_bf16;

__global__ void swiglu_forward_kernel(const bf16* gu, long N, int I, bf16* h) {
  const long total = N * I;
  for (long k = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x; k < total;
       k += static_cast<long>(gridDim.x) * blockDim.x) {
    const long n = k / I;
    const long i = k % I;
    const float g = load_bf16(gu, n * 2 * I + i);
    const float u = load_bf16(gu, n * 2 * I + I + i);
    store_bf16(h, k, g / (1.0f + expf(-g)) * u);
  }
}

__global__ void swiglu_backward_kernel(const bf16* gu, const bf16* dh, long N, int I, bf16* dgu) {
  const long total = N * I;
  for (long k = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x; k < total;
       k += static_cast<long>(gridDim.x) * blockDim.x) {
    const long n = k / I;
    const long i = k % I;
    const float g = load_bf16(gu, n * 2 * I + i);
    const float u = load_bf16(gu, n * 2 * I + I + i);
    const float d = load_bf16(dh, k);
    const float sig = 1.0f / (1.0f + expf(-g));
    store_bf16(dgu, n * 2 * I + I + i, d * g * sig);
    store_bf16(dgu, n * 2 * I + i, d * u * sig * (1.0f + g * (1.0f - sig)));
  }
}

}  // namespace

void swiglu_forward(const bf16* gu, int N, int I, bf16* h, Stream stream) {
  const long total = static_cast<long>(N) * I;
  if (total <= 0) return;
  swiglu_forward_kernel<<<detail::grid_for(total, 256), 256, 0, detail::as_stream(stream)>>>(gu, N, I, h);
  check_launch("swiglu_forward");
}

void swiglu_backward(const bf16* gu, const bf16* dh, int N, int I, bf16* dgu, Stream stream) {
  const long total = static_cast<long>(N) * I;
  if (total <= 0) return;
  swiglu_backward_kernel<<<detail::grid_for(total, 256), 256, 0, detail::as_stream(stream)>>>(gu, dh, N, I, dgu);
  check_launch("swiglu_backward");
}

}  // namespace sdt::cuda
