#include "sampler/decode.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "sampler/sampling.h"

namespace sdt::sampler {

const char* decode_mode_name(DecodeMode mode) {
  return mode == DecodeMode::Diffusion ? "diffusion" : "ar";
}

const char* commit_rule_name(CommitRule rule) {
  switch (rule) {
    case CommitRule::Threshold: return "threshold";
    case CommitRule::Fixed: return "fixed";
    case CommitRule::Remask: return "remask";
  }
  return "?";
}

const char* commit_order_name(CommitOrder order) {
  switch (order) {
    case CommitOrder::Confidence: return "confidence";
    case CommitOrder::Margin: return "margin";
    case CommitOrder::Entropy: return "entropy";
    case CommitOrder::Random: return "random";
    case CommitOrder::LeftToRight: return "left-to-right";
  }
  return "?";
}

bool parse_commit_order(const std::string& name, CommitOrder* out) {
  static const CommitOrder all[] = {CommitOrder::Confidence, CommitOrder::Margin, CommitOrder::Entropy,
                                    CommitOrder::Random, CommitOrder::LeftToRight};
  for (CommitOrder o : all) {
    if (name == commit_order_name(o)) {
      *out = o;
      return true;
    }
  }
  return false;
}

bool parse_decode_mode(const std::string& name, DecodeMode* out) {
  if (name == "diffusion") *out = DecodeMode::Diffusion;
  else if (name == "ar") *out = DecodeMode::Autoregressive;
  else return false;
  return true;
}

bool parse_commit_rule(const std::string& name, CommitRule* out) {
  if (name == "threshold") *out = CommitRule::Threshold;
  else if (name == "fixed") *out = CommitRule::Fixed;
  else if (name == "remask") *out = CommitRule::Remask;
  else return false;
  return true;
}

std::string validate_settings(const SamplerSettings& s, const ModelConfig& config) {
  if (s.max_new < 0) return "max_new must be >= 0";
  if (s.block_size < 1) return "block must be >= 1";
  if (!(s.threshold >= 0.0f && s.threshold <= 1.0f)) return "threshold must be in [0, 1]";
  if (s.max_per_step < 0) return "max_per_step must be >= 0 (0 = no cap)";
  if (!(s.error_budget >= 0.0f) || !std::isfinite(s.error_budget)) return "error_budget must be >= 0 (0 = off)";
  if (s.tokens_per_step < 1) return "tokens_per_step must be >= 1";
  if (s.steps_per_block < 0) return "steps_per_block must be >= 0 (0 = one per position)";
  if (s.rule == CommitRule::Remask && s.order != CommitOrder::Confidence)
    return "the remask rule re-scores committed tokens by probability: use order \"confidence\" with it";
  if (!(s.temperature >= 0.0f) || !std::isfinite(s.temperature)) return "temperature must be >= 0";
  if (!(s.top_p > 0.0f && s.top_p <= 1.0f)) return "top_p must be in (0, 1]";
  if (s.refresh_every < 0) return "refresh_every must be >= 0 (0 = never)";
  if (s.revise_passes < 0) return "revise_passes must be >= 0";
  if (!(s.revise_threshold >= 0.0f && s.revise_threshold <= 1.0f)) return "revise_threshold must be in [0, 1]";
  if (s.eos_id < -2 || s.eos_id >= config.vocab_size) return "eos must be a token id, -1 (none) or -2 (the checkpoint's)";
  if (s.mode == DecodeMode::Diffusion) {
    if (config.mask_token_id < 0) return "the checkpoint has no mask_token_id: diffusion decoding needs one";
    if (config.attention_mode == AttentionMode::Causal)
      return "the checkpoint is causal: decode it with mode \"ar\" (sdt sample/eval --ar; bench sample and report pareto take it as --ar-ckpt), not diffusion";
  }
  return "";
}

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Order positions by score, highest first; ties go to the leftmost position so runs repeat.
void sort_by_score(std::vector<int>& idx, const std::vector<float>& score) {
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) {
    return score[static_cast<size_t>(a)] > score[static_cast<size_t>(b)];
  });
}

// One sequence of a group decoded in lockstep: its random stream, its output, and the state of the
// block being filled.
struct Row {
  Row(const std::vector<int32_t>& p, uint64_t seed, size_t idx) : prompt(p), rng(seed), index(idx) {}
  const std::vector<int32_t>& prompt;  // left-padded to the group's length when pad > 0
  Rng rng;
  size_t index;  // position in the caller's batch (observer, seeds)
  int pad = 0;   // leading padding positions of prompt (LMCache::set_row_starts)
  Generation g;
  bool active = true;  // false once <|eos|> was committed
  int total = 0;       // positions it generates (max_new clipped to the context)
  int done = 0;        // generated positions of its finished blocks
  int tail = 0;        // prompt positions its first block holds (aligned blocks)
  // Block state.
  bool in_block = false;  // has positions to generate in the current block
  int lead = 0;           // prompt positions ahead of them in the chunk (the tail, first block only)
  int n = 0;              // positions it generates in the block
  std::vector<int32_t> ids;  // prompt tail + block
  std::vector<uint8_t> committed;
  std::vector<float> conf;
  std::vector<float> rank;  // the commit order's score of each position
  std::vector<int32_t> proposal;
  BlockStats stats;
  bool revising = false;
};

