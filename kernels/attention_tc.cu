// Flash-style attention forward on tensor cores. A block of 4 warps owns 64 queries of one
// (batch row, head); each warp owns 16 of them. Per 64-key tile: S = Q K^T by WMMA into shared
// memory, the warp's lanes apply the mask and the online-softmax update to its 16 rows (P in bf16,
// the running output rescaled in place), then O += P V by WMMA with O loaded as the accumulator.
// The accumulators live in shared memory because a WMMA fragment's element-to-row mapping is
// unspecified, and the online softmax must rescale whole rows.
#include <mma.h>

#include <stdexcept>
#include <string>

#include "attention.cuh"
#include "device.cuh"
#include "internal/attention_vis.cuh"
#include "internal/check.cuh"
#include "internal/warp.cuh"

namespace sdt::cuda {
namespace {

namespace wmma = nvcuda::wmma;
using detail::load_bf16;
using detail::SequenceVis;
using detail::store_bf16;
using detail::warp_max;
using detail::warp_sum;

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kRows = 64;  // queries per block (16 per warp)
constexpr int kKeys = 64;  // keys per tile
constexpr int kLdS = kKeys + 4;  // fp32 scores
constexpr int kLdP = kKeys + 8;  // bf16 probabilities

struct Layout {
  int ldh, ldo;  // bf16 Q/K/V rows, fp32 O rows
  size_t q, k, v, s, p, o, m, l, bytes;
};

size_t align128(size_t x) { return (x + 127) / 128 * 128; }

Layout layout_for(int hd) {
  Layout L{};
  L.ldh = hd + 8;
  L.ldo = hd + 4;
  size_t at = 0;
  auto take = [&](size_t bytes) {
    const size_t here = at;
    at = align128(at + bytes);
    return here;
  };
  L.q = take(sizeof(__nv_bfloat16) * kRows * L.ldh);
  L.k = take(sizeof(__nv_bfloat16) * kKeys * L.ldh);
  L.v = take(sizeof(__nv_bfloat16) * kKeys * L.ldh);
  L.s = take(sizeof(float) * kRows * kLdS);
  L.p = take(sizeof(__nv_bfloat16) * kRows * kLdP);
  L.o = take(sizeof(float) * kRows * L.ldo);
  L.m = take(sizeof(float) * kRows);
  L.l = take(sizeof(float) * kRows);
  L.bytes = at;
  return L;
}

__global__ void __launch_bounds__(kThreads)
    attention_forward_tc_kernel(const bf16* qkv, int S, int T, int nh, int nkv, int hd, float scale, SequenceVis vis,
                                Layout L, bf16* out, float* lse) {
  extern __shared__ __align__(128) unsigned char smem[];
  auto* Qs = reinterpret_cast<__nv_bfloat16*>(smem + L.q);
  auto* Ks = reinterpret_cast<__nv_bfloat16*>(smem + L.k);
  auto* Vs = reinterpret_cast<__nv_bfloat16*>(smem + L.v);
  auto* Ss = reinterpret_cast<float*>(smem + L.s);
  auto* Ps = reinterpret_cast<__nv_bfloat16*>(smem + L.p);
  auto* Os = reinterpret_cast<float*>(smem + L.o);
  auto* Ms = reinterpret_cast<float*>(smem + L.m);
  auto* Ls = reinterpret_cast<float*>(smem + L.l);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int b = blockIdx.z, h = blockIdx.y, g = h / (nh / nkv);
  const int i0 = blockIdx.x * kRows;
  const long row0 = static_cast<long>(b) * T;
  const bf16* q = qkv + row0 * S + static_cast<long>(h) * hd;
  const bf16* k = qkv + row0 * S + static_cast<long>(nh + g) * hd;
  const bf16* v = qkv + row0 * S + static_cast<long>(nh + nkv + g) * hd;
  const __nv_bfloat16 zero = __float2bfloat16(0.0f);

  for (int idx = threadIdx.x; idx < kRows * hd; idx += kThreads) {
    const int r = idx / hd, d = idx % hd, i = i0 + r;
    Qs[r * L.ldh + d] = i < T ? reinterpret_cast<const __nv_bfloat16*>(q)[static_cast<long>(i) * S + d] : zero;
    Os[r * L.ldo + d] = 0.0f;
  }
  if (threadIdx.x < kRows) {
    Ms[threadIdx.x] = -INFINITY;
    Ls[threadIdx.x] = 0.0f;
  }
  int kend = 0;
  for (int r = 0; r < kRows && i0 + r < T; ++r) kend = max(kend, vis.key_end(b, i0 + r));
  kend = min(kend, T);

  const int r0 = warp * 16;  // this warp's first row in the tile
  for (int j0 = 0; j0 < kend; j0 += kKeys) {
    __syncthreads();  // Q/O initialised; the previous K/V tile consumed
    for (int idx = threadIdx.x; idx < kKeys * hd; idx += kThreads) {
      const int r = idx / hd, d = idx % hd, j = j0 + r;
      const bool in = j < kend;
      Ks[r * L.ldh + d] = in ? reinterpret_cast<const __nv_bfloat16*>(k)[static_cast<long>(j) * S + d] : zero;
      Vs[r * L.ldh + d] = in ? reinterpret_cast<const __nv_bfloat16*>(v)[static_cast<long>(j) * S + d] : zero;
    }
    __syncthreads();

    // S[r0:r0+16, 0:64] = Q[r0:r0+16, :] K[0:64, :]^T
    for (int nb = 0; nb < kKeys / 16; ++nb) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.0f);
      for (int kb = 0; kb < hd / 16; ++kb) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb;
        wmma::load_matrix_sync(fa, Qs + r0 * L.ldh + kb * 16, L.ldh);
        wmma::load_matrix_sync(fb, Ks + nb * 16 * L.ldh + kb * 16, L.ldh);
        wmma::mma_sync(acc, fa, fb, acc);
      }
      wmma::store_matrix_sync(Ss + r0 * kLdS + nb * 16, acc, kLdS, wmma::mem_row_major);
    }
    __syncwarp();

