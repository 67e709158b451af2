// `sdt-native gpu-check`: the CUDA backend against the CPU backend, kernel by kernel, on fresh
// random inputs; with --bench, the two ceilings the performance goals are measured against
// (cuBLASLt bf16 GEMM rate and device copy bandwidth).
#ifdef SDT_HAVE_CUDA
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cuda/commands.h"
#include "cuda/cublaslt.h"
#include "cuda/cuda_lm.h"
#include "cuda/cuda_model.h"
#include "cuda/nccl.h"
#include "cuda/parity.h"
#include "cuda/parity_checks.h"
#include "attention.cuh"
#include "device.cuh"
#include "gemm/gemm.h"
#include "io/model_config_json.h"
#include "model/model.h"
#include "sampler/decode.h"
#include "train/checkpoint.h"
#include "train/optimizer.h"

namespace sdt::cuda {
namespace {

using namespace parity;

struct Options {
  uint64_t seed = 0;
  bool seed_given = false;
  std::string only;
  std::string bench;  // comma-separated bench parts; empty: none
  std::string checkpoint;
  std::string attention;  // "scalar" | "tc"; empty: the library's default
  double gemm_tflops = 0.0;  // ceilings measured by an earlier process (0: measure here if needed)
  double copy_gbs = 0.0;
  double peak_tflops = 0.0;  // the device's datasheet dense bf16 rate (0: not known)
  bool graphs = false;       // train bench: record and replay the step as a CUDA graph
  int device = 0;
};

const char* const kGroups[] = {"embedding", "rmsnorm",  "rope",  "swiglu", "attention", "chunk",
                               "cross_entropy", "adamw", "sampler", "gemm", "nccl", "model",
                               "decode", "train", "attention_tc", "graphs"};
const char* const kBenchParts[] = {"gemm", "copy", "attention", "attention_tc", "train", "decode"};

void print_usage() {
  std::printf(
      "Usage: sdt-native gpu-check [options]\n\n"
      "Runs CUDA kernels against the CPU reference on fresh random inputs and prints a table row per\n"
      "output as soon as it is measured: relative error ||gpu - cpu|| / ||cpu|| against its tolerance\n"
      "(bf16 outputs 1e-2, fp32 1e-4, integer outputs exact), the largest absolute error, and the\n"
      "elements left unwritten (outputs are filled with NaN first). Lines starting with RESULT are\n"
      "for bench/gpu-check.sh's summary.\n\n"
      "Options:\n"
      "  --seed N      random seed (default: drawn from the clock, printed)\n"
      "  --only LIST   run only these comma-separated groups (default: all). Groups: embedding,\n"
      "                rmsnorm, rope, swiglu, attention, chunk, cross_entropy, adamw, sampler, gemm,\n"
      "                nccl, model (a training step against the CPU model, one row per parameter\n"
      "                tensor), decode (logits and cached decoding against the CPU model), train (200\n"
      "                steps on the GPU, the loss must fall), attention_tc (the tensor-core kernels),\n"
      "                graphs (a recorded training step replayed against the eager one)\n"
      "  --bench LIST  run these comma-separated benchmarks instead of checks (\"all\": every one):\n"
      "                gemm (cuBLASLt bf16 8192^3 rate), copy (device copy bandwidth), attention /\n"
      "                attention_tc (forward and backward at the 125M training shape), train (one\n"
      "                step of a ~125M model at sequence 1024, per phase, MFU), decode\n"
      "                (autoregressive against block decoding, batch 1)\n"
      "  --attention K scalar | tc: the attention kernels of the model, train and decode runs\n"
      "                (default: tc, or scalar when SDT_ATTENTION=scalar)\n"
      "  --gemm-tflops X, --copy-gbs X  ceilings measured earlier (train and decode need them;\n"
      "                default: measured in this process)\n"
      "  --peak-tflops X  the device's datasheet dense bf16 rate, for MFU against peak (default: off)\n"
      "  --graphs      train bench: replay the step as a CUDA graph (default: eager)\n"
      "  --checkpoint DIR  decode with this trained checkpoint (default: random weights, which never\n"
      "                reach the confidence threshold, so block decoding's speed-up is meaningless)\n"
      "  --device N    CUDA device (default 0)\n"
      "  --help        this text\n\n"
      "Exit status: 0 all checks pass, 1 a check or benchmark failed, 2 usage error or no CUDA device.\n");
}

// Splits a comma-separated list; returns false (after printing why) when an item is not in `known`.
template <size_t N>
bool known_items(const std::string& list, const char* const (&known)[N], const char* flag) {
  size_t at = 0;
  while (at <= list.size()) {
    const size_t comma = std::min(list.find(',', at), list.size());
    const std::string item = list.substr(at, comma - at);
    bool found = item.empty() || item == "all";
    for (const char* k : known) found = found || item == k;
    if (!found) {
      std::fprintf(stderr, "gpu-check: %s: unknown name \"%s\"; see --help\n", flag, item.c_str());
      return false;
    }
    at = comma + 1;
  }
  return true;
}

bool parse_double(const char* flag, const char* v, double& out) {
  char* end = nullptr;
  out = std::strtod(v, &end);
  if (!end || *end || out < 0.0) {
    std::fprintf(stderr, "gpu-check: %s \"%s\" is not a non-negative number\n", flag, v);
    return false;
  }
  return true;
}

// Returns false (after printing why) on a usage error.
bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* flag) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "gpu-check: %s needs a value; see --help\n", flag);
        return nullptr;
      }
      return argv[++i];
    };
    const char* v = nullptr;
    if (a == "--seed") {
      if (!(v = value("--seed"))) return false;
      char* end = nullptr;
      o.seed = std::strtoull(v, &end, 10);
      if (!end || *end) {
        std::fprintf(stderr, "gpu-check: --seed \"%s\" is not a non-negative integer\n", v);
        return false;
      }
      o.seed_given = true;
    } else if (a == "--only") {
      if (!(v = value("--only"))) return false;
      o.only = v;
      if (!known_items(o.only, kGroups, "--only")) return false;
    } else if (a == "--bench") {
      if (!(v = value("--bench"))) return false;
      o.bench = v;
      if (!known_items(o.bench, kBenchParts, "--bench")) return false;
    } else if (a == "--attention") {
      if (!(v = value("--attention"))) return false;
      o.attention = v;
      if (o.attention != "scalar" && o.attention != "tc") {
        std::fprintf(stderr, "gpu-check: --attention \"%s\": use scalar or tc\n", v);
        return false;
      }
    } else if (a == "--gemm-tflops") {
      if (!(v = value("--gemm-tflops")) || !parse_double("--gemm-tflops", v, o.gemm_tflops)) return false;
    } else if (a == "--copy-gbs") {
      if (!(v = value("--copy-gbs")) || !parse_double("--copy-gbs", v, o.copy_gbs)) return false;
    } else if (a == "--peak-tflops") {
      if (!(v = value("--peak-tflops")) || !parse_double("--peak-tflops", v, o.peak_tflops)) return false;
    } else if (a == "--graphs") {
      o.graphs = true;
    } else if (a == "--device") {
      if (!(v = value("--device"))) return false;
      o.device = std::atoi(v);
    } else if (a == "--checkpoint") {
      if (!(v = value("--checkpoint"))) return false;
      o.checkpoint = v;
    } else {
      std::fprintf(stderr, "gpu-check: unknown option \"%s\"; run `sdt-native gpu-check --help`\n", a.c_str());
      return false;
    }
  }
  return true;
}

