#include <stdexcept>
#include <string>

#include "device.cuh"
#include "internal/check.cuh"
#include "internal/warp.cuh"
#include "sampler.cuh"

namespace sdt::cuda {
namespace {

using detail::block_max;
using detail::block_sum;

constexpr int kThreads = 256;

__device__ __forceinline__ bool allowed(const uint8_t* banned, int v) { return !banned || banned[v] == 0; }

__global__ void __launch_bounds__(kThreads)
    softmax_rows_kernel(const float* logits, int V, const uint8_t* banned, float inv_t, float* probs) {
  __shared__ float scratch[32];
  const long r = blockIdx.x;
  const float* row = logits + r * V;
  float* out = probs + r * V;
  float m = -INFINITY;
  for (int v = threadIdx.x; v < V; v += blockDim.x)
    if (allowed(banned, v)) m = fmaxf(m, row[v] * inv_t);
  m = block_max(m, scratch);
  float s = 0.0f;
  for (int v = threadIdx.x; v < V; v += blockDim.x)
    if (allowed(banned, v)) s += expf(row[v] * inv_t - m);
  s = block_sum(s, scratch);
  const float inv = 1.0f / s;
  for (int v = threadIdx.x; v < V; v += blockDim.x)
    out[v] = allowed(banned, v) ? expf(row[v] * inv_t - m) * inv : 0.0f;
}

// Argmax with the lowest index on ties, then the softmax mass of the winner.
__global__ void __launch_bounds__(kThreads) greedy_choice_kernel(const float* logits, int V, const uint8_t* banned,
                                                                 float inv_t, int32_t* token, float* confidence) {
  __shared__ float sval[32];
  __shared__ int sidx[32];
  __shared__ float scratch[32];
  const long r = blockIdx.x;
  const float* row = logits + r * V;
  float best = -INFINITY;
  int best_i = -1;
  for (int v = threadIdx.x; v < V; v += blockDim.x) {
    if (!allowed(banned, v)) continue;
    const float x = row[v];
    if (best_i < 0 || x > best) {
      best = x;
      best_i = v;
    }
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(detail::kFullMask, best, o);
    const int oi = __shfl_xor_sync(detail::kFullMask, best_i, o);
    if (oi >= 0 && (best_i < 0 || ov > best || (ov == best && oi < best_i))) {
      best = ov;
      best_i = oi;
    }
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) {
    sval[warp] = best;
    sidx[warp] = best_i;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int k = 1; k < static_cast<int>(blockDim.x >> 5); ++k) {
      if (sidx[k] >= 0 && (best_i < 0 || sval[k] > best || (sval[k] == best && sidx[k] < best_i))) {
        best = sval[k];
        best_i = sidx[k];
      }
    }
    sval[0] = best;
    sidx[0] = best_i;
  }
  __syncthreads();
  best = sval[0];
  best_i = sidx[0];
  __syncthreads();
  if (best_i < 0 || !isfinite(best)) {
    if (threadIdx.x == 0) {
      token[r] = -1;
      confidence[r] = 0.0f;
    }
    return;
  }
  // The maximum of the scaled logits is the winner's (inv_t > 0 keeps the order).
  const float m = best * inv_t;
  float s = 0.0f;
  for (int v = threadIdx.x; v < V; v += blockDim.x)
    if (allowed(banned, v)) s += expf(row[v] * inv_t - m);
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) {
    token[r] = best_i;
    confidence[r] = 1.0f / s;
  }
}

