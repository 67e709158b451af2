// The block sampler's per-step work on the GPU: softmax over allowed tokens, greedy choice with
// its confidence, commit selection (confidence threshold with at least one per row, or top-k),
// and appending a chunk's K/V to the cache. The CPU sampler (native/src/sampler) is the reference.
#pragma once

#include "types.cuh"

namespace sdt::cuda {

// probs[r, :] = softmax(logits[r, :] / temperature) over tokens not banned (banned: device uint8
// [V], nullable; banned tokens get probability 0). temperature <= 0 is treated as 1.
// logits, probs: [R, V] fp32 (probs may alias logits).
void softmax_rows(const float* logits, int R, int V, const uint8_t* banned, float temperature, float* probs,
                  Stream stream);

// Greedy choice per row: token[r] = argmax over allowed tokens (lowest id on ties), confidence[r]
// = its probability under softmax(logits / temperature) over allowed tokens (temperature <= 0: 1),
// as sdt::sampler::choose_token with temperature 0. A row with no allowed finite logit gets -1, 0.
void greedy_choice(const float* logits, int R, int V, const uint8_t* banned, float temperature, int32_t* token,
                   float* confidence, Stream stream);

// Which candidate positions of each row commit this step. conf, candidate: [rows, L] (candidate
// uint8: 1 = masked position that may commit). Candidates are ranked by confidence, descending,
// lower index first on ties (the CPU's stable sort). commit[r, i] = 1 when candidate i's rank is
//   threshold rule (k <= 0): rank 0, or conf >= threshold — and rank < max_per_step if that is > 0;
//   top-k rule (k > 0):      rank < k.
// Rows with no candidate commit nothing. L <= 1024.
void select_commits(const float* conf, const uint8_t* candidate, int rows, int L, float threshold, int max_per_step,
                    int k, uint8_t* commit, Stream stream);

// Copies the K/V of C new positions from a fused qkv projection ([B*C, qkv_stride] bf16, K after
// RoPE at column nh*hd, V at (nh+nkv)*hd) into one layer of the cache ([B][nkv][max_len][hd]
// bf16) at positions [start_pos, start_pos + C).
void kv_cache_append(const bf16* qkv, int qkv_stride, int B, int C, int nh, int nkv, int hd, bf16* kcache,
                     bf16* vcache, int max_len, int start_pos, Stream stream);

}  // namespace sdt::cuda
