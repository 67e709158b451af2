#include "backend/backend.h"

#include <stdexcept>
#include <utility>

#include "sampler/model_lm.h"

#ifdef SDT_HAVE_CUDA
#include "cuda/cuda_lm.h"
#include "device.cuh"
#endif

namespace sdt {

namespace {

// The model a ModelLM borrows, owned next to it (a base, so it is built first).
struct OwnedModel {
  std::unique_ptr<Model> model;
};

class CpuBackend : private OwnedModel, public sampler::ModelLM {
 public:
  // A backend serves weights that no longer change, so decoding packs them once.
  CpuBackend(std::unique_ptr<Model> m, int del) : OwnedModel{std::move(m)}, ModelLM(*model, del) {
    model->pack_for_decoding();
  }
};

}  // namespace

const char* device_name(Device d) { return d == Device::Cuda ? "cuda" : "cpu"; }

Device parse_device(const std::string& name) {
  if (name == "cpu") return Device::Cpu;
  if (name == "cuda") return Device::Cuda;
  throw std::invalid_argument("--device must be cpu or cuda, got \"" + name + "\"");
}

std::string device_problem(Device d) {
  if (d == Device::Cpu) return "";
#ifdef SDT_HAVE_CUDA
  if (cuda::device_count() == 0)
    return "--device cuda: no CUDA device is visible (no GPU or no driver); run on a GPU machine or use --device cpu";
  return "";
#else
  return "--device cuda: this sdt-native was built without CUDA (nvcc was not found at build time); rebuild it "
         "with SDT_CUDA=ON on a machine with the CUDA toolkit (npm run build:native), or use --device cpu";
#endif
}

std::unique_ptr<Backend> make_backend(Device d, std::unique_ptr<Model> model, int del_token_id) {
  const std::string problem = device_problem(d);
  if (!problem.empty()) throw std::runtime_error(problem);
#ifdef SDT_HAVE_CUDA
  if (d == Device::Cuda) return cuda::make_cuda_backend(std::move(model), del_token_id);
#endif
  return std::make_unique<CpuBackend>(std::move(model), del_token_id);
}

}  // namespace sdt
