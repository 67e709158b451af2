// The training loop of `sdt-native train`: reads the trainer stream, runs forward/backward over
// `micro_batches` train frames per step, clips, applies AdamW on the schedule, evaluates eval
// frames, checkpoints, and reports JSON-line events. It does not know which objective produced a
// batch: the loss is the weighted cross-entropy the stream's weights define.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "backend/backend.h"
#include "io/json.h"
#include "train/data_parallel.h"
#include "train/train_config.h"

namespace sdt::train {

// Process exit codes of `sdt-native train` (documented in docs/native.md).
enum ExitCode : int {
  kExitOk = 0,          // total_steps reached, end frame, end of input, stop requested (signal)
  kExitInternal = 1,    // a bug or an I/O failure writing checkpoints
  kExitUsage = 2,       // bad flags, bad train config, nothing to resume
  kExitBadStream = 3,   // truncated/corrupt stream or a batch the model rejects
  kExitNonFinite = 4,   // max_nonfinite_steps non-finite steps in a row
};

struct TrainOptions {
  std::string stream_path;  // "-": stdin
  std::string run_dir;
  bool resume = false;          // continue from RUN/checkpoints' latest complete checkpoint
  std::string init_from;        // start from these weights (fresh optimizer and step 0)
  int64_t stop_after_steps = 0;  // > 0: checkpoint and stop after this many steps in this invocation
  Device device = Device::Cpu;   // where forward, backward and the update run (backend/train_backend.h)
  // The ranks this process trains with (not owned; nullptr: a world of one). Rank 0 alone writes
  // checkpoints; every rank reads its own stream (its part of each step's examples).
  DataParallel* data_parallel = nullptr;
};

using EventFn = std::function<void(const io::Json&)>;
using LogFn = std::function<void(const std::string&)>;

// Runs training; returns an ExitCode. `stop` (may be null) is polled between steps and while
// blocked on the stream between steps: when set, the run finishes the current step, writes a
// checkpoint and returns kExitOk. Every outcome is reported through `emit` (step, eval,
// checkpoint, error, done).
int run_training(const TrainConfig& cfg, const TrainOptions& opt, const EventFn& emit, const LogFn& log,
                 const std::atomic<bool>* stop);

}  // namespace sdt::train
