#include <omp.h>

#include <algorithm>

#include "ops/ops.h"

namespace sdt {

void embedding_forward(const float* table, int D, const int32_t* ids, int N, float* out) {
#pragma omp parallel for schedule(static) if (static_cast<long>(N) * D >= kParallelMinWork)
  for (int n = 0; n < N; ++n) std::copy_n(table + static_cast<long>(ids[n]) * D, D, out + static_cast<long>(n) * D);
}

void embedding_backward(const int32_t* ids, int N, int D, const float* dout, float* dtable) {
  // Repeated ids would race if rows were split across threads; columns never do.
#pragma omp parallel if (static_cast<long>(N) * D >= kParallelMinWork)
  {
    const int nt = omp_get_num_threads(), t = omp_get_thread_num();
    const int c0 = static_cast<int>(static_cast<long>(D) * t / nt);
    const int c1 = static_cast<int>(static_cast<long>(D) * (t + 1) / nt);
    for (int n = 0; n < N; ++n) {
      float* dst = dtable + static_cast<long>(ids[n]) * D;
      const float* src = dout + static_cast<long>(n) * D;
      for (int c = c0; c < c1; ++c) dst[c] += src[c];
    }
  }
}

}  // namespace sdt
