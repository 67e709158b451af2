#ifdef SDT_HAVE_CUDA
#include "cuda/cuda_lm.h"

#include <stdexcept>
#include <utility>

#include "cuda/cublaslt.h"

namespace sdt::cuda {
namespace {

class CudaLMCache : public sampler::LMCache {
 public:
  explicit CudaLMCache(CudaKVCache cache) : kv(std::move(cache)) {}
  int batch() const override { return kv.batch; }
  int length() const override { return kv.length; }
  void clear() override { kv.length = 0; }
  void set_row_starts(const std::vector<int>& starts) override {
    check_row_starts(starts, kv.batch, kv.max_len);
    kv.row_start = starts;
  }
  CudaKVCache kv;
};

// What a CudaLM made by make_cuda_backend borrows, owned next to it (a base, so it is built first).
struct CudaOwned {
  std::unique_ptr<Model> host;
  std::unique_ptr<CublasLt> lt;
  std::unique_ptr<CudaModel> model;
};

CudaOwned upload(std::unique_ptr<Model> host) {
  CudaOwned o;
  o.host = std::move(host);
  o.lt = std::make_unique<CublasLt>();
  o.model = std::make_unique<CudaModel>(*o.host, *o.lt);
  o.model->upload_params(o.host->param_data());
  return o;
}

class OwningCudaLM : private CudaOwned, public CudaLM {
 public:
  OwningCudaLM(CudaOwned o, int del) : CudaOwned(std::move(o)), CudaLM(*model, del) {}
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(std::unique_ptr<Model> host, int del_token_id) {
  return std::make_unique<OwningCudaLM>(upload(std::move(host)), del_token_id);
}

std::unique_ptr<sampler::LMCache> CudaLM::new_cache(int batch) const {
  return std::make_unique<CudaLMCache>(model_.make_cache(batch, model_.config().max_position_embeddings));
}

void CudaLM::forward_chunk(sampler::LMCache& cache, const int32_t* ids, int n, int start_pos, AttentionMode within,
                           float* logits, bool append, int own_block, const uint8_t* logit_rows) const {
  (void)logit_rows;  // every row's logits are computed: the GPU runs the whole chunk in one launch per layer
  auto* c = dynamic_cast<CudaLMCache*>(&cache);
  if (c == nullptr) throw std::logic_error("CudaLM::forward_chunk: cache was not made by this model");
  if (n == 0) return;
  model_.forward_chunk(c->kv, ids, n, start_pos, within, logits, append, own_block);
}

void CudaLM::forward_full(const int32_t* ids, int n, AttentionMode mode, float* logits) const {
  model_.forward_logits(ids, 1, n, mode, nullptr, logits);
}

}  // namespace sdt::cuda
#endif  // SDT_HAVE_CUDA
