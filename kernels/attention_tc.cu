// Flash attention on tensor cores (WMMA bf16 16x16x16, fp32 accumulate), forward and backward.
// A block of 4 warps owns a 64-row tile of one side (queries for the forward and dQ, keys for
// dK/dV) and walks 64-row tiles of the other side. Tiles travel global -> shared by cp.async into
// two buffers, so the next tile's copy overlaps this tile's matrix work (one buffer where the
// device's shared memory is too small for two). Each warp computes 16 rows of the score tile
// into shared memory; two lanes share a score row (even / odd columns) for the mask and the
// softmax, so a row's max and sum need one shuffle. The accumulators (O, dQ, dK, dV) live in
// shared memory: a WMMA fragment's element-to-row mapping is unspecified, and the online softmax
// must rescale whole rows of O.
//
// Backward: dQ and dK/dV are separate kernels, each recomputing P from the saved log-sum-exp
// (7 tile products per tile pair instead of FlashAttention-2's 5) so that every output element
// has one writer and the result is bitwise reproducible without atomics.
#include <mma.h>

#include <stdexcept>
#include <string>

#include "attention.cuh"
#include "device.cuh"
#include "internal/attention_delta.cuh"
#include "internal/attention_vis.cuh"
#include "internal/check.cuh"
#include "internal/cp_async.cuh"
#include "internal/warp.cuh"

namespace sdt::cuda {
namespace {

namespace wmma = nvcuda::wmma;
using nv = __nv_bfloat16;
using detail::cp_async_16;
using detail::cp_async_4;
using detail::cp_async_commit;
using detail::cp_async_wait;
using detail::SequenceVis;

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kTile = 64;        // rows of either side per tile; 16 per warp
constexpr int kLdS = kTile + 4;  // fp32 score rows
constexpr int kLdP = kTile + 8;  // bf16 probability rows

using FragC = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;

// Offsets into dynamic shared memory (128-byte aligned); a field a kernel does not use stays 0.
struct TcLayout {
  int ldh = 0, ldo = 0;  // bf16 tile rows, fp32 accumulator rows
  int stages = 1;        // buffers of the streamed side
  size_t q[2] = {}, k[2] = {}, v[2] = {}, dout[2] = {}, lse[2] = {}, delta[2] = {};
  size_t s = 0, dp = 0, p = 0, ds = 0, acc0 = 0, acc1 = 0;
  size_t bytes = 0;
};

class Carver {
 public:
  size_t take(size_t bytes) {
    const size_t here = at_;
    at_ = (at_ + bytes + 127) / 128 * 128;
    return here;
  }
  size_t size() const { return at_; }

