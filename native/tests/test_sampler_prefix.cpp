// The left-to-right threshold rule of the block sampler: each step commits the leftmost masked positions
// up to the first below the threshold, checked against a slow cache-free reference of that rule.
#include <string>
#include <vector>

#include "sampler/decode.h"
#include "sampler_fake_lm.h"
#include "sampler_reference.h"
#include "test_framework.h"

using namespace sdt::sampler;
using sdt::AttentionMode;

TEST(sampler_left_to_right_threshold_commits_the_confident_prefix) {
  sdt_test::FakeLM lm(24, 64, AttentionMode::Block, 8, 3.0f);
  const float threshold = 0.3f;
  int multi = 0, stopped_short = 0;
  for (int plen : {0, 3, 6, 11}) {
    std::vector<int32_t> prompt;
    for (int i = 0; i < plen; ++i) prompt.push_back(4 + (i * 5 + plen) % 20);
    SamplerSettings s;
    s.block_size = 8;
    s.max_new = 21;
    s.eos_id = -1;
    s.order = CommitOrder::LeftToRight;
    s.threshold = threshold;
    s.record_trajectory = true;
    const Generation g = generate(lm, prompt, s);
    const auto ref = sdt_test::slow_prefix_reference(lm, prompt, 21, threshold);
    if (g.tokens != ref)
      sdt_test::fail(__FILE__, __LINE__, "prompt length " + std::to_string(plen) + " differs from the reference");
    // Every step commits a run of positions that starts at the leftmost masked one.
    int next = 0;
    for (const TrajectoryStep& t : g.trajectory) {
      CHECK(!t.positions.empty());
      for (size_t k = 0; k < t.positions.size(); ++k) {
        CHECK_EQ(t.positions[k], next + static_cast<int>(k));
        if (k > 0) CHECK(t.confidences[k] >= threshold);
      }
      next += static_cast<int>(t.positions.size());
      const int block_end = ((plen + next + 7) / 8) * 8 - plen;
      if (t.positions.size() > 1) ++multi;
      if (next < block_end && next < 21) ++stopped_short;
    }
    CHECK_EQ(next, 21);
  }
  // Steps both took several positions and stopped inside a block, so the rule was exercised both ways.
  CHECK(multi > 0);
  CHECK(stopped_short > 0);
}
