// Error checking for .cu files (device code and host launchers); not for plain C++ callers.
#pragma once

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace sdt::cuda::detail {

[[noreturn]] inline void throw_cuda(const char* call, cudaError_t err) {
  throw std::runtime_error(std::string("CUDA error in ") + call + ": " + cudaGetErrorName(err) + " (" +
                           cudaGetErrorString(err) + ")");
}

inline void check(cudaError_t err, const char* call) {
  if (err != cudaSuccess) throw_cuda(call, err);
}

inline cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

}  // namespace sdt::cuda::detail

#define SDT_CUDA_CHECK(call) ::sdt::cuda::detail::check((call), #call)
