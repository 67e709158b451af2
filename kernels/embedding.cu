#include "device.cuh"
#include "embedding.cuh"
#include "internal/check.cuh"
#include "internal/warp.cuh"

namespace sdt::cuda {
namespace {

using detail::load_bf16;

// One block per row: threads stride the hidden dimension, so loads are coalesced.
__global__ void embedding_forward_kernel(const bf16* table, int V, int D, const int32_t* ids, float* out) {
  const long n = blockIdx.x;
  const int id = ids[n];
  float* row = out + n * D;
  if (id < 0 || id >= V) {
    for (int d = threadIdx.x; d < D; d += blockDim.x) row[d] = NAN;
    return;
  }
  const long base = static_cast<long>(id) * D;
  for (int d = threadIdx.x; d < D; d += blockDim.x) row[d] = load_bf16(table, base + d);
}

__global__ void embedding_backward_kernel(const int32_t* ids, int V, int D, const float* dout, float* dtable) {
  const long n = blockIdx.x;
  const int id = ids[n];
  if (id < 0 || id >= V) return;
  const float* g = dout + n * D;
  float* t = dtable + static_cast<long>(id) * D;
  for (int d = threadIdx.x; d < D; d += blockDim.x) atomicAdd(t + d, g[d]);
}

}  // namespace

void embedding_forward(const bf16* table, int V, int D, const int32_t* ids, int N, float* out, Stream stream) {
  if (N <= 0) return;
  embedding_forward_kernel<<<N, 256, 0, detail::as_stream(stream)>>>(table, V, D, ids, out);
  check_launch("embedding_forward");
}

void embedding_backward(const int32_t* ids, int N, int V, int D, const float* dout, float* dtable, Stream stream) {
  if (N <= 0) return;
  embedding_backward_kernel<<<N, 256, 0, detail::as_stream(stream)>>>(ids, V, D, dout, dtable);
  check_launch("embedding_backward");
}

}  // namespace sdt::cuda
