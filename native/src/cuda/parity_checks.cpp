#ifdef SDT_HAVE_CUDA
#include "cuda/parity_checks.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "adamw.cuh"
#include "attention.cuh"
#include "cross_entropy.cuh"
#include "embedding.cuh"
#include "ops/ops.h"
#include "rmsnorm.cuh"
#include "rope.cuh"
#include "sampler.cuh"
#include "sampler/sampling.h"
#include "swiglu.cuh"
#include "train/optimizer.h"

namespace sdt::cuda::parity {
namespace {

constexpr uint32_t kF32NaNBits = 0x7fc00000u;

std::string dims(std::initializer_list<long> d) {
  std::string s;
  for (long x : d) s += (s.empty() ? "" : "x") + std::to_string(x);
  return s;
}

void poison(DeviceBuffer<float>& b) { fill_u32(b.get(), kF32NaNBits, b.size(), nullptr); }
void poison(DeviceBuffer<bf16>& b) { fill_u16(b.get(), kBf16NaN, b.size(), nullptr); }

std::vector<float> to_float(const std::vector<int32_t>& v) { return std::vector<float>(v.begin(), v.end()); }

}  // namespace

void check_embedding(Random& rng, Table& table) {
  const int V = 1000, D = 256, N = 300;
  std::vector<float> w = rng.normal_vector(static_cast<size_t>(V) * D, 0.02f);
  round_to_bf16(w);
  std::vector<int32_t> ids(N);
  for (int& id : ids) id = rng.below(V / 10);  // repeats, so the backward's atomics collide
  std::vector<float> ref(static_cast<size_t>(N) * D);
  sdt::embedding_forward(w.data(), D, ids.data(), N, ref.data());
  auto dw = upload_bf16(w);
  auto dids = upload_i32(ids);
  DeviceBuffer<float> out(ref.size());
  poison(out);
  embedding_forward(dw.get(), V, D, dids.get(), N, out.get(), nullptr);
  table.compare("embedding_forward", dims({N, D}), "fp32", download_f32(out), ref, kF32Tolerance, true);

  std::vector<float> dout = rng.normal_vector(static_cast<size_t>(N) * D, 1.0f);
  std::vector<float> dtable = rng.normal_vector(static_cast<size_t>(V) * D, 1.0f);
  auto ddout = upload_f32(dout);
  auto ddtable = upload_f32(dtable);
  sdt::embedding_backward(ids.data(), N, D, dout.data(), dtable.data());
  embedding_backward(dids.get(), N, V, D, ddout.get(), ddtable.get(), nullptr);
  table.compare("embedding_backward (dtable +=)", dims({V, D}), "fp32", download_f32(ddtable), dtable, kF32Tolerance,
                false);
}

void check_rmsnorm(Random& rng, Table& table) {
  const int N = 300, D = 768;
  const float eps = 1e-5f;
  std::vector<float> x = rng.normal_vector(static_cast<size_t>(N) * D, 1.5f);
  std::vector<float> w = rng.uniform_vector(D, 0.5f, 1.5f);
  std::vector<float> y(x.size()), inv(N);
  sdt::rmsnorm_forward(x.data(), w.data(), N, D, eps, y.data(), inv.data());
  auto dx_in = upload_f32(x);
  auto dw_in = upload_f32(w);
  DeviceBuffer<bf16> dy_out(y.size());
  DeviceBuffer<float> dinv(N);
  poison(dy_out);
  poison(dinv);
  rmsnorm_forward(dx_in.get(), dw_in.get(), N, D, eps, dy_out.get(), dinv.get(), nullptr);
  table.compare("rmsnorm_forward y", dims({N, D}), "bf16", download_bf16(dy_out), y, kBf16Tolerance, true);
  table.compare("rmsnorm_forward inv_rms", dims({N}), "fp32", download_f32(dinv), inv, kF32Tolerance, true);

  std::vector<float> gy = rng.normal_vector(x.size(), 1.0f);
  std::vector<float> gx = rng.normal_vector(x.size(), 1.0f);
  std::vector<float> gw = rng.normal_vector(D, 1.0f);
  auto dgy = upload_f32(gy);
  auto dgx = upload_f32(gx);
  auto dgw = upload_f32(gw);
  auto dinv_ref = upload_f32(inv);
  sdt::rmsnorm_backward(x.data(), w.data(), inv.data(), gy.data(), N, D, gx.data(), gw.data());
  rmsnorm_backward(dx_in.get(), dw_in.get(), dinv_ref.get(), dgy.get(), N, D, dgx.get(), dgw.get(), nullptr);
  table.compare("rmsnorm_backward dx +=", dims({N, D}), "fp32", download_f32(dgx), gx, kF32Tolerance, false);
  table.compare("rmsnorm_backward dw +=", dims({D}), "fp32", download_f32(dgw), gw, kF32Tolerance, false);
}

void check_rope(Random& rng, Table& table) {
  const int B = 2, T = 50, nh = 4, nkv = 2, hd = 64, max_pos = 512;
  const int S = (nh + 2 * nkv) * hd, N = B * T;
  const sdt::RopeTable rope(hd, max_pos, 10000.0f);
  auto dcos = upload_f32(rope.cos);
  auto dsin = upload_f32(rope.sin);
  for (int with_pos = 0; with_pos < 2; ++with_pos) {
    std::vector<int32_t> pos(N);
    for (int32_t& p : pos) p = rng.below(max_pos);
    auto dpos = upload_i32(pos);
    const int32_t* cpu_pos = with_pos ? pos.data() : nullptr;
    const int32_t* gpu_pos = with_pos ? dpos.get() : nullptr;
    const std::string tag = with_pos ? " (positions)" : " (n % T)";
    std::vector<float> x = rng.normal_vector(static_cast<size_t>(N) * S, 1.0f);
    round_to_bf16(x);
    auto dx = upload_bf16(x);
    sdt::rope_forward(rope, x.data(), N, S, nh + nkv, cpu_pos, T);
    rope_forward(dcos.get(), dsin.get(), max_pos, hd, dx.get(), N, S, nh + nkv, gpu_pos, T, nullptr);
    table.compare("rope_forward" + tag, dims({N, S}), "bf16", download_bf16(dx), x, kBf16Tolerance, false);

    std::vector<float> g = rng.normal_vector(static_cast<size_t>(N) * S, 1.0f);
    round_to_bf16(g);
    auto dg = upload_bf16(g);
    sdt::rope_backward(rope, g.data(), N, S, nh + nkv, cpu_pos, T);
    rope_backward(dcos.get(), dsin.get(), max_pos, hd, dg.get(), N, S, nh + nkv, gpu_pos, T, nullptr);
    table.compare("rope_backward" + tag, dims({N, S}), "bf16", download_bf16(dg), g, kBf16Tolerance, false);
  }
}

void check_swiglu(Random& rng, Table& table) {
  const int N = 200, I = 688;
  std::vector<float> gu = rng.normal_vector(static_cast<size_t>(N) * 2 * I, 2.0f);
  round_to_bf16(gu);
  std::vector<float> h(static_cast<size_t>(N) * I);
  sdt::swiglu_forward(gu.data(), N, I, h.data());
  auto dgu = upload_bf16(gu);
  DeviceBuffer<bf16> dh(h.size());
  poison(dh);
  swiglu_forward(dgu.get(), N, I, dh.get(), nullptr);
  table.compare("swiglu_forward", dims({N, I}), "bf16", download_bf16(dh), h, kBf16Tolerance, true);

  std::vector<float> gh = rng.normal_vector(h.size(), 1.0f);
  round_to_bf16(gh);
  std::vector<float> ggu(gu.size());
  sdt::swiglu_backward(gu.data(), gh.data(), N, I, ggu.data());
  auto dgh = upload_bf16(gh);
  DeviceBuffer<bf16> dggu(gu.size());
  poison(dggu);
  swiglu_backward(dgu.get(), dgh.get(), N, I, dggu.get(), nullptr);
  table.compare("swiglu_backward", dims({N, 2 * I}), "bf16", download_bf16(dggu), ggu, kBf16Tolerance, true);
}

namespace {

struct AttentionCase {
  const char* name;
  AttentionMode mode;
  int block_size;
  int B, T, nh, nkv, hd;
  bool packed;  // segments (one of them negative) and per-segment positions
};

void run_attention_case(const AttentionCase& c, bool tensor_cores, Random& rng, Table& table) {
  const int S = (c.nh + 2 * c.nkv) * c.hd, N = c.B * c.T, A = c.nh * c.hd;
  std::vector<float> qkv = rng.normal_vector(static_cast<size_t>(N) * S, 1.0f);
  round_to_bf16(qkv);
  std::vector<int32_t> seg, pos;
  if (c.packed) {
    seg.resize(N);
    pos.resize(N);
    for (int b = 0; b < c.B; ++b) {
      const int cut = c.T / 3 + b * 5;
      for (int t = 0; t < c.T; ++t) {
        const int n = b * c.T + t;
        seg[n] = t < cut ? 0 : 1;
        pos[n] = t < cut ? t : t - cut;
      }
      seg[b * c.T + c.T - 1] = -1;  // a padding position: sees only itself
    }
  }
  auto dseg = upload_i32(seg);
  auto dpos = upload_i32(pos);
  sdt::AttentionMask cm;
  cm.mode = c.mode;
  cm.block_size = c.block_size;
  cm.segment = c.packed ? seg.data() : nullptr;
  cm.pos = c.packed ? pos.data() : nullptr;
  AttentionMaskArgs gm;
  gm.mode = c.mode;
  gm.block_size = c.block_size;
  gm.segment = c.packed ? dseg.get() : nullptr;
  gm.pos = c.packed ? dpos.get() : nullptr;

  std::vector<float> out(static_cast<size_t>(N) * A), lse(static_cast<size_t>(c.B) * c.nh * c.T);
  sdt::attention_forward(qkv.data(), S, c.B, c.T, c.nh, c.nkv, c.hd, cm, out.data(), lse.data());
  auto dqkv_in = upload_bf16(qkv);
  const std::string shape = "B" + std::to_string(c.B) + " T" + std::to_string(c.T) + " h" + std::to_string(c.nh) +
                            "/" + std::to_string(c.nkv) + " d" + std::to_string(c.hd);
  if (tensor_cores && !attention_tc_supports(dqkv_in.get(), S, c.hd)) return;
  const std::string tag = tensor_cores ? "_tc " : " ";
  DeviceBuffer<bf16> dout(out.size());
  DeviceBuffer<float> dlse(lse.size());
  poison(dout);
  poison(dlse);
  if (tensor_cores)
    attention_forward_tc(dqkv_in.get(), S, c.B, c.T, c.nh, c.nkv, c.hd, gm, dout.get(), dlse.get(), nullptr);
  else
    attention_forward(dqkv_in.get(), S, c.B, c.T, c.nh, c.nkv, c.hd, gm, dout.get(), dlse.get(), nullptr);
  table.compare("attention_fwd" + tag + c.name, shape, "bf16", download_bf16(dout), out, kBf16Tolerance, true);
  table.compare("attention_fwd" + tag + "lse " + c.name, shape, "fp32", download_f32(dlse), lse, kF32Tolerance, true);

  std::vector<float> g = rng.normal_vector(out.size(), 1.0f);
  round_to_bf16(g);
  std::vector<float> dqkv(qkv.size());
  sdt::attention_backward(qkv.data(), S, out.data(), lse.data(), g.data(), c.B, c.T, c.nh, c.nkv, c.hd, cm,
                          dqkv.data());
  auto dg = upload_bf16(g);
  DeviceBuffer<float> delta(lse.size());
  DeviceBuffer<bf16> dd(qkv.size());
  poison(dd);
  // The backward takes this kernel family's own forward outputs, as a training step would.
  if (tensor_cores)
    attention_backward_tc(dqkv_in.get(), S, dout.get(), dlse.get(), dg.get(), c.B, c.T, c.nh, c.nkv, c.hd, gm,
                          delta.get(), dd.get(), nullptr);
  else
    attention_backward(dqkv_in.get(), S, dout.get(), dlse.get(), dg.get(), c.B, c.T, c.nh, c.nkv, c.hd, gm,
                       delta.get(), dd.get(), nullptr);
  table.compare_parts("attention_bwd" + tag + c.name, shape, "bf16", download_bf16(dd), dqkv,
                      qkv_parts(c.nh, c.nkv, c.hd), S, kBf16Tolerance, true);
}

const AttentionCase kAttentionCases[] = {
    {"bidirectional", AttentionMode::Bidirectional, 1, 2, 80, 4, 2, 64, false},
    {"causal", AttentionMode::Causal, 1, 2, 70, 4, 4, 32, false},
    {"block16", AttentionMode::Block, 16, 1, 96, 6, 2, 128, false},
    {"block8 packed", AttentionMode::Block, 8, 2, 64, 2, 1, 64, true},
    {"causal packed", AttentionMode::Causal, 1, 2, 45, 4, 1, 96, true},
    // Several 64-row tiles on both sides (the tensor-core kernels' double buffering), GQA 4:1.
    {"bidirectional long gqa", AttentionMode::Bidirectional, 1, 1, 300, 4, 1, 64, false},
    {"causal long", AttentionMode::Causal, 1, 2, 200, 2, 2, 64, false},
    {"block32 long packed", AttentionMode::Block, 32, 1, 257, 4, 2, 128, true},
};

}  // namespace

void check_attention(Random& rng, Table& table) {
  for (const AttentionCase& c : kAttentionCases) run_attention_case(c, false, rng, table);
}

void check_attention_tc(Random& rng, Table& table) {
  for (const AttentionCase& c : kAttentionCases) run_attention_case(c, true, rng, table);
}

void check_attention_chunk(Random& rng, Table& table) {
  const int B = 2, C = 24, start = 40, max_len = 96, nh = 4, nkv = 2, hd = 64;
  const int S = (nh + 2 * nkv) * hd;
  // The chunk's q/k/v as the model projects them; its K/V go into the cache by kv_cache_append.
  std::vector<float> qkv = rng.normal_vector(static_cast<size_t>(B) * C * S, 1.0f);
  round_to_bf16(qkv);
  const size_t cache_n = static_cast<size_t>(B) * nkv * max_len * hd;
  std::vector<float> kc = rng.normal_vector(cache_n, 1.0f), vc = rng.normal_vector(cache_n, 1.0f);
  round_to_bf16(kc);
  round_to_bf16(vc);
  auto dkc = upload_bf16(kc);
  auto dvc = upload_bf16(vc);
  auto dqkv = upload_bf16(qkv);
  kv_cache_append(dqkv.get(), S, B, C, nh, nkv, hd, dkc.get(), dvc.get(), max_len, start, nullptr);
  for (int b = 0; b < B; ++b)
    for (int g = 0; g < nkv; ++g)
      for (int c = 0; c < C; ++c)
        for (int d = 0; d < hd; ++d) {
          const size_t dst = ((static_cast<size_t>(b) * nkv + g) * max_len + start + c) * hd + d;
          const size_t src = (static_cast<size_t>(b) * C + c) * S;
          kc[dst] = qkv[src + static_cast<size_t>(nh + g) * hd + d];
          vc[dst] = qkv[src + static_cast<size_t>(nh + nkv + g) * hd + d];
        }
  const std::string cshape = dims({B, nkv, max_len, hd});
  table.compare("kv_cache_append k", cshape, "bf16", download_bf16(dkc), kc, 0.0, false);
  table.compare("kv_cache_append v", cshape, "bf16", download_bf16(dvc), vc, 0.0, false);

  for (const AttentionMode mode : {AttentionMode::Bidirectional, AttentionMode::Causal}) {
    std::vector<float> ref(static_cast<size_t>(B) * C * nh * hd);
    sdt::attention_chunk_forward(qkv.data(), S, kc.data(), vc.data(), max_len, B, C, start, nh, nkv, hd, mode,
                                 ref.data());
    DeviceBuffer<bf16> out(ref.size());
    poison(out);
    attention_chunk_forward(dqkv.get(), S, dkc.get(), dvc.get(), max_len, B, C, start, nh, nkv, hd, mode, out.get(),
                            nullptr);
    table.compare(std::string("attention_chunk ") + attention_mode_name(mode),
                  "C" + std::to_string(C) + " at " + std::to_string(start) + " h4/2 d64", "bf16", download_bf16(out),
                  ref, kBf16Tolerance, true);
  }
}

void check_cross_entropy(Random& rng, Table& table) {
  const int N = 200, V = 1500, mask_id = 3;
  std::vector<float> logits = rng.normal_vector(static_cast<size_t>(N) * V, 3.0f);
  round_to_bf16(logits);
  std::vector<int32_t> targets(N);
  for (int n = 0; n < N; ++n) {
    int t = rng.below(V);
    if (t == mask_id) t = mask_id + 1;
    targets[n] = n % 7 == 3 ? -1 : t;  // some rows without target
  }
  std::vector<float> w = rng.uniform_vector(N, 0.0f, 4.0f);
  const float grad_scale = 1.0f / N;
  auto dlogits = upload_bf16(logits);
  auto dtargets = upload_i32(targets);
  auto dw = upload_f32(w);
  std::vector<float> ce(N);
  std::vector<float> ref_grad = logits;
  const double loss = sdt::cross_entropy(ref_grad.data(), N, V, targets.data(), w.data(), mask_id, grad_scale, ce.data());
  DeviceBuffer<float> dce(N);
  DeviceBuffer<double> dloss(1);
  DeviceBuffer<float> workspace(N);
  poison(dce);
  // dlogits aliases logits: the in-place use of the training step.
  cross_entropy(dlogits.get(), N, V, dtargets.get(), dw.get(), mask_id, grad_scale, dce.get(), dloss.get(),
                dlogits.get(), workspace.get(), nullptr);
  double gpu_loss = 0.0;
  dloss.download(&gpu_loss);
  table.compare("cross_entropy loss sum", "1", "fp32", {static_cast<float>(gpu_loss)}, {static_cast<float>(loss)},
                kF32Tolerance, false);
  table.compare("cross_entropy ce per row", dims({N}), "fp32", download_f32(dce), ce, kF32Tolerance, true);
  table.compare("cross_entropy dlogits (in place)", dims({N, V}), "bf16", download_bf16(dlogits), ref_grad,
                kBf16Tolerance, false);
}

void check_adamw(Random& rng, Table& table) {
  // Two tensors in one flat buffer: a matrix with decay, a norm weight without.
  const int64_t n1 = 96 * 1024, n2 = 3000, n = n1 + n2;
  std::vector<float> p = rng.normal_vector(static_cast<size_t>(n), 0.05f);
  std::vector<float> g = rng.normal_vector(static_cast<size_t>(n), 0.01f);
  sdt::train::AdamWConfig cfg;
  cfg.weight_decay = 0.1;
  sdt::train::AdamW opt(cfg, n);
  opt.set_updates(6);  // a later step, so the bias corrections are not trivial
  for (float& m : opt.exp_avg()) m = 0.01f * rng.normal();
  for (float& v : opt.exp_avg_sq()) v = 1e-4f * rng.uniform(0.0f, 1.0f);
  auto dp = upload_f32(p);
  auto dg = upload_f32(g);
  auto dm = upload_f32(opt.exp_avg());
  auto dv = upload_f32(opt.exp_avg_sq());

  std::vector<sdt::ParamView> views(2);
  views[0].numel = n1;
  views[0].offset = 0;
  views[0].decay = true;
  views[1].numel = n2;
  views[1].offset = n1;
  views[1].decay = false;
  for (auto& v : views) {
    v.data = p.data() + v.offset;
    v.grad = g.data() + v.offset;
  }
  const double norm = sdt::train::global_grad_norm(views);
  const double max_norm = 0.5 * norm;  // clipping active
  const float clip = sdt::train::clip_factor(norm, max_norm);
  sdt::train::scale_grads(views, clip);
  const double lr = 3e-3;
  opt.step(views, lr);

  DeviceBuffer<double> ws(kGradNormPartials), dnorm(1);
  DeviceBuffer<float> dclip(1);
  DeviceBuffer<bf16> copy(static_cast<size_t>(n));
  poison(copy);
  global_grad_norm(dg.get(), static_cast<size_t>(n), max_norm, ws.get(), dnorm.get(), dclip.get(), nullptr);
  AdamWStep st;
  st.lr = static_cast<float>(lr);
  st.beta1 = static_cast<float>(cfg.beta1);
  st.beta2 = static_cast<float>(cfg.beta2);
  st.eps = static_cast<float>(cfg.eps);
  st.step = opt.updates();
  for (const auto& v : views) {
    st.weight_decay = v.decay ? static_cast<float>(cfg.weight_decay) : 0.0f;
    const size_t off = static_cast<size_t>(v.offset);
    adamw_update(dp.get() + off, dg.get() + off, dm.get() + off, dv.get() + off, static_cast<size_t>(v.numel), st,
                 dclip.get(), copy.get() + off, nullptr);
  }
  double gpu_norm = 0.0;
  float gpu_clip = 0.0f;
  dnorm.download(&gpu_norm);
  dclip.download(&gpu_clip);
  table.compare("global_grad_norm", "1", "fp32", {static_cast<float>(gpu_norm)}, {static_cast<float>(norm)},
                kF32Tolerance, false);
  table.compare("global_grad_norm clip factor", "1", "fp32", {gpu_clip}, {clip}, kF32Tolerance, false);
  const std::string shape = std::to_string(n1) + "+" + std::to_string(n2);
  table.compare("adamw param", shape, "fp32", download_f32(dp), p, kF32Tolerance, false);
  table.compare("adamw exp_avg", shape, "fp32", download_f32(dm), opt.exp_avg(), kF32Tolerance, false);
  table.compare("adamw exp_avg_sq", shape, "fp32", download_f32(dv), opt.exp_avg_sq(), kF32Tolerance, false);
  table.compare("adamw bf16 copy", shape, "bf16", download_bf16(copy), p, kBf16Tolerance, true);
}

namespace {

// The CPU decoder's commit rule (decode.cpp): candidates stably sorted by confidence, then the
// threshold loop or the first k.
std::vector<float> reference_commits(const std::vector<float>& conf, const std::vector<uint8_t>& cand, int rows,
                                     int L, float threshold, int max_per_step, int k) {
  std::vector<float> out(conf.size(), 0.0f);
  for (int r = 0; r < rows; ++r) {
    std::vector<int> idx;
    for (int i = 0; i < L; ++i)
      if (cand[static_cast<size_t>(r) * L + i]) idx.push_back(i);
    const float* c = conf.data() + static_cast<size_t>(r) * L;
    std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return c[a] > c[b]; });
    std::vector<int> commit;
    if (k > 0) {
      commit.assign(idx.begin(), idx.begin() + std::min<std::ptrdiff_t>(k, static_cast<std::ptrdiff_t>(idx.size())));
    } else {
      for (int i : idx) {
        if (!commit.empty() && c[i] < threshold) break;
        commit.push_back(i);
        if (max_per_step > 0 && static_cast<int>(commit.size()) >= max_per_step) break;
      }
    }
    for (int i : commit) out[static_cast<size_t>(r) * L + i] = 1.0f;
  }
  return out;
}

}  // namespace