// Decodes prompts of equal length together: every model call covers all rows of the group (one
// KV-cache row each), so the weights are read once per step for the whole group. Rows that are done
// with a block (or ended at <|eos|>, or were cancelled) ride along until the others catch up; their
// steps and forward passes are not counted. passes() counts the group's model calls.
class GroupDecoder {
 public:
  GroupDecoder(const LanguageModel& model, const SamplerSettings& s, const StepObserver& observer,
               const CancelPoll& cancel, std::vector<uint8_t>& cancelled)
      : model_(model),
        cfg_(model.config()),
        s_(s),
        vocab_(cfg_.vocab_size),
        banned_(cfg_.vocab_size, model.never_emit()),
        eos_(s.eos_id == -2 ? cfg_.eos_token_id : s.eos_id),
        observer_(observer),
        cancel_(cancel),
        cancelled_(cancelled),
        steps_wanted_(s.record_trajectory || observer != nullptr) {
    choice_.temperature = s.temperature;
    choice_.top_p = s.top_p;
    choice_.describe = s.order == CommitOrder::Margin || s.order == CommitOrder::Entropy;
  }

  void diffusion(std::vector<Row>& rows);
  void autoregressive(std::vector<Row>& rows);
  int passes() const { return passes_; }

 private:
  // Asks the cancel poll which sequences to stop and stops those rows that are still decoding; returns
  // whether any stopped now. A row that already ended keeps its complete result.
  // Drops the rows of `live` (the cache's rows, in order) that `keep` rejects from the cache, when it can
  // (LMCache::keep_rows), so later calls run only the others; per_slot (indexed like live) follows. Keeps
  // at least one row. Rows it cannot drop ride along in every call, as before.
  template <class Keep>
  void drop_rows(LMCache& cache, std::vector<Row*>& live, Keep keep,
                 std::vector<std::vector<int32_t>>* per_slot = nullptr) {
    std::vector<int> kept;
    for (size_t r = 0; r < live.size(); ++r)
      if (keep(*live[r])) kept.push_back(static_cast<int>(r));
    if (kept.empty() || kept.size() == live.size() || !cache.keep_rows(kept)) return;
    std::vector<Row*> next;
    for (int r : kept) next.push_back(live[static_cast<size_t>(r)]);
    live.swap(next);
    if (per_slot != nullptr && !per_slot->empty()) {
      for (size_t i = 0; i < kept.size(); ++i) (*per_slot)[i].swap((*per_slot)[static_cast<size_t>(kept[i])]);
      per_slot->resize(kept.size());
    }
  }

  bool poll_cancel(std::vector<Row>& rows) {
    if (!cancel_) return false;
    cancel_(cancelled_);
    bool any = false;
    for (Row& row : rows) {
      if (row.active && cancelled_[row.index]) {
        row.active = false;
        row.g.cancelled = true;
        any = true;
      }
    }
    return any;
  }
  // Logits of block position i (counted from the chunk's start, prompt tail included) of row r. The
  // last forward may have run a committed block ahead of the chunk (logit_offset_ positions per row).
  const float* row_logits(size_t r, int chunk_len, int i) const {
    const size_t stride = static_cast<size_t>(chunk_len + logit_offset_);
    return logits_.data() + (r * stride + static_cast<size_t>(logit_offset_ + i)) * static_cast<size_t>(vocab_);
  }
  // Runs the same chunk positions for every row; `ids` holds rows.size() * n ids.
  // `read` (one flag per id, null: all) names the positions whose logits will be read.
  void forward(LMCache& cache, const std::vector<int32_t>& ids, int n, int start, AttentionMode within,
               bool want_logits, bool append, int own_block = 0, const std::vector<uint8_t>* read = nullptr) {
    if (want_logits) logits_.resize(ids.size() * static_cast<size_t>(vocab_));
    logit_offset_ = own_block;
    ++passes_;
    model_.forward_chunk(cache, ids.data(), n, start, within, want_logits ? logits_.data() : nullptr, append,
                         own_block, read != nullptr ? read->data() : nullptr);
  }
  // The chunk positions a step of the rows in `working` reads (diffusion_step): their masked positions, and
  // under the remask rule their committed ones too. `width` positions per row, `offset` of them ahead of
  // the chunk (a pending block).
  void mark_read(const std::vector<Row*>& live, const std::vector<size_t>& working, int width, int offset) {
    read_.assign(live.size() * static_cast<size_t>(width), 0);
    for (size_t r : working) {
      const Row& row = *live[r];
      uint8_t* flags = read_.data() + r * static_cast<size_t>(width) + offset + row.lead;
      for (int i = 0; i < row.n; ++i)
        flags[i] = s_.rule == CommitRule::Remask || !row.committed[static_cast<size_t>(i)] ? 1 : 0;
    }
  }
  int clip_total(int prompt_len) const {
    const int ctx = cfg_.max_position_embeddings;
    if (prompt_len >= ctx)
      throw std::invalid_argument("the prompt has " + std::to_string(prompt_len) + " tokens but the context holds " +
                                  std::to_string(ctx) + "; shorten it to leave room for generation");
    return std::min(s_.max_new, ctx - prompt_len);
  }
  void emit(Row& row, TrajectoryStep&& t) {
    if (observer_) observer_(row.index, t);
    if (s_.record_trajectory) row.g.trajectory.push_back(std::move(t));
  }
  float order_score(const TokenChoice& c, int position, Rng& rng) const {
    switch (s_.order) {
      case CommitOrder::Confidence: return c.confidence;
      case CommitOrder::Margin: return c.margin;
      case CommitOrder::Entropy: return c.certainty;
      case CommitOrder::Random: return static_cast<float>(rng.next_double());
      case CommitOrder::LeftToRight: return -static_cast<float>(position);
    }
    return c.confidence;
  }
  void diffusion_step(Row& row, int tail, int n, int done, int block, int chunk_len, size_t r);
  void revise_pass(Row& row, int tail, int n, int done, int block, int chunk_len, size_t r, int pass);

