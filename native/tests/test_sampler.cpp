// Decoding rules of the block sampler, checked against a fake model (sampler_fake_lm.h) and an
// independent slow reference decoder that recomputes the whole sequence at every step.
#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "io/json.h"
#include "sampler/decode.h"
#include "sampler/protocol.h"
#include "sampler/sampling.h"
#include "sampler_fake_lm.h"
#include "sampler_reference.h"
#include "test_framework.h"

using namespace sdt::sampler;
using sdt::AttentionMode;
using sdt_test::FakeLM;
using sdt_test::greedy;
using sdt_test::slow_reference;

namespace {

std::vector<int32_t> make_prompt(int n, int vocab, int salt) {
  std::vector<int32_t> p;
  for (int i = 0; i < n; ++i) p.push_back(4 + (i * 7 + salt * 3) % (vocab - 4));
  return p;
}

// Applies the trajectory to an all-mask canvas.
std::vector<int32_t> replay(const Generation& g, int32_t mask, size_t canvas) {
  std::vector<int32_t> state(canvas, mask);
  for (const TrajectoryStep& t : g.trajectory) {
    for (size_t k = 0; k < t.positions.size(); ++k) state[static_cast<size_t>(t.positions[k])] = t.tokens[k];
  }
  return state;
}

// Whether two decodes committed different positions at some step.
bool commit_positions_differ(const Generation& a, const Generation& b) {
  for (size_t k = 0; k < a.trajectory.size() && k < b.trajectory.size(); ++k)
    if (a.trajectory[k].positions != b.trajectory[k].positions) return true;
  return false;
}

SamplerSettings base_settings() {
  SamplerSettings s;
  s.block_size = 4;
  s.max_new = 14;
  s.eos_id = -1;
  return s;
}

}  // namespace

TEST(sampler_threshold_one_matches_slow_reference) {
  FakeLM lm(24, 64, AttentionMode::Block, 4);
  for (int plen : {0, 1, 4, 6, 9}) {
    SamplerSettings s = base_settings();
    s.threshold = 1.0f;
    s.max_per_step = 1;
    const auto prompt = make_prompt(plen, 24, plen);
    const Generation g = generate(lm, prompt, s);
    CHECK_EQ(g.tokens.size(), static_cast<size_t>(14));
    const auto ref = slow_reference(lm, prompt, 14, -1);
    if (g.tokens != ref) sdt_test::fail(__FILE__, __LINE__, "prompt length " + std::to_string(plen) + " differs");
    CHECK_EQ(g.steps, 14);  // one token per step
  }
}

TEST(sampler_commit_orders_match_slow_reference) {
  FakeLM lm(24, 64, AttentionMode::Block, 4, 3.0f);
  const std::pair<CommitOrder, sdt_test::RefOrder> orders[] = {
      {CommitOrder::Margin, sdt_test::RefOrder::Margin},
      {CommitOrder::Entropy, sdt_test::RefOrder::Entropy},
      {CommitOrder::LeftToRight, sdt_test::RefOrder::LeftToRight},
  };
  for (const auto& [order, ref_order] : orders) {
    for (int plen : {0, 3, 6}) {
      SamplerSettings s = base_settings();
      s.threshold = 1.0f;
      s.max_per_step = 1;
      s.order = order;
      s.record_trajectory = true;
      const auto prompt = make_prompt(plen, 24, plen + 1);
      const Generation g = generate(lm, prompt, s);
      const auto ref = slow_reference(lm, prompt, 14, -1, ref_order);
      if (g.tokens != ref)
        sdt_test::fail(__FILE__, __LINE__,
                       std::string(commit_order_name(order)) + ", prompt length " + std::to_string(plen) + " differs");
      if (order == CommitOrder::LeftToRight) {
        // Positions are committed strictly in order.
        int next = 0;
        for (const TrajectoryStep& t : g.trajectory) {
          CHECK_EQ(t.positions.size(), static_cast<size_t>(1));
          CHECK_EQ(t.positions[0], next++);
        }
      }
    }
  }
  // The orders do disagree on this model, so the comparisons above are not vacuous.
  SamplerSettings conf = base_settings(), left_to_right = base_settings();
  conf.threshold = left_to_right.threshold = 1.0f;
  conf.max_per_step = left_to_right.max_per_step = 1;
  left_to_right.order = CommitOrder::LeftToRight;
  conf.record_trajectory = left_to_right.record_trajectory = true;
  const auto prompt = make_prompt(3, 24, 4);
  CHECK(commit_positions_differ(generate(lm, prompt, conf), generate(lm, prompt, left_to_right)));
}

