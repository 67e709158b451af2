// Block-wise parallel decoding (diffusion inside a block, blocks left to right over a KV cache)
// and the autoregressive baseline over the same cache.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sampler/lm.h"

namespace sdt::sampler {

enum class DecodeMode { Diffusion, Autoregressive };

// How a diffusion step decides which masked positions of the block to commit.
//   Threshold: every masked position whose confidence >= threshold, at least the most confident one,
//              at most max_per_step when that is > 0, and with error_budget > 0 only while the summed
//              error of the step's commits stays within it (an error budget: many near-certain tokens
//              per step, few doubtful ones).
//   Fixed:     the tokens_per_step most confident masked positions.
//   Remask:    low-confidence remasking over steps_per_block steps: after step s the
//              ceil(n * (s + 1) / steps) most confident positions of the block are kept, where
//              already committed tokens are re-scored, so a committed token can be masked again.
enum class CommitRule { Threshold, Fixed, Remask };

// Which masked positions a step prefers.
//   Confidence:  highest top probability first.
//   Margin:      largest gap between the top two probabilities first.
//   Entropy:     lowest entropy first (scored as certainty = 1 - H / ln V).
//   Random:      a fresh random priority per position and step (from the sequence's seeded stream).
//   LeftToRight: the leftmost masked position first.
// Threshold rule: Confidence, Margin and Entropy commit the positions whose own score is >= threshold;
// Random commits as many positions as have confidence >= threshold, taken in its order; LeftToRight
// commits the leftmost masked positions up to the first whose confidence is below the threshold.
// Remask re-scores committed tokens by their probability, so it ranks by Confidence only.
enum class CommitOrder { Confidence, Margin, Entropy, Random, LeftToRight };

const char* decode_mode_name(DecodeMode mode);
const char* commit_rule_name(CommitRule rule);
const char* commit_order_name(CommitOrder order);
bool parse_commit_order(const std::string& name, CommitOrder* out);
bool parse_decode_mode(const std::string& name, DecodeMode* out);
bool parse_commit_rule(const std::string& name, CommitRule* out);

struct SamplerSettings {
  DecodeMode mode = DecodeMode::Diffusion;
  int max_new = 128;  // generated positions at most (clipped to the context)
  int block_size = 32;
  CommitRule rule = CommitRule::Threshold;
  CommitOrder order = CommitOrder::Confidence;
  float threshold = 0.9f;
  int max_per_step = 0;     // Threshold: cap per step, 0 = none
  // Threshold: also stop before the position that would bring the step's summed error, the sum of
  // (1 - confidence) over its commits, above this (at least one commit). 0 = off.
  float error_budget = 0.0f;
  int tokens_per_step = 1;  // Fixed
  int steps_per_block = 0;  // Remask: 0 = one step per position
  float temperature = 0.0f;  // 0 = greedy
  float top_p = 1.0f;
  uint64_t seed = 0;
  // Bidirectional checkpoints only: the cache is approximate there (committed keys never see later
  // blocks); every n blocks it is recomputed over the whole sequence. 0 = never.
  int refresh_every = 0;
  // Block checkpoints: blocks start at multiples of block_size counted from position 0, as in
  // training, so the first block also holds the prompt's last partial block. Makes the cache exact.
  bool align_blocks = true;
  // Revision (edit-trained models): after a block is filled, re-score it and replace tokens the
  // model now predicts differently with probability >= revise_threshold; at most revise_passes.
  int revise_passes = 0;
  float revise_threshold = 0.9f;
  bool record_trajectory = false;
  int32_t eos_id = -2;  // -2: the checkpoint's eos_token_id; -1: never stop early
};

// Empty when usable with `config`; otherwise a message naming the setting at fault.
std::string validate_settings(const SamplerSettings& s, const ModelConfig& config);

// One change of the canvas. Positions count from the first generated position.
struct TrajectoryStep {
  enum Kind : uint8_t { Commit = 0, Remask = 1, Revise = 2 };
  int block = 0;
  int step = 0;  // index within the block
  Kind kind = Commit;
  std::vector<int32_t> positions;
  std::vector<int32_t> tokens;  // the mask id for Remask
  std::vector<float> confidences;
};

struct BlockStats {
  int start = 0;  // first generated position of the block
  int size = 0;   // generated positions in the block
  int steps = 0;  // denoising steps (forward passes that committed tokens)
  // All model calls for this block: steps, revision, a cache refresh. Writing the previous block to the
  // cache rides on this block's first step and costs no call of its own.
  int forward_passes = 0;
  int revised = 0;         // tokens replaced by revision
};

struct Generation {
  std::vector<int32_t> tokens;  // generated tokens, up to (not including) <|eos|>
  bool hit_eos = false;
  int context_clipped = 0;      // how many of max_new did not fit in the context
  std::vector<BlockStats> blocks;
  int steps = 0;
  int forward_passes = 0;  // including the prompt prefill
  std::vector<TrajectoryStep> trajectory;
  double prefill_ms = 0.0;
  double decode_ms = 0.0;
  // Stopped by a CancelPoll: tokens, steps and passes are what it had when it stopped (whole blocks of text).
  bool cancelled = false;
  // The lockstep group it decoded in (numbered in the batch; -1: cancelled before its group started) and
  // that group's model calls: every call of the group, whichever rows it served.
  int group = -1;
  int group_forward_passes = 0;
};

// Called with each step as it happens (for live display); the index is the sequence's in its batch.
using StepObserver = std::function<void(size_t sequence, const TrajectoryStep& step)>;

// Decodes one prompt. Throws std::invalid_argument for unusable settings or prompts.
Generation generate(const LanguageModel& model, const std::vector<int32_t>& prompt,
                    const SamplerSettings& settings, uint64_t sequence_index = 0,
                    const StepObserver& observer = nullptr);

// Asked before each group starts and before each model call of a group: sets cancelled[i] for the
// sequences (batch indices; the vector has one entry per prompt) to stop now. A stopped row leaves its
// group's work at once (Generation::cancelled); the other rows decode on exactly as they would have.
using CancelPoll = std::function<void(std::vector<uint8_t>& cancelled)>;

// Decodes several prompts with the same settings; sequence i uses sequence_seed(seed, i).
std::vector<Generation> generate_batch(const LanguageModel& model,
                                       const std::vector<std::vector<int32_t>>& prompts,
                                       const SamplerSettings& settings, const StepObserver& observer = nullptr,
                                       const CancelPoll& cancel = nullptr);

}  // namespace sdt::sampler