  const LanguageModel& model_;
  const ModelConfig& cfg_;
  const SamplerSettings& s_;
  const int vocab_;
  BannedTokens banned_;
  ChoiceRule choice_;
  const int32_t eos_;
  const StepObserver& observer_;
  const CancelPoll& cancel_;
  std::vector<uint8_t>& cancelled_;  // per sequence of the batch
  const bool steps_wanted_;
  int passes_ = 0;
  std::vector<float> logits_;
  std::vector<uint8_t> read_;  // mark_read's flags
  int logit_offset_ = 0;
  std::vector<float> scratch_;
};

// Rows left-padded to the group's prompt length start after their padding.
void set_row_starts(LMCache& cache, const std::vector<Row>& rows) {
  if (std::none_of(rows.begin(), rows.end(), [](const Row& row) { return row.pad > 0; })) return;
  std::vector<int> starts;
  for (const Row& row : rows) starts.push_back(row.pad);
  cache.set_row_starts(starts);
}

// Work remains while a masked position precedes the first committed <|eos|>.
bool needs_work(const Row& row, int tail, int n, int32_t eos) {
  for (int i = 0; i < n; ++i) {
    if (!row.committed[static_cast<size_t>(i)]) return true;
    if (row.ids[static_cast<size_t>(tail + i)] == eos) return false;
  }
  return false;
}

// The first committed <|eos|> of the block (n when none).
int eos_at(const Row& row, int tail, int n, int32_t eos) {
  for (int i = 0; i < n; ++i) {
    if (row.committed[static_cast<size_t>(i)] && row.ids[static_cast<size_t>(tail + i)] == eos) return i;
  }
  return n;
}