TEST(sampler_random_order_takes_the_confidence_quota) {
  FakeLM lm(24, 64, AttentionMode::Block, 8, 12.0f);
  SamplerSettings s = base_settings();
  s.block_size = 8;
  s.max_new = 32;
  s.threshold = 0.5f;
  s.record_trajectory = true;
  const auto prompt = make_prompt(8, 24, 2);
  s.order = CommitOrder::Random;
  s.seed = 7;
  const Generation r1 = generate(lm, prompt, s);
  const Generation r2 = generate(lm, prompt, s);
  CHECK(r1.tokens == r2.tokens);  // seeded
  CHECK(replay(r1, 3, 32) == r1.tokens);
  s.seed = 8;
  CHECK(commit_positions_differ(r1, generate(lm, prompt, s)));
  int multi = 0;
  for (const TrajectoryStep& t : r1.trajectory) multi += t.positions.size() > 1 ? 1 : 0;
  CHECK(multi > 0);  // the quota lets several positions in at once
  // The remask rule ranks by probability only; other orders are refused with it.
  SamplerSettings bad = base_settings();
  bad.rule = CommitRule::Remask;
  bad.order = CommitOrder::Margin;
  CHECK(!validate_settings(bad, lm.config()).empty());
}

TEST(sampler_eos_stops_generation_and_matches_reference) {
  FakeLM lm(24, 64, AttentionMode::Block, 4);
  SamplerSettings s = base_settings();
  s.threshold = 1.0f;
  s.max_per_step = 1;
  s.max_new = 20;
  const auto prompt = make_prompt(5, 24, 1);
  const Generation free_run = generate(lm, prompt, s);
  CHECK(!free_run.hit_eos);
  // Declare the token generated at position 6 the end of text: generation must stop there.
  const int32_t eos = free_run.tokens[6];
  const auto first = std::find(free_run.tokens.begin(), free_run.tokens.end(), eos) - free_run.tokens.begin();
  s.eos_id = eos;
  const Generation g = generate(lm, prompt, s);
  CHECK(g.hit_eos);
  CHECK(std::find(g.tokens.begin(), g.tokens.end(), eos) == g.tokens.end());
  CHECK(g.tokens == slow_reference(lm, prompt, 20, eos));
  CHECK(static_cast<long>(g.tokens.size()) <= first);
  // No block is decoded after the one that committed <|eos|>.
  CHECK(g.blocks.back().start + g.blocks.back().size >= static_cast<int>(g.tokens.size()));
  CHECK(g.blocks.back().start <= static_cast<int>(g.tokens.size()));
}

TEST(sampler_threshold_rule_commits_confident_positions) {
  FakeLM lm(24, 64, AttentionMode::Block, 8, 12.0f);
  SamplerSettings s = base_settings();
  s.block_size = 8;
  s.max_new = 32;
  s.threshold = 0.5f;
  s.record_trajectory = true;
  const Generation g = generate(lm, make_prompt(8, 24, 2), s);
  int multi = 0;
  for (const TrajectoryStep& t : g.trajectory) {
    CHECK(!t.positions.empty());
    if (t.positions.size() > 1) {
      ++multi;
      for (float c : t.confidences) CHECK(c >= 0.5f);
    }
  }
  CHECK(multi > 0);  // the sharp fake model is confident enough to commit several at once
  CHECK(g.steps < 32);
  CHECK(replay(g, 3, 32) == g.tokens);
}

