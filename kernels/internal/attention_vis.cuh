// Visibility rules of the attention kernels (device code only): the CPU RowMask and ChunkMask.
#pragma once

#include "sdt/attention_mode.h"

namespace sdt::cuda::detail {

// Visibility of full-sequence attention inside batch row b (the CPU RowMask).
struct SequenceVis {
  int mode;
  int block_size;
  const int32_t* seg;
  const int32_t* pos;
  int T;

  __device__ int position(int b, int t) const {
    if (pos) return pos[static_cast<long>(b) * T + t];
    return mode == static_cast<int>(AttentionMode::BlockTwoStream) && t >= T / 2 ? t - T / 2 : t;
  }
  __device__ bool visible(int b, int i, int j) const {
    if (seg) {
      const int si = seg[static_cast<long>(b) * T + i];
      if (si < 0) return i == j;
      if (seg[static_cast<long>(b) * T + j] != si) return false;
    }
    if (mode == static_cast<int>(AttentionMode::Causal)) return position(b, j) <= position(b, i);
    if (mode == static_cast<int>(AttentionMode::Block))
      return position(b, j) / block_size <= position(b, i) / block_size;
    if (mode == static_cast<int>(AttentionMode::BlockTwoStream)) {
      const bool clean_i = i >= T / 2, clean_j = j >= T / 2;
      const int bi = position(b, i) / block_size, bj = position(b, j) / block_size;
      if (clean_i) return clean_j && bj <= bi;
      return clean_j ? bj < bi : bj == bi;
    }
    return true;
  }
  // Keys at or beyond this index are invisible to query i (a bound).
  __device__ int key_end(int b, int i) const {
    if (pos) return T;
    if (seg && seg[static_cast<long>(b) * T + i] < 0) return i + 1;
    if (mode == static_cast<int>(AttentionMode::Causal)) return i + 1;
    if (mode == static_cast<int>(AttentionMode::Block)) return min(T, (i / block_size + 1) * block_size);
    return T;
  }
  // True when every query in [i0, i1) sees every key in [j0, j1) (a sufficient test: the tensor-core
  // kernels skip the per-element mask on such tiles).
  __device__ bool tile_all_visible(int i0, int i1, int j0, int j1) const {
    if (seg || pos || mode == static_cast<int>(AttentionMode::BlockTwoStream)) return false;
    if (mode == static_cast<int>(AttentionMode::Causal)) return j1 - 1 <= i0;
    if (mode == static_cast<int>(AttentionMode::Block)) return (j1 - 1) / block_size <= i0 / block_size;
    (void)i1;
    (void)j0;
    return true;
  }
  // Queries before this index never see key j (a bound).
  __device__ int query_begin(int, int j) const {
    if (pos || seg) return 0;
    if (mode == static_cast<int>(AttentionMode::Causal)) return j;
    if (mode == static_cast<int>(AttentionMode::Block)) return (j / block_size) * block_size;
    return 0;
  }
};

// Visibility of a chunk over a KV cache (the CPU ChunkMask); i is the chunk index, j absolute.
struct ChunkVis {
  bool causal;
  int start_pos;
  int C;
  int own_block;  // chunk positions [0, own_block) see only each other (and the cache)
  const int32_t* row_start;  // [B] or nullptr: row b's positions before row_start[b] are padding
  __device__ int key_end(int, int i) const {
    if (causal) return start_pos + i + 1;
    return i < own_block ? start_pos + own_block : start_pos + C;
  }
  __device__ bool visible(int b, int i, int j) const {
    const int first = row_start ? row_start[b] : 0;
    if (start_pos + i < first) return j == start_pos + i;
    return j >= first && j < key_end(b, i);
  }
};

}  // namespace sdt::cuda::detail
