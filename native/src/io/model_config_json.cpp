#include "io/model_config_json.h"

#include <stdexcept>

namespace sdt::io {

namespace {

int get_int(const Json& j, const std::string& where, const char* key, bool required, int fallback) {
  const Json* v = j.get(key);
  if (v == nullptr || v->is_null()) {
    if (required) throw std::runtime_error(where + ": missing required field \"" + key + "\"");
    return fallback;
  }
  try {
    return static_cast<int>(v->as_int());
  } catch (const JsonError& e) {
    throw std::runtime_error(where + ": field \"" + key + "\": " + e.what());
  }
}

float get_float(const Json& j, const std::string& where, const char* key, float fallback) {
  const Json* v = j.get(key);
  if (v == nullptr || v->is_null()) return fallback;
  try {
    return static_cast<float>(v->as_number());
  } catch (const JsonError& e) {
    throw std::runtime_error(where + ": field \"" + key + "\": " + e.what());
  }
}

}  // namespace

ModelConfig model_config_from_json(const Json& j, const std::string& where, ConfigExtras* extras) {
  if (!j.is_object()) throw std::runtime_error(where + ": the model config must be a JSON object");
  ModelConfig c;
  c.vocab_size = get_int(j, where, "vocab_size", true, 0);
  c.hidden_size = get_int(j, where, "hidden_size", true, 0);
  c.intermediate_size = get_int(j, where, "intermediate_size", true, 0);
  c.num_hidden_layers = get_int(j, where, "num_hidden_layers", true, 0);
  c.num_attention_heads = get_int(j, where, "num_attention_heads", true, 0);
  c.num_key_value_heads = get_int(j, where, "num_key_value_heads", false, c.num_attention_heads);
  c.max_position_embeddings = get_int(j, where, "max_position_embeddings", true, 0);
  c.rms_norm_eps = get_float(j, where, "rms_norm_eps", c.rms_norm_eps);
  c.rope_theta = get_float(j, where, "rope_theta", c.rope_theta);
  if (const Json* t = j.get("tie_word_embeddings"); t != nullptr && !t->is_null()) {
    if (!t->is_bool()) throw std::runtime_error(where + ": field \"tie_word_embeddings\" must be true or false");
    c.tie_word_embeddings = t->as_bool();
  }
  if (const Json* m = j.get("attention_mode"); m != nullptr && !m->is_null()) {
    if (!m->is_string() || !parse_attention_mode(m->as_string(), &c.attention_mode)) {
      throw std::runtime_error(where + ": field \"attention_mode\" must be \"bidirectional\", \"causal\" or \"block\"");
    }
  }
  c.block_size = get_int(j, where, "block_size", false, c.block_size);
  c.mask_token_id = get_int(j, where, "mask_token_id", true, -1);
  c.pad_token_id = get_int(j, where, "pad_token_id", false, -1);
  c.bos_token_id = get_int(j, where, "bos_token_id", false, -1);
  c.eos_token_id = get_int(j, where, "eos_token_id", false, -1);
  if (extras != nullptr) extras->del_token_id = get_int(j, where, "del_token_id", false, -1);
  const std::string problem = c.validate();
  if (!problem.empty()) throw std::runtime_error(where + ": " + problem);
  return c;
}

Json model_config_to_json(const ModelConfig& c, const ConfigExtras& extras) {
  auto id = [](int v) { return v < 0 ? Json(nullptr) : Json(v); };
  Json j = Json::object();
  Json arch = Json::array();
  arch.push(Json("LlamaForCausalLM"));
  j.set("architectures", arch)
      .set("model_type", Json("llama"))
      .set("torch_dtype", Json("float32"))
      .set("vocab_size", Json(c.vocab_size))
      .set("hidden_size", Json(c.hidden_size))
      .set("intermediate_size", Json(c.intermediate_size))
      .set("num_hidden_layers", Json(c.num_hidden_layers))
      .set("num_attention_heads", Json(c.num_attention_heads))
      .set("num_key_value_heads", Json(c.num_key_value_heads))
      .set("head_dim", Json(c.head_dim()))
      .set("max_position_embeddings", Json(c.max_position_embeddings))
      .set("rms_norm_eps", Json(c.rms_norm_eps))
      .set("rope_theta", Json(c.rope_theta))
      .set("hidden_act", Json("silu"))
      .set("attention_bias", Json(false))
      .set("mlp_bias", Json(false))
      .set("tie_word_embeddings", Json(c.tie_word_embeddings))
      .set("bos_token_id", id(c.bos_token_id))
      .set("eos_token_id", id(c.eos_token_id))
      .set("pad_token_id", id(c.pad_token_id))
      .set("mask_token_id", Json(c.mask_token_id))
      .set("del_token_id", id(extras.del_token_id))
      .set("attention_mode", Json(attention_mode_name(c.attention_mode)))
      .set("block_size", Json(c.block_size));
  return j;
}

ModelConfig read_model_config(const std::string& dir, ConfigExtras* extras) {
  const std::string path = dir + "/config.json";
  return model_config_from_json(read_json_file(path), path, extras);
}

}  // namespace sdt::io