void GroupDecoder::diffusion_step(Row& row, int tail, int n, int done, int block, int chunk_len, size_t r) {
  const int32_t mask = cfg_.mask_token_id;
  const int step = row.stats.steps;
  ++row.stats.forward_passes;
  ++row.stats.steps;
  auto gen = [&](int i) -> int32_t& { return row.ids[static_cast<size_t>(tail + i)]; };
  std::vector<float>& conf = row.conf;
  std::vector<int> candidates;
  for (int i = 0; i < n; ++i) {
    const float* lg = row_logits(r, chunk_len, tail + i);
    if (row.committed[static_cast<size_t>(i)]) {
      if (s_.rule == CommitRule::Remask) {
        conf[static_cast<size_t>(i)] = token_probability(lg, vocab_, banned_, s_.temperature, gen(i));
        candidates.push_back(i);
      }
      continue;
    }
    const TokenChoice c = choose_token(lg, vocab_, banned_, choice_, row.rng, scratch_);
    row.proposal[static_cast<size_t>(i)] = c.token;
    conf[static_cast<size_t>(i)] = c.confidence;
    row.rank[static_cast<size_t>(i)] = order_score(c, i, row.rng);
    candidates.push_back(i);
  }
  // Remask ranks committed and masked positions together, by probability (validate_settings).
  sort_by_score(candidates, s_.rule == CommitRule::Remask ? conf : row.rank);
  std::vector<int> commit, remask;
  if (s_.rule == CommitRule::Threshold) {
    const bool own_score = s_.order == CommitOrder::Confidence || s_.order == CommitOrder::Margin ||
                           s_.order == CommitOrder::Entropy;
    // Random order takes as many positions as the confidence rule would; left-to-right takes the
    // leftmost masked positions up to the first below the threshold, so no token is committed before
    // the tokens to its left (measured on the synthetic world: far closer to one-token-per-step quality
    // than the count rule at fewer passes, docs/synth.md).
    size_t quota = 0;
    if (s_.order == CommitOrder::Random)
      for (int i : candidates) quota += conf[static_cast<size_t>(i)] >= s_.threshold ? 1 : 0;
    double error = 0.0;
    for (int i : candidates) {
      const float c = conf[static_cast<size_t>(i)];
      if (!commit.empty()) {
        if (own_score && row.rank[static_cast<size_t>(i)] < s_.threshold) break;
        if (s_.order == CommitOrder::Random && commit.size() >= quota) break;
        if (s_.order == CommitOrder::LeftToRight && c < s_.threshold) break;
        if (s_.error_budget > 0.0f && error + (1.0 - c) > s_.error_budget) break;
      }
      error += 1.0 - c;
      commit.push_back(i);
      if (s_.max_per_step > 0 && static_cast<int>(commit.size()) >= s_.max_per_step) break;
    }
  } else if (s_.rule == CommitRule::Fixed) {
    const size_t k = std::min(candidates.size(), static_cast<size_t>(s_.tokens_per_step));
    commit.assign(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(k));
  } else {
    const int steps = s_.steps_per_block > 0 ? s_.steps_per_block : n;
    const int64_t keep64 = (static_cast<int64_t>(n) * (step + 1) + steps - 1) / steps;
    const int keep = static_cast<int>(std::min<int64_t>(std::max<int64_t>(keep64, 1), n));
    for (size_t k = 0; k < candidates.size(); ++k) {
      const int i = candidates[k];
      const bool kept = static_cast<int>(k) < keep;
      if (kept && !row.committed[static_cast<size_t>(i)]) commit.push_back(i);
      if (!kept && row.committed[static_cast<size_t>(i)]) remask.push_back(i);
    }
    if (commit.empty() && remask.empty()) {
      // Keep making progress even when the schedule has no new slot this step.
      for (int i : candidates) {
        if (!row.committed[static_cast<size_t>(i)]) {
          commit.push_back(i);
          break;
        }
      }
    }
  }
  if (!remask.empty()) {
    std::sort(remask.begin(), remask.end());
    TrajectoryStep t;
    t.block = block;
    t.step = step;
    t.kind = TrajectoryStep::Remask;
    for (int i : remask) {
      row.committed[static_cast<size_t>(i)] = 0;
      gen(i) = mask;
      if (steps_wanted_) {
        t.positions.push_back(done + i);
        t.tokens.push_back(mask);
        t.confidences.push_back(conf[static_cast<size_t>(i)]);
      }
    }
    if (steps_wanted_) emit(row, std::move(t));
  }
  TrajectoryStep t;
  t.block = block;
  t.step = step;
  t.kind = TrajectoryStep::Commit;
  std::sort(commit.begin(), commit.end());
  for (int i : commit) {
    row.committed[static_cast<size_t>(i)] = 1;
    gen(i) = row.proposal[static_cast<size_t>(i)];
    if (steps_wanted_) {
      t.positions.push_back(done + i);
      t.tokens.push_back(gen(i));
      t.confidences.push_back(conf[static_cast<size_t>(i)]);
    }
  }
  if (steps_wanted_) emit(row, std::move(t));
}

void GroupDecoder::revise_pass(Row& row, int tail, int n, int done, int block, int chunk_len, size_t r, int pass) {
  const ChoiceRule greedy{};
  ++row.stats.forward_passes;
  TrajectoryStep t;
  t.block = block;
  t.step = row.stats.steps + pass;  // numbered after the block's commit steps
  t.kind = TrajectoryStep::Revise;
  const int e = eos_at(row, tail, n, eos_);
  const int limit = e < n ? e + 1 : n;
  for (int i = 0; i < limit; ++i) {
    int32_t& tok = row.ids[static_cast<size_t>(tail + i)];
    const TokenChoice c = choose_token(row_logits(r, chunk_len, tail + i), vocab_, banned_, greedy, row.rng, scratch_);
    if (c.token != tok && c.confidence >= s_.revise_threshold) {
      tok = c.token;
      row.committed[static_cast<size_t>(i)] = 1;
      t.positions.push_back(done + i);
      t.tokens.push_back(c.token);
      t.confidences.push_back(c.confidence);
    }
  }
  if (t.positions.empty()) {
    row.revising = false;
    return;
  }
  row.stats.revised += static_cast<int>(t.positions.size());
  if (steps_wanted_) emit(row, std::move(t));
}