TEST(sampler_fixed_rule_commits_k_per_step) {
  FakeLM lm(24, 64, AttentionMode::Block, 8);
  SamplerSettings s = base_settings();
  s.rule = CommitRule::Fixed;
  s.block_size = 8;
  s.tokens_per_step = 3;
  s.max_new = 20;  // blocks: 8, 8, 4 (prompt of 8 keeps blocks aligned)
  s.record_trajectory = true;
  const Generation g = generate(lm, make_prompt(8, 24, 3), s);
  CHECK_EQ(g.blocks.size(), static_cast<size_t>(3));
  CHECK_EQ(g.blocks[0].steps, 3);
  CHECK_EQ(g.blocks[2].steps, 2);
  for (const TrajectoryStep& t : g.trajectory) CHECK(t.positions.size() <= 3);
  // Forward passes: prefill 1 + steps; each block's cache write rides on the next block's first step.
  CHECK_EQ(g.forward_passes, 1 + 3 + 3 + 2);
}

TEST(sampler_remask_rule_uses_its_step_budget_and_replays) {
  FakeLM lm(24, 64, AttentionMode::Bidirectional, 8, 3.0f);
  SamplerSettings s = base_settings();
  s.rule = CommitRule::Remask;
  s.block_size = 8;
  s.steps_per_block = 4;
  s.max_new = 16;
  s.record_trajectory = true;
  const Generation g = generate(lm, make_prompt(5, 24, 4), s);
  for (const BlockStats& b : g.blocks) CHECK(b.steps <= 4);
  CHECK(replay(g, 3, 16) == g.tokens);
  for (int32_t t : g.tokens) CHECK(t != 3);
}

TEST(sampler_seeded_sampling_is_deterministic) {
  FakeLM lm(24, 64, AttentionMode::Block, 4, 2.0f);
  SamplerSettings s = base_settings();
  s.temperature = 1.0f;
  s.top_p = 0.9f;
  s.seed = 7;
  const auto prompt = make_prompt(6, 24, 5);
  const Generation a = generate(lm, prompt, s);
  const Generation b = generate(lm, prompt, s);
  CHECK(a.tokens == b.tokens);
  bool differs = false;
  for (uint64_t seed = 8; seed < 16 && !differs; ++seed) {
    s.seed = seed;
    differs = generate(lm, prompt, s).tokens != a.tokens;
  }
  CHECK(differs);
  // A batch gives each sequence its own stream: sequence i equals generate(..., i).
  const auto batch = generate_batch(lm, {prompt, prompt}, s);
  CHECK(batch[1].tokens == generate(lm, prompt, s, 1).tokens);
}

TEST(sampler_tiny_top_p_is_greedy) {
  FakeLM lm(24, 64, AttentionMode::Block, 4, 2.0f);
  SamplerSettings s = base_settings();
  const auto prompt = make_prompt(6, 24, 6);
  const Generation greedy_run = generate(lm, prompt, s);
  s.temperature = 1.0f;
  s.top_p = 1e-6f;
  s.seed = 3;
  CHECK(generate(lm, prompt, s).tokens == greedy_run.tokens);
}

TEST(sampler_ar_matches_full_causal_argmax) {
  FakeLM lm(24, 64, AttentionMode::Causal, 4);
  SamplerSettings s = base_settings();
  s.mode = DecodeMode::Autoregressive;
  s.max_new = 12;
  const auto prompt = make_prompt(5, 24, 7);
  const Generation g = generate(lm, prompt, s);
  std::vector<int32_t> seq(prompt);
  std::vector<float> logits;
  for (int k = 0; k < 12; ++k) {
    logits.assign(seq.size() * 24, 0.0f);
    lm.forward_full(seq.data(), static_cast<int>(seq.size()), AttentionMode::Causal, logits.data());
    seq.push_back(greedy(logits.data() + (seq.size() - 1) * 24, lm.config()).first);
  }
  CHECK(g.tokens == std::vector<int32_t>(seq.begin() + 5, seq.end()));
  CHECK_EQ(g.forward_passes, 2 + 11);
}

