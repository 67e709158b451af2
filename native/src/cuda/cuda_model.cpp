#ifdef SDT_HAVE_CUDA
#include "cuda/cuda_model.h"

#include <algorithm>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>

#include "adamw.cuh"
#include "attention.cuh"
#include "cross_entropy.cuh"
#include "cuda/cublaslt.h"
#include "device.cuh"
#include "embedding.cuh"
#include "ops/ops.h"
#include "rmsnorm.cuh"
#include "rope.cuh"
#include "sampler.cuh"
#include "swiglu.cuh"

namespace sdt::cuda {
namespace {

struct LayerOffsets {
  int64_t input_norm, qkv, o, post_norm, gate_up, down;
};

// Activations a layer keeps for its backward (the CPU Model::Activations, in mixed precision).
struct LayerActs {
  DeviceBuffer<float> x, inv1, lse, x_mid, inv2;
  DeviceBuffer<bf16> xn1, qkv, attn, xn2, gu, h;
};

int64_t offset_of(const Model& m, const std::string& name) {
  for (const ParamView& p : m.params())
    if (p.name == name) return p.offset;
  throw std::logic_error("CudaModel: the model has no parameter " + name);
}

// Counts reallocations of the per-batch buffers: a recorded step graph holds their addresses and
// is replayed only while this count is the one it was recorded at.
long g_reallocations = 0;

template <class T>
void ensure(DeviceBuffer<T>& b, size_t n) {
  if (b.size() >= n) return;
  b = DeviceBuffer<T>(n);
  ++g_reallocations;
}

// What a recorded training step depends on besides the buffers' contents.
struct StepKey {
  int B = 0, T = 0, mode = 0;
  bool seg = false, pos = false, weights = false, backward = false;
  float grad_scale = 0.0f;
  int attention = 0;
  long reallocations = -1;
  bool operator==(const StepKey& o) const {
    return B == o.B && T == o.T && mode == o.mode && seg == o.seg && pos == o.pos && weights == o.weights &&
           backward == o.backward && grad_scale == o.grad_scale && attention == o.attention &&
           reallocations == o.reallocations;
  }
};

}  // namespace

struct CudaModel::Impl {
  ModelConfig cfg;
  CublasLt* lt = nullptr;
  std::vector<ParamView> views;  // offsets and decay flags; data/grad pointers unused
  std::vector<LayerOffsets> layers;
  int64_t norm_off = 0, lm_head_off = 0, P = 0;
  DeviceBuffer<float> w, g, m, v, rope_cos, rope_sin;
  DeviceBuffer<bf16> wb;  // bf16 copy of w
  int64_t updates = 0;
  int max_pos = 0;

  // Per-batch buffers, grown as needed.
  std::vector<LayerActs> acts;
  DeviceBuffer<float> x_final, inv_f, dx, dxn, delta, ce;
  DeviceBuffer<bf16> xn_f, dx_b, dh, dgu, dattn, dqkv, logits;
  DeviceBuffer<int32_t> ids, targets, seg, pos;
  DeviceBuffer<float> weights;
  DeviceBuffer<double> chunk_loss, norm_ws, norm_out;
  DeviceBuffer<float> clip, ce_ws;
  // Every kernel and GEMM of this model runs here; the synchronous host copies are ordered with it.
  Stream stream = stream_create_ordered();
  // Step graphs (use_graphs): a key's first step runs eagerly (buffers, cuBLASLt plans), its
  // second is recorded, later ones replay it.
  bool graphs = false;
  std::string graph_error;
  StepKey graph_key;
  StreamGraph graph;
  ~Impl() {
    graph.reset();
    stream_destroy(stream);
  }

  template <class Body>
  void run_step(StepKey key, Body&& body) {
    key.reallocations = g_reallocations;
    if (!graphs) return body();
    if (!(key == graph_key)) {
      graph.reset();
      body();
      key.reallocations = g_reallocations;  // the eager step may have grown buffers
      graph_key = key;
      return;
    }
    if (!graph.ready()) {
      try {
        graph.record(stream, body);
      } catch (const std::exception& e) {
        // A step that cannot be recorded runs eagerly from now on; graph_status() says why.
        graphs = false;
        graph_error = e.what();
        return body();
      }
    }
    graph.launch(stream);
  }

