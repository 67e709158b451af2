// KV-cache exactness: chunked decoding with the cache reproduces the full-sequence logits.
#include <algorithm>
#include <cmath>
#include <vector>

#include "model/model.h"
#include "test_model_util.h"

using sdt::AttentionMode;
using sdt_test::TestRng;

namespace {

std::vector<int32_t> random_ids(const sdt::ModelConfig& c, int n, TestRng& rng) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (auto& id : ids) id = rng.below(c.vocab_size);  // <|mask|> included: it is a valid input
  return ids;
}

// max |a - b| over finite entries; infinite entries must match exactly (the mask column).
double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isinf(a[i]) || std::isinf(b[i])) {
      if (a[i] != b[i]) return INFINITY;
      continue;
    }
    m = std::max(m, std::fabs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
  }
  return m;
}

// Bigger weights: attention patterns far from uniform, so a wrong mask shows in the logits.
void sharpen(sdt::Model& m) {
  for (auto& p : m.params())
    if (p.shape.size() == 2)
      for (int64_t i = 0; i < p.numel; ++i) p.data[i] *= 10.0f;
}

// tiny_config with 2 kv heads, untied, blocks of 4, initialised from `seed` and sharpened.
sdt::Model sharp_model(AttentionMode mode, uint64_t seed) {
  auto cfg = sdt_test::tiny_config(2, false, mode);
  cfg.block_size = 4;
  sdt::Model m(cfg);
  m.init(seed);
  sharpen(m);
  return m;
}

// Runs forward_chunk over [0, T) in chunks of `chunk` and gathers the logits row-major [B*T, V].
std::vector<float> chunked_logits(sdt::Model& m, const std::vector<int32_t>& ids, int B, int T, int chunk,
                                  AttentionMode mode, bool probe_without_append) {
  const int V = m.config().vocab_size;
  sdt::KVCache cache = m.make_cache(B, T);
  std::vector<float> out(static_cast<size_t>(B) * T * V);
  for (int s = 0; s < T; s += chunk) {
    const int C = std::min(chunk, T - s);
    std::vector<int32_t> cids(static_cast<size_t>(B) * C);
    for (int b = 0; b < B; ++b)
      for (int c = 0; c < C; ++c) cids[static_cast<size_t>(b) * C + c] = ids[static_cast<size_t>(b) * T + s + c];
    std::vector<float> logits(static_cast<size_t>(B) * C * V);
    if (probe_without_append) {
      // A sampler's denoising steps: same positions, other tokens, nothing committed.
      std::vector<int32_t> noise(cids.size(), m.config().mask_token_id);
      m.forward_chunk(cache, noise.data(), C, s, mode, logits.data(), false);
      CHECK_EQ(cache.length, s);
    }
    m.forward_chunk(cache, cids.data(), C, s, mode, logits.data(), true);
    CHECK_EQ(cache.length, s + C);
    for (int b = 0; b < B; ++b)
      std::copy_n(logits.data() + static_cast<size_t>(b) * C * V, static_cast<size_t>(C) * V,
                  out.data() + (static_cast<size_t>(b) * T + s) * V);
  }
  return out;
}

void check_cache(AttentionMode mode, int kv, bool tied, int chunk, bool probe, uint64_t seed) {
  TestRng rng(seed);
  auto cfg = sdt_test::tiny_config(kv, tied, mode);
  cfg.block_size = 4;
  sdt::Model m(cfg);
  m.init(seed);
  sharpen(m);
  const int B = 3, T = 14, V = cfg.vocab_size;
  const auto ids = random_ids(cfg, B * T, rng);
  std::vector<float> full(static_cast<size_t>(B) * T * V);
  m.forward_logits(ids.data(), B, T, mode, nullptr, full.data());
  const auto chunked = chunked_logits(m, ids, B, T, chunk, mode, probe);
  CHECK_NEAR(max_diff(full, chunked), 0.0, 1e-4);
}

}  // namespace

TEST(model_kvcache_block_by_block_equals_full_block_forward) {
  check_cache(AttentionMode::Block, 4, false, 4, false, 41);
  check_cache(AttentionMode::Block, 2, true, 4, true, 42);
  check_cache(AttentionMode::Block, 1, false, 4, true, 43);
}