 private:
  size_t at_ = 0;
};

enum class Kernel { Forward, Dq, Dkv };

TcLayout layout_for(Kernel kind, int hd, int stages) {
  TcLayout L;
  L.ldh = hd + 8;
  L.ldo = hd + 4;
  L.stages = stages;
  Carver c;
  const size_t tile = sizeof(nv) * kTile * static_cast<size_t>(L.ldh);
  const size_t acc = sizeof(float) * kTile * static_cast<size_t>(L.ldo);
  const size_t stats = sizeof(float) * kTile;
  const size_t scores = sizeof(float) * kTile * kLdS;
  const size_t probs = sizeof(nv) * kTile * kLdP;
  switch (kind) {
    case Kernel::Forward:
      L.q[0] = c.take(tile);
      for (int s = 0; s < stages; ++s) {
        L.k[s] = c.take(tile);
        L.v[s] = c.take(tile);
      }
      L.s = c.take(scores);
      L.p = c.take(probs);
      L.acc0 = c.take(acc);
      L.lse[0] = c.take(stats);  // final row maxima
      L.delta[0] = c.take(stats);  // final row sums
      break;
    case Kernel::Dq:
      L.q[0] = c.take(tile);
      L.dout[0] = c.take(tile);
      L.lse[0] = c.take(stats);
      L.delta[0] = c.take(stats);
      for (int s = 0; s < stages; ++s) {
        L.k[s] = c.take(tile);
        L.v[s] = c.take(tile);
      }
      L.s = c.take(scores);
      L.dp = c.take(scores);
      L.ds = c.take(probs);
      L.acc0 = c.take(acc);
      break;
    case Kernel::Dkv:
      L.k[0] = c.take(tile);
      L.v[0] = c.take(tile);
      for (int s = 0; s < stages; ++s) {
        L.q[s] = c.take(tile);
        L.dout[s] = c.take(tile);
        L.lse[s] = c.take(stats);
        L.delta[s] = c.take(stats);
      }
      L.s = c.take(scores);
      L.dp = c.take(scores);
      L.p = c.take(probs);
      L.ds = c.take(probs);
      L.acc0 = c.take(acc);  // dK
      L.acc1 = c.take(acc);  // dV
      break;
  }
  L.bytes = c.size();
  return L;
}

template <class T>
__device__ __forceinline__ T* at(unsigned char* smem, size_t offset) {
  return reinterpret_cast<T*>(smem + offset);
}

// Copies kTile rows x hd columns: row r comes from src + (first + r) * stride; rows at or past
// `limit` are zero-filled.
__device__ __forceinline__ void load_rows_async(nv* dst, int ld, const bf16* src, long stride, int first, int limit,
                                                int hd) {
  const int chunks = hd >> 3;
  for (int idx = threadIdx.x; idx < kTile * chunks; idx += kThreads) {
    const int r = idx / chunks, c = (idx - r * chunks) << 3, i = first + r;
    const bool ok = i < limit;
    cp_async_16(dst + r * ld + c, src + static_cast<long>(ok ? i : 0) * stride + c, ok);
  }
}

__device__ __forceinline__ void load_stats_async(float* dst, const float* src, int first, int limit) {
  if (threadIdx.x < kTile) {
    const int i = first + static_cast<int>(threadIdx.x);
    const bool ok = i < limit;
    cp_async_4(dst + threadIdx.x, src + (ok ? i : 0), ok);
  }
}

__device__ __forceinline__ void zero_rows(float* acc, int ld, int hd) {
  for (int idx = threadIdx.x; idx < kTile * hd; idx += kThreads) acc[(idx / hd) * ld + idx % hd] = 0.0f;
}

// Makes tile t of the streamed side ready in its buffer (and, with two buffers, starts the copy
// of tile t + 1). Tile 0 was issued before the loop; the previous iteration ended with a barrier,
// so the buffer being refilled is no longer read.
template <class Issue>
__device__ __forceinline__ void wait_for_tile(int t, int ntiles, int stages, Issue&& issue) {
  if (stages == 1) {
    if (t > 0) issue(t);
    cp_async_wait<0>();
  } else if (t + 1 < ntiles) {
    issue(t + 1);
    cp_async_wait<1>();
  } else {
    cp_async_wait<0>();
  }
  __syncthreads();
}

// Rows [0, min(count, kTile)) of an fp32 accumulator times `scale`, as bf16 at dst + row * stride.
__device__ __forceinline__ void store_rows(const float* acc, int ld, int count, int hd, float scale, nv* dst,
                                           long stride) {
  for (int idx = threadIdx.x; idx < kTile * (hd / 2); idx += kThreads) {
    const int r = idx / (hd / 2), d = 2 * (idx % (hd / 2));
    if (r >= count) continue;
    *reinterpret_cast<__nv_bfloat162*>(dst + r * stride + d) =
        __floats2bfloat162_rn(acc[r * ld + d] * scale, acc[r * ld + d + 1] * scale);
  }
}

// c[16 x 64] (fp32, row-major, ld kLdS) = a[16 x hd] * b[64 x hd]^T, both bf16 row-major.
__device__ __forceinline__ void scores_16x64(const nv* a, int lda, const nv* b, int ldb, int hd, float* c) {
  for (int nb = 0; nb < kTile / 16; ++nb) {
    FragC acc;
    wmma::fill_fragment(acc, 0.0f);
    for (int kb = 0; kb < hd / 16; ++kb) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, nv, wmma::row_major> fa;
      wmma::fragment<wmma::matrix_b, 16, 16, 16, nv, wmma::col_major> fb;
      wmma::load_matrix_sync(fa, a + kb * 16, lda);
      wmma::load_matrix_sync(fb, b + nb * 16 * ldb + kb * 16, ldb);
      wmma::mma_sync(acc, fa, fb, acc);
    }
    wmma::store_matrix_sync(c + nb * 16, acc, kLdS, wmma::mem_row_major);
  }
}

// c[16 x hd] (fp32, row-major) += A[16 x 64] * b[64 x hd] (b bf16 row-major). A is read from `a`
// as a row-major [16 x 64] block (ALayout row_major, k blocks 16 columns apart) or, with
// ALayout col_major, as the transpose of a row-major [64 x 16] block (k blocks 16 rows apart).
template <class ALayout>
__device__ __forceinline__ void accumulate_16xhd(const nv* a, int lda, long a_kstep, const nv* b, int ldb, int hd,
                                                 float* c, int ldc) {
  wmma::fragment<wmma::matrix_a, 16, 16, 16, nv, ALayout> fa[kTile / 16];
#pragma unroll
  for (int kb = 0; kb < kTile / 16; ++kb) wmma::load_matrix_sync(fa[kb], a + kb * a_kstep, lda);
  for (int db = 0; db < hd / 16; ++db) {
    FragC acc;
    wmma::load_matrix_sync(acc, c + db * 16, ldc, wmma::mem_row_major);
#pragma unroll
    for (int kb = 0; kb < kTile / 16; ++kb) {
      wmma::fragment<wmma::matrix_b, 16, 16, 16, nv, wmma::row_major> fb;
      wmma::load_matrix_sync(fb, b + kb * 16 * ldb + db * 16, ldb);
      wmma::mma_sync(acc, fa[kb], fb, acc);
    }
    wmma::store_matrix_sync(c + db * 16, acc, ldc, wmma::mem_row_major);
  }
}

// Where one (batch row, head)'s rows live in the fused qkv buffer and the output.
struct Heads {
  const bf16* qkv;
  int S, T, nh, nkv, hd;
  float scale;
  __device__ const bf16* q(int b, int h) const { return qkv + static_cast<long>(b) * T * S + static_cast<long>(h) * hd; }
  __device__ const bf16* k(int b, int g) const {
    return qkv + static_cast<long>(b) * T * S + static_cast<long>(nh + g) * hd;
  }
  __device__ const bf16* v(int b, int g) const {
    return qkv + static_cast<long>(b) * T * S + static_cast<long>(nh + nkv + g) * hd;
  }
  __device__ long out_offset(int b, int h) const {
    return static_cast<long>(b) * T * nh * hd + static_cast<long>(h) * hd;
  }
  __device__ long stat_offset(int b, int h) const { return (static_cast<long>(b) * nh + h) * T; }
};

// Row r of a tile pair in the backward, this lane's half of the columns (query i, keys from j0,
// keys at or past kend invisible): P = exp(S * scale - lse) where visible, else 0, and
// dS = P * (dP - delta). P is stored only when `p_out` is given.
__device__ __forceinline__ void probs_and_grads(const float* S, const float* dP, int r, int half, int b, int i, int j0,
                                                int kend, bool full, const SequenceVis& vis, float scale, float lse_i,
                                                float delta_i, nv* p_out, nv* ds_out) {
#pragma unroll 8
  for (int c = 0; c < kTile / 2; ++c) {
    const int col = 2 * c + half, j = j0 + col;
    float p = 0.0f, ds = 0.0f;
    if (full || (i < vis.T && j < kend && vis.visible(b, i, j))) {
      p = __expf(S[r * kLdS + col] * scale - lse_i);
      ds = p * (dP[r * kLdS + col] - delta_i);
    }
    if (p_out) p_out[r * kLdP + col] = __float2bfloat16(p);
    ds_out[r * kLdP + col] = __float2bfloat16(ds);
  }
}

// Largest key index + 1 any query of the tile [i0, i0 + kTile) may see.
__device__ int tile_key_end(const SequenceVis& vis, int b, int i0, int T) {
  __shared__ int end;
  if (threadIdx.x == 0) end = 0;
  __syncthreads();
  if (threadIdx.x < kTile && i0 + static_cast<int>(threadIdx.x) < T)
    atomicMax(&end, min(vis.key_end(b, i0 + static_cast<int>(threadIdx.x)), T));
  __syncthreads();
  return end;
}

__global__ void __launch_bounds__(kThreads)
    attention_forward_tc_kernel(Heads a, SequenceVis vis, TcLayout L, bf16* out, float* lse) {
  extern __shared__ __align__(128) unsigned char smem[];
  nv* Qs = at<nv>(smem, L.q[0]);
  float* Ss = at<float>(smem, L.s);
  nv* Ps = at<nv>(smem, L.p);
  float* Os = at<float>(smem, L.acc0);
  float* Mfin = at<float>(smem, L.lse[0]);
  float* Lfin = at<float>(smem, L.delta[0]);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int b = blockIdx.z, h = blockIdx.y, g = h / (a.nh / a.nkv), hd = a.hd, T = a.T;
  const int i0 = blockIdx.x * kTile, r0 = warp * 16;
  const int r = r0 + (lane >> 1), half = lane & 1, i = i0 + r;
  const bf16* kg = a.k(b, g);
  const bf16* vg = a.v(b, g);

  zero_rows(Os, L.ldo, hd);
  const int kend = tile_key_end(vis, b, i0, T);
  const int ntiles = (kend + kTile - 1) / kTile;
  auto issue = [&](int t) {
    const int s = t % L.stages;
    load_rows_async(at<nv>(smem, L.k[s]), L.ldh, kg, a.S, t * kTile, kend, hd);
    load_rows_async(at<nv>(smem, L.v[s]), L.ldh, vg, a.S, t * kTile, kend, hd);
    cp_async_commit();
  };
  load_rows_async(Qs, L.ldh, a.q(b, h), a.S, i0, T, hd);
  if (ntiles > 0) issue(0);
  else cp_async_commit();

  float m = -INFINITY, l = 0.0f;
  for (int t = 0; t < ntiles; ++t) {
    wait_for_tile(t, ntiles, L.stages, issue);
    const int s = t % L.stages, j0 = t * kTile;
    const nv* Kt = at<nv>(smem, L.k[s]);
    const nv* Vt = at<nv>(smem, L.v[s]);
    scores_16x64(Qs + r0 * L.ldh, L.ldh, Kt, L.ldh, hd, Ss + r0 * kLdS);
    __syncwarp();

    const bool full = i0 + kTile <= T && j0 + kTile <= kend && vis.tile_all_visible(i0, i0 + kTile, j0, j0 + kTile);
    float sv[kTile / 2];
    float mloc = -INFINITY;
#pragma unroll
    for (int c = 0; c < kTile / 2; ++c) {
      const int col = 2 * c + half, j = j0 + col;
      float x = Ss[r * kLdS + col] * a.scale;
      if (!full && !(i < T && j < kend && vis.visible(b, i, j))) x = -INFINITY;
      sv[c] = x;
      mloc = fmaxf(mloc, x);
    }
    mloc = fmaxf(mloc, __shfl_xor_sync(detail::kFullMask, mloc, 1));
    const float m_new = fmaxf(m, mloc);
    float corr = 1.0f, psum = 0.0f;
    if (m_new != -INFINITY) corr = __expf(m - m_new);
#pragma unroll
    for (int c = 0; c < kTile / 2; ++c) {
      const float p = m_new == -INFINITY ? 0.0f : __expf(sv[c] - m_new);
      psum += p;
      Ps[r * kLdP + 2 * c + half] = __float2bfloat16(p);
    }
    psum += __shfl_xor_sync(detail::kFullMask, psum, 1);
    l = l * corr + psum;
    m = m_new;
    for (int d = half; d < hd; d += 2) Os[r * L.ldo + d] *= corr;
    __syncwarp();
    accumulate_16xhd<wmma::row_major>(Ps + r0 * kLdP, kLdP, 16, Vt, L.ldh, hd, Os + r0 * L.ldo, L.ldo);
    __syncthreads();  // buffer s is free for the copy issued in the next iteration
  }
  cp_async_wait<0>();  // with no tile at all, the first copies are still in flight
  if (half == 0) {
    Mfin[r] = m;
    Lfin[r] = l;
  }
  __syncthreads();  // O rows were last written by WMMA stores of their own warp; statistics by lanes

  for (int rr = r0; rr < r0 + 16; ++rr) {
    const int ii = i0 + rr;
    if (ii >= T) break;
    const float inv = 1.0f / Lfin[rr];
    nv* o = reinterpret_cast<nv*>(out + a.out_offset(b, h) + static_cast<long>(ii) * a.nh * hd);
    for (int d = 2 * lane; d < hd; d += 64)
      *reinterpret_cast<__nv_bfloat162*>(o + d) =
          __floats2bfloat162_rn(Os[rr * L.ldo + d] * inv, Os[rr * L.ldo + d + 1] * inv);
    if (lse && lane == 0) lse[a.stat_offset(b, h) + ii] = Mfin[rr] + logf(Lfin[rr]);
  }
}

// dQ for 64 queries of one head: walks the key tiles the queries may see.
__global__ void __launch_bounds__(kThreads)
    attention_dq_tc_kernel(Heads a, SequenceVis vis, TcLayout L, const bf16* dout, const float* lse,
                           const float* delta, bf16* dqkv) {
  extern __shared__ __align__(128) unsigned char smem[];
  nv* Qs = at<nv>(smem, L.q[0]);
  nv* dOs = at<nv>(smem, L.dout[0]);
  float* lse_s = at<float>(smem, L.lse[0]);
  float* delta_s = at<float>(smem, L.delta[0]);
  float* Ss = at<float>(smem, L.s);
  float* dPs = at<float>(smem, L.dp);
  nv* dSs = at<nv>(smem, L.ds);
  float* dQs = at<float>(smem, L.acc0);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int b = blockIdx.z, h = blockIdx.y, g = h / (a.nh / a.nkv), hd = a.hd, T = a.T;
  const int i0 = blockIdx.x * kTile, r0 = warp * 16;
  const int r = r0 + (lane >> 1), half = lane & 1, i = i0 + r;
  const bf16* kg = a.k(b, g);
  const bf16* vg = a.v(b, g);
  const long stat = a.stat_offset(b, h);

  zero_rows(dQs, L.ldo, hd);
  const int kend = tile_key_end(vis, b, i0, T);
  const int ntiles = (kend + kTile - 1) / kTile;
  auto issue = [&](int t) {
    const int s = t % L.stages;
    load_rows_async(at<nv>(smem, L.k[s]), L.ldh, kg, a.S, t * kTile, kend, hd);
    load_rows_async(at<nv>(smem, L.v[s]), L.ldh, vg, a.S, t * kTile, kend, hd);
    cp_async_commit();
  };
  load_rows_async(Qs, L.ldh, a.q(b, h), a.S, i0, T, hd);
  load_rows_async(dOs, L.ldh, dout + a.out_offset(b, h), static_cast<long>(a.nh) * hd, i0, T, hd);
  load_stats_async(lse_s, lse + stat, i0, T);
  load_stats_async(delta_s, delta + stat, i0, T);
  if (ntiles > 0) issue(0);
  else cp_async_commit();

  for (int t = 0; t < ntiles; ++t) {
    wait_for_tile(t, ntiles, L.stages, issue);
    const int s = t % L.stages, j0 = t * kTile;
    const nv* Kt = at<nv>(smem, L.k[s]);
    const nv* Vt = at<nv>(smem, L.v[s]);
    scores_16x64(Qs + r0 * L.ldh, L.ldh, Kt, L.ldh, hd, Ss + r0 * kLdS);
    scores_16x64(dOs + r0 * L.ldh, L.ldh, Vt, L.ldh, hd, dPs + r0 * kLdS);
    __syncwarp();
    const bool full = i0 + kTile <= T && j0 + kTile <= kend && vis.tile_all_visible(i0, i0 + kTile, j0, j0 + kTile);
    probs_and_grads(Ss, dPs, r, half, b, i, j0, kend, full, vis, a.scale, lse_s[r], delta_s[r], nullptr, dSs);
    __syncwarp();
    accumulate_16xhd<wmma::row_major>(dSs + r0 * kLdP, kLdP, 16, Kt, L.ldh, hd, dQs + r0 * L.ldo, L.ldo);
    __syncthreads();
  }
  cp_async_wait<0>();  // with no tile at all, the first copies are still in flight
  __syncthreads();
  store_rows(dQs, L.ldo, T - i0, hd, a.scale,
             reinterpret_cast<nv*>(dqkv + (static_cast<long>(b) * T + i0) * a.S + static_cast<long>(h) * hd), a.S);
}

// dK, dV for 64 keys of one kv head: walks the query tiles of every query head of its group.
__global__ void __launch_bounds__(kThreads)
    attention_dkv_tc_kernel(Heads a, SequenceVis vis, TcLayout L, const bf16* dout, const float* lse,
                            const float* delta, bf16* dqkv) {
  extern __shared__ __align__(128) unsigned char smem[];
  nv* Ks = at<nv>(smem, L.k[0]);
  nv* Vs = at<nv>(smem, L.v[0]);
  float* Ss = at<float>(smem, L.s);
  float* dPs = at<float>(smem, L.dp);
  nv* Ps = at<nv>(smem, L.p);
  nv* dSs = at<nv>(smem, L.ds);
  float* dKs = at<float>(smem, L.acc0);
  float* dVs = at<float>(smem, L.acc1);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int b = blockIdx.z, g = blockIdx.y, hd = a.hd, T = a.T, group = a.nh / a.nkv;
  const int j0 = blockIdx.x * kTile, r0 = warp * 16;
  const int r = r0 + (lane >> 1), half = lane & 1;

  zero_rows(dKs, L.ldo, hd);
  zero_rows(dVs, L.ldo, hd);
  // query_begin is non-decreasing in the key, so the tile's first key gives the bound.
  const int qbeg = min(vis.query_begin(b, j0), T);
  const int nqt = (T - qbeg + kTile - 1) / kTile;
  const int ntiles = nqt * group;
  auto issue = [&](int t) {
    const int s = t % L.stages, h = g * group + t / nqt, q0 = qbeg + (t % nqt) * kTile;
    load_rows_async(at<nv>(smem, L.q[s]), L.ldh, a.q(b, h), a.S, q0, T, hd);
    load_rows_async(at<nv>(smem, L.dout[s]), L.ldh, dout + a.out_offset(b, h), static_cast<long>(a.nh) * hd, q0, T,
                    hd);
    load_stats_async(at<float>(smem, L.lse[s]), lse + a.stat_offset(b, h), q0, T);
    load_stats_async(at<float>(smem, L.delta[s]), delta + a.stat_offset(b, h), q0, T);
    cp_async_commit();
  };
  load_rows_async(Ks, L.ldh, a.k(b, g), a.S, j0, T, hd);
  load_rows_async(Vs, L.ldh, a.v(b, g), a.S, j0, T, hd);
  if (ntiles > 0) issue(0);
  else cp_async_commit();

  for (int t = 0; t < ntiles; ++t) {
    wait_for_tile(t, ntiles, L.stages, issue);
    const int s = t % L.stages, q0 = qbeg + (t % nqt) * kTile, i = q0 + r;
    const nv* Qt = at<nv>(smem, L.q[s]);
    const nv* dOt = at<nv>(smem, L.dout[s]);
    const float* lse_s = at<float>(smem, L.lse[s]);
    const float* delta_s = at<float>(smem, L.delta[s]);
    // This warp's 16 query rows of S = Q K^T and dP = dO V^T.
    scores_16x64(Qt + r0 * L.ldh, L.ldh, Ks, L.ldh, hd, Ss + r0 * kLdS);
    scores_16x64(dOt + r0 * L.ldh, L.ldh, Vs, L.ldh, hd, dPs + r0 * kLdS);
    __syncwarp();
    const bool full = q0 + kTile <= T && j0 + kTile <= T && vis.tile_all_visible(q0, q0 + kTile, j0, j0 + kTile);
    probs_and_grads(Ss, dPs, r, half, b, i, j0, T, full, vis, a.scale, lse_s[r], delta_s[r], Ps, dSs);
    __syncthreads();  // every query row of P and dS is needed for each key row below
    // This warp's 16 key rows: dV += P^T dO, dK += dS^T Q.
    accumulate_16xhd<wmma::col_major>(Ps + r0, kLdP, 16L * kLdP, dOt, L.ldh, hd, dVs + r0 * L.ldo, L.ldo);
    accumulate_16xhd<wmma::col_major>(dSs + r0, kLdP, 16L * kLdP, Qt, L.ldh, hd, dKs + r0 * L.ldo, L.ldo);
    __syncthreads();
  }
  cp_async_wait<0>();  // with no tile at all, the first copies are still in flight
  __syncthreads();
  nv* first = reinterpret_cast<nv*>(dqkv + (static_cast<long>(b) * T + j0) * a.S);
  store_rows(dKs, L.ldo, T - j0, hd, a.scale, first + static_cast<long>(a.nh + g) * hd, a.S);
  store_rows(dVs, L.ldo, T - j0, hd, 1.0f, first + static_cast<long>(a.nh + a.nkv + g) * hd, a.S);
}

void check_tc_shape(const char* what, const void* qkv, int S, int nh, int nkv, int hd) {
  if (hd <= 0 || hd % 16 != 0 || hd > kAttentionMaxHeadDim)
    throw std::invalid_argument(std::string(what) + ": head_dim " + std::to_string(hd) +
                                " is not supported (a multiple of 16, at most " +
                                std::to_string(kAttentionMaxHeadDim) + ")");
  if (nh <= 0 || nkv <= 0 || nh % nkv != 0)
    throw std::invalid_argument(std::string(what) + ": num_attention_heads " + std::to_string(nh) +
                                " must be a positive multiple of num_key_value_heads " + std::to_string(nkv));
  // cp.async moves 16-byte pieces: every row must start on a 16-byte boundary.
  if (S % 8 != 0 || reinterpret_cast<uintptr_t>(qkv) % 16 != 0)
    throw std::invalid_argument(std::string(what) + ": the qkv rows (stride " + std::to_string(S) +
                                " elements) must start on 16-byte boundaries");
}

// Two buffers of the streamed side when they fit the device's opt-in shared memory, else one.
TcLayout fitted_layout(Kernel kind, int hd, const char* what) {
  int device = 0, limit = 0;
  SDT_CUDA_CHECK(cudaGetDevice(&device));
  SDT_CUDA_CHECK(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  // tile_key_end's static shared int sits beside the dynamic block.
  const size_t room = static_cast<size_t>(limit) - 128;
  TcLayout L = layout_for(kind, hd, 2);
  if (L.bytes > room) L = layout_for(kind, hd, 1);
  if (L.bytes > room)
    throw std::runtime_error(std::string(what) + ": needs " + std::to_string(L.bytes) +
                             " bytes of shared memory at head_dim " + std::to_string(hd) + ", the device allows " +
                             std::to_string(limit));
  return L;
}

template <class KernelFn>
void allow_shared(KernelFn fn, const TcLayout& L) {
  // Above 48 KiB a kernel needs an explicit opt-in for dynamic shared memory.
  SDT_CUDA_CHECK(cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(L.bytes)));
}

Heads heads_of(const bf16* qkv, int S, int T, int nh, int nkv, int hd) {
  return Heads{qkv, S, T, nh, nkv, hd, 1.0f / sqrtf(static_cast<float>(hd))};
}

SequenceVis vis_of(const AttentionMaskArgs& mask, int T) {
  return SequenceVis{static_cast<int>(mask.mode), mask.block_size > 0 ? mask.block_size : 1, mask.segment, mask.pos,
                     T};
}

}  // namespace

