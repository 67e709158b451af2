#include "device.cuh"
#include "internal/check.cuh"
#include "internal/warp.cuh"
#include "rope.cuh"

namespace sdt::cuda {
namespace {

using detail::load_bf16;
using detail::store_bf16;

// One thread per (row, head, pair).
__global__ void rope_kernel(const float* cos_t, const float* sin_t, int max_pos, int hd, bf16* x, int N, int stride,
                            int heads, const int32_t* pos, int T, float sign) {
  const int half = hd / 2;
  const long total = static_cast<long>(N) * heads * half;
  for (long k = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x; k < total;
       k += static_cast<long>(gridDim.x) * blockDim.x) {
    const int i = static_cast<int>(k % half);
    const long rest = k / half;
    const int h = static_cast<int>(rest % heads);
    const long n = rest / heads;
    const int p = pos ? pos[n] : static_cast<int>(n % T);
    const long a_at = n * stride + static_cast<long>(h) * hd + i;
    if (p < 0 || p >= max_pos) {
      store_bf16(x, a_at, NAN);
      store_bf16(x, a_at + half, NAN);
      continue;
    }
    const float c = cos_t[static_cast<long>(p) * half + i];
    const float s = sign * sin_t[static_cast<long>(p) * half + i];
    const float a = load_bf16(x, a_at), b = load_bf16(x, a_at + half);
    store_bf16(x, a_at, a * c - b * s);
    store_bf16(x, a_at + half, b * c + a * s);
  }
}

void launch(const float* cos_t, const float* sin_t, int max_pos, int hd, bf16* x, int N, int stride, int heads,
            const int32_t* pos, int T, float sign, Stream stream, const char* what) {
  const long total = static_cast<long>(N) * heads * (hd / 2);
  if (total <= 0) return;
  rope_kernel<<<detail::grid_for(total, 256), 256, 0, detail::as_stream(stream)>>>(cos_t, sin_t, max_pos, hd, x, N,
                                                                                  stride, heads, pos, T, sign);
  check_launch(what);
}

}  // namespace

void rope_forward(const float* cos_table, const float* sin_table, int max_pos, int hd, bf16* x, int N, int stride,
                  int heads, const int32_t* pos, int T, Stream stream) {
  launch(cos_table, sin_table, max_pos, hd, x, N, stride, heads, pos, T, 1.0f, stream, "rope_forward");
}

void rope_backward(const float* cos_table, const float* sin_table, int max_pos, int hd, bf16* dx, int N, int stride,
                   int heads, const int32_t* pos, int T, Stream stream) {
  launch(cos_table, sin_table, max_pos, hd, dx, N, stride, heads, pos, T, -1.0f, stream, "rope_backward");
}

}  // namespace sdt::cuda