void GroupDecoder::diffusion(std::vector<Row>& rows) {
  const size_t R = rows.size();
  const int B = s_.block_size;
  const int32_t mask = cfg_.mask_token_id;
  const bool aligned = s_.align_blocks && cfg_.attention_mode == AttentionMode::Block;
  // With aligned blocks the prompt's complete blocks go in one by one, exactly as a block-causal forward
  // sees them, and its partial last block (the tail) is re-run with each step of the first block. Every
  // row's complete blocks (its padding included) end at one position, prefix_end (generate_batch lays
  // them out so), and its tail may differ from the others'; without aligned blocks prompts end together.
  int prefix_end = -1;
  for (Row& row : rows) {
    const int text = static_cast<int>(row.prompt.size());
    const int own = text - row.pad;
    row.total = clip_total(own);
    row.g.context_clipped = s_.max_new - row.total;
    const int end = aligned ? row.pad + (own / B) * B : text;
    if (prefix_end >= 0 && end != prefix_end) throw std::logic_error("sampler: a group's prompts end at different blocks");
    prefix_end = end;
    row.tail = text - end;
  }
  auto cache = model_.new_cache(static_cast<int>(R));
  set_row_starts(*cache, rows);
  std::vector<Row*> live;  // the cache's rows, in order
  for (Row& row : rows) live.push_back(&row);
  std::vector<int32_t> batch_ids;
  std::vector<int> lengths;

  const auto t_prefill = Clock::now();
  auto prefill = [&](int from, int len) {
    batch_ids.clear();
    for (const Row& row : rows) batch_ids.insert(batch_ids.end(), row.prompt.begin() + from, row.prompt.begin() + from + len);
    forward(*cache, batch_ids, len, from, AttentionMode::Bidirectional, false, true);
    // A pass over a row's padding alone is one it would not have made decoded by itself.
    for (Row& row : rows)
      if (from + len > row.pad) ++row.g.forward_passes;
  };
  if (aligned) {
    for (int b = 0; b < prefix_end; b += B) prefill(b, B);
  } else if (prefix_end > 0) {
    prefill(0, prefix_end);
  }
  const double prefill_ms = ms_since(t_prefill);

  const auto t_decode = Clock::now();
  // The finished block whose keys/values are not in the cache yet: they are written by the first
  // step of the next block (one model call instead of two; its positions form a block of their own
  // inside that call, so the cache holds exactly what a separate write would have put there).
  struct Pending {
    int start = 0;
    int len = 0;
    std::vector<std::vector<int32_t>> ids;  // per row, len each
  } pending;
  auto has_work = [](const Row& row) { return row.active && row.done < row.total; };
  // Row r's chunk, then masks up to `width`.
  auto append_chunk = [&](std::vector<int32_t>& out, const std::vector<int32_t>& chunk, int width) {
    out.insert(out.end(), chunk.begin(), chunk.end());
    out.insert(out.end(), static_cast<size_t>(width) - chunk.size(), mask);
  };
  for (int block = 0; std::any_of(rows.begin(), rows.end(), has_work); ++block) {
    const int chunk_start = prefix_end + block * B;
    // Rows that ended (at <|eos|>, their last block, a cancel) leave the cache; a finished block of theirs
    // waiting to be written is not needed.
    drop_rows(*cache, live, has_work, &pending.ids);
    // Each row's chunk: its prompt tail (first block only) and the positions it still generates here. The
    // group's chunk is the longest; a row's shorter one (its last block) is padded and masked off.
    int C = 0;
    for (Row& row : rows) {
      row.in_block = has_work(row);
      row.lead = block == 0 ? row.tail : 0;
      row.n = row.in_block ? std::min(B - row.lead, row.total - row.done) : 0;
      if (row.in_block) C = std::max(C, row.lead + row.n);
    }
    bool ragged = false;
    for (Row& row : rows) {
      const int len = row.in_block ? row.lead + row.n : C;
      ragged = ragged || len < C;
      // Rows that ended still feed a block (their cache rows are never read), all masked.
      row.ids.assign(static_cast<size_t>(len), mask);
      if (row.lead > 0) std::copy(row.prompt.end() - row.lead, row.prompt.end(), row.ids.begin());
      row.committed.assign(static_cast<size_t>(row.n), 0);
      row.conf.assign(static_cast<size_t>(row.n), 0.0f);
      row.rank.assign(static_cast<size_t>(row.n), 0.0f);
      row.proposal.assign(static_cast<size_t>(row.n), mask);
      row.stats = BlockStats{};
      row.stats.start = row.done;
      row.stats.size = row.n;
    }
    if (ragged && !model_.ragged_chunks()) throw std::logic_error("sampler: rows of different chunk lengths in one group");
    // Before each call: how many of its positions each row really runs (0: all), `lead` ahead of its chunk.
    auto set_lengths = [&](int lead) {
      if (!model_.ragged_chunks()) return;
      lengths.assign(live.size(), 0);
      for (size_t r = 0; r < live.size(); ++r) {
        const int len = static_cast<int>(live[r]->ids.size());
        if (ragged && len < C) lengths[r] = lead + len;
      }
      cache->set_chunk_lengths(lengths);
    };
    auto gather = [&]() {
      batch_ids.clear();
      for (const Row* row : live) append_chunk(batch_ids, row->ids, C);
      set_lengths(0);
    };
    for (;;) {
      if (poll_cancel(rows)) {
        // A row cancelled inside the block keeps the blocks it finished; this one's work is counted.
        for (Row& row : rows) {
          if (!row.in_block || !row.g.cancelled) continue;
          row.in_block = false;
          row.g.steps += row.stats.steps;
          row.g.forward_passes += row.stats.forward_passes;
          if (row.stats.forward_passes > 0) row.g.blocks.push_back(row.stats);
        }
        drop_rows(*cache, live, [](const Row& row) { return !row.g.cancelled; }, &pending.ids);
      }
      std::vector<size_t> working;  // slots of live
      for (size_t r = 0; r < live.size(); ++r)
        if (live[r]->in_block && needs_work(*live[r], live[r]->lead, live[r]->n, eos_)) working.push_back(r);
      if (working.empty()) break;
      if (pending.len > 0) {
        batch_ids.clear();
        for (size_t r = 0; r < live.size(); ++r) {
          batch_ids.insert(batch_ids.end(), pending.ids[r].begin(), pending.ids[r].end());
          append_chunk(batch_ids, live[r]->ids, C);
        }
        set_lengths(pending.len);
        mark_read(live, working, pending.len + C, pending.len);
        forward(*cache, batch_ids, pending.len + C, pending.start, AttentionMode::Bidirectional, true, true,
                pending.len, &read_);
        pending.len = 0;
      } else {
        gather();
        mark_read(live, working, C, 0);
        forward(*cache, batch_ids, C, chunk_start, AttentionMode::Bidirectional, true, false, 0, &read_);
      }
      for (size_t r : working) {
        Row& row = *live[r];
        diffusion_step(row, row.lead, row.n, row.done, block, C, r);
      }
    }
    if (s_.revise_passes > 0) {
      for (Row& row : rows) row.revising = row.in_block;
      for (int pass = 0; pass < s_.revise_passes; ++pass) {
        if (std::none_of(rows.begin(), rows.end(), [](const Row& row) { return row.revising; })) break;
        gather();
        forward(*cache, batch_ids, C, chunk_start, AttentionMode::Bidirectional, true, false);
        for (size_t r = 0; r < live.size(); ++r) {
          Row& row = *live[r];
          if (row.revising) revise_pass(row, row.lead, row.n, row.done, block, C, r, pass);
        }
      }
    }
    // The first <|eos|> ends a row's text; what its block holds after it is dropped.
    for (Row& row : rows) {
      if (!row.in_block) continue;
      const int cut = eos_at(row, row.lead, row.n, eos_);
      for (int i = 0; i < cut; ++i) row.g.tokens.push_back(row.ids[static_cast<size_t>(row.lead + i)]);
      if (cut < row.n) {
        row.g.hit_eos = true;
        row.active = false;
      }
      row.done += row.n;
    }
    if (std::any_of(rows.begin(), rows.end(), has_work)) {
      const bool refresh = cfg_.attention_mode == AttentionMode::Bidirectional && s_.refresh_every > 0 &&
                           (block + 1) % s_.refresh_every == 0;
      if (refresh) {
        // Recompute every committed key so earlier positions see the blocks that followed them. (Not
        // aligned: every prompt ends at prefix_end and every row still decoding has done as much.)
        cache->clear();
        batch_ids.clear();
        const int end = chunk_start + C;
        for (const Row* row : live) {
          batch_ids.insert(batch_ids.end(), row->prompt.begin(), row->prompt.end());
          // Ended rows are padded to the common length; nothing reads their cache rows.
          std::vector<int32_t> text = row->g.tokens;
          text.resize(static_cast<size_t>(end - prefix_end), mask);
          batch_ids.insert(batch_ids.end(), text.begin(), text.end());
        }
        if (model_.ragged_chunks()) cache->set_chunk_lengths(std::vector<int>(live.size(), 0));
        forward(*cache, batch_ids, end, 0, AttentionMode::Bidirectional, false, true);
        for (Row& row : rows)
          if (row.active) ++row.stats.forward_passes;
      } else {
        // A block is entered only while some row has work, and such a row's block starts all masked,
        // so its first step always runs and writes the pending block. A row that goes on ran a whole
        // block here, so the longest chunk is a whole block and no row's part of it is masked off.
        if (pending.len > 0) throw std::logic_error("sampler: a finished block never reached the KV cache");
        pending.start = chunk_start;
        pending.len = C;
        pending.ids.resize(live.size());
        for (size_t r = 0; r < live.size(); ++r) {
          pending.ids[r].clear();
          append_chunk(pending.ids[r], live[r]->ids, C);
        }
      }
    }
    for (Row& row : rows) {
      if (!row.in_block) continue;
      row.g.steps += row.stats.steps;
      row.g.forward_passes += row.stats.forward_passes;
      row.g.blocks.push_back(row.stats);
    }
  }
  const double decode_ms = ms_since(t_decode);
  for (Row& row : rows) {
    row.g.prefill_ms = prefill_ms;
    row.g.decode_ms = decode_ms;
  }
}

