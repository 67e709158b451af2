// Matrix products on the GPU through cuBLASLt, loaded at run time (no cuBLAS headers or libraries
// at build time). bf16 inputs, fp32 accumulation and scale, bf16 or fp32 output. Row-major like
// sdt::gemm: C = alpha * op(A) * op(B) + beta * C with op(A) [M, K] and op(B) [K, N].
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "cuda/gemm_plan.h"
#include "types.cuh"

namespace sdt::cuda {

class CublasLt {
 public:
  // Loads libcublasLt ($SDT_CUBLASLT, then .so.13, .so.12, .so) and creates a handle;
  // `workspace_bytes` of device memory are allocated for the algorithms that want it. Throws
  // when the library is missing.
  explicit CublasLt(size_t workspace_bytes = 32u << 20);
  ~CublasLt();
  CublasLt(const CublasLt&) = delete;
  CublasLt& operator=(const CublasLt&) = delete;

  // A, B: device bf16, row-major with leading dimensions lda, ldb (of the stored matrices);
  // C: device, `out` type, ldc. beta != 0 reads C first (C is both input and output).
  // Descriptors, layouts and the heuristic's algorithm are built once per GemmKey (shape, leading
  // dimensions, output type, pointer alignments) and reused; nothing is allocated per call.
  void matmul(bool transA, bool transB, int M, int N, int K, float alpha, const bf16* A, int lda, const bf16* B,
              int ldb, float beta, void* C, OutType out, int ldc, Stream stream);

  // Version reported by the loaded library (cublasLtGetVersion), e.g. 130000.
  size_t version() const;
  const std::string& library_file() const;
  // How many distinct products have been planned (one per GemmKey seen).
  size_t plans() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sdt::cuda
