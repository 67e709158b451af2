// The train config (TRAIN.json) of `sdt-native train`; spec in docs/native.md.
#pragma once

#include <cstdint>
#include <string>

#include "io/json.h"
#include "io/model_config_json.h"
#include "model/config.h"
#include "train/optimizer.h"
#include "train/schedule.h"

namespace sdt::train {

struct TrainConfig {
  ModelConfig model;
  io::ConfigExtras model_extras;
  std::string tokenizer;  // copied into every checkpoint; empty: none
  int64_t total_steps = 0;
  int micro_batches = 1;
  AdamWConfig adamw;
  double grad_clip = 1.0;  // max global L2 norm; <= 0 turns clipping off
  LrSchedule schedule;     // total_steps mirrors the field above
  int64_t checkpoint_every = 0;  // 0: only the final checkpoint
  int keep_checkpoints = 3;
  uint64_t seed = 0;
  int threads = 0;  // 0: OpenMP's default
  int max_nonfinite_steps = 5;
  // "two-stream" (block models only): every frame row holds the noisy then the clean sequence and
  // runs under AttentionMode::BlockTwoStream; "single": rows run under the model's own mode.
  bool two_stream = false;

  // The attention mode frames run under.
  AttentionMode frame_mode() const { return two_stream ? AttentionMode::BlockTwoStream : model.attention_mode; }

  // The config as JSON (stored in trainer_state.json so a run is self-describing).
  io::Json to_json() const;
};

// Parses and checks a train config; `where` (the file name) prefixes errors, which name the field.
// Unknown keys are errors, so a typo does not silently fall back to a default.
TrainConfig train_config_from_json(const io::Json& j, const std::string& where);
TrainConfig read_train_config(const std::string& path);

}  // namespace sdt::train