  const float* W(int64_t off) const { return w.get() + off; }
  const bf16* Wb(int64_t off) const { return wb.get() + off; }
  float* G(int64_t off) const { return g.get() + off; }

  // y[N, out] (+)= x[N, in] W^T, W [out, in] bf16.
  void linear(const bf16* x, int N, int in, int64_t woff, int out, void* y, OutType t, bool accumulate) {
    lt->matmul(false, true, N, out, in, 1.0f, x, in, Wb(woff), in, accumulate ? 1.0f : 0.0f, y, t, out, stream);
  }
  // dx[N, in] = dy W (fp32 or bf16 out); dW[out, in] += dy^T x.
  void linear_backward(const bf16* x, int N, int in, int64_t woff, int out, const bf16* dy, void* dxo, OutType t) {
    lt->matmul(false, false, N, in, out, 1.0f, dy, out, Wb(woff), in, 0.0f, dxo, t, in, stream);
    lt->matmul(true, false, out, in, N, 1.0f, dy, out, x, in, 1.0f, G(woff), OutType::F32, in, stream);
  }

  void check_batch(const Batch& b, bool need_targets) const;
  void upload_batch(const Batch& b);
  void forward_trunk(const Batch& b, bool keep);
  LossStats run(const Batch& b, double normalizer, bool backward, float* token_ce);
  void backward_trunk(const Batch& b);
  void logits_to_host(const bf16* xn, int N, float* host);

