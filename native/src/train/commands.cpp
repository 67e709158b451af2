#include "train/commands.h"

#include "backend/backend.h"
#include "score/score.h"

#include <sys/prctl.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>

#include "io/binary.h"
#include "io/json.h"
#include "io/model_config_json.h"
#include "io/npy.h"
#include "io/stream.h"
#include "model/model.h"
#include "ranks/rendezvous.h"
#include "train/checkpoint.h"
#include "train/data_parallel.h"
#include "train/flags.h"
#include "sdt/splitmix64.h"
#include "train/train_config.h"
#include "train/trainer.h"

namespace sdt::train {

using io::Json;

namespace {

std::atomic<bool> g_stop{false};

extern "C" void on_stop_signal(int) { g_stop.store(true); }

// No SA_RESTART: a blocked read of the stream returns EINTR so the loop can stop between steps.
void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

void print_event(const Json& e) {
  const std::string line = e.dump() + "\n";
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

void print_log(const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); }

// Runs `body`, mapping the errors every subcommand shares to messages and exit codes.
template <typename F>
int guarded(const CommandFlags& cmd, int argc, char** argv, F body) {
  try {
    const ParsedFlags flags = parse_flags(cmd, argc, argv);
    if (flags.help) {
      std::fputs(cmd.usage().c_str(), stdout);
      return 0;
    }
    return body(flags);
  } catch (const FlagError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return kExitUsage;
  } catch (const io::StreamError& e) {
    std::fprintf(stderr, "sdt-native %s: %s\n", cmd.command.c_str(), e.what());
    return kExitBadStream;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sdt-native %s: %s\n", cmd.command.c_str(), e.what());
    return kExitUsage;
  }
}

// The checkpoint's model on --device (checked first, so a wrong device fails before any reading).
std::unique_ptr<Backend> load_checkpoint(const char* command, const ParsedFlags& f) {
  const Device device = parse_device(f.str("device"));
  const std::string problem = device_problem(device);
  if (!problem.empty()) throw FlagError(std::string("sdt-native ") + command + ": " + problem);
  io::ConfigExtras extras;
  auto model = std::make_unique<Model>(io::read_model_config(f.str("ckpt"), &extras));
  load_model_weights(*model, f.str("ckpt"));
  return make_backend(device, std::move(model), extras.del_token_id);
}

}  // namespace

int cmd_train(int argc, char** argv) {
  const CommandFlags cmd{
      "train",
      "Train from a trainer stream (schemas/stream.md). JSON-line events on stdout (step, eval, checkpoint,\n"
      "error, done), logs on stderr. SIGINT/SIGTERM: finish the step, checkpoint, exit 0.\n"
      "Exit codes: 0 done, 1 internal, 2 usage/config, 3 bad stream, 4 too many non-finite steps.",
      {
          {"stream", "FILE|-", "", "trainer stream file, or - for stdin", true},
          {"config", "TRAIN.json", "", "train config (docs/native.md)", true},
          {"out", "RUN_DIR", "", "run directory; checkpoints go to RUN_DIR/checkpoints/step-NNNNNN", true},
          {"resume", "", "", "continue from the latest complete checkpoint in RUN_DIR", false},
          {"init-from", "CKPT", "", "start from these weights (fresh optimizer, step 0)", false},
          {"stop-after-steps", "N", "0", "checkpoint and stop after N steps in this invocation (0: off)", false},
          {"device", "cpu|cuda", "cpu", "where forward, backward and the update run", false},
          {"rendezvous-timeout", "SECONDS", "600",
           "with more than one rank (RANK/WORLD_SIZE or SLURM_PROCID/SLURM_NTASKS): how long to wait for them all",
           false},
      },
      {}};
  return guarded(cmd, argc, argv, [&](const ParsedFlags& f) {
    // The ranks and the device first: a world or a --device that cannot train fails before the config or
    // the stream is read (a world's problem first, as it names the rank and what the world needs).
    const Device device = parse_device(f.str("device"));
    const dist::RankEnv ranks = dist::rank_env();
    if (const std::string problem = data_parallel_problem(ranks, device); !problem.empty()) {
      throw FlagError("sdt-native train: " + problem);
    }
    if (const std::string problem = device_problem(device); !problem.empty()) {
      throw FlagError("sdt-native train: " + problem);
    }
    if (ranks.world_size > 1) {
      // A rank waiting for a dead peer inside NCCL never returns: when the process that started this
      // one (sdt train) goes, the kernel ends this one too.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    }
    const int64_t timeout_s = f.integer("rendezvous-timeout");
    if (timeout_s < 1 || timeout_s > 86400) throw FlagError("sdt-native train: --rendezvous-timeout must be in [1, 86400] seconds");
    TrainConfig cfg = read_train_config(f.str("config"));
    TrainOptions opt;
    opt.device = device;
    opt.stream_path = f.str("stream");
    opt.run_dir = f.str("out");
    opt.resume = f.flag("resume");
    opt.init_from = f.str("init-from");
    opt.stop_after_steps = f.integer("stop-after-steps");
    if (opt.resume && !opt.init_from.empty()) throw FlagError("sdt-native train: --resume and --init-from exclude each other");
    install_stop_handlers();
    try {
      if (ranks.world_size > 1) {
        print_log("sdt-native train: rank " + std::to_string(ranks.rank) + " of " + std::to_string(ranks.world_size) +
                  " (" + ranks.source + " variables), GPU " + std::to_string(ranks.local_rank) + ", rendezvous " +
                  ranks.master_addr + ":" + std::to_string(ranks.master_port));
      }
      const std::unique_ptr<DataParallel> dp = make_data_parallel(ranks, device, static_cast<int>(timeout_s * 1000));
      opt.data_parallel = dp.get();
      return run_training(cfg, opt, print_event, print_log, &g_stop);
    } catch (const std::exception& e) {
      // Failures before the first step (nothing to resume, a bad stream header) as an event too, so
      // a parent that only reads stdout learns why.
      Json err = Json::object();
      err.set("event", Json("error")).set("step", Json(0)).set("message", Json(e.what()));
      print_event(err);
      throw;
    }
  });
}

int cmd_init(int argc, char** argv) {
  const CommandFlags cmd{"init",
                         "Write a randomly initialised checkpoint (config.json, model.safetensors, tokenizer.json,\n"
                         "COMPLETE) from a model config.json or a train config's \"model\".",
                         {
                             {"config", "FILE", "", "config.json, or TRAIN.json (its \"model\" and \"tokenizer\" are used)", true},
                             {"out", "CKPT_DIR", "", "checkpoint directory to write", true},
                             {"seed", "N", "0", "initialisation seed (as the trainer's \"seed\")", false},
                             {"tokenizer", "FILE", "", "tokenizer.json to copy in (overrides TRAIN.json's)", false},
                         },
                         {}};
  return guarded(cmd, argc, argv, [&](const ParsedFlags& f) {
    const Json j = io::read_json_file(f.str("config"));
    io::ConfigExtras extras;
    ModelConfig mc;
    std::string tokenizer = f.str("tokenizer");
    if (j.is_object() && j.has("model")) {
      const TrainConfig tc = train_config_from_json(j, f.str("config"));
      mc = tc.model;
      extras = tc.model_extras;
      if (tokenizer.empty()) tokenizer = tc.tokenizer;
    } else {
      mc = io::model_config_from_json(j, f.str("config"), &extras);
    }
    Model model(mc);
    SplitMix64 rng{static_cast<uint64_t>(f.integer("seed"))};
    model.init(rng.next());  // same first draw as `sdt-native train`, so equal seeds give equal weights
    CheckpointWrite w;
    w.model = &model;
    w.extras = extras;
    w.tokenizer_path = tokenizer;
    write_checkpoint_dir(f.str("out"), w);
    Json out = Json::object();
    out.set("path", Json(f.str("out"))).set("parameters", Json(model.num_params()));
    print_event(out);
    return 0;
  });
}

int cmd_forward(int argc, char** argv) {
  const CommandFlags cmd{
      "forward",
      "Logits of a batch: reads token ids [B, T] (or [T]) from .npy (int32/int64), writes float32 logits\n"
      "[B, T, vocab] (the <|mask|> column is -inf). With --targets, prints the weighted CE loss as JSON.",
      {
          {"ckpt", "DIR", "", "checkpoint directory (config.json, model.safetensors)", true},
          {"tokens", "IN.npy", "", "input token ids", true},
          {"out", "LOGITS.npy", "", "where to write the logits (omit with --targets to only print the loss)", false},
          {"mode", "MODE", "checkpoint's", "attention mode: bidirectional|causal|block|block-two-stream (rows [noisy | clean])", false},
          {"targets", "T.npy", "", "target ids like --tokens (negative: no loss)", false},
          {"weights", "W.npy", "", "float32 per-token loss weights (default: 1)", false},
          {"segments", "S.npy", "", "segment ids for packed rows (int32/int64)", false},
          {"device", "cpu|cuda", "cpu", "where the model runs", false},
      },
      {}};
  return guarded(cmd, argc, argv, [&](const ParsedFlags& f) {
    std::unique_ptr<Backend> model = load_checkpoint("forward", f);
    AttentionMode mode = model->config().attention_mode;
    if (f.str("mode") != "checkpoint's" && !parse_attention_mode(f.str("mode"), &mode)) {
      throw FlagError("sdt-native forward: --mode must be bidirectional, causal, block or block-two-stream; got \"" + f.str("mode") + "\"");
    }
    const io::NpyArray tok = io::read_npy(f.str("tokens"));
    if (tok.shape.empty() || tok.shape.size() > 2) throw FlagError(f.str("tokens") + ": expected shape [B, T] or [T]");
    const int B = tok.shape.size() == 2 ? static_cast<int>(tok.shape[0]) : 1;
    const int T = static_cast<int>(tok.shape.back());
    const std::vector<int32_t> ids = tok.to_i32();
    auto same_shape = [&](const io::NpyArray& a, const std::string& path) {
      if (a.numel() != tok.numel()) throw FlagError(path + ": shape must match --tokens (" + std::to_string(B) + " x " + std::to_string(T) + ")");
    };
    std::vector<int32_t> segments;
    if (!f.str("segments").empty()) {
      const io::NpyArray s = io::read_npy(f.str("segments"));
      same_shape(s, f.str("segments"));
      segments = s.to_i32();
    }
    const int V = model->config().vocab_size;
    if (!f.str("out").empty()) {
      std::vector<float> logits(static_cast<size_t>(B) * T * V);
      model->forward_batch_logits(ids.data(), B, T, mode, segments.empty() ? nullptr : segments.data(), logits.data());
      const std::vector<int64_t> shape = {B, T, V};
      io::write_npy_f32(f.str("out"), shape, logits.data());
    } else if (f.str("targets").empty()) {
      throw FlagError("sdt-native forward: give --out (logits) and/or --targets (loss)");
    }
    Json out = Json::object();
    out.set("B", Json(B)).set("T", Json(T)).set("vocab_size", Json(V)).set("mode", Json(attention_mode_name(mode)));
    if (!f.str("out").empty()) out.set("out", Json(f.str("out")));
    if (!f.str("targets").empty()) {
      const io::NpyArray t = io::read_npy(f.str("targets"));
      same_shape(t, f.str("targets"));
      const std::vector<int32_t> targets = t.to_i32();
      std::vector<float> weights;
      if (!f.str("weights").empty()) {
        const io::NpyArray w = io::read_npy(f.str("weights"));
        same_shape(w, f.str("weights"));
        weights = w.to_f32();
      } else {
        weights.assign(ids.size(), 1.0f);
      }
      double norm = 0.0;
      for (size_t i = 0; i < weights.size(); ++i) norm += targets[i] >= 0 ? weights[i] : 0.0f;
      Batch b;
      b.B = B;
      b.T = T;
      b.input_ids = ids.data();
      b.target_ids = targets.data();
      b.weights = weights.data();
      b.segment_ids = segments.empty() ? nullptr : segments.data();
      b.mode = mode;
      const LossStats st = model->forward_loss(b, norm > 0 ? norm : 1.0, nullptr);
      out.set("loss", Json(st.loss)).set("weight_sum", Json(st.weight_sum)).set("targets", Json(st.targets));
    }
    print_event(out);
    return 0;
  });
}

int cmd_score(int argc, char** argv) {
  const CommandFlags cmd{
      "score",
      "Per-row log-probability of the target tokens: out[b] = sum over t with target >= 0 of\n"
      "log p(target[b, t] | states[b]) (natural log, <|mask|> excluded from the softmax), e.g. the ELBO terms\n"
      "of sampler trajectories. Writes float32 [B] to --out and prints a JSON summary.",
      {
          {"ckpt", "DIR", "", "checkpoint directory (config.json, model.safetensors)", true},
          {"states", "S.npy", "", "input token ids [B, T] (int32/int64)", true},
          {"targets", "T.npy", "", "target ids [B, T]; negative: not scored", true},
          {"out", "LP.npy", "", "where to write the float32 [B] log-probabilities", true},
          {"segments", "G.npy", "", "segment ids [B, T]; negative marks padding", false},
          {"mode", "MODE", "checkpoint's", "attention mode: bidirectional|causal|block|block-two-stream (rows [noisy | clean])", false},
          {"device", "cpu|cuda", "cpu", "where the model runs", false},
      },
      {}};
  return guarded(cmd, argc, argv, [&](const ParsedFlags& f) {
    std::unique_ptr<Backend> model = load_checkpoint("score", f);
    AttentionMode mode = model->config().attention_mode;
    if (f.str("mode") != "checkpoint's" && !parse_attention_mode(f.str("mode"), &mode)) {
      throw FlagError("sdt-native score: --mode must be bidirectional, causal, block or block-two-stream; got \"" + f.str("mode") + "\"");
    }
    const io::NpyArray st = io::read_npy(f.str("states"));
    if (st.shape.size() != 2) throw FlagError(f.str("states") + ": expected shape [B, T]");
    const int B = static_cast<int>(st.shape[0]);
    const int T = static_cast<int>(st.shape[1]);
    auto load_like = [&](const std::string& path) {
      const io::NpyArray a = io::read_npy(path);
      if (a.shape != st.shape) throw FlagError(path + ": shape must match --states (" + std::to_string(B) + " x " + std::to_string(T) + ")");
      return a.to_i32();
    };
    const std::vector<int32_t> ids = st.to_i32();
    const std::vector<int32_t> targets = load_like(f.str("targets"));
    std::vector<int32_t> segments;
    if (!f.str("segments").empty()) segments = load_like(f.str("segments"));
    // Rows go through the model a few at a time so the logits of a large trajectory file stay bounded.
    const score::StepScores scores = score::score_steps(*model, ids.data(), targets.data(),
                                                        segments.empty() ? nullptr : segments.data(), B, T, mode, 16);
    std::vector<float> logp(static_cast<size_t>(B));
    double total = 0.0;
    int64_t scored = 0;
    for (int r = 0; r < B; ++r) {
      logp[static_cast<size_t>(r)] = static_cast<float>(scores.logprob[static_cast<size_t>(r)]);
      total += scores.logprob[static_cast<size_t>(r)];
      scored += scores.counts[static_cast<size_t>(r)];
    }
    io::write_npy_f32(f.str("out"), {B}, logp.data());
    Json out = Json::object();
    out.set("B", Json(B)).set("T", Json(T)).set("mode", Json(attention_mode_name(mode))).set("out", Json(f.str("out")))
        .set("targets", Json(scored)).set("total_logprob", Json(total));
    print_event(out);
    return 0;
  });
}

int cmd_stream_check(int argc, char** argv) {
  const CommandFlags cmd{"stream-check",
                         "Read a trainer stream and print a JSON digest of every frame (kind, tag, shape, CRC-32 of\n"
                         "each decoded array, weight sum). Exit 3 when the stream is truncated or corrupt.",
                         {},
                         {"FILE  the stream file (- for stdin)"}};
  return guarded(cmd, argc, argv, [&](const ParsedFlags& f) {
    if (f.positionals.size() != 1) throw FlagError("sdt-native stream-check: give exactly one FILE; run `sdt-native stream-check --help`");
    io::StreamReader reader(f.positionals[0]);
    Json frames = Json::array();
    int64_t counts[5] = {0, 0, 0, 0, 0};
    io::StreamFrame fr;
    while (reader.next(fr)) {
      Json j = Json::object();
      j.set("kind", Json(io::frame_kind_name(fr.kind)));
      ++counts[static_cast<int>(fr.kind)];
      if (fr.kind == io::FrameKind::Train || fr.kind == io::FrameKind::Eval) {
        const io::StreamBatch& b = fr.batch;
        const size_t n = b.input_ids.size();
        double wsum = 0.0;
        for (const float w : b.weights) wsum += static_cast<double>(w);
        j.set("tag", Json(b.tag))
            .set("B", Json(b.B))
            .set("T", Json(b.T))
            .set("input_crc", Json(static_cast<int64_t>(io::crc32(b.input_ids.data(), n * 4))))
            .set("target_crc", Json(static_cast<int64_t>(io::crc32(b.target_ids.data(), n * 4))))
            .set("weight_crc", Json(static_cast<int64_t>(io::crc32(b.weights.data(), n * 4))))
            .set("segment_crc", b.segment_ids.empty() ? Json(nullptr)
                                                      : Json(static_cast<int64_t>(io::crc32(b.segment_ids.data(), n * 4))))
            .set("weight_sum", Json(wsum));
      }
      frames.push(j);
    }
    Json out = Json::object();
    out.set("version", Json(static_cast<int64_t>(reader.header().version)))
        .set("first_train_frame", Json(static_cast<int64_t>(reader.header().first_train_frame)))
        .set("train_frames", Json(counts[1]))
        .set("eval_frames", Json(counts[2]))
        .set("control_frames", Json(counts[3] + counts[4]))
        .set("bytes", Json(static_cast<int64_t>(reader.bytes_read())))
        .set("frames", frames);
    print_event(out);
    return 0;
  });
}

}  // namespace sdt::train