TEST(sampler_revision_only_replaces_confident_disagreements) {
  FakeLM lm(24, 64, AttentionMode::Block, 8, 4.0f);
  SamplerSettings s = base_settings();
  s.block_size = 8;
  s.max_new = 16;
  s.threshold = 0.3f;
  s.revise_passes = 2;
  s.revise_threshold = 0.2f;
  s.record_trajectory = true;
  const Generation g = generate(lm, make_prompt(8, 24, 8), s);
  int revised = 0;
  for (const TrajectoryStep& t : g.trajectory) {
    if (t.kind != TrajectoryStep::Revise) continue;
    revised += static_cast<int>(t.positions.size());
    for (float c : t.confidences) CHECK(c >= 0.2f);
  }
  int counted = 0;
  for (const BlockStats& b : g.blocks) counted += b.revised;
  CHECK_EQ(revised, counted);
  CHECK(replay(g, 3, 16) == g.tokens);
}

TEST(sampler_context_limits) {
  FakeLM lm(24, 16, AttentionMode::Block, 4);
  SamplerSettings s = base_settings();
  s.max_new = 100;
  const Generation g = generate(lm, make_prompt(10, 24, 9), s);
  CHECK_EQ(g.tokens.size(), static_cast<size_t>(6));
  CHECK_EQ(g.context_clipped, 94);
  CHECK_THROWS(generate(lm, make_prompt(16, 24, 9), s));
  s.mode = DecodeMode::Diffusion;
  FakeLM causal(24, 16, AttentionMode::Causal, 4);
  CHECK_THROWS(generate(causal, make_prompt(3, 24, 9), s));  // diffusion needs a non-causal model
}

TEST(sampler_protocol_rejects_bad_requests_and_answers_good_ones) {
  FakeLM lm(24, 32, AttentionMode::Block, 4);
  auto parse = [](const std::string& s) { return sdt::io::Json::parse(s); };
  const auto bad_json = parse(handle_line(lm, "{not json"));
  CHECK(!bad_json.get("ok")->as_bool());
  const auto unknown = parse(handle_line(lm, R"({"id":"u","prompt":[5],"colour":1})"));
  CHECK(!unknown.get("ok")->as_bool());
  CHECK_EQ(unknown.get("id")->as_string(), std::string("u"));
  CHECK(unknown.get("error")->as_string().find("colour") != std::string::npos);
  std::string long_prompt = R"({"id":7,"prompt":[)";
  for (int i = 0; i < 40; ++i) long_prompt += (i ? ",5" : "5");
  long_prompt += "]}";
  const auto too_long = parse(handle_line(lm, long_prompt));
  CHECK(!too_long.get("ok")->as_bool());
  CHECK(too_long.get("error")->as_string().find("context") != std::string::npos);
  const auto bad_token = parse(handle_line(lm, R"({"id":1,"prompt":[99]})"));
  CHECK(!bad_token.get("ok")->as_bool());
  const auto ok = parse(handle_line(
      lm, R"({"id":"a","prompts":[[5,6,7],[8]],"max_new":6,"block":4,"threshold":0.9,"trajectory":true,"eos":-1})"));
  CHECK(ok.get("ok")->as_bool());
  const auto& results = *ok.get("results");
  CHECK_EQ(results.size(), static_cast<size_t>(2));
  CHECK_EQ(results.at(0).get("tokens")->size(), static_cast<size_t>(6));
  CHECK(results.at(0).get("trajectory")->size() > 0);
  // Same request through the library gives the same tokens.
  SamplerSettings s;
  s.max_new = 6;
  s.block_size = 4;
  s.eos_id = -1;
  const Generation g = generate(lm, {5, 6, 7}, s, 0);
  for (size_t i = 0; i < g.tokens.size(); ++i)
    CHECK_EQ(results.at(0).get("tokens")->at(i).as_int(), static_cast<int64_t>(g.tokens[i]));
}

