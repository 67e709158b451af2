#include "sampler/model_source.h"

#include <stdexcept>
#include <utility>
#include <sys/stat.h>

#include "io/model_config_json.h"
#include "train/checkpoint.h"

namespace sdt::sampler {

namespace {

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

LoadedModel load_checkpoint_model(const std::string& dir) {
  const std::string config_path = dir + "/config.json";
  const std::string weights_path = dir + "/model.safetensors";
  if (!exists(config_path))
    throw std::runtime_error(config_path + " not found: --ckpt must be a checkpoint directory written by `sdt train`");
  if (!exists(dir + "/COMPLETE"))
    throw std::runtime_error(dir + " has no COMPLETE marker (an interrupted checkpoint write?); point --ckpt at a "
                             "complete checkpoint, e.g. the latest RUN/checkpoints/step-* holding COMPLETE");
  if (!exists(weights_path))
    throw std::runtime_error(weights_path + " not found: the checkpoint is incomplete; point --ckpt at a finished one");
  io::ConfigExtras extras;
  const ModelConfig c = io::model_config_from_json(io::read_json_file(config_path), config_path, &extras);
  auto model = std::make_unique<Model>(c);
  train::load_model_weights(*model, dir);
  return {std::move(model), extras.del_token_id};
}

LoadedModel random_model(const std::string& config_path, uint64_t seed) {
  io::ConfigExtras extras;
  const ModelConfig c = io::model_config_from_json(io::read_json_file(config_path), config_path, &extras);
  auto model = std::make_unique<Model>(c);
  model->init(seed);
  return {std::move(model), extras.del_token_id};
}

}  // namespace sdt::sampler