  LayerActs dec;  // forward_chunk's scratch
  DeviceBuffer<bf16> saved_k, saved_v;  // committed K/V slots a probe chunk overlaps
  DeviceBuffer<float> logits_f32;
  DeviceBuffer<int32_t> chunk_pos;
  DeviceBuffer<int32_t> row_start;  // forward_chunk: the cache's row starts
};

void CudaModel::Impl::check_batch(const Batch& b, bool need_targets) const {
  if (b.B <= 0 || b.T <= 0)
    throw std::invalid_argument("batch shape B=" + std::to_string(b.B) + ", T=" + std::to_string(b.T) +
                                " must be positive");
  if (!b.input_ids) throw std::invalid_argument("batch has no input_ids");
  if (need_targets && !b.target_ids) throw std::invalid_argument("batch has no target_ids");
  for (int r = 0; r < b.B; ++r) {
    for (int t = 0; t < b.T; ++t) {
      const long n = static_cast<long>(r) * b.T + t;
      auto fail = [&](const char* what, long value, const std::string& rule) {
        std::ostringstream os;
        os << what << "[row " << r << ", position " << t << "] = " << value << " " << rule;
        throw std::invalid_argument(os.str());
      };
      if (b.input_ids[n] < 0 || b.input_ids[n] >= cfg.vocab_size)
        fail("input_ids", b.input_ids[n], "is outside [0, vocab_size=" + std::to_string(cfg.vocab_size) + ")");
      if (b.target_ids && b.target_ids[n] >= cfg.vocab_size)
        fail("target_ids", b.target_ids[n], "is >= vocab_size=" + std::to_string(cfg.vocab_size));
      if (b.target_ids && b.target_ids[n] == cfg.mask_token_id)
        fail("target_ids", b.target_ids[n], "is the <|mask|> token, which is never a target (use -1 for no loss)");
      const int p = b.position_ids ? b.position_ids[n] : t;
      if (p < 0 || p >= max_pos)
        fail("position", p, "is outside [0, max_position_embeddings=" + std::to_string(max_pos) + ")");
    }
  }
}

void CudaModel::Impl::upload_batch(const Batch& b) {
  const size_t n = static_cast<size_t>(b.B) * b.T;
  auto put_i32 = [&](DeviceBuffer<int32_t>& d, const int32_t* h) {
    if (!h) return;
    ensure(d, n);
    copy_to_device(d.get(), h, n * sizeof(int32_t));
  };
  put_i32(ids, b.input_ids);
  put_i32(targets, b.target_ids);
  put_i32(seg, b.segment_ids);
  put_i32(pos, b.position_ids);
  if (b.weights) {
    ensure(weights, n);
    copy_to_device(weights.get(), b.weights, n * sizeof(float));
  }
}

void CudaModel::Impl::forward_trunk(const Batch& b, bool keep) {
  const int B = b.B, T = b.T, N = B * T, D = cfg.hidden_size, I = cfg.intermediate_size;
  const int nh = cfg.num_attention_heads, nkv = cfg.num_key_value_heads, hd = cfg.head_dim();
  const int S = (nh + 2 * nkv) * hd, A = nh * hd, L = cfg.num_hidden_layers;
  const size_t n = static_cast<size_t>(N);
  AttentionMaskArgs mask;
  mask.mode = b.mode;
  mask.block_size = cfg.block_size;
  mask.segment = b.segment_ids ? seg.get() : nullptr;
  mask.pos = b.position_ids && b.mode != AttentionMode::BlockTwoStream ? pos.get() : nullptr;
  const int32_t* dpos = b.position_ids ? pos.get() : nullptr;

  const size_t slots = keep ? static_cast<size_t>(L) : 1;
  if (acts.size() < slots) acts.resize(slots);
  ensure(acts[0].x, n * D);
  embedding_forward(Wb(0), cfg.vocab_size, D, ids.get(), N, acts[0].x.get(), stream);
  for (int l = 0; l < L; ++l) {
    LayerActs& a = acts[keep ? static_cast<size_t>(l) : 0];
    const LayerOffsets& o = layers[static_cast<size_t>(l)];
    ensure(a.x, n * D);
    ensure(a.inv1, n);
    ensure(a.xn1, n * D);
    ensure(a.qkv, n * S);
    ensure(a.attn, n * A);
    ensure(a.lse, n * nh);
    ensure(a.x_mid, n * D);
    ensure(a.inv2, n);
    ensure(a.xn2, n * D);
    ensure(a.gu, n * 2 * I);
    ensure(a.h, n * I);
    rmsnorm_forward(a.x.get(), W(o.input_norm), N, D, cfg.rms_norm_eps, a.xn1.get(), a.inv1.get(), stream);
    linear(a.xn1.get(), N, D, o.qkv, S, a.qkv.get(), OutType::BF16, false);
    rope_forward(rope_cos.get(), rope_sin.get(), max_pos, hd, a.qkv.get(), N, S, nh + nkv, dpos, T, stream);
    attention_forward(a.qkv.get(), S, B, T, nh, nkv, hd, mask, a.attn.get(), a.lse.get(), stream);
    copy_on_device(a.x_mid.get(), a.x.get(), n * D * sizeof(float), stream);
    linear(a.attn.get(), N, A, o.o, D, a.x_mid.get(), OutType::F32, true);
    rmsnorm_forward(a.x_mid.get(), W(o.post_norm), N, D, cfg.rms_norm_eps, a.xn2.get(), a.inv2.get(), stream);
    linear(a.xn2.get(), N, D, o.gate_up, 2 * I, a.gu.get(), OutType::BF16, false);
    swiglu_forward(a.gu.get(), N, I, a.h.get(), stream);
    float* x_out;
    if (l + 1 == L) {
      ensure(x_final, n * D);
      x_out = x_final.get();
    } else if (keep) {
      ensure(acts[static_cast<size_t>(l) + 1].x, n * D);
      x_out = acts[static_cast<size_t>(l) + 1].x.get();
    } else {
      x_out = a.x.get();
    }
    copy_on_device(x_out, a.x_mid.get(), n * D * sizeof(float), stream);
    linear(a.h.get(), N, I, o.down, D, x_out, OutType::F32, true);
  }
  ensure(xn_f, n * D);
  ensure(inv_f, n);
  rmsnorm_forward(x_final.get(), W(norm_off), N, D, cfg.rms_norm_eps, xn_f.get(), inv_f.get(), stream);
}

LossStats CudaModel::Impl::run(const Batch& in, double normalizer, bool backward, float* token_ce) {
  std::vector<int32_t> layout_positions;
  const Batch b = with_layout_positions(in, layout_positions);
  check_batch(b, true);
  upload_batch(b);
  const int N = b.B * b.T, D = cfg.hidden_size, V = cfg.vocab_size;

  LossStats st;
  st.normalizer = normalizer > 0.0 ? normalizer : static_cast<double>(N);
  for (int i = 0; i < N; ++i) {
    if (b.target_ids[i] < 0) continue;
    st.targets += 1;
    st.weight_sum += b.weights ? static_cast<double>(b.weights[i]) : 1.0;
  }
  // Logits in row chunks of at most 2^25 elements (64 MiB of bf16).
  const int rows = std::max(1, std::min(N, (1 << 25) / V));
  const int chunks = (N + rows - 1) / rows;
  ensure(logits, static_cast<size_t>(rows) * V);
  ensure(ce, static_cast<size_t>(N));
  ensure(chunk_loss, static_cast<size_t>(chunks));
  ensure(ce_ws, static_cast<size_t>(rows));
  if (backward) ensure(dxn, static_cast<size_t>(N) * D);
  const float grad_scale = backward ? static_cast<float>(1.0 / st.normalizer) : 0.0f;
  // Everything between the batch upload and the loss download, all on `stream`.
  auto step = [&] {
    forward_trunk(b, backward);
    for (int c = 0; c < chunks; ++c) {
      const int r0 = c * rows, R = std::min(rows, N - r0);
      const bf16* xr = xn_f.get() + static_cast<long>(r0) * D;
      linear(xr, R, D, lm_head_off, V, logits.get(), OutType::BF16, false);
      cross_entropy(logits.get(), R, V, targets.get() + r0, b.weights ? weights.get() + r0 : nullptr,
                    cfg.mask_token_id, grad_scale, ce.get() + r0, chunk_loss.get() + c,
                    backward ? logits.get() : nullptr, ce_ws.get(), stream);
      if (backward)
        linear_backward(xr, R, D, lm_head_off, V, logits.get(), dxn.get() + static_cast<long>(r0) * D, OutType::F32);
    }
    if (backward) backward_trunk(b);
  };
  StepKey key;
  key.B = b.B;
  key.T = b.T;
  key.mode = static_cast<int>(b.mode);
  key.seg = b.segment_ids != nullptr;
  key.pos = b.position_ids != nullptr;
  key.weights = b.weights != nullptr;
  key.backward = backward;
  key.grad_scale = grad_scale;
  key.attention = static_cast<int>(attention_kernels());
  run_step(key, step);
  std::vector<double> losses(static_cast<size_t>(chunks));
  copy_to_host(losses.data(), chunk_loss.get(), losses.size() * sizeof(double));
  for (double l : losses) st.weighted_ce_sum += l;
  if (token_ce) copy_to_host(token_ce, ce.get(), static_cast<size_t>(N) * sizeof(float));
  st.loss = st.weighted_ce_sum / st.normalizer;
  return st;
}

void CudaModel::Impl::backward_trunk(const Batch& b) {
  const int B = b.B, T = b.T, N = B * T, D = cfg.hidden_size, I = cfg.intermediate_size;
  const int nh = cfg.num_attention_heads, nkv = cfg.num_key_value_heads, hd = cfg.head_dim();
  const int S = (nh + 2 * nkv) * hd, A = nh * hd, L = cfg.num_hidden_layers;
  const size_t n = static_cast<size_t>(N);
  AttentionMaskArgs mask;
  mask.mode = b.mode;
  mask.block_size = cfg.block_size;
  mask.segment = b.segment_ids ? seg.get() : nullptr;
  mask.pos = b.position_ids && b.mode != AttentionMode::BlockTwoStream ? pos.get() : nullptr;
  const int32_t* dpos = b.position_ids ? pos.get() : nullptr;

  ensure(dx, n * D);
  ensure(dx_b, n * D);
  ensure(dh, n * I);
  ensure(dgu, n * 2 * I);
  ensure(dattn, n * A);
  ensure(dqkv, n * S);
  ensure(delta, n * nh);
  fill_u32(dx.get(), 0u, n * D, stream);
  rmsnorm_backward(x_final.get(), W(norm_off), inv_f.get(), dxn.get(), N, D, dx.get(), G(norm_off), stream);
  for (int l = L - 1; l >= 0; --l) {
    LayerActs& a = acts[static_cast<size_t>(l)];
    const LayerOffsets& o = layers[static_cast<size_t>(l)];
    // dx: gradient w.r.t. this layer's output (fp32); the GEMMs take its bf16 copy.
    to_bf16(dx.get(), n * D, dx_b.get(), stream);
    linear_backward(a.h.get(), N, I, o.down, D, dx_b.get(), dh.get(), OutType::BF16);
    swiglu_backward(a.gu.get(), dh.get(), N, I, dgu.get(), stream);
    linear_backward(a.xn2.get(), N, D, o.gate_up, 2 * I, dgu.get(), dxn.get(), OutType::F32);
    rmsnorm_backward(a.x_mid.get(), W(o.post_norm), a.inv2.get(), dxn.get(), N, D, dx.get(), G(o.post_norm),
                     stream);
    to_bf16(dx.get(), n * D, dx_b.get(), stream);
    linear_backward(a.attn.get(), N, A, o.o, D, dx_b.get(), dattn.get(), OutType::BF16);
    attention_backward(a.qkv.get(), S, a.attn.get(), a.lse.get(), dattn.get(), B, T, nh, nkv, hd, mask, delta.get(),
                       dqkv.get(), stream);
    rope_backward(rope_cos.get(), rope_sin.get(), max_pos, hd, dqkv.get(), N, S, nh + nkv, dpos, T, stream);
    linear_backward(a.xn1.get(), N, D, o.qkv, S, dqkv.get(), dxn.get(), OutType::F32);
    rmsnorm_backward(a.x.get(), W(o.input_norm), a.inv1.get(), dxn.get(), N, D, dx.get(), G(o.input_norm), stream);
  }
  embedding_backward(ids.get(), N, cfg.vocab_size, D, dx.get(), G(0), stream);
}

void CudaModel::Impl::logits_to_host(const bf16* xn, int N, float* host) {
  const int V = cfg.vocab_size;
  ensure(logits_f32, static_cast<size_t>(N) * V);
  linear(xn, N, cfg.hidden_size, lm_head_off, V, logits_f32.get(), OutType::F32, false);
  copy_to_host(host, logits_f32.get(), static_cast<size_t>(N) * V * sizeof(float));
  const float neg_inf = -std::numeric_limits<float>::infinity();
  for (long i = 0; i < N; ++i) host[i * V + cfg.mask_token_id] = neg_inf;
}

CudaModel::CudaModel(const Model& layout, CublasLt& lt) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.cfg = layout.config();
  m.lt = &lt;
  m.views = layout.params();
  m.P = layout.num_params();
  const int hd = m.cfg.head_dim();
  if (hd > kAttentionMaxHeadDim)
    throw std::invalid_argument("CUDA backend: head_dim " + std::to_string(hd) + " exceeds " +
                                std::to_string(kAttentionMaxHeadDim));
  for (int l = 0; l < m.cfg.num_hidden_layers; ++l) {
    const std::string pre = "model.layers." + std::to_string(l) + ".";
    LayerOffsets o{};
    o.input_norm = offset_of(layout, pre + "input_layernorm.weight");
    o.qkv = offset_of(layout, pre + "self_attn.q_proj.weight");
    o.o = offset_of(layout, pre + "self_attn.o_proj.weight");
    o.post_norm = offset_of(layout, pre + "post_attention_layernorm.weight");
    o.gate_up = offset_of(layout, pre + "mlp.gate_proj.weight");
    o.down = offset_of(layout, pre + "mlp.down_proj.weight");
    m.layers.push_back(o);
  }
  m.norm_off = offset_of(layout, "model.norm.weight");
  m.lm_head_off = m.cfg.tie_word_embeddings ? 0 : offset_of(layout, "lm_head.weight");
  const size_t P = static_cast<size_t>(m.P);
  m.w = DeviceBuffer<float>(P);
  m.g = DeviceBuffer<float>(P);
  m.m = DeviceBuffer<float>(P);
  m.v = DeviceBuffer<float>(P);
  m.wb = DeviceBuffer<bf16>(P);
  fill_u32(m.g.get(), 0u, P, m.stream);
  fill_u32(m.m.get(), 0u, P, m.stream);
  fill_u32(m.v.get(), 0u, P, m.stream);
  m.max_pos = m.cfg.max_position_embeddings;
  const RopeTable rope(hd, m.max_pos, m.cfg.rope_theta);
  m.rope_cos = DeviceBuffer<float>(rope.cos.size());
  m.rope_sin = DeviceBuffer<float>(rope.sin.size());
  m.rope_cos.upload(rope.cos.data());
  m.rope_sin.upload(rope.sin.data());
  m.norm_ws = DeviceBuffer<double>(kGradNormPartials);
  m.norm_out = DeviceBuffer<double>(1);
  m.clip = DeviceBuffer<float>(1);
}

