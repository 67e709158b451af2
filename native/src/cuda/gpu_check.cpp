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
  bool bench = false;
  std::string checkpoint;
  int device = 0;
};

void print_usage() {
  std::printf(
      "Usage: sdt-native gpu-check [options]\n\n"
      "Runs every CUDA kernel against the CPU reference on fresh random inputs and prints a table:\n"
      "relative error ||gpu - cpu|| / ||cpu|| against its tolerance (bf16 outputs 1e-2, fp32 1e-4,\n"
      "integer outputs exact) and the elements left unwritten (outputs are filled with NaN first).\n\n"
      "Options:\n"
      "  --seed N      random seed (default: drawn from the clock, printed)\n"
      "  --only LIST   run only the groups whose name contains an item of the comma-separated LIST\n"
      "                (default: all). Groups: embedding, rmsnorm, rope, swiglu, attention, chunk,\n"
      "                cross_entropy, adamw, sampler, gemm, nccl, model (a full training step against\n"
      "                the CPU model), decode (logits and cached decoding against the CPU model),\n"
      "                train (200 steps on the GPU, the loss must fall)\n"
      "  --bench       also measure the cuBLASLt bf16 GEMM rate, the device copy bandwidth and one\n"
      "                training step of a ~125M-parameter model at sequence 1024 (MFU), and\n"
      "                autoregressive against block decoding speed\n"
      "  --checkpoint DIR  with --bench: decode with this trained checkpoint (default: random\n"
      "                weights, which never reach the confidence threshold, so block decoding\n"
      "                commits one token per step and its speed-up is not meaningful)\n"
      "  --device N    CUDA device (default 0)\n"
      "  --help        this text\n\n"
      "Exit status: 0 all checks pass, 1 a check failed, 2 usage error or no CUDA device.\n");
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
    if (a == "--seed") {
      const char* v = value("--seed");
      if (!v) return false;
      char* end = nullptr;
      o.seed = std::strtoull(v, &end, 10);
      if (!end || *end) {
        std::fprintf(stderr, "gpu-check: --seed \"%s\" is not a non-negative integer\n", v);
        return false;
      }
      o.seed_given = true;
    } else if (a == "--only") {
      const char* v = value("--only");
      if (!v) return false;
      o.only = v;
    } else if (a == "--device") {
      const char* v = value("--device");
      if (!v) return false;
      o.device = std::atoi(v);
    } else if (a == "--checkpoint") {
      const char* v = value("--checkpoint");
      if (!v) return false;
      o.checkpoint = v;
    } else if (a == "--bench") {
      o.bench = true;
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

void check_nccl(Random& rng, Table& table) {
  Row row;
  row.check = "nccl all_reduce (1 rank)";
  row.type = "fp32";
  row.tolerance = 0.0;
  try {
    Nccl nccl({0});
    std::printf("NCCL: %s\n", nccl.version().c_str());
    std::vector<float> x = rng.normal_vector(4096, 1.0f);
    auto dx = upload_f32(x);
    nccl.all_reduce_sum(0, dx.get(), x.size(), nullptr);
    synchronize();
    table.compare(row.check, "4096", "fp32", download_f32(dx), x, 0.0, false);
  } catch (const std::exception& e) {
    // A single-GPU machine trains without NCCL: report, do not fail.
    std::printf("NCCL: not checked (%s)\n", e.what());
  }
}

float median(std::vector<float> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Measures the two ceilings of docs/gpu-notes.md: cuBLASLt bf16 GEMM rate (8192^3, rotating
// three operand sets so the cache does not serve repeats) and device-to-device copy bandwidth.
struct Ceilings {
  double gemm_tflops = 0.0;
  double copy_gbs = 0.0;
};

Ceilings run_bench(Random& rng) {
  std::printf("\nceilings (median of 20 timed runs after 5 warm-up runs):\n");
  double gemm_tflops = 0.0, copy_gbs = 0.0;
  {
    CublasLt lt;
    const int n = 8192;
    const size_t elems = static_cast<size_t>(n) * n;
    std::vector<DeviceBuffer<bf16>> as, bs;
    std::vector<float> host = rng.normal_vector(elems, 1.0f);
    for (int s = 0; s < 3; ++s) {
      as.push_back(upload_bf16(host));
      bs.push_back(upload_bf16(host));
    }
    DeviceBuffer<bf16> c(elems);
    EventTimer timer;
    std::vector<float> ms;
    for (int it = 0; it < 25; ++it) {
      const int s = it % 3;
      timer.start(nullptr);
      lt.matmul(false, true, n, n, n, 1.0f, as[static_cast<size_t>(s)].get(), n, bs[static_cast<size_t>(s)].get(), n,
                0.0f, c.get(), OutType::BF16, n, nullptr);
      timer.stop(nullptr);
      const float t = timer.elapsed_ms();
      if (it >= 5) ms.push_back(t);
    }
    const double flops = 2.0 * n * static_cast<double>(n) * n;
    const float med = median(ms);
    gemm_tflops = flops / (static_cast<double>(med) * 1e-3) / 1e12;
    std::printf("  cuBLASLt bf16 GEMM %dx%dx%d (fp32 accumulate): %.3f ms, %.1f TFLOP/s\n", n, n, n, med, gemm_tflops);
  }
  {
    const size_t bytes = size_t{1} << 30;
    DeviceBuffer<uint8_t> src(bytes), dst(bytes);
    fill_u32(src.get(), 0x3f800000u, bytes / 4, nullptr);
    EventTimer timer;
    std::vector<float> ms;
    for (int it = 0; it < 25; ++it) {
      timer.start(nullptr);
      copy_on_device(dst.get(), src.get(), bytes, nullptr);
      timer.stop(nullptr);
      const float t = timer.elapsed_ms();
      if (it >= 5) ms.push_back(t);
    }
    const float med = median(ms);
    copy_gbs = 2.0 * static_cast<double>(bytes) / (static_cast<double>(med) * 1e-3) / 1e9;
    std::printf("  device copy 1 GiB: %.3f ms, %.0f GB/s (bytes read + written)\n", med, copy_gbs);
  }
  return Ceilings{gemm_tflops, copy_gbs};
}

// The two attention forwards at the training shape of the ~125M model (B=8, T=1024, 12 heads of
// 64, bidirectional): time and FLOP rate (4 T^2 hd per head and row: scores and values).
void run_attention_bench(Random& rng) {
  const int B = 8, T = 1024, nh = 12, nkv = 12, hd = 64, S = (nh + 2 * nkv) * hd;
  std::vector<float> host = rng.normal_vector(static_cast<size_t>(B) * T * S, 1.0f);
  auto qkv = upload_bf16(host);
  DeviceBuffer<bf16> out(static_cast<size_t>(B) * T * nh * hd);
  DeviceBuffer<float> lse(static_cast<size_t>(B) * nh * T);
  const AttentionMaskArgs mask;
  const double flops = 4.0 * static_cast<double>(T) * T * hd * nh * B;
  for (int tc = 0; tc < 2; ++tc) {
    EventTimer timer;
    std::vector<float> ms;
    for (int it = 0; it < 12; ++it) {
      timer.start(nullptr);
      if (tc)
        attention_forward_tc(qkv.get(), S, B, T, nh, nkv, hd, mask, out.get(), lse.get(), nullptr);
      else
        attention_forward(qkv.get(), S, B, T, nh, nkv, hd, mask, out.get(), lse.get(), nullptr);
      timer.stop(nullptr);
      const float t = timer.elapsed_ms();
      if (it >= 2) ms.push_back(t);
    }
    const float med = median(ms);
    std::printf("  %s B=%d T=%d h=%d d=%d: %.3f ms, %.1f TFLOP/s\n",
                tc ? "attention_forward_tc (WMMA)" : "attention_forward (CUDA cores)", B, T, nh, hd, med,
                flops / (static_cast<double>(med) * 1e-3) / 1e12);
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
void run_decode_bench(Random& rng, const Ceilings& ceil, const std::string& checkpoint) {
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
  const double bound = ceil.copy_gbs * 1e9 / weight_bytes;
  std::printf("  %s, %.1fM params, prompt %zu, %d new tokens, batch 1\n",
              checkpoint.empty() ? "random weights" : checkpoint.c_str(), static_cast<double>(cpu.num_params()) / 1e6,
              prompt.size(), max_new);
  std::printf("  autoregressive: %.1f tokens/s (%d forward passes) = %.1f%% of the bandwidth bound %.0f tokens/s\n",
              ar_tps, ar.forward_passes, 100.0 * ar_tps / bound, bound);
  std::printf("  block decoding (threshold 0.9, block %d): %.1f tokens/s, %d steps, %d forward passes = %.2fx "
              "autoregressive\n",
              c.block_size, blk_tps, blk.steps, blk.forward_passes, blk_tps / ar_tps);
}

// One training step (forward, backward, AdamW) of a ~125M-parameter model at sequence 1024,
// as model FLOP/s against the measured GEMM rate (MFU). Model FLOPs: 6 per matrix parameter
// per token (lm_head included, the embedding lookup not) plus attention's 12 * L * T * D per
// token (scores and values, forward and backward, full bidirectional T).
void run_train_bench(Random& rng, double gemm_tflops) {
  const ModelConfig c = config_125m();
  const int B = 8, T = 1024, N = B * T;
  Model cpu(c);
  cpu.init(rng.next());
  CublasLt lt;
  CudaModel gpu(cpu, lt);
  gpu.upload_params(cpu.param_data());
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
  EventTimer timer;
  std::vector<float> ms;
  for (int it = 0; it < 8; ++it) {
    timer.start(nullptr);
    gpu.zero_grad();
    gpu.forward_backward(b);
    gpu.optimizer_step(acfg, 1e-4, 1.0);
    timer.stop(nullptr);
    const float t = timer.elapsed_ms();
    if (it >= 2) ms.push_back(t);
  }
  const double embed = static_cast<double>(c.vocab_size) * c.hidden_size;
  const double matrix_params = static_cast<double>(cpu.num_params()) - embed;  // untied: lm_head stays
  const double flops = 6.0 * matrix_params * N + 12.0 * c.num_hidden_layers * static_cast<double>(T) * c.hidden_size * N;
  const float med = median(ms);
  const double tflops = flops / (static_cast<double>(med) * 1e-3) / 1e12;
  std::printf("  train step, %.1fM params, B=%d T=%d: %.2f ms, %.0f tokens/s, %.1f TFLOP/s model = %.1f%% of the GEMM "
              "rate (MFU)\n",
              static_cast<double>(cpu.num_params()) / 1e6, B, T, med, N / (static_cast<double>(med) * 1e-3), tflops,
              100.0 * tflops / gemm_tflops);
}

// `only` is a comma-separated list; a group runs when its name contains one of the items.
bool selected(const std::string& only, const std::string& group) {
  if (only.empty()) return true;
  size_t at = 0;
  while (at <= only.size()) {
    const size_t comma = std::min(only.find(',', at), only.size());
    const std::string item = only.substr(at, comma - at);
    if (!item.empty() && group.find(item) != std::string::npos) return true;
    at = comma + 1;
  }
  return false;
}

}  // namespace

int cmd_gpu_check(int argc, char** argv) {
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
    std::printf("device %d: %s\nseed %llu (rerun with --seed %llu)\n\n", o.device,
                device_description(o.device).c_str(), static_cast<unsigned long long>(o.seed),
                static_cast<unsigned long long>(o.seed));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpu-check: %s\n", e.what());
    return 2;
  }
  Random rng(o.seed);
  Table table;
  const std::vector<std::pair<const char*, std::function<void(Random&, Table&)>>> groups = {
      {"embedding", check_embedding},         {"rmsnorm", check_rmsnorm}, {"rope", check_rope},
      {"swiglu", check_swiglu},               {"attention", check_attention},
      {"chunk", check_attention_chunk},       {"cross_entropy", check_cross_entropy},
      {"adamw", check_adamw},                 {"sampler", check_sampler},
      {"gemm", check_gemm},                   {"nccl", check_nccl},
      {"model", check_model_step},            {"decode", check_decode},
      {"train", check_training_run},
  };
  for (const auto& [name, fn] : groups) {
    if (!selected(o.only, name)) continue;
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
  table.print();
  if (o.bench) {
    try {
      const Ceilings ceil = run_bench(rng);
      std::printf("\nattention forward (median of 10 after 2 warm-up runs):\n");
      run_attention_bench(rng);
      std::printf("\ntraining step (median of 6 after 2 warm-up steps):\n");
      run_train_bench(rng, ceil.gemm_tflops);
      std::printf("\ndecoding:\n");
      run_decode_bench(rng, ceil, o.checkpoint);
    } catch (const std::exception& e) {
      std::printf("bench failed: %s\n", e.what());
      return 1;
    }
  }
  return table.failures() == 0 ? 0 : 1;
}

}  // namespace sdt::cuda
#endif  // SDT_HAVE_CUDA