    // Mask and online softmax over the warp's 16 rows; lane owns columns lane and lane + 32.
    for (int r = r0; r < r0 + 16; ++r) {
      const int i = i0 + r;
      float s[2];
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int col = lane + 32 * c, j = j0 + col;
        s[c] = (i < T && j < kend && vis.visible(b, i, j)) ? Ss[r * kLdS + col] * scale : -INFINITY;
      }
      const float m_old = Ms[r];
      const float m_new = fmaxf(m_old, warp_max(fmaxf(s[0], s[1])));
      float p[2] = {0.0f, 0.0f};
      float corr = 1.0f;
      if (m_new != -INFINITY) {
        p[0] = __expf(s[0] - m_new);
        p[1] = __expf(s[1] - m_new);
        corr = __expf(m_old - m_new);
      }
      const float psum = warp_sum(p[0] + p[1]);
      Ps[r * kLdP + lane] = __float2bfloat16(p[0]);
      Ps[r * kLdP + lane + 32] = __float2bfloat16(p[1]);
      for (int d = lane; d < hd; d += 32) Os[r * L.ldo + d] *= corr;
      __syncwarp();
      if (lane == 0) {
        Ms[r] = m_new;
        Ls[r] = Ls[r] * corr + psum;
      }
      __syncwarp();
    }

    // O[r0:r0+16, :] += P[r0:r0+16, 0:64] V[0:64, :]
    for (int db = 0; db < hd / 16; ++db) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::load_matrix_sync(acc, Os + r0 * L.ldo + db * 16, L.ldo, wmma::mem_row_major);
      for (int kb = 0; kb < kKeys / 16; ++kb) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> fb;
        wmma::load_matrix_sync(fa, Ps + r0 * kLdP + kb * 16, kLdP);
        wmma::load_matrix_sync(fb, Vs + kb * 16 * L.ldh + db * 16, L.ldh);
        wmma::mma_sync(acc, fa, fb, acc);
      }
      wmma::store_matrix_sync(Os + r0 * L.ldo + db * 16, acc, L.ldo, wmma::mem_row_major);
    }
    __syncwarp();
  }
  __syncthreads();  // with no key tile at all, O/M/L were written by other threads

  for (int r = r0; r < r0 + 16; ++r) {
    const int i = i0 + r;
    if (i >= T) break;
    const float l = Ls[r];
    const float inv = 1.0f / l;
    bf16* o = out + (row0 + i) * nh * hd + static_cast<long>(h) * hd;
    for (int d = lane; d < hd; d += 32) store_bf16(o, d, Os[r * L.ldo + d] * inv);
    if (lse && lane == 0) lse[(static_cast<long>(b) * nh + h) * T + i] = Ms[r] + logf(l);
  }
}

}  // namespace

void attention_forward_tc(const bf16* qkv, int qkv_stride, int B, int T, int nh, int nkv, int hd,
                          const AttentionMaskArgs& mask, bf16* out, float* lse, Stream stream) {
  if (hd <= 0 || hd % 16 != 0 || hd > kAttentionMaxHeadDim)
    throw std::invalid_argument("attention_forward_tc: head_dim " + std::to_string(hd) +
                                " is not supported (a multiple of 16, at most " +
                                std::to_string(kAttentionMaxHeadDim) + ")");
  if (nh <= 0 || nkv <= 0 || nh % nkv != 0)
    throw std::invalid_argument("attention_forward_tc: num_attention_heads " + std::to_string(nh) +
                                " must be a positive multiple of num_key_value_heads " + std::to_string(nkv));
  if (B <= 0 || T <= 0) return;
  const Layout L = layout_for(hd);
  // Above 48 KiB a kernel needs an explicit opt-in for dynamic shared memory.
  SDT_CUDA_CHECK(cudaFuncSetAttribute(attention_forward_tc_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      static_cast<int>(L.bytes)));
  const SequenceVis vis{static_cast<int>(mask.mode), mask.block_size > 0 ? mask.block_size : 1, mask.segment,
                        mask.pos, T};
  const dim3 grid(static_cast<unsigned>((T + kRows - 1) / kRows), static_cast<unsigned>(nh),
                  static_cast<unsigned>(B));
  attention_forward_tc_kernel<<<grid, kThreads, L.bytes, detail::as_stream(stream)>>>(
      qkv, qkv_stride, T, nh, nkv, hd, 1.0f / sqrtf(static_cast<float>(hd)), vis, L, out, lse);
  check_launch("attention_forward_tc");
}

}  // namespace sdt::cuda