void check_sampler(Random& rng, Table& table) {
  const int R = 64, V = 2000;
  const std::vector<int32_t> banned_ids = {3, 4, 1999};
  std::vector<float> logits = rng.normal_vector(static_cast<size_t>(R) * V, 4.0f);
  std::vector<uint8_t> banned(V, 0);
  for (int32_t id : banned_ids) banned[static_cast<size_t>(id)] = 1;
  for (int r = 0; r < R; ++r) logits[static_cast<size_t>(r) * V + 3] = 50.0f;  // a banned token would win
  auto dlogits = upload_f32(logits);
  DeviceBuffer<uint8_t> dbanned(V);
  dbanned.upload(banned.data());

  // softmax_rows against a double-precision softmax over the allowed tokens.
  const float temperature = 0.7f;
  std::vector<float> ref(logits.size(), 0.0f);
  for (int r = 0; r < R; ++r) {
    const float* row = logits.data() + static_cast<size_t>(r) * V;
    double m = -std::numeric_limits<double>::infinity(), z = 0.0;
    for (int v = 0; v < V; ++v)
      if (!banned[static_cast<size_t>(v)]) m = std::max(m, static_cast<double>(row[v]) / temperature);
    for (int v = 0; v < V; ++v)
      if (!banned[static_cast<size_t>(v)]) z += std::exp(static_cast<double>(row[v]) / temperature - m);
    for (int v = 0; v < V; ++v)
      if (!banned[static_cast<size_t>(v)])
        ref[static_cast<size_t>(r) * V + v] =
            static_cast<float>(std::exp(static_cast<double>(row[v]) / temperature - m) / z);
  }
  DeviceBuffer<float> probs(logits.size());
  poison(probs);
  softmax_rows(dlogits.get(), R, V, dbanned.get(), temperature, probs.get(), nullptr);
  table.compare("softmax_rows (T=0.7, banned)", dims({R, V}), "fp32", download_f32(probs), ref, kF32Tolerance, true);

  // greedy_choice against the CPU sampler's greedy choose_token.
  const sdt::sampler::BannedTokens cpu_banned(V, banned_ids);
  sdt::sampler::Rng cpu_rng(1);
  std::vector<float> scratch, ref_tok(R), ref_conf(R);
  for (int r = 0; r < R; ++r) {
    const auto c = sdt::sampler::choose_token(logits.data() + static_cast<size_t>(r) * V, V, cpu_banned,
                                              sdt::sampler::ChoiceRule{}, cpu_rng, scratch);
    ref_tok[static_cast<size_t>(r)] = static_cast<float>(c.token);
    ref_conf[static_cast<size_t>(r)] = c.confidence;
  }
  DeviceBuffer<int32_t> tok(R);
  DeviceBuffer<float> conf(R);
  fill_u32(tok.get(), 0xffffffffu, R, nullptr);
  poison(conf);
  greedy_choice(dlogits.get(), R, V, dbanned.get(), 0.0f, tok.get(), conf.get(), nullptr);
  std::vector<int32_t> got_tok(R);
  tok.download(got_tok.data());
  table.compare("greedy_choice token", dims({R}), "int", to_float(got_tok), ref_tok, 0.0, false);
  table.compare("greedy_choice confidence", dims({R}), "fp32", download_f32(conf), ref_conf, kF32Tolerance, true);

  // select_commits: confidences on a coarse grid so ties occur; some rows without candidates.
  const int rows = 16, L = 48;
  std::vector<float> c(static_cast<size_t>(rows) * L);
  std::vector<uint8_t> cand(c.size());
  for (size_t i = 0; i < c.size(); ++i) {
    c[i] = static_cast<float>(rng.below(17)) / 16.0f;
    cand[i] = rng.below(3) != 0 ? 1 : 0;
  }
  for (int i = 0; i < L; ++i) cand[static_cast<size_t>(5) * L + i] = 0;
  auto dc = upload_f32(c);
  DeviceBuffer<uint8_t> dcand(cand.size()), dcommit(cand.size());
  dcand.upload(cand.data());
  struct Rule {
    const char* name;
    float threshold;
    int max_per_step, k;
  };
  for (const Rule& rule : {Rule{"threshold 0.9", 0.9f, 0, 0}, Rule{"threshold 0.5 max 3", 0.5f, 3, 0},
                           Rule{"threshold 1.01 (>=1)", 1.01f, 0, 0}, Rule{"top-k 4", 0.0f, 0, 4}}) {
    fill_u32(dcommit.get(), 0x7f7f7f7fu, cand.size() / 4, nullptr);
    select_commits(dc.get(), dcand.get(), rows, L, rule.threshold, rule.max_per_step, rule.k, dcommit.get(), nullptr);
    std::vector<uint8_t> got(cand.size());
    dcommit.download(got.data());
    std::vector<float> gotf(got.begin(), got.end());
    table.compare(std::string("select_commits ") + rule.name, dims({rows, L}), "u8", gotf,
                  reference_commits(c, cand, rows, L, rule.threshold, rule.max_per_step, rule.k), 0.0, false);
  }
}

}  // namespace sdt::cuda::parity
#endif  // SDT_HAVE_CUDA