void check_gemm(Random& rng, Table& table) {
  CublasLt lt;
  std::printf("cuBLASLt: %s (version %zu)\n", lt.library_file().c_str(), lt.version());
  const int M = 264, N = 392, K = 320;  // leading dimensions multiples of 8 (16 bytes)
  for (int ta = 0; ta < 2; ++ta) {
    for (int tb = 0; tb < 2; ++tb) {
      std::vector<float> a = rng.normal_vector(static_cast<size_t>(M) * K, 1.0f);
      std::vector<float> b = rng.normal_vector(static_cast<size_t>(K) * N, 1.0f);
      round_to_bf16(a);
      round_to_bf16(b);
      const int lda = ta ? M : K, ldb = tb ? K : N;
      std::vector<float> c0 = rng.normal_vector(static_cast<size_t>(M) * N, 1.0f);
      round_to_bf16(c0);  // the bf16 output's beta input must be representable
      auto da = upload_bf16(a);
      auto db = upload_bf16(b);
      const std::string name = std::string("cublaslt gemm ") + (ta ? "T" : "N") + (tb ? "T" : "N");
      const std::string shape = std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K);
      {
        std::vector<float> ref = c0;
        sdt::gemm_naive(ta, tb, M, N, K, 0.5f, a.data(), lda, b.data(), ldb, 0.25f, ref.data(), N);
        auto dc = upload_f32(c0);
        lt.matmul(ta, tb, M, N, K, 0.5f, da.get(), lda, db.get(), ldb, 0.25f, dc.get(), OutType::F32, N, nullptr);
        table.compare(name + " ->fp32", shape, "fp32", download_f32(dc), ref, kF32Tolerance, false);
      }
      {
        std::vector<float> ref(static_cast<size_t>(M) * N, 0.0f);
        sdt::gemm_naive(ta, tb, M, N, K, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, ref.data(), N);
        DeviceBuffer<bf16> dc(ref.size());
        fill_u16(dc.get(), kBf16NaN, dc.size(), nullptr);
        // beta = 0: cuBLASLt must not read C, so the NaN poison must not leak into the result.
        lt.matmul(ta, tb, M, N, K, 1.0f, da.get(), lda, db.get(), ldb, 0.0f, dc.get(), OutType::BF16, N, nullptr);
        table.compare(name + " ->bf16", shape, "bf16", download_bf16(dc), ref, kBf16Tolerance, true);
      }
    }
  }
}

