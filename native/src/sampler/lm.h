// The narrow view of a language model that the sampler drives. The sampler never touches weights:
// it asks for logits of a chunk of positions that attends to a per-sequence key/value cache, and
// says whether the chunk's keys/values should be appended to that cache. Keeping this interface
// small lets the decoding rules be tested against tiny fake models as well as the real one
// (ModelLM in model_lm.h adapts sdt::Model).
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <vector>

#include "model/config.h"

namespace sdt::sampler {

// Attention state of `batch` sequences decoded in lockstep (keys/values of the positions committed
// so far; every row holds the same positions).
class LMCache {
 public:
  virtual ~LMCache() = default;
  virtual int batch() const = 0;
  // Number of positions currently held (positions 0..length()-1).
  virtual int length() const = 0;
  // Forget everything (used to refresh an approximate cache by recomputing it).
  virtual void clear() = 0;
  // Row b's positions before starts[b] are padding (its prompt, shorter than the others, was
  // left-padded): nothing attends to them and the row's positions count from starts[b], so it decodes
  // as it would alone. Only for models whose padded_rows() is true; call before the first forward.
  virtual void set_row_starts(const std::vector<int>& starts) {
    for (int s : starts)
      if (s != 0) throw std::logic_error("this model cannot decode left-padded rows");
  }
  // The next forward_chunk calls run only the first lengths[b] chunk positions of row b (0: all of them): the
  // rest are padding that no query of the row sees, and their logits mean nothing. Appended, their keys
  // are cached unmasked, so a row runs a shortened chunk only as its last. Only for models whose
  // ragged_chunks() is true.
  // Keeps rows `keep` (ascending indices) and drops the others: row keep[i] becomes row i, with its cached
  // keys/values, row start and chunk length, and batch() becomes keep.size(). Returns false, changing
  // nothing, when this cache cannot; the sampler then runs rows that are done along with the others.
  virtual bool keep_rows(const std::vector<int>& keep) {
    (void)keep;
    return false;
  }
  virtual void set_chunk_lengths(const std::vector<int>& lengths) {
    for (int n : lengths)
      if (n != 0) throw std::logic_error("this model cannot run chunks of different lengths per row");
  }
};

class LanguageModel {
 public:
  virtual ~LanguageModel() = default;
  virtual const ModelConfig& config() const = 0;

  // A cache for `batch` rows (1 <= batch <= max_batch()).
  virtual std::unique_ptr<LMCache> new_cache(int batch) const = 0;
  virtual int max_batch() const { return 1; }
  // Whether its caches take row starts (LMCache::set_row_starts): then prompts of different lengths
  // share a batch, left-padded; otherwise only prompts of equal length do.
  virtual bool padded_rows() const { return false; }
  // Whether its caches also take chunk lengths (LMCache::set_chunk_lengths): then, with blocks aligned to
  // the model's, prompts of every length share a batch, each row's blocks at its own boundaries.
  virtual bool ragged_chunks() const { return false; }

  // Token ids the sampler never emits: <|mask|>, <|pad|>, <|bos|> and whatever else the model
  // knows to be a training-only symbol (e.g. <|del|>). Ids of -1 are ignored.
  virtual std::vector<int32_t> never_emit() const {
    return {config().mask_token_id, config().pad_token_id, config().bos_token_id};
  }

  // Runs positions [start_pos, start_pos + n) of every cache row; `ids` holds batch * n ids (row b's
  // chunk at b * n). Each query attends to every cached position of its row and, inside the chunk, to
  // the keys `within` allows (Bidirectional: all of the chunk; Causal: chunk positions <= its own).
  // start_pos <= cache.length(). When `logits` is not null it receives batch * n * vocab_size floats
  // (row b * n + i for chunk position i of row b). When `append` is true the chunk's keys/values are
  // written at [start_pos, start_pos + n) and the cache length becomes start_pos + n.
  // own_block > 0 (non-causal `within` only): chunk positions [0, own_block) attend to the cache and to
  // each other only, as if they had been run (and appended) in a call of their own first.
  // logit_rows (batch * n flags, null: all) names the rows whose logits the caller reads; a model may leave
  // the others unwritten and skip work for them (ModelLM does), but never changes a flagged row.
  virtual void forward_chunk(LMCache& cache, const int32_t* ids, int n, int start_pos, AttentionMode within,
                             float* logits, bool append, int own_block = 0,
                             const uint8_t* logit_rows = nullptr) const = 0;

  // Whole-sequence forward without any cache, under `mode` (Block: blocks of config().block_size
  // aligned at position 0). The reference the cached paths are tested against.
  virtual void forward_full(const int32_t* ids, int n, AttentionMode mode, float* logits) const = 0;
};

}  // namespace sdt::sampler
