// Scaled dot-product attention on the CPU, by tiles of 64 queries whose products go through the
// GEMM. The backward recomputes the probabilities from the saved log-sum-exp instead of storing a
// [T, T] matrix per head (memory O(tile x T) per thread, like FlashAttention).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "gemm/gemm.h"
#include "ops/ops.h"

namespace sdt {
namespace {

inline float dot(const float* a, const float* b, int n) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

// The visibility rule of one batch row for full-sequence attention.
struct RowMask {
  AttentionMode mode;
  int block_size;
  const int32_t* seg;  // this row's segment ids or nullptr
  const int32_t* pos;  // this row's positions or nullptr
  int T;

  int position(int t) const {
    if (pos) return pos[t];
    return mode == AttentionMode::BlockTwoStream && t >= T / 2 ? t - T / 2 : t;
  }
  bool visible(int i, int j) const {
    if (seg) {
      if (seg[i] < 0) return i == j;
      if (seg[j] != seg[i]) return false;
    }
    switch (mode) {
      case AttentionMode::BlockTwoStream: {
        const bool clean_i = i >= T / 2, clean_j = j >= T / 2;
        const int bi = position(i) / block_size, bj = position(j) / block_size;
        if (clean_i) return clean_j && bj <= bi;
        return clean_j ? bj < bi : bj == bi;
      }
      case AttentionMode::Bidirectional:
        return true;
      case AttentionMode::Causal:
        return position(j) <= position(i);
      case AttentionMode::Block:
        return position(j) / block_size <= position(i) / block_size;
    }
    return true;
  }
  // Keys at or beyond this index are invisible to query i (a bound, not exact).
  int key_end(int i) const {
    if (pos || (seg && seg[i] < 0)) return pos ? T : i + 1;
    switch (mode) {
      case AttentionMode::Causal:
        return i + 1;
      case AttentionMode::Block:
        return std::min(T, (i / block_size + 1) * block_size);
      case AttentionMode::BlockTwoStream: {
        const int H = T / 2, bi = position(i) / block_size;
        if (i >= H) return H + std::min(H, (bi + 1) * block_size);
        return std::max(std::min(H, (bi + 1) * block_size), H + bi * block_size);
      }
      default:
        return T;
    }
  }
};

// The visibility rule of a chunk over a KV cache: query i (chunk index) and key j (absolute).
struct ChunkMask {
  bool causal;
  int start_pos;
  int C;
  int own_block;  // chunk positions [0, own_block) see only each other (and the cache)
  int row_start;  // positions before it are padding: unseen, and a padding query sees only itself
  int len;        // chunk positions from it on are padding too
  bool visible(int i, int j) const {
    if (start_pos + i < row_start || i >= len) return j == start_pos + i;
    return j >= row_start && j < key_end(i) && j < start_pos + len;
  }
  int key_end(int i) const {
    if (causal) return start_pos + i + 1;
    return i < own_block ? start_pos + own_block : start_pos + C;
  }
};

constexpr int kQueryTile = 64;

// The largest key_end over queries [i0, i0 + ti).
template <class Mask>
int tile_key_end(const Mask& mask, int i0, int ti) {
  int e = 0;
  for (int i = i0; i < i0 + ti; ++i) e = std::max(e, mask.key_end(i));
  return e;
}

// Attention of nq queries of one head, by tiles of queries, with the products done by the
// (single-threaded, inside the caller's parallel region) GEMM. sbuf: kQueryTile * nk floats.
template <class Mask>
void attend(const Mask& mask, const float* q, int q_stride, int nq, const float* k, const float* v, int kv_stride,
            int hd, float scale, float* out, int out_stride, float* lse, float* sbuf) {
  const float neg_inf = -std::numeric_limits<float>::infinity();
  for (int i0 = 0; i0 < nq; i0 += kQueryTile) {
    const int ti = std::min(kQueryTile, nq - i0);
    const int kend = tile_key_end(mask, i0, ti);
    gemm_own(false, true, ti, kend, hd, scale, q + static_cast<long>(i0) * q_stride, q_stride, k, kv_stride, 0.0f,
             sbuf, kend);
    for (int r = 0; r < ti; ++r) {
      const int i = i0 + r;
      float* s = sbuf + static_cast<long>(r) * kend;
      float mx = neg_inf;
      for (int j = 0; j < kend; ++j) {
        if (!mask.visible(i, j)) s[j] = neg_inf;
        mx = std::max(mx, s[j]);
      }
      // Every query sees at least itself, so mx is finite and sum >= 1.
      float sum = 0.0f;
      for (int j = 0; j < kend; ++j) {
        s[j] = std::exp(s[j] - mx);
        sum += s[j];
      }
      const float inv = 1.0f / sum;
      for (int j = 0; j < kend; ++j) s[j] *= inv;
      if (lse) lse[i] = mx + std::log(sum);
    }
    gemm_own(false, false, ti, hd, kend, 1.0f, sbuf, kend, v, kv_stride, 0.0f, out + static_cast<long>(i0) * out_stride,
             out_stride);
  }
}

// The backward of attend for one query head: writes dq, ADDS to dk and dv.
// pbuf, dpbuf: kQueryTile * nk floats each.
template <class Mask>
void attend_backward(const Mask& mask, const float* q, int q_stride, int nq, const float* k, const float* v,
                     int kv_stride, int hd, float scale, const float* out, const float* dout, int out_stride,
                     const float* lse, float* dq, float* dk, float* dv, float* pbuf, float* dpbuf) {
  for (int i0 = 0; i0 < nq; i0 += kQueryTile) {
    const int ti = std::min(kQueryTile, nq - i0);
    const int kend = tile_key_end(mask, i0, ti);
    const float* qt = q + static_cast<long>(i0) * q_stride;
    const float* dot_ = dout + static_cast<long>(i0) * out_stride;
    gemm_own(false, true, ti, kend, hd, scale, qt, q_stride, k, kv_stride, 0.0f, pbuf, kend);
    gemm_own(false, true, ti, kend, hd, 1.0f, dot_, out_stride, v, kv_stride, 0.0f, dpbuf, kend);
    for (int r = 0; r < ti; ++r) {
      const int i = i0 + r;
      float* p = pbuf + static_cast<long>(r) * kend;
      float* ds = dpbuf + static_cast<long>(r) * kend;
      const float Di = dot(dout + static_cast<long>(i) * out_stride, out + static_cast<long>(i) * out_stride, hd);
      for (int j = 0; j < kend; ++j) {
        p[j] = mask.visible(i, j) ? std::exp(p[j] - lse[i]) : 0.0f;
        ds[j] = p[j] * (ds[j] - Di);
      }
    }
    gemm_own(false, false, ti, hd, kend, scale, dpbuf, kend, k, kv_stride, 0.0f, dq + static_cast<long>(i0) * q_stride,
             q_stride);
    gemm_own(true, false, kend, hd, ti, scale, dpbuf, kend, qt, q_stride, 1.0f, dk, kv_stride);
    gemm_own(true, false, kend, hd, ti, 1.0f, pbuf, kend, dot_, out_stride, 1.0f, dv, kv_stride);
  }
}

}  // namespace

void attention_forward(const float* qkv, int qkv_stride, int B, int T, int nh, int nkv, int hd,
                       const AttentionMask& mask, float* out, float* lse) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int group = nh / nkv;
  const long S = qkv_stride;
#pragma omp parallel if (static_cast<long>(B) * nh * T * T * hd >= kParallelMinWork)
  {
    std::vector<float> scores(static_cast<size_t>(kQueryTile) * T);
#pragma omp for collapse(2) schedule(dynamic)
    for (int b = 0; b < B; ++b) {
      for (int h = 0; h < nh; ++h) {
        const long row0 = static_cast<long>(b) * T;
        const RowMask rm{mask.mode, mask.block_size, mask.segment ? mask.segment + row0 : nullptr,
                         mask.pos ? mask.pos + row0 : nullptr, T};
        const int g = h / group;
        const float* base = qkv + row0 * S;
        attend(rm, base + static_cast<long>(h) * hd, qkv_stride, T, base + static_cast<long>(nh + g) * hd,
               base + static_cast<long>(nh + nkv + g) * hd, qkv_stride, hd, scale,
               out + row0 * nh * hd + static_cast<long>(h) * hd, nh * hd, lse + (static_cast<long>(b) * nh + h) * T,
               scores.data());
      }
    }
  }
}