void attention_forward_tc(const bf16* qkv, int qkv_stride, int B, int T, int nh, int nkv, int hd,
                          const AttentionMaskArgs& mask, bf16* out, float* lse, Stream stream) {
  check_tc_shape("attention_forward_tc", qkv, qkv_stride, nh, nkv, hd);
  if (B <= 0 || T <= 0) return;
  const TcLayout L = fitted_layout(Kernel::Forward, hd, "attention_forward_tc");
  allow_shared(attention_forward_tc_kernel, L);
  const dim3 grid(static_cast<unsigned>((T + kTile - 1) / kTile), static_cast<unsigned>(nh), static_cast<unsigned>(B));
  attention_forward_tc_kernel<<<grid, kThreads, L.bytes, detail::as_stream(stream)>>>(
      heads_of(qkv, qkv_stride, T, nh, nkv, hd), vis_of(mask, T), L, out, lse);
  check_launch("attention_forward_tc");
}

void attention_backward_tc(const bf16* qkv, int qkv_stride, const bf16* out, const float* lse, const bf16* dout,
                           int B, int T, int nh, int nkv, int hd, const AttentionMaskArgs& mask, float* delta,
                           bf16* dqkv, Stream stream) {
  check_tc_shape("attention_backward_tc", qkv, qkv_stride, nh, nkv, hd);
  if (reinterpret_cast<uintptr_t>(dout) % 16 != 0)
    throw std::invalid_argument("attention_backward_tc: dout must start on a 16-byte boundary");
  if (B <= 0 || T <= 0) return;
  cudaStream_t s = detail::as_stream(stream);
  detail::launch_attention_delta(out, dout, B, T, nh, hd, delta, s);
  const Heads a = heads_of(qkv, qkv_stride, T, nh, nkv, hd);
  const SequenceVis vis = vis_of(mask, T);
  const unsigned tiles = static_cast<unsigned>((T + kTile - 1) / kTile);
  const TcLayout Lq = fitted_layout(Kernel::Dq, hd, "attention_backward_tc (dq)");
  allow_shared(attention_dq_tc_kernel, Lq);
  attention_dq_tc_kernel<<<dim3(tiles, static_cast<unsigned>(nh), static_cast<unsigned>(B)), kThreads, Lq.bytes, s>>>(
      a, vis, Lq, dout, lse, delta, dqkv);
  check_launch("attention_backward_tc (dq)");
  const TcLayout Lk = fitted_layout(Kernel::Dkv, hd, "attention_backward_tc (dk, dv)");
  allow_shared(attention_dkv_tc_kernel, Lk);
  attention_dkv_tc_kernel<<<dim3(tiles, static_cast<unsigned>(nkv), static_cast<unsigned>(B)), kThreads, Lk.bytes,
                            s>>>(a, vis, Lk, dout, lse, delta, dqkv);
  check_launch("attention_backward_tc (dk, dv)");
}

}  // namespace sdt::cuda
