#include "score/commands.h"

#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "io/json.h"
#include "io/model_config_json.h"
#include "io/npy.h"
#include "model/model.h"
#include "score/score.h"
#include "train/checkpoint.h"
#include "train/flags.h"

namespace sdt::score {

namespace {

using train::FlagError;

std::vector<int32_t> read_rows(const std::string& path, const char* flag, int64_t* N, int64_t* T) {
  const io::NpyArray a = io::read_npy(path);
  if (a.shape.size() != 2) {
    throw FlagError("sdt-native score: " + std::string(flag) + " " + path + ": expected shape [N, T], got " +
                    std::to_string(a.shape.size()) + " dimensions");
  }
  if (*N < 0) {
    *N = a.shape[0];
    *T = a.shape[1];
  } else if (a.shape[0] != *N || a.shape[1] != *T) {
    throw FlagError("sdt-native score: " + std::string(flag) + " " + path + ": shape must match --states (" +
                    std::to_string(*N) + " x " + std::to_string(*T) + ")");
  }
  return a.to_i32();
}

}  // namespace

int cmd_score(int argc, char** argv) {
  const train::CommandFlags cmd{
      "score",
      "Per-step log-probabilities of trajectories (ELBO terms). Row i of --states is the sequence the\n"
      "sampler saw before a step (<|mask|> where nothing is committed); row i of --targets holds the\n"
      "tokens that step committed (negative elsewhere). Writes float32 sums [N] to --out and prints\n"
      "a JSON line {rows, positions, logprob_sum, out}.",
      {
          {"ckpt", "DIR", "", "checkpoint directory (config.json, model.safetensors)", true},
          {"states", "S.npy", "", "int32/int64 [N, T] input ids", true},
          {"targets", "C.npy", "", "int32/int64 [N, T] committed tokens, negative where none", true},
          {"segments", "G.npy", "", "segment ids [N, T]; negative marks padding (default: none)", false},
          {"out", "LOGP.npy", "", "where to write the per-row log-prob sums (float32 [N])", true},
          {"mode", "MODE", "checkpoint's", "attention mode: bidirectional|causal|block", false},
          {"batch", "ROWS", "16", "rows per forward pass", false},
      },
      {}};
  try {
    const train::ParsedFlags f = train::parse_flags(cmd, argc, argv);
    if (f.help) {
      std::fputs(cmd.usage().c_str(), stdout);
      return 0;
    }
    auto model = std::make_unique<Model>(io::read_model_config(f.str("ckpt")));
    train::load_model_weights(*model, f.str("ckpt"));
    AttentionMode mode = model->config().attention_mode;
    if (f.str("mode") != "checkpoint's" && !parse_attention_mode(f.str("mode"), &mode)) {
      throw FlagError("sdt-native score: --mode must be bidirectional, causal or block; got \"" + f.str("mode") + "\"");
    }
    const long long batch = f.integer("batch");
    if (batch < 1) throw FlagError("sdt-native score: --batch must be >= 1");
    int64_t N = -1;
    int64_t T = -1;
    const std::vector<int32_t> states = read_rows(f.str("states"), "--states", &N, &T);
    const std::vector<int32_t> targets = read_rows(f.str("targets"), "--targets", &N, &T);
    std::vector<int32_t> segments;
    if (!f.str("segments").empty()) segments = read_rows(f.str("segments"), "--segments", &N, &T);
    const StepScores s = score_steps(*model, states.data(), targets.data(), segments.empty() ? nullptr : segments.data(),
                                     static_cast<int>(N), static_cast<int>(T), mode, static_cast<int>(batch));
    std::vector<float> lp(s.logprob.size());
    double total = 0.0;
    int64_t positions = 0;
    for (size_t i = 0; i < lp.size(); ++i) {
      lp[i] = static_cast<float>(s.logprob[i]);
      total += s.logprob[i];
      positions += s.counts[i];
    }
    io::write_npy_f32(f.str("out"), {N}, lp.data());
    io::Json out = io::Json::object();
    out.set("rows", io::Json(N))
        .set("positions", io::Json(positions))
        .set("logprob_sum", io::Json(total))
        .set("out", io::Json(f.str("out")));
    const std::string line = out.dump() + "\n";
    std::fwrite(line.data(), 1, line.size(), stdout);
    return 0;
  } catch (const FlagError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sdt-native score: %s\n", e.what());
    return 2;
  }
}

}  // namespace sdt::score
