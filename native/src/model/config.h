// Model hyper-parameters, named as in a Hugging Face Llama `config.json`, plus the
// discrete-diffusion fields. Parsing config.json belongs to native/src/io; this file only
// defines the struct and checks that its values make sense together.
#pragma once

#include <cstdint>
#include <string>

#include "sdt/attention_mode.h"

namespace sdt {

// "bidirectional" | "causal" | "block".
const char* attention_mode_name(AttentionMode mode);
// Returns false (and leaves *out untouched) when `name` is not one of the three names above.
bool parse_attention_mode(const std::string& name, AttentionMode* out);

struct ModelConfig {
  // --- Hugging Face Llama fields ---
  int vocab_size = 0;
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_hidden_layers = 0;
  int num_attention_heads = 0;
  int num_key_value_heads = 0;  // == num_attention_heads: plain MHA; smaller divisor: GQA
  int max_position_embeddings = 0;
  float rms_norm_eps = 1e-6f;
  float rope_theta = 10000.0f;
  bool tie_word_embeddings = false;

  // --- diffusion fields ---
  AttentionMode attention_mode = AttentionMode::Bidirectional;  // default mode of the checkpoint
  int block_size = 32;       // used by AttentionMode::Block
  int mask_token_id = -1;    // its logit is always -inf; it is never a valid target
  int pad_token_id = -1;     // -1: none
  int bos_token_id = -1;     // -1: none
  int eos_token_id = -1;     // -1: none

  // hidden_size / num_attention_heads.
  int head_dim() const { return num_attention_heads > 0 ? hidden_size / num_attention_heads : 0; }

  // Empty string when the config is usable; otherwise a message naming the first field at
  // fault and what it must satisfy (e.g. "hidden_size (100) must be divisible by
  // num_attention_heads (3)"). Checks: all sizes > 0, hidden_size % heads == 0, head_dim even
  // (RoPE rotates halves), heads % kv_heads == 0, 0 <= mask_token_id < vocab_size, special ids
  // either -1 or in range, block_size > 0, rms_norm_eps > 0, rope_theta > 0.
  std::string validate() const;

  // Number of fp32 parameters the model holds (lm_head counted only when untied).
  int64_t num_parameters() const;
};

}  // namespace sdt
