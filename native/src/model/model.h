// The Llama-style diffusion language model on the CPU: parameters, training forward/backward,
// inference logits and the KV-cache forward used by the block sampler.
//
// Conventions (see docs/model.md):
//  * All tensors are fp32, row-major. Linear weights are [out, in] as in Hugging Face.
//  * Token rows are flattened: index n = b * T + t.
//  * The <|mask|> logit (config.mask_token_id) is -inf in every logits output and is excluded
//    from every softmax; it can never be a target.
//  * Positions are absolute within the row (t = 0..T-1) unless Batch::position_ids is given.
//  * A Model holds scratch activations: calls on one Model must not run concurrently.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gemm/gemm.h"

#include "model/config.h"
#include "ops/ops.h"

namespace sdt {

// One named parameter tensor, a view into the model's contiguous buffers.
struct ParamView {
  std::string name;            // Hugging Face Llama name, e.g. "model.layers.0.self_attn.q_proj.weight"
  std::vector<int64_t> shape;  // [out, in] for linear weights, [vocab, hidden] for embeddings, [hidden] for norms
  int64_t numel = 0;
  int64_t offset = 0;          // offset of `data` in param_data() (and of `grad` in grad_data())
  float* data = nullptr;
  float* grad = nullptr;
  bool decay = false;          // true for matrices (embeddings, projections, lm_head), false for norms
};

// A training / evaluation batch. Pointers are borrowed for the duration of the call.
struct Batch {
  int B = 0;
  int T = 0;
  const int32_t* input_ids = nullptr;     // [B*T], each in [0, vocab_size)
  const int32_t* target_ids = nullptr;    // [B*T]; a negative target means "no loss at this position"
  const float* weights = nullptr;         // [B*T] per-token loss weight; nullptr: all 1
  const int32_t* segment_ids = nullptr;   // [B*T] or nullptr (the whole row is one segment).
                                          // Attention stays within equal ids; a negative id marks
                                          // padding: nothing attends to it and it attends only to itself.
  const int32_t* position_ids = nullptr;  // [B*T] RoPE positions (and block index = pos / block_size);
                                          // nullptr: t. Must be in [0, max_position_embeddings).
  AttentionMode mode = AttentionMode::Bidirectional;
};

// What a loss call measured. loss = weighted_ce_sum / normalizer.
struct LossStats {
  double loss = 0.0;
  double weighted_ce_sum = 0.0;  // sum_i w_i * CE_i over positions with a target >= 0
  double weight_sum = 0.0;       // sum_i w_i over the same positions
  int64_t targets = 0;           // number of positions with a target >= 0
  double normalizer = 0.0;       // the value actually used
};

// Keys and values of already-processed positions, per layer, for batch rows [0, batch).
// Layout of k and v: [layer][b][kv_head][max_len][head_dim]; K is stored after RoPE.
struct KVCache {
  int batch = 0;
  int max_len = 0;
  int length = 0;  // positions [0, length) hold valid K/V
  int num_layers = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  std::vector<float> k;
  std::vector<float> v;
  // Per row, the first position that is not padding (a shorter prompt left-padded to the length of
  // the others in its batch); empty: 0 for every row. Nothing attends to a row's padding (a padding
  // query sees only itself), and the row's RoPE positions count from its first real position, so the
  // row decodes as it would alone.
  std::vector<int> row_start;
  // Per row, how many positions of the chunks it runs are real (0: all); empty: all, for every row. The
  // positions after are padding that no query sees: a shorter last block of a row in a lockstep group whose
  // other rows run longer ones. Their keys are written when the chunk is appended, so a row's later chunks
  // must not be run (nothing masks them once cached).
  std::vector<int> chunk_len;
  // Forget everything (length = 0); the memory and the row starts are kept.
  void clear() { length = 0; }
  // Keeps rows `keep` (ascending, distinct, in [0, batch)) in that order and drops the others, with their
  // row starts and chunk lengths; throws std::invalid_argument for any other list.
  void keep_rows(const std::vector<int>& keep);
};

// The argument checks of forward_chunk, shared by every backend: C > 0, 0 <= start_pos <= length,
// start_pos + C <= max_len, and every id in [0, vocab_size). Throws std::invalid_argument naming the
// row and chunk position of a bad id.
void check_chunk_args(const int32_t* ids, int batch, int C, int start_pos, int length, int max_len, int vocab_size);
// 0 <= own_block < C, and 0 under Causal (whose chunk is already causal); throws std::invalid_argument.
void check_own_block(int own_block, int C, AttentionMode mode);
// The batch a backend runs: under BlockTwoStream the layout's own positions (t mod T/2 in every row,
// replacing any given) are written to `storage` and used. Throws std::invalid_argument when a
// two-stream row length is odd.
Batch with_layout_positions(const Batch& b, std::vector<int32_t>& storage);
// The target-less batch of a logits call.
Batch logits_batch(const int32_t* ids, int B, int T, AttentionMode mode, const int32_t* segment_ids,
                   const int32_t* position_ids);
// row_start is empty or has one entry per row, each in [0, max_len); throws std::invalid_argument.
void check_row_starts(const std::vector<int>& row_start, int batch, int max_len);

class Model {
 public:
  // Throws std::invalid_argument with config.validate()'s message when the config is unusable.
  explicit Model(const ModelConfig& config);
  // ParamView pointers point into this object's buffers: a copy would alias them, so copying is
  // disabled; moving keeps the buffers (and so the views) valid.
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;
  Model(Model&&) = default;
  Model& operator=(Model&&) = default;