void attention_backward(const float* qkv, int qkv_stride, const float* out, const float* lse, const float* dout,
                        int B, int T, int nh, int nkv, int hd, const AttentionMask& mask, float* dqkv) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int group = nh / nkv;
  const long S = qkv_stride;
  const long A = static_cast<long>(nh) * hd;
  // One task per (row, kv head): the K/V gradients of a kv head are written by one thread only.
#pragma omp parallel if (static_cast<long>(B) * nh * T * T * hd >= kParallelMinWork)
  {
    std::vector<float> pbuf(static_cast<size_t>(kQueryTile) * T), dpbuf(pbuf.size());
#pragma omp for collapse(2) schedule(dynamic)
    for (int b = 0; b < B; ++b) {
      for (int g = 0; g < nkv; ++g) {
        const long row0 = static_cast<long>(b) * T;
        const RowMask rm{mask.mode, mask.block_size, mask.segment ? mask.segment + row0 : nullptr,
                         mask.pos ? mask.pos + row0 : nullptr, T};
        const float* base = qkv + row0 * S;
        float* dbase = dqkv + row0 * S;
        float* dk = dbase + static_cast<long>(nh + g) * hd;
        float* dv = dbase + static_cast<long>(nh + nkv + g) * hd;
        for (int j = 0; j < T; ++j) {
          std::fill(dk + j * S, dk + j * S + hd, 0.0f);
          std::fill(dv + j * S, dv + j * S + hd, 0.0f);
        }
        for (int h = g * group; h < (g + 1) * group; ++h) {
          attend_backward(rm, base + static_cast<long>(h) * hd, qkv_stride, T, base + static_cast<long>(nh + g) * hd,
                          base + static_cast<long>(nh + nkv + g) * hd, qkv_stride, hd, scale,
                          out + row0 * A + static_cast<long>(h) * hd, dout + row0 * A + static_cast<long>(h) * hd,
                          nh * hd, lse + (static_cast<long>(b) * nh + h) * T, dbase + static_cast<long>(h) * hd, dk,
                          dv, pbuf.data(), dpbuf.data());
        }
      }
    }
  }
}