TEST(sampler_observer_sees_every_step_live) {
  FakeLM lm(24, 64, AttentionMode::Block, 4, 8.0f);
  SamplerSettings s = base_settings();
  s.threshold = 0.4f;
  s.record_trajectory = true;
  const Generation recorded = generate(lm, make_prompt(6, 24, 10), s);
  s.record_trajectory = false;
  std::vector<TrajectoryStep> seen;
  const Generation live = generate(lm, make_prompt(6, 24, 10), s, 0,
                                   [&](size_t seq, const TrajectoryStep& t) {
                                     CHECK_EQ(seq, static_cast<size_t>(0));
                                     seen.push_back(t);
                                   });
  CHECK(live.trajectory.empty());
  CHECK(live.tokens == recorded.tokens);
  CHECK_EQ(seen.size(), recorded.trajectory.size());
  for (size_t k = 0; k < seen.size() && k < recorded.trajectory.size(); ++k) {
    CHECK(seen[k].positions == recorded.trajectory[k].positions);
    CHECK(seen[k].tokens == recorded.trajectory[k].tokens);
  }
  // Through the protocol: "stream": true sends one step event per step before the response.
  std::vector<std::string> events;
  const std::string last = handle_line(
      lm, R"({"id":"s","prompt":[5,6],"max_new":8,"block":4,"threshold":0.4,"stream":true,"eos":-1})",
      [&](const std::string& e) { events.push_back(e); });
  CHECK(!events.empty());
  for (const std::string& e : events) {
    const auto j = sdt::io::Json::parse(e);
    CHECK_EQ(j.get("event")->as_string(), std::string("step"));
    CHECK_EQ(j.get("id")->as_string(), std::string("s"));
  }
  CHECK(sdt::io::Json::parse(last).get("ok")->as_bool());
}

TEST(sampler_lockstep_batch_equals_one_by_one) {
  FakeLM lm(24, 64, AttentionMode::Block, 4, 5.0f);
  // Three prompts of length 6 decode as one group, the others alone; row 1 ends early at <|eos|>.
  const std::vector<std::vector<int32_t>> prompts = {make_prompt(6, 24, 1), make_prompt(6, 24, 2),
                                                     make_prompt(3, 24, 3), make_prompt(6, 24, 4),
                                                     make_prompt(9, 24, 5)};
  std::vector<SamplerSettings> variants;
  SamplerSettings s = base_settings();
  s.max_new = 18;
  s.threshold = 0.5f;
  s.record_trajectory = true;
  variants.push_back(s);
  s.temperature = 1.0f;
  s.top_p = 0.9f;
  s.seed = 5;
  variants.push_back(s);
  s.rule = CommitRule::Remask;
  s.steps_per_block = 3;
  variants.push_back(s);
  s.rule = CommitRule::Fixed;
  s.tokens_per_step = 2;
  s.revise_passes = 2;
  s.revise_threshold = 0.3f;
  variants.push_back(s);
  SamplerSettings ar = base_settings();
  ar.mode = DecodeMode::Autoregressive;
  ar.max_new = 10;
  variants.push_back(ar);
  for (size_t v = 0; v < variants.size(); ++v) {
    SamplerSettings settings = variants[v];
    // An <|eos|> that one of the rows produces, so rows of a group end at different blocks.
    settings.eos_id = generate(lm, prompts[1], settings, 1).tokens[5];
    const auto batch = generate_batch(lm, prompts, settings);
    for (size_t i = 0; i < prompts.size(); ++i) {
      const Generation one = generate(lm, prompts[i], settings, i);
      if (batch[i].tokens != one.tokens)
        sdt_test::fail(__FILE__, __LINE__, "variant " + std::to_string(v) + " prompt " + std::to_string(i));
      CHECK_EQ(batch[i].hit_eos, one.hit_eos);
      CHECK_EQ(batch[i].steps, one.steps);
      CHECK_EQ(batch[i].forward_passes, one.forward_passes);
      CHECK_EQ(batch[i].trajectory.size(), one.trajectory.size());
      CHECK_EQ(batch[i].blocks.size(), one.blocks.size());
    }
  }
  // The group shares its model calls.
  lm.calls = 0;
  (void)generate_batch(lm, {prompts[0], prompts[1], prompts[3]}, variants[0]);
  const int grouped = lm.calls;
  lm.calls = 0;
  for (size_t i : {0, 1, 3}) (void)generate(lm, prompts[i], variants[0], i);
  CHECK(grouped < lm.calls);
}