  const ModelConfig& config() const { return cfg_; }

  // Parameters in a fixed order (embed_tokens, then per layer: input_layernorm, q, k, v, o,
  // post_attention_layernorm, gate, up, down; then model.norm, then lm_head when untied).
  // Views point into one contiguous parameter buffer and one contiguous gradient buffer.
  // The non-const accessors and init() drop the decoding packs (pack_for_decoding): the weights may change.
  std::vector<ParamView>& params() {
    decode_packs_.clear();
    return params_;
  }
  const std::vector<ParamView>& params() const { return params_; }
  // nullptr when there is no parameter of that name.
  ParamView* find_param(const std::string& hf_name);
  float* param_data() {
    decode_packs_.clear();
    return data_.data();
  }
  float* grad_data() { return grad_.data(); }
  const float* param_data() const { return data_.data(); }
  const float* grad_data() const { return grad_.data(); }
  int64_t num_params() const { return static_cast<int64_t>(data_.size()); }

  // Deterministic initialisation from `seed`: linear and embedding weights ~ N(0, 0.02); the
  // residual output projections (o_proj, down_proj) ~ N(0, 0.02 / sqrt(2 * num_hidden_layers));
  // norm weights = 1. Gradients are zeroed.
  void init(uint64_t seed);
  void zero_grad();

  // Forward + backward. loss = sum_i w_i * CE_i / normalizer where CE_i is the cross-entropy of
  // target_i under softmax over all logits except <|mask|>. normalizer <= 0 means B*T.
  // Gradients are ADDED to grad_data() (call zero_grad() between optimizer steps), so gradient
  // accumulation over micro-batches works by passing the global normalizer to each call.
  // Throws std::invalid_argument naming the row and column of an out-of-range id or a target
  // equal to mask_token_id.
  LossStats forward_backward(const Batch& batch, double normalizer = 0.0);

  // Forward only, same loss definition. token_ce (optional, [B*T]) receives CE_i (unweighted;
  // 0 where the target is negative) — e.g. for ELBO scoring of trajectories.
  LossStats forward_loss(const Batch& batch, double normalizer = 0.0, float* token_ce = nullptr);

  // Logits [B*T, vocab_size] for a full sequence; logits_out[..., mask_token_id] = -inf.
  // segment_ids / position_ids as in Batch (nullable).
  void forward_logits(const int32_t* ids, int B, int T, AttentionMode mode, const int32_t* segment_ids,
                      float* logits_out, const int32_t* position_ids = nullptr);

  // A cache for `batch` rows and up to `max_len` positions (<= max_position_embeddings).
  KVCache make_cache(int batch, int max_len) const;