// One block per row, one thread per position: each candidate counts the candidates ranked above
// it (O(L^2) compares, L is a block of at most a few hundred positions).
__global__ void select_commits_kernel(const float* conf, const uint8_t* candidate, int L, float threshold,
                                      int max_per_step, int k, uint8_t* commit) {
  extern __shared__ float sconf[];
  uint8_t* scand = reinterpret_cast<uint8_t*>(sconf + L);
  const long r = blockIdx.x;
  const int i = threadIdx.x;
  if (i < L) {
    sconf[i] = conf[r * L + i];
    scand[i] = candidate[r * L + i];
  }
  __syncthreads();
  if (i >= L) return;
  uint8_t out = 0;
  if (scand[i]) {
    const float c = sconf[i];
    int rank = 0;
    for (int j = 0; j < L; ++j)
      if (scand[j] && (sconf[j] > c || (sconf[j] == c && j < i))) ++rank;
    if (k > 0) {
      out = rank < k;
    } else {
      out = (rank == 0 || c >= threshold) && (max_per_step <= 0 || rank < max_per_step);
    }
  }
  commit[r * L + i] = out;
}

__global__ void kv_cache_append_kernel(const uint16_t* qkv, int S, int C, int nh, int nkv, int hd, uint16_t* kc,
                                       uint16_t* vc, int max_len, int start_pos, long total) {
  for (long idx = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<long>(gridDim.x) * blockDim.x) {
    const int d = static_cast<int>(idx % hd);
    long rest = idx / hd;
    const int g = static_cast<int>(rest % nkv);
    rest /= nkv;
    const int c = static_cast<int>(rest % C);
    const long b = rest / C;
    const long src = (b * C + c) * S;
    const long dst = ((b * nkv + g) * max_len + start_pos + c) * hd + d;
    kc[dst] = qkv[src + static_cast<long>(nh + g) * hd + d];
    vc[dst] = qkv[src + static_cast<long>(nh + nkv + g) * hd + d];
  }
}

float inverse_temperature(float t) { return t > 0.0f ? 1.0f / t : 1.0f; }

}  // namespace

void softmax_rows(const float* logits, int R, int V, const uint8_t* banned, float temperature, float* probs,
                  Stream stream) {
  if (R <= 0) return;
  softmax_rows_kernel<<<R, kThreads, 0, detail::as_stream(stream)>>>(logits, V, banned,
                                                                     inverse_temperature(temperature), probs);
  check_launch("softmax_rows");
}

void greedy_choice(const float* logits, int R, int V, const uint8_t* banned, float temperature, int32_t* token,
                   float* confidence, Stream stream) {
  if (R <= 0) return;
  greedy_choice_kernel<<<R, kThreads, 0, detail::as_stream(stream)>>>(logits, V, banned,
                                                                      inverse_temperature(temperature), token,
                                                                      confidence);
  check_launch("greedy_choice");
}

void select_commits(const float* conf, const uint8_t* candidate, int rows, int L, float threshold, int max_per_step,
                    int k, uint8_t* commit, Stream stream) {
  if (rows <= 0 || L <= 0) return;
  if (L > 1024) throw std::invalid_argument("select_commits: block length " + std::to_string(L) + " exceeds 1024");
  const int threads = ((L + 31) / 32) * 32;
  const size_t smem = static_cast<size_t>(L) * (sizeof(float) + 1);
  select_commits_kernel<<<rows, threads, smem, detail::as_stream(stream)>>>(conf, candidate, L, threshold,
                                                                           max_per_step, k, commit);
  check_launch("select_commits");
}

void kv_cache_append(const bf16* qkv, int qkv_stride, int B, int C, int nh, int nkv, int hd, bf16* kcache,
                     bf16* vcache, int max_len, int start_pos, Stream stream) {
  if (start_pos < 0 || start_pos + C > max_len)
    throw std::invalid_argument("kv_cache_append: positions [" + std::to_string(start_pos) + ", " +
                                std::to_string(start_pos + C) + ") do not fit a cache of " + std::to_string(max_len));
  const long total = static_cast<long>(B) * C * nkv * hd;
  if (total <= 0) return;
  kv_cache_append_kernel<<<detail::grid_for(total, 256), 256, 0, detail::as_stream(stream)>>>(
      qkv, qkv_stride, C, nh, nkv, hd, kcache, vcache, max_len, start_pos, total);
  check_launch("kv_cache_append");
}

}  // namespace sdt::cuda
