#include <cmath>

#include "ops/ops.h"

namespace sdt {

void swiglu_forward(const float* gu, int N, int I, float* h) {
#pragma omp parallel for schedule(static) if (static_cast<long>(N) * I >= kParallelMinWork)
  for (int n = 0; n < N; ++n) {
    const float* g = gu + static_cast<long>(n) * 2 * I;
    const float* u = g + I;
    float* hr = h + static_cast<long>(n) * I;
    for (int i = 0; i < I; ++i) hr[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
  }
}

void swiglu_backward(const float* gu, const float* dh, int N, int I, float* dgu) {
#pragma omp parallel for schedule(static) if (static_cast<long>(N) * I >= kParallelMinWork)
  for (int n = 0; n < N; ++n) {
    const float* g = gu + static_cast<long>(n) * 2 * I;
    const float* u = g + I;
    const float* dhr = dh + static_cast<long>(n) * I;
    float* dg = dgu + static_cast<long>(n) * 2 * I;
    float* du = dg + I;
    for (int i = 0; i < I; ++i) {
      const float sig = 1.0f / (1.0f + std::exp(-g[i]));
      const float silu = g[i] * sig;
      du[i] = dhr[i] * silu;
      dg[i] = dhr[i] * u[i] * sig * (1.0f + g[i] * (1.0f - sig));
    }
  }
}

}  // namespace sdt
