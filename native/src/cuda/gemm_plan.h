// What a cuBLASLt matrix product is planned for: the shape, the leading dimensions, the output
// type and the alignment of each operand's pointer. CublasLt keeps one plan (descriptors and the
// heuristic's algorithm) per distinct key, so a shape seen again costs one cublasLtMatmul call.
// Host-only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

namespace sdt::cuda {

enum class OutType { BF16, F32 };

// The largest power of two <= 256 that divides the address (256 for nullptr). cuBLASLt's
// MIN_ALIGNMENT preferences take it, so an operand that starts inside a buffer (a row chunk, a
// parameter of the flat buffer) gets only algorithms that accept it.
inline uint32_t pointer_alignment(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  uint32_t align = 256;
  while (align > 1 && a % align != 0) align >>= 1;
  return align;
}

struct GemmKey {
  bool trans_a = false, trans_b = false;
  int M = 0, N = 0, K = 0, lda = 0, ldb = 0, ldc = 0;
  OutType out = OutType::F32;
  uint32_t align_a = 256, align_b = 256, align_c = 256;

  bool operator==(const GemmKey& o) const {
    return trans_a == o.trans_a && trans_b == o.trans_b && M == o.M && N == o.N && K == o.K && lda == o.lda &&
           ldb == o.ldb && ldc == o.ldc && out == o.out && align_a == o.align_a && align_b == o.align_b &&
           align_c == o.align_c;
  }
};

struct GemmKeyHash {
  size_t operator()(const GemmKey& k) const {
    uint64_t h = 1469598103934665603ull;  // FNV-1a over the fields
    auto mix = [&h](uint64_t v) {
      for (int i = 0; i < 8; ++i) {
        h ^= (v >> (8 * i)) & 0xffu;
        h *= 1099511628211ull;
      }
    };
    mix((k.trans_a ? 1u : 0u) | (k.trans_b ? 2u : 0u) | (k.out == OutType::BF16 ? 4u : 0u));
    for (const int v : {k.M, k.N, k.K, k.lda, k.ldb, k.ldc}) mix(static_cast<uint32_t>(v));
    for (const uint32_t v : {k.align_a, k.align_b, k.align_c}) mix(v);
    return static_cast<size_t>(h);
  }
};

inline GemmKey gemm_key(bool trans_a, bool trans_b, int M, int N, int K, const void* A, int lda, const void* B,
                        int ldb, const void* C, OutType out, int ldc) {
  GemmKey k;
  k.trans_a = trans_a;
  k.trans_b = trans_b;
  k.M = M;
  k.N = N;
  k.K = K;
  k.lda = lda;
  k.ldb = ldb;
  k.ldc = ldc;
  k.out = out;
  k.align_a = pointer_alignment(A);
  k.align_b = pointer_alignment(B);
  k.align_c = pointer_alignment(C);
  return k;
}

}  // namespace sdt::cuda
