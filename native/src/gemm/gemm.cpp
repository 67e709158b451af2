// GEMM dispatch and the naive reference.
#include "gemm/gemm.h"

#ifdef SDT_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace sdt {

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
  cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, M, N, K,
              alpha, A, lda, B, ldb, beta, C, ldc);
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
