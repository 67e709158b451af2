#include <omp.h>

#include <cmath>
#include <vector>

#include "ops/ops.h"

namespace sdt {

void rmsnorm_forward(const float* x, const float* w, int N, int D, float eps, float* y, float* inv_rms) {
#pragma omp parallel for schedule(static) if (static_cast<long>(N) * D >= kParallelMinWork)
  for (int n = 0; n < N; ++n) {
    const float* xr = x + static_cast<long>(n) * D;
    float* yr = y + static_cast<long>(n) * D;
    float ss = 0.0f;
    for (int d = 0; d < D; ++d) ss += xr[d] * xr[d];
    const float r = 1.0f / std::sqrt(ss / static_cast<float>(D) + eps);
    inv_rms[n] = r;
    for (int d = 0; d < D; ++d) yr[d] = w[d] * (xr[d] * r);
  }
}

void rmsnorm_backward(const float* x, const float* w, const float* inv_rms, const float* dy, int N, int D,
                      float* dx, float* dw) {
  // dw is a sum over rows: each thread keeps its own partial sum, then they are added in order.
  const int nt = omp_get_max_threads();
  std::vector<float> partial(static_cast<size_t>(nt) * D, 0.0f);
#pragma omp parallel num_threads(nt) if (static_cast<long>(N) * D >= kParallelMinWork)
  {
    float* my = partial.data() + static_cast<long>(omp_get_thread_num()) * D;
#pragma omp for schedule(static)
    for (int n = 0; n < N; ++n) {
      const float* xr = x + static_cast<long>(n) * D;
      const float* dyr = dy + static_cast<long>(n) * D;
      float* dxr = dx + static_cast<long>(n) * D;
      const float r = inv_rms[n];
      float dot = 0.0f;  // sum_d (dy_d w_d) xhat_d
      for (int d = 0; d < D; ++d) {
        const float xhat = xr[d] * r;
        my[d] += dyr[d] * xhat;
        dot += dyr[d] * w[d] * xhat;
      }
      const float mean_dot = dot / static_cast<float>(D);
      for (int d = 0; d < D; ++d) dxr[d] += r * (dyr[d] * w[d] - xr[d] * r * mean_dot);
    }
  }
  for (int t = 0; t < nt; ++t)
    for (int d = 0; d < D; ++d) dw[d] += partial[static_cast<size_t>(t) * D + d];
}

}  // namespace sdt
