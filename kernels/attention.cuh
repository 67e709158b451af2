// Flash-style attention on the GPU: bf16 q/k/v/out, fp32 scores, online softmax, no T x T matrix.
// Same layouts and masks as the CPU ops (native/src/ops/ops.h), which are the reference.
// Head dimension: even and at most kAttentionMaxHeadDim (the launchers throw otherwise).
#pragma once

#include "sdt/attention_mode.h"
#include "types.cuh"

namespace sdt::cuda {

constexpr int kAttentionMaxHeadDim = 128;

// Which keys a query sees inside one batch row, on top of the mode (as sdt::AttentionMask):
//   segment (device, nullable, [B*T]): same id only; a negative id sees only itself, is never seen.
//   pos (device, nullable, [B*T]): positions for Causal / Block (block = pos / block_size); nullptr: t.
struct AttentionMaskArgs {
  AttentionMode mode = AttentionMode::Bidirectional;
  int block_size = 1;
  const int32_t* segment = nullptr;
  const int32_t* pos = nullptr;
};

// qkv: [B*T, qkv_stride] bf16, q heads at column 0, k heads at nh*hd, v heads at (nh+nkv)*hd.
// out: [B*T, nh*hd] bf16; lse: [B, nh, T] fp32 log-sum-exp of the scaled scores (for the backward).
void attention_forward(const bf16* qkv, int qkv_stride, int B, int T, int nh, int nkv, int hd,
                       const AttentionMaskArgs& mask, bf16* out, float* lse, Stream stream);

// The same forward and backward on tensor cores (kernels/attention_tc.cu: WMMA bf16, fp32
// accumulate, 64 x 64 tiles, cp.async double buffering). head_dim a multiple of 16 (<= 128), qkv
// rows on 16-byte boundaries (qkv_stride a multiple of 8).
void attention_forward_tc(const bf16* qkv, int qkv_stride, int B, int T, int nh, int nkv, int hd,
                          const AttentionMaskArgs& mask, bf16* out, float* lse, Stream stream);
void attention_backward_tc(const bf16* qkv, int qkv_stride, const bf16* out, const float* lse, const bf16* dout,
                           int B, int T, int nh, int nkv, int hd, const AttentionMaskArgs& mask, float* delta,
                           bf16* dqkv, Stream stream);

// Which kernels attention_forward / attention_backward run. TensorCores (the default since they
// passed `sdt-gpu-check` on an H200, docs/gpu-notes.md) takes the *_tc kernels for the shapes
// they support and the CUDA-core kernels otherwise; Scalar always takes the CUDA-core kernels,
// which stay the reference of the parity checks. SDT_ATTENTION=scalar in the environment picks
// Scalar at start.
enum class AttentionKernels { Scalar, TensorCores };
void set_attention_kernels(AttentionKernels k);
AttentionKernels attention_kernels();
// Whether the tensor-core kernels take this shape (head_dim, stride, alignment).
bool attention_tc_supports(const void* qkv, int qkv_stride, int hd);

// Writes (does not accumulate) every element of the q/k/v columns of dqkv ([B*T, qkv_stride]
// bf16). delta: a device workspace of B*nh*T floats (receives rowsum(dout * out)).
// Deterministic: one block owns each output element, no atomics.
void attention_backward(const bf16* qkv, int qkv_stride, const bf16* out, const float* lse, const bf16* dout, int B,
                        int T, int nh, int nkv, int hd, const AttentionMaskArgs& mask, float* delta, bf16* dqkv,
                        Stream stream);

// C new positions over a KV cache (as sdt::attention_chunk_forward). q: [B*C, q_stride] bf16 with
// nh heads at column 0; kcache/vcache: one layer, [B][nkv][max_len][hd] bf16, holding positions
// [0, start_pos + C). Cached positions are all visible; inside the chunk Causal sees chunk
// positions <= its own, other modes the whole chunk, except that chunk positions [0, own_block)
// see only each other (a committed block written with the next block's first step). out: [B*C, nh*hd] bf16.
// row_start (device, nullable, [B]): row b's positions before row_start[b] are padding, seen by no
// query; a padding query sees only itself.
void attention_chunk_forward(const bf16* q, int q_stride, const bf16* kcache, const bf16* vcache, int max_len, int B,
                             int C, int start_pos, int nh, int nkv, int hd, AttentionMode mode, bf16* out,
                             Stream stream, int own_block = 0, const int32_t* row_start = nullptr);

}  // namespace sdt::cuda
