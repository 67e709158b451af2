#include "sampler/decode.h"

#include <algorithm>
#include <chrono>
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
  if (s.tokens_per_step < 1) return "tokens_per_step must be >= 1";
  if (s.steps_per_block < 0) return "steps_per_block must be >= 0 (0 = one per position)";
  if (!(s.temperature >= 0.0f) || !std::isfinite(s.temperature)) return "temperature must be >= 0";
  if (!(s.top_p > 0.0f && s.top_p <= 1.0f)) return "top_p must be in (0, 1]";
  if (s.refresh_every < 0) return "refresh_every must be >= 0 (0 = never)";
  if (s.revise_passes < 0) return "revise_passes must be >= 0";
  if (!(s.revise_threshold >= 0.0f && s.revise_threshold <= 1.0f)) return "revise_threshold must be in [0, 1]";
  if (s.eos_id < -2 || s.eos_id >= config.vocab_size) return "eos must be a token id, -1 (none) or -2 (the checkpoint's)";
  if (s.mode == DecodeMode::Diffusion) {
    if (config.mask_token_id < 0) return "the checkpoint has no mask_token_id: diffusion decoding needs one";
    if (config.attention_mode == AttentionMode::Causal)
      return "the checkpoint is causal: decode it with mode \"ar\" (--ar), not diffusion";
  }
  return "";
}

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Order positions by confidence, highest first; ties go to the leftmost position so runs repeat.
void sort_by_confidence(std::vector<int>& idx, const std::vector<float>& conf) {
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) {
    return conf[static_cast<size_t>(a)] > conf[static_cast<size_t>(b)];
  });
}

class BlockDecoder {
 public:
  BlockDecoder(const LanguageModel& model, const SamplerSettings& s, uint64_t seq_index, const StepObserver& observer)
      : model_(model),
        cfg_(model.config()),
        s_(s),
        vocab_(cfg_.vocab_size),
        banned_(cfg_.vocab_size, model.never_emit()),
        rng_(sequence_seed(s.seed, seq_index)),
        eos_(s.eos_id == -2 ? cfg_.eos_token_id : s.eos_id),
        observer_(observer),
        seq_index_(seq_index),
        steps_wanted_(s.record_trajectory || observer != nullptr) {
    choice_.temperature = s.temperature;
    choice_.top_p = s.top_p;
  }

  Generation diffusion(const std::vector<int32_t>& prompt);
  Generation autoregressive(const std::vector<int32_t>& prompt);

 private:
  const float* row(int i) const { return logits_.data() + static_cast<size_t>(i) * static_cast<size_t>(vocab_); }
  void forward(LMCache& cache, const std::vector<int32_t>& ids, int start, AttentionMode within, bool want_logits,
               bool append) {
    if (want_logits) logits_.resize(ids.size() * static_cast<size_t>(vocab_));
    model_.forward_chunk(cache, ids.data(), static_cast<int>(ids.size()), start, within,
                         want_logits ? logits_.data() : nullptr, append);
  }
  int clip_total(int prompt_len, Generation& g) const {
    const int ctx = cfg_.max_position_embeddings;
    if (prompt_len >= ctx)
      throw std::invalid_argument("the prompt has " + std::to_string(prompt_len) +
                                  " tokens but the context holds " + std::to_string(ctx) +
                                  "; shorten it to leave room for generation");
    const int total = std::min(s_.max_new, ctx - prompt_len);
    g.context_clipped = s_.max_new - total;
    return total;
  }

  const LanguageModel& model_;
  const ModelConfig& cfg_;
  const SamplerSettings& s_;
  const int vocab_;
  BannedTokens banned_;
  Rng rng_;
  ChoiceRule choice_;
  // Hands a finished step to the observer and, when recording, to the trajectory.
  void emit(Generation& g, TrajectoryStep&& t) {
    if (observer_) observer_(static_cast<size_t>(seq_index_), t);
    if (s_.record_trajectory) g.trajectory.push_back(std::move(t));
  }

