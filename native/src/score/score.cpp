#include "score/score.h"

#include <algorithm>

namespace sdt::score {

StepScores score_steps(const Backend& model, const int32_t* states, const int32_t* targets, const int32_t* segments,
                       int N, int T, AttentionMode mode, int batch_rows) {
  StepScores out;
  out.logprob.assign(static_cast<size_t>(N), 0.0);
  out.counts.assign(static_cast<size_t>(N), 0);
  const int rows = std::max(1, batch_rows);
  std::vector<float> ce;
  for (int r0 = 0; r0 < N; r0 += rows) {
    const int b = std::min(rows, N - r0);
    const size_t off = static_cast<size_t>(r0) * static_cast<size_t>(T);
    const size_t n = static_cast<size_t>(b) * static_cast<size_t>(T);
    ce.assign(n, 0.0f);
    Batch batch;
    batch.B = b;
    batch.T = T;
    batch.input_ids = states + off;
    batch.target_ids = targets + off;
    batch.segment_ids = segments ? segments + off : nullptr;
    batch.mode = mode;
    // The per-token CE of the trainer's own loss is -log p: scoring and training cannot drift apart.
    model.forward_loss(batch, 1.0, ce.data());
    for (int i = 0; i < b; ++i) {
      double lp = 0.0;
      int64_t c = 0;
      for (int t = 0; t < T; ++t) {
        const size_t k = static_cast<size_t>(i) * static_cast<size_t>(T) + static_cast<size_t>(t);
        if (targets[off + k] < 0) continue;
        lp -= static_cast<double>(ce[k]);
        ++c;
      }
      out.logprob[static_cast<size_t>(r0 + i)] = lp;
      out.counts[static_cast<size_t>(r0 + i)] = c;
    }
  }
  return out;
}

}  // namespace sdt::score
