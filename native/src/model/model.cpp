// The model: parameter layout, initialisation and the full forward/backward on top of ops/ and gemm/.
#include "model/model.h"

#include "sdt/splitmix64.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "gemm/gemm.h"

namespace sdt {
namespace {

// y[N, out] = x[N, in] * W[out, in]^T (+ y when accumulate).
void linear(const float* x, int N, int in, const float* W, int out, float* y, bool accumulate) {
  gemm(false, true, N, out, in, 1.0f, x, in, W, in, accumulate ? 1.0f : 0.0f, y, out);
}

// The same product for decoding (forward_chunk), from the weight's pack when there is one: gemm_own gives
// each output row the same operations however many rows share the call, whereas OpenBLAS computes the rows
// past its last whole register tile with other kernels, so with it a row's logits would depend on which rows
// were batched with it and a batched row could decode differently from the same prompt alone.
void linear_batch_invariant(const float* x, int N, int in, const float* W, int out, float* y, bool accumulate,
                            const PackedB* packed) {
  if (packed != nullptr)
    gemm_own_packed(false, N, 1.0f, x, in, *packed, accumulate ? 1.0f : 0.0f, y, out);
  else
    gemm_own(false, true, N, out, in, 1.0f, x, in, W, in, accumulate ? 1.0f : 0.0f, y, out);
}

// dx[N, in] (= or +=) dy[N, out] * W[out, in];  dW[out, in] += dy^T x.
void linear_backward(const float* x, int N, int in, const float* W, int out, const float* dy, float* dx,
                     bool accumulate_dx, float* dW) {
  gemm(false, false, N, in, out, 1.0f, dy, out, W, in, accumulate_dx ? 1.0f : 0.0f, dx, in);
  gemm(true, false, out, in, N, 1.0f, dy, out, x, in, 1.0f, dW, in);
}

template <class T>
T* grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

// SplitMix64 draws: small, fast and good enough to draw initial weights reproducibly.
struct Rng {
  uint64_t state;
  uint64_t next() { return splitmix64_next(state); }
  double uniform() { return (static_cast<double>(next() >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
  // Box-Muller; the second value of the pair is not used (this keeps the draws of a seed stable).
  double normal() {
    const double u1 = uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
};

}  // namespace

Batch with_layout_positions(const Batch& b, std::vector<int32_t>& storage) {
  if (b.mode != AttentionMode::BlockTwoStream) return b;
  if (b.T % 2 != 0)
    throw std::invalid_argument("a block-two-stream row holds the noisy then the clean sequence, so its length T = " +
                                std::to_string(b.T) + " must be even");
  const int H = b.T / 2;
  storage.resize(static_cast<size_t>(b.B) * b.T);
  for (int r = 0; r < b.B; ++r)
    for (int t = 0; t < b.T; ++t) storage[static_cast<size_t>(r) * b.T + t] = t % H;
  Batch out = b;
  out.position_ids = storage.data();
  return out;
}

Batch logits_batch(const int32_t* ids, int B, int T, AttentionMode mode, const int32_t* segment_ids,
                   const int32_t* position_ids) {
  Batch b;
  b.B = B;
  b.T = T;
  b.input_ids = ids;
  b.segment_ids = segment_ids;
  b.position_ids = position_ids;
  b.mode = mode;
  return b;
}

void check_own_block(int own_block, int C, AttentionMode mode) {
  if (own_block < 0 || own_block >= C)
    throw std::invalid_argument("forward_chunk: own_block " + std::to_string(own_block) + " must be in [0, " +
                                std::to_string(C) + ")");
  if (own_block > 0 && mode == AttentionMode::Causal)
    throw std::invalid_argument("forward_chunk: own_block needs a non-causal chunk");
}

void check_row_starts(const std::vector<int>& row_start, int batch, int max_len) {
  if (row_start.empty()) return;
  if (static_cast<int>(row_start.size()) != batch)
    throw std::invalid_argument("row starts: " + std::to_string(row_start.size()) + " given for a cache of " +
                                std::to_string(batch) + " rows");
  for (size_t b = 0; b < row_start.size(); ++b)
    if (row_start[b] < 0 || row_start[b] >= max_len)
      throw std::invalid_argument("row start " + std::to_string(row_start[b]) + " of row " + std::to_string(b) +
                                  " is outside [0, " + std::to_string(max_len) + ")");
}

void check_chunk_args(const int32_t* ids, int batch, int C, int start_pos, int length, int max_len, int vocab_size) {
  if (C <= 0 || start_pos < 0 || start_pos > length || start_pos + C > max_len) {
    std::ostringstream os;
    os << "forward_chunk(C=" << C << ", start_pos=" << start_pos << ") needs C > 0, start_pos <= cache length "
       << length << " and start_pos + C <= cache max_len " << max_len;
    throw std::invalid_argument(os.str());
  }
  for (int i = 0; i < batch * C; ++i)
    if (ids[i] < 0 || ids[i] >= vocab_size) {
      std::ostringstream os;
      os << "ids[row " << i / C << ", chunk position " << i % C << "] = " << ids[i] << " is outside [0, vocab_size="
         << vocab_size << ")";
      throw std::invalid_argument(os.str());
    }
}


Model::Model(const ModelConfig& config) : cfg_(config) {
  const std::string err = cfg_.validate();
  if (!err.empty()) throw std::invalid_argument("invalid model config: " + err);
  const int64_t D = cfg_.hidden_size, I = cfg_.intermediate_size, V = cfg_.vocab_size;
  const int64_t hd = cfg_.head_dim(), nh = cfg_.num_attention_heads, nkv = cfg_.num_key_value_heads;
  const int64_t total = cfg_.num_parameters();
  data_.assign(static_cast<size_t>(total), 0.0f);
  grad_.assign(static_cast<size_t>(total), 0.0f);

  int64_t off = 0;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, bool decay) {
    ParamView p;
    p.name = name;
    p.numel = 1;
    for (int64_t s : shape) p.numel *= s;
    p.shape = std::move(shape);
    p.offset = off;
    p.decay = decay;
    params_.push_back(std::move(p));
    const int64_t at = off;
    off += params_.back().numel;
    return at;
  };
  add("model.embed_tokens.weight", {V, D}, true);
  for (int l = 0; l < cfg_.num_hidden_layers; ++l) {
    const std::string pre = "model.layers." + std::to_string(l) + ".";
    LayerOffsets lo{};
    lo.input_norm = add(pre + "input_layernorm.weight", {D}, false);
    lo.qkv = add(pre + "self_attn.q_proj.weight", {nh * hd, D}, true);
    add(pre + "self_attn.k_proj.weight", {nkv * hd, D}, true);
    add(pre + "self_attn.v_proj.weight", {nkv * hd, D}, true);
    lo.o = add(pre + "self_attn.o_proj.weight", {D, nh * hd}, true);
    lo.post_norm = add(pre + "post_attention_layernorm.weight", {D}, false);
    lo.gate_up = add(pre + "mlp.gate_proj.weight", {I, D}, true);
    add(pre + "mlp.up_proj.weight", {I, D}, true);
    lo.down = add(pre + "mlp.down_proj.weight", {D, I}, true);
    layer_off_.push_back(lo);
  }
  norm_off_ = add("model.norm.weight", {D}, false);
  lm_head_off_ = cfg_.tie_word_embeddings ? 0 : add("lm_head.weight", {V, D}, true);
  if (off != total) throw std::logic_error("parameter layout does not match ModelConfig::num_parameters");
  for (auto& p : params_) {
    p.data = data_.data() + p.offset;
    p.grad = grad_.data() + p.offset;
  }
  rope_ = RopeTable(static_cast<int>(hd), cfg_.max_position_embeddings, cfg_.rope_theta);
}

ParamView* Model::find_param(const std::string& hf_name) {
  decode_packs_.clear();
  for (auto& p : params_)
    if (p.name == hf_name) return &p;
  return nullptr;
}

void Model::init(uint64_t seed) {
  decode_packs_.clear();
  Rng rng{seed};
  const double std_base = 0.02;
  const double std_resid = 0.02 / std::sqrt(2.0 * cfg_.num_hidden_layers);
  for (auto& p : params_) {
    if (p.shape.size() == 1) {
      std::fill(p.data, p.data + p.numel, 1.0f);
      continue;
    }
    const bool residual_out = p.name.find("o_proj") != std::string::npos || p.name.find("down_proj") != std::string::npos;
    const double sd = residual_out ? std_resid : std_base;
    for (int64_t i = 0; i < p.numel; ++i) p.data[i] = static_cast<float>(sd * rng.normal());
  }
  zero_grad();
}

void Model::zero_grad() { std::fill(grad_.begin(), grad_.end(), 0.0f); }

const float* Model::lm_head() const { return data_.data() + lm_head_off_; }
float* Model::lm_head_grad() { return grad_.data() + lm_head_off_; }

void Model::check_batch(const Batch& b, bool need_targets) const {
  if (b.B <= 0 || b.T <= 0) {
    std::ostringstream os;
    os << "batch shape B=" << b.B << ", T=" << b.T << " must be positive";
    throw std::invalid_argument(os.str());
  }
  if (!b.input_ids) throw std::invalid_argument("batch has no input_ids");
  if (need_targets && !b.target_ids) throw std::invalid_argument("batch has no target_ids");
  const int V = cfg_.vocab_size;
  for (int r = 0; r < b.B; ++r) {
    for (int t = 0; t < b.T; ++t) {
      const long n = static_cast<long>(r) * b.T + t;
      auto fail = [&](const char* what, long value, const std::string& rule) {
        std::ostringstream os;
        os << what << "[row " << r << ", position " << t << "] = " << value << " " << rule;
        throw std::invalid_argument(os.str());
      };
      if (b.input_ids[n] < 0 || b.input_ids[n] >= V)
        fail("input_ids", b.input_ids[n], "is outside [0, vocab_size=" + std::to_string(V) + ")");
      if (b.target_ids) {
        if (b.target_ids[n] >= V)
          fail("target_ids", b.target_ids[n], "is >= vocab_size=" + std::to_string(V));
        if (b.target_ids[n] == cfg_.mask_token_id)
          fail("target_ids", b.target_ids[n], "is the <|mask|> token, which is never a target (use -1 for no loss)");
      }
      if (b.position_ids && (b.position_ids[n] < 0 || b.position_ids[n] >= cfg_.max_position_embeddings))
        fail("position_ids", b.position_ids[n],
             "is outside [0, max_position_embeddings=" + std::to_string(cfg_.max_position_embeddings) + ")");
      if (!b.position_ids && t >= cfg_.max_position_embeddings)
        fail("sequence length T", b.T,
             "exceeds max_position_embeddings=" + std::to_string(cfg_.max_position_embeddings));
    }
  }
}

void Model::forward_trunk(const int32_t* ids, int B, int T, AttentionMode mode, const int32_t* segment_ids,
                          const int32_t* position_ids, bool keep_for_backward) {
  const int N = B * T, D = cfg_.hidden_size, I = cfg_.intermediate_size;
  const int nh = cfg_.num_attention_heads, nkv = cfg_.num_key_value_heads, hd = cfg_.head_dim();
  const int S = (nh + 2 * nkv) * hd, A = nh * hd, L = cfg_.num_hidden_layers;
  const size_t n = static_cast<size_t>(N);
  // The two-stream mask derives its positions from t (tight key bounds); RoPE still reads them.
  const AttentionMask mask{mode, cfg_.block_size, segment_ids,
                           mode == AttentionMode::BlockTwoStream ? nullptr : position_ids};

  // Never shrink: an evaluation between training steps must not free the training activations.
  const size_t slots = keep_for_backward ? static_cast<size_t>(L) : 1;
  if (ws_.layers.size() < slots) ws_.layers.resize(slots);
  float* x = grow(ws_.layers[0].x, n * D);
  embedding_forward(data_.data(), D, ids, N, x);
  for (int l = 0; l < L; ++l) {
    Activations& a = ws_.layers[keep_for_backward ? static_cast<size_t>(l) : 0];
    const LayerOffsets& o = layer_off_[static_cast<size_t>(l)];
    x = grow(a.x, n * D);  // for l > 0 in training, the previous layer wrote its output here
    float* inv1 = grow(a.inv1, n);
    float* xn1 = grow(a.xn1, n * D);
    float* qkv = grow(a.qkv, n * S);
    float* attn = grow(a.attn, n * A);
    float* lse = grow(a.lse, n * nh);
    float* x_mid = grow(a.x_mid, n * D);
    float* inv2 = grow(a.inv2, n);
    float* xn2 = grow(a.xn2, n * D);
    float* gu = grow(a.gu, n * 2 * I);
    float* h = grow(a.h, n * I);

    rmsnorm_forward(x, data_.data() + o.input_norm, N, D, cfg_.rms_norm_eps, xn1, inv1);
    linear(xn1, N, D, data_.data() + o.qkv, S, qkv, false);
    rope_forward(rope_, qkv, N, S, nh + nkv, position_ids, T);  // q and k heads are adjacent
    attention_forward(qkv, S, B, T, nh, nkv, hd, mask, attn, lse);
    std::copy_n(x, n * D, x_mid);
    linear(attn, N, A, data_.data() + o.o, D, x_mid, true);
    rmsnorm_forward(x_mid, data_.data() + o.post_norm, N, D, cfg_.rms_norm_eps, xn2, inv2);
    linear(xn2, N, D, data_.data() + o.gate_up, 2 * I, gu, false);
    swiglu_forward(gu, N, I, h);
    // The layer output is the next layer's input: write it straight into that slot (in place
    // when nothing is kept for a backward); the last layer writes x_final.
    float* x_out = l + 1 == L ? grow(ws_.x_final, n * D)
                   : keep_for_backward ? grow(ws_.layers[static_cast<size_t>(l) + 1].x, n * D)
                                       : x;
    std::copy_n(x_mid, n * D, x_out);
    linear(h, N, I, data_.data() + o.down, D, x_out, true);
  }
  float* xf = ws_.x_final.data();
  rmsnorm_forward(xf, data_.data() + norm_off_, N, D, cfg_.rms_norm_eps, grow(ws_.xn_f, n * D), grow(ws_.inv_f, n));
}

LossStats Model::run(const Batch& in, double normalizer, bool backward, float* token_ce) {
  std::vector<int32_t> layout_positions;
  const Batch batch = with_layout_positions(in, layout_positions);
  check_batch(batch, true);
  const int B = batch.B, T = batch.T, N = B * T, D = cfg_.hidden_size, V = cfg_.vocab_size;
  forward_trunk(batch.input_ids, B, T, batch.mode, batch.segment_ids, batch.position_ids, backward);

  LossStats st;
  st.normalizer = normalizer > 0.0 ? normalizer : static_cast<double>(N);
  for (int i = 0; i < N; ++i) {
    if (batch.target_ids[i] < 0) continue;
    st.targets += 1;
    st.weight_sum += batch.weights ? static_cast<double>(batch.weights[i]) : 1.0;
  }

  // The vocabulary projection and the loss run over row chunks so [N, V] logits never exist at once.
  const int rows = std::max(1, std::min(N, (1 << 22) / V));
  float* logits = grow(ws_.logits, static_cast<size_t>(rows) * V);
  float* dxn = backward ? grow(ws_.dxn, static_cast<size_t>(N) * D) : nullptr;
  const float* xn_f = ws_.xn_f.data();
  const float grad_scale = backward ? static_cast<float>(1.0 / st.normalizer) : 0.0f;
  for (int r0 = 0; r0 < N; r0 += rows) {
    const int R = std::min(rows, N - r0);
    linear(xn_f + static_cast<long>(r0) * D, R, D, lm_head(), V, logits, false);
    st.weighted_ce_sum += cross_entropy(logits, R, V, batch.target_ids + r0, batch.weights ? batch.weights + r0 : nullptr,
                                        cfg_.mask_token_id, grad_scale, token_ce ? token_ce + r0 : nullptr);
    if (backward)
      linear_backward(xn_f + static_cast<long>(r0) * D, R, D, lm_head(), V, logits, dxn + static_cast<long>(r0) * D,
                      false, lm_head_grad());
  }
  st.loss = st.weighted_ce_sum / st.normalizer;
  if (backward) backward_trunk(batch);
  return st;
}

void Model::backward_trunk(const Batch& batch) {
  const int B = batch.B, T = batch.T, N = B * T, D = cfg_.hidden_size, I = cfg_.intermediate_size;
  const int nh = cfg_.num_attention_heads, nkv = cfg_.num_key_value_heads, hd = cfg_.head_dim();
  const int S = (nh + 2 * nkv) * hd, A = nh * hd, L = cfg_.num_hidden_layers;
  const size_t n = static_cast<size_t>(N);
  const AttentionMask mask{batch.mode, cfg_.block_size, batch.segment_ids,
                           batch.mode == AttentionMode::BlockTwoStream ? nullptr : batch.position_ids};
  float* g = grad_.data();
  const float* w = data_.data();

  float* dx = grow(ws_.dx, n * D);
  float* dxn = ws_.dxn.data();  // holds d(final norm output) from run()
  std::fill(dx, dx + n * D, 0.0f);
  rmsnorm_backward(ws_.x_final.data(), w + norm_off_, ws_.inv_f.data(), dxn, N, D, dx, g + norm_off_);

  float* dqkv = grow(ws_.dqkv, n * S);
  float* dattn = grow(ws_.dattn, n * A);
  float* dgu = grow(ws_.dgu, n * 2 * I);
  float* dh = grow(ws_.dh, n * I);
  for (int l = L - 1; l >= 0; --l) {
    Activations& a = ws_.layers[static_cast<size_t>(l)];
    const LayerOffsets& o = layer_off_[static_cast<size_t>(l)];
    // dx is the gradient w.r.t. this layer's output.
    linear_backward(a.h.data(), N, I, w + o.down, D, dx, dh, false, g + o.down);
    swiglu_backward(a.gu.data(), dh, N, I, dgu);
    linear_backward(a.xn2.data(), N, D, w + o.gate_up, 2 * I, dgu, dxn, false, g + o.gate_up);
    rmsnorm_backward(a.x_mid.data(), w + o.post_norm, a.inv2.data(), dxn, N, D, dx, g + o.post_norm);
    // dx is now the gradient w.r.t. x_mid.
    linear_backward(a.attn.data(), N, A, w + o.o, D, dx, dattn, false, g + o.o);
    attention_backward(a.qkv.data(), S, a.attn.data(), a.lse.data(), dattn, B, T, nh, nkv, hd, mask, dqkv);
    rope_backward(rope_, dqkv, N, S, nh + nkv, batch.position_ids, T);
    linear_backward(a.xn1.data(), N, D, w + o.qkv, S, dqkv, dxn, false, g + o.qkv);
    rmsnorm_backward(a.x.data(), w + o.input_norm, a.inv1.data(), dxn, N, D, dx, g + o.input_norm);
  }
  embedding_backward(batch.input_ids, N, D, dx, g);
}

LossStats Model::forward_backward(const Batch& batch, double normalizer) {
  return run(batch, normalizer, true, nullptr);
}

LossStats Model::forward_loss(const Batch& batch, double normalizer, float* token_ce) {
  return run(batch, normalizer, false, token_ce);
}

void Model::forward_logits(const int32_t* ids, int B, int T, AttentionMode mode, const int32_t* segment_ids,
                           float* logits_out, const int32_t* position_ids) {
  std::vector<int32_t> layout_positions;
  const Batch b = with_layout_positions(logits_batch(ids, B, T, mode, segment_ids, position_ids), layout_positions);
  check_batch(b, false);
  forward_trunk(ids, B, T, mode, segment_ids, b.position_ids, false);
  const int N = B * T, V = cfg_.vocab_size;
  linear(ws_.xn_f.data(), N, cfg_.hidden_size, lm_head(), V, logits_out, false);
  const float neg_inf = -std::numeric_limits<float>::infinity();
  for (int i = 0; i < N; ++i) logits_out[static_cast<long>(i) * V + cfg_.mask_token_id] = neg_inf;
}

void KVCache::keep_rows(const std::vector<int>& keep) {
  for (size_t i = 0; i < keep.size(); ++i)
    if (keep[i] < 0 || keep[i] >= batch || (i > 0 && keep[i] <= keep[i - 1]))
      throw std::invalid_argument("KVCache::keep_rows: rows must be ascending and in [0, " + std::to_string(batch) + ")");
  const size_t row = static_cast<size_t>(num_kv_heads) * max_len * head_dim;
  const int kept = static_cast<int>(keep.size());
  // Row (l, keep[i]) moves to (l, i), never later than where it was: in this order no source is
  // overwritten before it is read.
  for (int l = 0; l < num_layers; ++l)
    for (int i = 0; i < kept; ++i) {
      const size_t from = (static_cast<size_t>(l) * batch + keep[static_cast<size_t>(i)]) * row;
      const size_t to = (static_cast<size_t>(l) * kept + i) * row;
      if (from == to) continue;
      std::copy_n(k.begin() + static_cast<std::ptrdiff_t>(from), row, k.begin() + static_cast<std::ptrdiff_t>(to));
      std::copy_n(v.begin() + static_cast<std::ptrdiff_t>(from), row, v.begin() + static_cast<std::ptrdiff_t>(to));
    }
  auto select = [&](std::vector<int>& per_row) {
    if (per_row.empty()) return;
    std::vector<int> out;
    for (int r : keep) out.push_back(per_row[static_cast<size_t>(r)]);
    per_row.swap(out);
  };
  select(row_start);
  select(chunk_len);
  batch = kept;
  k.resize(static_cast<size_t>(num_layers) * kept * row);
  v.resize(k.size());
}

KVCache Model::make_cache(int batch, int max_len) const {
  if (batch <= 0 || max_len <= 0 || max_len > cfg_.max_position_embeddings) {
    std::ostringstream os;
    os << "KV cache of batch " << batch << " and max_len " << max_len
       << " is invalid: both must be > 0 and max_len <= max_position_embeddings=" << cfg_.max_position_embeddings;
    throw std::invalid_argument(os.str());
  }
  KVCache c;
  c.batch = batch;
  c.max_len = max_len;
  c.num_layers = cfg_.num_hidden_layers;
  c.num_kv_heads = cfg_.num_key_value_heads;
  c.head_dim = cfg_.head_dim();
  const size_t size = static_cast<size_t>(c.num_layers) * batch * c.num_kv_heads * max_len * c.head_dim;
  c.k.assign(size, 0.0f);
  c.v.assign(size, 0.0f);
  return c;
}

void Model::forward_chunk(KVCache& cache, const int32_t* ids, int C, int start_pos, AttentionMode mode,
                          float* logits_out, bool append_to_cache, int own_block, const uint8_t* logit_rows) {
  check_own_block(own_block, C, mode);
  const int B = cache.batch, D = cfg_.hidden_size, I = cfg_.intermediate_size, V = cfg_.vocab_size;
  const int nh = cfg_.num_attention_heads, nkv = cfg_.num_key_value_heads, hd = cfg_.head_dim();
  const int S = (nh + 2 * nkv) * hd, A = nh * hd, L = cfg_.num_hidden_layers;
  if (cache.num_layers != L || cache.num_kv_heads != nkv || cache.head_dim != hd)
    throw std::invalid_argument("KV cache was made for a different model shape: make it with Model::make_cache");
  check_chunk_args(ids, B, C, start_pos, cache.length, cache.max_len, V);
  check_row_starts(cache.row_start, B, cache.max_len);
  if (!cache.chunk_len.empty() && static_cast<int>(cache.chunk_len.size()) != B)
    throw std::invalid_argument("chunk lengths: " + std::to_string(cache.chunk_len.size()) + " given for a cache of " +
                                std::to_string(B) + " rows");
  const int N = B * C;
  const size_t n = static_cast<size_t>(N);
  Activations& a = chunk_;
  float* x = grow(a.x, n * D);
  float* inv = grow(a.inv1, n);
  float* xn = grow(a.xn1, n * D);
  float* qkv = grow(a.qkv, n * S);
  float* attn = grow(a.attn, n * A);
  float* gu = grow(a.gu, n * 2 * I);
  float* h = grow(a.h, n * I);
  int32_t* pos = grow(chunk_pos_, n);
  const int* row_start = cache.row_start.empty() ? nullptr : cache.row_start.data();
  for (int i = 0; i < N; ++i) pos[i] = std::max(0, start_pos + i % C - (row_start ? row_start[i / C] : 0));

  // Without append, slots of already-committed positions the chunk overlaps are restored after use.
  const int keep = append_to_cache ? 0 : std::max(0, std::min(cache.length, start_pos + C) - start_pos);
  std::vector<float> saved_k(static_cast<size_t>(L) * B * nkv * keep * hd), saved_v(saved_k.size());

  // The rows whose logits are read. Past the last layer's keys/values nothing else needs a row, so the
  // rest of that layer and the vocabulary projection run on these alone (a cache-only call: none).
  std::vector<int>& out_rows = chunk_out_rows_;
  out_rows.clear();
  if (logits_out != nullptr)
    for (int i = 0; i < N; ++i)
      if (i % C >= own_block && (logit_rows == nullptr || logit_rows[i] != 0)) out_rows.push_back(i);
  const int M = static_cast<int>(out_rows.size());

  auto pack = [&](int layer, int which) -> const PackedB* {
    return decode_packs_.empty() ? nullptr : &decode_packs_[static_cast<size_t>(layer) * 4 + which];
  };
  embedding_forward(data_.data(), D, ids, N, x);
  const size_t layer_stride = static_cast<size_t>(B) * nkv * cache.max_len * hd;
  for (int l = 0; l < L; ++l) {
    const LayerOffsets& o = layer_off_[static_cast<size_t>(l)];
    rmsnorm_forward(x, data_.data() + o.input_norm, N, D, cfg_.rms_norm_eps, xn, inv);
    linear_batch_invariant(xn, N, D, data_.data() + o.qkv, S, qkv, false, pack(l, 0));
    rope_forward(rope_, qkv, N, S, nh + nkv, pos, C);
    // The chunk's K/V go into the cache slots [start_pos, start_pos + C); they only count as
    // cached (cache.length) when append_to_cache is set.
    float* kc = cache.k.data() + l * layer_stride;
    float* vc = cache.v.data() + l * layer_stride;
    if (keep > 0) {
      for (int bg = 0; bg < B * nkv; ++bg) {
        const long at = (static_cast<long>(bg) * cache.max_len + start_pos) * hd;
        const size_t to = (static_cast<size_t>(l) * B * nkv + bg) * keep * hd;
        std::copy_n(kc + at, static_cast<size_t>(keep) * hd, saved_k.data() + to);
        std::copy_n(vc + at, static_cast<size_t>(keep) * hd, saved_v.data() + to);
      }
    }
#pragma omp parallel for collapse(2) schedule(static) if (static_cast<long>(N) * 2 * nkv * hd >= kParallelMinWork)
    for (int b = 0; b < B; ++b)
      for (int g = 0; g < nkv; ++g)
        for (int c = 0; c < C; ++c) {
          const float* row = qkv + (static_cast<long>(b) * C + c) * S;
          const long dst = ((static_cast<long>(b) * nkv + g) * cache.max_len + start_pos + c) * hd;
          std::copy_n(row + static_cast<long>(nh + g) * hd, hd, kc + dst);
          std::copy_n(row + static_cast<long>(nh + nkv + g) * hd, hd, vc + dst);
        }
    const bool keys_only = l == L - 1 && M == 0;  // a cache write's last layer: its keys/values are all it gives
    if (!keys_only)
      attention_chunk_forward(qkv, S, kc, vc, cache.max_len, B, C, start_pos, nh, nkv, hd, mode, attn, own_block,
                              row_start, cache.chunk_len.empty() ? nullptr : cache.chunk_len.data());
    if (keep > 0) {
      // A probe over already-cached positions: put their committed K/V back.
      for (int bg = 0; bg < B * nkv; ++bg) {
        const long at = (static_cast<long>(bg) * cache.max_len + start_pos) * hd;
        const size_t from = (static_cast<size_t>(l) * B * nkv + bg) * keep * hd;
        std::copy_n(saved_k.data() + from, static_cast<size_t>(keep) * hd, kc + at);
        std::copy_n(saved_v.data() + from, static_cast<size_t>(keep) * hd, vc + at);
      }
    }
    if (keys_only) break;
    int rows = N;
    if (l == L - 1 && M < N) {
      // Compacted in place, front to back: out_rows ascends, so out_rows[j] >= j is read before it is overwritten.
      for (int j = 0; j < M; ++j) {
        const long from = out_rows[static_cast<size_t>(j)];
        if (from == j) continue;
        std::copy_n(attn + from * A, A, attn + static_cast<long>(j) * A);
        std::copy_n(x + from * D, D, x + static_cast<long>(j) * D);
      }
      rows = M;
    }
    linear_batch_invariant(attn, rows, A, data_.data() + o.o, D, x, true, pack(l, 1));
    rmsnorm_forward(x, data_.data() + o.post_norm, rows, D, cfg_.rms_norm_eps, xn, inv);
    linear_batch_invariant(xn, rows, D, data_.data() + o.gate_up, 2 * I, gu, false, pack(l, 2));
    swiglu_forward(gu, rows, I, h);
    linear_batch_invariant(h, rows, I, data_.data() + o.down, D, x, true, pack(l, 3));
  }
  if (append_to_cache) cache.length = start_pos + C;
  if (M == 0) return;
  rmsnorm_forward(x, data_.data() + norm_off_, M, D, cfg_.rms_norm_eps, xn, inv);
  // Rows are computed the same whatever shares the call (linear_batch_invariant), so the projection of
  // the compacted rows, scattered back, is what each row alone would give.
  const bool dense = M == N;
  float* out = dense ? logits_out : grow(chunk_logits_, static_cast<size_t>(M) * V);
  linear_batch_invariant(xn, M, D, lm_head(), V, out, false, pack(L, 0));
  const float neg_inf = -std::numeric_limits<float>::infinity();
  for (int j = 0; j < M; ++j) {
    float* row = logits_out + static_cast<long>(out_rows[static_cast<size_t>(j)]) * V;
    if (!dense) std::copy_n(out + static_cast<long>(j) * V, V, row);
    row[cfg_.mask_token_id] = neg_inf;
  }
}

void Model::pack_for_decoding() {
  const int D = cfg_.hidden_size, I = cfg_.intermediate_size, V = cfg_.vocab_size;
  const int nh = cfg_.num_attention_heads, nkv = cfg_.num_key_value_heads, hd = cfg_.head_dim();
  const int S = (nh + 2 * nkv) * hd, A = nh * hd;
  std::vector<PackedB> packs;
  auto add = [&](const float* W, int out, int in) { packs.emplace_back(true, in, out, W, in); };
  for (const LayerOffsets& o : layer_off_) {
    add(data_.data() + o.qkv, S, D);
    add(data_.data() + o.o, D, A);
    add(data_.data() + o.gate_up, 2 * I, D);
    add(data_.data() + o.down, D, I);
  }
  add(lm_head(), V, D);
  decode_packs_ = std::move(packs);
}

}  // namespace sdt
