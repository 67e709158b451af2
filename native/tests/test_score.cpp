// sdt::score::score_steps against an independent log-softmax over forward_logits.
#include <cmath>
#include <vector>

#include "model/model.h"
#include "sampler/model_lm.h"
#include "score/score.h"
#include "test_framework.h"
#include "test_model_util.h"

namespace {

// log p(target | row) summed over positions with a target, from raw logits (mask column is -inf).
double reference_logprob(const std::vector<float>& logits, int V, int row, int T, const std::vector<int32_t>& targets) {
  double lp = 0.0;
  for (int t = 0; t < T; ++t) {
    const int32_t y = targets[static_cast<size_t>(row * T + t)];
    if (y < 0) continue;
    const float* l = logits.data() + static_cast<size_t>(row * T + t) * static_cast<size_t>(V);
    double mx = -1e300;
    for (int v = 0; v < V; ++v)
      if (std::isfinite(l[v])) mx = std::max(mx, static_cast<double>(l[v]));
    double z = 0.0;
    for (int v = 0; v < V; ++v)
      if (std::isfinite(l[v])) z += std::exp(static_cast<double>(l[v]) - mx);
    lp += static_cast<double>(l[y]) - mx - std::log(z);
  }
  return lp;
}

}  // namespace

TEST(score_steps_matches_log_softmax_of_logits) {
  const sdt::ModelConfig cfg = sdt_test::tiny_config(2, false, sdt::AttentionMode::Bidirectional);
  sdt::Model model(cfg);
  model.init(7);
  const int N = 5;
  const int T = 6;
  const int M = cfg.mask_token_id;
  // Step states of one trajectory: the canvas fills in; targets are the tokens each step commits.
  std::vector<int32_t> states = {3, 4, M, M, M, M, 3, 4, 5, M, M, M, 3, 4, 5, 6, M, M,
                                 3, 4, 5, 6, 7, M, 3, 4, 5, 6, 7, 8};
  std::vector<int32_t> targets(static_cast<size_t>(N * T), -1);
  targets[2] = 5;
  targets[6 + 3] = 6;
  targets[12 + 4] = 7;
  targets[12 + 5] = 8;  // two tokens committed in one step
  targets[18 + 5] = 9;
  // Row 4 commits nothing: its log-prob is 0 with 0 positions.
  std::vector<float> logits(static_cast<size_t>(N * T * cfg.vocab_size));
  model.forward_logits(states.data(), N, T, sdt::AttentionMode::Bidirectional, nullptr, logits.data());
  for (int batch_rows : {1, 2, 16}) {
    const sdt::score::StepScores s = sdt::score::score_steps(sdt::sampler::ModelLM(model), states.data(), targets.data(), nullptr, N, T,
                                                              sdt::AttentionMode::Bidirectional, batch_rows);
    for (int r = 0; r < N; ++r) {
      CHECK_NEAR(s.logprob[static_cast<size_t>(r)], reference_logprob(logits, cfg.vocab_size, r, T, targets), 1e-4);
    }
    CHECK_EQ(s.counts[0], 1);
    CHECK_EQ(s.counts[2], 2);
    CHECK_EQ(s.counts[4], 0);
    CHECK_NEAR(s.logprob[4], 0.0, 0.0);
  }
}

TEST(score_steps_padding_does_not_change_a_row) {
  const sdt::ModelConfig cfg = sdt_test::tiny_config(4, true, sdt::AttentionMode::Bidirectional);
  sdt::Model model(cfg);
  model.init(11);
  const int M = cfg.mask_token_id;
  std::vector<int32_t> one = {3, M, 5, M};
  std::vector<int32_t> tgt = {-1, 4, -1, 6};
  const auto a = sdt::score::score_steps(sdt::sampler::ModelLM(model), one.data(), tgt.data(), nullptr, 1, 4, sdt::AttentionMode::Bidirectional, 1);
  // The same row padded to 7 positions, padding marked by a negative segment id.
  std::vector<int32_t> padded = {3, M, 5, M, 0, 0, 0};
  std::vector<int32_t> tgt_p = {-1, 4, -1, 6, -1, -1, -1};
  std::vector<int32_t> seg = {0, 0, 0, 0, -1, -1, -1};
  const auto b = sdt::score::score_steps(sdt::sampler::ModelLM(model), padded.data(), tgt_p.data(), seg.data(), 1, 7, sdt::AttentionMode::Bidirectional, 1);
  CHECK_NEAR(a.logprob[0], b.logprob[0], 1e-4);
}