// A cancel poll that stops sequences {1, 3} when asked for the k-th time, and counts its calls.
struct CancelAt {
  int at;
  int calls = 0;
  void operator()(std::vector<uint8_t>& cancelled) {
    if (++calls == at) cancelled[1] = cancelled[3] = 1;
  }
};

// Rows cancelled mid-decode stop (fewer steps and model calls than decoded to the end, text a prefix
// of theirs); the rest of their group decodes exactly as each row alone.
TEST(sampler_cancelled_rows_stop_and_the_rest_decode_as_alone) {
  FakeLM lm(24, 64, AttentionMode::Block, 4, 5.0f);
  // Four prompts of length 6 form one lockstep group; prompt 4 decodes in a group of its own.
  std::vector<std::vector<int32_t>> prompts;
  for (int salt = 1; salt <= 4; ++salt) prompts.push_back(make_prompt(6, 24, salt));
  prompts.push_back(make_prompt(9, 24, 5));
  SamplerSettings diffusion = base_settings();
  diffusion.max_new = 24;
  diffusion.threshold = 0.5f;
  SamplerSettings sampled = diffusion;
  sampled.temperature = 1.0f;
  sampled.seed = 9;
  SamplerSettings ar = base_settings();
  ar.mode = DecodeMode::Autoregressive;
  ar.max_new = 12;
  for (const SamplerSettings& s : {diffusion, sampled, ar}) {
    lm.calls = 0;
    lm.rows_run = 0;
    const auto full = generate_batch(lm, prompts, s);
    const int full_calls = lm.calls;
    const long full_rows = lm.rows_run;
    lm.calls = 0;
    lm.rows_run = 0;
    CancelAt poll{4};  // one poll before the group, then before each model call: the 3rd call's turn
    const auto cut = generate_batch(lm, prompts, s, nullptr, std::ref(poll));
    CHECK(lm.calls <= full_calls);  // fewer when the cancelled rows were the group's slowest
    CHECK(lm.rows_run < full_rows);  // the cancelled rows left the model calls
    for (size_t i = 0; i < prompts.size(); ++i) {
      const Generation alone = generate(lm, prompts[i], s, i);
      if (i == 1 || i == 3) {
        CHECK(cut[i].cancelled);
        CHECK(cut[i].steps < alone.steps);
        CHECK(cut[i].forward_passes < alone.forward_passes);
        CHECK(cut[i].tokens.size() < alone.tokens.size());
        CHECK(std::equal(cut[i].tokens.begin(), cut[i].tokens.end(), alone.tokens.begin()));
      } else {
        CHECK(!cut[i].cancelled);
        CHECK(cut[i].tokens == alone.tokens);
        CHECK_EQ(cut[i].steps, alone.steps);
        CHECK_EQ(cut[i].forward_passes, alone.forward_passes);
      }
    }
  }
  // Every row cancelled: the batch ends at once, and a group not yet started never runs.
  lm.calls = 0;
  int polls = 0;
  const auto none = generate_batch(lm, prompts, diffusion, nullptr, [&](std::vector<uint8_t>& c) {
    if (++polls == 2) std::fill(c.begin(), c.end(), 1);
  });
  CHECK_EQ(lm.calls, 1);  // the first group's prefill
  for (const Generation& g : none) {
    CHECK(g.cancelled);
    CHECK(g.tokens.empty());
  }
  CHECK_EQ(none[4].group, -1);
}

