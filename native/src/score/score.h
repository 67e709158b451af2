// ELBO scoring of sampling trajectories (docs/distill.md): for each step of a trajectory the state the
// sampler saw (prompt + partially filled blocks, <|mask|> where nothing is committed yet) and the tokens it
// committed at that step; the step's log-probability is the sum of log p(token | state) over those
// positions. A trajectory's ELBO is the sum over its steps.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"

namespace sdt::score {

struct StepScores {
  std::vector<double> logprob;   // [N] sum of log-probs of the committed tokens of each row
  std::vector<int64_t> counts;   // [N] number of committed positions (targets >= 0) in each row
};

// states, targets, segments: [N*T] row-major. targets[i] < 0: no token committed at i. segments may be
// nullptr; a negative segment id marks padding (as in Batch). Rows are run `batch_rows` at a time so the
// logits memory stays bounded. Throws std::invalid_argument (from the model) naming a bad id.
StepScores score_steps(const Backend& model, const int32_t* states, const int32_t* targets, const int32_t* segments,
                       int N, int T, AttentionMode mode, int batch_rows);

}  // namespace sdt::score