void GroupDecoder::autoregressive(std::vector<Row>& rows) {
  const size_t R = rows.size();
  const int P = static_cast<int>(rows[0].prompt.size());
  if (P == 0) throw std::invalid_argument("AR decoding needs a non-empty prompt (e.g. start with <|bos|>)");
  const int total = clip_total(P);
  for (Row& row : rows) row.g.context_clipped = s_.max_new - total;
  auto cache = model_.new_cache(static_cast<int>(R));
  set_row_starts(*cache, rows);
  std::vector<int32_t> batch_ids;
  const auto t_prefill = Clock::now();
  if (P > 1) {
    for (const Row& row : rows) batch_ids.insert(batch_ids.end(), row.prompt.begin(), row.prompt.end() - 1);
    forward(*cache, batch_ids, P - 1, 0, AttentionMode::Causal, false, true);
    for (Row& row : rows)
      if (P - 1 > row.pad) ++row.g.forward_passes;
  }
  batch_ids.clear();
  for (const Row& row : rows) batch_ids.push_back(row.prompt.back());
  forward(*cache, batch_ids, 1, P - 1, AttentionMode::Causal, true, true);
  for (Row& row : rows) ++row.g.forward_passes;
  const double prefill_ms = ms_since(t_prefill);

  const auto t_decode = Clock::now();
  std::vector<Row*> live;  // the cache's rows, in order
  for (Row& row : rows) {
    row.stats = BlockStats{};
    live.push_back(&row);
  }
  for (int k = 0; k < total; ++k) {
    poll_cancel(rows);
    bool any = false;
    for (size_t r = 0; r < live.size(); ++r) {
      Row& row = *live[r];
      if (!row.active) continue;
      const TokenChoice c = choose_token(row_logits(r, 1, 0), vocab_, banned_, choice_, row.rng, scratch_);
      ++row.stats.steps;
      if (steps_wanted_) {
        TrajectoryStep t;
        t.block = 0;
        t.step = k;
        t.positions.push_back(k);
        t.tokens.push_back(c.token);
        t.confidences.push_back(c.confidence);
        emit(row, std::move(t));
      }
      if (c.token == eos_) {
        row.g.hit_eos = true;
        row.active = false;
        continue;
      }
      row.g.tokens.push_back(c.token);
      batch_ids[r] = c.token;
      any = true;
    }
    if (!any || k + 1 >= total) break;
    // Rows that ended leave the cache (their next token is never read).
    for (size_t r = 0; r < live.size(); ++r) live[r]->ids.assign(1, batch_ids[r]);
    drop_rows(*cache, live, [](const Row& row) { return row.active; });
    batch_ids.clear();
    for (const Row* row : live) batch_ids.push_back(row->ids[0]);
    forward(*cache, batch_ids, 1, P + k, AttentionMode::Causal, true, true);
    for (Row& row : rows)
      if (row.active) ++row.stats.forward_passes;
  }
  const double decode_ms = ms_since(t_decode);
  // The pass that produced the first token's logits belongs to the prefill; count it there only.
  for (Row& row : rows) {
    row.stats.size = row.stats.steps;
    row.g.steps = row.stats.steps;
    row.g.forward_passes += row.stats.forward_passes;
    row.g.blocks.push_back(row.stats);
    row.g.prefill_ms = prefill_ms;
    row.g.decode_ms = decode_ms;
  }
}

