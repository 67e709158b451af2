// Our GEMM: the classic three-level blocking (KC x NC panel of B packed once and shared,
// MC x KC panels of A packed per thread) around an MR x NR register-tile micro-kernel.
// The micro-kernel uses GCC/Clang vector extensions so it compiles to FMA on AVX2 machines
// and to SSE pairs elsewhere, without intrinsics.
#include <omp.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "gemm/gemm.h"

namespace sdt {
namespace {

// The register tile is two vectors wide; with AVX-512 the vectors hold 16 floats and there are
// 32 registers, so the tile grows.
#ifdef __AVX512F__
constexpr int VW = 16;
constexpr int MR = 8;
#else
constexpr int VW = 8;
constexpr int MR = 6;
#endif
constexpr int NR = 2 * VW;
constexpr int KC = 256;
constexpr int NC = 3072;
constexpr int MC_MAX = 96;

typedef float vec __attribute__((vector_size(VW * 4)));

// Scratch that is reused between calls and never zero-filled (packing writes every element used).
float* scratch(std::unique_ptr<float[]>& buf, size_t& cap, size_t n) {
  if (cap < n) {
    buf.reset(new float[n]);
    cap = n;
  }
  return buf.get();
}

// Packs op(A)[i0:i0+mc, p0:p0+kc] into MR-row panels laid out [panel][p][MR], zero-padded.
void pack_a(bool transA, const float* A, int lda, int i0, int mc, int p0, int kc, float* dst) {
  for (int ir = 0; ir < mc; ir += MR) {
    const int rows = std::min(MR, mc - ir);
    float* panel = dst + static_cast<long>(ir) * kc;
    if (!transA) {
      for (int i = 0; i < MR; ++i) {
        if (i < rows) {
          const float* src = A + static_cast<long>(i0 + ir + i) * lda + p0;
          for (int p = 0; p < kc; ++p) panel[p * MR + i] = src[p];
        } else {
          for (int p = 0; p < kc; ++p) panel[p * MR + i] = 0.0f;
        }
      }
    } else {
      for (int p = 0; p < kc; ++p) {
        const float* src = A + static_cast<long>(p0 + p) * lda + i0 + ir;
        for (int i = 0; i < MR; ++i) panel[p * MR + i] = i < rows ? src[i] : 0.0f;
      }
    }
  }
}

// Packs op(B)[p0:p0+kc, j0:j0+nc] into NR-column panels laid out [panel][p][NR], zero-padded.
void pack_b_panel(bool transB, const float* B, int ldb, int p0, int kc, int j0, int cols, float* panel) {
  if (!transB) {
    for (int p = 0; p < kc; ++p) {
      const float* src = B + static_cast<long>(p0 + p) * ldb + j0;
      float* d = panel + p * NR;
      int j = 0;
      for (; j < cols; ++j) d[j] = src[j];
      for (; j < NR; ++j) d[j] = 0.0f;
    }
  } else {
    for (int j = 0; j < NR; ++j) {
      if (j < cols) {
        const float* src = B + static_cast<long>(j0 + j) * ldb + p0;
        for (int p = 0; p < kc; ++p) panel[p * NR + j] = src[p];
      } else {
        for (int p = 0; p < kc; ++p) panel[p * NR + j] = 0.0f;
      }
    }
  }
}

// C[0:R, 0:cols] += alpha * (packed A panel) * (packed B panel), for the first R of the panel's MR rows. A
// row's operations are the same whatever R is (its own accumulators, in the same order), so a partial tile,
// such as the single row of a token-by-token decoding step, costs R rows of multiply-adds instead of MR
// and gives the bits a full tile would.
template <int R>
void micro_kernel_rows(int kc, const float* a, const float* b, float alpha, float* C, int ldc, int cols) {
  vec c0[R], c1[R];
  for (int i = 0; i < R; ++i) {
    c0[i] = vec{};
    c1[i] = vec{};
  }
  for (int p = 0; p < kc; ++p) {
    vec b0, b1;
    std::memcpy(&b0, b + p * NR, sizeof(vec));
    std::memcpy(&b1, b + p * NR + VW, sizeof(vec));
    const float* ap = a + p * MR;
    for (int i = 0; i < R; ++i) {
      const float ai = ap[i];
      c0[i] += ai * b0;
      c1[i] += ai * b1;
    }
  }
  float tile[R][NR];
  for (int i = 0; i < R; ++i) {
    std::memcpy(&tile[i][0], &c0[i], sizeof(vec));
    std::memcpy(&tile[i][VW], &c1[i], sizeof(vec));
  }
  for (int i = 0; i < R; ++i) {
    float* crow = C + static_cast<long>(i) * ldc;
    for (int j = 0; j < cols; ++j) crow[j] += alpha * tile[i][j];
  }
}

using MicroKernel = void (*)(int, const float*, const float*, float, float*, int, int);

template <size_t... I>
constexpr std::array<MicroKernel, sizeof...(I)> micro_kernels(std::index_sequence<I...>) {
  return {&micro_kernel_rows<static_cast<int>(I) + 1>...};
}

constexpr std::array<MicroKernel, MR> kMicroKernels = micro_kernels(std::make_index_sequence<MR>{});

// C[0:rows, 0:cols] += alpha * (packed A panel) * (packed B panel), rows in [1, MR].
void micro_kernel(int kc, const float* a, const float* b, float alpha, float* C, int ldc, int rows, int cols) {
  kMicroKernels[static_cast<size_t>(rows - 1)](kc, a, b, alpha, C, ldc, cols);
}

void scale_c(int M, int N, float beta, float* C, int ldc) {
  if (beta == 1.0f) return;
#pragma omp parallel for schedule(static) if (static_cast<long>(M) * N > 65536)
  for (int i = 0; i < M; ++i) {
    float* row = C + static_cast<long>(i) * ldc;
    if (beta == 0.0f) {
      for (int j = 0; j < N; ++j) row[j] = 0.0f;  // not beta * C: C may hold NaN garbage
    } else {
      for (int j = 0; j < N; ++j) row[j] *= beta;
    }
  }
}

// Threads and row-block height of one product: small products are not worth waking the thread team, and
// row blocks are enough for every thread but no taller than what stays in L2 with one KC slice.
struct Split {
  int threads;
  int mc;
};
Split split_rows(int M, int N, int K) {
  const double flops = 2.0 * M * N * K;
  const int threads = (omp_in_parallel() || flops < 2e6) ? 1 : omp_get_max_threads();
  const int mc = (M + threads - 1) / threads;
  return {threads, std::max(MR, std::min(MC_MAX, (mc + MR - 1) / MR * MR))};
}

// C[:, j0:j0+nc] += alpha * op(A)[:, p0:p0+kc] * (packed B block at bpack). With pack_into (== bpack), the
// block is first packed there from op(B), inside the same thread team.
void multiply_block(bool transA, const float* A, int lda, int M, int p0, int kc, int j0, int nc, float alpha,
                    float* C, int ldc, const Split& split, const float* bpack, float* pack_into, bool transB,
                    const float* B, int ldb) {
  const int npanels = (nc + NR - 1) / NR;
  const int threads = split.threads, mc = split.mc;
#pragma omp parallel num_threads(threads)
  {
    if (pack_into != nullptr) {
#pragma omp for schedule(static)
      for (int jp = 0; jp < npanels; ++jp) {
        const int cols = std::min(NR, nc - jp * NR);
        pack_b_panel(transB, B, ldb, p0, kc, j0 + jp * NR, cols, pack_into + static_cast<long>(jp) * NR * kc);
      }
    }
    static thread_local std::unique_ptr<float[]> abuf;
    static thread_local size_t acap = 0;
    float* apack = scratch(abuf, acap, static_cast<size_t>(MC_MAX + MR) * KC);
    const int mblocks = (M + mc - 1) / mc;
    // Split both the row blocks and the column panels so small-M products still use all threads.
    const int nsplit = mblocks >= threads ? 1 : std::min(npanels, (threads + mblocks - 1) / mblocks);
    const int per = (npanels + nsplit - 1) / nsplit;
#pragma omp for schedule(dynamic) collapse(2)
    for (int ib = 0; ib < mblocks; ++ib) {
      for (int s = 0; s < nsplit; ++s) {
        const int i0 = ib * mc;
        const int rows_blk = std::min(mc, M - i0);
        pack_a(transA, A, lda, i0, rows_blk, p0, kc, apack);
        const int jp_end = std::min(npanels, (s + 1) * per);
        for (int jp = s * per; jp < jp_end; ++jp) {
          const int cols = std::min(NR, nc - jp * NR);
          const float* bp = bpack + static_cast<long>(jp) * NR * kc;
          for (int ir = 0; ir < rows_blk; ir += MR) {
            const int rows = std::min(MR, rows_blk - ir);
            micro_kernel(kc, apack + static_cast<long>(ir) * kc, bp, alpha,
                         C + static_cast<long>(i0 + ir) * ldc + j0 + jp * NR, ldc, rows, cols);
          }
        }
      }
    }
  }
}

// Floats of op(B)[p0:p0+kc, j0:j0+nc] packed: whole NR-column panels.
size_t packed_block_size(int kc, int nc) { return static_cast<size_t>(kc) * ((nc + NR - 1) / NR * NR); }

}  // namespace

void gemm_own(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda,
              const float* B, int ldb, float beta, float* C, int ldc) {
  if (M <= 0 || N <= 0) return;
  scale_c(M, N, beta, C, ldc);
  if (K <= 0 || alpha == 0.0f) return;
  const Split split = split_rows(M, N, K);
  static thread_local std::unique_ptr<float[]> bbuf;
  static thread_local size_t bcap = 0;
  float* bpack = scratch(bbuf, bcap, packed_block_size(std::min(K, KC), std::min(N, NC)));
  for (int j0 = 0; j0 < N; j0 += NC)
    for (int p0 = 0; p0 < K; p0 += KC)
      multiply_block(transA, A, lda, M, p0, std::min(KC, K - p0), j0, std::min(NC, N - j0), alpha, C, ldc, split,
                     bpack, bpack, transB, B, ldb);
}

PackedB::PackedB(bool transB, int K, int N, const float* B, int ldb) : K_(K), N_(N) {
  size_t total = 0;
  for (int j0 = 0; j0 < N; j0 += NC)
    for (int p0 = 0; p0 < K; p0 += KC) total += packed_block_size(std::min(KC, K - p0), std::min(NC, N - j0));
  data_.resize(total);
  float* dst = data_.data();
  for (int j0 = 0; j0 < N; j0 += NC) {
    const int nc = std::min(NC, N - j0);
    for (int p0 = 0; p0 < K; p0 += KC) {
      const int kc = std::min(KC, K - p0);
      for (int jp = 0; jp * NR < nc; ++jp)
        pack_b_panel(transB, B, ldb, p0, kc, j0 + jp * NR, std::min(NR, nc - jp * NR),
                     dst + static_cast<long>(jp) * NR * kc);
      dst += packed_block_size(kc, nc);
    }
  }
}

void gemm_own_packed(bool transA, int M, float alpha, const float* A, int lda, const PackedB& B, float beta, float* C,
                     int ldc) {
  const int N = B.N(), K = B.K();
  if (M <= 0 || N <= 0) return;
  scale_c(M, N, beta, C, ldc);
  if (K <= 0 || alpha == 0.0f) return;
  const Split split = split_rows(M, N, K);
  const float* block = B.data_.data();
  for (int j0 = 0; j0 < N; j0 += NC) {
    const int nc = std::min(NC, N - j0);
    for (int p0 = 0; p0 < K; p0 += KC) {
      const int kc = std::min(KC, K - p0);
      multiply_block(transA, A, lda, M, p0, kc, j0, nc, alpha, C, ldc, split, block, nullptr, false, nullptr, 0);
      block += packed_block_size(kc, nc);
    }
  }
}

}  // namespace sdt
