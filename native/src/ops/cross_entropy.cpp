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
    const double target_logit = static_cast<double>(row[target]);  // read before the row is overwritten
    double sum = 0.0;
    if (grad_scale != 0.0f) {
      // The row is about to be replaced by its gradient: keep the exponentials there for it.
      for (int v = 0; v < V; ++v) {
        row[v] = std::exp(row[v] - mx);  // exp(-inf) = 0 for the mask column
        sum += static_cast<double>(row[v]);
      }
    } else {
      for (int v = 0; v < V; ++v) sum += static_cast<double>(std::exp(row[v] - mx));
    }
    const double lse = static_cast<double>(mx) + std::log(sum);
    const double ce = lse - target_logit;
    const float wn = w ? w[n] : 1.0f;
    total += static_cast<double>(wn) * ce;
    if (ce_out) ce_out[n] = static_cast<float>(ce);
    if (grad_scale != 0.0f) {
      const float g = grad_scale * wn;
      const float g_over_sum = static_cast<float>(static_cast<double>(g) / sum);
      for (int v = 0; v < V; ++v) row[v] *= g_over_sum;
      row[target] -= g;
      row[mask_id] = 0.0f;
    }
  }
  return total;
}

}  // namespace sdt