void attention_chunk_forward(const float* q, int q_stride, const float* kcache, const float* vcache, int max_len,
                             int B, int C, int start_pos, int nh, int nkv, int hd, AttentionMode mode, float* out,
                             int own_block, const int* row_start, const int* chunk_len) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int group = nh / nkv;
#pragma omp parallel if (static_cast<long>(B) * nh * C * (start_pos + C) * hd >= kParallelMinWork)
  {
    std::vector<float> scores(static_cast<size_t>(kQueryTile) * (start_pos + C));
#pragma omp for collapse(2) schedule(dynamic)
    for (int b = 0; b < B; ++b) {
      for (int h = 0; h < nh; ++h) {
        const int g = h / group;
        const long cache_off = (static_cast<long>(b) * nkv + g) * max_len * hd;
        const int len = chunk_len && chunk_len[b] > 0 ? std::min(chunk_len[b], C) : C;
        const ChunkMask cm{mode == AttentionMode::Causal, start_pos, C, own_block, row_start ? row_start[b] : 0, len};
        attend(cm, q + static_cast<long>(b) * C * q_stride + static_cast<long>(h) * hd, q_stride, C,
               kcache + cache_off, vcache + cache_off, hd, hd, scale,
               out + static_cast<long>(b) * C * nh * hd + static_cast<long>(h) * hd, nh * hd, nullptr,
               scores.data());
      }
    }
  }
}

}  // namespace sdt