CudaModel::~CudaModel() = default;

const ModelConfig& CudaModel::config() const { return impl_->cfg; }
int64_t CudaModel::num_params() const { return impl_->P; }

void CudaModel::upload_params(const float* host) {
  impl_->w.upload(host);
  to_bf16(impl_->w.get(), static_cast<size_t>(impl_->P), impl_->wb.get(), impl_->stream);
}
void CudaModel::download_params(float* host) const { impl_->w.download(host); }
void CudaModel::download_grads(float* host) const { impl_->g.download(host); }
float* CudaModel::grad_buffer() { return impl_->g.get(); }
Stream CudaModel::stream() const { return impl_->stream; }

void CudaModel::upload_optimizer_state(const float* exp_avg, const float* exp_avg_sq, int64_t updates) {
  impl_->m.upload(exp_avg);
  impl_->v.upload(exp_avg_sq);
  impl_->updates = updates;
}

void CudaModel::download_optimizer_state(float* exp_avg, float* exp_avg_sq) const {
  impl_->m.download(exp_avg);
  impl_->v.download(exp_avg_sq);
}

void CudaModel::zero_grad() { fill_u32(impl_->g.get(), 0u, static_cast<size_t>(impl_->P), nullptr); }

LossStats CudaModel::forward_backward(const Batch& batch, double normalizer) {
  return impl_->run(batch, normalizer, true, nullptr);
}