// Both ways of building communicators, each summing one rank's buffer (the sum of one is itself):
// ncclCommInitAll over device 0, and this process as rank 0 of the world the environment names
// (a world of 1 here: ncclGetUniqueId, the rendezvous's no-network path, ncclCommInitRank).
void check_nccl(Random& rng, Table& table) {
  const auto run = [&](const char* check, const std::function<std::unique_ptr<Nccl>()>& make) {
    try {
      const std::unique_ptr<Nccl> nccl = make();
      std::printf("NCCL %s: version %s, world %d\n", check, nccl->version().c_str(), nccl->world());
      std::vector<float> x = rng.normal_vector(4096, 1.0f);
      auto dx = upload_f32(x);
      nccl->all_reduce_sum(0, dx.get(), x.size(), nullptr);
      synchronize();
      table.compare(check, "4096", "fp32", download_f32(dx), x, 0.0, false);
    } catch (const std::exception& e) {
      // A single-GPU machine trains without NCCL: report, do not fail.
      std::printf("NCCL: not checked (%s: %s)\n", check, e.what());
    }
  };
  run("nccl all_reduce, ncclCommInitAll (1 rank)", [] { return std::make_unique<Nccl>(std::vector<int>{0}); });
  run("nccl all_reduce, ncclCommInitRank (env world)", [] {
    const dist::RankEnv env = dist::rank_env();
    std::printf("ranks from %s variables: rank %d of %d\n", env.source.c_str(), env.rank, env.world_size);
    return std::make_unique<Nccl>(env, 60000);
  });
}

