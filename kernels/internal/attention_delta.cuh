// The backward's first pass, shared by the CUDA-core and tensor-core attention kernels.
#pragma once

#include <cuda_runtime.h>

#include "types.cuh"

namespace sdt::cuda::detail {

// delta[b, h, i] = sum_d dout * out (rows [B*T, nh*hd], delta [B, nh, T]).
void launch_attention_delta(const bf16* out, const bf16* dout, int B, int T, int nh, int hd, float* delta,
                            cudaStream_t stream);

}  // namespace sdt::cuda::detail