TEST(model_kvcache_token_by_token_equals_full_causal_forward) {
  check_cache(AttentionMode::Causal, 4, true, 1, false, 44);
  check_cache(AttentionMode::Causal, 2, false, 1, true, 45);
  // Causal chunks larger than one token are causal inside the chunk too.
  check_cache(AttentionMode::Causal, 2, false, 5, false, 46);
}

TEST(model_kvcache_single_chunk_equals_full_bidirectional_forward) {
  check_cache(AttentionMode::Bidirectional, 2, false, 14, false, 47);
}

TEST(model_kvcache_block_mode_is_not_causal_inside_a_block) {
  // Sanity of the test above: changing a later token of the same block changes earlier logits
  // in Block mode and does not in Causal mode.
  TestRng rng(48);
  auto cfg = sdt_test::tiny_config(2, false, AttentionMode::Block);
  cfg.block_size = 4;
  sdt::Model m(cfg);
  m.init(5);
  const int T = 8, V = cfg.vocab_size;
  auto ids = random_ids(cfg, T, rng);
  auto changed = ids;
  changed[6] = (ids[6] + 1) % V;
  std::vector<float> a(static_cast<size_t>(T) * V), b(a.size());
  for (auto mode : {AttentionMode::Block, AttentionMode::Causal}) {
    m.forward_logits(ids.data(), 1, T, mode, nullptr, a.data());
    m.forward_logits(changed.data(), 1, T, mode, nullptr, b.data());
    double d_same_block = 0.0, d_prev_block = 0.0;
    for (int v = 0; v < V; ++v) {
      if (v == cfg.mask_token_id) continue;
      d_same_block = std::max(d_same_block, static_cast<double>(std::fabs(a[5 * V + v] - b[5 * V + v])));
      d_prev_block = std::max(d_prev_block, static_cast<double>(std::fabs(a[3 * V + v] - b[3 * V + v])));
    }
    CHECK_EQ(d_prev_block, 0.0);
    if (mode == AttentionMode::Block) CHECK(d_same_block > 1e-6);
    if (mode == AttentionMode::Causal) CHECK_EQ(d_same_block, 0.0);
  }
}

TEST(model_kvcache_rejects_bad_ranges) {
  auto cfg = sdt_test::tiny_config(2, false, AttentionMode::Block);
  sdt::Model m(cfg);
  m.init(1);
  auto cache = m.make_cache(1, 8);
  std::vector<int32_t> ids(4, 3);
  std::vector<float> logits(4 * static_cast<size_t>(cfg.vocab_size));
  CHECK_THROWS(m.forward_chunk(cache, ids.data(), 4, 4, AttentionMode::Block, logits.data(), true));  // gap
  m.forward_chunk(cache, ids.data(), 4, 0, AttentionMode::Block, logits.data(), true);
  m.forward_chunk(cache, ids.data(), 4, 4, AttentionMode::Block, logits.data(), true);
  CHECK_THROWS(m.forward_chunk(cache, ids.data(), 4, 8, AttentionMode::Block, logits.data(), true));  // full
  CHECK_THROWS(m.make_cache(1, cfg.max_position_embeddings + 1));
  ids[0] = cfg.vocab_size;
  CHECK_THROWS(m.forward_chunk(cache, ids.data(), 4, 0, AttentionMode::Block, logits.data(), false));
}