  const int32_t eos_;
  const StepObserver& observer_;
  const uint64_t seq_index_;
  const bool steps_wanted_;
  std::vector<float> logits_;
  std::vector<float> scratch_;
};

Generation BlockDecoder::diffusion(const std::vector<int32_t>& prompt) {
  Generation g;
  const int P = static_cast<int>(prompt.size());
  const int total = clip_total(P, g);
  const int B = s_.block_size;
  const int32_t mask = cfg_.mask_token_id;
  const bool aligned = s_.align_blocks && cfg_.attention_mode == AttentionMode::Block;
  auto cache = model_.new_cache();

  const auto t_prefill = Clock::now();
  // With aligned blocks the prompt's complete blocks go in one by one, exactly as a block-causal
  // forward sees them; its partial last block is re-run with each step of the first block.
  const int prefix_end = aligned ? (P / B) * B : P;
  if (aligned) {
    for (int b = 0; b < prefix_end; b += B) {
      std::vector<int32_t> chunk(prompt.begin() + b, prompt.begin() + b + B);
      forward(*cache, chunk, b, AttentionMode::Bidirectional, false, true);
      ++g.forward_passes;
    }
  } else if (P > 0) {
    forward(*cache, prompt, 0, AttentionMode::Bidirectional, false, true);
    ++g.forward_passes;
  }
  g.prefill_ms = ms_since(t_prefill);

  const auto t_decode = Clock::now();
  int done = 0;
  for (int block = 0; done < total && !g.hit_eos; ++block) {
    const int chunk_start = block == 0 ? prefix_end : P + done;
    const int tail = block == 0 ? P - prefix_end : 0;
    const int n = std::min(B - tail, total - done);
    std::vector<int32_t> ids(static_cast<size_t>(tail + n), mask);
    if (tail > 0) std::copy(prompt.begin() + prefix_end, prompt.end(), ids.begin());
    std::vector<uint8_t> committed(static_cast<size_t>(n), 0);
    BlockStats stats;
    stats.start = done;
    stats.size = n;
    auto gen = [&](int i) -> int32_t& { return ids[static_cast<size_t>(tail + i)]; };
    // Work remains while a masked position precedes the first committed <|eos|>.
    auto needs_work = [&]() {
      for (int i = 0; i < n; ++i) {
        if (!committed[static_cast<size_t>(i)]) return true;
        if (gen(i) == eos_) return false;
      }
      return false;
    };
    const int remask_steps = s_.steps_per_block > 0 ? s_.steps_per_block : n;
    std::vector<float> conf(static_cast<size_t>(n), 0.0f);
    std::vector<int32_t> proposal(static_cast<size_t>(n), mask);
    for (int step = 0; needs_work(); ++step) {
      forward(*cache, ids, chunk_start, AttentionMode::Bidirectional, true, false);
      ++stats.forward_passes;
      ++stats.steps;
      std::vector<int> candidates;
      for (int i = 0; i < n; ++i) {
        if (committed[static_cast<size_t>(i)]) {
          if (s_.rule == CommitRule::Remask) {
            conf[static_cast<size_t>(i)] = token_probability(row(tail + i), vocab_, banned_, s_.temperature, gen(i));
            candidates.push_back(i);
          }
          continue;
        }
        const TokenChoice c = choose_token(row(tail + i), vocab_, banned_, choice_, rng_, scratch_);
        proposal[static_cast<size_t>(i)] = c.token;
        conf[static_cast<size_t>(i)] = c.confidence;
        candidates.push_back(i);
      }
      sort_by_confidence(candidates, conf);
      std::vector<int> commit, remask;
      if (s_.rule == CommitRule::Threshold) {
        for (int i : candidates) {
          if (!commit.empty() && conf[static_cast<size_t>(i)] < s_.threshold) break;
          commit.push_back(i);
          if (s_.max_per_step > 0 && static_cast<int>(commit.size()) >= s_.max_per_step) break;
        }
      } else if (s_.rule == CommitRule::Fixed) {
        const size_t k = std::min(candidates.size(), static_cast<size_t>(s_.tokens_per_step));
        commit.assign(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(k));
      } else {
        const int64_t keep64 = (static_cast<int64_t>(n) * (step + 1) + remask_steps - 1) / remask_steps;
        const int keep = static_cast<int>(std::min<int64_t>(std::max<int64_t>(keep64, 1), n));
        for (size_t r = 0; r < candidates.size(); ++r) {
          const int i = candidates[r];
          const bool kept = static_cast<int>(r) < keep;
          if (kept && !committed[static_cast<size_t>(i)]) commit.push_back(i);
          if (!kept && committed[static_cast<size_t>(i)]) remask.push_back(i);
        }
        if (commit.empty() && remask.empty() && !candidates.empty() && needs_work()) {
          // Keep making progress even when the schedule has no new slot this step.
          for (int i : candidates) {
            if (!committed[static_cast<size_t>(i)]) {
              commit.push_back(i);
              break;
            }
          }
        }
      }
      if (!remask.empty()) {
        std::sort(remask.begin(), remask.end());
        TrajectoryStep t;
        if (steps_wanted_) {
          t.block = block;
          t.step = step;
          t.kind = TrajectoryStep::Remask;
        }
        for (int i : remask) {
          committed[static_cast<size_t>(i)] = 0;
          gen(i) = mask;
          if (steps_wanted_) {
            t.positions.push_back(done + i);
            t.tokens.push_back(mask);
            t.confidences.push_back(conf[static_cast<size_t>(i)]);
          }
        }
        if (steps_wanted_) emit(g, std::move(t));
      }
      TrajectoryStep t;
      if (steps_wanted_) {
        t.block = block;
        t.step = step;
        t.kind = TrajectoryStep::Commit;
      }
      std::sort(commit.begin(), commit.end());
      for (int i : commit) {
        committed[static_cast<size_t>(i)] = 1;
        gen(i) = proposal[static_cast<size_t>(i)];
        if (steps_wanted_) {
          t.positions.push_back(done + i);
          t.tokens.push_back(gen(i));
          t.confidences.push_back(conf[static_cast<size_t>(i)]);
        }
      }
      if (steps_wanted_) emit(g, std::move(t));
    }

    // The first <|eos|> ends the text; what the block holds after it is dropped.
    auto eos_at = [&]() {
      for (int i = 0; i < n; ++i) {
        if (committed[static_cast<size_t>(i)] && gen(i) == eos_) return i;
      }
      return n;
    };

    if (s_.revise_passes > 0) {
      const ChoiceRule greedy{};
      for (int pass = 0; pass < s_.revise_passes; ++pass) {
        forward(*cache, ids, chunk_start, AttentionMode::Bidirectional, true, false);
        ++stats.forward_passes;
        TrajectoryStep t;
        t.block = block;
        t.step = stats.steps + pass;
        t.kind = TrajectoryStep::Revise;
        const int limit = eos_at() < n ? eos_at() + 1 : n;
        for (int i = 0; i < limit; ++i) {
          const TokenChoice c = choose_token(row(tail + i), vocab_, banned_, greedy, rng_, scratch_);
          if (c.token != gen(i) && c.confidence >= s_.revise_threshold) {
            gen(i) = c.token;
            committed[static_cast<size_t>(i)] = 1;
            t.positions.push_back(done + i);
            t.tokens.push_back(c.token);
            t.confidences.push_back(c.confidence);
          }
        }
        if (t.positions.empty()) break;
        stats.revised += static_cast<int>(t.positions.size());
        if (steps_wanted_) emit(g, std::move(t));
      }
    }

    const int cut = eos_at();
    for (int i = 0; i < cut; ++i) g.tokens.push_back(gen(i));
    g.hit_eos = cut < n;
    done += n;
    if (!g.hit_eos && done < total) {
      const bool refresh = cfg_.attention_mode == AttentionMode::Bidirectional && s_.refresh_every > 0 &&
                           (block + 1) % s_.refresh_every == 0;
      if (refresh) {
        // Recompute every committed key so earlier positions see the blocks that followed them.
        cache->clear();
        std::vector<int32_t> all(prompt);
        all.insert(all.end(), g.tokens.begin(), g.tokens.end());
        forward(*cache, all, 0, AttentionMode::Bidirectional, false, true);
      } else {
        forward(*cache, ids, chunk_start, AttentionMode::Bidirectional, false, true);
      }
      ++stats.forward_passes;
    }
    g.steps += stats.steps;
    g.forward_passes += stats.forward_passes;
    g.blocks.push_back(stats);
  }
  g.decode_ms = ms_since(t_decode);
  return g;
}