  // Logits [cache.batch * C, vocab_size] for C new positions start_pos .. start_pos+C-1 of every
  // row (ids: [cache.batch * C]). Each new position attends to cached positions [0, start_pos)
  // and, inside the chunk: Bidirectional and Block — every chunk position (the chunk is one
  // block); Causal — chunk positions <= its own. Requires start_pos <= cache.length and
  // start_pos + C <= cache.max_len. When append_to_cache is true the chunk's K/V are written
  // at [start_pos, start_pos + C) and cache.length becomes start_pos + C (a start_pos below the
  // length rewinds: later positions are dropped). When false the cache is left as it was, even
  // where the chunk overlaps committed positions.
  // Exactness: for a Block model, calling this block by block (C = block_size, start_pos a
  // multiple of block_size) reproduces forward_logits(mode = Block); for Causal, token by token
  // reproduces forward_logits(mode = Causal) (up to fp32 summation order).
  // own_block > 0 (not with Causal): chunk positions [0, own_block) form a block of their own,
  // attending to the cache and to each other only, so a committed block can be written to the cache
  // in the same call that runs the first step of the block after it, as exactly as in two calls.
  // Their logit rows are not written. logits_out may be null (cache writes only).
  // logit_rows (B * C flags, null: all): only the flagged rows' logits are written, and only they run the
  // last layer past its keys/values, so a block step whose committed positions nobody reads costs less.
  // A written row has the same bits as without the flags.
  void forward_chunk(KVCache& cache, const int32_t* ids, int C, int start_pos, AttentionMode mode,
                     float* logits_out, bool append_to_cache, int own_block = 0, const uint8_t* logit_rows = nullptr);

  // Packs forward_chunk's weights once into the GEMM's panel layout (a second copy of the projection
  // weights), so that decoding no longer repacks every weight on every call, which is most of a one-row
  // call's time. Same bits as without. For weights that no longer change (a loaded checkpoint being
  // served); changing them through a pointer taken before this call is not seen.
  void pack_for_decoding();

 private:
  // Offsets of one layer's tensors in data_ / grad_. q/k/v are adjacent (one fused [q;k;v]
  // projection) and so are gate/up, so each pair or triple is a single GEMM.
  struct LayerOffsets {
    int64_t input_norm, qkv, o, post_norm, gate_up, down;
  };
  // Activations kept for the backward (per layer when training, one slot otherwise).
  struct Activations {
    std::vector<float> x, inv1, xn1, qkv, attn, lse, x_mid, inv2, xn2, gu, h;
  };
  struct Workspace {
    std::vector<Activations> layers;
    std::vector<float> x_final, inv_f, xn_f;
    std::vector<float> dx, dxn, dqkv, dattn, dgu, dh, logits;
  };

  void check_batch(const Batch& b, bool need_targets) const;
  // Embeds ids and runs every layer and the final norm; leaves the result in ws_.xn_f.
  void forward_trunk(const int32_t* ids, int B, int T, AttentionMode mode, const int32_t* segment_ids,
                     const int32_t* position_ids, bool keep_for_backward);
  void backward_trunk(const Batch& batch);
  LossStats run(const Batch& batch, double normalizer, bool backward, float* token_ce);
  const float* lm_head() const;
  float* lm_head_grad();

  ModelConfig cfg_;
  std::vector<float> data_;
  std::vector<float> grad_;
  std::vector<ParamView> params_;
  std::vector<LayerOffsets> layer_off_;
  // pack_for_decoding's weights: per layer qkv, o, gate_up, down, then the lm head; empty: none.
  std::vector<PackedB> decode_packs_;
  int64_t norm_off_ = 0;
  int64_t lm_head_off_ = 0;  // == 0 (embed_tokens) when tied
  Workspace ws_;              // reused between calls
  Activations chunk_;         // forward_chunk's scratch
  std::vector<float> chunk_logits_;  // forward_chunk's logits of the rows it computes, before they are scattered
  std::vector<int> chunk_out_rows_;  // forward_chunk's rows whose logits are read
  std::vector<int32_t> chunk_pos_;
  RopeTable rope_;
};

}  // namespace sdt
