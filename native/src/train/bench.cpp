// `sdt-native bench-train`: how fast a training step runs compared with the GEMM it is built on,
// both measured in the same process on the model's own GEMM shapes.
#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "gemm/gemm.h"
#include "io/json.h"
#include "io/model_config_json.h"
#include "model/model.h"
#include "train/commands.h"
#include "train/flags.h"
#include "train/optimizer.h"
#include "sdt/splitmix64.h"
#include "train/train_config.h"
#include "train/trainer.h"

namespace sdt::train {

using io::Json;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t c = line.find(':');
      return c == std::string::npos ? line : line.substr(c + 2);
    }
  }
  return "unknown";
}

ModelConfig default_bench_model() {
  ModelConfig c;
  c.vocab_size = 8192;
  c.hidden_size = 256;
  c.intermediate_size = 704;
  c.num_hidden_layers = 4;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 4;
  c.max_position_embeddings = 1024;
  c.mask_token_id = 3;
  c.attention_mode = AttentionMode::Bidirectional;
  return c;
}

struct GemmShape {
  const char* what;
  int M, N, K;  // forward: [M, K] x [N, K]^T
  int count;    // calls of this shape per step (per form)
};

// The three GEMM forms a linear layer runs in a training step (forward y = x W^T, dx = dy W,
// dW += dy^T x) on one shape, with its own buffers.
class LinearGemms {
 public:
  explicit LinearGemms(const GemmShape& s)
      : s_(s), x_(static_cast<size_t>(s.M) * s.K, 0.01f), w_(static_cast<size_t>(s.N) * s.K, 0.02f),
        y_(static_cast<size_t>(s.M) * s.N, 0.0f), dx_(x_.size()), dw_(w_.size(), 0.0f) {}

  void run() {
    gemm(false, true, s_.M, s_.N, s_.K, 1.0f, x_.data(), s_.K, w_.data(), s_.K, 0.0f, y_.data(), s_.N);
    gemm(false, false, s_.M, s_.K, s_.N, 1.0f, y_.data(), s_.N, w_.data(), s_.K, 0.0f, dx_.data(), s_.K);
    gemm(true, false, s_.N, s_.K, s_.M, 1.0f, y_.data(), s_.N, x_.data(), s_.K, 1.0f, dw_.data(), s_.K);
  }
  double flops() const { return 3.0 * 2.0 * s_.M * static_cast<double>(s_.N) * s_.K; }
  const GemmShape& shape() const { return s_; }

 private:
  GemmShape s_;
  std::vector<float> x_, w_, y_, dx_, dw_;
};

}  // namespace

