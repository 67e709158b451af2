// The one interface a loaded model is used through: the sampler's LanguageModel (sampler/lm.h) plus
// the whole-batch calls of the scorer and the engine. ModelLM (the CPU Model, the reference) and
// CudaLM (CudaModel) implement it; a command picks one, once, from --device when it loads its model.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "model/model.h"
#include "sampler/lm.h"

namespace sdt {

enum class Device { Cpu, Cuda };

// "cpu" | "cuda".
const char* device_name(Device d);
// Throws std::invalid_argument naming the value when it is neither "cpu" nor "cuda".
Device parse_device(const std::string& name);
// Empty when `d` can run in this process; otherwise why not and what to do instead (a binary built
// without CUDA, or no visible CUDA device).
std::string device_problem(Device d);

class Backend : public sampler::LanguageModel {
 public:
  virtual Device device() const = 0;
  // As Model::forward_loss, on host arrays: token_ce (nullable, [B*T]) receives -log p per position.
  virtual LossStats forward_loss(const Batch& batch, double normalizer, float* token_ce) const = 0;
  // As Model::forward_logits: logits [B*T, vocab_size] on the host, the <|mask|> column -inf.
  virtual void forward_batch_logits(const int32_t* ids, int B, int T, AttentionMode mode,
                                    const int32_t* segment_ids, float* logits) const = 0;
};

// `model` (weights loaded or initialised on the host) on device `d`, owning everything it runs on.
// Throws std::runtime_error with device_problem(d) when `d` cannot run here.
std::unique_ptr<Backend> make_backend(Device d, std::unique_ptr<Model> model, int del_token_id);

}  // namespace sdt