LossStats CudaModel::forward_loss(const Batch& batch, double normalizer, float* token_ce) {
  return impl_->run(batch, normalizer, false, token_ce);
}

double CudaModel::optimizer_step(const train::AdamWConfig& cfg, double lr, double max_norm) {
  Impl& m = *impl_;
  global_grad_norm(m.g.get(), static_cast<size_t>(m.P), max_norm, m.norm_ws.get(), m.norm_out.get(), m.clip.get(),
                   m.stream);
  ++m.updates;
  AdamWStep st;
  st.lr = static_cast<float>(lr);
  st.beta1 = static_cast<float>(cfg.beta1);
  st.beta2 = static_cast<float>(cfg.beta2);
  st.eps = static_cast<float>(cfg.eps);
  st.step = m.updates;
  for (const ParamView& p : m.views) {
    st.weight_decay = p.decay ? static_cast<float>(cfg.weight_decay) : 0.0f;
    const size_t off = static_cast<size_t>(p.offset);
    adamw_update(m.w.get() + off, m.g.get() + off, m.m.get() + off, m.v.get() + off, static_cast<size_t>(p.numel), st,
                 m.clip.get(), m.wb.get() + off, m.stream);
  }
  double norm = 0.0;
  m.norm_out.download(&norm);
  return norm;
}

