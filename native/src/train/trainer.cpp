#include "train/trainer.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <vector>

#include "backend/train_backend.h"
#include "ranks/rendezvous.h"
#include "io/stream.h"
#include "model/model.h"
#include "train/checkpoint.h"
#include "train/optimizer.h"
#include "sdt/splitmix64.h"

namespace sdt::train {

using io::Json;

namespace {

Json event(const char* name) {
  Json j = Json::object();
  j.set("event", Json(name));
  return j;
}

// Sum of weights at positions that have a target; the step's loss normalizer.
double weight_sum(const io::StreamBatch& b) {
  double s = 0.0;
  for (size_t i = 0; i < b.weights.size(); ++i) {
    if (b.target_ids[i] >= 0) s += static_cast<double>(b.weights[i]);
  }
  return s;
}

Batch to_model_batch(const io::StreamBatch& b, AttentionMode mode) {
  Batch mb;
  mb.B = b.B;
  mb.T = b.T;
  mb.input_ids = b.input_ids.data();
  mb.target_ids = b.target_ids.data();
  mb.weights = b.weights.data();
  mb.segment_ids = b.segment_ids.empty() ? nullptr : b.segment_ids.data();
  mb.mode = mode;
  return mb;
}

// A batch the model cannot take is a stream problem; say which frame.
class BadBatch : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct EvalTotals {
  std::string group;
  double ce_sum = 0.0;
  double weight_sum = 0.0;
  int64_t targets = 0;
};

class Run {
 public:
  Run(const TrainConfig& cfg, const TrainOptions& opt, const EventFn& emit, const LogFn& log,
      const std::atomic<bool>* stop)
      : cfg_(cfg), opt_(opt), emit_(emit), log_(log), stop_(stop), model_(cfg.model),
        adamw_(cfg.adamw, model_.num_params()) {
    if (opt.data_parallel == nullptr) own_dp_ = make_data_parallel(dist::RankEnv{}, opt.device, 0);
    dp_ = opt.data_parallel != nullptr ? opt.data_parallel : own_dp_.get();
  }

  int execute();

 private:
  bool stop_requested() const { return stop_ != nullptr && stop_->load(); }
  void restore();
  void skip_consumed(io::StreamReader& reader);
  void check_batch(const io::StreamBatch& b, uint64_t frame) const;
  void eval_frame(const io::StreamBatch& b, uint64_t frame);
  void flush_evals();
  void train_step(const std::vector<io::StreamBatch>& micro, double normalizer, int64_t step_tokens,
                  double seconds_reading);
  std::string checkpoint();
  void emit_error(const std::string& message);
  void done(const char* reason);

