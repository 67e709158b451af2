// Choosing one token from a row of logits: greedy, or temperature + top-p sampling from a seeded
// generator whose output is the same on every platform (std:: distributions are not).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sdt::sampler {

// splitmix64: tiny, fast, and fully specified, so a seed reproduces a run anywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next_u64();
  // Uniform in [0, 1) with 53 random bits.
  double next_double();

 private:
  uint64_t state_;
};

// Mixes a request seed with a sequence index so each sequence of a batch gets its own stream and
// results do not depend on which other prompts share the batch.
uint64_t sequence_seed(uint64_t seed, uint64_t index);

struct TokenChoice {
  int32_t token = -1;
  // Probability of `token` under softmax(logits / temperature) (temperature 1 when greedy),
  // computed over the allowed tokens only. The commit rules rank positions by it.
  float confidence = 0.0f;
  // Same distribution: top probability minus the runner-up's, and 1 - H / ln(allowed tokens), both in
  // [0, 1]. Other commit orders rank positions by these.
  float margin = 0.0f;
  float certainty = 0.0f;
};

struct ChoiceRule {
  float temperature = 0.0f;  // <= 0: greedy (argmax)
  float top_p = 1.0f;        // nucleus mass kept when sampling; 1 keeps everything
  // Fill TokenChoice::margin and ::certainty (one more pass over the vocabulary; only the margin and
  // entropy commit orders read them).
  bool describe = false;
};

// Token ids that are never emitted (e.g. <|mask|>, <|pad|>); ids outside [0, vocab) are ignored.
class BannedTokens {
 public:
  BannedTokens(int vocab_size, const std::vector<int32_t>& ids);
  bool banned(int32_t id) const { return flags_[static_cast<size_t>(id)] != 0; }

 private:
  std::vector<uint8_t> flags_;
};

// Picks a token from one row of `vocab` logits. `scratch` is reused between calls to avoid
// allocations in the decoding loop. Needs at least one allowed token.
TokenChoice choose_token(const float* logits, int vocab, const BannedTokens& banned,
                         const ChoiceRule& rule, Rng& rng, std::vector<float>& scratch);

// Probability that softmax(logits / temperature) gives `token` (over allowed tokens); used to
// re-score already committed tokens (remasking, revision).
float token_probability(const float* logits, int vocab, const BannedTokens& banned, float temperature,
                        int32_t token);

}  // namespace sdt::sampler