void check_prompt(const std::vector<int32_t>& prompt, const ModelConfig& c, size_t which) {
  for (size_t i = 0; i < prompt.size(); ++i) {
    if (prompt[i] < 0 || prompt[i] >= c.vocab_size)
      throw std::invalid_argument("prompt " + std::to_string(which) + " token " + std::to_string(i) + " (" +
                                  std::to_string(prompt[i]) + ") is outside the vocabulary [0, " +
                                  std::to_string(c.vocab_size) + ")");
  }
}

// Decodes one lockstep group; each row's Generation gets the group's number and model calls.
void decode_group(const LanguageModel& model, const SamplerSettings& settings, const StepObserver& observer,
                  std::vector<Row>& rows, int group, const CancelPoll& cancel, std::vector<uint8_t>& cancelled) {
  GroupDecoder decoder(model, settings, observer, cancel, cancelled);
  if (settings.mode == DecodeMode::Diffusion) decoder.diffusion(rows);
  else decoder.autoregressive(rows);
  for (Row& row : rows) {
    row.g.group = group;
    row.g.group_forward_passes = decoder.passes();
  }
}

}  // namespace

Generation generate(const LanguageModel& model, const std::vector<int32_t>& prompt, const SamplerSettings& settings,
                    uint64_t sequence_index, const StepObserver& observer) {
  const std::string problem = validate_settings(settings, model.config());
  if (!problem.empty()) throw std::invalid_argument(problem);
  check_prompt(prompt, model.config(), static_cast<size_t>(sequence_index));
  std::vector<Row> rows;
  rows.emplace_back(prompt, sequence_seed(settings.seed, sequence_index), static_cast<size_t>(sequence_index));
  std::vector<uint8_t> none;  // read only through a cancel poll, and there is none
  decode_group(model, settings, observer, rows, 0, nullptr, none);
  return std::move(rows[0].g);
}

