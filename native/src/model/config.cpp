#include "model/config.h"

#include <sstream>

namespace sdt {

const char* attention_mode_name(AttentionMode mode) {
  switch (mode) {
    case AttentionMode::Bidirectional:
      return "bidirectional";
    case AttentionMode::Causal:
      return "causal";
    case AttentionMode::Block:
      return "block";
    case AttentionMode::BlockTwoStream:
      return "block-two-stream";
  }
  return "unknown";
}

bool parse_attention_mode(const std::string& name, AttentionMode* out) {
  if (name == "bidirectional") {
    *out = AttentionMode::Bidirectional;
  } else if (name == "causal") {
    *out = AttentionMode::Causal;
  } else if (name == "block") {
    *out = AttentionMode::Block;
  } else if (name == "block-two-stream") {
    *out = AttentionMode::BlockTwoStream;
  } else {
    return false;
  }
  return true;
}

std::string ModelConfig::validate() const {
  std::ostringstream os;
  auto positive = [&](const char* field, long value) {
    if (value <= 0) os << field << " (" << value << ") must be > 0";
    return value > 0;
  };
  if (!positive("vocab_size", vocab_size) || !positive("hidden_size", hidden_size) ||
      !positive("intermediate_size", intermediate_size) || !positive("num_hidden_layers", num_hidden_layers) ||
      !positive("num_attention_heads", num_attention_heads) ||
      !positive("num_key_value_heads", num_key_value_heads) ||
      !positive("max_position_embeddings", max_position_embeddings) || !positive("block_size", block_size)) {
    return os.str();
  }
  if (hidden_size % num_attention_heads != 0) {
    os << "hidden_size (" << hidden_size << ") must be divisible by num_attention_heads (" << num_attention_heads
       << ")";
  } else if (head_dim() % 2 != 0) {
    os << "head_dim = hidden_size / num_attention_heads (" << head_dim() << ") must be even for rotary embeddings";
  } else if (num_attention_heads % num_key_value_heads != 0) {
    os << "num_attention_heads (" << num_attention_heads << ") must be divisible by num_key_value_heads ("
       << num_key_value_heads << ")";
  } else if (mask_token_id < 0 || mask_token_id >= vocab_size) {
    os << "mask_token_id (" << mask_token_id << ") must be in [0, vocab_size=" << vocab_size
       << "): the diffusion model needs a <|mask|> token";
  } else if (pad_token_id < -1 || pad_token_id >= vocab_size) {
    os << "pad_token_id (" << pad_token_id << ") must be -1 (none) or in [0, vocab_size=" << vocab_size << ")";
  } else if (bos_token_id < -1 || bos_token_id >= vocab_size) {
    os << "bos_token_id (" << bos_token_id << ") must be -1 (none) or in [0, vocab_size=" << vocab_size << ")";
  } else if (eos_token_id < -1 || eos_token_id >= vocab_size) {
    os << "eos_token_id (" << eos_token_id << ") must be -1 (none) or in [0, vocab_size=" << vocab_size << ")";
  } else if (!(rms_norm_eps > 0.0f)) {
    os << "rms_norm_eps (" << rms_norm_eps << ") must be > 0";
  } else if (!(rope_theta > 0.0f)) {
    os << "rope_theta (" << rope_theta << ") must be > 0";
  } else if (attention_mode == AttentionMode::BlockTwoStream) {
    os << "attention_mode \"block-two-stream\" is a training layout, not a model's mode: the model is \"block\"";
  }
  return os.str();
}

int64_t ModelConfig::num_parameters() const {
  const int64_t D = hidden_size, I = intermediate_size, V = vocab_size;
  const int64_t hd = head_dim();
  const int64_t per_layer = 2 * D + (num_attention_heads + 2 * num_key_value_heads) * hd * D +
                            D * num_attention_heads * hd + 3 * I * D;
  return V * D + num_hidden_layers * per_layer + D + (tie_word_embeddings ? 0 : V * D);
}

}  // namespace sdt