float median(std::vector<float> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Median time of `runs` timed calls after `warmup` untimed ones, by CUDA events on the default stream.
template <class Fn>
float time_ms(int warmup, int runs, Fn&& fn) {
  EventTimer timer;
  std::vector<float> ms;
  for (int it = 0; it < warmup + runs; ++it) {
    timer.start(nullptr);
    fn(it);
    timer.stop(nullptr);
    const float t = timer.elapsed_ms();
    if (it >= warmup) ms.push_back(t);
  }
  return median(ms);
}

void result(const char* key, double value) { std::printf("RESULT %s %.6g\n", key, value); }

// cuBLASLt bf16 GEMM rate at 8192^3, rotating three operand sets so the cache does not serve repeats.
double bench_gemm(Random& rng) {
  CublasLt lt;
  const int n = 8192;
  const size_t elems = static_cast<size_t>(n) * n;
  std::vector<DeviceBuffer<bf16>> as, bs;
  const std::vector<float> host = rng.normal_vector(elems, 1.0f);
  for (int s = 0; s < 3; ++s) {
    as.push_back(upload_bf16(host));
    bs.push_back(upload_bf16(host));
  }
  DeviceBuffer<bf16> c(elems);
  const float med = time_ms(5, 20, [&](int it) {
    const size_t s = static_cast<size_t>(it % 3);
    lt.matmul(false, true, n, n, n, 1.0f, as[s].get(), n, bs[s].get(), n, 0.0f, c.get(), OutType::BF16, n, nullptr);
  });
  const double tflops = 2.0 * n * static_cast<double>(n) * n / (static_cast<double>(med) * 1e-3) / 1e12;
  std::printf("cuBLASLt bf16 GEMM %dx%dx%d (fp32 accumulate), median of 20 after 5: %.3f ms, %.1f TFLOP/s\n", n, n, n,
              med, tflops);
  result("gemm_tflops", tflops);
  return tflops;
}

double bench_copy() {
  const size_t bytes = size_t{1} << 30;
  DeviceBuffer<uint8_t> src(bytes), dst(bytes);
  fill_u32(src.get(), 0x3f800000u, bytes / 4, nullptr);
  const float med = time_ms(5, 20, [&](int) { copy_on_device(dst.get(), src.get(), bytes, nullptr); });
  const double gbs = 2.0 * static_cast<double>(bytes) / (static_cast<double>(med) * 1e-3) / 1e9;
  std::printf("device copy 1 GiB, median of 20 after 5: %.3f ms, %.0f GB/s (bytes read + written)\n", med, gbs);
  result("copy_gbs", gbs);
  return gbs;
}

// Attention forward and backward at the ~125M training shape (B=8, T=1024, 12 heads of 64).
// FLOPs: forward 4 T^2 hd per head and row (scores and values), backward 2.5x that (five
// products against two); causal counts half. The backward includes its delta pass.
void bench_attention(Random& rng, bool tc) {
  const int B = 8, T = 1024, nh = 12, nkv = 12, hd = 64, S = (nh + 2 * nkv) * hd;
  const std::vector<float> host = rng.normal_vector(static_cast<size_t>(B) * T * S, 1.0f);
  auto qkv = upload_bf16(host);
  DeviceBuffer<bf16> out(static_cast<size_t>(B) * T * nh * hd), dqkv(qkv.size());
  std::vector<float> g = rng.normal_vector(out.size(), 1.0f);
  round_to_bf16(g);
  auto dout = upload_bf16(g);
  DeviceBuffer<float> lse(static_cast<size_t>(B) * nh * T), delta(lse.size());
  const char* kind = tc ? "tc" : "scalar";
  for (const AttentionMode mode : {AttentionMode::Bidirectional, AttentionMode::Causal}) {
    AttentionMaskArgs mask;
    mask.mode = mode;
    const double fwd_flops = 4.0 * static_cast<double>(T) * T * hd * nh * B * (mode == AttentionMode::Causal ? 0.5 : 1.0);
    const float fwd = time_ms(2, 10, [&](int) {
      if (tc)
        attention_forward_tc(qkv.get(), S, B, T, nh, nkv, hd, mask, out.get(), lse.get(), nullptr);
      else
        attention_forward(qkv.get(), S, B, T, nh, nkv, hd, mask, out.get(), lse.get(), nullptr);
    });
    const float bwd = time_ms(2, 10, [&](int) {
      if (tc)
        attention_backward_tc(qkv.get(), S, out.get(), lse.get(), dout.get(), B, T, nh, nkv, hd, mask, delta.get(),
                              dqkv.get(), nullptr);
      else
        attention_backward(qkv.get(), S, out.get(), lse.get(), dout.get(), B, T, nh, nkv, hd, mask, delta.get(),
                           dqkv.get(), nullptr);
    });
    const char* m = attention_mode_name(mode);
    std::printf("attention %-6s %-13s B=%d T=%d h=%d d=%d: forward %.3f ms (%.1f TFLOP/s), backward %.3f ms (%.1f "
                "TFLOP/s)\n",
                kind, m, B, T, nh, hd, fwd, fwd_flops / (static_cast<double>(fwd) * 1e-3) / 1e12, bwd,
                2.5 * fwd_flops / (static_cast<double>(bwd) * 1e-3) / 1e12);
    const std::string key = std::string("attention_") + kind + "_" + m;
    result((key + "_fwd_ms").c_str(), fwd);
    result((key + "_bwd_ms").c_str(), bwd);
  }
}

ModelConfig config_125m() {
  ModelConfig c;
  c.vocab_size = 32768;
  c.hidden_size = 768;
  c.intermediate_size = 2048;
  c.num_hidden_layers = 12;
  c.num_attention_heads = 12;
  c.num_key_value_heads = 12;
  c.max_position_embeddings = 1024;
  c.mask_token_id = 3;
  c.block_size = 32;
  return c;
}

// Autoregressive against block decoding through the shared sampler on the GPU (batch 1). The
// AR bound: every step reads the bf16 weights once (the embedding table only by lookup when
// untied), so tokens/s <= copy bandwidth / weight bytes.
void bench_decode(Random& rng, double copy_gbs, const std::string& checkpoint) {
  const ModelConfig c = checkpoint.empty() ? config_125m() : io::read_model_config(checkpoint);
  Model cpu(c);
  if (checkpoint.empty())
    cpu.init(rng.next());
  else
    train::load_model_weights(cpu, checkpoint);
  CublasLt lt;
  CudaModel gpu(cpu, lt);
  gpu.upload_params(cpu.param_data());
  const CudaLM lm(gpu);
  std::vector<int32_t> prompt(64);
  for (int32_t& id : prompt) id = 8 + rng.below(c.vocab_size - 8);
  const int max_new = std::min(256, c.max_position_embeddings - static_cast<int>(prompt.size()));
  auto run = [&](sampler::DecodeMode mode) {
    sampler::SamplerSettings s;
    s.mode = mode;
    s.block_size = c.block_size;
    s.threshold = 0.9f;
    s.eos_id = -1;
    s.max_new = 16;
    sampler::generate(lm, prompt, s);  // warm-up: cuBLASLt heuristics, allocations
    s.max_new = max_new;
    return sampler::generate(lm, prompt, s);
  };
  const sampler::Generation ar = run(sampler::DecodeMode::Autoregressive);
  const sampler::Generation blk = run(sampler::DecodeMode::Diffusion);
  const double ar_tps = static_cast<double>(ar.tokens.size()) / (ar.decode_ms * 1e-3);
  const double blk_tps = static_cast<double>(blk.tokens.size()) / (blk.decode_ms * 1e-3);
  const double weight_bytes =
      2.0 * static_cast<double>(cpu.num_params() -
                                (c.tie_word_embeddings ? 0 : static_cast<int64_t>(c.vocab_size) * c.hidden_size));
  const double bound = copy_gbs * 1e9 / weight_bytes;
  std::printf("decode: %s, %.1fM params, prompt %zu, %d new tokens, batch 1\n",
              checkpoint.empty() ? "random weights" : checkpoint.c_str(), static_cast<double>(cpu.num_params()) / 1e6,
              prompt.size(), max_new);
  std::printf("  autoregressive: %.1f tokens/s (%d forward passes) = %.1f%% of the bandwidth bound %.0f tokens/s\n",
              ar_tps, ar.forward_passes, 100.0 * ar_tps / bound, bound);
  std::printf("  block decoding (threshold 0.9, block %d): %.1f tokens/s, %d steps, %d forward passes = %.2fx "
              "autoregressive\n",
              c.block_size, blk_tps, blk.steps, blk.forward_passes, blk_tps / ar_tps);
  result("decode_ar_tokens_per_s", ar_tps);
  result("decode_bound_tokens_per_s", bound);
  result("decode_ar_pct_of_bound", 100.0 * ar_tps / bound);
  result("decode_block_tokens_per_s", blk_tps);
}

// One training step (forward, backward, AdamW) of a ~125M-parameter model at sequence 1024, per
// phase, as model FLOP/s against the measured GEMM rate and the datasheet peak (MFU). Model
// FLOPs: 6 per matrix parameter per token (lm_head included, the embedding lookup not) plus
// attention's 12 * L * T * D per token (scores and values, forward and backward, full T).
void bench_train(Random& rng, double gemm_tflops, double peak_tflops, bool graphs) {
  const ModelConfig c = config_125m();
  const int B = 8, T = 1024, N = B * T;
  Model cpu(c);
  cpu.init(rng.next());
  CublasLt lt;
  CudaModel gpu(cpu, lt);
  gpu.upload_params(cpu.param_data());
  gpu.use_graphs(graphs);
  std::vector<int32_t> ids(N), targets(N);
  for (int n = 0; n < N; ++n) {
    ids[n] = rng.below(c.vocab_size);
    targets[n] = rng.below(2) ? 4 + rng.below(c.vocab_size - 4) : -1;
  }
  Batch b;
  b.B = B;
  b.T = T;
  b.input_ids = ids.data();
  b.target_ids = targets.data();
  b.mode = AttentionMode::Bidirectional;
  const train::AdamWConfig acfg;
  const float step = time_ms(2, 6, [&](int) {
    gpu.zero_grad();
    gpu.forward_backward(b);
    gpu.optimizer_step(acfg, 1e-4, 1.0);
  });
  const float fwd = time_ms(1, 5, [&](int) { gpu.forward_loss(b); });
  const float fwd_bwd = time_ms(1, 5, [&](int) { gpu.forward_backward(b); });
  const float opt = time_ms(1, 5, [&](int) { gpu.optimizer_step(acfg, 1e-4, 1.0); });
  const float zero = time_ms(1, 5, [&](int) { gpu.zero_grad(); });
  const double embed = static_cast<double>(c.vocab_size) * c.hidden_size;
  const double matrix_params = static_cast<double>(cpu.num_params()) - embed;  // untied: lm_head stays
  const double flops = 6.0 * matrix_params * N + 12.0 * c.num_hidden_layers * static_cast<double>(T) * c.hidden_size * N;
  const double tflops = flops / (static_cast<double>(step) * 1e-3) / 1e12;
  std::printf("train step (%s attention, graphs %s), %.1fM params, B=%d T=%d: %.2f ms, %.0f tokens/s, %.1f TFLOP/s "
              "model\n",
              attention_kernels() == AttentionKernels::TensorCores ? "tensor-core" : "scalar", gpu.graph_status().c_str(),
              static_cast<double>(cpu.num_params()) / 1e6, B, T, step, N / (static_cast<double>(step) * 1e-3), tflops);
  std::printf("  phases (medians of 5, host copies included): forward %.2f ms, backward %.2f ms (forward+backward "
              "%.2f - forward), optimizer %.2f ms, zero_grad %.2f ms\n",
              fwd, fwd_bwd - fwd, fwd_bwd, opt, zero);
  if (gemm_tflops > 0.0) std::printf("  MFU against the measured GEMM rate: %.1f%%\n", 100.0 * tflops / gemm_tflops);
  if (peak_tflops > 0.0) std::printf("  MFU against the datasheet peak %.0f TFLOP/s: %.1f%%\n", peak_tflops,
                                     100.0 * tflops / peak_tflops);
  result("train_step_ms", step);
  result("train_model_tflops", tflops);
  result("train_forward_ms", fwd);
  result("train_backward_ms", fwd_bwd - fwd);
  result("train_optimizer_ms", opt);
  result("train_zero_grad_ms", zero);
  if (gemm_tflops > 0.0) result("train_mfu_pct_of_gemm", 100.0 * tflops / gemm_tflops);
  if (peak_tflops > 0.0) result("train_mfu_pct_of_peak", 100.0 * tflops / peak_tflops);
}

bool listed(const std::string& list, const std::string& name) {
  if (list.empty()) return false;
  size_t at = 0;
  while (at <= list.size()) {
    const size_t comma = std::min(list.find(',', at), list.size());
    const std::string item = list.substr(at, comma - at);
    if (item == name || item == "all") return true;
    at = comma + 1;
  }
  return false;
}

// Each named part in its own try: one failing benchmark does not hide the others' figures.
int run_benches(Random& rng, const Options& o) {
  int failed = 0;
  double gemm = o.gemm_tflops, copy = o.copy_gbs;
  auto part = [&](const char* name, const std::function<void()>& fn) {
    if (!listed(o.bench, name)) return;
    std::printf("\n== bench %s\n", name);
    try {
      fn();
      synchronize();
    } catch (const std::exception& e) {
      std::printf("bench %s FAILED: %s\n", name, e.what());
      ++failed;
    }
  };
  part("gemm", [&] { gemm = bench_gemm(rng); });
  part("copy", [&] { copy = bench_copy(); });
  part("attention", [&] { bench_attention(rng, false); });
  part("attention_tc", [&] { bench_attention(rng, true); });
  part("train", [&] { bench_train(rng, gemm, o.peak_tflops, o.graphs); });
  part("decode", [&] {
    if (copy <= 0.0) copy = bench_copy();
    bench_decode(rng, copy, o.checkpoint);
  });
  return failed;
}

}  // namespace