TEST(model_kvcache_probe_over_committed_positions_leaves_cache_intact) {
  TestRng rng(49);
  sdt::Model m = sharp_model(AttentionMode::Block, 49);
  const sdt::ModelConfig& cfg = m.config();
  const int B = 2, V = cfg.vocab_size;
  const auto ids = random_ids(cfg, B * 12, rng);  // three blocks per row
  auto chunk = [&](int s) {
    std::vector<int32_t> c;
    for (int b = 0; b < B; ++b) c.insert(c.end(), ids.begin() + b * 12 + s, ids.begin() + b * 12 + s + 4);
    return c;
  };
  std::vector<float> want(static_cast<size_t>(B) * 4 * V), got(want.size()), scratch(want.size());
  auto clean = m.make_cache(B, 12);
  for (int s = 0; s < 12; s += 4) m.forward_chunk(clean, chunk(s).data(), 4, s, AttentionMode::Block, want.data(), true);

  auto probed = m.make_cache(B, 12);
  m.forward_chunk(probed, chunk(0).data(), 4, 0, AttentionMode::Block, scratch.data(), true);
  m.forward_chunk(probed, chunk(4).data(), 4, 4, AttentionMode::Block, scratch.data(), true);
  // Probe block 1 again with other tokens, then rewind and recommit block 1 from scratch ids.
  std::vector<int32_t> other(static_cast<size_t>(B) * 4, cfg.mask_token_id);
  m.forward_chunk(probed, other.data(), 4, 4, AttentionMode::Block, scratch.data(), false);
  CHECK_EQ(probed.length, 8);
  m.forward_chunk(probed, chunk(8).data(), 4, 8, AttentionMode::Block, got.data(), true);
  CHECK_NEAR(max_diff(want, got), 0.0, 1e-5);

  m.forward_chunk(probed, other.data(), 4, 4, AttentionMode::Block, scratch.data(), true);  // rewind: commit other
  CHECK_EQ(probed.length, 8);
  m.forward_chunk(probed, chunk(4).data(), 4, 4, AttentionMode::Block, scratch.data(), true);  // and back
  m.forward_chunk(probed, chunk(8).data(), 4, 8, AttentionMode::Block, got.data(), true);
  CHECK_NEAR(max_diff(want, got), 0.0, 1e-5);
}

// A committed block written in the same call as the next block's first step (own_block) leaves the
// cache and the next block's logits as two separate calls do.
TEST(model_kvcache_own_block_equals_write_then_step) {
  for (AttentionMode mode : {AttentionMode::Block, AttentionMode::Bidirectional}) {
    TestRng rng(77);
    sdt::Model m = sharp_model(mode, 77);
    const sdt::ModelConfig& cfg = m.config();
    const int B = 2, V = cfg.vocab_size, P = 4, N = 4;
    const auto prompt = random_ids(cfg, B * P, rng);
    const auto committed = random_ids(cfg, B * N, rng);  // block [4, 8)
    std::vector<int32_t> next(static_cast<size_t>(B) * N, cfg.mask_token_id);  // block [8, 12)
    next[1] = committed[0];
    std::vector<float> scratch(static_cast<size_t>(B) * 2 * N * V);

    sdt::KVCache two = m.make_cache(B, 16), one = m.make_cache(B, 16);
    for (sdt::KVCache* c : {&two, &one}) m.forward_chunk(*c, prompt.data(), P, 0, mode, scratch.data(), true);
    // Two calls: write the committed block (a cache-only call: no logits), then the next block's step.
    std::vector<float> expect(static_cast<size_t>(B) * N * V);
    m.forward_chunk(two, committed.data(), N, P, mode, nullptr, true);
    m.forward_chunk(two, next.data(), N, P + N, mode, expect.data(), false);
    // One call: [committed ; next] with the committed block as its own block.
    std::vector<int32_t> fused;
    for (int b = 0; b < B; ++b) {
      fused.insert(fused.end(), committed.begin() + b * N, committed.begin() + (b + 1) * N);
      fused.insert(fused.end(), next.begin() + b * N, next.begin() + (b + 1) * N);
    }
    std::vector<float> got_all(static_cast<size_t>(B) * 2 * N * V), got;
    m.forward_chunk(one, fused.data(), 2 * N, P, mode, got_all.data(), true, N);
    for (int b = 0; b < B; ++b)
      got.insert(got.end(), got_all.begin() + (static_cast<size_t>(b) * 2 * N + N) * V,
                 got_all.begin() + (static_cast<size_t>(b) * 2 * N + 2 * N) * V);
    CHECK_NEAR(max_diff(expect, got), 0.0, 1e-4);
    // The cache then answers the same: a probe of the next block from both.
    std::vector<float> a(static_cast<size_t>(B) * N * V), c(a.size());
    m.forward_chunk(two, next.data(), N, P + N, mode, a.data(), false);
    m.forward_chunk(one, next.data(), N, P + N, mode, c.data(), false);
    CHECK_NEAR(max_diff(a, c), 0.0, 1e-4);
    // Without own_block the committed block would see the masked one: different cache, different logits.
    sdt::KVCache leak = m.make_cache(B, 16);
    m.forward_chunk(leak, prompt.data(), P, 0, mode, scratch.data(), true);
    m.forward_chunk(leak, fused.data(), 2 * N, P, mode, got_all.data(), true, 0);
    m.forward_chunk(leak, next.data(), N, P + N, mode, c.data(), false);
    CHECK(max_diff(a, c) > 1e-3);
  }
}