std::vector<Generation> generate_batch(const LanguageModel& model, const std::vector<std::vector<int32_t>>& prompts,
                                       const SamplerSettings& settings, const StepObserver& observer,
                                       const CancelPoll& cancel) {
  const std::string problem = validate_settings(settings, model.config());
  if (!problem.empty()) throw std::invalid_argument(problem);
  const ModelConfig& cfg = model.config();
  for (size_t i = 0; i < prompts.size(); ++i) {
    check_prompt(prompts[i], cfg, i);
    if (settings.mode == DecodeMode::Autoregressive && prompts[i].empty())
      throw std::invalid_argument("prompt " + std::to_string(i) +
                                  ": AR decoding needs a non-empty prompt (e.g. start with <|bos|>)");
  }
  const size_t cap = static_cast<size_t>(std::max(1, model.max_batch()));
  std::vector<Generation> out(prompts.size());
  // Prompts of equal length share block boundaries, so they decode together in one group. A model that
  // takes row starts also batches prompts of different lengths, left-padded to the longest of the
  // group: sorted by length so little is padded. With blocks aligned to the model's (block checkpoints)
  // a row's blocks must start where they start alone, so the padding is whole blocks: up to the longest
  // prompt for prompts of the same length modulo the block size; and, on a model that also takes chunk
  // lengths per row, for prompts of any length, padded so that their complete blocks end together (each
  // row's first block then holds its own prompt tail, and a row's last block may be shorter than the
  // others'). A prompt too long to leave max_new positions in the context (and, mixed, the block it may
  // sit past the longest) keeps to its own length or class, where it is clipped as it would be alone.
  const bool aligned = settings.mode == DecodeMode::Diffusion && settings.align_blocks &&
                       cfg.attention_mode == AttentionMode::Block;
  const int ctx = cfg.max_position_embeddings;
  const int B = settings.block_size;
  enum Kind { Alone = 0, Padded = 1, Mixed = 2 };
  std::map<std::pair<int, size_t>, std::vector<size_t>> groups;  // (kind, key) -> members
  for (size_t i = 0; i < prompts.size(); ++i) {
    const int len = static_cast<int>(prompts[i].size());
    const bool pad = model.padded_rows() && len + settings.max_new <= ctx;
    if (pad && aligned && model.ragged_chunks() && static_cast<int64_t>(len) + settings.max_new + B - 1 <= ctx)
      groups[{Mixed, 0}].push_back(i);
    else if (pad)
      groups[{Padded, aligned ? prompts[i].size() % static_cast<size_t>(B) : 0}].push_back(i);
    else
      groups[{Alone, prompts[i].size()}].push_back(i);
  }
  const int32_t pad_id = cfg.pad_token_id >= 0 && cfg.pad_token_id < cfg.vocab_size ? cfg.pad_token_id : 0;
  std::vector<uint8_t> cancelled(prompts.size(), 0);
  int group = 0;
  for (auto& [kind, members] : groups) {
    if (kind.first != Alone)
      std::stable_sort(members.begin(), members.end(),
                       [&](size_t a, size_t b) { return prompts[a].size() < prompts[b].size(); });
    for (size_t from = 0; from < members.size(); from += cap) {
      // Rows cancelled before their group starts are left out of it.
      if (cancel) cancel(cancelled);
      std::vector<size_t> part;
      for (size_t k = from; k < std::min(members.size(), from + cap); ++k) {
        if (cancelled[members[k]]) out[members[k]].cancelled = true;
        else part.push_back(members[k]);
      }
      if (part.empty()) continue;
      // Where the prompts end (Mixed: their complete blocks), each padded ahead to end there.
      const auto whole = [&](size_t i) { return prompts[i].size() / static_cast<size_t>(B) * static_cast<size_t>(B); };
      size_t end = 0;
      for (size_t i : part) end = std::max(end, kind.first == Mixed ? whole(i) : prompts[i].size());
      std::vector<size_t> pads;
      for (size_t i : part) pads.push_back(end - (kind.first == Mixed ? whole(i) : prompts[i].size()));
      // Rows keep a reference to their text: all of them are made before the first row.
      std::vector<std::vector<int32_t>> texts;
      texts.reserve(part.size());
      for (size_t k = 0; k < part.size(); ++k) {
        texts.emplace_back(pads[k], pad_id);
        texts.back().insert(texts.back().end(), prompts[part[k]].begin(), prompts[part[k]].end());
      }
      std::vector<Row> rows;
      rows.reserve(part.size());
      for (size_t k = 0; k < part.size(); ++k) {
        rows.emplace_back(texts[k], sequence_seed(settings.seed, part[k]), part[k]);
        rows.back().pad = static_cast<int>(pads[k]);
      }
      decode_group(model, settings, observer, rows, group++, cancel, cancelled);
      for (Row& row : rows) out[row.index] = std::move(row.g);
    }
  }
  return out;
}

}  // namespace sdt::sampler
