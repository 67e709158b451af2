#include <cmath>
#include <limits>

#include "ops/ops.h"

namespace sdt {

double cross_entropy(float* logits, int N, int V, const int32_t* targets, const float* w, int mask_id,
                     float grad_scale, float* ce_out) {
  double total = 0.0;
  const float neg_inf = -std::numeric_limits<float>::infinity();
#pragma omp parallel for schedule(static) reduction(+ : total) if (static_cast<long>(N) * V >= kParallelMinWork)
  for (int n = 0; n < N; ++n) {
    float* row = logits + static_cast<long>(n) * V;
    row[mask_id] = neg_inf;
    const int target = targets ? targets[n] : -1;
    if (target < 0) {
      if (ce_out) ce_out[n] = 0.0f;
      if (grad_scale != 0.0f)
        for (int v = 0; v < V; ++v) row[v] = 0.0f;
      continue;
    }
    float mx = neg_inf;
    for (int v = 0; v < V; ++v) mx = row[v] > mx ? row[v] : mx;
    double sum = 0.0;
    for (int v = 0; v < V; ++v) sum += static_cast<double>(std::exp(row[v] - mx));  // exp(-inf) = 0
    const double lse = static_cast<double>(mx) + std::log(sum);
    const double ce = lse - static_cast<double>(row[target]);
    const float wn = w ? w[n] : 1.0f;
    total += static_cast<double>(wn) * ce;
    if (ce_out) ce_out[n] = static_cast<float>(ce);
    if (grad_scale != 0.0f) {
      const float g = grad_scale * wn;
      const float lse_f = static_cast<float>(lse);
      for (int v = 0; v < V; ++v) row[v] = g * std::exp(row[v] - lse_f);
      row[target] -= g;
      row[mask_id] = 0.0f;
    }
  }
  return total;
}

}  // namespace sdt
