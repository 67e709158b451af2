// The one matrix multiply used by every op: C = alpha * op(A) * op(B) + beta * C, row-major.
// op(A) is [M, K] (A is [K, M] with leading dimension lda when transA), op(B) is [K, N].
// Backend: OpenBLAS cblas_sgemm when built with SDT_HAVE_OPENBLAS, otherwise gemm_own.
// Both backends parallelise over OpenMP threads (OpenBLAS itself is set to one thread); called
// inside a parallel region they run on the calling thread.
#pragma once

#include <vector>

namespace sdt {

void gemm(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda,
          const float* B, int ldb, float beta, float* C, int ldc);

// Our cache-blocked, packed, OpenMP-parallel kernel (always compiled, so tests can compare it
// with OpenBLAS and with the naive loop).
void gemm_own(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda,
              const float* B, int ldb, float beta, float* C, int ldc);

// op(B) [K, N] packed once into gemm_own's panel layout, for a weight that many products reuse (decoding
// packs each weight once instead of once per call). gemm_own_packed with it gives the same bits as gemm_own
// with the matrix it was packed from. A copy: later changes to that matrix are not seen.
class PackedB {
 public:
  PackedB() = default;
  PackedB(bool transB, int K, int N, const float* B, int ldb);
  int K() const { return K_; }
  int N() const { return N_; }

 private:
  friend void gemm_own_packed(bool, int, float, const float*, int, const PackedB&, float, float*, int);
  std::vector<float> data_;
  int K_ = 0;
  int N_ = 0;
};

// C[M, B.N()] = alpha * op(A) * B + beta * C, op(A) [M, B.K()].
void gemm_own_packed(bool transA, int M, float alpha, const float* A, int lda, const PackedB& B, float beta, float* C,
                     int ldc);

// Triple loop with double accumulation: the reference for tests.
void gemm_naive(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda,
                const float* B, int ldb, float beta, float* C, int ldc);

// "openblas" or "own".
const char* gemm_backend_name();

}  // namespace sdt
