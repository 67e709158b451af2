// config.json <-> ModelConfig: Hugging Face Llama field names plus the diffusion fields
// (mask_token_id, del_token_id, attention_mode, block_size). Spec: schemas/checkpoint.md.
#pragma once

#include <string>

#include "io/json.h"
#include "model/config.h"

namespace sdt::io {

// Fields that config.json carries but ModelConfig does not need for the math.
struct ConfigExtras {
  int del_token_id = -1;  // -1: none (the edit objective's "delete this token" target)
};

// Reads the fields from a JSON object; `where` (a file name, or "TRAIN.json: model") prefixes
// every error, which names the field at fault. Missing optional fields take ModelConfig's
// defaults; missing sizes are errors. Runs ModelConfig::validate().
ModelConfig model_config_from_json(const Json& j, const std::string& where, ConfigExtras* extras = nullptr);
// A complete config.json object (architectures, model_type, torch_dtype "float32", ...).
Json model_config_to_json(const ModelConfig& cfg, const ConfigExtras& extras = {});

// Reads DIR/config.json.
ModelConfig read_model_config(const std::string& dir, ConfigExtras* extras = nullptr);

}  // namespace sdt::io
