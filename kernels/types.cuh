// Types shared by the kernel launchers and plain C++ callers. No CUDA header is included here:
// device buffers are plain pointers, bf16 values travel as their 16 raw bits, and a stream is an
// opaque pointer (a cudaStream_t; nullptr is the default stream).
#pragma once

#include <cstdint>
#include <cstring>

namespace sdt::cuda {

// The raw bits of a bfloat16 (the upper half of an IEEE fp32). Kernels reinterpret it as
// __nv_bfloat16; host code converts with the helpers below.
using bf16 = uint16_t;
using Stream = void*;

// Round-to-nearest-even fp32 -> bf16, as __float2bfloat16 does; NaN stays a (quiet) NaN.
inline bf16 bf16_from_float(float f) {
  uint32_t u = 0;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<bf16>((u >> 16) | 0x0040u);
  const uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
  return static_cast<bf16>((u + rounding) >> 16);
}

inline float bf16_to_float(bf16 b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f = 0.0f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// A quiet NaN in bf16: test harnesses poison outputs with it to find unwritten elements.
constexpr bf16 kBf16NaN = 0x7fc0;

}  // namespace sdt::cuda