// Each row reports its lockstep group and that group's model calls: summed over the groups they add
// up to the model's own count of calls, and a row alone in its group made them all.
TEST(sampler_group_forward_passes_are_the_model_calls) {
  FakeLM lm(24, 64, AttentionMode::Block, 4, 5.0f);
  const std::vector<std::vector<int32_t>> prompts = {make_prompt(6, 24, 1), make_prompt(6, 24, 2),
                                                     make_prompt(3, 24, 3), make_prompt(6, 24, 4),
                                                     make_prompt(9, 24, 5)};
  SamplerSettings s = base_settings();
  s.max_new = 18;
  s.threshold = 0.5f;
  s.eos_id = generate(lm, prompts[1], s, 1).tokens[5];  // rows of the group end at different blocks
  SamplerSettings ar = base_settings();
  ar.mode = DecodeMode::Autoregressive;
  ar.max_new = 10;
  SamplerSettings revised = s;
  revised.revise_passes = 2;
  revised.revise_threshold = 0.3f;
  for (const SamplerSettings& settings : {s, ar, revised}) {
    lm.calls = 0;
    const auto out = generate_batch(lm, prompts, settings);
    std::map<int, int> groups;
    for (const Generation& g : out) groups[g.group] = g.group_forward_passes;
    CHECK_EQ(groups.size(), size_t(3));
    int sum = 0;
    for (const auto& [group, passes] : groups) sum += passes;
    CHECK_EQ(sum, lm.calls);
    CHECK_EQ(out[2].group_forward_passes, out[2].forward_passes);  // alone in its group
    CHECK(out[0].group_forward_passes >= std::max({out[0].forward_passes, out[1].forward_passes, out[3].forward_passes}));
  }
}

TEST(sampler_error_budget_bounds_each_steps_summed_error) {
  FakeLM lm(24, 64, AttentionMode::Block, 8, 12.0f);
  for (CommitOrder order : {CommitOrder::Confidence, CommitOrder::LeftToRight}) {
    SamplerSettings s = base_settings();
    s.block_size = 8;
    s.max_new = 32;
    s.threshold = 0.3f;
    s.order = order;
    s.record_trajectory = true;
    const auto prompt = make_prompt(5, 24, 3);
    const Generation open = generate(lm, prompt, s);
    s.error_budget = 1e9f;  // never binding: the same decode
    const Generation loose = generate(lm, prompt, s);
    CHECK(loose.tokens == open.tokens);
    CHECK_EQ(loose.steps, open.steps);
    s.error_budget = 0.4f;
    const Generation tight = generate(lm, prompt, s);
    int multi = 0;
    for (const TrajectoryStep& t : tight.trajectory) {
      if (t.positions.size() < 2) continue;
      ++multi;
      double error = 0.0;
      for (float c : t.confidences) error += 1.0 - c;
      CHECK(error <= 0.4 + 1e-6);
    }
    // The budget binds on this model (more steps than without it) yet still commits several at once.
    CHECK(tight.steps > open.steps);
    CHECK(multi > 0);
    CHECK(replay(tight, 3, 32) == tight.tokens);
  }
  SamplerSettings bad = base_settings();
  bad.error_budget = -1.0f;
  FakeLM small(24, 64, AttentionMode::Block, 4);
  CHECK(!validate_settings(bad, small.config()).empty());
}