int cmd_gpu_check(int argc, char** argv) {
  // Line-buffered even into a pipe: a crash or a timeout keeps every row printed before it.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      print_usage();
      return 0;
    }
  }
  Options o;
  if (!parse(argc, argv, o)) return 2;
  const int devices = device_count();
  if (devices == 0) {
    std::fprintf(stderr, "gpu-check: no CUDA device is visible (driver missing or no GPU); run it on a GPU machine\n");
    return 2;
  }
  if (o.device < 0 || o.device >= devices) {
    std::fprintf(stderr, "gpu-check: --device %d does not exist (%d visible)\n", o.device, devices);
    return 2;
  }
  try {
    set_device(o.device);
    if (!o.seed_given) o.seed = static_cast<uint64_t>(std::time(nullptr));
    std::printf("device %d: %s\nseed %llu (rerun with --seed %llu)\n", o.device, device_description(o.device).c_str(),
                static_cast<unsigned long long>(o.seed), static_cast<unsigned long long>(o.seed));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpu-check: %s\n", e.what());
    return 2;
  }
  if (!o.attention.empty())
    set_attention_kernels(o.attention == "tc" ? AttentionKernels::TensorCores : AttentionKernels::Scalar);
  std::printf("attention kernels: %s\n", attention_kernels() == AttentionKernels::TensorCores ? "tensor cores" : "scalar");
  Random rng(o.seed);
  if (!o.bench.empty()) return run_benches(rng, o) == 0 ? 0 : 1;

  Table table;
  const std::vector<std::pair<const char*, std::function<void(Random&, Table&)>>> groups = {
      {"embedding", check_embedding},         {"rmsnorm", check_rmsnorm}, {"rope", check_rope},
      {"swiglu", check_swiglu},               {"attention", check_attention},
      {"chunk", check_attention_chunk},       {"cross_entropy", check_cross_entropy},
      {"adamw", check_adamw},                 {"sampler", check_sampler},
      {"gemm", check_gemm},                   {"nccl", check_nccl},
      {"model", check_model_step},            {"decode", check_decode},
      {"train", check_training_run},          {"attention_tc", check_attention_tc},
      {"graphs", check_step_graphs},
  };
  for (const auto& [name, fn] : groups) {
    if (!o.only.empty() && !listed(o.only, name)) continue;
    std::printf("\n== group %s\n", name);
    try {
      fn(rng, table);
      synchronize();  // surface asynchronous faults in this group, not the next
    } catch (const std::exception& e) {
      Row r;
      r.check = name;
      r.note = e.what();
      table.add(r);
    }
  }
  table.print_summary();
  return table.failures() == 0 ? 0 : 1;
}

}  // namespace sdt::cuda
#endif  // SDT_HAVE_CUDA