int cmd_bench_train(int argc, char** argv) {
  const CommandFlags cmd{
      "bench-train",
      "Benchmark a training step (forward, backward, clip, AdamW) against the GEMM backend on the model's own\n"
      "GEMM shapes, in one run. Step FLOPs = 6 * N_matmul * tokens + 12 * L * B * T^2 * hidden (attention\n"
      "QK^T and AV, forward and backward), N_matmul = parameters of the projections and lm_head (not the\n"
      "embedding lookup, not norms). Prints JSON on stdout.",
      {
          {"config", "FILE", "", "model config.json or TRAIN.json (default: vocab 8192, hidden 256, 4 layers, 4 heads, I=704)", false},
          {"batch", "B", "4", "rows per batch", false},
          {"seq", "T", "256", "tokens per row", false},
          {"steps", "N", "8", "measured steps (after 2 warm-up steps), each followed by the same GEMMs alone", false},
          {"threads", "N", "0", "OpenMP threads (0: default)", false},
      },
      {}};
  try {
    const ParsedFlags f = parse_flags(cmd, argc, argv);
    if (f.help) {
      std::fputs(cmd.usage().c_str(), stdout);
      return 0;
    }
    ModelConfig mc = default_bench_model();
    if (!f.str("config").empty()) {
      const Json j = io::read_json_file(f.str("config"));
      mc = j.has("model") ? train_config_from_json(j, f.str("config")).model : io::model_config_from_json(j, f.str("config"));
    }
    const int B = static_cast<int>(f.integer("batch"));
    const int T = static_cast<int>(f.integer("seq"));
    const int steps = static_cast<int>(f.integer("steps"));
    if (B < 1 || T < 1 || steps < 1) throw FlagError("sdt-native bench-train: --batch, --seq and --steps must be >= 1");
    if (T > mc.max_position_embeddings) throw FlagError("sdt-native bench-train: --seq exceeds the model's max_position_embeddings");
    if (f.integer("threads") > 0) omp_set_num_threads(static_cast<int>(f.integer("threads")));

    Model model(mc);
    model.init(1);
    AdamW opt(AdamWConfig{}, model.num_params());
    const int N = B * T;
    SplitMix64 rng{7};
    std::vector<int32_t> ids(static_cast<size_t>(N)), targets(static_cast<size_t>(N));
    std::vector<float> weights(static_cast<size_t>(N), 1.0f);
    for (int i = 0; i < N; ++i) {
      int32_t t = static_cast<int32_t>(rng.next() % static_cast<uint64_t>(mc.vocab_size));
      if (t == mc.mask_token_id) t = (t + 1) % mc.vocab_size;
      targets[static_cast<size_t>(i)] = t;
      ids[static_cast<size_t>(i)] = (rng.next() % 2 == 0) ? mc.mask_token_id : t;  // half masked, like the mask objective
    }
    Batch batch;
    batch.B = B;
    batch.T = T;
    batch.input_ids = ids.data();
    batch.target_ids = targets.data();
    batch.weights = weights.data();
    batch.mode = mc.attention_mode;

    // FLOP model of one step.
    int64_t n_matmul = 0;
    for (const ParamView& p : model.params()) {
      if (p.shape.size() == 2 && (p.name != "model.embed_tokens.weight" || mc.tie_word_embeddings)) n_matmul += p.numel;
    }
    const double L = mc.num_hidden_layers, D = mc.hidden_size;
    const double attn_flops = 12.0 * L * B * static_cast<double>(T) * T * D;
    const double step_flops = 6.0 * static_cast<double>(n_matmul) * N + attn_flops;

    // The same GEMM backend on the model's shapes (fused qkv and gate_up, as the model runs them),
    // each called as often as a step calls it.
    const int hd = mc.head_dim();
    const int S = (mc.num_attention_heads + 2 * mc.num_key_value_heads) * hd;
    const int A = mc.num_attention_heads * hd;
    const int I = mc.intermediate_size;
    const int lm_rows = std::max(1, std::min(N, (1 << 22) / mc.vocab_size));
    std::vector<LinearGemms> gemms;
    gemms.emplace_back(GemmShape{"qkv_proj", N, S, mc.hidden_size, mc.num_hidden_layers});
    gemms.emplace_back(GemmShape{"o_proj", N, mc.hidden_size, A, mc.num_hidden_layers});
    gemms.emplace_back(GemmShape{"gate_up_proj", N, 2 * I, mc.hidden_size, mc.num_hidden_layers});
    gemms.emplace_back(GemmShape{"down_proj", N, mc.hidden_size, I, mc.num_hidden_layers});
    gemms.emplace_back(GemmShape{"lm_head", lm_rows, mc.vocab_size, mc.hidden_size, (N + lm_rows - 1) / lm_rows});
    double gemm_flops = 0.0;
    for (const LinearGemms& g : gemms) gemm_flops += g.flops() * g.shape().count;
    auto gemm_step = [&] {
      const auto t0 = Clock::now();
      for (LinearGemms& g : gemms) {
        for (int c = 0; c < g.shape().count; ++c) g.run();
      }
      return seconds_since(t0);
    };

    // Steps and GEMM-only steps alternate, so both see the same machine (shared cores, clocks).
    std::vector<double> step_s, fb_s, gemm_s;
    double loss = 0.0;
    for (int s = 0; s < steps + 2; ++s) {
      const auto t0 = Clock::now();
      model.zero_grad();
      loss = model.forward_backward(batch, static_cast<double>(N)).loss;
      const double t_fb = seconds_since(t0);
      const double norm = global_grad_norm(model.params());
      const float clip = clip_factor(norm, 1.0);
      if (clip < 1.0f) scale_grads(model.params(), clip);
      opt.step(model.params(), 1e-4);
      const double t_all = seconds_since(t0);
      const double t_gemm = gemm_step();
      if (s >= 2) {
        fb_s.push_back(t_fb);
        step_s.push_back(t_all);
        gemm_s.push_back(t_gemm);
      }
    }
    const double t_step = median(step_s);
    const double gemm_time = median(gemm_s);

    Json per_shape = Json::array();
    for (LinearGemms& g : gemms) {
      std::vector<double> t;
      for (int r = 0; r < 5; ++r) {
        const auto t0 = Clock::now();
        g.run();
        t.push_back(seconds_since(t0));
      }
      const GemmShape& sh = g.shape();
      Json js = Json::object();
      js.set("name", Json(sh.what)).set("M", Json(sh.M)).set("N", Json(sh.N)).set("K", Json(sh.K))
          .set("calls_per_step", Json(sh.count)).set("gflops", Json(g.flops() / median(t) / 1e9));
      per_shape.push(js);
    }
    const double step_gflops = step_flops / t_step / 1e9;
    const double gemm_gflops = gemm_flops / gemm_time / 1e9;
    struct rusage ru {};
    getrusage(RUSAGE_SELF, &ru);

    Json hw = Json::object();
    hw.set("cpu", Json(cpu_model())).set("omp_threads", Json(omp_get_max_threads())).set("gemm_backend", Json(gemm_backend_name()));
    Json cfgj = Json::object();
    cfgj.set("model", io::model_config_to_json(mc)).set("parameters", Json(model.num_params())).set("matmul_parameters", Json(n_matmul))
        .set("batch", Json(B)).set("seq", Json(T)).set("tokens_per_step", Json(N)).set("attention_mode", Json(attention_mode_name(mc.attention_mode)));
    Json out = Json::object();
    out.set("hardware", hw)
        .set("config", cfgj)
        .set("flops_formula", Json("6 * matmul_parameters * tokens + 12 * layers * batch * seq^2 * hidden"))
        .set("step_seconds_median", Json(t_step))
        .set("forward_backward_seconds_median", Json(median(fb_s)))
        .set("gemm_seconds_per_step", Json(gemm_time))
        .set("tokens_per_s", Json(N / t_step))
        .set("step_gflops", Json(step_gflops))
        .set("gemm_gflops", Json(gemm_gflops))
        .set("ratio_step_to_gemm", Json(step_gflops / gemm_gflops))
        .set("attention_flop_share", Json(attn_flops / step_flops))
        .set("gemm_shapes", per_shape)
        .set("final_loss", Json(loss))
        .set("peak_rss_mib", Json(static_cast<double>(ru.ru_maxrss) / 1024.0));
    std::printf("%s\n", out.dump().c_str());
    return 0;
  } catch (const FlagError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sdt-native bench-train: %s\n", e.what());
    return kExitUsage;
  }
}

}  // namespace sdt::train