// The training layout against the decoding contract: in a two-stream row [noisy | clean], the logits
// of noisy block k equal a plain block-mode forward of clean blocks 0..k-1 followed by noisy block k
// (what the sampler sees when it denoises block k), and the clean stream equals a block-mode forward
// of the clean sequence alone.
TEST(model_two_stream_noisy_block_sees_a_clean_prefix) {
  TestRng rng(61);
  auto cfg = sdt_test::tiny_config(2, false, AttentionMode::Block);
  cfg.block_size = 4;
  sdt::Model m(cfg);
  m.init(61);
  sharpen(m);
  const int L = 14, V = cfg.vocab_size, bs = cfg.block_size;
  const auto clean = random_ids(cfg, L, rng);
  auto noisy = clean;
  for (auto& id : noisy)
    if (rng.below(2) == 0) id = cfg.mask_token_id;
  std::vector<int32_t> row(noisy);
  row.insert(row.end(), clean.begin(), clean.end());
  std::vector<float> two(static_cast<size_t>(2 * L) * V);
  m.forward_logits(row.data(), 1, 2 * L, AttentionMode::BlockTwoStream, nullptr, two.data());

  std::vector<float> clean_only(static_cast<size_t>(L) * V);
  m.forward_logits(clean.data(), 1, L, AttentionMode::Block, nullptr, clean_only.data());
  CHECK_NEAR(max_diff(std::vector<float>(two.begin() + static_cast<long>(L) * V, two.end()), clean_only), 0.0, 1e-4);

  for (int k = 0; k * bs < L; ++k) {
    const int end = std::min(L, (k + 1) * bs);
    std::vector<int32_t> seq(clean.begin(), clean.begin() + k * bs);
    seq.insert(seq.end(), noisy.begin() + k * bs, noisy.begin() + end);
    std::vector<float> ref(static_cast<size_t>(end) * V);
    m.forward_logits(seq.data(), 1, end, AttentionMode::Block, nullptr, ref.data());
    const std::vector<float> got(two.begin() + static_cast<long>(k) * bs * V, two.begin() + static_cast<long>(end) * V);
    const std::vector<float> want(ref.begin() + static_cast<long>(k) * bs * V, ref.end());
    CHECK_NEAR(max_diff(got, want), 0.0, 1e-4);
  }
}

