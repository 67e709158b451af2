// The CUDA TrainBackend (backend/train_backend.h): CudaModel's forward/backward and AdamW, with the host
// Model and AdamW as the record it starts from and syncs back to for checkpoints.
#pragma once

#include <memory>

#include "backend/train_backend.h"

namespace sdt::cuda {

std::unique_ptr<TrainBackend> make_cuda_train_backend(Model& host, train::AdamW& adamw);

}  // namespace sdt::cuda
