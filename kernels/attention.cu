// Attention kernels. Layout of the work: one warp per query row (forward, dQ) or per key row
// (dK/dV); a block of 8 warps shares 32-row tiles of the other side staged in shared memory as
// fp32. Inside a tile each lane owns one key (or query) for the dot products and one slice of
// the head dimension for the accumulators. Correctness first: no tensor cores yet (see
// docs/cuda.md for the planned wgmma version).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "attention.cuh"
#include "device.cuh"
#include "internal/attention_delta.cuh"
#include "internal/attention_vis.cuh"
#include "internal/check.cuh"
#include "internal/warp.cuh"

namespace sdt::cuda {
namespace {

using detail::ChunkVis;
using detail::kFullMask;
using detail::SequenceVis;
using detail::load_bf16;
using detail::store_bf16;
using detail::warp_max;
using detail::warp_sum;

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kTile = 32;
constexpr int kMaxHd = kAttentionMaxHeadDim;
constexpr int kPerLane = kMaxHd / 32;
constexpr int kPad = kMaxHd + 1;  // odd row length: lane-per-row reads hit distinct banks

// Where the rows of one (batch row, head) live: element d of row t is at base + t * row + d.
struct Operands {
  const bf16* q;
  long q_b, q_row;  // q(b, h, i) = q + b * q_b + i * q_row + h * hd
  const bf16* k;
  const bf16* v;
  long kv_b, kv_g, kv_row;  // k(b, g, j) = k + b * kv_b + g * kv_g + j * kv_row
  long o_b, o_row;          // out(b, h, i) = out + b * o_b + i * o_row + h * hd
  int nq, nk, nh, nkv, hd;
  float scale;
};

template <class Vis>
__global__ void __launch_bounds__(kThreads) attention_forward_kernel(Operands a, Vis vis, bf16* out, float* lse) {
  __shared__ float qs[kWarps][kMaxHd];
  __shared__ float ks[kTile][kPad];
  __shared__ float vs[kTile][kPad];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int b = blockIdx.z, h = blockIdx.y, g = h / (a.nh / a.nkv), hd = a.hd;
  const int i0 = blockIdx.x * kWarps;
  const int i = i0 + warp;
  const bool active = i < a.nq;
  const bf16* q = a.q + b * a.q_b + static_cast<long>(h) * hd;
  const bf16* k = a.k + b * a.kv_b + g * a.kv_g;
  const bf16* v = a.v + b * a.kv_b + g * a.kv_g;
  for (int d = lane; d < hd; d += 32) qs[warp][d] = active ? load_bf16(q, i * a.q_row + d) : 0.0f;
  int kend = 0;
  for (int w = 0; w < kWarps && i0 + w < a.nq; ++w) kend = max(kend, vis.key_end(b, i0 + w));
  kend = min(kend, a.nk);

  float m = -INFINITY, l = 0.0f;
  float acc[kPerLane];
#pragma unroll
  for (int r = 0; r < kPerLane; ++r) acc[r] = 0.0f;

  for (int j0 = 0; j0 < kend; j0 += kTile) {
    __syncthreads();  // the previous tile (and qs on the first pass) is complete / consumed
    for (int idx = threadIdx.x; idx < kTile * hd; idx += kThreads) {
      const int r = idx / hd, d = idx % hd, j = j0 + r;
      const bool in = j < kend;
      ks[r][d] = in ? load_bf16(k, j * a.kv_row + d) : 0.0f;
      vs[r][d] = in ? load_bf16(v, j * a.kv_row + d) : 0.0f;
    }
    __syncthreads();
    if (!active) continue;
    const int j = j0 + lane;
    float s = -INFINITY;
    if (j < kend && vis.visible(b, i, j)) {
      float dot = 0.0f;
      for (int d = 0; d < hd; ++d) dot += qs[warp][d] * ks[lane][d];
      s = dot * a.scale;
    }
    const float m_new = fmaxf(m, warp_max(s));
    if (m_new == -INFINITY) continue;  // nothing visible so far (warp-uniform)
    const float p = __expf(s - m_new);
    const float corr = __expf(m - m_new);
    l = l * corr + warp_sum(p);
#pragma unroll
    for (int r = 0; r < kPerLane; ++r) acc[r] *= corr;
    for (int jj = 0; jj < kTile; ++jj) {
      const float pj = __shfl_sync(kFullMask, p, jj);
#pragma unroll
      for (int r = 0; r < kPerLane; ++r) {
        const int d = lane + 32 * r;
        if (d < hd) acc[r] += pj * vs[jj][d];
      }
    }
    m = m_new;
  }
  if (!active) return;
  const float inv = 1.0f / l;
  bf16* o = out + b * a.o_b + i * a.o_row + static_cast<long>(h) * hd;
#pragma unroll
  for (int r = 0; r < kPerLane; ++r) {
    const int d = lane + 32 * r;
    if (d < hd) store_bf16(o, d, acc[r] * inv);
  }
  if (lse && lane == 0) lse[(static_cast<long>(b) * a.nh + h) * a.nq + i] = m + logf(l);
}

// delta[b, h, i] = sum_d dout * out: one warp per (row, head).
__global__ void attention_delta_kernel(const bf16* out, const bf16* dout, int B, int T, int nh, int hd, float* delta) {
  const long w = (blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (w >= static_cast<long>(B) * T * nh) return;
  const int h = static_cast<int>(w % nh);
  const long row = w / nh;  // b * T + i
  const long at = row * nh * hd + static_cast<long>(h) * hd;
  float s = 0.0f;
  for (int d = lane; d < hd; d += 32) s += load_bf16(out, at + d) * load_bf16(dout, at + d);
  s = warp_sum(s);
  if (lane == 0) {
    const long b = row / T, i = row % T;
    delta[(b * nh + h) * T + i] = s;
  }
}

// dQ: one warp per query, like the forward; P is recomputed from the saved log-sum-exp.
__global__ void __launch_bounds__(kThreads) attention_dq_kernel(Operands a, SequenceVis vis, const bf16* dout,
                                                                const float* lse, const float* delta, bf16* dq) {
  __shared__ float qs[kWarps][kMaxHd];
  __shared__ float dos[kWarps][kMaxHd];
  __shared__ float ks[kTile][kPad];
  __shared__ float vs[kTile][kPad];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int b = blockIdx.z, h = blockIdx.y, g = h / (a.nh / a.nkv), hd = a.hd;
  const int i0 = blockIdx.x * kWarps;
  const int i = i0 + warp;
  const bool active = i < a.nq;
  const bf16* q = a.q + b * a.q_b + static_cast<long>(h) * hd;
  const bf16* k = a.k + b * a.kv_b + g * a.kv_g;
  const bf16* v = a.v + b * a.kv_b + g * a.kv_g;
  const bf16* dor = dout + b * a.o_b + static_cast<long>(h) * hd;
  for (int d = lane; d < hd; d += 32) {
    qs[warp][d] = active ? load_bf16(q, i * a.q_row + d) : 0.0f;
    dos[warp][d] = active ? load_bf16(dor, i * a.o_row + d) : 0.0f;
  }
  const long stat = (static_cast<long>(b) * a.nh + h) * a.nq + i;
  const float lse_i = active ? lse[stat] : 0.0f;
  const float delta_i = active ? delta[stat] : 0.0f;
  int kend = 0;
  for (int w = 0; w < kWarps && i0 + w < a.nq; ++w) kend = max(kend, vis.key_end(b, i0 + w));
  kend = min(kend, a.nk);

  float acc[kPerLane];
#pragma unroll
  for (int r = 0; r < kPerLane; ++r) acc[r] = 0.0f;
  for (int j0 = 0; j0 < kend; j0 += kTile) {
    __syncthreads();
    for (int idx = threadIdx.x; idx < kTile * hd; idx += kThreads) {
      const int r = idx / hd, d = idx % hd, j = j0 + r;
      const bool in = j < kend;
      ks[r][d] = in ? load_bf16(k, j * a.kv_row + d) : 0.0f;
      vs[r][d] = in ? load_bf16(v, j * a.kv_row + d) : 0.0f;
    }
    __syncthreads();
    if (!active) continue;
    const int j = j0 + lane;
    float ds = 0.0f;
    if (j < kend && vis.visible(b, i, j)) {
      float s = 0.0f, dp = 0.0f;
      for (int d = 0; d < hd; ++d) {
        s += qs[warp][d] * ks[lane][d];
        dp += dos[warp][d] * vs[lane][d];
      }
      const float p = __expf(s * a.scale - lse_i);
      ds = p * (dp - delta_i);
    }
    for (int jj = 0; jj < kTile; ++jj) {
      const float dsj = __shfl_sync(kFullMask, ds, jj);
#pragma unroll
      for (int r = 0; r < kPerLane; ++r) {
        const int d = lane + 32 * r;
        if (d < hd) acc[r] += dsj * ks[jj][d];
      }
    }
  }
  if (!active) return;
  bf16* o = dq + b * a.q_b + i * a.q_row + static_cast<long>(h) * hd;
#pragma unroll
  for (int r = 0; r < kPerLane; ++r) {
    const int d = lane + 32 * r;
    if (d < hd) store_bf16(o, d, acc[r] * a.scale);
  }
}

// dK, dV: one warp per key of one kv head, summing over the query heads of its group and over
// 32-query tiles staged in shared memory. dk/dv use the k/v layout of `a` (offset into dqkv).
__global__ void __launch_bounds__(kThreads) attention_dkv_kernel(Operands a, SequenceVis vis, const bf16* dout,
                                                                 const float* lse, const float* delta, bf16* dk,
                                                                 bf16* dv) {
  __shared__ float kj[kWarps][kMaxHd];
  __shared__ float vj[kWarps][kMaxHd];
  __shared__ float qs[kTile][kPad];
  __shared__ float dos[kTile][kPad];
  __shared__ float lse_s[kTile];
  __shared__ float delta_s[kTile];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int b = blockIdx.z, g = blockIdx.y, hd = a.hd, group = a.nh / a.nkv;
  const int j0 = blockIdx.x * kWarps;
  const int j = j0 + warp;
  const bool active = j < a.nk;
  const long kv_at = b * a.kv_b + g * a.kv_g + j * a.kv_row;
  for (int d = lane; d < hd; d += 32) {
    kj[warp][d] = active ? load_bf16(a.k, kv_at + d) : 0.0f;
    vj[warp][d] = active ? load_bf16(a.v, kv_at + d) : 0.0f;
  }
  int qbeg = a.nq;
  for (int w = 0; w < kWarps && j0 + w < a.nk; ++w) qbeg = min(qbeg, vis.query_begin(b, j0 + w));

  float acc_k[kPerLane], acc_v[kPerLane];
#pragma unroll
  for (int r = 0; r < kPerLane; ++r) acc_k[r] = acc_v[r] = 0.0f;
  for (int h = g * group; h < (g + 1) * group; ++h) {
    const bf16* q = a.q + b * a.q_b + static_cast<long>(h) * hd;
    const bf16* dor = dout + b * a.o_b + static_cast<long>(h) * hd;
    const long stat0 = (static_cast<long>(b) * a.nh + h) * a.nq;
    for (int q0 = qbeg; q0 < a.nq; q0 += kTile) {
      __syncthreads();
      for (int idx = threadIdx.x; idx < kTile * hd; idx += kThreads) {
        const int r = idx / hd, d = idx % hd, i = q0 + r;
        const bool in = i < a.nq;
        qs[r][d] = in ? load_bf16(q, i * a.q_row + d) : 0.0f;
        dos[r][d] = in ? load_bf16(dor, i * a.o_row + d) : 0.0f;
      }
      if (threadIdx.x < kTile) {
        const int i = q0 + threadIdx.x;
        lse_s[threadIdx.x] = i < a.nq ? lse[stat0 + i] : 0.0f;
        delta_s[threadIdx.x] = i < a.nq ? delta[stat0 + i] : 0.0f;
      }
      __syncthreads();
      if (!active) continue;
      const int i = q0 + lane;
      float p = 0.0f, ds = 0.0f;
      if (i < a.nq && vis.visible(b, i, j)) {
        float s = 0.0f, dp = 0.0f;
        for (int d = 0; d < hd; ++d) {
          s += qs[lane][d] * kj[warp][d];
          dp += dos[lane][d] * vj[warp][d];
        }
        p = __expf(s * a.scale - lse_s[lane]);
        ds = p * (dp - delta_s[lane]);
      }
      for (int ii = 0; ii < kTile; ++ii) {
        const float pi = __shfl_sync(kFullMask, p, ii);
        const float dsi = __shfl_sync(kFullMask, ds, ii);
#pragma unroll
        for (int r = 0; r < kPerLane; ++r) {
          const int d = lane + 32 * r;
          if (d < hd) {
            acc_v[r] += pi * dos[ii][d];
            acc_k[r] += dsi * qs[ii][d];
          }
        }
      }
    }
  }
  if (!active) return;
#pragma unroll
  for (int r = 0; r < kPerLane; ++r) {
    const int d = lane + 32 * r;
    if (d < hd) {
      store_bf16(dk, kv_at + d, acc_k[r] * a.scale);
      store_bf16(dv, kv_at + d, acc_v[r]);
    }
  }
}

void check_shape(const char* what, int nh, int nkv, int hd) {
  if (hd <= 0 || hd % 2 != 0 || hd > kMaxHd)
    throw std::invalid_argument(std::string(what) + ": head_dim " + std::to_string(hd) +
                                " is not supported (even, at most " + std::to_string(kMaxHd) + ")");
  if (nh <= 0 || nkv <= 0 || nh % nkv != 0)
    throw std::invalid_argument(std::string(what) + ": num_attention_heads " + std::to_string(nh) +
                                " must be a positive multiple of num_key_value_heads " + std::to_string(nkv));
}

Operands sequence_operands(const bf16* qkv, int S, int T, int nh, int nkv, int hd) {
  Operands a{};
  a.q = qkv;
  a.q_b = static_cast<long>(T) * S;
  a.q_row = S;
  a.k = qkv + static_cast<long>(nh) * hd;
  a.v = qkv + static_cast<long>(nh + nkv) * hd;
  a.kv_b = static_cast<long>(T) * S;
  a.kv_g = hd;
  a.kv_row = S;
  a.o_b = static_cast<long>(T) * nh * hd;
  a.o_row = static_cast<long>(nh) * hd;
  a.nq = T;
  a.nk = T;
  a.nh = nh;
  a.nkv = nkv;
  a.hd = hd;
  a.scale = 1.0f / sqrtf(static_cast<float>(hd));
  return a;
}

SequenceVis sequence_vis(const AttentionMaskArgs& m, int T) {
  return SequenceVis{static_cast<int>(m.mode), m.block_size > 0 ? m.block_size : 1, m.segment, m.pos, T};
}

// Tensor cores unless SDT_ATTENTION=scalar: they passed gpu-check on an H200 (docs/gpu-notes.md).
AttentionKernels initial_kernels() {
  const char* env = std::getenv("SDT_ATTENTION");
  return env && std::strcmp(env, "scalar") == 0 ? AttentionKernels::Scalar : AttentionKernels::TensorCores;
}

AttentionKernels g_kernels = initial_kernels();

}  // namespace

namespace detail {

void launch_attention_delta(const bf16* out, const bf16* dout, int B, int T, int nh, int hd, float* delta,
                            cudaStream_t stream) {
  const long warps = static_cast<long>(B) * T * nh;
  attention_delta_kernel<<<static_cast<unsigned>((warps * 32 + 255) / 256), 256, 0, stream>>>(out, dout, B, T, nh,
                                                                                            hd, delta);
  check_launch("attention_backward (delta)");
}

}  // namespace detail

void set_attention_kernels(AttentionKernels k) { g_kernels = k; }
AttentionKernels attention_kernels() { return g_kernels; }

bool attention_tc_supports(const void* qkv, int qkv_stride, int hd) {
  return hd > 0 && hd % 16 == 0 && hd <= kAttentionMaxHeadDim && qkv_stride % 8 == 0 &&
         reinterpret_cast<uintptr_t>(qkv) % 16 == 0;
}

void attention_forward(const bf16* qkv, int qkv_stride, int B, int T, int nh, int nkv, int hd,
                       const AttentionMaskArgs& mask, bf16* out, float* lse, Stream stream) {
  check_shape("attention_forward", nh, nkv, hd);
  if (B <= 0 || T <= 0) return;
  if (attention_kernels() == AttentionKernels::TensorCores && attention_tc_supports(qkv, qkv_stride, hd)) {
    attention_forward_tc(qkv, qkv_stride, B, T, nh, nkv, hd, mask, out, lse, stream);
    return;
  }
  const Operands a = sequence_operands(qkv, qkv_stride, T, nh, nkv, hd);
  const dim3 grid(static_cast<unsigned>((T + kWarps - 1) / kWarps), static_cast<unsigned>(nh),
                  static_cast<unsigned>(B));
  attention_forward_kernel<SequenceVis>
      <<<grid, kThreads, 0, detail::as_stream(stream)>>>(a, sequence_vis(mask, T), out, lse);
  check_launch("attention_forward");
}

void attention_backward(const bf16* qkv, int qkv_stride, const bf16* out, const float* lse, const bf16* dout, int B,
                        int T, int nh, int nkv, int hd, const AttentionMaskArgs& mask, float* delta, bf16* dqkv,
                        Stream stream) {
  check_shape("attention_backward", nh, nkv, hd);
  if (B <= 0 || T <= 0) return;
  if (attention_kernels() == AttentionKernels::TensorCores && attention_tc_supports(qkv, qkv_stride, hd) &&
      reinterpret_cast<uintptr_t>(dout) % 16 == 0) {
    attention_backward_tc(qkv, qkv_stride, out, lse, dout, B, T, nh, nkv, hd, mask, delta, dqkv, stream);
    return;
  }
  cudaStream_t s = detail::as_stream(stream);
  const Operands a = sequence_operands(qkv, qkv_stride, T, nh, nkv, hd);
  const SequenceVis vis = sequence_vis(mask, T);
  detail::launch_attention_delta(out, dout, B, T, nh, hd, delta, s);
  const dim3 qgrid(static_cast<unsigned>((T + kWarps - 1) / kWarps), static_cast<unsigned>(nh),
                   static_cast<unsigned>(B));
  attention_dq_kernel<<<qgrid, kThreads, 0, s>>>(a, vis, dout, lse, delta, dqkv);
  check_launch("attention_backward (dq)");
  const dim3 kgrid(static_cast<unsigned>((T + kWarps - 1) / kWarps), static_cast<unsigned>(nkv),
                   static_cast<unsigned>(B));
  attention_dkv_kernel<<<kgrid, kThreads, 0, s>>>(a, vis, dout, lse, delta, dqkv + static_cast<long>(nh) * hd,
                                                  dqkv + static_cast<long>(nh + nkv) * hd);
  check_launch("attention_backward (dk, dv)");
}

void attention_chunk_forward(const bf16* q, int q_stride, const bf16* kcache, const bf16* vcache, int max_len, int B,
                             int C, int start_pos, int nh, int nkv, int hd, AttentionMode mode, bf16* out,
                             Stream stream, int own_block, const int32_t* row_start) {
  check_shape("attention_chunk_forward", nh, nkv, hd);
  if (B <= 0 || C <= 0) return;
  if (start_pos < 0 || start_pos + C > max_len)
    throw std::invalid_argument("attention_chunk_forward: positions [" + std::to_string(start_pos) + ", " +
                                std::to_string(start_pos + C) + ") do not fit a cache of " + std::to_string(max_len));
  Operands a{};
  a.q = q;
  a.q_b = static_cast<long>(C) * q_stride;
  a.q_row = q_stride;
  a.k = kcache;
  a.v = vcache;
  a.kv_b = static_cast<long>(nkv) * max_len * hd;
  a.kv_g = static_cast<long>(max_len) * hd;
  a.kv_row = hd;
  a.o_b = static_cast<long>(C) * nh * hd;
  a.o_row = static_cast<long>(nh) * hd;
  a.nq = C;
  a.nk = start_pos + C;
  a.nh = nh;
  a.nkv = nkv;
  a.hd = hd;
  a.scale = 1.0f / sqrtf(static_cast<float>(hd));
  const ChunkVis vis{mode == AttentionMode::Causal, start_pos, C, own_block, row_start};
  const dim3 grid(static_cast<unsigned>((C + kWarps - 1) / kWarps), static_cast<unsigned>(nh),
                  static_cast<unsigned>(B));
  attention_forward_kernel<ChunkVis><<<grid, kThreads, 0, detail::as_stream(stream)>>>(a, vis, out, nullptr);
  check_launch("attention_chunk_forward");
}

}  // namespace sdt::cuda
