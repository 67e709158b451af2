// The one matrix multiply used by every op: C = alpha * op(A) * op(B) + beta * C, row-major.
// op(A) is [M, K] (A is [K, M] with leading dimension lda when transA), op(B) is [K, N].
// Backend: OpenBLAS cblas_sgemm when built with SDT_HAVE_OPENBLAS, otherwise gemm_own.
// Both backends parallelise over OpenMP threads (OpenBLAS itself is set to one thread); called
// inside a parallel region they run on the calling thread.
#pragma once

namespace sdt {

void gemm(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda,
          const float* B, int ldb, float beta, float* C, int ldc);

// Our cache-blocked, packed, OpenMP-parallel kernel (always compiled, so tests can compare it
// with OpenBLAS and with the naive loop).
void gemm_own(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda,
              const float* B, int ldb, float beta, float* C, int ldc);

// Triple loop with double accumulation: the reference for tests.
void gemm_naive(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda,
                const float* B, int ldb, float beta, float* C, int ldc);

// "openblas" or "own".
const char* gemm_backend_name();

}  // namespace sdt