TEST(model_two_stream_needs_an_even_row) {
  auto cfg = sdt_test::tiny_config(2, false, AttentionMode::Block);
  sdt::Model m(cfg);
  m.init(1);
  std::vector<int32_t> ids(5, 0);
  std::vector<float> out(static_cast<size_t>(5) * cfg.vocab_size);
  bool threw = false;
  try {
    m.forward_logits(ids.data(), 1, 5, AttentionMode::BlockTwoStream, nullptr, out.data());
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  CHECK(threw);
}

// pack_for_decoding changes speed, not results: chunked decoding (prefill, probes, appends) gives the same
// bits with and without the packs, over shapes that cross the GEMM's KC block; changing the weights through
// the parameter accessors drops the packs, so decoding sees the new weights.
TEST(model_decoding_packs_give_the_same_bits_and_follow_weight_changes) {
  for (AttentionMode mode : {AttentionMode::Block, AttentionMode::Causal}) {
    TestRng rng(91);
    auto cfg = sdt_test::tiny_config(2, false, mode);
    cfg.block_size = 4;
    cfg.intermediate_size = 300;  // the down projection's K spans two KC blocks
    sdt::Model m(cfg);
    m.init(91);
    sharpen(m);
    const int B = 2, T = 12;
    const auto ids = random_ids(cfg, B * T, rng);
    const auto plain = chunked_logits(m, ids, B, T, 4, mode, true);
    m.pack_for_decoding();
    const auto packed = chunked_logits(m, ids, B, T, 4, mode, true);
    CHECK(plain == packed);
    sharpen(m);  // through params(): the packs go
    const auto changed = chunked_logits(m, ids, B, T, 4, mode, true);
    CHECK(max_diff(plain, changed) > 1e-3);
    // The same weights in a model that was never packed: stale packs would leave the projections as they were.
    sdt::Model fresh(cfg);
    fresh.init(91);
    sharpen(fresh);
    sharpen(fresh);
    CHECK(chunked_logits(fresh, ids, B, T, 4, mode, true) == changed);
    m.pack_for_decoding();
    CHECK(chunked_logits(m, ids, B, T, 4, mode, true) == changed);
  }
}

// Logits of only some rows (the sampler's masked positions): those rows keep their bits, the others are not
// written, and the cache holds what a full call writes, with and without an own block, packed or not.
TEST(model_kvcache_logit_rows_keep_the_bits_of_the_rows_they_name) {
  for (bool packed : {false, true}) {
    TestRng rng(93);
    sdt::Model m = sharp_model(AttentionMode::Block, 93);
    const sdt::ModelConfig& cfg = m.config();
    if (packed) m.pack_for_decoding();
    const int B = 2, V = cfg.vocab_size, P = 4, C = 8, own = 4;
    const auto prompt = random_ids(cfg, B * P, rng);
    const auto chunk = random_ids(cfg, B * C, rng);
    std::vector<uint8_t> rows(static_cast<size_t>(B) * C, 0);
    for (size_t i = 0; i < rows.size(); ++i) rows[i] = rng.below(2) == 1 ? 1 : 0;
    rows[5] = 1;
    rows[static_cast<size_t>(C) + 6] = 0;
    const float sentinel = 12345.0f;
    for (int own_block : {0, own}) {
      sdt::KVCache all = m.make_cache(B, 16), some = m.make_cache(B, 16);
      std::vector<float> scratch(static_cast<size_t>(B) * P * V);
      for (sdt::KVCache* c : {&all, &some}) m.forward_chunk(*c, prompt.data(), P, 0, AttentionMode::Block, scratch.data(), true);
      std::vector<float> full(static_cast<size_t>(B) * C * V, sentinel), part(full.size(), sentinel);
      m.forward_chunk(all, chunk.data(), C, P, AttentionMode::Block, full.data(), true, own_block);
      m.forward_chunk(some, chunk.data(), C, P, AttentionMode::Block, part.data(), true, own_block, rows.data());
      int written = 0;
      for (int i = 0; i < B * C; ++i) {
        const float* a = full.data() + static_cast<size_t>(i) * V;
        const float* b = part.data() + static_cast<size_t>(i) * V;
        const bool named = rows[static_cast<size_t>(i)] != 0 && i % C >= own_block;
        if (named) {
          CHECK(std::equal(a, a + V, b));
          ++written;
        } else {
          CHECK(std::all_of(b, b + V, [&](float v) { return v == sentinel; }));
        }
      }
      CHECK(written > 0);
      // The same cache: a probe of the next block answers the same from both.
      const auto next = random_ids(cfg, B * 4, rng);
      std::vector<float> pa(static_cast<size_t>(B) * 4 * V), pb(pa.size());
      m.forward_chunk(all, next.data(), 4, P + C, AttentionMode::Block, pa.data(), false);
      m.forward_chunk(some, next.data(), 4, P + C, AttentionMode::Block, pb.data(), false);
      CHECK(pa == pb);
      // A cache-only call (no logits) writes the same keys/values as one with logits.
      sdt::KVCache quiet = m.make_cache(B, 16);
      m.forward_chunk(quiet, prompt.data(), P, 0, AttentionMode::Block, nullptr, true);
      m.forward_chunk(quiet, chunk.data(), C, P, AttentionMode::Block, nullptr, true, own_block);
      m.forward_chunk(quiet, next.data(), 4, P + C, AttentionMode::Block, pb.data(), false);
      CHECK(pa == pb);
    }
  }
}
