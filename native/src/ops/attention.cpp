// Scaled dot-product attention on the CPU. The backward recomputes the probabilities from the
// saved log-sum-exp instead of storing a [T, T] matrix per head (memory O(T), like FlashAttention).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "ops/ops.h"

namespace sdt {
namespace {

inline float dot(const float* a, const float* b, int n) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

inline void axpy(float alpha, const float* x, float* y, int n) {
#pragma omp simd
  for (int i = 0; i < n; ++i) y[i] += alpha * x[i];
}

// The visibility rule of one batch row for full-sequence attention.
struct RowMask {
  AttentionMode mode;
  int block_size;
  const int32_t* seg;  // this row's segment ids or nullptr
  const int32_t* pos;  // this row's positions or nullptr
  int T;

  int position(int t) const { return pos ? pos[t] : t; }
  bool visible(int i, int j) const {
    if (seg) {
      if (seg[i] < 0) return i == j;
      if (seg[j] != seg[i]) return false;
    }
    switch (mode) {
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
  bool visible(int i, int j) const { return !causal || j - start_pos <= i; }
  int key_end(int i) const { return causal ? start_pos + i + 1 : start_pos + C; }
};

// Attention of nq queries of one head over keys [0, key_end). scores: scratch of nk floats.
template <class Mask>
void attend(const Mask& mask, const float* q, long q_stride, int nq, const float* k, const float* v, long kv_stride,
            int hd, float scale, float* out, long out_stride, float* lse, float* scores) {
  const float neg_inf = -std::numeric_limits<float>::infinity();
  for (int i = 0; i < nq; ++i) {
    const float* qi = q + i * q_stride;
    const int end = mask.key_end(i);
    float mx = neg_inf;
    for (int j = 0; j < end; ++j) {
      if (mask.visible(i, j)) {
        const float s = scale * dot(qi, k + j * kv_stride, hd);
        scores[j] = s;
        mx = std::max(mx, s);
      } else {
        scores[j] = neg_inf;
      }
    }
    float* oi = out + i * out_stride;
    std::fill(oi, oi + hd, 0.0f);
    float sum = 0.0f;
    for (int j = 0; j < end; ++j) {
      if (scores[j] == neg_inf) continue;
      const float p = std::exp(scores[j] - mx);
      sum += p;
      axpy(p, v + j * kv_stride, oi, hd);
    }
    // Every query sees at least itself, so sum >= 1.
    const float inv = 1.0f / sum;
    for (int d = 0; d < hd; ++d) oi[d] *= inv;
    if (lse) lse[i] = mx + std::log(sum);
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
    std::vector<float> scores(static_cast<size_t>(T));
#pragma omp for collapse(2) schedule(dynamic)
    for (int b = 0; b < B; ++b) {
      for (int h = 0; h < nh; ++h) {
        const long row0 = static_cast<long>(b) * T;
        const RowMask rm{mask.mode, mask.block_size, mask.segment ? mask.segment + row0 : nullptr,
                         mask.pos ? mask.pos + row0 : nullptr, T};
        const int g = h / group;
        const float* base = qkv + row0 * S;
        attend(rm, base + static_cast<long>(h) * hd, S, T, base + static_cast<long>(nh + g) * hd,
               base + static_cast<long>(nh + nkv + g) * hd, S, hd, scale,
               out + row0 * nh * hd + static_cast<long>(h) * hd, static_cast<long>(nh) * hd,
               lse + (static_cast<long>(b) * nh + h) * T, scores.data());
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
  const float neg_inf = -std::numeric_limits<float>::infinity();
  // One task per (row, kv head): the K/V gradients of a kv head are written by one thread only.
#pragma omp parallel if (static_cast<long>(B) * nh * T * T * hd >= kParallelMinWork)
  {
    std::vector<float> prob(static_cast<size_t>(T));
#pragma omp for collapse(2) schedule(dynamic)
    for (int b = 0; b < B; ++b) {
      for (int g = 0; g < nkv; ++g) {
        const long row0 = static_cast<long>(b) * T;
        const RowMask rm{mask.mode, mask.block_size, mask.segment ? mask.segment + row0 : nullptr,
                         mask.pos ? mask.pos + row0 : nullptr, T};
        const float* base = qkv + row0 * S;
        float* dbase = dqkv + row0 * S;
        const float* k = base + static_cast<long>(nh + g) * hd;
        const float* v = base + static_cast<long>(nh + nkv + g) * hd;
        float* dk = dbase + static_cast<long>(nh + g) * hd;
        float* dv = dbase + static_cast<long>(nh + nkv + g) * hd;
        for (int j = 0; j < T; ++j) {
          std::fill(dk + j * S, dk + j * S + hd, 0.0f);
          std::fill(dv + j * S, dv + j * S + hd, 0.0f);
        }
        for (int h = g * group; h < (g + 1) * group; ++h) {
          const float* q = base + static_cast<long>(h) * hd;
          float* dq = dbase + static_cast<long>(h) * hd;
          const float* lse_h = lse + (static_cast<long>(b) * nh + h) * T;
          for (int i = 0; i < T; ++i) {
            const float* qi = q + i * S;
            const float* oi = out + (row0 + i) * A + static_cast<long>(h) * hd;
            const float* doi = dout + (row0 + i) * A + static_cast<long>(h) * hd;
            float* dqi = dq + i * S;
            std::fill(dqi, dqi + hd, 0.0f);
            const int end = rm.key_end(i);
            for (int j = 0; j < end; ++j)
              prob[j] = rm.visible(i, j) ? std::exp(scale * dot(qi, k + j * S, hd) - lse_h[i]) : neg_inf;
            const float Di = dot(doi, oi, hd);
            for (int j = 0; j < end; ++j) {
              if (prob[j] == neg_inf) continue;
              const float p = prob[j];
              const float ds = p * (dot(doi, v + j * S, hd) - Di);
              axpy(scale * ds, k + j * S, dqi, hd);
              axpy(scale * ds, qi, dk + j * S, hd);
              axpy(p, doi, dv + j * S, hd);
            }
          }
        }
      }
    }
  }
}

void attention_chunk_forward(const float* q, int q_stride, const float* kcache, const float* vcache, int max_len,
                             int B, int C, int start_pos, int nh, int nkv, int hd, AttentionMode mode, float* out) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int group = nh / nkv;
  const ChunkMask cm{mode == AttentionMode::Causal, start_pos, C};
#pragma omp parallel if (static_cast<long>(B) * nh * C * (start_pos + C) * hd >= kParallelMinWork)
  {
    std::vector<float> scores(static_cast<size_t>(start_pos + C));
#pragma omp for collapse(2) schedule(dynamic)
    for (int b = 0; b < B; ++b) {
      for (int h = 0; h < nh; ++h) {
        const int g = h / group;
        const long cache_off = (static_cast<long>(b) * nkv + g) * max_len * hd;
        attend(cm, q + static_cast<long>(b) * C * q_stride + static_cast<long>(h) * hd, q_stride, C,
               kcache + cache_off, vcache + cache_off, hd, hd, scale,
               out + static_cast<long>(b) * C * nh * hd + static_cast<long>(h) * hd, static_cast<long>(nh) * hd,
               nullptr, scores.data());
      }
    }
  }
}

}  // namespace sdt