  const TrainConfig& cfg_;
  const TrainOptions& opt_;
  const EventFn& emit_;
  const LogFn& log_;
  const std::atomic<bool>* stop_;
  Model model_;    // the host record of the weights: initialised, restored and checkpointed here
  AdamW adamw_;
  std::unique_ptr<TrainBackend> backend_;  // where the steps run (--device)
  std::unique_ptr<DataParallel> own_dp_;   // a world of one when the caller gave none
  DataParallel* dp_ = nullptr;
  TrainerState state_;
  int64_t last_checkpoint_step_ = -1;
  int64_t start_step_ = 0;
  std::chrono::steady_clock::time_point run_start_ = std::chrono::steady_clock::now();
  std::vector<EvalTotals> pending_evals_;
};

void Run::emit_error(const std::string& message) {
  Json e = event("error");
  e.set("step", Json(state_.step)).set("message", Json(message));
  emit_(e);
  log_("sdt-native train: error: " + message);
}

void Run::done(const char* reason) {
  Json e = event("done");
  e.set("step", Json(state_.step)).set("reason", Json(reason)).set("stream_position", Json(state_.stream_position));
  emit_(e);
}

void Run::restore() {
  state_.seed = cfg_.seed;
  SplitMix64 rng{cfg_.seed};
  if (opt_.resume) {
    const std::string ckpt = latest_checkpoint(opt_.run_dir);
    if (ckpt.empty()) {
      throw std::invalid_argument(opt_.run_dir + "/checkpoints: no complete checkpoint to resume from; run without --resume to start a new run");
    }
    const ModelConfig saved = io::read_model_config(ckpt);
    if (saved.num_parameters() != cfg_.model.num_parameters()) {
      throw std::invalid_argument(ckpt + "/config.json: the checkpoint's model does not match the train config's \"model\"");
    }
    load_model_weights(model_, ckpt);
    load_optimizer(adamw_, model_, ckpt);
    state_ = read_trainer_state(ckpt);
    adamw_.set_updates(state_.updates);
    last_checkpoint_step_ = state_.step;
    log_("sdt-native train: resumed from " + ckpt + " at step " + std::to_string(state_.step) + ", stream position " +
         std::to_string(state_.stream_position));
    return;
  }
  // The generator's first draw seeds the weights, so runs with equal seeds start equal.
  model_.init(rng.next());
  state_.rng_state = rng.state;
  if (!opt_.init_from.empty()) {
    load_model_weights(model_, opt_.init_from);
    log_("sdt-native train: weights from " + opt_.init_from);
  }
}

void Run::skip_consumed(io::StreamReader& reader) {
  const auto first = static_cast<int64_t>(reader.header().first_train_frame);
  if (first > state_.stream_position) {
    throw io::StreamError(reader.path() + ": the stream starts at train frame " + std::to_string(first) +
                          " but the run has consumed only " + std::to_string(state_.stream_position) +
                          " frames; restart the feeder at stream_position " + std::to_string(state_.stream_position) +
                          " (trainer_state.json)");
  }
  int64_t to_skip = state_.stream_position - first;
  if (to_skip > 0) log_("sdt-native train: skipping " + std::to_string(to_skip) + " already-consumed train frames");
  io::StreamFrame f;
  while (to_skip > 0) {
    if (!reader.next(f)) {
      throw io::StreamError(reader.path() + ": ended while skipping the " + std::to_string(state_.stream_position - first) +
                            " train frames the run already consumed; is this the run's stream?");
    }
    if (f.kind == io::FrameKind::Train) --to_skip;
  }
}

void Run::check_batch(const io::StreamBatch& b, uint64_t frame) const {
  if (cfg_.two_stream && b.T % 2 != 0) {
    throw BadBatch("frame " + std::to_string(frame) + ": T=" + std::to_string(b.T) +
                   " is odd, but a two-stream row holds the noisy then the clean sequence (2 x seq_len)");
  }
  const int positions = cfg_.two_stream ? b.T / 2 : b.T;
  if (positions > cfg_.model.max_position_embeddings) {
    throw BadBatch("frame " + std::to_string(frame) + ": " + std::to_string(positions) +
                   " positions per row exceed max_position_embeddings=" +
                   std::to_string(cfg_.model.max_position_embeddings));
  }
}

void Run::eval_frame(const io::StreamBatch& b, uint64_t frame) {
  check_batch(b, frame);
  const double norm = weight_sum(b);
  LossStats st;
  try {
    st = backend_->forward_loss(to_model_batch(b, cfg_.frame_mode()), norm > 0 ? norm : 1.0);
  } catch (const std::invalid_argument& e) {
    throw BadBatch("eval frame " + std::to_string(frame) + ": " + e.what());
  }
  EvalTotals* slot = nullptr;
  for (EvalTotals& t : pending_evals_) {
    if (t.group == b.tag) slot = &t;
  }
  if (slot == nullptr) {
    pending_evals_.push_back({b.tag, 0.0, 0.0, 0});
    slot = &pending_evals_.back();
  }
  slot->ce_sum += st.weighted_ce_sum;
  slot->weight_sum += st.weight_sum;
  slot->targets += st.targets;
}

void Run::flush_evals() {
  for (const EvalTotals& t : pending_evals_) {
    Json e = event("eval");
    e.set("step", Json(state_.step))
        .set("group", Json(t.group))
        .set("loss", Json(t.weight_sum > 0 ? t.ce_sum / t.weight_sum : 0.0))
        .set("tokens", Json(t.targets));
    emit_(e);
    log_("sdt-native train: eval step " + std::to_string(state_.step) + " " + t.group + " loss " +
         io::format_double(t.weight_sum > 0 ? t.ce_sum / t.weight_sum : 0.0));
  }
  pending_evals_.clear();
}

// `normalizer` and `step_tokens` are the step's weight sum and B*T summed over every rank's frames.
void Run::train_step(const std::vector<io::StreamBatch>& micro, double normalizer, int64_t step_tokens,
                     double seconds_reading) {
  const auto t0 = std::chrono::steady_clock::now();
  // No target anywhere gives a zero loss and zero gradient rather than a division by zero.
  const double used_norm = normalizer == 0.0 ? 1.0 : normalizer;
  backend_->zero_grad();
  double ce_sum = 0.0;
  for (size_t i = 0; i < micro.size(); ++i) {
    try {
      ce_sum += backend_->forward_backward(to_model_batch(micro[i], cfg_.frame_mode()), used_norm).weighted_ce_sum;
    } catch (const std::invalid_argument& e) {
      throw BadBatch("train frame " + std::to_string(state_.stream_position + static_cast<int64_t>(i)) + ": " + e.what());
    }
  }
  // Each rank divided by the global weight sum, so the sums over the ranks are the step's loss and
  // gradient as one rank reading every frame would have them (no-ops in a world of one).
  std::vector<double> ce{ce_sum};
  dp_->sum(ce);
  dp_->sum_gradients(*backend_);
  const double loss = ce[0] / used_norm;
  const double grad_norm = backend_->grad_norm();
  const bool finite = std::isfinite(loss) && std::isfinite(grad_norm);
  const double lr = cfg_.schedule.lr_at(state_.step);
  if (finite) {
    backend_->apply_update(lr, cfg_.grad_clip, grad_norm);
    state_.nonfinite_in_a_row = 0;
    state_.last_loss = loss;
  } else {
    ++state_.nonfinite_in_a_row;
  }
  state_.updates = backend_->updates();
  state_.step += 1;
  state_.stream_position += static_cast<int64_t>(micro.size());
  state_.tokens_seen += step_tokens;
  state_.last_lr = lr;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() + seconds_reading;

  Json e = event("step");
  e.set("step", Json(state_.step))
      .set("loss", std::isfinite(loss) ? Json(loss) : Json(nullptr))
      .set("lr", Json(lr))
      .set("grad_norm", std::isfinite(grad_norm) ? Json(grad_norm) : Json(nullptr))
      .set("tokens", Json(state_.tokens_seen))
      .set("tokens_per_s", Json(seconds > 0 ? static_cast<double>(step_tokens) / seconds : 0.0))
      .set("skipped", Json(!finite));
  emit_(e);
  if (!finite) {
    log_("sdt-native train: step " + std::to_string(state_.step) + " skipped: non-finite " +
         (std::isfinite(loss) ? "gradient" : "loss") + " (" + std::to_string(state_.nonfinite_in_a_row) + " in a row)");
  } else if (state_.step % 10 == 0 || state_.step == 1) {
    // Rate and ETA over this invocation's steps, so a resumed run does not count the pause.
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start_).count();
    const double per_step = elapsed / static_cast<double>(std::max<int64_t>(1, state_.step - start_step_));
    char buf[160];
    std::snprintf(buf, sizeof buf, " loss %.4f lr %.3g | %.0f tokens/s | ETA %.0f s", loss, lr,
                  static_cast<double>(step_tokens) / std::max(1e-9, per_step),
                  per_step * static_cast<double>(cfg_.total_steps - state_.step));
    log_("sdt-native train: step " + std::to_string(state_.step) + "/" + std::to_string(cfg_.total_steps) + buf);
  }
}

std::string Run::checkpoint() {
  const std::string path = (std::string(opt_.run_dir) + "/checkpoints/" + checkpoint_dir_name(state_.step));
  // Every rank holds the same weights and moments after each step: rank 0 writes them for all.
  if (dp_->rank() != 0) return path;
  if (last_checkpoint_step_ != state_.step) {
    backend_->sync_to_host();
    CheckpointWrite w;
    w.model = &model_;
    w.optimizer = &adamw_;
    w.state = &state_;
    w.extras = cfg_.model_extras;
    w.tokenizer_path = cfg_.tokenizer;
    w.train_config = cfg_.to_json();
    write_run_checkpoint(opt_.run_dir, cfg_.keep_checkpoints, w);
    last_checkpoint_step_ = state_.step;
    log_("sdt-native train: checkpoint " + path);
  }
  Json e = event("checkpoint");
  e.set("step", Json(state_.step)).set("path", Json(path));
  emit_(e);
  return path;
}

int Run::execute() {
  restore();
  backend_ = make_train_backend(opt_.device, model_, adamw_);
  io::StreamReader reader(opt_.stream_path);
  reader.set_stop_flag(stop_);
  skip_consumed(reader);
  const int64_t start_step = state_.step;
  start_step_ = start_step;
  run_start_ = std::chrono::steady_clock::now();
  io::StreamFrame frame;
  std::vector<io::StreamBatch> micro;
  const char* reason = "total_steps";
  try {
    while (state_.step < cfg_.total_steps) {
      if (opt_.stop_after_steps > 0 && state_.step - start_step >= opt_.stop_after_steps) {
        reason = "stop_after_steps";
        break;
      }
      const bool stopping = stop_requested();
      micro.clear();
      bool checkpoint_after = false;
      bool ended = false;
      const auto t_read = std::chrono::steady_clock::now();
      while (!stopping && static_cast<int>(micro.size()) < cfg_.micro_batches) {
        const bool at_boundary = micro.empty();
        if (!reader.next(frame, at_boundary)) {
          ended = true;
          reason = reader.interrupted() ? "signal" : "end_of_input";
          if (!reader.interrupted()) log_("sdt-native train: the stream ended without an end frame");
          break;
        }
        if (frame.kind != io::FrameKind::Eval) flush_evals();
        if (frame.kind == io::FrameKind::Train) {
          check_batch(frame.batch, reader.frames_read() - 1);
          micro.push_back(std::move(frame.batch));
        } else if (frame.kind == io::FrameKind::Eval) {
          eval_frame(frame.batch, reader.frames_read() - 1);
        } else if (frame.kind == io::FrameKind::Checkpoint) {
          if (at_boundary) {
            checkpoint();
          } else {
            checkpoint_after = true;
          }
        } else {
          ended = true;
          reason = "end_frame";
          break;
        }
      }
      // Every rank votes before the step, whatever its reading gave: one that stops or whose stream
      // ended stops them all at the same step (a rank left to train alone would wait in the sum).
      const bool signalled = stopping || (ended && reader.interrupted());
      std::vector<double> agreed{0.0, 0.0, signalled ? 1.0 : 0.0, ended && !signalled ? 1.0 : 0.0};
      for (const io::StreamBatch& b : micro) {
        agreed[0] += weight_sum(b);
        agreed[1] += static_cast<double>(b.B) * b.T;
      }
      dp_->sum(agreed);
      if (agreed[2] > 0 || agreed[3] > 0) {
        if (agreed[2] > 0) {
          reason = "signal";
        } else if (!ended) {
          reason = "rank_ended";
          log_("sdt-native train: another rank's stream ended; stopping with it");
        }
        if (!micro.empty()) {
          log_("sdt-native train: dropping " + std::to_string(micro.size()) + " train frame(s) of an incomplete step (" +
               std::to_string(cfg_.micro_batches) + " micro-batches per step)");
        }
        break;
      }
      const double read_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_read).count();
      train_step(micro, agreed[0], static_cast<int64_t>(agreed[1]), read_s);
      if (state_.nonfinite_in_a_row >= cfg_.max_nonfinite_steps) {
        emit_error(std::to_string(state_.nonfinite_in_a_row) +
                   " non-finite steps in a row (max_nonfinite_steps); stopping without a checkpoint. The last good checkpoint is " +
                   (latest_checkpoint(opt_.run_dir).empty() ? std::string("(none)") : latest_checkpoint(opt_.run_dir)) +
                   "; lower the learning rate or check the batches' weights, then resume.");
        return kExitNonFinite;
      }
      if (checkpoint_after || (cfg_.checkpoint_every > 0 && state_.step % cfg_.checkpoint_every == 0)) checkpoint();
    }
    flush_evals();
  } catch (const io::StreamError& e) {
    emit_error(e.what());
    if (state_.step > start_step && state_.step != last_checkpoint_step_) checkpoint();
    return kExitBadStream;
  } catch (const BadBatch& e) {
    emit_error(reader.path() + ": " + e.what());
    if (state_.step > start_step && state_.step != last_checkpoint_step_) checkpoint();
    return kExitBadStream;
  } catch (const std::exception& e) {
    // E.g. a checkpoint write that failed (disk full): the previous checkpoint is still complete.
    emit_error(std::string("internal error: ") + e.what());
    return kExitInternal;
  }
  checkpoint();
  done(reason);
  return kExitOk;
}

}  // namespace

int run_training(const TrainConfig& cfg, const TrainOptions& opt, const EventFn& emit, const LogFn& log,
                 const std::atomic<bool>* stop) {
  if (cfg.threads > 0) omp_set_num_threads(cfg.threads);
  Run run(cfg, opt, emit, log, stop);
  return run.execute();
}

}  // namespace sdt::train
