#include <cmath>

#include "ops/ops.h"

namespace sdt {

RopeTable::RopeTable(int hd, int max_positions, float theta) : head_dim(hd), max_pos(max_positions) {
  const int half = hd / 2;
  cos.resize(static_cast<size_t>(max_pos) * half);
  sin.resize(static_cast<size_t>(max_pos) * half);
  for (int i = 0; i < half; ++i) {
    // Computed in fp32 as Hugging Face does (inv_freq and pos * inv_freq are fp32 tensors there),
    // so angles match a PyTorch run bit for bit before the cos/sin.
    const float inv_freq = 1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(hd));
    for (int p = 0; p < max_pos; ++p) {
      const float angle = static_cast<float>(p) * inv_freq;
      cos[static_cast<size_t>(p) * half + i] = static_cast<float>(std::cos(static_cast<double>(angle)));
      sin[static_cast<size_t>(p) * half + i] = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
  }
}

namespace {

// sign = +1: forward rotation; -1: its transpose (inverse).
void rope_apply(const RopeTable& rope, float* x, int N, int stride, int heads, const int32_t* pos, int T,
                float sign) {
  const int half = rope.head_dim / 2;
#pragma omp parallel for schedule(static) if (static_cast<long>(N) * heads * rope.head_dim >= kParallelMinWork)
  for (int n = 0; n < N; ++n) {
    const int p = pos ? pos[n] : n % T;
    const float* c = rope.cos.data() + static_cast<long>(p) * half;
    const float* s = rope.sin.data() + static_cast<long>(p) * half;
    for (int h = 0; h < heads; ++h) {
      float* v = x + static_cast<long>(n) * stride + static_cast<long>(h) * rope.head_dim;
      for (int i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half];
        const float si = sign * s[i];
        v[i] = a * c[i] - b * si;
        v[i + half] = b * c[i] + a * si;
      }
    }
  }
}

}  // namespace

void rope_forward(const RopeTable& rope, float* x, int N, int stride, int heads, const int32_t* pos, int T) {
  rope_apply(rope, x, N, stride, heads, pos, T, 1.0f);
}

void rope_backward(const RopeTable& rope, float* dx, int N, int stride, int heads, const int32_t* pos, int T) {
  rope_apply(rope, dx, N, stride, heads, pos, T, -1.0f);
}

}  // namespace sdt
