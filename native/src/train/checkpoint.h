// Checkpoint directories (spec: schemas/checkpoint.md):
//   RUN/checkpoints/step-000123/{config.json, model.safetensors, tokenizer.json,
//                                optimizer.safetensors, trainer_state.json, COMPLETE}
// written into RUN/checkpoints/.tmp-step-000123-PID/ and renamed into place; COMPLETE last.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/json.h"
#include "io/model_config_json.h"
#include "model/model.h"
#include "train/optimizer.h"

namespace sdt::train {

// Everything besides weights and moments that exact resume needs.
struct TrainerState {
  int64_t step = 0;             // completed optimizer steps (skipped non-finite steps included)
  int64_t updates = 0;          // AdamW updates applied (its bias-correction count)
  int64_t tokens_seen = 0;      // B*T summed over consumed train frames
  int64_t stream_position = 0;  // train frames consumed: a resumed feeder starts at this frame
  int nonfinite_in_a_row = 0;
  uint64_t seed = 0;
  uint64_t rng_state = 0;  // SplitMix64 state (sdt/splitmix64.h)
  double last_loss = 0.0;
  double last_lr = 0.0;
};

// "step-000123".
std::string checkpoint_dir_name(int64_t step);

struct CheckpointWrite {
  const Model* model = nullptr;
  const AdamW* optimizer = nullptr;  // nullptr: no optimizer.safetensors (e.g. `sdt-native init`)
  const TrainerState* state = nullptr;  // nullptr: no trainer_state.json
  io::ConfigExtras extras;
  std::string tokenizer_path;  // copied as tokenizer.json; empty: none
  io::Json train_config;       // stored in trainer_state.json; null: omitted
};

// Writes `final_dir` atomically (a temporary sibling, then rename; an existing `final_dir` is
// replaced). Returns final_dir.
std::string write_checkpoint_dir(const std::string& final_dir, const CheckpointWrite& w);

// Writes RUN/checkpoints/step-NNNNNN, then deletes the oldest complete checkpoints beyond `keep`
// and stale temporary directories. Returns the checkpoint path.
std::string write_run_checkpoint(const std::string& run_dir, int keep, const CheckpointWrite& w);

// Step numbers of RUN/checkpoints/step-* directories that hold COMPLETE, ascending.
std::vector<int64_t> complete_checkpoints(const std::string& run_dir);
// Path of the latest complete checkpoint, or "" when there is none.
std::string latest_checkpoint(const std::string& run_dir);

// Loads model.safetensors into `model` (names and shapes must match); errors name the file.
void load_model_weights(Model& model, const std::string& ckpt_dir);
// Loads optimizer.safetensors moments into `opt`.
void load_optimizer(AdamW& opt, const Model& model, const std::string& ckpt_dir);
TrainerState read_trainer_state(const std::string& ckpt_dir);

}  // namespace sdt::train
