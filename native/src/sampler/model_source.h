// Where serve/generate get their model: a checkpoint directory (config.json + model.safetensors,
// Hugging Face Llama names) or a randomly initialised model for tests and benchmarks of speed.
#pragma once

#include <memory>
#include <string>

#include "model/model.h"

namespace sdt::sampler {

struct LoadedModel {
  std::unique_ptr<Model> model;
  int del_token_id = -1;  // never emitted by the sampler
};

// Loads DIR/config.json and DIR/model.safetensors; errors name the file and say what to run.
LoadedModel load_checkpoint_model(const std::string& dir);

// A model from a config.json file with Model::init(seed) weights.
LoadedModel random_model(const std::string& config_path, uint64_t seed);

}  // namespace sdt::sampler