Generation BlockDecoder::autoregressive(const std::vector<int32_t>& prompt) {
  Generation g;
  const int P = static_cast<int>(prompt.size());
  if (P == 0) throw std::invalid_argument("AR decoding needs a non-empty prompt (e.g. start with <|bos|>)");
  const int total = clip_total(P, g);
  auto cache = model_.new_cache();
  const auto t_prefill = Clock::now();
  if (P > 1) {
    std::vector<int32_t> head(prompt.begin(), prompt.end() - 1);
    forward(*cache, head, 0, AttentionMode::Causal, false, true);
    ++g.forward_passes;
  }
  std::vector<int32_t> last{prompt.back()};
  forward(*cache, last, P - 1, AttentionMode::Causal, true, true);
  ++g.forward_passes;
  g.prefill_ms = ms_since(t_prefill);

  const auto t_decode = Clock::now();
  BlockStats stats;
  for (int k = 0; k < total; ++k) {
    const TokenChoice c = choose_token(row(0), vocab_, banned_, choice_, rng_, scratch_);
    ++stats.steps;
    if (steps_wanted_) {
      TrajectoryStep t;
      t.block = 0;
      t.step = k;
      t.positions.push_back(k);
      t.tokens.push_back(c.token);
      t.confidences.push_back(c.confidence);
      emit(g, std::move(t));
    }
    if (c.token == eos_) {
      g.hit_eos = true;
      break;
    }
    g.tokens.push_back(c.token);
    if (k + 1 < total) {
      last[0] = c.token;
      forward(*cache, last, P + k, AttentionMode::Causal, true, true);
      ++stats.forward_passes;
    }
  }
  // The pass that produced the first token's logits belongs to the prefill; count it there only.
  stats.size = stats.steps;
  g.steps = stats.steps;
  g.forward_passes += stats.forward_passes;
  g.blocks.push_back(stats);
  g.decode_ms = ms_since(t_decode);
  return g;
}

}  // namespace

Generation generate(const LanguageModel& model, const std::vector<int32_t>& prompt, const SamplerSettings& settings,
                    uint64_t sequence_index, const StepObserver& observer) {
  const std::string problem = validate_settings(settings, model.config());
  if (!problem.empty()) throw std::invalid_argument(problem);
  for (size_t i = 0; i < prompt.size(); ++i) {
    if (prompt[i] < 0 || prompt[i] >= model.config().vocab_size)
      throw std::invalid_argument("prompt token " + std::to_string(i) + " (" + std::to_string(prompt[i]) +
                                  ") is outside the vocabulary [0, " + std::to_string(model.config().vocab_size) +
                                  ")");
  }
  BlockDecoder decoder(model, settings, sequence_index, observer);
  return settings.mode == DecodeMode::Diffusion ? decoder.diffusion(prompt) : decoder.autoregressive(prompt);
}

std::vector<Generation> generate_batch(const LanguageModel& model, const std::vector<std::vector<int32_t>>& prompts,
                                       const SamplerSettings& settings, const StepObserver& observer) {
  std::vector<Generation> out;
  out.reserve(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) out.push_back(generate(model, prompts[i], settings, i, observer));
  return out;
}

}  // namespace sdt::sampler
