// GEMM dispatch and the naive reference.
#include "gemm/gemm.h"

#include <omp.h>

#include <algorithm>
#include <mutex>

#ifdef SDT_HAVE_OPENBLAS
#include <cblas.h>
// Declared here too: not every cblas.h an alternatives link may point to declares it.
extern "C" void openblas_set_num_threads(int num_threads);
#endif

namespace sdt {

#ifdef SDT_HAVE_OPENBLAS
namespace {

// OpenBLAS runs single-threaded and we split the product over OpenMP threads ourselves: one
// thread pool instead of two (OpenBLAS's pthreads and OpenMP's) that otherwise spin and yield
// against each other between ops, which cost a third of a training step on 2 cores.
void blas_slice(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
                int ldb, float beta, float* C, int ldc) {
  cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, M, N, K, alpha,
              A, lda, B, ldb, beta, C, ldc);
}

}  // namespace
#endif

void gemm(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda,
          const float* B, int ldb, float beta, float* C, int ldc) {
  if (M <= 0 || N <= 0) return;
#ifdef SDT_HAVE_OPENBLAS
  if (K <= 0) {
    // BLAS would scale C by beta; keep that meaning without touching A and B.
    for (int i = 0; i < M; ++i)
      for (int j = 0; j < N; ++j) C[static_cast<long>(i) * ldc + j] = beta == 0.0f ? 0.0f : beta * C[static_cast<long>(i) * ldc + j];
    return;
  }
  static std::once_flag single_threaded;
  std::call_once(single_threaded, [] { openblas_set_num_threads(1); });
  const double flops = 2.0 * M * N * K;
  const int threads = (omp_in_parallel() || flops < 4e6) ? 1 : omp_get_max_threads();
  if (threads == 1) {
    blas_slice(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  // Split the longer of M and N into one slice per thread, in multiples of 16 (whole SIMD tiles).
  const bool split_rows = M >= N;
  const int extent = split_rows ? M : N;
  const int slice = std::max(16, (extent + threads - 1) / threads + 15) / 16 * 16;
  const int slices = (extent + slice - 1) / slice;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int s = 0; s < slices; ++s) {
    const int lo = s * slice, len = std::min(slice, extent - lo);
    if (split_rows) {
      const float* a = transA ? A + lo : A + static_cast<long>(lo) * lda;
      blas_slice(transA, transB, len, N, K, alpha, a, lda, B, ldb, beta, C + static_cast<long>(lo) * ldc, ldc);
    } else {
      const float* b = transB ? B + static_cast<long>(lo) * ldb : B + lo;
      blas_slice(transA, transB, M, len, K, alpha, A, lda, b, ldb, beta, C + lo, ldc);
    }
  }
#else
  gemm_own(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

const char* gemm_backend_name() {
#ifdef SDT_HAVE_OPENBLAS
  return "openblas";
#else
  return "own";
#endif
}

void gemm_naive(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda,
                const float* B, int ldb, float beta, float* C, int ldc) {
  for (int i = 0; i < M; ++i) {
    for (int j = 0; j < N; ++j) {
      double acc = 0.0;
      for (int p = 0; p < K; ++p) {
        const float a = transA ? A[static_cast<long>(p) * lda + i] : A[static_cast<long>(i) * lda + p];
        const float b = transB ? B[static_cast<long>(j) * ldb + p] : B[static_cast<long>(p) * ldb + j];
        acc += static_cast<double>(a) * static_cast<double>(b);
      }
      float& c = C[static_cast<long>(i) * ldc + j];
      const double prev = beta == 0.0f ? 0.0 : static_cast<double>(beta) * c;
      c = static_cast<float>(static_cast<double>(alpha) * acc + prev);
    }
  }
}

}  // namespace sdt
