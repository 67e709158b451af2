// The CPU ops of the model, each with its backward. Row-major fp32; "rows" are the B*T token
// positions. Backward functions ACCUMULATE into parameter gradients; whether they accumulate
// into input gradients is stated per function. All are OpenMP-parallel over rows (or over
// batch x heads for attention) and must be called from outside a parallel region.
#pragma once

#include <cstdint>
#include <vector>

#include "model/config.h"

namespace sdt {

// Below this many multiply-adds (or element updates) an op runs on one thread: waking the team
// costs more than the work, and the sampler's small chunks live here.
constexpr long kParallelMinWork = 1L << 15;

// ---- embedding ----
// out[n, :] = table[ids[n], :]
void embedding_forward(const float* table, int D, const int32_t* ids, int N, float* out);
// dtable[ids[n], :] += dout[n, :]
void embedding_backward(const int32_t* ids, int N, int D, const float* dout, float* dtable);

// ---- RMSNorm (Hugging Face LlamaRMSNorm): y = w * x / sqrt(mean(x^2) + eps) ----
// inv_rms[n] receives 1 / sqrt(mean(x[n]^2) + eps), needed by the backward.
void rmsnorm_forward(const float* x, const float* w, int N, int D, float eps, float* y, float* inv_rms);
// dx += d/dx, dw += d/dw.
void rmsnorm_backward(const float* x, const float* w, const float* inv_rms, const float* dy, int N, int D,
                      float* dx, float* dw);

// ---- rotary position embedding, HF rotate-half convention ----
// For pair i < hd/2 at position p, angle = p * theta^(-2i/hd):
//   x'[i] = x[i] cos - x[i + hd/2] sin,  x'[i + hd/2] = x[i + hd/2] cos + x[i] sin.
struct RopeTable {
  int head_dim = 0;
  int max_pos = 0;
  std::vector<float> cos;  // [max_pos][head_dim / 2]
  std::vector<float> sin;
  RopeTable() = default;
  RopeTable(int head_dim, int max_pos, float theta);
};
// In place on `heads` consecutive head vectors starting at each row (row n at x + n * stride).
// pos[n] is row n's position; nullptr: position n % T.
void rope_forward(const RopeTable& rope, float* x, int N, int stride, int heads, const int32_t* pos, int T);
// The transpose rotation (the gradient of rope_forward), in place on dx.
void rope_backward(const RopeTable& rope, float* dx, int N, int stride, int heads, const int32_t* pos, int T);

// ---- attention ----
// Which keys a query sees inside one batch row. Applied per row b on top of the mode:
//   segment (nullable, [B*T]): same id only; a negative id sees only itself and is never seen.
//   pos (nullable, [B*T]): positions for Causal / Block (block = pos / block_size); nullptr: t.
struct AttentionMask {
  AttentionMode mode = AttentionMode::Bidirectional;
  int block_size = 1;
  const int32_t* segment = nullptr;
  const int32_t* pos = nullptr;
};

// Self-attention for training and full-sequence inference, with GQA.
// qkv: [B*T, qkv_stride] where q heads start at column 0, k heads at nh*hd, v heads at (nh+nkv)*hd
// (the layout of the fused q/k/v projection). out: [B*T, nh*hd]; lse: [B, nh, T] log-sum-exp of
// the scaled scores, kept for the backward.
void attention_forward(const float* qkv, int qkv_stride, int B, int T, int nh, int nkv, int hd,
                       const AttentionMask& mask, float* out, float* lse);
// Writes (does not accumulate) dqkv with the same layout as qkv.
void attention_backward(const float* qkv, int qkv_stride, const float* out, const float* lse, const float* dout,
                        int B, int T, int nh, int nkv, int hd, const AttentionMask& mask, float* dqkv);

// Attention of C new positions over a KV cache. q: [B*C, q_stride] with nh heads at column 0;
// kcache/vcache: one layer of a cache, [B][nkv][max_len][hd], holding positions [0, start_pos + C)
// (the chunk's own K/V already written at [start_pos, start_pos + C)). Cached positions are all
// visible; inside the chunk, Causal sees chunk positions <= its own, other modes the whole chunk,
// except that with own_block > 0 the first own_block chunk positions form a block of their own that
// sees only itself (a committed block written in the same call as the next block's first step).
// row_start (nullable, [B]): positions of row b before row_start[b] are padding, which no query sees;
// a padding query sees only itself. chunk_len (nullable, [B]): only the first chunk_len[b] chunk positions
// of row b are real (0 or >= C: all); the rest are padding that no query sees, each seeing only itself.
void attention_chunk_forward(const float* q, int q_stride, const float* kcache, const float* vcache, int max_len,
                             int B, int C, int start_pos, int nh, int nkv, int hd, AttentionMode mode, float* out,
                             int own_block = 0, const int* row_start = nullptr, const int* chunk_len = nullptr);

// ---- SwiGLU ----
// gu: [N, 2I], gate in columns [0, I), up in [I, 2I). h = silu(gate) * up, [N, I].
void swiglu_forward(const float* gu, int N, int I, float* h);
// Writes dgu [N, 2I].
void swiglu_backward(const float* gu, const float* dh, int N, int I, float* dgu);

// ---- cross-entropy with the <|mask|> logit excluded ----
// logits: [N, V], modified in place: logits[n, mask_id] = -inf. For rows with target >= 0,
// CE_n = logsumexp(logits[n, v != mask_id]) - logits[n, target]; returns sum_n w_n * CE_n (w
// nullptr: 1) and, when ce_out is set, ce_out[n] = CE_n (0 for rows without target).
// When grad_scale != 0 the logits are REPLACED by dlogits = grad_scale * w_n * (softmax - onehot)
// (0 in the mask column and in rows without target).
double cross_entropy(float* logits, int N, int V, const int32_t* targets, const float* w, int mask_id,
                     float grad_scale, float* ce_out);

}  // namespace sdt