double CudaModel::grad_norm() {
  Impl& m = *impl_;
  global_grad_norm(m.g.get(), static_cast<size_t>(m.P), 0.0, m.norm_ws.get(), m.norm_out.get(), m.clip.get(),
                   m.stream);
  double norm = 0.0;
  m.norm_out.download(&norm);
  return norm;
}

int64_t CudaModel::optimizer_updates() const { return impl_->updates; }

void CudaModel::use_graphs(bool on) {
  impl_->graphs = on;
  impl_->graph_error.clear();
  impl_->graph.reset();
  impl_->graph_key = StepKey{};
}

std::string CudaModel::graph_status() const {
  if (!impl_->graph_error.empty()) return "off after a failed recording: " + impl_->graph_error;
  if (!impl_->graphs) return "off";
  return impl_->graph.ready() ? "on, a step is recorded" : "on, nothing recorded yet";
}

void CudaModel::forward_logits(const int32_t* ids, int B, int T, AttentionMode mode, const int32_t* segment_ids,
                               float* logits_out, const int32_t* position_ids) {
  Impl& m = *impl_;
  std::vector<int32_t> layout_positions;
  const Batch b = with_layout_positions(logits_batch(ids, B, T, mode, segment_ids, position_ids), layout_positions);
  m.check_batch(b, false);
  m.upload_batch(b);
  m.forward_trunk(b, false);
  m.logits_to_host(m.xn_f.get(), B * T, logits_out);
}

CudaKVCache CudaModel::make_cache(int batch, int max_len) const {
  const ModelConfig& c = impl_->cfg;
  if (batch <= 0 || max_len <= 0 || max_len > c.max_position_embeddings)
    throw std::invalid_argument("make_cache(batch=" + std::to_string(batch) + ", max_len=" + std::to_string(max_len) +
                                ") needs batch > 0 and 0 < max_len <= max_position_embeddings=" +
                                std::to_string(c.max_position_embeddings));
  CudaKVCache cache;
  cache.batch = batch;
  cache.max_len = max_len;
  const size_t n = static_cast<size_t>(c.num_hidden_layers) * batch * c.num_key_value_heads * max_len * c.head_dim();
  cache.k = DeviceBuffer<bf16>(n);
  cache.v = DeviceBuffer<bf16>(n);
  return cache;
}

void CudaModel::forward_chunk(CudaKVCache& cache, const int32_t* ids, int C, int start_pos, AttentionMode mode,
                              float* logits_out, bool append_to_cache, int own_block) {
  Impl& m = *impl_;
  const ModelConfig& c = m.cfg;
  const int B = cache.batch, D = c.hidden_size, I = c.intermediate_size, V = c.vocab_size;
  const int nh = c.num_attention_heads, nkv = c.num_key_value_heads, hd = c.head_dim();
  const int S = (nh + 2 * nkv) * hd, A = nh * hd, L = c.num_hidden_layers;
  check_chunk_args(ids, B, C, start_pos, cache.length, cache.max_len, V);
  check_own_block(own_block, C, mode);
  check_row_starts(cache.row_start, B, cache.max_len);
  const int N = B * C;
  const size_t n = static_cast<size_t>(N);
  LayerActs& a = m.dec;
  ensure(m.ids, n);
  copy_to_device(m.ids.get(), ids, n * sizeof(int32_t));
  const bool padded = !cache.row_start.empty();
  std::vector<int32_t> pos(n);
  for (int i = 0; i < N; ++i)
    pos[static_cast<size_t>(i)] = std::max(0, start_pos + i % C - (padded ? cache.row_start[static_cast<size_t>(i / C)] : 0));
  ensure(m.chunk_pos, n);
  copy_to_device(m.chunk_pos.get(), pos.data(), n * sizeof(int32_t));
  if (padded) {
    ensure(m.row_start, static_cast<size_t>(B));
    copy_to_device(m.row_start.get(), cache.row_start.data(), static_cast<size_t>(B) * sizeof(int32_t));
  }
  ensure(a.x, n * D);
  ensure(a.inv1, n);
  ensure(a.xn1, n * D);
  ensure(a.qkv, n * S);
  ensure(a.attn, n * A);
  ensure(a.gu, n * 2 * I);
  ensure(a.h, n * I);
  embedding_forward(m.Wb(0), V, D, m.ids.get(), N, a.x.get(), m.stream);
  const size_t layer_stride = static_cast<size_t>(B) * nkv * cache.max_len * hd;
  // Without append, committed slots the chunk overlaps are restored after use (as the CPU model):
  // a probe over committed positions leaves the cache as it was.
  const int keep = append_to_cache ? 0 : std::max(0, std::min(cache.length, start_pos + C) - start_pos);
  const size_t keep_n = static_cast<size_t>(keep) * hd;
  if (keep > 0) {
    ensure(m.saved_k, static_cast<size_t>(B) * nkv * keep_n);
    ensure(m.saved_v, static_cast<size_t>(B) * nkv * keep_n);
  }
  auto slots = [&](bf16* layer, int bg) { return layer + (static_cast<size_t>(bg) * cache.max_len + start_pos) * hd; };
  for (int l = 0; l < L; ++l) {
    const LayerOffsets& o = m.layers[static_cast<size_t>(l)];
    rmsnorm_forward(a.x.get(), m.W(o.input_norm), N, D, c.rms_norm_eps, a.xn1.get(), a.inv1.get(), m.stream);
    m.linear(a.xn1.get(), N, D, o.qkv, S, a.qkv.get(), OutType::BF16, false);
    rope_forward(m.rope_cos.get(), m.rope_sin.get(), m.max_pos, hd, a.qkv.get(), N, S, nh + nkv, m.chunk_pos.get(), C,
                 m.stream);
    // The chunk's K/V go into slots [start_pos, start_pos + C); they count as cached only when
    // append_to_cache is set.
    bf16* kc = cache.k.get() + l * layer_stride;
    bf16* vc = cache.v.get() + l * layer_stride;
    for (int bg = 0; keep > 0 && bg < B * nkv; ++bg) {
      copy_on_device(m.saved_k.get() + bg * keep_n, slots(kc, bg), keep_n * sizeof(bf16), m.stream);
      copy_on_device(m.saved_v.get() + bg * keep_n, slots(vc, bg), keep_n * sizeof(bf16), m.stream);
    }
    kv_cache_append(a.qkv.get(), S, B, C, nh, nkv, hd, kc, vc, cache.max_len, start_pos, m.stream);
    attention_chunk_forward(a.qkv.get(), S, kc, vc, cache.max_len, B, C, start_pos, nh, nkv, hd, mode, a.attn.get(),
                            m.stream, own_block, padded ? m.row_start.get() : nullptr);
    for (int bg = 0; keep > 0 && bg < B * nkv; ++bg) {
      copy_on_device(slots(kc, bg), m.saved_k.get() + bg * keep_n, keep_n * sizeof(bf16), m.stream);
      copy_on_device(slots(vc, bg), m.saved_v.get() + bg * keep_n, keep_n * sizeof(bf16), m.stream);
    }
    m.linear(a.attn.get(), N, A, o.o, D, a.x.get(), OutType::F32, true);
    rmsnorm_forward(a.x.get(), m.W(o.post_norm), N, D, c.rms_norm_eps, a.xn1.get(), a.inv1.get(), m.stream);
    m.linear(a.xn1.get(), N, D, o.gate_up, 2 * I, a.gu.get(), OutType::BF16, false);
    swiglu_forward(a.gu.get(), N, I, a.h.get(), m.stream);
    m.linear(a.h.get(), N, I, o.down, D, a.x.get(), OutType::F32, true);
  }
  if (logits_out) {
    rmsnorm_forward(a.x.get(), m.W(m.norm_off), N, D, c.rms_norm_eps, a.xn1.get(), a.inv1.get(), m.stream);
    m.logits_to_host(a.xn1.get(), N, logits_out);
  } else {
    synchronize();  // report asynchronous faults of a cache-only call here, not in a later one
  }
  if (append_to_cache) cache.length = start_pos + C;
}

}  // namespace sdt::cuda
#endif  // SDT_HAVE_CUDA
